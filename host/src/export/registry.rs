//! The metric registry: where every stage records what it measured.
//!
//! [`MetricsRegistry`] owns a [`PrometheusRecorder`] — the `metrics` facade's
//! recorder from `metrics-exporter-prometheus` — and its handle, built with the
//! [`catalogue`]'s descriptions and fixed classic-histogram buckets and with
//! `function_name` / `function_version` as labels on every series. It is never
//! installed as the global recorder, so several registries (tests, benches)
//! live side by side; code that prefers the `metrics` macros can use
//! `metrics::with_local_recorder(registry.recorder(), || …)`.
//!
//! Counters whose increments can be fractional (CPU seconds, plugin counters,
//! whose values are `f64`) are kept here as `f64` totals, because the
//! recorder's counters are integers; [`MetricsRegistry::render`] appends them
//! to the recorder's output in the same text format.
//!
//! Data enters through `record_*` calls; it leaves through
//! [`MetricsRegistry::render`] (Prometheus text) or
//! [`MetricsRegistry::snapshot`] (text plus parsed families for exporters).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::{Mutex, PoisonError};

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, SharedString};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};

use super::Identity;
use super::catalogue::{self, CATALOGUE, MetricSpec};
use super::exposition::{self, Snapshot};
use crate::model::{
    Batch, Finding, FunctionInfo, ImportProfile, Invocation, MetricKind, PluginMetric,
    PluginOutput, Severity, Status,
};

/// How many of a cold start's slowest modules get their own series.
pub const DEFAULT_TOP_IMPORTS: usize = 10;

const BYTES_PER_MB: f64 = 1024.0 * 1024.0;

static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// A family of fractional counters, rendered by the registry itself.
#[derive(Debug, Default)]
struct FloatFamily {
    help: String,
    series: BTreeMap<Vec<(String, String)>, f64>,
}

/// One series of a pre-aggregated histogram: cumulative counts per catalogue
/// bucket (the last is `+Inf`), sum and count.
#[derive(Debug, Default)]
struct BucketSeries {
    cumulative: Vec<u64>,
    sum: f64,
    count: u64,
}

/// A histogram family whose observations were bucketed before they reached
/// us (the probe's HTTP middleware), rendered by the registry itself.
#[derive(Debug, Default)]
struct BucketFamily {
    help: String,
    bounds: Vec<f64>,
    series: BTreeMap<Vec<(String, String)>, BucketSeries>,
}

/// The registry every stage records into, and every exporter reads from.
#[derive(Debug)]
pub struct MetricsRegistry {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// Labels added to every series, sorted by name.
    global_labels: Vec<(String, String)>,
    float_counters: Mutex<BTreeMap<String, FloatFamily>>,
    bucket_families: Mutex<BTreeMap<String, BucketFamily>>,
    /// Families first seen from plugins: the kind they were registered as.
    plugin_families: Mutex<HashMap<String, MetricKind>>,
    top_imports: usize,
}

impl MetricsRegistry {
    /// A registry for `identity`'s function, with the whole catalogue described.
    pub fn new(identity: &Identity) -> Self {
        Self::with_top_imports(identity, DEFAULT_TOP_IMPORTS)
    }

    /// As [`MetricsRegistry::new`], keeping series for the `top_imports`
    /// slowest modules of each cold start.
    pub fn with_top_imports(identity: &Identity, top_imports: usize) -> Self {
        let mut builder = PrometheusBuilder::new()
            .set_buckets(catalogue::DEFAULT_BUCKETS)
            .expect("the default buckets are not empty");
        for spec in CATALOGUE.iter().filter(|s| s.kind == MetricKind::Histogram) {
            builder = builder
                .set_buckets_for_metric(Matcher::Full(spec.name.to_owned()), spec.buckets)
                .expect("catalogue histograms have buckets");
        }
        let mut global_labels = vec![
            ("function_name".to_owned(), identity.function_name.clone()),
            (
                "function_version".to_owned(),
                identity.function_version.clone(),
            ),
        ];
        global_labels.sort();
        for (name, value) in &global_labels {
            builder = builder.add_global_label(name.clone(), value.clone());
        }
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        let registry = Self {
            recorder,
            handle,
            global_labels,
            float_counters: Mutex::new(BTreeMap::new()),
            bucket_families: Mutex::new(BTreeMap::new()),
            plugin_families: Mutex::new(HashMap::new()),
            top_imports,
        };
        for spec in CATALOGUE {
            registry.describe(
                spec.name,
                spec.kind,
                spec.help,
                spec.is_fractional_counter(),
            );
        }
        registry
    }

