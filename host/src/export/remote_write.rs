//! Prometheus remote write 1.0: the registry as a snappy-compressed protobuf
//! `WriteRequest` POSTed on every flush.
//!
//! This is the path to Prometheus (with `--web.enable-remote-write-receiver`),
//! Mimir, Thanos or VictoriaMetrics once one Pushgateway is not enough. The
//! protobuf is small and fixed (`WriteRequest`, `TimeSeries`, `Label`,
//! `Sample`, `MetricMetadata`), so it is encoded by hand here rather than
//! through a code generator and `protoc`.
//!
//! - Every sample line of the snapshot is one series: `__name__`, its labels,
//!   and `job` / `instance` from the [`Identity`] (a scraper would add those);
//!   labels sorted by name, as the protocol requires.
//! - Timestamps are the snapshot's, made strictly increasing per exporter so
//!   two flushes in one millisecond are never duplicates.
//! - 5xx, 429 and transport errors are retried with exponential backoff, up to
//!   `max_attempts` and never past the flush deadline; other 4xx are final.
//!   Nothing is queued: every flush carries the current cumulative values, so
//!   the next successful flush restores every counter exactly.
//! - On shutdown, after the final values, every series gets a stale marker (the
//!   NaN with bits `0x7ff0000000000002`), so queries stop at once instead of
//!   carrying the last value for five minutes.

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use ureq::http::Method;

use super::exposition::FamilyKind;
use super::http::{Auth, HttpClient};
use super::{ExportError, ExportStats, Exporter, Identity, Snapshot};

/// Prometheus's staleness marker: a NaN with a specific bit pattern.
pub const STALE_NAN_BITS: u64 = 0x7ff0_0000_0000_0002;
/// Default number of requests per flush (first try plus retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Default first backoff, doubled after each retry.
pub const DEFAULT_INITIAL_BACKOFF_MS: u64 = 50;
/// Default cap on one backoff.
pub const DEFAULT_MAX_BACKOFF_MS: u64 = 1_000;
/// Default cap on one request, on top of the flush budget.
pub const DEFAULT_REQUEST_TIMEOUT_MS: u64 = 5_000;

/// Remote-write settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's URL, e.g. `http://127.0.0.1:9090/api/v1/write`.
    pub url: String,
    /// Basic auth or bearer token.
    pub auth: Option<Auth>,
    /// Requests per flush, first try included (default 3).
    pub max_attempts: u32,
    /// First backoff in milliseconds (default 50), doubled per retry.
    pub initial_backoff_ms: u64,
    /// Cap on one backoff in milliseconds (default 1000).
    pub max_backoff_ms: u64,
    /// Cap on one request in milliseconds (default 5000); the flush budget bounds it further.
    pub request_timeout_ms: u64,
    /// Send HELP and TYPE as metadata (default true).
    pub send_metadata: bool,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            auth: None,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            initial_backoff_ms: DEFAULT_INITIAL_BACKOFF_MS,
            max_backoff_ms: DEFAULT_MAX_BACKOFF_MS,
            request_timeout_ms: DEFAULT_REQUEST_TIMEOUT_MS,
            send_metadata: true,
        }
    }
}

impl RemoteWriteConfig {
    /// Defaults for the receiver at `url`.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            ..Self::default()
        }
    }
}

/// One series with its sorted labels (`__name__` included).
type SeriesLabels = Vec<(String, String)>;

/// Sends the registry to a remote-write receiver on every flush.
#[derive(Debug)]
pub struct RemoteWriteExporter {
    client: HttpClient,
    config: RemoteWriteConfig,
    job: String,
    instance: String,
    last_timestamp_ms: i64,
    /// The series of the last successful write: they get stale markers on shutdown.
    last_sent: Vec<SeriesLabels>,
}

impl RemoteWriteExporter {
    /// An exporter for `identity` writing to `config.url`.
    pub fn new(config: &RemoteWriteConfig, identity: &Identity) -> Result<Self, ExportError> {
        if !(config.url.starts_with("http://") || config.url.starts_with("https://")) {
            return Err(ExportError::Config(format!(
                "remote-write URL must be http(s)://…, got {:?}",
                config.url
            )));
        }
        Ok(Self {
            client: HttpClient::new(
                config.auth.clone(),
                Duration::from_millis(config.request_timeout_ms),
            ),
            config: config.clone(),
            job: identity.job.clone(),
            instance: identity.instance.clone(),
            last_timestamp_ms: i64::MIN,
            last_sent: Vec::new(),
        })
    }

    fn next_timestamp(&mut self, snapshot_ms: i64) -> i64 {
        self.last_timestamp_ms = snapshot_ms.max(self.last_timestamp_ms.saturating_add(1));
        self.last_timestamp_ms
    }

