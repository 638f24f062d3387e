//! Flush: one call that publishes the registry through every configured
//! exporter, concurrently, under one time budget.
//!
//! [`Exporters::flush`] renders the registry once into a [`Snapshot`], runs
//! each [`Exporter`] on its own thread with the same deadline (every request
//! inside is bounded by the time left), waits for all of them, and records
//! each exporter's duration, failures, retries and series count back into the
//! registry — they appear in the next flush. A failing exporter never fails
//! the others, nor the caller: the [`FlushReport`] says what happened and
//! failures are logged. This is the fail-open half of the Lambda loop.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::catalogue;
use super::{
    EmfConfig, EmfExporter, ExportError, ExportStats, Exporter, Identity, MetricsRegistry,
    PushgatewayConfig, PushgatewayExporter, RemoteWriteConfig, RemoteWriteExporter, Snapshot,
};

/// Default time budget of one flush, for all exporters together.
pub const DEFAULT_FLUSH_BUDGET_MS: u64 = 1_000;

/// Which exporters to run and how long a flush may take.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// Budget of one flush in milliseconds (default 1000).
    pub flush_budget_ms: u64,
    /// Push to a Pushgateway (`--push-gateway URL`).
    pub pushgateway: Option<PushgatewayConfig>,
    /// Prometheus remote write (`--remote-write URL`).
    pub remote_write: Option<RemoteWriteConfig>,
    /// CloudWatch EMF on stdout (`--emf`).
    pub emf: Option<EmfConfig>,
}

impl Default for ExportConfig {
    fn default() -> Self {
        Self {
            flush_budget_ms: DEFAULT_FLUSH_BUDGET_MS,
            pushgateway: None,
            remote_write: None,
            emf: None,
        }
    }
}

/// How one exporter fared in one flush.
#[derive(Debug)]
pub struct ExporterOutcome {
    /// The exporter's name.
    pub exporter: &'static str,
    /// How long it took.
    pub duration: Duration,
    /// What it sent, or why it failed.
    pub result: Result<ExportStats, ExportError>,
}

/// What a flush did, exporter by exporter.
#[derive(Debug, Default)]
pub struct FlushReport {
    /// One outcome per configured exporter, in configuration order.
    pub outcomes: Vec<ExporterOutcome>,
    /// The whole flush, rendering included.
    pub duration: Duration,
}

impl FlushReport {
    /// True when every exporter succeeded (vacuously true with none).
    pub fn all_succeeded(&self) -> bool {
        self.outcomes.iter().all(|o| o.result.is_ok())
    }

    /// The outcome of the exporter named `name`.
    pub fn outcome(&self, name: &str) -> Option<&ExporterOutcome> {
        self.outcomes.iter().find(|o| o.exporter == name)
    }
}

/// The configured exporters over one registry.
pub struct Exporters {
    registry: Arc<MetricsRegistry>,
    exporters: Vec<Box<dyn Exporter>>,
    budget: Duration,
}

impl std::fmt::Debug for Exporters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.exporters.iter().map(|e| e.name()).collect();
        f.debug_struct("Exporters")
            .field("exporters", &names)
            .field("budget", &self.budget)
            .finish()
    }
}

impl Exporters {
    /// No exporters yet; add them with [`Exporters::with`].
    pub fn new(registry: Arc<MetricsRegistry>, budget: Duration) -> Self {
        Self {
            registry,
            exporters: Vec::new(),
            budget,
        }
    }

    /// The exporters `config` asks for, for `identity`.
    pub fn from_config(
        config: &ExportConfig,
        identity: Identity,
        registry: Arc<MetricsRegistry>,
    ) -> Result<Self, ExportError> {
        let (exporters, mut errors) = Self::from_config_lenient(config, &identity, registry);
        match errors.drain(..).next() {
            Some(error) => Err(error),
            None => Ok(exporters),
        }
    }

    /// The exporters of `config` that can be built, and why the others
    /// cannot: one bad URL does not cost the other destinations (the Lambda
    /// extension's fail-open setup).
    pub fn from_config_lenient(
        config: &ExportConfig,
        identity: &Identity,
        registry: Arc<MetricsRegistry>,
    ) -> (Self, Vec<ExportError>) {
        let mut exporters = Self::new(registry, Duration::from_millis(config.flush_budget_ms));
        let mut errors = Vec::new();
        if let Some(pushgateway) = &config.pushgateway {
            match PushgatewayExporter::new(pushgateway, identity) {
                Ok(exporter) => exporters = exporters.with(exporter),
                Err(error) => errors.push(error),
            }
        }
        if let Some(remote_write) = &config.remote_write {
            match RemoteWriteExporter::new(remote_write, identity) {
                Ok(exporter) => exporters = exporters.with(exporter),
                Err(error) => errors.push(error),
            }
        }
        if let Some(emf) = &config.emf {
            exporters = exporters.with(EmfExporter::stdout(emf.clone()));
        }
        (exporters, errors)
    }

    /// Adds an exporter.
    pub fn with(mut self, exporter: impl Exporter + 'static) -> Self {
        self.exporters.push(Box::new(exporter));
        self
    }

    /// The registry the exporters read.
    pub fn registry(&self) -> &Arc<MetricsRegistry> {
        &self.registry
    }

    /// The budget of one flush.
    pub fn budget(&self) -> Duration {
        self.budget
    }

    /// Publishes the registry through every exporter within the budget.
    pub fn flush(&mut self) -> FlushReport {
        let deadline = Instant::now() + self.budget;
        self.run(deadline, false)
    }