    /// The recorder, for `metrics::with_local_recorder`.
    pub fn recorder(&self) -> &PrometheusRecorder {
        &self.recorder
    }

    /// The recorder's handle (renders the recorder's part of the registry).
    pub fn handle(&self) -> &PrometheusHandle {
        &self.handle
    }

    fn describe(&self, name: &str, kind: MetricKind, help: &str, fractional: bool) {
        let key = KeyName::from(name.to_owned());
        let help = SharedString::from(help.to_owned());
        match kind {
            MetricKind::Counter if fractional => {
                let mut families = self
                    .float_counters
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                families.entry(name.to_owned()).or_default().help = help.to_string();
            }
            MetricKind::Counter => self.recorder.describe_counter(key, None, help),
            MetricKind::Gauge => self.recorder.describe_gauge(key, None, help),
            MetricKind::Histogram => self.recorder.describe_histogram(key, None, help),
        }
    }

    /// Records `value` for the catalogue metric `spec`: a counter adds it, a
    /// gauge is set to it, a histogram observes it. Non-finite values are ignored.
    pub fn record(&self, spec: &MetricSpec, labels: &[(&str, &str)], value: f64) {
        self.record_raw(
            spec.name,
            spec.kind,
            spec.is_fractional_counter(),
            labels,
            value,
        );
    }

    fn record_raw(
        &self,
        name: &str,
        kind: MetricKind,
        fractional: bool,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        if !value.is_finite() {
            return;
        }
        if kind == MetricKind::Counter && fractional {
            if value < 0.0 {
                return;
            }
            let series = self.series_labels(labels);
            let mut families = self
                .float_counters
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            *families
                .entry(name.to_owned())
                .or_default()
                .series
                .entry(series)
                .or_insert(0.0) += value;
            return;
        }
        let key = Key::from_parts(
            name.to_owned(),
            labels
                .iter()
                .map(|(k, v)| Label::new((*k).to_owned(), (*v).to_owned()))
                .collect::<Vec<_>>(),
        );
        match kind {
            MetricKind::Counter => {
                if value >= 0.0 {
                    // Integer counters count things; a fractional increment is rounded.
                    self.recorder
                        .register_counter(&key, &METADATA)
                        .increment(value.round() as u64);
                }
            }
            MetricKind::Gauge => self.recorder.register_gauge(&key, &METADATA).set(value),
            MetricKind::Histogram => self
                .recorder
                .register_histogram(&key, &METADATA)
                .record(value),
        }
    }

    /// Adds pre-bucketed observations to the catalogue histogram `spec`.
    ///
    /// `counts` holds the observations per bucket of `bounds` (upper bounds,
    /// ascending, in the metric's unit), not cumulative, plus one trailing
    /// entry for those above the last bound; `sum` is their total. Each of
    /// those buckets is folded into the first catalogue bucket that contains
    /// it, which is exact when the bounds are the catalogue's. Returns false
    /// (and records nothing) when `counts` does not match `bounds` or a value
    /// is not finite.
    pub fn record_bucketed(
        &self,
        spec: &MetricSpec,
        labels: &[(&str, &str)],
        bounds: &[f64],
        counts: &[u64],
        sum: f64,
    ) -> bool {
        let ascending = bounds.windows(2).all(|w| w[0] < w[1]);
        if spec.kind != MetricKind::Histogram
            || counts.len() != bounds.len() + 1
            || !ascending
            || !sum.is_finite()
            || bounds.iter().any(|b| !b.is_finite())
        {
            return false;
        }
        let catalogue_bounds = spec.buckets;
        let per_bucket = catalogue::fold_buckets(catalogue_bounds, bounds, counts);
        let series = self.series_labels(labels);
        let mut families = self
            .bucket_families
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let family = families
            .entry(spec.name.to_owned())
            .or_insert_with(|| BucketFamily {
                help: spec.help.to_owned(),
                bounds: catalogue_bounds.to_vec(),
                series: BTreeMap::new(),
            });
        let entry = family.series.entry(series).or_default();
        entry.cumulative.resize(per_bucket.len(), 0);
        let mut running = 0;
        for (slot, n) in entry.cumulative.iter_mut().zip(per_bucket) {
            running += n;
            *slot += running;
        }
        entry.count += counts.iter().sum::<u64>();
        entry.sum += sum;
        true
    }

