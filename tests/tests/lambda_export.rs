//! `pyrometer lambda --push-gateway`: the run's metrics, plugin self-metrics
//! and plugin outputs land in a real Pushgateway (Debian's
//! `prometheus-pushgateway`, started here on loopback).

use std::path::PathBuf;
use std::process::Command;

use pyrometer_tests::gateway::{Gateway, get};
use pyrometer_tests::{assert_success, guest, pyrometer_bin};

#[test]
fn a_run_lands_in_the_pushgateway() {
    let gw = Gateway::start();
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/leaky");
    let out = Command::new(pyrometer_bin())
        .current_dir(&app)
        .args([
            "lambda",
            "app.py:handler",
            "--invocations",
            "12",
            "--function-name",
            "leaky/fn",
            "--push-gateway",
            &gw.url,
        ])
        .arg("--plugin")
        .arg(guest("memory-trend"))
        .output()
        .expect("run pyrometer lambda");
    assert_success(&out);
    let text = get(&format!("{}/metrics", gw.url)).expect("gateway metrics");
    let series = |name: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(name) && l.contains(r#"function_name="leaky/fn""#))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(series("faas_invocations_total{"), 12.0, "{text}");
    assert_eq!(series("faas_coldstarts_total{"), 1.0, "{text}");
    assert!(
        series("pyrometer_plugin_calls_total{") >= 12.0,
        "plugin self-metrics are exported: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("pyrometer_memory_trend_window_samples{")),
        "plugin metrics are exported: {text}"
    );
    assert_eq!(
        series("faas_init_duration_seconds_count{"),
        1.0,
        "one cold start observed: {text}"
    );
}
