//! The metric catalogue: every metric pyrometer itself emits, described once.
//!
//! Each [`MetricSpec`] gives a name, a kind, a unit, the HELP text, the labels
//! it carries (besides `function_name` and `function_version`, which every
//! series has) and, for histograms, fixed bucket bounds. The registry describes
//! every entry up front and configures classic histograms with these buckets,
//! so every environment and every version of a function exposes the same
//! buckets and they aggregate.
//!
//! Names follow Prometheus conventions (`promtool check metrics` clean): base
//! units, `_total` on counters only; function metrics after the OpenTelemetry
//! FaaS conventions, Python runtime and process metrics as `prometheus_client`
//! names them, pyrometer's own under `pyrometer_`. The README table is
//! generated from [`CATALOGUE`] by [`markdown_table`] and a test keeps the two
//! in step.

use crate::model::MetricKind;

/// The unit a metric's values are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Seconds.
    Seconds,
    /// Bytes.
    Bytes,
    /// A count of events or things.
    Count,
    /// No unit: an info metric (value 1) or a plain number.
    None,
}

impl Unit {
    /// The unit as written in the README table.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Seconds => "seconds",
            Self::Bytes => "bytes",
            Self::Count => "count",
            Self::None => "none",
        }
    }
}

/// The description of one metric family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSpec {
    /// Prometheus metric (family) name.
    pub name: &'static str,
    /// Counter, gauge or histogram.
    pub kind: MetricKind,
    /// Unit of the values.
    pub unit: Unit,
    /// HELP text.
    pub help: &'static str,
    /// Labels beyond `function_name` and `function_version`.
    pub labels: &'static [&'static str],
    /// Upper bounds of the classic histogram buckets (histograms only).
    pub buckets: &'static [f64],
}

impl MetricSpec {
    /// True when increments can be fractional (a counter in seconds), which the
    /// registry keeps as `f64` rather than in the recorder's integer counters.
    pub fn is_fractional_counter(&self) -> bool {
        self.kind == MetricKind::Counter && self.unit != Unit::Count
    }
}