    /// The global labels with `labels` added (replacing any of the same
    /// name), sorted: one series' identity.
    fn series_labels(&self, labels: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut series: Vec<(String, String)> = self.global_labels.clone();
        for (k, v) in labels {
            series.retain(|(existing, _)| existing != k);
            series.push(((*k).to_owned(), (*v).to_owned()));
        }
        series.sort();
        series
    }

    /// Records a batch: every invocation, the runtime info and the cold start's
    /// import profile.
    pub fn record_batch(&self, batch: &Batch) {
        self.record_function(&batch.function);
        for invocation in &batch.invocations {
            self.record_invocation(invocation);
        }
        if let Some(imports) = &batch.imports {
            self.record_import_profile(imports);
        }
    }

    /// Records what is known about the function itself (`python_info`, memory limit).
    pub fn record_function(&self, function: &FunctionInfo) {
        if !function.runtime.is_empty() {
            self.record(
                &catalogue::PYTHON_INFO,
                &[("runtime", &function.runtime)],
                1.0,
            );
        }
        if function.memory_size_mb > 0 {
            let bytes = f64::from(function.memory_size_mb) * BYTES_PER_MB;
            self.record(&catalogue::FAAS_MEM_LIMIT_BYTES, &[], bytes);
        }
    }

    /// Records one invocation. Call it once per invocation; figures that were
    /// not measured (`None`) are simply not recorded.
    pub fn record_invocation(&self, invocation: &Invocation) {
        let cold = if invocation.cold_start {
            "true"
        } else {
            "false"
        };
        let status = status_label(invocation.status);
        let outcome = [("cold_start", cold), ("status", status)];
        self.record(&catalogue::FAAS_INVOCATIONS_TOTAL, &outcome, 1.0);
        self.record(
            &catalogue::FAAS_INVOKE_DURATION_SECONDS,
            &outcome,
            invocation.duration_ms / 1e3,
        );
        if invocation.cold_start {
            self.record(&catalogue::FAAS_COLDSTARTS_TOTAL, &[], 1.0);
        }
        if invocation.status != Status::Success {
            self.record(&catalogue::FAAS_ERRORS_TOTAL, &[("status", status)], 1.0);
        }
        match invocation.status {
            Status::Timeout => self.record(&catalogue::FAAS_TIMEOUTS_TOTAL, &[], 1.0),
            Status::OutOfMemory => self.record(&catalogue::FAAS_OUT_OF_MEMORY_TOTAL, &[], 1.0),
            Status::Success | Status::Error | Status::Failure => {}
        }
        let ms_to_s = |ms: Option<f64>| ms.map(|ms| ms / 1e3);
        let observations = [
            (
                &catalogue::FAAS_INIT_DURATION_SECONDS,
                ms_to_s(invocation.init_duration_ms),
            ),
            (
                &catalogue::FAAS_BILLED_DURATION_SECONDS,
                ms_to_s(invocation.billed_duration_ms),
            ),
            (
                &catalogue::FAAS_POST_RUNTIME_DURATION_SECONDS,
                ms_to_s(invocation.post_runtime_ms),
            ),
            (
                &catalogue::FAAS_MEM_USAGE_BYTES,
                invocation.max_memory_used_mb.map(|mb| mb * BYTES_PER_MB),
            ),
            (
                &catalogue::FAAS_MEM_LIMIT_BYTES,
                invocation.memory_size_mb.map(|mb| mb * BYTES_PER_MB),
            ),
            (
                &catalogue::PROCESS_RESIDENT_MEMORY_BYTES,
                invocation.rss_bytes,
            ),
            (&catalogue::PROCESS_OPEN_FDS, invocation.open_fds),
            (&catalogue::PROCESS_THREADS, invocation.threads),
            (
                &catalogue::PYTHON_GC_PAUSE_SECONDS,
                ms_to_s(invocation.gc_pause_ms),
            ),
            (
                &catalogue::PYTHON_ALLOCATED_BLOCKS,
                invocation.allocated_blocks,
            ),
        ];
        for (spec, value) in observations {
            if let Some(value) = value {
                self.record(spec, &[], value);
            }
        }
        let cpu_ms =
            invocation.cpu_user_ms.unwrap_or(0.0) + invocation.cpu_system_ms.unwrap_or(0.0);
        if invocation.cpu_user_ms.is_some() || invocation.cpu_system_ms.is_some() {
            self.record(&catalogue::PROCESS_CPU_SECONDS_TOTAL, &[], cpu_ms / 1e3);
        }
        if invocation.gc_collections > 0 {
            self.record(
                &catalogue::PYTHON_GC_COLLECTIONS_TOTAL,
                &[],
                f64::from(invocation.gc_collections),
            );
        }
    }

