//! Where a pipeline's completed records go: plugins run over them, and they
//! and the plugins' output are recorded in a [`MetricsRegistry`] that the
//! configured exporters publish.
//!
//! Data enters as a [`Batch`] (plus late `platform.report` figures) and
//! leaves through [`MetricsSink::flush`] and [`MetricsSink::shutdown`].
//! `pyrometer lambda` keeps one sink per execution environment; the Lambda
//! extension, which lives in exactly one, keeps one for its life. Exporters log
//! and count their own failures, so nothing here fails its caller.

use std::sync::Arc;
use std::time::Instant;

use crate::collector::LateReport;
use crate::export::registry::MetricsRegistry;
use crate::export::{ExportConfig, ExportError, Exporters, FlushReport, Identity, catalogue};
use crate::model::{Batch, PluginOutput};
use crate::plugins::{PluginSet, RunReport};

/// Bytes in Lambda's megabyte.
const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

/// A registry and the exporters that publish it.
#[derive(Debug)]
pub struct MetricsSink {
    registry: Arc<MetricsRegistry>,
    exporters: Option<Exporters>,
}

impl MetricsSink {
    /// A sink for `identity`, exporting as `config` says (nowhere with `None`).
    pub fn new(config: Option<&ExportConfig>, identity: Identity) -> Result<Self, ExportError> {
        let mut sink = Self::without_exporters(&identity);
        if let Some(c) = config {
            sink.exporters = Some(Exporters::from_config(
                c,
                identity,
                Arc::clone(&sink.registry),
            )?);
        }
        Ok(sink)
    }

    /// A sink with every exporter of `config` that can be built, and why the
    /// others could not (fail-open: one bad URL costs only its exporter).
    pub fn lenient(config: &ExportConfig, identity: Identity) -> (Self, Vec<ExportError>) {
        let mut sink = Self::without_exporters(&identity);
        let registry = Arc::clone(&sink.registry);
        let (exporters, errors) = Exporters::from_config_lenient(config, &identity, registry);
        sink.exporters = Some(exporters);
        (sink, errors)
    }

    /// Points the exporters of `config` at execution environment `identity`,
    /// keeping everything recorded; returns why exporters could not be
    /// rebuilt (those are left out). For a SnapStart environment, which learns
    /// who it is only after its restore.
    pub fn reidentify(&mut self, config: &ExportConfig, identity: &Identity) -> Vec<ExportError> {
        let registry = Arc::clone(&self.registry);
        let (exporters, errors) = Exporters::from_config_lenient(config, identity, registry);
        self.exporters = Some(exporters);
        errors
    }

    /// A sink that records but exports nowhere (cannot fail).
    pub fn without_exporters(identity: &Identity) -> Self {
        Self {
            registry: Arc::new(MetricsRegistry::new(identity)),
            exporters: None,
        }
    }

    /// The registry metrics are recorded in.
    pub fn registry(&self) -> &Arc<MetricsRegistry> {
        &self.registry
    }

    /// Runs the plugins over `batch` (under the registry's recorder, so their
    /// self-metrics are exported too) and records the batch and their output.
    pub fn analyze(&self, batch: &Batch, plugins: &mut PluginSet) -> RunReport {
        let run = self.run_plugins(batch, plugins);
        self.registry.record_batch(batch);
        run
    }

    /// Runs the plugins over `batch` and records only what they produced (for
    /// batches whose rows are not function invocations, such as `pyrometer
    /// run`'s windows).
    pub fn run_plugins(&self, batch: &Batch, plugins: &mut PluginSet) -> RunReport {
        let run = metrics::with_local_recorder(self.registry.recorder(), || plugins.run(batch));
        self.record_output(&run.output);
        run
    }

    /// Records a batch and what the plugins made of it.
    pub fn record(&self, batch: &Batch, output: &PluginOutput) {
        self.registry.record_batch(batch);
        self.record_output(output);
    }

    fn record_output(&self, output: &PluginOutput) {
        for m in &output.metrics {
            self.registry.record_plugin_metric(&m.plugin, m);
        }
        for f in &output.findings {
            self.registry.record_finding(f);
        }
    }

    /// Records `platform.report` figures that arrived after their invocation
    /// was recorded (billed duration, memory, post-runtime time).
    pub fn record_late_reports(&self, reports: &[LateReport]) {
        for report in reports {
            let observations = [
                (
                    &catalogue::FAAS_BILLED_DURATION_SECONDS,
                    report.billed_duration_ms.map(|ms| ms / 1e3),
                ),
                (
                    &catalogue::FAAS_POST_RUNTIME_DURATION_SECONDS,
                    report.post_runtime_ms.map(|ms| ms / 1e3),
                ),
                (
                    &catalogue::FAAS_MEM_USAGE_BYTES,
                    report.max_memory_used_mb.map(|mb| mb * BYTES_PER_MB),
                ),
            ];
            for (spec, value) in observations {
                if let Some(value) = value {
                    self.registry.record(spec, &[], value);
                }
            }
        }
    }

    /// Publishes the registry within the flush budget.
    pub fn flush(&mut self) -> Option<FlushReport> {
        self.exporters.as_mut().map(Exporters::flush)
    }

    /// The final flush, by `deadline`.
    pub fn shutdown(&mut self, deadline: Instant) -> Option<FlushReport> {
        self.exporters.as_mut().map(|e| e.shutdown(deadline))
    }
}
