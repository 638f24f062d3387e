//! The first-party plugins, really compiled, run through the real host over
//! the crafted cases in `tests/data/<plugin>/<case>/` (format in
//! `tests/data/README.md`): each case feeds its batches to one warm instance
//! and checks the last output against `expected.json`.

use std::collections::BTreeMap;
use std::path::Path;

use pyrometer::model::{Batch, PluginOutput};
use pyrometer::plugins::{PluginSet, PluginSpec};
use pyrometer_tests::{data_dir, guest};
use serde::Deserialize;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    #[serde(default)]
    findings: Vec<ExpectedFinding>,
    #[serde(default)]
    absent_rules: Vec<String>,
    finding_count: Option<usize>,
    #[serde(default)]
    metrics: Vec<ExpectedMetric>,
    #[serde(default)]
    metric_count: BTreeMap<String, usize>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedFinding {
    rule: String,
    severity: Option<String>,
    #[serde(default)]
    labels: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExpectedMetric {
    name: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    min: Option<f64>,
    max: Option<f64>,
}

fn has_labels(actual: &[(String, String)], wanted: &BTreeMap<String, String>) -> bool {
    wanted
        .iter()
        .all(|(k, v)| actual.iter().any(|(ak, av)| ak == k && av == v))
}

fn read<T: serde::de::DeserializeOwned>(path: &Path) -> T {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run_case(plugin: &str, case: &Path) -> PluginOutput {
    let mut spec = PluginSpec::new(guest(plugin));
    let config = case.join("config.json");
    if config.exists() {
        spec.config = read(&config);
    }
    let input: serde_json::Value = read(&case.join("input.json"));
    let batches: Vec<Batch> = match input {
        serde_json::Value::Array(items) => items
            .into_iter()
            .map(|v| serde_json::from_value(v).expect("batch"))
            .collect(),
        v => vec![serde_json::from_value(v).expect("batch")],
    };
    let mut set = PluginSet::new().expect("engine");
    set.add(&spec)
        .unwrap_or_else(|e| panic!("{}: {e}", case.display()));
    let mut last = PluginOutput::default();
    for (i, b) in batches.iter().enumerate() {
        let report = set.run(b);
        assert!(
            report.failures.is_empty(),
            "{} batch {i}: {:?}",
            case.display(),
            report.failures
        );
        last = report.output;
    }
    last
}

fn check_case(case: &Path, out: &PluginOutput, expected: &Expected) -> Vec<String> {
    let mut problems = Vec::new();
    for f in &expected.findings {
        let found = out.findings.iter().any(|a| {
            a.rule == f.rule
                && f.severity.as_ref().is_none_or(|s| {
                    serde_json::to_value(a.severity).ok()
                        == Some(serde_json::Value::String(s.clone()))
                })
                && has_labels(&a.labels, &f.labels)
        });
        if !found {
            problems.push(format!(
                "missing finding {} {:?} {:?}",
                f.rule, f.severity, f.labels
            ));
        }
    }
    for rule in &expected.absent_rules {
        if out.findings.iter().any(|a| &a.rule == rule) {
            problems.push(format!("unexpected finding {rule}"));
        }
    }
    if let Some(n) = expected.finding_count
        && out.findings.len() != n
    {
        problems.push(format!("{} findings, expected {n}", out.findings.len()));
    }
    for m in &expected.metrics {
        let ok = out.metrics.iter().any(|a| {
            a.name == m.name
                && has_labels(&a.labels, &m.labels)
                && m.min.is_none_or(|min| a.value >= min)
                && m.max.is_none_or(|max| a.value <= max)
        });
        if !ok {
            let seen: Vec<_> = out
                .metrics
                .iter()
                .filter(|a| a.name == m.name)
                .map(|a| (&a.labels, a.value))
                .collect();
            problems.push(format!(
                "no metric {} {:?} in [{:?}, {:?}]; saw {seen:?}",
                m.name, m.labels, m.min, m.max
            ));
        }
    }
    for (name, n) in &expected.metric_count {
        let count = out.metrics.iter().filter(|a| &a.name == name).count();
        if count != *n {
            problems.push(format!("{count} samples of {name}, expected {n}"));
        }
    }
    problems
        .iter()
        .map(|p| format!("{}: {p}", case.display()))
        .collect()
}

fn run_plugin_cases(plugin: &str) {
    let dir = data_dir().join(plugin);
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("expected.json").exists())
        .collect();
    cases.sort();
    assert!(
        cases.len() >= 2,
        "{plugin} needs at least a firing and a quiet case"
    );
    let mut problems = Vec::new();
    for case in &cases {
        let out = run_case(plugin, case);
        problems.extend(check_case(case, &out, &read(&case.join("expected.json"))));
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn slow_imports() {
    run_plugin_cases("slow-imports");
}

#[test]
fn cold_start_budget() {
    run_plugin_cases("cold-start-budget");
}

#[test]
fn memory_trend() {
    run_plugin_cases("memory-trend");
}

#[test]
fn latency_slo() {
    run_plugin_cases("latency-slo");
}
