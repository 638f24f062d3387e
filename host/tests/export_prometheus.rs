//! The Prometheus text exposition: `promtool check metrics` on real output, and
//! the `/metrics` pull endpoint scraped by a real Prometheus.

mod export_support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use export_support::{get, identity, prometheus, query_until, registry, require};
use pyrometer::export::MetricsRegistry;
use pyrometer::export::catalogue::{CATALOGUE, MetricSpec};
use pyrometer::export::prometheus::MetricsServer;
use pyrometer::model::{
    Batch, Finding, FunctionInfo, ImportProfile, ImportedModule, Invocation, MetricKind, Origin,
    PluginMetric, PluginOutput, Severity, Status,
};

/// A registry where every catalogue metric and some plugin output has a value.
fn populated() -> Arc<MetricsRegistry> {
    let registry = registry(&identity("2026/11/25/[$LATEST]abc"));
    registry.record_batch(&Batch {
        function: FunctionInfo {
            name: "checkout".into(),
            version: "7".into(),
            runtime: "python3.12".into(),
            memory_size_mb: 512,
        },
        invocations: vec![
            Invocation {
                request_id: "r-1".into(),
                cold_start: true,
                duration_ms: 250.0,
                billed_duration_ms: Some(251.0),
                init_duration_ms: Some(900.0),
                max_memory_used_mb: Some(120.0),
                memory_size_mb: Some(512.0),
                rss_bytes: Some(9.0e7),
                cpu_user_ms: Some(100.0),
                cpu_system_ms: Some(20.0),
                gc_collections: 2,
                gc_pause_ms: Some(3.0),
                allocated_blocks: Some(70_000.0),
                post_runtime_ms: Some(1.5),
                ..Default::default()
            },
            Invocation {
                request_id: "r-2".into(),
                status: Status::OutOfMemory,
                duration_ms: 80.0,
                ..Default::default()
            },
        ],
        imports: Some(ImportProfile {
            modules: vec![ImportedModule {
                module: "boto3".into(),
                parent: None,
                self_us: 100_000,
                cumulative_us: 300_000,
                origin: Origin::SitePackages,
                error: None,
            }],
        }),
    });
    // Figures other stages record: give every remaining catalogue entry a value.
    let untouched: Vec<&MetricSpec> = CATALOGUE
        .iter()
        .filter(|spec| registry.snapshot().family(spec.name).is_none())
        .collect();
    for spec in untouched {
        let labels: Vec<(&str, &str)> = spec.labels.iter().map(|l| (*l, "x")).collect();
        registry.record(spec, &labels, 1.0);
    }
    registry.record_plugin_output(
        "leak",
        &PluginOutput {
            metrics: vec![
                PluginMetric {
                    plugin: String::new(),
                    name: "leak_suspect_growth_bytes".into(),
                    kind: MetricKind::Gauge,
                    help: "Growth of \"allocated\" memory\nper invocation.".into(),
                    labels: vec![("path".into(), "a\\b\"c".into())],
                    value: 1024.0,
                },
                PluginMetric {
                    plugin: String::new(),
                    name: "leak_checks_total".into(),
                    kind: MetricKind::Counter,
                    help: "Checks run.".into(),
                    labels: vec![],
                    value: 0.5,
                },
                PluginMetric {
                    plugin: String::new(),
                    name: "leak_check_duration_seconds".into(),
                    kind: MetricKind::Histogram,
                    help: "Duration of a check.".into(),
                    labels: vec![],
                    value: 0.02,
                },
            ],
            findings: vec![Finding {
                plugin: "leak".into(),
                rule: "memory-leak".into(),
                severity: Severity::Warning,
                message: "grows".into(),
                labels: vec![],
            }],
        },
    );
    registry
}

fn promtool_check_metrics(text: &str) -> (bool, String) {
    let mut child = Command::new(require("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run promtool");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let output = child.wait_with_output().expect("promtool finished");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success() && said.trim().is_empty(), said)
}

#[test]
fn promtool_finds_nothing_in_the_rendered_registry() {
    let registry = populated();
    let text = registry.render();
    for spec in CATALOGUE {
        assert!(
            text.contains(&format!("# HELP {} ", spec.name)),
            "{} missing:\n{text}",
            spec.name
        );
    }
    assert!(
        !text.contains("r-1"),
        "a request id leaked into the exposition"
    );
    let (clean, said) = promtool_check_metrics(&text);
    assert!(clean, "promtool check metrics:\n{said}\n--- on ---\n{text}");
}

#[test]
fn promtool_would_notice_a_bad_exposition() {
    // Proves the check above can fail: a gauge named like a counter, no HELP.
    let (clean, said) = promtool_check_metrics("# TYPE bad_total gauge\nbad_total 1\n");
    assert!(!clean, "{said}");
}

#[test]
fn the_pull_endpoint_serves_the_registry() {
    let registry = populated();
    let server = MetricsServer::bind("127.0.0.1:0", Arc::clone(&registry)).expect("bind");
    let base = format!("http://{}", server.local_addr());
    let (status, body) = get(&format!("{base}/metrics"));
    assert_eq!(status, 200);
    assert!(body.contains("faas_coldstarts_total{"), "{body}");
    let (clean, said) = promtool_check_metrics(&body);
    assert!(clean, "{said}");
    assert_eq!(get(&format!("{base}/nope")).0, 404);
    assert_eq!(get(&format!("{base}/-/healthy")).0, 200);

    // gzip when asked for.
    let mut stream = std::net::TcpStream::connect(server.local_addr()).expect("connect");
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
        .expect("send");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).expect("read");
    let split = answer
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head")
        + 4;
    let head = String::from_utf8_lossy(&answer[..split]).to_ascii_lowercase();
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    flate2::read::GzDecoder::new(&answer[split..])
        .read_to_string(&mut text)
        .expect("gunzip");
    assert!(text.contains("faas_coldstarts_total{"));
    server.shutdown();
}

#[test]
fn a_real_prometheus_scrapes_the_pull_endpoint() {
    let registry = populated();
    let server = MetricsServer::bind("127.0.0.1:0", Arc::clone(&registry)).expect("bind");
    let prometheus = prometheus(Some(server.local_addr()));
    let result = query_until(
        &prometheus.url,
        "faas_invocations_total{job=\"sidecar\",status=\"out-of-memory\"}",
        Duration::from_secs(30),
        |r| !r.is_empty(),
    );
    assert_eq!(result[0]["metric"]["function_version"], "$LATEST/v2");
    assert_eq!(result[0]["value"][1], "1");
    let up = query_until(
        &prometheus.url,
        "up{job=\"sidecar\"}",
        Duration::from_secs(30),
        |r| !r.is_empty(),
    );
    assert_eq!(up[0]["value"][1], "1");
}
