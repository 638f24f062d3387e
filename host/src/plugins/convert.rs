//! Between the model (rows, `Option`s) and the WIT contract (columns, NaN).
//!
//! A batch is converted once per flush and handed to every plugin; outputs are
//! converted back after validation.

use super::bindings::pyrometer::plugin::types as wit;
use crate::model::{
    Batch, Finding, ImportProfile, MetricKind, Origin, PluginMetric, Severity, Status,
};

/// Converts a batch into the columnar form plugins receive.
pub fn batch_to_wit(batch: &Batch) -> wit::Batch {
    wit::Batch {
        function: wit::FunctionInfo {
            name: batch.function.name.clone(),
            version: batch.function.version.clone(),
            runtime: batch.function.runtime.clone(),
            memory_size_mb: batch.function.memory_size_mb,
        },
        invocations: invocations_to_wit(batch),
        imports: batch.imports.as_ref().map(imports_to_wit),
    }
}

fn invocations_to_wit(batch: &Batch) -> wit::Invocations {
    let rows = &batch.invocations;
    let col = |f: &dyn Fn(&crate::model::Invocation) -> Option<f64>| -> Vec<f64> {
        rows.iter().map(|r| f(r).unwrap_or(f64::NAN)).collect()
    };
    wit::Invocations {
        request_id: rows.iter().map(|r| r.request_id.clone()).collect(),
        start_unix_ms: col(&|r| Some(r.start_unix_ms)),
        cold_start: rows.iter().map(|r| r.cold_start).collect(),
        status: rows.iter().map(|r| status_to_wit(r.status)).collect(),
        duration_ms: col(&|r| Some(r.duration_ms)),
        billed_duration_ms: col(&|r| r.billed_duration_ms),
        init_duration_ms: col(&|r| r.init_duration_ms),
        max_memory_used_mb: col(&|r| r.max_memory_used_mb),
        memory_size_mb: col(&|r| r.memory_size_mb),
        rss_bytes: col(&|r| r.rss_bytes),
        cpu_user_ms: col(&|r| r.cpu_user_ms),
        cpu_system_ms: col(&|r| r.cpu_system_ms),
        gc_collections: rows.iter().map(|r| r.gc_collections).collect(),
        gc_pause_ms: col(&|r| r.gc_pause_ms),
        allocated_blocks: col(&|r| r.allocated_blocks),
        post_runtime_ms: col(&|r| r.post_runtime_ms),
    }
}

fn status_to_wit(s: Status) -> wit::Status {
    match s {
        Status::Success => wit::Status::Success,
        Status::Error => wit::Status::Error,
        Status::Timeout => wit::Status::Timeout,
        Status::OutOfMemory => wit::Status::OutOfMemory,
        Status::Failure => wit::Status::Failure,
    }
}

fn imports_to_wit(p: &ImportProfile) -> wit::ImportProfile {
    let m = &p.modules;
    wit::ImportProfile {
        module: m.iter().map(|x| x.module.clone()).collect(),
        parent: m
            .iter()
            .map(|x| x.parent.and_then(|i| i32::try_from(i).ok()).unwrap_or(-1))
            .collect(),
        self_us: m.iter().map(|x| x.self_us).collect(),
        cumulative_us: m.iter().map(|x| x.cumulative_us).collect(),
        origin: m.iter().map(|x| origin_to_wit(x.origin)).collect(),
    }
}

fn origin_to_wit(o: Origin) -> wit::Origin {
    match o {
        Origin::Builtin => wit::Origin::Builtin,
        Origin::Stdlib => wit::Origin::Stdlib,
        Origin::SitePackages => wit::Origin::SitePackages,
        Origin::Layer => wit::Origin::Layer,
        Origin::FunctionCode => wit::Origin::FunctionCode,
    }
}

/// Converts one plugin metric from the WIT form, attributing it to `plugin`.
pub fn metric_from_wit(plugin: &str, m: wit::Metric) -> PluginMetric {
    PluginMetric {
        plugin: plugin.to_owned(),
        name: m.name,
        kind: match m.kind {
            wit::MetricKind::Counter => MetricKind::Counter,
            wit::MetricKind::Gauge => MetricKind::Gauge,
            wit::MetricKind::Histogram => MetricKind::Histogram,
        },
        help: m.help,
        labels: m.labels,
        value: m.value,
    }
}

/// Converts one finding from the WIT form, attributing it to `plugin`.
pub fn finding_from_wit(plugin: &str, f: wit::Finding) -> Finding {
    Finding {
        plugin: plugin.to_owned(),
        rule: f.rule,
        severity: match f.severity {
            wit::Severity::Info => Severity::Info,
            wit::Severity::Warning => Severity::Warning,
            wit::Severity::Critical => Severity::Critical,
        },
        message: f.message,
        labels: f.labels,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImportedModule, Invocation};

    #[test]
    fn missing_figures_become_nan_and_parents_minus_one() {
        let batch = Batch {
            invocations: vec![Invocation {
                duration_ms: 3.0,
                billed_duration_ms: None,
                ..Invocation::default()
            }],
            imports: Some(ImportProfile {
                modules: vec![
                    ImportedModule {
                        module: "a".into(),
                        ..ImportedModule::default()
                    },
                    ImportedModule {
                        module: "a.b".into(),
                        parent: Some(0),
                        ..ImportedModule::default()
                    },
                ],
            }),
            ..Batch::default()
        };
        let w = batch_to_wit(&batch);
        assert_eq!(w.invocations.duration_ms, vec![3.0]);
        assert!(w.invocations.billed_duration_ms[0].is_nan());
        assert_eq!(w.imports.map(|i| i.parent), Some(vec![-1, 0]));
    }
}