/// Invocation and billed durations: 1 ms to Lambda's 15 minute limit.
pub const INVOKE_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    300.0, 900.0,
];
/// Cold-start phases (init, imports): 5 ms to Lambda's 10 s init limit and beyond.
pub const INIT_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0,
];
/// Short phases (post-runtime work, GC pauses): 100 µs to 5 s.
pub const SHORT_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];
/// HTTP request durations: OpenTelemetry's `http.server.request.duration`
/// advice, 5 ms to 10 s. The probe's middleware aggregates into these bounds.
pub const HTTP_DURATION_BUCKETS_SECONDS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// Memory: Lambda's memory sizes, 32 MiB to 10 GiB.
pub const MEMORY_BUCKETS_BYTES: &[f64] = &[
    33_554_432.0,
    67_108_864.0,
    134_217_728.0,
    268_435_456.0,
    536_870_912.0,
    1_073_741_824.0,
    2_147_483_648.0,
    4_294_967_296.0,
    8_589_934_592.0,
    10_737_418_240.0,
];
/// Buckets for plugin histograms, which come without their own: Prometheus's defaults.
pub const DEFAULT_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const fn counter(
    name: &'static str,
    unit: Unit,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricSpec {
    MetricSpec {
        name,
        kind: MetricKind::Counter,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

const fn gauge(
    name: &'static str,
    unit: Unit,
    help: &'static str,
    labels: &'static [&'static str],
) -> MetricSpec {
    MetricSpec {
        name,
        kind: MetricKind::Gauge,
        unit,
        help,
        labels,
        buckets: &[],
    }
}

const fn histogram(
    name: &'static str,
    unit: Unit,
    help: &'static str,
    labels: &'static [&'static str],
    buckets: &'static [f64],
) -> MetricSpec {
    MetricSpec {
        name,
        kind: MetricKind::Histogram,
        unit,
        help,
        labels,
        buckets,
    }
}

// Function (OpenTelemetry FaaS conventions).

/// Invocations, by cold start and outcome.
pub const FAAS_INVOCATIONS_TOTAL: MetricSpec = counter(
    "faas_invocations_total",
    Unit::Count,
    "Invocations of the function, by cold start and outcome.",
    &["cold_start", "status"],
);
/// Cold starts.
pub const FAAS_COLDSTARTS_TOTAL: MetricSpec = counter(
    "faas_coldstarts_total",
    Unit::Count,
    "Invocations that started a new execution environment.",
    &[],
);
/// Invocations that did not succeed.
pub const FAAS_ERRORS_TOTAL: MetricSpec = counter(
    "faas_errors_total",
    Unit::Count,
    "Invocations that did not succeed (error, timeout, out-of-memory or failure), by outcome.",
    &["status"],
);
/// Invocations that timed out.
pub const FAAS_TIMEOUTS_TOTAL: MetricSpec = counter(
    "faas_timeouts_total",
    Unit::Count,
    "Invocations that ran past the function's timeout.",
    &[],
);
/// Invocations that ran out of memory.
pub const FAAS_OUT_OF_MEMORY_TOTAL: MetricSpec = counter(
    "faas_out_of_memory_total",
    Unit::Count,
    "Invocations that ran out of memory.",
    &[],
);
/// Cold-start init duration.
pub const FAAS_INIT_DURATION_SECONDS: MetricSpec = histogram(
    "faas_init_duration_seconds",
    Unit::Seconds,
    "Duration of the init phase of a cold start.",
    &[],
    INIT_DURATION_BUCKETS_SECONDS,
);
/// Handler duration.
pub const FAAS_INVOKE_DURATION_SECONDS: MetricSpec = histogram(
    "faas_invoke_duration_seconds",
    Unit::Seconds,
    "Duration of the handler, by cold start and outcome.",
    &["cold_start", "status"],
    INVOKE_DURATION_BUCKETS_SECONDS,
);
/// Billed duration.
pub const FAAS_BILLED_DURATION_SECONDS: MetricSpec = histogram(
    "faas_billed_duration_seconds",
    Unit::Seconds,
    "Billed duration of an invocation, from the platform report.",
    &[],
    INVOKE_DURATION_BUCKETS_SECONDS,
);
/// Post-runtime duration.
pub const FAAS_POST_RUNTIME_DURATION_SECONDS: MetricSpec = histogram(
    "faas_post_runtime_duration_seconds",
    Unit::Seconds,
    "Time between the runtime finishing and the platform report (extension work billed to the invocation).",
    &[],
    SHORT_DURATION_BUCKETS_SECONDS,
);
/// Peak memory per invocation.
pub const FAAS_MEM_USAGE_BYTES: MetricSpec = histogram(
    "faas_mem_usage_bytes",
    Unit::Bytes,
    "Maximum memory used by an invocation, from the platform report.",
    &[],
    MEMORY_BUCKETS_BYTES,
);
/// Configured memory.
pub const FAAS_MEM_LIMIT_BYTES: MetricSpec = gauge(
    "faas_mem_limit_bytes",
    Unit::Bytes,
    "Memory configured for the function.",
    &[],
);

// Python runtime (prometheus_client names).

/// Garbage collections.
pub const PYTHON_GC_COLLECTIONS_TOTAL: MetricSpec = counter(
    "python_gc_collections_total",
    Unit::Count,
    "Garbage collections during invocations, all generations.",
    &[],
);
/// GC pause per invocation.
pub const PYTHON_GC_PAUSE_SECONDS: MetricSpec = histogram(
    "python_gc_pause_seconds",
    Unit::Seconds,
    "Total garbage-collection pause during one invocation.",
    &[],
    SHORT_DURATION_BUCKETS_SECONDS,
);
/// Allocated blocks.
pub const PYTHON_ALLOCATED_BLOCKS: MetricSpec = gauge(
    "python_allocated_blocks",
    Unit::Count,
    "Memory blocks allocated by the interpreter (sys.getallocatedblocks()) at the end of the last invocation.",
    &[],
);
/// Runtime information.
pub const PYTHON_INFO: MetricSpec = gauge(
    "python_info",
    Unit::None,
    "Python runtime information; the value is always 1.",
    &["runtime"],
);
/// Whole import phase of a cold start.
pub const PYTHON_IMPORT_DURATION_SECONDS: MetricSpec = histogram(
    "python_import_duration_seconds",
    Unit::Seconds,
    "Time spent importing modules during a cold start (all top-level imports).",
    &[],
    INIT_DURATION_BUCKETS_SECONDS,
);
/// Top-N slowest modules.
pub const PYTHON_IMPORT_MODULE_DURATION_SECONDS: MetricSpec = gauge(
    "python_import_module_duration_seconds",
    Unit::Seconds,
    "Cumulative import time of the slowest modules of the last cold start (top N only).",
    &["module", "origin"],
);

/// Start-up of a long-running service.
pub const PYTHON_STARTUP_DURATION_SECONDS: MetricSpec = gauge(
    "python_startup_duration_seconds",
    Unit::Seconds,
    "Process start to ready (its server started taking requests, else its first request served, or pyrometer_probe.mark_ready()) of a service run by `pyrometer run`.",
    &[],
);
/// asyncio event-loop lag.
pub const PYTHON_ASYNCIO_LOOP_LAG_SECONDS: MetricSpec = gauge(
    "python_asyncio_loop_lag_seconds",
    Unit::Seconds,
    "Worst asyncio event-loop lag in the last window, over all processes (a blocking call in a coroutine shows here).",
    &[],
);
/// asyncio pending tasks.
pub const PYTHON_ASYNCIO_PENDING_TASKS: MetricSpec = gauge(
    "python_asyncio_pending_tasks",
    Unit::Count,
    "Pending asyncio tasks at the last check, summed over processes.",
    &[],
);

// HTTP server (OpenTelemetry HTTP semantic conventions).

/// Request latency by route template.
pub const HTTP_SERVER_REQUEST_DURATION_SECONDS: MetricSpec = histogram(
    "http_server_request_duration_seconds",
    Unit::Seconds,
    "Duration of HTTP requests served, by method, route template (never a raw path) and status code.",
    &[
        "http_request_method",
        "http_route",
        "http_response_status_code",
    ],
    HTTP_DURATION_BUCKETS_SECONDS,
);
/// Requests in progress.
pub const HTTP_SERVER_ACTIVE_REQUESTS: MetricSpec = gauge(
    "http_server_active_requests",
    Unit::Count,
    "HTTP requests in progress at the end of the last window, summed over processes.",
    &[],
);

// Process (prometheus_client / node conventions).

/// Resident memory.
pub const PROCESS_RESIDENT_MEMORY_BYTES: MetricSpec = gauge(
    "process_resident_memory_bytes",
    Unit::Bytes,
    "Resident memory of the measured process (with its children under `pyrometer run`) at the last sample.",
    &[],
);
/// Virtual memory.
pub const PROCESS_VIRTUAL_MEMORY_BYTES: MetricSpec = gauge(
    "process_virtual_memory_bytes",
    Unit::Bytes,
    "Virtual memory size of the measured process (with its children under `pyrometer run`).",
    &[],
);
/// CPU time.
pub const PROCESS_CPU_SECONDS_TOTAL: MetricSpec = counter(
    "process_cpu_seconds_total",
    Unit::Seconds,
    "User and system CPU time of the measured process: during invocations in Lambda, since start (with children) under `pyrometer run`.",
    &[],
);
/// Open file descriptors.
pub const PROCESS_OPEN_FDS: MetricSpec = gauge(
    "process_open_fds",
    Unit::Count,
    "Open file descriptors of the measured process (with its children under `pyrometer run`).",
    &[],
);
/// Threads.
pub const PROCESS_THREADS: MetricSpec = gauge(
    "process_threads",
    Unit::Count,
    "Threads of the measured process (with its children under `pyrometer run`).",
    &[],
);

// pyrometer itself.

/// pyrometer's own memory.
pub const PYROMETER_RESIDENT_MEMORY_BYTES: MetricSpec = gauge(
    "pyrometer_resident_memory_bytes",
    Unit::Bytes,
    "Resident memory of pyrometer itself.",
    &[],
);
/// Worker processes replaced.
pub const PYROMETER_WORKER_RESTARTS_TOTAL: MetricSpec = counter(
    "pyrometer_worker_restarts_total",
    Unit::Count,
    "Child processes of a service that exited and were replaced by a new child of the same parent (a gunicorn worker that died).",
    &[],
);
/// Records dropped before the collector.
pub const PYROMETER_DROPPED_RECORDS_TOTAL: MetricSpec = counter(
    "pyrometer_dropped_records_total",
    Unit::Count,
    "Records dropped before they reached the collector, by source.",
    &["source"],
);
/// Flush attempts.
pub const PYROMETER_FLUSHES_TOTAL: MetricSpec = counter(
    "pyrometer_flushes_total",
    Unit::Count,
    "Flushes attempted, by exporter.",
    &["exporter"],
);
/// Flush failures.
pub const PYROMETER_FLUSH_FAILURES_TOTAL: MetricSpec = counter(
    "pyrometer_flush_failures_total",
    Unit::Count,
    "Flushes that failed, by exporter and reason.",
    &["exporter", "reason"],
);
/// Flush duration.
pub const PYROMETER_FLUSH_DURATION_SECONDS: MetricSpec = histogram(
    "pyrometer_flush_duration_seconds",
    Unit::Seconds,
    "Duration of one exporter's part of a flush.",
    &["exporter"],
    SHORT_DURATION_BUCKETS_SECONDS,
);
/// Export retries.
pub const PYROMETER_EXPORT_RETRIES_TOTAL: MetricSpec = counter(
    "pyrometer_export_retries_total",
    Unit::Count,
    "Requests repeated after a 5xx or 429 answer, by exporter.",
    &["exporter"],
);
/// Series in the last export.
pub const PYROMETER_EXPORTED_SERIES: MetricSpec = gauge(
    "pyrometer_exported_series",
    Unit::Count,
    "Series sent by the last successful flush, by exporter.",
    &["exporter"],
);
/// Plugin calls.
pub const PYROMETER_PLUGIN_CALLS_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_calls_total",
    Unit::Count,
    "Calls into an analysis plugin.",
    &["plugin"],
);
/// Plugin failures.
pub const PYROMETER_PLUGIN_FAILURES_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_failures_total",
    Unit::Count,
    "Plugin calls that failed, by plugin and kind of failure.",
    &["plugin", "kind"],
);
/// Plugin call latency.
pub const PYROMETER_PLUGIN_CALL_DURATION_SECONDS: MetricSpec = histogram(
    "pyrometer_plugin_call_duration_seconds",
    Unit::Seconds,
    "Duration of one plugin call.",
    &["plugin"],
    SHORT_DURATION_BUCKETS_SECONDS,
);
/// Plugin rows in and out.
pub const PYROMETER_PLUGIN_ROWS_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_rows_total",
    Unit::Count,
    "Rows passed to (in) and returned by (out) a plugin.",
    &["plugin", "direction"],
);
/// Plugin instances created.
pub const PYROMETER_PLUGIN_INSTANTIATIONS_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_instantiations_total",
    Unit::Count,
    "Fresh plugin instances created (the first, and one after every trap).",
    &["plugin"],
);
/// Plugins disabled.
pub const PYROMETER_PLUGIN_DISABLED: MetricSpec = gauge(
    "pyrometer_plugin_disabled",
    Unit::None,
    "1 while a plugin is disabled by its circuit breaker or a rejected config, else 0.",
    &["plugin"],
);
/// Plugin stdout/stderr dropped.
pub const PYROMETER_PLUGIN_STDIO_DROPPED_BYTES_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_stdio_dropped_bytes_total",
    Unit::Bytes,
    "Plugin stdout/stderr bytes beyond the capture bound, discarded, by stream.",
    &["plugin", "stream"],
);
/// Plugin log lines dropped.
pub const PYROMETER_PLUGIN_LOG_LINES_DROPPED_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_log_lines_dropped_total",
    Unit::Count,
    "Plugin log lines beyond the per-call bound, discarded.",
    &["plugin"],
);
/// Plugin metrics refused by the registry.
pub const PYROMETER_PLUGIN_METRICS_REJECTED_TOTAL: MetricSpec = counter(
    "pyrometer_plugin_metrics_rejected_total",
    Unit::Count,
    "Plugin metrics refused by the registry (name of a built-in metric, or a kind clash), by reason.",
    &["plugin", "reason"],
);
/// Findings.
pub const PYROMETER_FINDINGS_TOTAL: MetricSpec = counter(
    "pyrometer_findings_total",
    Unit::Count,
    "Findings reported, by plugin, rule and severity.",
    &["plugin", "rule", "severity"],
);