    /// Records a cold start's import profile: the whole import phase (the sum
    /// of the top-level imports) and the slowest modules by cumulative time.
    pub fn record_import_profile(&self, profile: &ImportProfile) {
        let total_us: u64 = profile
            .modules
            .iter()
            .filter(|m| m.parent.is_none())
            .map(|m| m.cumulative_us)
            .sum();
        self.record(
            &catalogue::PYTHON_IMPORT_DURATION_SECONDS,
            &[],
            total_us as f64 / 1e6,
        );
        let mut slowest: Vec<_> = profile.modules.iter().collect();
        slowest.sort_by(|a, b| {
            b.cumulative_us
                .cmp(&a.cumulative_us)
                .then_with(|| a.module.cmp(&b.module))
        });
        for module in slowest.into_iter().take(self.top_imports) {
            let origin = match module.origin {
                crate::model::Origin::Builtin => "builtin",
                crate::model::Origin::Stdlib => "stdlib",
                crate::model::Origin::SitePackages => "site-packages",
                crate::model::Origin::Layer => "layer",
                crate::model::Origin::FunctionCode => "function-code",
            };
            self.record(
                &catalogue::PYTHON_IMPORT_MODULE_DURATION_SECONDS,
                &[("module", &module.module), ("origin", origin)],
                module.cumulative_us as f64 / 1e6,
            );
        }
    }

    /// Records what a plugin returned: its metrics and its findings.
    pub fn record_plugin_output(&self, plugin: &str, output: &PluginOutput) {
        for metric in &output.metrics {
            self.record_plugin_metric(plugin, metric);
        }
        for finding in &output.findings {
            self.record_finding(finding);
        }
    }

    /// Records one plugin metric (names are validated by the plugin host).
    ///
    /// Counters add, gauges set, histograms observe (with
    /// [`catalogue::DEFAULT_BUCKETS`]). A metric named like a catalogue metric,
    /// or whose kind differs from the kind its name was first seen with, is
    /// refused and counted in `pyrometer_plugin_metrics_rejected_total`: either
    /// would make the exposition invalid.
    pub fn record_plugin_metric(&self, plugin: &str, metric: &PluginMetric) {
        let reason = if catalogue::find(&metric.name).is_some() {
            Some("builtin-name")
        } else {
            let mut families = self
                .plugin_families
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            match families.get(&metric.name) {
                Some(kind) if *kind != metric.kind => Some("kind-clash"),
                Some(_) => None,
                None => {
                    families.insert(metric.name.clone(), metric.kind);
                    drop(families);
                    let help = if metric.help.is_empty() {
                        format!("Reported by plugin {plugin}.")
                    } else {
                        metric.help.clone()
                    };
                    self.describe(&metric.name, metric.kind, &help, true);
                    None
                }
            }
        };
        if let Some(reason) = reason {
            self.record(
                &catalogue::PYROMETER_PLUGIN_METRICS_REJECTED_TOTAL,
                &[("plugin", plugin), ("reason", reason)],
                1.0,
            );
            return;
        }
        let labels: Vec<(&str, &str)> = metric
            .labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        self.record_raw(&metric.name, metric.kind, true, &labels, metric.value);
    }

