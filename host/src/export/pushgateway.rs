//! Prometheus Pushgateway: our own client, one PUT per flush.
//!
//! `metrics-exporter-prometheus` has a push task of its own, but it pushes on
//! an interval from a background task — in a frozen Lambda environment that
//! fires late or never. Here every [`Exporter::export`] renders and PUTs the
//! whole registry synchronously, within the flush budget.
//!
//! - **Grouping key**: `job/function_name/function_version/instance`, one group
//!   per execution environment; every value is sent `@base64` (URL-safe), so
//!   values with `/` (Lambda's log stream names) survive. PUT replaces the
//!   group, so the gateway always holds exactly the environment's current totals.
//! - **Body**: text format, gzip-compressed (the gateway accepts it since 1.5).
//! - **Rejections**: a 400 is the gateway's consistency check (for instance the
//!   same name pushed with two types); it is logged with the gateway's message
//!   and returned as [`ExportError::Rejected`], which the flush counts.
//! - **Shutdown**: optionally DELETE the group.
//! - **Garbage**: the gateway never forgets a group; [`gc_stale_groups`] deletes
//!   groups whose `push_time_seconds` is older than a bound
//!   (`pyrometer pushgateway gc --url URL --older-than 10m`).

use std::collections::BTreeMap;
use std::io::Write as _;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use flate2::Compression;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};
use ureq::http::Method;

use super::http::{Auth, HttpClient, max_response_body_bytes};
use super::{ExportError, ExportStats, Exporter, Identity, Snapshot};

/// The content type of the text exposition format.
pub const TEXT_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
/// Default cap on one request, on top of the flush budget.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// Pushgateway settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PushgatewayConfig {
    /// Base URL of the gateway, e.g. `http://127.0.0.1:9091`.
    pub url: String,
    /// Basic auth or bearer token.
    pub auth: Option<Auth>,
    /// Gzip the request body (default true).
    pub gzip: bool,
    /// DELETE the group on shutdown (default false: the last totals stay
    /// visible until `pushgateway gc` removes them).
    pub delete_on_shutdown: bool,
    /// Cap on one request in milliseconds (default 5000); the flush budget
    /// bounds it further.
    pub request_timeout_ms: u64,
}

impl Default for PushgatewayConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: None,
            gzip: true,
            delete_on_shutdown: false,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
        }
    }
}

impl PushgatewayConfig {
    /// Defaults for the gateway at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// Pushes the registry to one group of a Pushgateway on every flush.
#[derive(Debug)]
pub struct PushgatewayExporter {
    client: HttpClient,
    group_url: String,
    gzip: bool,
    delete_on_shutdown: bool,
}

impl PushgatewayExporter {
    /// An exporter pushing `identity`'s group to the gateway of `config`.
    pub fn new(config: &PushgatewayConfig, identity: &Identity) -> Result<Self, ExportError> {
        let base = base_url(&config.url)?;
        let group_url = format!(
            "{base}/metrics{}",
            grouping_path(&[
                ("job", &identity.job),
                ("function_name", &identity.function_name),
                ("function_version", &identity.function_version),
                ("instance", &identity.instance),
            ])
        );
        Ok(Self {
            client: HttpClient::new(
                config.auth.clone(),
                Duration::from_millis(config.request_timeout_ms),
            ),
            group_url,
            gzip: config.gzip,
            delete_on_shutdown: config.delete_on_shutdown,
        })
    }

    /// The URL of this environment's group.
    pub fn group_url(&self) -> &str {
        &self.group_url
    }

    /// Deletes this environment's group.
    pub fn delete(&self, deadline: Instant) -> Result<(), ExportError> {
        let response =
            self.client
                .send(Method::DELETE, &self.group_url, &[], None, deadline, None)?;
        check_status(response.status, response.body, "delete")
    }
}

impl Exporter for PushgatewayExporter {
    fn name(&self) -> &'static str {
        "pushgateway"
    }