/// Every metric pyrometer emits itself, in README order.
pub const CATALOGUE: &[MetricSpec] = &[
    FAAS_INVOCATIONS_TOTAL,
    FAAS_COLDSTARTS_TOTAL,
    FAAS_ERRORS_TOTAL,
    FAAS_TIMEOUTS_TOTAL,
    FAAS_OUT_OF_MEMORY_TOTAL,
    FAAS_INIT_DURATION_SECONDS,
    FAAS_INVOKE_DURATION_SECONDS,
    FAAS_BILLED_DURATION_SECONDS,
    FAAS_POST_RUNTIME_DURATION_SECONDS,
    FAAS_MEM_USAGE_BYTES,
    FAAS_MEM_LIMIT_BYTES,
    PYTHON_GC_COLLECTIONS_TOTAL,
    PYTHON_GC_PAUSE_SECONDS,
    PYTHON_ALLOCATED_BLOCKS,
    PYTHON_INFO,
    PYTHON_IMPORT_DURATION_SECONDS,
    PYTHON_IMPORT_MODULE_DURATION_SECONDS,
    PYTHON_STARTUP_DURATION_SECONDS,
    PYTHON_ASYNCIO_LOOP_LAG_SECONDS,
    PYTHON_ASYNCIO_PENDING_TASKS,
    HTTP_SERVER_REQUEST_DURATION_SECONDS,
    HTTP_SERVER_ACTIVE_REQUESTS,
    PROCESS_RESIDENT_MEMORY_BYTES,
    PROCESS_VIRTUAL_MEMORY_BYTES,
    PROCESS_CPU_SECONDS_TOTAL,
    PROCESS_OPEN_FDS,
    PROCESS_THREADS,
    PYROMETER_RESIDENT_MEMORY_BYTES,
    PYROMETER_WORKER_RESTARTS_TOTAL,
    PYROMETER_DROPPED_RECORDS_TOTAL,
    PYROMETER_FLUSHES_TOTAL,
    PYROMETER_FLUSH_FAILURES_TOTAL,
    PYROMETER_FLUSH_DURATION_SECONDS,
    PYROMETER_EXPORT_RETRIES_TOTAL,
    PYROMETER_EXPORTED_SERIES,
    PYROMETER_PLUGIN_CALLS_TOTAL,
    PYROMETER_PLUGIN_FAILURES_TOTAL,
    PYROMETER_PLUGIN_CALL_DURATION_SECONDS,
    PYROMETER_PLUGIN_ROWS_TOTAL,
    PYROMETER_PLUGIN_INSTANTIATIONS_TOTAL,
    PYROMETER_PLUGIN_DISABLED,
    PYROMETER_PLUGIN_STDIO_DROPPED_BYTES_TOTAL,
    PYROMETER_PLUGIN_LOG_LINES_DROPPED_TOTAL,
    PYROMETER_PLUGIN_METRICS_REJECTED_TOTAL,
    PYROMETER_FINDINGS_TOTAL,
];

