//! The HTTP client the push exporters share: one pooled agent per exporter,
//! authentication, and requests bounded by the flush deadline.
//!
//! Host names are resolved by [`CachingResolver`], which spares each request
//! ureq's lookup thread.
//!
//! It is blocking (`ureq`) on purpose: a flush runs each exporter on its own
//! thread and every request carries a global timeout of the time left, which
//! covers connecting, sending and reading the answer — so a server that
//! accepts and never answers costs at most the budget.

use std::fmt;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use ureq::http;

use super::ExportError;
use super::resolver::CachingResolver;

/// How long an error body may be; the rest is cut.
const MAX_ERROR_BODY_BYTES: u64 = 4 * 1024;
/// How long a response body read for data (gc's group listing) may be.
const MAX_RESPONSE_BODY_BYTES: u64 = 64 * 1024 * 1024;

/// Credentials for a push endpoint.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Auth {
    /// HTTP basic authentication.
    Basic {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// `Authorization: Bearer <token>`.
    Bearer(String),
}

impl fmt::Debug for Auth {
    // Secrets never reach logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Basic { username, .. } => f
                .debug_struct("Basic")
                .field("username", username)
                .field("password", &"***")
                .finish(),
            Self::Bearer(_) => f.debug_tuple("Bearer").field(&"***").finish(),
        }
    }
}

impl Auth {
    fn header_value(&self) -> String {
        match self {
            Self::Basic { username, password } => {
                let raw = format!("{username}:{password}");
                format!(
                    "Basic {}",
                    base64::engine::general_purpose::STANDARD.encode(raw)
                )
            }
            Self::Bearer(token) => format!("Bearer {token}"),
        }
    }
}

/// An answer: status and (bounded) body.
#[derive(Debug)]
pub(crate) struct HttpResponse {
    pub(crate) status: u16,
    pub(crate) body: String,
}

/// A pooled client with optional credentials and a per-request time cap.
#[derive(Debug)]
pub(crate) struct HttpClient {
    agent: ureq::Agent,
    auth: Option<Auth>,
    request_timeout: Duration,
}

impl HttpClient {
    pub(crate) fn new(auth: Option<Auth>, request_timeout: Duration) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .user_agent(concat!("pyrometer/", env!("CARGO_PKG_VERSION")))
            .max_idle_connections_per_host(2)
            .build();
        let agent = ureq::Agent::with_parts(
            config,
            ureq::unversioned::transport::DefaultConnector::new(),
            CachingResolver::default(),
        );
        Self {
            agent,
            auth,
            request_timeout,
        }
    }

    /// Sends one request; it ends by `deadline` at the latest.
    pub(crate) fn send(
        &self,
        method: http::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
        deadline: Instant,
        max_body_bytes: Option<u64>,
    ) -> Result<HttpResponse, ExportError> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ExportError::BudgetExhausted);
        }
        let timeout = left.min(self.request_timeout);
        let mut builder = http::Request::builder().method(method).uri(url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        if let Some(auth) = &self.auth {
            builder = builder.header("Authorization", auth.header_value());
        }
        let result = match body {
            Some(body) => {
                let request = builder
                    .body(body)
                    .map_err(|e| ExportError::Config(e.to_string()))?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_global(Some(timeout))
                    .build();
                self.agent.run(request)
            }
            None => {
                let request = builder
                    .body(())
                    .map_err(|e| ExportError::Config(e.to_string()))?;
                let request = self
                    .agent
                    .configure_request(request)
                    .timeout_global(Some(timeout))
                    .build();
                self.agent.run(request)
            }
        };
        let mut response = result.map_err(|e| map_error(e, timeout))?;
        let status = response.status().as_u16();
        // Success bodies are read too (they are empty or tiny): an unread body
        // would keep the pooled connection from being reused.
        let body = read_bounded(
            response.body_mut(),
            max_body_bytes.unwrap_or(MAX_ERROR_BODY_BYTES),
        );
        Ok(HttpResponse { status, body })
    }
}

/// Reads at most `limit` bytes of a body, lossily as UTF-8.
fn read_bounded(body: &mut ureq::Body, limit: u64) -> String {
    use std::io::Read as _;
    let mut bytes = Vec::new();
    let _ = body
        .with_config()
        .limit(u64::MAX)
        .reader()
        .take(limit)
        .read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).trim().to_owned()
}

/// The default cap on the response body read for data.
pub(crate) const fn max_response_body_bytes() -> u64 {
    MAX_RESPONSE_BODY_BYTES
}

fn map_error(error: ureq::Error, timeout: Duration) -> ExportError {
    match error {
        ureq::Error::Timeout(what) => ExportError::Timeout(format!("{what} after {timeout:?}")),
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => {
            ExportError::Connect(error.to_string())
        }
        ureq::Error::Io(io) => match io.kind() {
            std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::AddrNotAvailable
            | std::io::ErrorKind::NotConnected => ExportError::Connect(io.to_string()),
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => {
                ExportError::Timeout(format!("{io} after {timeout:?}"))
            }
            _ => ExportError::Transport(io.to_string()),
        },
        ureq::Error::BadUri(uri) => ExportError::Config(format!("bad URL {uri}")),
        other => ExportError::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_not_debug_printed() {
        let basic = Auth::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        let bearer = Auth::Bearer("t0ken".into());
        assert!(!format!("{basic:?}{bearer:?}").contains("hunter2"));
        assert!(!format!("{bearer:?}").contains("t0ken"));
        assert_eq!(basic.header_value(), "Basic dTpodW50ZXIy");
    }
}
