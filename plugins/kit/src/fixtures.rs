//! Fixture cases under `tests/data/<plugin>/<case>/`, run natively.
//!
//! A case folder holds `input.json` (one batch in the host's JSON model, or an
//! array of batches fed in order to one analyzer), an optional `config.json`
//! (an object of string to string) and `expected.json`, which applies to the
//! output of the last batch. `tests/data/README.md` documents the format; this
//! module is its reference implementation for the kit side. The host's tests
//! run the same folders through the real components.
//!
//! Besides the expectations, every output of every case must pass
//! [`check_compliance`]: valid and stable metric names, valid label names, HELP
//! text, finite values, no duplicate series, no request-id label.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use crate::analyzer::{Analyzer, analyze, configure};
use crate::log::MemoryLog;
use crate::model::{Batch, FunctionInfo, ImportProfile, Invocations, Origin, Status};
use crate::output::{MetricKind, Output};
use crate::prom::{is_valid_label_name, is_valid_metric_name};

/// Runs every case folder under `dir` and panics with the list of failures.
pub fn run_all<A: Analyzer>(dir: &Path) {
    let mut cases: Vec<_> = match fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect(),
        Err(e) => panic!("cannot read fixture folder {}: {e}", dir.display()),
    };
    cases.sort();
    assert!(!cases.is_empty(), "no fixture case in {}", dir.display());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|case| {
            run_case::<A>(case)
                .err()
                .map(|e| format!("{}: {e}", case.display()))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} fixture cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

/// Runs one case folder; `Err` says what did not match.
pub fn run_case<A: Analyzer>(dir: &Path) -> Result<(), String> {
    let expected: Expected = serde_json::from_str(&read(&dir.join("expected.json"))?)
        .map_err(|e| format!("expected.json: {e}"))?;
    let config_path = dir.join("config.json");
    let config: Vec<(String, String)> = if config_path.exists() {
        let map: BTreeMap<String, String> =
            serde_json::from_str(&read(&config_path)?).map_err(|e| format!("config.json: {e}"))?;
        map.into_iter().collect()
    } else {
        Vec::new()
    };

    let mut analyzer = configure::<A>(&config).map_err(|e| format!("configure failed: {e}"))?;

    let batches = load_batches(&read(&dir.join("input.json"))?)?;
    let mut kinds = HashMap::new();
    let mut last = None;
    for (i, batch) in batches.iter().enumerate() {
        let mut log = MemoryLog::default();
        let output = analyze(&mut analyzer, batch, &mut log)
            .map_err(|e| format!("batch {i}: analyze failed: {e}"))?;
        check_compliance(&output, &mut kinds).map_err(|e| format!("batch {i}: {e}"))?;
        last = Some(output);
    }
    let last = last.ok_or("input.json holds no batch")?;
    expected
        .check(&last)
        .map_err(|e| format!("{e}\noutput: {last:#?}"))
}

/// Checks the rules every plugin output must follow; `kinds` remembers each
/// metric name's kind across the outputs of one instance.
pub fn check_compliance(
    output: &Output,
    kinds: &mut HashMap<String, MetricKind>,
) -> Result<(), String> {
    let mut series = Vec::new();
    for metric in &output.metrics {
        let name = &metric.name;
        if !is_valid_metric_name(name) {
            return Err(format!("invalid metric name '{name}'"));
        }
        if metric.help.trim().is_empty() {
            return Err(format!("metric '{name}' has no HELP text"));
        }
        if !metric.value.is_finite() {
            return Err(format!("metric '{name}' has value {}", metric.value));
        }
        if let Some(previous) = kinds.insert(name.clone(), metric.kind)
            && previous != metric.kind
        {
            return Err(format!("metric '{name}' changed kind from {previous:?}"));
        }
        check_labels(&metric.labels).map_err(|e| format!("metric '{name}': {e}"))?;
        let mut labels = metric.labels.clone();
        labels.sort();
        if series.contains(&(name, labels.clone())) {
            return Err(format!("metric '{name}' {labels:?} is emitted twice"));
        }
        series.push((name, labels));
    }
    for finding in &output.findings {
        if finding.rule.is_empty() || finding.message.is_empty() {
            return Err(format!("finding without rule or message: {finding:?}"));
        }
        check_labels(&finding.labels).map_err(|e| format!("finding '{}': {e}", finding.rule))?;
    }
    Ok(())
}

fn check_labels(labels: &[(String, String)]) -> Result<(), String> {
    for (i, (name, _)) in labels.iter().enumerate() {
        if !is_valid_label_name(name) {
            return Err(format!("invalid label name '{name}'"));
        }
        if name.contains("request") {
            return Err(format!("label '{name}' looks like a request id"));
        }
        if labels[..i].iter().any(|(other, _)| other == name) {
            return Err(format!("label '{name}' given twice"));
        }
    }
    Ok(())
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// What the last output of a case must satisfy (see `tests/data/README.md`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Expected {
    findings: Vec<ExpectedFinding>,
    absent_rules: Vec<String>,
    finding_count: Option<usize>,
    metrics: Vec<ExpectedMetric>,
    metric_count: BTreeMap<String, usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFinding {
    rule: String,
    severity: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedMetric {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    min: Option<f64>,
    max: Option<f64>,
}

fn has_labels(labels: &[(String, String)], want: &BTreeMap<String, String>) -> bool {
    want.iter()
        .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v))
}