    /// The series of `snapshot` with sorted labels and their values.
    fn series(&self, snapshot: &Snapshot) -> Vec<(SeriesLabels, f64)> {
        let mut out = Vec::with_capacity(snapshot.series_count());
        for family in snapshot.families() {
            for sample in &family.samples {
                let mut labels: SeriesLabels = Vec::with_capacity(sample.labels.len() + 3);
                labels.push(("__name__".to_owned(), sample.name.clone()));
                labels.extend(sample.labels.iter().cloned());
                for (name, value) in [("job", &self.job), ("instance", &self.instance)] {
                    if !labels.iter().any(|(k, _)| k == name) {
                        labels.push((name.to_owned(), value.clone()));
                    }
                }
                labels.sort();
                labels.dedup_by(|a, b| a.0 == b.0);
                out.push((labels, sample.value));
            }
        }
        out
    }

    /// The compressed body of one write request for `snapshot` at
    /// `timestamp_ms`: exactly what [`Exporter::export`] sends.
    pub fn encode(&self, snapshot: &Snapshot, timestamp_ms: i64) -> Result<Vec<u8>, ExportError> {
        self.encode_series(&self.series(snapshot), snapshot, timestamp_ms)
    }

    fn encode_series(
        &self,
        series: &[(SeriesLabels, f64)],
        snapshot: &Snapshot,
        timestamp_ms: i64,
    ) -> Result<Vec<u8>, ExportError> {
        let metadata = if self.config.send_metadata {
            metadata(snapshot)
        } else {
            Vec::new()
        };
        snappy(&encode_write_request(
            series.iter().map(|(l, v)| (l, *v)),
            timestamp_ms,
            &metadata,
        ))
    }

    /// Encodes and POSTs, retrying 5xx / 429 / transport errors with backoff.
    fn send(&self, body: &[u8], deadline: Instant) -> Result<u32, ExportError> {
        let headers = [
            ("Content-Type", "application/x-protobuf"),
            ("Content-Encoding", "snappy"),
            ("X-Prometheus-Remote-Write-Version", "0.1.0"),
        ];
        let max_attempts = self.config.max_attempts.max(1);
        let mut backoff = Duration::from_millis(self.config.initial_backoff_ms);
        let max_backoff = Duration::from_millis(self.config.max_backoff_ms);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let error = match self.client.send(
                Method::POST,
                &self.config.url,
                &headers,
                Some(body),
                deadline,
                None,
            ) {
                Ok(response) if (200..300).contains(&response.status) => return Ok(attempt - 1),
                Ok(response) if response.status == 429 || response.status >= 500 => {
                    ExportError::Unavailable {
                        status: response.status,
                        attempts: attempt,
                        message: response.body,
                    }
                }
                Ok(response) => {
                    tracing::warn!(status = response.status, message = %response.body, "remote write refused");
                    return Err(ExportError::Rejected {
                        status: response.status,
                        message: response.body,
                    });
                }
                Err(ExportError::BudgetExhausted) if attempt > 1 => {
                    return Err(ExportError::BudgetExhausted);
                }
                Err(error @ (ExportError::Config(_) | ExportError::BudgetExhausted)) => {
                    return Err(error);
                }
                Err(error) => error,
            };
            let left = deadline.saturating_duration_since(Instant::now());
            if attempt >= max_attempts || left <= backoff {
                return Err(error);
            }
            std::thread::sleep(backoff);
            backoff = (backoff * 2).min(max_backoff);
        }
    }
}

impl Exporter for RemoteWriteExporter {
    fn name(&self) -> &'static str {
        "remote_write"
    }

    fn export(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        let timestamp_ms = self.next_timestamp(snapshot.timestamp_ms);
        let series = self.series(snapshot);
        let body = self.encode_series(&series, snapshot, timestamp_ms)?;
        let retries = self.send(&body, deadline)?;
        let count = series.len();
        self.last_sent = series.into_iter().map(|(labels, _)| labels).collect();
        Ok(ExportStats {
            series: count,
            bytes: body.len(),
            retries,
        })
    }

    fn shutdown(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        let mut stats = self.export(snapshot, deadline)?;
        let timestamp_ms = self.next_timestamp(snapshot.timestamp_ms);
        let stale = f64::from_bits(STALE_NAN_BITS);
        let body =
            encode_write_request(self.last_sent.iter().map(|l| (l, stale)), timestamp_ms, &[]);
        let body = snappy(&body)?;
        stats.retries += self.send(&body, deadline)?;
        stats.bytes += body.len();
        Ok(stats)
    }
}

/// A family's metadata: (type, name, help).
type Metadata<'a> = (u64, &'a str, &'a str);

fn metadata(snapshot: &Snapshot) -> Vec<Metadata<'_>> {
    snapshot
        .families()
        .iter()
        .map(|f| {
            // prometheus.MetricMetadata.MetricType
            let kind = match f.kind {
                FamilyKind::Untyped => 0,
                FamilyKind::Counter => 1,
                FamilyKind::Gauge => 2,
                FamilyKind::Histogram => 3,
                FamilyKind::Summary => 5,
            };
            (kind, f.name.as_str(), f.help.as_str())
        })
        .collect()
}