    /// Counts one finding under `pyrometer_findings_total{plugin, rule, severity}`.
    pub fn record_finding(&self, finding: &Finding) {
        let severity = match finding.severity {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        };
        self.record(
            &catalogue::PYROMETER_FINDINGS_TOTAL,
            &[
                ("plugin", &finding.plugin),
                ("rule", &finding.rule),
                ("severity", severity),
            ],
            1.0,
        );
    }

    /// The whole registry in the Prometheus text exposition format 0.0.4.
    pub fn render(&self) -> String {
        let mut text = self.handle.render();
        self.render_float_counters(&mut text);
        self.render_bucketed(&mut text);
        text
    }

    fn render_bucketed(&self, out: &mut String) {
        let families = self
            .bucket_families
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, family) in families.iter() {
            let _ = writeln!(
                out,
                "# HELP {name} {}",
                exposition::escape_help(&family.help)
            );
            let _ = writeln!(out, "# TYPE {name} histogram");
            for (labels, series) in &family.series {
                let base = || labels.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                for (i, cumulative) in series.cumulative.iter().enumerate() {
                    let le = family
                        .bounds
                        .get(i)
                        .map_or_else(|| "+Inf".to_owned(), |b| exposition::format_value(*b));
                    out.push_str(name);
                    out.push_str("_bucket");
                    let mut with_le: Vec<(&str, &str)> = base().collect();
                    with_le.push(("le", &le));
                    exposition::write_labels(out, with_le);
                    let _ = writeln!(out, " {cumulative}");
                }
                for (suffix, value) in [
                    ("_sum", exposition::format_value(series.sum)),
                    ("_count", series.count.to_string()),
                ] {
                    out.push_str(name);
                    out.push_str(suffix);
                    exposition::write_labels(out, base());
                    let _ = writeln!(out, " {value}");
                }
            }
            out.push('\n');
        }
    }

    /// Renders once and parses the result, for exporters.
    pub fn snapshot(&self) -> Snapshot {
        Snapshot::new(self.render())
    }

    fn render_float_counters(&self, out: &mut String) {
        let families = self
            .float_counters
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        for (name, family) in families.iter().filter(|(_, f)| !f.series.is_empty()) {
            let _ = writeln!(
                out,
                "# HELP {name} {}",
                exposition::escape_help(&family.help)
            );
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, value) in &family.series {
                out.push_str(name);
                exposition::write_labels(out, labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
                let _ = writeln!(out, " {}", exposition::format_value(*value));
            }
            out.push('\n');
        }
    }
}

