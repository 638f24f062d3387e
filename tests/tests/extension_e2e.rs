//! The real `pyrometer-extension` binary under the local emulator, started as
//! Lambda starts `/opt/extensions/*`, beside real CPython with the probe
//! injected by the exec wrapper, pushing to a real Pushgateway — in on-demand,
//! provisioned-concurrency and SnapStart environments — and to gateways that
//! are down, never answer, answer slowly or answer 400, which must not slow
//! the function beyond the flush budget nor keep SHUTDOWN past its deadline.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use pyrometer::emulator::{
    Emulator, EmulatorConfig, InitType, InvokeOutcome, ShutdownOutcome, ShutdownReason, Status,
};
use pyrometer::plugins::{PluginSet, artifact};
use pyrometer::python_assets;
use pyrometer::sources::telemetry::Record;
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

/// The flush budget of the gateway-fault tests, ms: below the default, so
/// the bound on invocations is tight.
const FAULT_BUDGET_MS: u64 = 100;
/// What an invocation may take beyond the flush budget when the gateway
/// misbehaves: the handler, the wait for the probe's record, the extension's
/// own work, and scheduling on a busy two-core host. Far below what the
/// faults would cost without the budget (a slow gateway answers after
/// [`SLOW_ANSWER`], a silent one never).
const FAULT_MARGIN: Duration = Duration::from_millis(400);
/// Invocations per gateway-fault test.
const FAULT_INVOCATIONS: usize = 4;
/// How long the slow gateway takes to answer: many flush budgets.
const SLOW_ANSWER: Duration = Duration::from_millis(30 * FAULT_BUDGET_MS);

/// A loopback gateway that accepts connections and reads each request, then
/// answers 200 after `answer_after`, or never (`None`).
fn stalling_gateway(answer_after: Option<Duration>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut request = [0u8; 4096];
                let _ = stream.read(&mut request);
                match answer_after {
                    Some(delay) => {
                        std::thread::sleep(delay);
                        let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
                    }
                    // Hold the connection open, unanswered, until the test ends.
                    None => std::thread::sleep(Duration::from_secs(3600)),
                }
            });
        }
    });
    url
}

/// What a function did while exporting to a faulty gateway.
struct FaultRun {
    outcomes: Vec<InvokeOutcome>,
    shutdown: ShutdownOutcome,
    shutdown_took: Duration,
    /// `pyrometer_flush_failures_total{exporter="pushgateway"}` by reason, as
    /// the extension's EMF lines (its working exporter) reported it.
    failures: BTreeMap<String, f64>,
}