impl Expected {
    /// Checks `output` against every expectation.
    pub fn check(&self, output: &Output) -> Result<(), String> {
        for want in &self.findings {
            let found = output.findings.iter().any(|f| {
                f.rule == want.rule
                    && want
                        .severity
                        .as_deref()
                        .is_none_or(|s| s == f.severity.as_str())
                    && has_labels(&f.labels, &want.labels)
            });
            if !found {
                return Err(format!("no finding matches {want:?}"));
            }
        }
        for rule in &self.absent_rules {
            if output.findings.iter().any(|f| &f.rule == rule) {
                return Err(format!("finding with rule '{rule}' should be absent"));
            }
        }
        if let Some(count) = self.finding_count
            && output.findings.len() != count
        {
            return Err(format!(
                "expected {count} findings, got {}",
                output.findings.len()
            ));
        }
        for want in &self.metrics {
            let candidates: Vec<f64> = output
                .metrics
                .iter()
                .filter(|m| m.name == want.name && has_labels(&m.labels, &want.labels))
                .map(|m| m.value)
                .collect();
            let in_range = |v: &f64| {
                want.min.is_none_or(|min| *v >= min) && want.max.is_none_or(|max| *v <= max)
            };
            if !candidates.iter().any(in_range) {
                return Err(format!(
                    "no metric matches {want:?}; values with that name and labels: {candidates:?}"
                ));
            }
        }
        for (name, count) in &self.metric_count {
            let got = output.metrics.iter().filter(|m| &m.name == name).count();
            if got != *count {
                return Err(format!("expected {count} samples of '{name}', got {got}"));
            }
        }
        Ok(())
    }
}

/// `input.json`: one batch, or an array of batches.
pub fn load_batches(json: &str) -> Result<Vec<Batch>, String> {
    let value: Value = serde_json::from_str(json).map_err(|e| format!("input.json: {e}"))?;
    let batches: Vec<JsonBatch> = if value.is_array() {
        serde_json::from_value(value)
    } else {
        serde_json::from_value(value).map(|b| vec![b])
    }
    .map_err(|e| format!("input.json: {e}"))?;
    Ok(batches.into_iter().map(JsonBatch::into_batch).collect())
}

