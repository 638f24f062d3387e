//! The Pushgateway exporter against a real `prometheus-pushgateway`.

mod export_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use export_support::{FaultProxy, gateway_metrics, identity, pushgateway, registry};
use pyrometer::export::pushgateway::{GcConfig, gc_stale_groups};
use pyrometer::export::{
    Auth, ExportError, Exporters, MetricsRegistry, PushgatewayConfig, PushgatewayExporter,
};
use pyrometer::model::{Invocation, MetricKind, PluginMetric, PluginOutput, Status};

fn exporters(url: &str, registry: &Arc<MetricsRegistry>, instance: &str) -> Exporters {
    let exporter = PushgatewayExporter::new(&PushgatewayConfig::new(url), &identity(instance))
        .expect("valid config");
    Exporters::new(Arc::clone(registry), Duration::from_secs(5)).with(exporter)
}

fn invocation(cold: bool, status: Status) -> Invocation {
    Invocation {
        request_id: "8f3a-request-id".into(),
        cold_start: cold,
        status,
        duration_ms: 42.0,
        ..Default::default()
    }
}

const INSTANCE: &str = "2026/11/25/[$LATEST]0123456789abcdef";

#[test]
fn the_group_holds_the_cumulative_registry_after_several_flushes() {
    let gateway = pushgateway();
    let id = identity(INSTANCE);
    let registry = registry(&id);
    let mut exporters = exporters(&gateway.url, &registry, INSTANCE);

    registry.record_invocation(&invocation(true, Status::Success));
    assert!(exporters.flush().all_succeeded());
    registry.record_invocation(&invocation(false, Status::Success));
    registry.record_invocation(&invocation(false, Status::Error));
    assert!(exporters.flush().all_succeeded());
    registry.record_invocation(&invocation(false, Status::Success));
    let report = exporters.flush();
    assert!(report.all_succeeded(), "{report:?}");

    let metrics = gateway_metrics(&gateway.url);
    // Every label of the grouping key survived base64, `/`, `$` and `[` included.
    let group = [
        ("job", "pyrometer-test"),
        ("instance", INSTANCE),
        ("function_name", "checkout"),
        ("function_version", "$LATEST/v2"),
    ];
    let with = |extra: &[(&'static str, &'static str)]| [&group[..], extra].concat();
    assert_eq!(
        metrics.value(
            "faas_invocations_total",
            &with(&[("cold_start", "false"), ("status", "success")])
        ),
        Some(2.0)
    );
    assert_eq!(
        metrics.value(
            "faas_invocations_total",
            &with(&[("cold_start", "true"), ("status", "success")])
        ),
        Some(1.0)
    );
    assert_eq!(
        metrics.value("faas_errors_total", &with(&[("status", "error")])),
        Some(1.0)
    );
    assert_eq!(
        metrics.value(
            "faas_invoke_duration_seconds_count",
            &with(&[("status", "success"), ("cold_start", "false")])
        ),
        Some(2.0)
    );
    // The flush's own metrics arrive one flush late: two flushes were recorded before the third snapshot.
    assert_eq!(
        metrics.value(
            "pyrometer_flushes_total",
            &with(&[("exporter", "pushgateway")])
        ),
        Some(2.0)
    );
    // Exactly one group, and the request id is nowhere.
    assert_eq!(metrics.samples("push_time_seconds").count(), 1);
    assert!(!metrics.text.contains("8f3a-request-id"));
}

#[test]
fn values_with_slashes_make_distinct_groups() {
    let gateway = pushgateway();
    for instance in ["a/b", "a", "b/"] {
        let id = identity(instance);
        let registry = registry(&id);
        registry.record_invocation(&invocation(true, Status::Success));
        let report = exporters(&gateway.url, &registry, instance).flush();
        assert!(report.all_succeeded(), "{report:?}");
    }
    let metrics = gateway_metrics(&gateway.url);
    let mut instances: Vec<_> = metrics
        .samples("push_time_seconds")
        .filter_map(|s| s.label("instance").map(str::to_owned))
        .collect();
    instances.sort();
    assert_eq!(instances, ["a", "a/b", "b/"]);
}

fn plugin_metric(kind: MetricKind) -> PluginOutput {
    PluginOutput {
        metrics: vec![PluginMetric {
            plugin: String::new(),
            name: "clashing_metric".into(),
            kind,
            help: "Pushed as two types.".into(),
            labels: vec![],
            value: 1.0,
        }],
        findings: vec![],
    }
}

