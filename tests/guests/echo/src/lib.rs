//! Test guest: summarizes every column of the batch as gauges, so a host test
//! can check that the host converted its model to the WIT faithfully. Cheap
//! (one pass per column) and stateless, it is also the minimal plugin for
//! benchmarks.
//!
//! Every metric is a gauge labelled `function` = the function name:
//!
//! | metric | value |
//! |---|---|
//! | `echo_invocations` | number of invocations |
//! | `echo_request_id_bytes` | total bytes of the request ids |
//! | `echo_cold_starts` | invocations with `cold-start` true |
//! | `echo_status{status}` | invocations per status (all five, zeros included) |
//! | `echo_<column>_sum_<unit>` | sum of an `f64` column, NaN skipped |
//! | `echo_nan_<column>` | NaN count of an `f64` column |
//! | `echo_gc_collections_sum` | sum of `gc-collections` |
//! | `echo_function_memory_size_mb` | `function.memory-size-mb` |
//! | `echo_function_info{version,runtime}` | 1 |
//! | `echo_imports` | modules in the import profile, -1 without one |
//! | `echo_import_module_bytes`, `echo_import_self_sum_us`, `echo_import_cumulative_sum_us`, `echo_import_top_level`, `echo_import_parent_sum`, `echo_import_origin{origin}` | only with a profile: total bytes of module names, sums of the time columns, modules with parent -1, sum of the parent column, modules per origin |
//!
//! The `f64` columns and their metric stems: `start-unix-ms` → `start` (ms),
//! `duration-ms` → `duration` (ms), `billed-duration-ms` → `billed` (ms),
//! `init-duration-ms` → `init` (ms), `max-memory-used-mb` → `max_memory_used` (mb),
//! `memory-size-mb` → `memory_size` (mb), `rss-bytes` → `rss` (bytes),
//! `cpu-user-ms` → `cpu_user` (ms), `cpu-system-ms` → `cpu_system` (ms),
//! `gc-pause-ms` → `gc_pause` (ms), `allocated-blocks` → `allocated_blocks`
//! (no unit: `echo_allocated_blocks_sum`), `post-runtime-ms` → `post_runtime` (ms).
//! So `echo_duration_sum_ms` is the total duration and `echo_nan_billed` the
//! number of invocations without a billed duration.

use pyrometer::plugin::types::{Metric, MetricKind, Origin, Status};

wit_bindgen::generate!({ path: "../../../wit", world: "analyzer" });

struct Echo;

/// Collects gauges that all carry the `function` label.
struct Gauges {
    function: String,
    metrics: Vec<Metric>,
}

impl Gauges {
    fn push(&mut self, name: &str, value: f64) {
        self.push_labelled(name, value, &[]);
    }

    fn push_labelled(&mut self, name: &str, value: f64, labels: &[(&str, &str)]) {
        let mut all = vec![("function".to_owned(), self.function.clone())];
        all.extend(
            labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        );
        self.metrics.push(Metric {
            name: name.to_owned(),
            kind: MetricKind::Gauge,
            help: format!("echo: {name}"),
            labels: all,
            value,
        });
    }

    /// `echo_<stem>_sum[_<unit>]` and `echo_nan_<stem>` for one column.
    fn column(&mut self, stem: &str, unit: &str, values: &[f64]) {
        let (mut sum, mut nan) = (0.0, 0.0);
        for &v in values {
            if v.is_nan() {
                nan += 1.0;
            } else {
                sum += v;
            }
        }
        let sum_name = if unit.is_empty() {
            format!("echo_{stem}_sum")
        } else {
            format!("echo_{stem}_sum_{unit}")
        };
        self.push(&sum_name, sum);
        self.push(&format!("echo_nan_{stem}"), nan);
    }
}

impl Guest for Echo {
    fn configure(_config: Vec<(String, String)>) -> Result<(), String> {
        Ok(())
    }

    fn analyze(batch: Batch) -> Result<Output, String> {
        let i = &batch.invocations;
        let mut g = Gauges {
            function: batch.function.name.clone(),
            metrics: Vec::with_capacity(48),
        };
        g.push("echo_invocations", i.request_id.len() as f64);
        g.push(
            "echo_request_id_bytes",
            i.request_id.iter().map(String::len).sum::<usize>() as f64,
        );
        g.push(
            "echo_cold_starts",
            i.cold_start.iter().filter(|c| **c).count() as f64,
        );
        let mut statuses = [0usize; 5];
        for status in &i.status {
            statuses[*status as usize] += 1;
        }
        for (status, count) in [
            (Status::Success, "success"),
            (Status::Error, "error"),
            (Status::Timeout, "timeout"),
            (Status::OutOfMemory, "out-of-memory"),
            (Status::Failure, "failure"),
        ]
        .iter()
        .map(|(s, name)| (*name, statuses[*s as usize]))
        {
            g.push_labelled("echo_status", count as f64, &[("status", status)]);
        }
        g.column("start", "ms", &i.start_unix_ms);
        g.column("duration", "ms", &i.duration_ms);
        g.column("billed", "ms", &i.billed_duration_ms);
        g.column("init", "ms", &i.init_duration_ms);
        g.column("max_memory_used", "mb", &i.max_memory_used_mb);
        g.column("memory_size", "mb", &i.memory_size_mb);
        g.column("rss", "bytes", &i.rss_bytes);
        g.column("cpu_user", "ms", &i.cpu_user_ms);
        g.column("cpu_system", "ms", &i.cpu_system_ms);
        g.column("gc_pause", "ms", &i.gc_pause_ms);
        g.column("allocated_blocks", "", &i.allocated_blocks);
        g.column("post_runtime", "ms", &i.post_runtime_ms);
        g.push(
            "echo_gc_collections_sum",
            i.gc_collections.iter().map(|c| f64::from(*c)).sum(),
        );
        g.push(
            "echo_function_memory_size_mb",
            f64::from(batch.function.memory_size_mb),
        );
        let (version, runtime) = (
            batch.function.version.clone(),
            batch.function.runtime.clone(),
        );
        g.push_labelled(
            "echo_function_info",
            1.0,
            &[("version", &version), ("runtime", &runtime)],
        );

        match &batch.imports {
            None => g.push("echo_imports", -1.0),
            Some(p) => {
                g.push("echo_imports", p.module.len() as f64);
                g.push(
                    "echo_import_module_bytes",
                    p.module.iter().map(String::len).sum::<usize>() as f64,
                );
                g.push(
                    "echo_import_self_sum_us",
                    p.self_us.iter().sum::<u64>() as f64,
                );
                g.push(
                    "echo_import_cumulative_sum_us",
                    p.cumulative_us.iter().sum::<u64>() as f64,
                );
                g.push(
                    "echo_import_top_level",
                    p.parent.iter().filter(|p| **p == -1).count() as f64,
                );
                g.push(
                    "echo_import_parent_sum",
                    p.parent.iter().map(|p| f64::from(*p)).sum(),
                );
                let mut origins = [0usize; 5];
                for origin in &p.origin {
                    origins[*origin as usize] += 1;
                }
                for (origin, name) in [
                    (Origin::Builtin, "builtin"),
                    (Origin::Stdlib, "stdlib"),
                    (Origin::SitePackages, "site-packages"),
                    (Origin::Layer, "layer"),
                    (Origin::FunctionCode, "function-code"),
                ] {
                    g.push_labelled(
                        "echo_import_origin",
                        origins[origin as usize] as f64,
                        &[("origin", name)],
                    );
                }
            }
        }
        Ok(Output {
            metrics: g.metrics,
            findings: Vec::new(),
        })
    }
}

export!(Echo);