    fn export(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        let text = snapshot.text.as_bytes();
        let gzipped;
        let (body, headers): (&[u8], &[(&str, &str)]) = if self.gzip {
            gzipped = gzip_body(text)?;
            (
                &gzipped,
                &[
                    ("Content-Type", TEXT_CONTENT_TYPE),
                    ("Content-Encoding", "gzip"),
                ],
            )
        } else {
            (text, &[("Content-Type", TEXT_CONTENT_TYPE)])
        };
        let response = self.client.send(
            Method::PUT,
            &self.group_url,
            headers,
            Some(body),
            deadline,
            None,
        )?;
        check_status(response.status, response.body, "push")?;
        Ok(ExportStats {
            series: snapshot.series_count(),
            bytes: body.len(),
            retries: 0,
        })
    }

    fn shutdown(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        if self.delete_on_shutdown {
            self.delete(deadline)?;
            return Ok(ExportStats::default());
        }
        self.export(snapshot, deadline)
    }
}

fn check_status(status: u16, message: String, action: &str) -> Result<(), ExportError> {
    match status {
        200..=299 => Ok(()),
        400..=499 => {
            tracing::warn!(status, gateway_message = %message, "pushgateway refused the {action}");
            Err(ExportError::Rejected { status, message })
        }
        _ => Err(ExportError::Unavailable {
            status,
            attempts: 1,
            message,
        }),
    }
}

/// The request body for `text` when gzip is on (what every push sends).
pub fn gzip_body(data: &[u8]) -> Result<Vec<u8>, ExportError> {
    // Fast compression: most of the size gain for a fraction of the CPU, and
    // the flush sits on the invocation's critical path.
    let mut encoder = GzEncoder::new(Vec::with_capacity(data.len() / 4), Compression::fast());
    encoder.write_all(data)?;
    Ok(encoder.finish()?)
}

fn base_url(url: &str) -> Result<&str, ExportError> {
    let base = url.trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(ExportError::Config(format!(
            "pushgateway URL must be http(s)://…, got {url:?}"
        )));
    }
    Ok(base)
}

/// A grouping-key value as a path segment: URL-safe base64, and `=` for the
/// empty value (which the gateway documents as its spelling of "").
pub fn encode_label_value(value: &str) -> String {
    if value.is_empty() {
        "=".to_owned()
    } else {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(value)
    }
}

/// The grouping-key path: `/name@base64/value/…` for every label, in order.
pub fn grouping_path(labels: &[(&str, &str)]) -> String {
    labels
        .iter()
        .map(|(name, value)| format!("/{name}@base64/{}", encode_label_value(value)))
        .collect()
}

/// A group's labels (its grouping key).
pub type GroupLabels = BTreeMap<String, String>;

/// Settings for [`gc_stale_groups`].
#[derive(Debug, Clone)]
pub struct GcConfig {
    /// Base URL of the gateway.
    pub url: String,
    /// Basic auth or bearer token.
    pub auth: Option<Auth>,
    /// Delete groups whose last successful push is older than this.
    pub older_than: Duration,
    /// Bound on the whole run.
    pub timeout: Duration,
    /// Only report what would be deleted.
    pub dry_run: bool,
}

impl GcConfig {
    /// Delete groups at `url` older than `older_than`, within 30 seconds.
    pub fn new(url: impl Into<String>, older_than: Duration) -> Self {
        Self {
            url: url.into(),
            auth: None,
            older_than,
            timeout: Duration::from_secs(30),
            dry_run: false,
        }
    }
}

/// What a gc run did. Groups are given as their label sets.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GcReport {
    /// Groups deleted (or, in a dry run, to be deleted).
    pub deleted: Vec<GroupLabels>,
    /// Groups kept because they were pushed recently.
    pub kept: usize,
    /// Groups whose deletion failed, with the reason.
    pub failed: Vec<(GroupLabels, String)>,
}

