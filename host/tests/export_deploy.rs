//! The alerting rules and the Grafana dashboard in `deploy/`: checked and
//! unit-tested by `promtool`, every query parsed by a real Prometheus, and every
//! metric they name present in the catalogue (and every catalogue metric on the
//! dashboard).

mod export_support;

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Command;

use export_support::{get, percent_encode, prometheus, require};
use pyrometer::export::catalogue::{CATALOGUE, find};

fn deploy() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn promtool(args: &[&str], dir: &std::path::Path) -> String {
    let output = Command::new(require("promtool"))
        .args(args)
        .current_dir(dir)
        .output()
        .expect("run promtool");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool {args:?} failed:\n{said}");
    said
}

/// Metric names the text refers to (by our prefixes), without histogram suffixes.
fn referenced_metrics(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|token| {
            ["faas_", "python_", "process_", "pyrometer_", "http_"]
                .iter()
                .any(|p| token.starts_with(p))
        })
        .map(|token| {
            ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|suffix| {
                    token
                        .strip_suffix(suffix)
                        .filter(|base| find(base).is_some())
                })
                .unwrap_or(token)
                .to_owned()
        })
        // Label names share the prefixes (`http_route`): they are not metrics.
        .filter(|token| !CATALOGUE.iter().any(|s| s.labels.contains(&token.as_str())))
        .collect()
}

fn dashboard() -> serde_json::Value {
    let text = std::fs::read_to_string(deploy().join("grafana/pyrometer-dashboard.json"))
        .expect("dashboard");
    serde_json::from_str(&text).expect("the dashboard is JSON")
}

fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().cloned().unwrap_or_default())
        .filter_map(|target| target["expr"].as_str().map(str::to_owned))
        .collect()
}

#[test]
fn promtool_checks_and_unit_tests_the_rules() {
    let dir = deploy().join("prometheus");
    let said = promtool(&["check", "rules", "pyrometer-rules.yml"], &dir);
    assert!(said.contains("SUCCESS"), "{said}");
    let said = promtool(&["test", "rules", "pyrometer-rules.test.yml"], &dir);
    assert!(said.contains("SUCCESS"), "{said}");
}

#[test]
fn rules_and_dashboard_name_only_catalogue_metrics() {
    let rules =
        std::fs::read_to_string(deploy().join("prometheus/pyrometer-rules.yml")).expect("rules");
    let dashboard_text = dashboard_queries(&dashboard()).join("\n");
    for (what, text) in [("rules", &rules), ("dashboard", &dashboard_text)] {
        let unknown: Vec<_> = referenced_metrics(text)
            .into_iter()
            .filter(|m| find(m).is_none())
            .collect();
        assert!(
            unknown.is_empty(),
            "{what} refer to metrics outside the catalogue: {unknown:?}"
        );
    }
    let shown = referenced_metrics(&dashboard_text);
    let missing: Vec<_> = CATALOGUE
        .iter()
        .map(|s| s.name)
        .filter(|n| !shown.contains(*n))
        .collect();
    assert!(
        missing.is_empty(),
        "catalogue metrics missing from the dashboard: {missing:?}"
    );
}

#[test]
fn every_dashboard_query_parses_in_prometheus() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "pyrometer-functions");
    let server = prometheus(None);
    for expr in dashboard_queries(&dashboard) {
        let promql = expr
            .replace("$__rate_interval", "5m")
            .replace("$__range", "1h")
            .replace("$function", ".*")
            .replace("$version", ".*");
        let (status, body) = get(&format!(
            "{}/api/v1/query?query={}",
            server.url,
            percent_encode(&promql)
        ));
        assert_eq!(status, 200, "{promql}\n{body}");
    }
}