#[test]
fn a_type_clash_is_answered_400_logged_and_counted() {
    let gateway = pushgateway();
    let first = registry(&identity("one"));
    first.record_plugin_output("p", &plugin_metric(MetricKind::Counter));
    let mut first_exporters = exporters(&gateway.url, &first, "one");
    assert!(first_exporters.flush().all_succeeded());

    let second = registry(&identity("two"));
    second.record_plugin_output("p", &plugin_metric(MetricKind::Gauge));
    let mut second_exporters = exporters(&gateway.url, &second, "two");
    let report = second_exporters.flush();
    let outcome = report.outcome("pushgateway").expect("ran");
    match &outcome.result {
        Err(ExportError::Rejected {
            status: 400,
            message,
        }) => {
            assert!(
                message.contains("clashing_metric"),
                "the gateway's explanation is kept: {message}"
            )
        }
        other => panic!("expected a 400 rejection, got {other:?}"),
    }
    let counted = second.snapshot().value(
        "pyrometer_flush_failures_total",
        &[("exporter", "pushgateway"), ("reason", "rejected")],
    );
    assert_eq!(counted, Some(1.0));

    // Once the clashing group is gone, the same exporter pushes fine.
    let first_group =
        PushgatewayExporter::new(&PushgatewayConfig::new(&gateway.url), &identity("one"))
            .expect("valid config");
    first_group
        .delete(Instant::now() + Duration::from_secs(5))
        .expect("delete");
    assert!(second_exporters.flush().all_succeeded());
    let metrics = gateway_metrics(&gateway.url);
    assert_eq!(
        metrics.value("clashing_metric", &[("instance", "two")]),
        Some(1.0)
    );
}

#[test]
fn gc_deletes_only_stale_groups() {
    let gateway = pushgateway();
    let push = |instance: &str| {
        let registry = registry(&identity(instance));
        registry.record_invocation(&invocation(true, Status::Success));
        assert!(
            exporters(&gateway.url, &registry, instance)
                .flush()
                .all_succeeded()
        );
    };
    push("stale/env");
    // Staleness is the subject here: the first group has to age past the bound.
    std::thread::sleep(Duration::from_millis(1_500));
    push("fresh/env");

    let mut config = GcConfig::new(&gateway.url, Duration::from_secs(1));
    config.dry_run = true;
    let dry = gc_stale_groups(&config).expect("dry run");
    assert_eq!(dry.deleted.len(), 1);
    assert_eq!(
        gateway_metrics(&gateway.url)
            .samples("push_time_seconds")
            .count(),
        2
    );

    config.dry_run = false;
    let report = gc_stale_groups(&config).expect("gc");
    assert_eq!(report.kept, 1);
    assert!(report.failed.is_empty(), "{report:?}");
    assert_eq!(report.deleted.len(), 1);
    assert_eq!(
        report.deleted[0].get("instance").map(String::as_str),
        Some("stale/env")
    );
    let left: Vec<_> = gateway_metrics(&gateway.url)
        .samples("push_time_seconds")
        .filter_map(|s| s.label("instance").map(str::to_owned))
        .collect();
    assert_eq!(left, ["fresh/env"]);
}

#[test]
fn shutdown_can_delete_the_group() {
    let gateway = pushgateway();
    let id = identity("leaving");
    let registry = registry(&id);
    registry.record_invocation(&invocation(true, Status::Success));
    let mut config = PushgatewayConfig::new(&gateway.url);
    config.delete_on_shutdown = true;
    let exporter = PushgatewayExporter::new(&config, &id).expect("valid config");
    let mut exporters =
        Exporters::new(Arc::clone(&registry), Duration::from_secs(5)).with(exporter);
    assert!(exporters.flush().all_succeeded());
    assert_eq!(
        gateway_metrics(&gateway.url)
            .samples("push_time_seconds")
            .count(),
        1
    );
    let report = exporters.shutdown(Instant::now() + Duration::from_secs(5));
    assert!(report.all_succeeded(), "{report:?}");
    assert_eq!(
        gateway_metrics(&gateway.url)
            .samples("push_time_seconds")
            .count(),
        0
    );
}

#[test]
fn requests_carry_auth_and_a_gzip_body() {
    let gateway = pushgateway();
    let proxy = FaultProxy::start(
        export_support::Fault::Status(500),
        0,
        Some(gateway.url.clone()),
    );
    let id = identity("auth");
    let registry = registry(&id);
    registry.record_invocation(&invocation(true, Status::Success));
    let mut config = PushgatewayConfig::new(&proxy.url);
    config.auth = Some(Auth::Bearer("s3cret".into()));
    let exporter = PushgatewayExporter::new(&config, &id).expect("valid config");
    let mut exporters =
        Exporters::new(Arc::clone(&registry), Duration::from_secs(5)).with(exporter);
    assert!(exporters.flush().all_succeeded());
    let heads = proxy.heads.lock().expect("heads").clone();
    let head = heads[0].to_ascii_lowercase();
    assert!(head.starts_with("put /metrics/job@base64/"), "{head}");
    assert!(head.contains("authorization: bearer s3cret"), "{head}");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    // The gateway understood the gzipped body.
    assert_eq!(
        gateway_metrics(&gateway.url).value("faas_coldstarts_total", &[("instance", "auth")]),
        Some(1.0)
    );
}
