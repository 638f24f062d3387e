//! The real `pyrometer-extension` binary under the local emulator, started as
//! Lambda starts `/opt/extensions/*`, beside real CPython with the probe
//! injected by the exec wrapper, pushing to a real Pushgateway — and to
//! gateways that are down or never answer, which must not slow the function
//! beyond the flush budget nor keep SHUTDOWN past its deadline.

use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use pyrometer::emulator::{Emulator, EmulatorConfig, ShutdownReason, Status};
use pyrometer::plugins::{PluginSet, artifact};
use pyrometer::python_assets;
use pyrometer_tests::gateway::{Gateway, free_port, series_sum};
use pyrometer_tests::{extension_bin, guest, python3};

/// The flush budget the tests configure, ms.
const FLUSH_BUDGET_MS: u64 = 200;
/// A generous bound on one invocation's latency as the caller sees it: a
/// small handler, plus the flush budget, plus scheduling noise on a busy CI host.
const INVOKE_BOUND: Duration = Duration::from_millis(FLUSH_BUDGET_MS + 1_500);

const HANDLER: &str = r#"
import json
import decimal
import os
import time


def handler(event, context):
    if event.get("sleep"):
        time.sleep(event["sleep"])
    if event.get("crash"):
        os._exit(3)
    return {"ok": True, "n": len(json.dumps(event)), "d": str(decimal.Decimal(1) / 3)}
"#;

/// A function with the probe and the extension, exporting to `gateway_url`.
struct Function {
    emulator: Emulator,
    dir: tempfile::TempDir,
}

fn start_function(name: &str, gateway_url: &str, extra_env: &[(&str, &str)]) -> Function {
    start_function_with(name, gateway_url, extra_env, |_| {})
}

fn start_function_with(
    name: &str,
    gateway_url: &str,
    extra_env: &[(&str, &str)],
    adjust: impl FnOnce(&mut EmulatorConfig),
) -> Function {
    let dir = tempfile::tempdir().expect("tempdir");
    let task_root = dir.path().join("task");
    std::fs::create_dir_all(&task_root).expect("task root");
    std::fs::write(task_root.join("app.py"), HANDLER).expect("handler");
    let probe = python_assets::install(&dir.path().join("probe")).expect("probe");
    let socket = dir.path().join("probe.sock");
    let mut config = EmulatorConfig::new(
        [
            python3().into_os_string(),
            probe.runtime_script.into_os_string(),
        ],
        "app.handler",
        &task_root,
    );
    config.function_name = name.to_owned();
    config.exec_wrapper = Some(probe.exec_wrapper);
    config.extensions.push(extension_bin());
    config.echo_logs = std::env::var_os("PYROMETER_ECHO_LOGS").is_some();
    let mut env = vec![
        ("PYROMETER_PROBE_SOCKET", path_str(&socket)),
        ("PYROMETER_PUSHGATEWAY_URL", gateway_url.to_owned()),
        ("PYROMETER_FLUSH_BUDGET_MS", FLUSH_BUDGET_MS.to_string()),
        ("PYROMETER_LOG", "info".to_owned()),
    ];
    env.extend(extra_env.iter().map(|(k, v)| (*k, (*v).to_owned())));
    config.env = env.into_iter().map(|(k, v)| (k.into(), v.into())).collect();
    adjust(&mut config);
    let emulator = Emulator::start(config).expect("emulator");
    Function { emulator, dir }
}

fn path_str(path: &Path) -> String {
    path.to_str().expect("utf-8 path").to_owned()
}