    /// The final flush of an execution environment, by `deadline` (Lambda's
    /// `deadlineMs` minus a margin): exporters publish and clean up (remote
    /// write sends stale markers, the Pushgateway group is deleted if asked).
    pub fn shutdown(&mut self, deadline: Instant) -> FlushReport {
        self.run(deadline, true)
    }

    fn run(&mut self, deadline: Instant, shutdown: bool) -> FlushReport {
        let started = Instant::now();
        let snapshot = self.registry.snapshot();
        let outcomes: Vec<ExporterOutcome> = match self.exporters.as_mut_slice() {
            [] => Vec::new(),
            // One exporter needs no thread.
            [only] => vec![run_one(only.as_mut(), &snapshot, deadline, shutdown)],
            many => std::thread::scope(|scope| {
                let snapshot = &snapshot;
                let running: Vec<_> = many
                    .iter_mut()
                    .map(|exporter| {
                        let name = exporter.name();
                        let handle = scope.spawn(move || {
                            run_one(exporter.as_mut(), snapshot, deadline, shutdown)
                        });
                        (name, handle)
                    })
                    .collect();
                running
                    .into_iter()
                    .map(|(name, handle)| {
                        handle.join().unwrap_or_else(|_| ExporterOutcome {
                            exporter: name,
                            duration: started.elapsed(),
                            result: Err(ExportError::Panicked),
                        })
                    })
                    .collect()
            }),
        };
        for outcome in &outcomes {
            self.record(outcome);
        }
        FlushReport {
            outcomes,
            duration: started.elapsed(),
        }
    }

    fn record(&self, outcome: &ExporterOutcome) {
        let exporter = [("exporter", outcome.exporter)];
        let registry = &self.registry;
        registry.record(&catalogue::PYROMETER_FLUSHES_TOTAL, &exporter, 1.0);
        registry.record(
            &catalogue::PYROMETER_FLUSH_DURATION_SECONDS,
            &exporter,
            outcome.duration.as_secs_f64(),
        );
        match &outcome.result {
            Ok(stats) => {
                registry.record(
                    &catalogue::PYROMETER_EXPORTED_SERIES,
                    &exporter,
                    stats.series as f64,
                );
                if stats.retries > 0 {
                    registry.record(
                        &catalogue::PYROMETER_EXPORT_RETRIES_TOTAL,
                        &exporter,
                        f64::from(stats.retries),
                    );
                }
            }
            Err(error) => {
                if let ExportError::Unavailable { attempts, .. } = error
                    && *attempts > 1
                {
                    registry.record(
                        &catalogue::PYROMETER_EXPORT_RETRIES_TOTAL,
                        &exporter,
                        f64::from(attempts - 1),
                    );
                }
                registry.record(
                    &catalogue::PYROMETER_FLUSH_FAILURES_TOTAL,
                    &[("exporter", outcome.exporter), ("reason", error.reason())],
                    1.0,
                );
                tracing::warn!(exporter = outcome.exporter, reason = error.reason(), %error, "export failed");
            }
        }
    }
}

fn run_one(
    exporter: &mut dyn Exporter,
    snapshot: &Snapshot,
    deadline: Instant,
    shutdown: bool,
) -> ExporterOutcome {
    let started = Instant::now();
    let result = if shutdown {
        exporter.shutdown(snapshot, deadline)
    } else {
        exporter.export(snapshot, deadline)
    };
    ExporterOutcome {
        exporter: exporter.name(),
        duration: started.elapsed(),
        result,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Scripted {
        name: &'static str,
        fail: bool,
        seen: Arc<std::sync::Mutex<Vec<usize>>>,
    }

    impl Exporter for Scripted {
        fn name(&self) -> &'static str {
            self.name
        }
        fn export(
            &mut self,
            snapshot: &Snapshot,
            _deadline: Instant,
        ) -> Result<ExportStats, ExportError> {
            if let Ok(mut seen) = self.seen.lock() {
                seen.push(snapshot.series_count());
            }
            if self.fail {
                Err(ExportError::Connect("refused".into()))
            } else {
                Ok(ExportStats {
                    series: snapshot.series_count(),
                    ..Default::default()
                })
            }
        }
    }

    fn identity() -> Identity {
        Identity {
            job: "j".into(),
            function_name: "f".into(),
            function_version: "1".into(),
            instance: "i".into(),
        }
    }

    #[test]
    fn a_failure_is_counted_and_does_not_stop_the_others() {
        let registry = Arc::new(MetricsRegistry::new(&identity()));
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut exporters = Exporters::new(Arc::clone(&registry), Duration::from_secs(1))
            .with(Scripted {
                name: "good",
                fail: false,
                seen: Arc::clone(&seen),
            })
            .with(Scripted {
                name: "bad",
                fail: true,
                seen: Arc::clone(&seen),
            });
        let first = exporters.flush();
        assert!(!first.all_succeeded());
        assert!(first.outcome("good").is_some_and(|o| o.result.is_ok()));
        let _ = exporters.flush();
        let snap = registry.snapshot();
        assert_eq!(
            snap.value("pyrometer_flushes_total", &[("exporter", "good")]),
            Some(2.0)
        );
        assert_eq!(
            snap.value(
                "pyrometer_flush_failures_total",
                &[("exporter", "bad"), ("reason", "connect")]
            ),
            Some(2.0)
        );
        assert_eq!(
            snap.value(
                "pyrometer_flush_duration_seconds_count",
                &[("exporter", "bad")]
            ),
            Some(2.0)
        );
        assert_eq!(seen.lock().map(|s| s.len()).unwrap_or(0), 4);
    }
}