/// The `status` label value of an outcome (Lambda's vocabulary, kebab-case).
pub fn status_label(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Error => "error",
        Status::Timeout => "timeout",
        Status::OutOfMemory => "out-of-memory",
        Status::Failure => "failure",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImportedModule, Origin};

    fn identity() -> Identity {
        Identity {
            job: "pyrometer".into(),
            function_name: "checkout".into(),
            function_version: "7".into(),
            instance: "i-1".into(),
        }
    }

    fn value(snapshot: &Snapshot, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        snapshot.value(name, labels)
    }

    #[test]
    fn pre_bucketed_histograms_fold_into_catalogue_buckets_and_accumulate() {
        let registry = MetricsRegistry::new(&identity());
        let spec = &catalogue::HTTP_SERVER_REQUEST_DURATION_SECONDS;
        let labels = [("http_route", "/a"), ("http_request_method", "GET")];
        // Same bounds as the catalogue: exact.
        let mut counts = vec![0; spec.buckets.len() + 1];
        counts[0] = 2;
        counts[spec.buckets.len()] = 1;
        assert!(registry.record_bucketed(spec, &labels, spec.buckets, &counts, 20.5));
        // Coarser foreign bounds fold into the first catalogue bucket that holds them.
        assert!(registry.record_bucketed(spec, &labels, &[0.007], &[1, 0], 0.006));
        // Mismatched shapes are refused.
        assert!(!registry.record_bucketed(spec, &labels, &[0.1, 0.05], &[1, 1, 1], 0.1));
        assert!(!registry.record_bucketed(spec, &labels, &[0.1], &[1], 0.1));
        let snapshot = registry.snapshot();
        let series = |le: &str| {
            value(
                &snapshot,
                "http_server_request_duration_seconds_bucket",
                &[
                    ("http_route", "/a"),
                    ("http_request_method", "GET"),
                    ("le", le),
                ],
            )
        };
        assert_eq!(series("0.005"), Some(2.0));
        assert_eq!(series("0.01"), Some(3.0));
        assert_eq!(series("10"), Some(3.0));
        assert_eq!(series("+Inf"), Some(4.0));
        assert_eq!(
            value(
                &snapshot,
                "http_server_request_duration_seconds_count",
                &[("http_route", "/a"), ("http_request_method", "GET")]
            ),
            Some(4.0)
        );
        let text = registry.render();
        assert_eq!(
            text.matches("# TYPE http_server_request_duration_seconds histogram")
                .count(),
            1,
            "{text}"
        );
    }

    #[test]
    fn invocations_land_in_the_catalogue_metrics() {
        let registry = MetricsRegistry::new(&identity());
        let cold = Invocation {
            request_id: "req-1".into(),
            cold_start: true,
            duration_ms: 120.0,
            init_duration_ms: Some(800.0),
            billed_duration_ms: Some(121.0),
            max_memory_used_mb: Some(90.0),
            cpu_user_ms: Some(15.0),
            cpu_system_ms: Some(5.5),
            gc_collections: 3,
            ..Default::default()
        };
        let warm = Invocation {
            request_id: "req-2".into(),
            status: Status::Timeout,
            duration_ms: 3000.0,
            cpu_user_ms: Some(1.0),
            ..Default::default()
        };
        registry.record_invocation(&cold);
        registry.record_invocation(&warm);
        let snap = registry.snapshot();
        let fv = [("function_name", "checkout"), ("function_version", "7")];
        let with = |extra: &[(&'static str, &'static str)]| [&fv[..], extra].concat();
        assert_eq!(
            value(
                &snap,
                "faas_invocations_total",
                &with(&[("cold_start", "true"), ("status", "success")])
            ),
            Some(1.0)
        );
        assert_eq!(
            value(&snap, "faas_errors_total", &with(&[("status", "timeout")])),
            Some(1.0)
        );
        assert_eq!(value(&snap, "faas_timeouts_total", &fv), Some(1.0));
        assert_eq!(
            value(&snap, "faas_init_duration_seconds_count", &fv),
            Some(1.0)
        );
        assert_eq!(
            value(&snap, "faas_init_duration_seconds_sum", &fv),
            Some(0.8)
        );
        assert_eq!(
            value(
                &snap,
                "faas_init_duration_seconds_bucket",
                &with(&[("le", "1")])
            ),
            Some(1.0)
        );
        let cpu = value(&snap, "process_cpu_seconds_total", &fv).unwrap_or_default();
        assert!((cpu - 0.0215).abs() < 1e-12, "{cpu}");
        assert_eq!(value(&snap, "python_gc_collections_total", &fv), Some(3.0));
        assert!(
            !snap.text.contains("req-1"),
            "a request id must never become a label"
        );
    }

    #[test]
    fn every_histogram_is_classic_with_catalogue_buckets() {
        let registry = MetricsRegistry::new(&identity());
        for spec in CATALOGUE.iter().filter(|s| s.kind == MetricKind::Histogram) {
            let labels: Vec<(&str, &str)> = spec.labels.iter().map(|l| (*l, "x")).collect();
            registry.record(spec, &labels, 0.5);
        }
        let text = registry.render();
        assert!(!text.contains("summary"), "no summaries:\n{text}");
        for spec in CATALOGUE.iter().filter(|s| s.kind == MetricKind::Histogram) {
            let buckets = text
                .lines()
                .filter(|l| l.starts_with(&format!("{}_bucket{{", spec.name)))
                .count();
            assert_eq!(buckets, spec.buckets.len() + 1, "{}", spec.name);
        }
    }

    #[test]
    fn import_profile_keeps_the_top_n_modules() {
        let registry = MetricsRegistry::with_top_imports(&identity(), 2);
        let module = |name: &str, parent, cumulative_us| ImportedModule {
            module: name.into(),
            parent,
            self_us: cumulative_us / 2,
            cumulative_us,
            origin: Origin::SitePackages,
            error: None,
        };
        registry.record_import_profile(&ImportProfile {
            modules: vec![
                module("pandas", None, 900_000),
                module("numpy", Some(0), 400_000),
                module("json", None, 2_000),
                module("pytz", Some(0), 100_000),
            ],
        });
        let snap = registry.snapshot();
        assert_eq!(
            snap.value("python_import_duration_seconds_sum", &[]),
            Some(0.902)
        );
        let modules: Vec<_> = snap
            .samples("python_import_module_duration_seconds")
            .map(|s| s.label("module").unwrap_or_default().to_owned())
            .collect();
        assert_eq!(modules.len(), 2);
        assert!(modules.contains(&"pandas".to_owned()) && modules.contains(&"numpy".to_owned()));
    }

    #[test]
    fn plugin_metrics_add_set_observe_and_clashes_are_refused() {
        let registry = MetricsRegistry::new(&identity());
        let metric = |name: &str, kind, value| PluginMetric {
            plugin: String::new(),
            name: name.into(),
            kind,
            help: "From a test plugin.".into(),
            labels: vec![("rule".into(), "a\"b".into())],
            value,
        };
        let output = PluginOutput {
            metrics: vec![
                metric("leak_growth_bytes_total", MetricKind::Counter, 1.5),
                metric("leak_growth_bytes_total", MetricKind::Counter, 2.25),
                metric("leak_score", MetricKind::Gauge, 3.0),
                metric("leak_score", MetricKind::Gauge, 4.0),
                metric("leak_latency_seconds", MetricKind::Histogram, 0.2),
                metric("leak_score", MetricKind::Counter, 1.0),
                metric("faas_invocations_total", MetricKind::Counter, 1.0),
            ],
            findings: vec![Finding {
                plugin: "leak".into(),
                rule: "memory-leak".into(),
                severity: Severity::Critical,
                message: "grows".into(),
                labels: vec![],
            }],
        };
        registry.record_plugin_output("leak", &output);
        let snap = registry.snapshot();
        let rule = [("rule", "a\"b")];
        assert_eq!(snap.value("leak_growth_bytes_total", &rule), Some(3.75));
        assert_eq!(snap.value("leak_score", &rule), Some(4.0));
        assert_eq!(snap.value("leak_latency_seconds_count", &rule), Some(1.0));
        assert_eq!(
            snap.value(
                "pyrometer_plugin_metrics_rejected_total",
                &[("reason", "kind-clash")]
            ),
            Some(1.0)
        );
        assert_eq!(
            snap.value(
                "pyrometer_plugin_metrics_rejected_total",
                &[("reason", "builtin-name")]
            ),
            Some(1.0)
        );
        assert_eq!(snap.value("faas_invocations_total", &[]), None);
        assert_eq!(
            snap.value(
                "pyrometer_findings_total",
                &[("rule", "memory-leak"), ("severity", "critical")]
            ),
            Some(1.0)
        );
        let help = snap
            .family("leak_growth_bytes_total")
            .map(|f| f.help.clone());
        assert_eq!(help.as_deref(), Some("From a test plugin."));
    }

    #[test]
    fn registries_are_independent() {
        let a = MetricsRegistry::new(&identity());
        let b = MetricsRegistry::new(&identity());
        a.record(&catalogue::FAAS_COLDSTARTS_TOTAL, &[], 1.0);
        assert_eq!(a.snapshot().value("faas_coldstarts_total", &[]), Some(1.0));
        assert_eq!(b.snapshot().value("faas_coldstarts_total", &[]), None);
    }
}