fn snappy(data: &[u8]) -> Result<Vec<u8>, ExportError> {
    // Remote write uses snappy's block format, not the framed stream format.
    snap::raw::Encoder::new()
        .compress_vec(data)
        .map_err(|e| ExportError::Io(std::io::Error::other(e)))
}

/// Encodes a `prometheus.WriteRequest` with one sample per series.
pub fn encode_write_request<'a>(
    series: impl Iterator<Item = (&'a SeriesLabels, f64)>,
    timestamp_ms: i64,
    metadata: &[Metadata<'_>],
) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 * 1024);
    let mut ts = Vec::with_capacity(256);
    let mut scratch = Vec::with_capacity(128);
    for (labels, value) in series {
        ts.clear();
        for (name, label_value) in labels {
            scratch.clear();
            put_bytes(&mut scratch, 1, name.as_bytes());
            put_bytes(&mut scratch, 2, label_value.as_bytes());
            put_bytes(&mut ts, 1, &scratch); // TimeSeries.labels
        }
        scratch.clear();
        put_key(&mut scratch, 1, 1); // Sample.value: double
        scratch.extend_from_slice(&value.to_bits().to_le_bytes());
        put_key(&mut scratch, 2, 0); // Sample.timestamp: int64
        put_varint(&mut scratch, timestamp_ms as u64);
        put_bytes(&mut ts, 2, &scratch); // TimeSeries.samples
        put_bytes(&mut out, 1, &ts); // WriteRequest.timeseries
    }
    for (kind, name, help) in metadata {
        scratch.clear();
        put_key(&mut scratch, 1, 0);
        put_varint(&mut scratch, *kind);
        put_bytes(&mut scratch, 2, name.as_bytes());
        if !help.is_empty() {
            put_bytes(&mut scratch, 4, help.as_bytes());
        }
        put_bytes(&mut out, 3, &scratch); // WriteRequest.metadata
    }
    out
}

fn put_key(out: &mut Vec<u8>, field: u64, wire_type: u64) {
    put_varint(out, (field << 3) | wire_type);
}

fn put_bytes(out: &mut Vec<u8>, field: u64, bytes: &[u8]) {
    put_key(out, field, 2);
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_the_write_request_wire_format() {
        let labels: SeriesLabels =
            vec![("__name__".into(), "up".into()), ("job".into(), "j".into())];
        let bytes = encode_write_request(std::iter::once((&labels, 1.0)), 1_700_000_000_000, &[]);
        // WriteRequest.timeseries (field 1, length-delimited)
        assert_eq!(bytes[0], 0x0a);
        let inner = &bytes[2..];
        assert_eq!(usize::from(bytes[1]), inner.len());
        // First label: {1: "__name__", 2: "up"}
        assert_eq!(&inner[..4], &[0x0a, 14, 0x0a, 8]);
        assert_eq!(&inner[4..12], b"__name__");
        assert_eq!(&inner[12..16], &[0x12, 2, b'u', b'p']);
        // The sample: value 1.0 as a little-endian double, then the timestamp varint.
        let sample_at = inner.len() - 18;
        assert_eq!(&inner[sample_at..sample_at + 3], &[0x12, 16, 0x09]);
        assert_eq!(
            &inner[sample_at + 3..sample_at + 11],
            &1.0f64.to_bits().to_le_bytes()
        );
        assert_eq!(inner[sample_at + 11], 0x10);
        let mut ts = Vec::new();
        put_varint(&mut ts, 1_700_000_000_000);
        assert_eq!(&inner[sample_at + 12..], &ts[..]);
    }

    #[test]
    fn varints_and_stale_nan() {
        let mut out = Vec::new();
        put_varint(&mut out, 300);
        assert_eq!(out, [0xac, 0x02]);
        let stale = f64::from_bits(STALE_NAN_BITS);
        assert!(stale.is_nan());
        assert_eq!(stale.to_bits(), STALE_NAN_BITS);
    }

    #[test]
    fn timestamps_strictly_increase() {
        let identity = Identity {
            job: "j".into(),
            function_name: "f".into(),
            function_version: "1".into(),
            instance: "i".into(),
        };
        let mut exporter = RemoteWriteExporter::new(
            &RemoteWriteConfig::new("http://127.0.0.1:1/api/v1/write"),
            &identity,
        )
        .map_err(|e| e.to_string());
        let Ok(exporter) = exporter.as_mut() else {
            panic!("{exporter:?}")
        };
        assert_eq!(exporter.next_timestamp(1000), 1000);
        assert_eq!(exporter.next_timestamp(1000), 1001);
        assert_eq!(exporter.next_timestamp(999), 1002);
        assert_eq!(exporter.next_timestamp(5000), 5000);
    }
}