/// Re-buckets histogram counts: `counts` holds observations per bucket of
/// `bounds` (upper bounds, ascending, not cumulative, plus a trailing entry
/// for those above the last bound); each goes to the first bucket of
/// `target` that contains its bucket (exact when the bounds are equal).
/// Returns one count per bucket of `target` plus the overflow.
pub fn fold_buckets(target: &[f64], bounds: &[f64], counts: &[u64]) -> Vec<u64> {
    let mut folded = vec![0_u64; target.len() + 1];
    for (i, &n) in counts.iter().enumerate() {
        let upper = bounds.get(i).copied().unwrap_or(f64::INFINITY);
        let j = target
            .iter()
            .position(|&c| c >= upper)
            .unwrap_or(target.len());
        folded[j] += n;
    }
    folded
}

/// The catalogue entry named `name`, if any.
pub fn find(name: &str) -> Option<&'static MetricSpec> {
    CATALOGUE.iter().find(|spec| spec.name == name)
}

/// The catalogue as a Markdown table (the README's "Metric catalogue").
pub fn markdown_table() -> String {
    let mut out = String::from("| Metric | Kind | Unit | Labels | Description |\n");
    out.push_str("| --- | --- | --- | --- | --- |\n");
    for spec in CATALOGUE {
        let kind = match spec.kind {
            MetricKind::Counter => "counter",
            MetricKind::Gauge => "gauge",
            MetricKind::Histogram => "histogram",
        };
        let labels = if spec.labels.is_empty() {
            "—".to_owned()
        } else {
            spec.labels
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {} | {labels} | {} |\n",
            spec.name,
            spec.unit.as_str(),
            spec.help
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_follow_conventions() {
        let mut seen = std::collections::HashSet::new();
        for spec in CATALOGUE {
            assert!(seen.insert(spec.name), "{} described twice", spec.name);
            let is_counter = spec.kind == MetricKind::Counter;
            assert_eq!(
                spec.name.ends_with("_total"),
                is_counter,
                "{}: _total iff counter",
                spec.name
            );
            match spec.unit {
                Unit::Seconds => assert!(spec.name.contains("_seconds"), "{}", spec.name),
                Unit::Bytes => assert!(spec.name.contains("_bytes"), "{}", spec.name),
                Unit::Count | Unit::None => {}
            }
            assert!(
                spec.help.ends_with('.'),
                "{}: HELP is a sentence",
                spec.name
            );
            assert!(
                !spec.labels.contains(&"request_id"),
                "{}: never a request id",
                spec.name
            );
            if spec.kind == MetricKind::Histogram {
                assert!(
                    !spec.buckets.is_empty(),
                    "{}: histograms need buckets",
                    spec.name
                );
                assert!(
                    spec.buckets.windows(2).all(|w| w[0] < w[1]),
                    "{}: buckets ascend",
                    spec.name
                );
            } else {
                assert!(spec.buckets.is_empty(), "{}", spec.name);
            }
        }
    }

    #[test]
    fn readme_table_matches_the_catalogue() {
        let readme = include_str!("../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README.md's metric catalogue is out of date; paste catalogue::markdown_table():\n{}",
            markdown_table()
        );
    }
}
