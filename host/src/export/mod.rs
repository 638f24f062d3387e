//! Where data goes: the metric registry and the exporters that publish it.
//!
//! Data enters through a [`MetricsRegistry`]: the collector records
//! [`Invocation`](crate::model::Invocation)s and import profiles, the plugin host
//! records [`PluginOutput`](crate::model::PluginOutput)s and its own call
//! figures. The registry is the `metrics` facade backed by a
//! [`PrometheusRecorder`](metrics_exporter_prometheus::PrometheusRecorder) that
//! it owns (no global recorder, so tests and several pipelines can run side by
//! side), described once by the [`catalogue`].
//!
//! Data leaves in two ways:
//!
//! - **pull**: [`prometheus::MetricsServer`] answers `GET /metrics` with the
//!   registry rendered at scrape time;
//! - **push**: [`Exporters::flush`] renders the registry once into a
//!   [`Snapshot`] and hands it, concurrently and under one time budget, to every
//!   configured [`Exporter`] — [`PushgatewayExporter`] (PUT per flush),
//!   [`EmfExporter`] (CloudWatch embedded metric format on stdout) and
//!   [`RemoteWriteExporter`] (Prometheus remote write 1.0). Each exporter's
//!   duration and failures are recorded back into the registry and so appear
//!   in the next flush.
//!
//! ```no_run
//! use std::sync::Arc;
//! use pyrometer::export::{ExportConfig, Exporters, Identity, MetricsRegistry, PushgatewayConfig};
//! use pyrometer::model::{Batch, FunctionInfo};
//!
//! let function = FunctionInfo { name: "checkout".into(), version: "7".into(), ..Default::default() };
//! let identity = Identity::for_function(&function, Identity::instance_from_env());
//! let registry = Arc::new(MetricsRegistry::new(&identity));
//! let config = ExportConfig {
//!     pushgateway: Some(PushgatewayConfig::new("http://127.0.0.1:9091")),
//!     ..ExportConfig::default()
//! };
//! let mut exporters = Exporters::from_config(&config, identity, Arc::clone(&registry))?;
//!
//! registry.record_batch(&Batch { function, ..Default::default() });
//! let report = exporters.flush();
//! assert!(report.all_succeeded());
//! # Ok::<(), pyrometer::export::ExportError>(())
//! ```

pub mod catalogue;
pub mod emf;
pub mod exposition;
pub mod flush;
mod http;
pub mod prometheus;
pub mod pushgateway;
pub mod registry;
pub mod remote_write;
mod resolver;

use std::time::Instant;

pub use emf::{EmfConfig, EmfExporter};
pub use exposition::{MetricFamily, Sample, Snapshot};
pub use flush::{ExportConfig, ExporterOutcome, Exporters, FlushReport};
pub use http::Auth;
pub use pushgateway::{PushgatewayConfig, PushgatewayExporter};
pub use registry::MetricsRegistry;
pub use remote_write::{RemoteWriteConfig, RemoteWriteExporter};

use crate::model::FunctionInfo;

/// Who is exporting: the labels that tell one execution environment's series
/// from another's.
///
/// `function_name` and `function_version` are labels on every series;
/// `job` and `instance` are added where no scraper adds them (the Pushgateway
/// grouping key and remote write).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The `job` label (default `pyrometer`).
    pub job: String,
    /// The measured function's name.
    pub function_name: String,
    /// The measured function's version.
    pub function_version: String,
    /// One execution environment: the `instance` label.
    pub instance: String,
}

/// The default `job` label.
pub const DEFAULT_JOB: &str = "pyrometer";

impl Identity {
    /// The identity of `function` running in execution environment `instance`.
    pub fn for_function(function: &FunctionInfo, instance: impl Into<String>) -> Self {
        Self {
            job: DEFAULT_JOB.to_owned(),
            function_name: function.name.clone(),
            function_version: function.version.clone(),
            instance: instance.into(),
        }
    }

