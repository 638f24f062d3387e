//! Faults on the way out: connection refused, a server that accepts and never
//! answers, 5xx and 429. Each must be bounded in time, counted, never panic,
//! and the next flush must land the correct cumulative values on a real server.

mod export_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use export_support::{
    Fault, FaultProxy, free_port, gateway_metrics, identity, prometheus, pushgateway,
    pushgateway_on, query_until, registry,
};
use pyrometer::export::{
    ExportError, Exporters, MetricsRegistry, PushgatewayConfig, PushgatewayExporter,
    RemoteWriteConfig, RemoteWriteExporter,
};
use pyrometer::model::Invocation;

/// Generous: proves "bounded, did not hang", not a latency.
const BOUND: Duration = Duration::from_secs(10);
const BUDGET: Duration = Duration::from_millis(800);

fn cold_start() -> Invocation {
    Invocation {
        cold_start: true,
        duration_ms: 5.0,
        ..Default::default()
    }
}

fn pushgateway_exporters(url: &str, registry: &Arc<MetricsRegistry>, instance: &str) -> Exporters {
    let exporter = PushgatewayExporter::new(&PushgatewayConfig::new(url), &identity(instance))
        .expect("config");
    Exporters::new(Arc::clone(registry), BUDGET).with(exporter)
}

fn failures(registry: &MetricsRegistry, exporter: &str, reason: &str) -> Option<f64> {
    registry.snapshot().value(
        "pyrometer_flush_failures_total",
        &[("exporter", exporter), ("reason", reason)],
    )
}

fn flush_expecting_failure(exporters: &mut Exporters, name: &str) -> ExportError {
    let started = Instant::now();
    let mut report = exporters.flush();
    assert!(
        started.elapsed() < BOUND,
        "flush took {:?}",
        started.elapsed()
    );
    let outcome = report.outcomes.pop().expect("one exporter ran");
    assert_eq!(outcome.exporter, name);
    outcome.result.expect_err("the fault must surface")
}

#[test]
fn pushgateway_connection_refused_then_recovers() {
    let port = free_port();
    let url = format!("http://127.0.0.1:{port}");
    let registry = registry(&identity("refused"));
    let mut exporters = pushgateway_exporters(&url, &registry, "refused");
    registry.record_invocation(&cold_start());
    let error = flush_expecting_failure(&mut exporters, "pushgateway");
    assert_eq!(error.reason(), "connect", "{error}");
    assert_eq!(failures(&registry, "pushgateway", "connect"), Some(1.0));

    let gateway = pushgateway_on(port);
    registry.record_invocation(&cold_start());
    assert!(exporters.flush().all_succeeded());
    let metrics = gateway_metrics(&gateway.url);
    assert_eq!(
        metrics.value("faas_coldstarts_total", &[("instance", "refused")]),
        Some(2.0)
    );
    assert_eq!(
        metrics.value(
            "pyrometer_flush_failures_total",
            &[("instance", "refused"), ("reason", "connect")]
        ),
        Some(1.0)
    );
}

#[test]
fn pushgateway_that_never_answers_costs_the_budget_then_recovers() {
    let gateway = pushgateway();
    let proxy = FaultProxy::start(Fault::Hang, 1, Some(gateway.url.clone()));
    let registry = registry(&identity("hang"));
    let mut exporters = pushgateway_exporters(&proxy.url, &registry, "hang");
    registry.record_invocation(&cold_start());
    let started = Instant::now();
    let error = flush_expecting_failure(&mut exporters, "pushgateway");
    assert_eq!(error.reason(), "timeout", "{error}");
    assert!(started.elapsed() >= BUDGET / 2, "it waited for the answer");
    assert_eq!(failures(&registry, "pushgateway", "timeout"), Some(1.0));

    registry.record_invocation(&cold_start());
    assert!(exporters.flush().all_succeeded());
    assert_eq!(
        gateway_metrics(&gateway.url).value("faas_coldstarts_total", &[("instance", "hang")]),
        Some(2.0)
    );
}

#[test]
fn pushgateway_5xx_is_counted_then_recovers() {
    let gateway = pushgateway();
    let proxy = FaultProxy::start(Fault::Status(502), 1, Some(gateway.url.clone()));
    let registry = registry(&identity("5xx"));
    let mut exporters = pushgateway_exporters(&proxy.url, &registry, "5xx");
    registry.record_invocation(&cold_start());
    let error = flush_expecting_failure(&mut exporters, "pushgateway");
    assert!(
        matches!(error, ExportError::Unavailable { status: 502, .. }),
        "{error}"
    );
    registry.record_invocation(&cold_start());
    assert!(exporters.flush().all_succeeded());
    assert_eq!(
        gateway_metrics(&gateway.url).value("faas_coldstarts_total", &[("instance", "5xx")]),
        Some(2.0)
    );
    assert_eq!(failures(&registry, "pushgateway", "unavailable"), Some(1.0));
}

fn remote_write_exporters(url: &str, registry: &Arc<MetricsRegistry>, instance: &str) -> Exporters {
    let mut config = RemoteWriteConfig::new(url);
    config.initial_backoff_ms = 20;
    let exporter = RemoteWriteExporter::new(&config, &identity(instance)).expect("config");
    Exporters::new(Arc::clone(registry), BUDGET).with(exporter)
}