/// Runs [`FAULT_INVOCATIONS`] invocations and a shutdown of a function whose
/// extension pushes to `gateway_url` with a [`FAULT_BUDGET_MS`] budget and
/// also writes EMF, the exporter through which the failures are seen.
fn run_against(name: &str, gateway_url: &str, extra_env: &[(&str, &str)]) -> FaultRun {
    let budget = FAULT_BUDGET_MS.to_string();
    let mut env = vec![
        ("PYROMETER_FLUSH_BUDGET_MS", budget.as_str()),
        ("PYROMETER_EMF", "1"),
    ];
    env.extend_from_slice(extra_env);
    let mut function = start_function(name, gateway_url, &env);
    let outcomes: Vec<InvokeOutcome> = (0..FAULT_INVOCATIONS)
        .map(|i| {
            function
                .emulator
                .invoke(format!(r#"{{"i": {i}}}"#))
                .expect("invoke")
        })
        .collect();
    let started = Instant::now();
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    let shutdown_took = started.elapsed();
    let failures = emf_flush_failures(&function.emulator);
    FaultRun {
        outcomes,
        shutdown,
        shutdown_took,
        failures,
    }
}

/// Sums the extension's EMF values of `pyrometer_flush_failures_total` for
/// the Pushgateway exporter, by reason (EMF carries deltas per flush).
fn emf_flush_failures(emulator: &Emulator) -> BTreeMap<String, f64> {
    let mut by_reason = BTreeMap::new();
    for event in emulator.events() {
        let Record::ExtensionLog(serde_json::Value::String(line)) = &event.record else {
            continue;
        };
        let Ok(doc) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(value) = doc.get("pyrometer_flush_failures_total") else {
            continue;
        };
        if doc.get("_aws").is_none() || doc["exporter"] != "pushgateway" {
            continue;
        }
        let count = match value {
            serde_json::Value::Array(values) => values.iter().filter_map(|v| v.as_f64()).sum(),
            other => other.as_f64().unwrap_or(0.0),
        };
        let reason = doc["reason"].as_str().unwrap_or_default().to_owned();
        *by_reason.entry(reason).or_default() += count;
    }
    by_reason
}

/// Every invocation succeeded and cost at most the flush budget plus the
/// margin (the emulator's `durationMs`: from the start to the extension's
/// `next`, its flush included); SHUTDOWN finished in time; and every flush
/// but the last (whose failure no later flush can carry) was counted failed.
fn assert_fail_open(name: &str, run: &FaultRun) {
    let bound = Duration::from_millis(FAULT_BUDGET_MS) + FAULT_MARGIN;
    for (i, outcome) in run.outcomes.iter().enumerate() {
        assert_eq!(
            outcome.status,
            Status::Success,
            "{name}: invocation {i}: {outcome:?}"
        );
        let post_runtime = outcome
            .runtime_duration
            .map(|r| outcome.duration.saturating_sub(r));
        assert!(
            outcome.duration <= bound,
            "{name}: invocation {i} took {:?} (post-runtime {post_runtime:?}), more than the \
             {FAULT_BUDGET_MS} ms flush budget + {FAULT_MARGIN:?}",
            outcome.duration
        );
    }
    assert!(
        run.shutdown.killed.is_empty(),
        "{name}: the extension finished before the deadline: {:?}",
        run.shutdown
    );
    assert!(
        run.shutdown_took < Duration::from_millis(2_000 + 500),
        "{name}: {:?}",
        run.shutdown
    );
    let failed: f64 = run.failures.values().sum();
    assert!(
        failed >= FAULT_INVOCATIONS as f64,
        "{name}: the {FAULT_INVOCATIONS} invocation flushes were counted failed: {:?}",
        run.failures
    );
}

#[test]
fn a_gateway_that_refuses_connections_costs_at_most_the_flush_budget() {
    let url = format!("http://127.0.0.1:{}", free_port());
    // A bad flush strategy on top: logged, the default used.
    let run = run_against("ext/down", &url, &[("PYROMETER_FLUSH", "bogus")]);
    assert_fail_open("refused", &run);
}

#[test]
fn a_gateway_that_never_answers_costs_at_most_the_flush_budget_and_shutdown_keeps_its_deadline() {
    let url = stalling_gateway(None);
    let run = run_against("ext/silent", &url, &[]);
    assert_fail_open("silent", &run);
}

#[test]
fn a_slow_gateway_costs_at_most_the_flush_budget() {
    let url = stalling_gateway(Some(SLOW_ANSWER));
    let run = run_against("ext/slow", &url, &[]);
    assert_fail_open("slow", &run);
}

#[test]
fn a_pushgateway_answering_400_costs_at_most_the_flush_budget() {
    let gw = Gateway::start();
    // Another group declares the extension's counter as a gauge: the
    // gateway's consistency check rejects every push of the extension.
    let clash = "# HELP faas_invocations_total Invocations of the function, by cold start and outcome.\n\
                 # TYPE faas_invocations_total gauge\n\
                 faas_invocations_total 1\n";
    assert!(gw.push("clash", clash), "the clashing group was pushed");
    let run = run_against("ext/rejected", &gw.url, &[]);
    assert_fail_open("400", &run);
    assert!(
        run.failures.get("rejected").is_some_and(|n| *n >= 1.0),
        "{:?}",
        run.failures
    );
    let text = gw.metrics().expect("gateway metrics");
    assert_eq!(
        series_sum(
            &text,
            "faas_invocations_total{",
            &[r#"function_name="ext/rejected""#]
        ),
        0.0,
        "nothing of the extension was accepted: {text}"
    );
}

/// A provisioned-concurrency or SnapStart function, initialised ahead (for
/// SnapStart: its version "published"), then invoked `n` times and shut
/// down; the gateway's text.
fn run_prepared(
    name: &str,
    init_type: InitType,
    n: usize,
) -> (Vec<InvokeOutcome>, Emulator, String) {
    let gw = Gateway::start();
    let mut function = start_function_with(name, &gw.url, &[], |c| c.init_type = init_type);
    let init = function.emulator.init().expect("an init ran");
    assert_eq!(init.status, Status::Success, "{init:?}");
    let outcomes: Vec<InvokeOutcome> = (0..n)
        .map(|_| {
            let outcome = function.emulator.invoke("{}").expect("invoke");
            assert_eq!(outcome.status, Status::Success, "{outcome:?}");
            outcome
        })
        .collect();
    let shutdown = function
        .emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown outcome");
    assert!(shutdown.killed.is_empty(), "{shutdown:?}");
    let text = gw.metrics().expect("gateway metrics");
    (outcomes, function.emulator, text)
}

/// A function's cold-start series in the gateway.
#[derive(Debug, PartialEq)]
struct ColdStarts {
    /// `faas_invocations_total`, all and `cold_start="true"`.
    invocations: f64,
    cold_invocations: f64,
    /// `faas_coldstarts_total`.
    coldstarts: f64,
    /// Observations of `faas_init_duration_seconds`.
    init_durations: f64,
    /// Observations of `python_import_duration_seconds` (import profiles).
    import_profiles: f64,
}

impl ColdStarts {
    fn read(text: &str, function: &str) -> Self {
        let label = format!(r#"function_name="{function}""#);
        let sum = |prefix: &str, more: &[&str]| {
            let mut labels = vec![label.as_str()];
            labels.extend_from_slice(more);
            series_sum(text, prefix, &labels)
        };
        ColdStarts {
            invocations: sum("faas_invocations_total{", &[]),
            cold_invocations: sum("faas_invocations_total{", &[r#"cold_start="true""#]),
            coldstarts: sum("faas_coldstarts_total{", &[]),
            init_durations: sum("faas_init_duration_seconds_count{", &[]),
            import_profiles: sum("python_import_duration_seconds_count{", &[]),
        }
    }
}

#[test]
fn a_snapstart_restore_is_the_one_cold_start_with_the_restores_duration() {
    let (outcomes, emulator, text) = run_prepared("ext/snapstart", InitType::SnapStart, 3);
    assert!(outcomes[0].cold_start && outcomes[0].restore_duration.is_some());
    assert!(outcomes[1..].iter().all(|o| !o.cold_start));
    // One cold start, whose duration is the restore's; the snapshot's import
    // profile, reported once.
    assert_eq!(
        ColdStarts::read(&text, "ext/snapstart"),
        ColdStarts {
            invocations: 3.0,
            cold_invocations: 1.0,
            coldstarts: 1.0,
            init_durations: 1.0,
            import_profiles: 1.0,
        },
        "{text}"
    );
    let restore_ms = emulator
        .events()
        .iter()
        .find_map(|e| match &e.record {
            Record::RestoreReport(r) => r.metrics.as_ref()?.duration_ms,
            _ => None,
        })
        .expect("a restoreReport");
    let label = [r#"function_name="ext/snapstart""#];
    let recorded = series_sum(&text, "faas_init_duration_seconds_sum{", &label);
    assert!(
        (recorded - restore_ms / 1e3).abs() < 1e-9,
        "the restore's duration ({restore_ms} ms), not the snapshot's init: {recorded} s"
    );
    // The group is the restored environment's own: its instance carries the
    // random part taken after the restore.
    let instances = instances_of(&text, "ext/snapstart");
    assert!(
        instances.len() == 1 && instances.iter().all(|i| has_restore_suffix(i)),
        "{instances:?}"
    );
}

/// The `instance` labels of `function`'s series in the gateway.
fn instances_of(text: &str, function: &str) -> std::collections::BTreeSet<String> {
    let name = format!(r#"function_name="{function}""#);
    text.lines()
        .filter(|l| l.contains(&name))
        .filter_map(|l| {
            let rest = &l[l.find(r#"instance=""#)? + r#"instance=""#.len()..];
            Some(rest[..rest.find('"')?].to_owned())
        })
        .collect()
}

/// Whether `instance` ends with `:` and a UUID ([`Identity::restored_instance`]).
fn has_restore_suffix(instance: &str) -> bool {
    instance.rsplit_once(':').is_some_and(|(_, uuid)| {
        uuid.len() == 36 && uuid.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
    })
}

#[test]
fn a_provisioned_concurrency_environment_has_no_cold_start() {
    let (outcomes, _emulator, text) =
        run_prepared("ext/provisioned", InitType::ProvisionedConcurrency, 3);
    assert!(outcomes.iter().all(|o| !o.cold_start));
    // The first invocation did not wait for init: no cold start and no
    // cold-start init duration; the init's import profile, reported once.
    assert_eq!(
        ColdStarts::read(&text, "ext/provisioned"),
        ColdStarts {
            invocations: 3.0,
            cold_invocations: 0.0,
            coldstarts: 0.0,
            init_durations: 0.0,
            import_profiles: 1.0,
        },
        "{text}"
    );
    let label = [r#"function_name="ext/provisioned""#];
    assert!(series_sum(&text, "faas_billed_duration_seconds_count{", &label) >= 2.0);
    // Not a restore: the instance taken at init stays.
    let instances = instances_of(&text, "ext/provisioned");
    assert!(
        instances.len() == 1 && !instances.iter().any(|i| has_restore_suffix(i)),
        "{instances:?}"
    );
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

    let opt_in = ("PYROMETER_FAIL_INIT_ON_ERROR", "1");
    let mut opted_in = faults.to_vec();
    opted_in.push(opt_in);
    // Plugins load alongside the runtime's init by default; with the opt-in
    // they load before `next`, so a plugin alone can still fail the init.
    let plugin_only = [faults[0], opt_in];
    let fails_init = |name: &str, env: &[(&str, &str)], why: &str| {
        let mut function = start_function(name, &gw.url, env);
        let outcome = function.emulator.invoke("{}").expect("invoke");
        assert_ne!(outcome.status, Status::Success, "{why}: {outcome:?}");
    };
    fails_init(
        "ext/fail-init",
        &opted_in,
        "the opt-in turns setup faults into init/error",
    );
    fails_init(
        "ext/fail-init-plugin",
        &plugin_only,
        "a plugin that does not load fails the init when asked to",
    );
}