// The host's JSON model (host/src/model.rs), as far as the WIT carries it.

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JsonBatch {
    function: JsonFunction,
    invocations: Vec<JsonInvocation>,
    imports: Option<JsonImports>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JsonFunction {
    name: String,
    version: String,
    runtime: String,
    memory_size_mb: u32,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JsonInvocation {
    request_id: String,
    start_unix_ms: f64,
    cold_start: bool,
    status: JsonStatus,
    duration_ms: f64,
    billed_duration_ms: Option<f64>,
    init_duration_ms: Option<f64>,
    max_memory_used_mb: Option<f64>,
    memory_size_mb: Option<f64>,
    rss_bytes: Option<f64>,
    cpu_user_ms: Option<f64>,
    cpu_system_ms: Option<f64>,
    gc_collections: u32,
    gc_pause_ms: Option<f64>,
    allocated_blocks: Option<f64>,
    post_runtime_ms: Option<f64>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum JsonStatus {
    #[default]
    Success,
    Error,
    Timeout,
    OutOfMemory,
    Failure,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JsonImports {
    modules: Vec<JsonModule>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
struct JsonModule {
    module: String,
    parent: Option<usize>,
    self_us: u64,
    cumulative_us: u64,
    origin: JsonOrigin,
    // The WIT has no column for it; accepted so fixtures can carry it.
    #[allow(dead_code)]
    error: Option<String>,
}

#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum JsonOrigin {
    Builtin,
    #[default]
    Stdlib,
    SitePackages,
    Layer,
    FunctionCode,
}

impl JsonBatch {
    fn into_batch(self) -> Batch {
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        let mut inv = Invocations::default();
        for i in self.invocations {
            inv.request_id.push(i.request_id);
            inv.start_unix_ms.push(i.start_unix_ms);
            inv.cold_start.push(i.cold_start);
            inv.status.push(match i.status {
                JsonStatus::Success => Status::Success,
                JsonStatus::Error => Status::Error,
                JsonStatus::Timeout => Status::Timeout,
                JsonStatus::OutOfMemory => Status::OutOfMemory,
                JsonStatus::Failure => Status::Failure,
            });
            inv.duration_ms.push(i.duration_ms);
            inv.billed_duration_ms.push(nan(i.billed_duration_ms));
            inv.init_duration_ms.push(nan(i.init_duration_ms));
            inv.max_memory_used_mb.push(nan(i.max_memory_used_mb));
            inv.memory_size_mb.push(nan(i.memory_size_mb));
            inv.rss_bytes.push(nan(i.rss_bytes));
            inv.cpu_user_ms.push(nan(i.cpu_user_ms));
            inv.cpu_system_ms.push(nan(i.cpu_system_ms));
            inv.gc_collections.push(i.gc_collections);
            inv.gc_pause_ms.push(nan(i.gc_pause_ms));
            inv.allocated_blocks.push(nan(i.allocated_blocks));
            inv.post_runtime_ms.push(nan(i.post_runtime_ms));
        }
        let imports = self.imports.map(|imports| {
            let mut profile = ImportProfile::default();
            for m in imports.modules {
                profile.module.push(m.module);
                profile
                    .parent
                    .push(m.parent.and_then(|p| i32::try_from(p).ok()).unwrap_or(-1));
                profile.self_us.push(m.self_us);
                profile.cumulative_us.push(m.cumulative_us);
                profile.origin.push(match m.origin {
                    JsonOrigin::Builtin => Origin::Builtin,
                    JsonOrigin::Stdlib => Origin::Stdlib,
                    JsonOrigin::SitePackages => Origin::SitePackages,
                    JsonOrigin::Layer => Origin::Layer,
                    JsonOrigin::FunctionCode => Origin::FunctionCode,
                });
            }
            profile
        });
        Batch {
            function: FunctionInfo {
                name: self.function.name,
                version: self.function.version,
                runtime: self.function.runtime,
                memory_size_mb: self.function.memory_size_mb,
            },
            invocations: inv,
            imports,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output::{Finding, Metric, Severity};

    #[test]
    fn one_batch_or_many() {
        let one = load_batches(r#"{"function": {"name": "f"}, "invocations": [{}]}"#).expect("one");
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].function.name, "f");
        assert!(one[0].invocations.rss_bytes[0].is_nan());
        let many =
            load_batches(r#"[{}, {"invocations": [{"status": "out-of-memory"}]}]"#).expect("many");
        assert_eq!(many[1].invocations.status, vec![Status::OutOfMemory]);
        assert!(load_batches(r#"{"invocation": []}"#).is_err());
    }

    #[test]
    fn expectations_match_labels_subsets_and_ranges() {
        let output = Output {
            metrics: vec![Metric::gauge("m_seconds", "h", 1.0).label("module", "boto3")],
            findings: vec![
                Finding::new("slow-import", Severity::Warning, "msg")
                    .label("module", "boto3")
                    .label("origin", "site-packages"),
            ],
        };
        let pass: Expected = serde_json::from_str(
            r#"{"findings": [{"rule": "slow-import", "severity": "warning", "labels": {"module": "boto3"}}],
                "absent_rules": ["import-share"], "finding_count": 1,
                "metrics": [{"name": "m_seconds", "labels": {"module": "boto3"}, "min": 0.9, "max": 1.1}],
                "metric_count": {"m_seconds": 1, "other": 0}}"#,
        )
        .expect("expected.json");
        assert_eq!(pass.check(&output), Ok(()));
        for fail in [
            r#"{"findings": [{"rule": "slow-import", "severity": "critical"}]}"#,
            r#"{"absent_rules": ["slow-import"]}"#,
            r#"{"finding_count": 2}"#,
            r#"{"metrics": [{"name": "m_seconds", "min": 1.5}]}"#,
            r#"{"metric_count": {"m_seconds": 2}}"#,
            r#"{"metric_count": {"m_seconds": 0}}"#,
        ] {
            let expected: Expected = serde_json::from_str(fail).expect("expected.json");
            assert!(expected.check(&output).is_err(), "{fail}");
        }
        // The host's test reads the same files: a key it does not know is an error.
        assert!(serde_json::from_str::<Expected>(r#"{"about": "x"}"#).is_err());
    }

    #[test]
    fn compliance_catches_bad_outputs() {
        let mut kinds = HashMap::new();
        let bad = |metric: Metric| Output {
            metrics: vec![metric],
            findings: vec![],
        };
        assert!(check_compliance(&bad(Metric::gauge("9 bad", "h", 1.0)), &mut kinds).is_err());
        assert!(check_compliance(&bad(Metric::gauge("a", "", 1.0)), &mut kinds).is_err());
        assert!(check_compliance(&bad(Metric::gauge("a", "h", f64::NAN)), &mut kinds).is_err());
        assert!(
            check_compliance(
                &bad(Metric::gauge("a", "h", 1.0).label("bad-label!", "")),
                &mut kinds
            )
            .is_err()
        );
        let twice = Output {
            metrics: vec![Metric::gauge("b", "h", 1.0), Metric::gauge("b", "h", 2.0)],
            findings: vec![],
        };
        assert!(check_compliance(&twice, &mut HashMap::new()).is_err());
        let mut counter = Metric::gauge("c_total", "h", 1.0);
        assert_eq!(check_compliance(&bad(counter.clone()), &mut kinds), Ok(()));
        counter.kind = MetricKind::Counter;
        assert!(check_compliance(&bad(counter), &mut kinds).is_err());
    }
}