fn coldstarts_in_prometheus(prometheus: &str, instance: &str, expected: f64) {
    let promql = format!("faas_coldstarts_total{{instance=\"{instance}\"}}");
    query_until(prometheus, &promql, BOUND, |result| {
        result
            .first()
            .and_then(|r| r["value"][1].as_str())
            .and_then(|v| v.parse::<f64>().ok())
            == Some(expected)
    });
}

/// The server answers `status` to the first `count` requests. With three
/// attempts per flush, `count` 5 fails the first flush (3 requests) and the
/// second flush succeeds on its third request.
fn remote_write_retries_then_recovers(status: u16, instance: &str) {
    let server = prometheus(None);
    let proxy = FaultProxy::start(Fault::Status(status), 5, Some(server.url.clone()));
    let registry = registry(&identity(instance));
    let mut exporters =
        remote_write_exporters(&format!("{}/api/v1/write", proxy.url), &registry, instance);
    registry.record_invocation(&cold_start());
    let error = flush_expecting_failure(&mut exporters, "remote_write");
    assert!(
        matches!(error, ExportError::Unavailable { status: s, attempts: 3, .. } if s == status),
        "{error}"
    );
    assert_eq!(
        proxy.requests.load(std::sync::atomic::Ordering::SeqCst),
        3,
        "retries are bounded"
    );

    registry.record_invocation(&cold_start());
    let report = exporters.flush();
    let outcome = report.outcome("remote_write").expect("ran");
    let stats = outcome
        .result
        .as_ref()
        .expect("the second flush gets through");
    assert_eq!(stats.retries, 2);
    coldstarts_in_prometheus(&server.url, instance, 2.0);

    let snapshot = registry.snapshot();
    assert_eq!(
        snapshot.value(
            "pyrometer_flush_failures_total",
            &[("exporter", "remote_write"), ("reason", "unavailable")]
        ),
        Some(1.0)
    );
    assert_eq!(
        snapshot.value(
            "pyrometer_export_retries_total",
            &[("exporter", "remote_write")]
        ),
        Some(4.0)
    );
    let heads = proxy.heads.lock().expect("heads").clone();
    for head in &heads {
        let head = head.to_ascii_lowercase();
        assert!(head.contains("content-encoding: snappy"), "{head}");
        assert!(
            head.contains("content-type: application/x-protobuf"),
            "{head}"
        );
        assert!(
            head.contains("x-prometheus-remote-write-version: 0.1.0"),
            "{head}"
        );
    }
}

#[test]
fn remote_write_5xx_is_retried_bounded_and_recovers() {
    remote_write_retries_then_recovers(503, "rw-5xx");
}

#[test]
fn remote_write_429_is_retried_bounded_and_recovers() {
    remote_write_retries_then_recovers(429, "rw-429");
}

#[test]
fn remote_write_connection_refused_and_hang_are_bounded() {
    let registry = registry(&identity("rw-down"));
    let refused = format!("http://127.0.0.1:{}/api/v1/write", free_port());
    let mut exporters = remote_write_exporters(&refused, &registry, "rw-down");
    registry.record_invocation(&cold_start());
    let error = flush_expecting_failure(&mut exporters, "remote_write");
    assert_eq!(error.reason(), "connect", "{error}");

    let server = prometheus(None);
    let proxy = FaultProxy::start(Fault::Hang, 1, Some(server.url.clone()));
    let mut exporters =
        remote_write_exporters(&format!("{}/api/v1/write", proxy.url), &registry, "rw-down");
    let error = flush_expecting_failure(&mut exporters, "remote_write");
    assert_eq!(error.reason(), "timeout", "{error}");
    registry.record_invocation(&cold_start());
    assert!(exporters.flush().all_succeeded());
    coldstarts_in_prometheus(&server.url, "rw-down", 2.0);
    assert_eq!(failures(&registry, "remote_write", "connect"), Some(1.0));
    assert_eq!(failures(&registry, "remote_write", "timeout"), Some(1.0));
}

#[test]
fn exporters_fail_independently_within_one_budget() {
    let gateway = pushgateway();
    let hang = FaultProxy::start(Fault::Hang, usize::MAX, None);
    let id = identity("mixed");
    let registry = registry(&id);
    let mut exporters = Exporters::new(Arc::clone(&registry), BUDGET)
        .with(PushgatewayExporter::new(&PushgatewayConfig::new(&gateway.url), &id).expect("config"))
        .with(
            RemoteWriteExporter::new(
                &RemoteWriteConfig::new(format!("{}/api/v1/write", hang.url)),
                &id,
            )
            .expect("config"),
        );
    registry.record_invocation(&cold_start());
    let started = Instant::now();
    let report = exporters.flush();
    assert!(started.elapsed() < BOUND);
    assert!(
        report
            .outcome("pushgateway")
            .is_some_and(|o| o.result.is_ok()),
        "{report:?}"
    );
    assert!(
        report
            .outcome("remote_write")
            .is_some_and(|o| o.result.is_err()),
        "{report:?}"
    );
    assert_eq!(
        gateway_metrics(&gateway.url).value("faas_coldstarts_total", &[("instance", "mixed")]),
        Some(1.0)
    );
}