    /// An `instance` value for this execution environment.
    ///
    /// In Lambda the log stream name (`AWS_LAMBDA_LOG_STREAM_NAME`) is unique per
    /// execution environment and stable for its life; elsewhere the host name
    /// and process id are.
    pub fn instance_from_env() -> String {
        if let Ok(stream) = std::env::var("AWS_LAMBDA_LOG_STREAM_NAME")
            && !stream.is_empty()
        {
            return stream;
        }
        let host = std::env::var("HOSTNAME")
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| {
                std::fs::read_to_string("/proc/sys/kernel/hostname")
                    .ok()
                    .map(|h| h.trim().to_owned())
            })
            .unwrap_or_else(|| "localhost".to_owned());
        format!("{host}:{}", std::process::id())
    }

    /// An `instance` value for an execution environment restored from a
    /// SnapStart snapshot: [`Self::instance_from_env`] followed by a random
    /// UUID read from the kernel when called. Called after the restore, it
    /// tells apart the environments restored from one snapshot, which all
    /// resume with the snapshot's process id and environment (a value taken
    /// at init would make them push to one group and overwrite each other).
    pub fn restored_instance() -> String {
        let random = std::fs::read_to_string("/proc/sys/kernel/random/uuid")
            .map(|u| u.trim().to_owned())
            .unwrap_or_else(|_| {
                // No procfs: the clock, which differs between restores too.
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap_or_default();
                format!("{:x}", now.as_nanos())
            });
        format!("{}:{random}", Self::instance_from_env())
    }
}

/// Why an export failed. Every variant is counted under
/// `pyrometer_flush_failures_total{reason}` with [`ExportError::reason`].
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The flush budget ran out before the request could be (re)sent.
    #[error("flush budget exhausted")]
    BudgetExhausted,
    /// The request did not complete within its time bound.
    #[error("timed out: {0}")]
    Timeout(String),
    /// No connection could be made (refused, unreachable, DNS).
    #[error("could not connect: {0}")]
    Connect(String),
    /// Any other transport-level failure.
    #[error("transport error: {0}")]
    Transport(String),
    /// The server refused the data (a 4xx other than 429); retrying would not help.
    #[error("server answered {status}: {message}")]
    Rejected {
        /// HTTP status.
        status: u16,
        /// The server's explanation (response body, truncated).
        message: String,
    },
    /// The server kept answering 5xx or 429 until the attempts or the budget ran out.
    #[error("server answered {status} after {attempts} attempt(s): {message}")]
    Unavailable {
        /// The last HTTP status.
        status: u16,
        /// How many requests were made.
        attempts: u32,
        /// The server's last explanation (response body, truncated).
        message: String,
    },
    /// Writing output (EMF lines) failed.
    #[error("write failed: {0}")]
    Io(#[from] std::io::Error),
    /// The configuration cannot work (bad URL, bad duration).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The server's answer could not be understood.
    #[error("unexpected response: {0}")]
    Response(String),
    /// The exporter panicked; the panic was contained.
    #[error("exporter panicked")]
    Panicked,
}

impl ExportError {
    /// A short, bounded-cardinality label value for this failure.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::BudgetExhausted => "budget",
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Transport(_) => "transport",
            Self::Rejected { .. } => "rejected",
            Self::Unavailable { .. } => "unavailable",
            Self::Io(_) => "io",
            Self::Config(_) => "config",
            Self::Response(_) => "response",
            Self::Panicked => "panic",
        }
    }
}

/// What one exporter did in one flush.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStats {
    /// Series (sample lines) sent or written.
    pub series: usize,
    /// Bytes sent or written (after compression).
    pub bytes: usize,
    /// Requests made beyond the first (retries).
    pub retries: u32,
}

/// A destination for snapshots of the registry.
///
/// Implementations must return by `deadline` (every request is bounded by the
/// time left) and must not panic; [`Exporters`] runs them concurrently.
pub trait Exporter: Send {
    /// A stable, short name: the `exporter` label of pyrometer's own metrics.
    fn name(&self) -> &'static str;

    /// Publishes one snapshot.
    fn export(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError>;

    /// Publishes the final snapshot of this execution environment and cleans up
    /// (stale markers, group deletion). The default is a plain export.
    fn shutdown(
        &mut self,
        snapshot: &Snapshot,
        deadline: Instant,
    ) -> Result<ExportStats, ExportError> {
        self.export(snapshot, deadline)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restored_environments_get_instances_of_their_own() {
        let (a, b) = (Identity::restored_instance(), Identity::restored_instance());
        assert_ne!(a, b);
        let base = Identity::instance_from_env();
        assert!(a.starts_with(&format!("{base}:")), "{a}");
    }
}
