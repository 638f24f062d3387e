//! A client of Lambda's Extensions API (`2020-01-01`): `register`, the
//! `event/next` long poll, `init/error` and `exit/error` — plus the
//! authenticated PUT the Telemetry API subscription needs.
//!
//! Requests leave as blocking HTTP calls to `AWS_LAMBDA_RUNTIME_API`; events
//! come back as [`Event`]s. Every call but `next` is bounded by
//! [`CALL_TIMEOUT`]; `next` waits as long as Lambda keeps the environment idle.

use std::time::Duration;

use anyhow::{Context as _, bail};

/// Bound on every call but `next`.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
const NAME_HEADER: &str = "Lambda-Extension-Name";
const ID_HEADER: &str = "Lambda-Extension-Identifier";
const ERROR_TYPE_HEADER: &str = "Lambda-Extension-Function-Error-Type";

/// What `event/next` returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// The function is being invoked.
    Invoke {
        /// The request id.
        request_id: String,
        /// When the invocation times out, ms since the Unix epoch.
        deadline_ms: u64,
    },
    /// The environment is ending.
    Shutdown {
        /// `spindown`, `timeout` or `failure`.
        reason: String,
        /// When the extension is killed, ms since the Unix epoch.
        deadline_ms: u64,
    },
}

impl Event {
    /// Parses an event body; `None` for an event type this client does not know.
    fn parse(body: &str) -> anyhow::Result<Option<Self>> {
        let value: serde_json::Value = serde_json::from_str(body).context("event is not JSON")?;
        let text = |key: &str| value.get(key).and_then(|v| v.as_str()).unwrap_or_default();
        let deadline_ms = value
            .get("deadlineMs")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        Ok(match text("eventType") {
            "INVOKE" => Some(Self::Invoke {
                request_id: text("requestId").to_owned(),
                deadline_ms,
            }),
            "SHUTDOWN" => Some(Self::Shutdown {
                reason: text("shutdownReason").to_owned(),
                deadline_ms,
            }),
            _ => None,
        })
    }
}

/// A registered extension's client.
#[derive(Debug)]
pub(crate) struct ExtensionsApi {
    agent: ureq::Agent,
    base: String,
    id: String,
}

impl ExtensionsApi {
    /// Registers as `name` (Lambda requires the executable's file name) for
    /// INVOKE and SHUTDOWN events at `runtime_api` (`host:port`).
    pub(crate) fn register(runtime_api: &str, name: &str) -> anyhow::Result<Self> {
        let agent = ureq::Agent::new_with_config(
            ureq::Agent::config_builder()
                .http_status_as_error(false)
                .build(),
        );
        let base = format!("http://{runtime_api}");
        let mut response = agent
            .post(format!("{base}/2020-01-01/extension/register"))
            .header(NAME_HEADER, name)
            .config()
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .send(r#"{"events":["INVOKE","SHUTDOWN"]}"#)
            .context("register")?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            bail!("register answered {status}: {body}");
        }
        let id = response
            .headers()
            .get(ID_HEADER)
            .and_then(|v| v.to_str().ok())
            .context("register answered without an extension identifier")?
            .to_owned();
        Ok(Self { agent, base, id })
    }

    /// Waits for the next event. Unknown event types are skipped.
    pub(crate) fn next(&self) -> anyhow::Result<Event> {
        loop {
            let mut response = self
                .agent
                .get(format!("{}/2020-01-01/extension/event/next", self.base))
                .header(ID_HEADER, &self.id)
                .call()
                .context("event/next")?;
            let status = response.status().as_u16();
            let body = response
                .body_mut()
                .read_to_string()
                .context("event/next body")?;
            if status != 200 {
                bail!("event/next answered {status}: {body}");
            }
            if let Some(event) = Event::parse(&body)? {
                return Ok(event);
            }
        }
    }

    /// PUTs a JSON body to `path` as this extension (the Telemetry API subscription).
    pub(crate) fn put_json(&self, path: &str, body: &serde_json::Value) -> anyhow::Result<()> {
        let mut response = self
            .agent
            .put(format!("{}{path}", self.base))
            .header(ID_HEADER, &self.id)
            .header("Content-Type", "application/json")
            .config()
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .send(body.to_string())
            .with_context(|| format!("PUT {path}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            bail!("PUT {path} answered {status}: {body}");
        }
        Ok(())
    }

    /// Reports a failed init (`init/error`): Lambda then fails the function's init.
    pub(crate) fn init_error(&self, error_type: &str, message: &str) -> anyhow::Result<()> {
        self.report_error("init/error", error_type, message)
    }

    /// Reports that the extension is exiting on an error (`exit/error`).
    pub(crate) fn exit_error(&self, error_type: &str, message: &str) -> anyhow::Result<()> {
        self.report_error("exit/error", error_type, message)
    }

    fn report_error(&self, what: &str, error_type: &str, message: &str) -> anyhow::Result<()> {
        let body = serde_json::json!({ "errorMessage": message, "errorType": error_type });
        self.agent
            .post(format!("{}/2020-01-01/extension/{what}", self.base))
            .header(ID_HEADER, &self.id)
            .header(ERROR_TYPE_HEADER, error_type)
            .config()
            .timeout_global(Some(CALL_TIMEOUT))
            .build()
            .send(body.to_string())
            .with_context(|| what.to_owned())?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_event_bodies_parse() {
        let invoke = r#"{"eventType":"INVOKE","deadlineMs":1666361106165,"requestId":"r-1","invokedFunctionArn":"arn:aws:lambda:us-east-1:1:function:f","tracing":{"type":"X-Amzn-Trace-Id","value":"Root=1"}}"#;
        assert_eq!(
            Event::parse(invoke).ok().flatten(),
            Some(Event::Invoke {
                request_id: "r-1".into(),
                deadline_ms: 1_666_361_106_165
            })
        );
        let shutdown = r#"{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":5}"#;
        assert_eq!(
            Event::parse(shutdown).ok().flatten(),
            Some(Event::Shutdown {
                reason: "SPINDOWN".into(),
                deadline_ms: 5
            })
        );
        assert_eq!(
            Event::parse(r#"{"eventType":"RESTORE"}"#).ok().flatten(),
            None
        );
        assert!(Event::parse("garbage").is_err());
    }
}