/// Deletes every group whose `push_time_seconds` is older than
/// `config.older_than` (a group that never had a successful push counts as
/// stale). Reads the groups from the gateway's `/api/v1/metrics`.
pub fn gc_stale_groups(config: &GcConfig) -> Result<GcReport, ExportError> {
    let deadline = Instant::now() + config.timeout;
    let base = base_url(&config.url)?;
    let client = HttpClient::new(config.auth.clone(), config.timeout);
    let response = client.send(
        Method::GET,
        &format!("{base}/api/v1/metrics"),
        &[("Accept", "application/json")],
        None,
        deadline,
        Some(max_response_body_bytes()),
    )?;
    if response.status != 200 {
        return Err(ExportError::Rejected {
            status: response.status,
            message: response.body,
        });
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0);
    let mut report = GcReport::default();
    for (labels, pushed_at) in parse_groups(&response.body)? {
        if now - pushed_at <= config.older_than.as_secs_f64() {
            report.kept += 1;
            continue;
        }
        if config.dry_run {
            report.deleted.push(labels);
            continue;
        }
        let Some(job) = labels.get("job") else {
            report
                .failed
                .push((labels, "group has no job label".to_owned()));
            continue;
        };
        let mut key: Vec<(&str, &str)> = vec![("job", job)];
        key.extend(
            labels
                .iter()
                .filter(|(k, _)| *k != "job")
                .map(|(k, v)| (k.as_str(), v.as_str())),
        );
        let url = format!("{base}/metrics{}", grouping_path(&key));
        match client
            .send(Method::DELETE, &url, &[], None, deadline, None)
            .and_then(|r| check_status(r.status, r.body, "delete"))
        {
            Ok(()) => report.deleted.push(labels),
            Err(error) => report.failed.push((labels, error.to_string())),
        }
    }
    Ok(report)
}

/// Parses `/api/v1/metrics` into (group labels, last successful push time).
fn parse_groups(body: &str) -> Result<Vec<(GroupLabels, f64)>, ExportError> {
    let json: serde_json::Value = serde_json::from_str(body)
        .map_err(|e| ExportError::Response(format!("groups listing: {e}")))?;
    let groups = json
        .get("data")
        .and_then(|d| d.as_array())
        .ok_or_else(|| ExportError::Response("groups listing has no data array".to_owned()))?;
    Ok(groups
        .iter()
        .map(|group| {
            let labels = group
                .get("labels")
                .and_then(|l| l.as_object())
                .map(|l| {
                    l.iter()
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                        .collect()
                })
                .unwrap_or_default();
            let pushed_at = group
                .pointer("/push_time_seconds/metrics/0/value")
                .and_then(|v| v.as_str())
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(0.0);
            (labels, pushed_at)
        })
        .collect())
}

/// Parses an age such as `10m`, `90s`, `500ms`, `2h` or `1d`.
pub fn parse_age(text: &str) -> Result<Duration, ExportError> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| ExportError::Config(format!("not an age: {text:?} (try 10m)")))?;
    let seconds = match unit {
        "ms" => number / 1e3,
        "s" | "" => number,
        "m" => number * 60.0,
        "h" => number * 3600.0,
        "d" => number * 86_400.0,
        _ => {
            return Err(ExportError::Config(format!(
                "unknown unit in {text:?}: use ms, s, m, h or d"
            )));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| ExportError::Config(format!("{text:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grouping_key_is_url_safe_base64() {
        let path = grouping_path(&[
            ("job", "pyrometer"),
            ("instance", "2024/01/01/[$LATEST]ab?c"),
            ("x", ""),
        ]);
        assert_eq!(
            path,
            "/job@base64/cHlyb21ldGVy/instance@base64/MjAyNC8wMS8wMS9bJExBVEVTVF1hYj9j/x@base64/="
        );
        assert!(!path["/job@base64".len()..].contains(['+', '?', '%']));
    }

    #[test]
    fn ages_parse() {
        assert_eq!(parse_age("10m").ok(), Some(Duration::from_secs(600)));
        assert_eq!(parse_age("1.5h").ok(), Some(Duration::from_secs(5400)));
        assert_eq!(parse_age("250ms").ok(), Some(Duration::from_millis(250)));
        assert!(parse_age("10 parsecs").is_err());
        assert!(parse_age("").is_err());
    }

    #[test]
    fn groups_listing_parses() {
        let body = r#"{"status":"success","data":[
            {"labels":{"job":"j","instance":"a/b"},"push_time_seconds":{"metrics":[{"labels":{},"value":"1.7e+09"}]}},
            {"labels":{"job":"k"}}]}"#;
        let groups = parse_groups(body).unwrap_or_default();
        assert_eq!(groups.len(), 2);
        assert_eq!(groups[0].0.get("instance").map(String::as_str), Some("a/b"));
        assert_eq!(groups[0].1, 1.7e9);
        assert_eq!(groups[1].1, 0.0);
    }
}
