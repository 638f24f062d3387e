//! Remote write 1.0 into a real Prometheus (`--web.enable-remote-write-receiver`),
//! read back through its HTTP query API.

mod export_support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use export_support::{identity, prometheus, query, query_until, registry};
use pyrometer::export::{Exporters, RemoteWriteConfig, RemoteWriteExporter};
use pyrometer::model::{Invocation, Status};

const BOUND: Duration = Duration::from_secs(15);

fn value(result: &[serde_json::Value]) -> Option<f64> {
    result.first()?["value"][1].as_str()?.parse().ok()
}

#[test]
fn series_arrive_with_their_values_and_labels_and_go_stale_on_shutdown() {
    let server = prometheus(None);
    let instance = "2026/11/25/[$LATEST]feed";
    let id = identity(instance);
    let registry = registry(&id);
    let exporter = RemoteWriteExporter::new(
        &RemoteWriteConfig::new(format!("{}/api/v1/write", server.url)),
        &id,
    )
    .expect("config");
    let mut exporters =
        Exporters::new(Arc::clone(&registry), Duration::from_secs(5)).with(exporter);

    registry.record_invocation(&Invocation {
        cold_start: true,
        duration_ms: 300.0,
        init_duration_ms: Some(700.0),
        ..Default::default()
    });
    assert!(exporters.flush().all_succeeded());
    for _ in 0..3 {
        registry.record_invocation(&Invocation {
            status: Status::Error,
            duration_ms: 20.0,
            ..Default::default()
        });
    }
    let report = exporters.flush();
    assert!(report.all_succeeded(), "{report:?}");

    let promql = "faas_invocations_total{job=\"pyrometer-test\",status=\"error\"}";
    let result = query_until(&server.url, promql, BOUND, |r| value(r) == Some(3.0));
    let metric = result[0]["metric"].as_object().expect("labels").clone();
    let labels: Vec<(String, String)> = metric
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
        .collect();
    let expected: Vec<(String, String)> = [
        ("__name__", "faas_invocations_total"),
        ("cold_start", "false"),
        ("function_name", "checkout"),
        ("function_version", "$LATEST/v2"),
        ("instance", instance),
        ("job", "pyrometer-test"),
        ("status", "error"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(labels, expected);

    // Histograms arrive as classic buckets that PromQL can use.
    let init_count = query(&server.url, "faas_init_duration_seconds_count");
    assert_eq!(value(&init_count), Some(1.0));
    let le_1 = query(&server.url, "faas_init_duration_seconds_bucket{le=\"1\"}");
    assert_eq!(value(&le_1), Some(1.0));
    let le_half = query(&server.url, "faas_init_duration_seconds_bucket{le=\"0.5\"}");
    assert_eq!(value(&le_half), Some(0.0));
    // The self-metrics of the first flush arrived with the second.
    let flushes = query(
        &server.url,
        "pyrometer_flushes_total{exporter=\"remote_write\"}",
    );
    assert_eq!(value(&flushes), Some(1.0));

    // Shutdown: final values, then stale markers; an instant query no longer
    // returns the series.
    let report = exporters.shutdown(Instant::now() + Duration::from_secs(5));
    assert!(report.all_succeeded(), "{report:?}");
    query_until(&server.url, promql, BOUND, <[serde_json::Value]>::is_empty);
    assert!(query(&server.url, "faas_init_duration_seconds_count").is_empty());
}