/// Invokes `n` times; returns each invocation's latency as the caller saw it.
fn invoke(function: &mut Function, n: usize) -> Vec<Duration> {
    (0..n)
        .map(|i| {
            let started = Instant::now();
            let outcome = function
                .emulator
                .invoke(format!(r#"{{"i": {i}}}"#))
                .expect("invoke");
            assert_eq!(outcome.status, Status::Success, "{outcome:?}");
            started.elapsed()
        })
        .collect()
}

#[test]
fn cold_then_warm_invocations_land_in_the_pushgateway() {
    let gw = Gateway::start();
    let mut function = start_function("ext/e2e", &gw.url, &[]);
    let latencies = invoke(&mut function, 3);
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(shutdown.killed.is_empty(), "{shutdown:?}");
    assert!(latencies.iter().all(|l| *l < INVOKE_BOUND), "{latencies:?}");
    let text = gw.metrics().expect("gateway metrics");
    let fn_label = r#"function_name="ext/e2e""#;
    let sum = |prefix: &str, labels: &[&str]| {
        let mut all = vec![fn_label];
        all.extend_from_slice(labels);
        series_sum(&text, prefix, &all)
    };
    assert_eq!(sum("faas_invocations_total{", &[]), 3.0, "{text}");
    assert_eq!(
        sum("faas_invocations_total{", &[r#"cold_start="true""#]),
        1.0,
        "{text}"
    );
    assert_eq!(
        sum("faas_invocations_total{", &[r#"cold_start="false""#]),
        2.0,
        "{text}"
    );
    assert_eq!(sum("faas_coldstarts_total{", &[]), 1.0, "{text}");
    assert_eq!(sum("faas_init_duration_seconds_count{", &[]), 1.0, "{text}");
    // The probe's figures: RSS and CPU of the runtime, the import profile.
    assert!(sum("process_resident_memory_bytes{", &[]) > 0.0, "{text}");
    assert!(sum("process_cpu_seconds_total{", &[]) > 0.0, "{text}");
    // procfs samples of the runtime, taken by the extension around each invocation.
    assert!(sum("process_open_fds{", &[]) >= 3.0, "{text}");
    assert!(sum("process_threads{", &[]) >= 1.0, "{text}");
    assert!(
        sum("python_import_duration_seconds_count{", &[]) >= 1.0,
        "{text}"
    );
    assert!(sum("python_info{", &[]) >= 1.0, "{text}");
    // platform.report arrives after `next`: its billed durations join later
    // flushes, the last one at SHUTDOWN.
    assert!(
        sum("faas_billed_duration_seconds_count{", &[]) >= 2.0,
        "{text}"
    );
    drop(function.dir);
}

/// A gateway that accepts connections and never answers.
fn silent_gateway() -> (String, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let handle = std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    (url, handle)
}

#[test]
fn a_gateway_that_never_answers_costs_at_most_the_budget_and_shutdown_keeps_its_deadline() {
    let (url, _gateway) = silent_gateway();
    let mut function = start_function("ext/silent", &url, &[]);
    let latencies = invoke(&mut function, 3);
    assert!(latencies.iter().all(|l| *l < INVOKE_BOUND), "{latencies:?}");
    let started = Instant::now();
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(
        shutdown.killed.is_empty(),
        "the extension finished before the deadline: {shutdown:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(2_000 + 500),
        "{shutdown:?}"
    );
}

#[test]
fn a_gateway_that_is_down_does_not_slow_invocations() {
    let url = format!("http://127.0.0.1:{}", free_port());
    let mut function = start_function("ext/down", &url, &[("PYROMETER_FLUSH", "bogus")]);
    let latencies = invoke(&mut function, 5);
    assert!(latencies.iter().all(|l| *l < INVOKE_BOUND), "{latencies:?}");
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(shutdown.killed.is_empty(), "{shutdown:?}");
}

#[test]
fn the_cold_start_import_profile_reaches_a_precompiled_plugin() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let set = PluginSet::new().expect("plugin engine");
    let cwasm = dir.path().join("slow-imports.cwasm");
    let bytes = artifact::precompile(set.engine(), &guest("slow-imports")).expect("precompile");
    std::fs::write(&cwasm, bytes).expect("write cwasm");
    let plugins = path_str(&cwasm);
    let mut function = start_function(
        "ext/plugins",
        &gw.url,
        &[
            ("PYROMETER_PLUGINS", plugins.as_str()),
            ("PYROMETER_PLUGIN_CONFIG", "slow-imports:top_n=3;ghost:x=1"),
        ],
    );
    invoke(&mut function, 2);
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(shutdown.killed.is_empty(), "{shutdown:?}");
    let text = gw.metrics().expect("gateway metrics");
    let labels = [r#"function_name="ext/plugins""#];
    assert!(
        series_sum(&text, "pyrometer_slow_imports_phase_seconds{", &labels) > 0.0,
        "the plugin saw the import profile: {text}"
    );
    assert!(
        series_sum(&text, "pyrometer_plugin_calls_total{", &labels) >= 1.0,
        "plugin self-metrics are exported: {text}"
    );
    assert_eq!(
        series_sum(&text, "faas_invocations_total{", &labels),
        2.0,
        "{text}"
    );
}

#[test]
fn a_timeout_and_a_crash_are_reported_and_survived() {
    let gw = Gateway::start();
    let mut function = start_function_with("ext/faults", &gw.url, &[], |c| {
        c.timeout = Duration::from_millis(1_000);
    });
    let emulator = &mut function.emulator;
    let timed_out = emulator.invoke(r#"{"sleep": 3}"#).expect("invoke");
    assert_eq!(timed_out.status, Status::Timeout, "{timed_out:?}");
    let crashed = emulator.invoke(r#"{"crash": true}"#).expect("invoke");
    assert_ne!(crashed.status, Status::Success, "{crashed:?}");
    let fine = emulator.invoke("{}").expect("invoke");
    assert_eq!(fine.status, Status::Success, "{fine:?}");
    let shutdown = emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(shutdown.killed.is_empty(), "{shutdown:?}");
    let text = gw.metrics().expect("gateway metrics");
    let labels = [r#"function_name="ext/faults""#];
    assert_eq!(
        series_sum(&text, "faas_invocations_total{", &labels),
        3.0,
        "{text}"
    );
    assert_eq!(
        series_sum(&text, "faas_timeouts_total{", &labels),
        1.0,
        "{text}"
    );
    assert_eq!(
        series_sum(&text, "faas_errors_total{", &labels),
        2.0,
        "{text}"
    );
    assert_eq!(
        series_sum(&text, "faas_coldstarts_total{", &labels),
        3.0,
        "every fault reset the environment: {text}"
    );
}

#[test]
fn periodic_flushes_hold_back_until_the_period_or_shutdown() {
    let gw = Gateway::start();
    let mut function = start_function(
        "ext/periodic",
        &gw.url,
        &[("PYROMETER_FLUSH", "periodic,60000")],
    );
    invoke(&mut function, 3);
    let labels = [r#"function_name="ext/periodic""#];
    let pushed = |gw: &Gateway| {
        let text = gw.metrics().expect("gateway metrics");
        series_sum(&text, "faas_invocations_total{", &labels)
    };
    assert_eq!(
        pushed(&gw),
        1.0,
        "only the first invocation's flush was due"
    );
    function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert_eq!(pushed(&gw), 3.0, "SHUTDOWN flushes the rest");
}

#[test]
fn setup_faults_never_fail_the_function_unless_asked_to() {
    let faults = [
        ("PYROMETER_PLUGINS", "/nonexistent/plugin.cwasm"),
        ("PYROMETER_REMOTE_WRITE_URL", "not a url"),
        ("PYROMETER_FLUSH_BUDGET_MS", "soon"),
    ];
    let gw = Gateway::start();
    let mut function = start_function("ext/fail-open", &gw.url, &faults);
    let latencies = invoke(&mut function, 2);
    assert!(latencies.iter().all(|l| *l < INVOKE_BOUND), "{latencies:?}");
    function.emulator.shutdown(ShutdownReason::Spindown);
    let text = gw.metrics().expect("gateway metrics");
    let labels = [r#"function_name="ext/fail-open""#];
    assert_eq!(
        series_sum(&text, "faas_invocations_total{", &labels),
        2.0,
        "the Pushgateway still gets everything: {text}"
    );

    let mut opted_in = faults.to_vec();
    opted_in.push(("PYROMETER_FAIL_INIT_ON_ERROR", "1"));
    let mut function = start_function("ext/fail-init", &gw.url, &opted_in);
    let outcome = function.emulator.invoke("{}").expect("invoke");
    assert_ne!(
        outcome.status,
        Status::Success,
        "the opt-in turns setup faults into init/error: {outcome:?}"
    );
}
