//! The emulator's lifecycle with real processes: pyrometer's built-in Python
//! runtime, small Python extensions, and the rules Lambda documents for init,
//! invocations, timeouts, crashes and shutdown.
//!
//! No sleep stands in for synchronisation; the only time assertions are
//! generous upper bounds proving that nothing hung.

mod emulator_support;

use std::time::{Duration, Instant};

use emulator_support::{TempDir, builtin_config, python_extension};
use pyrometer::emulator::{
    Emulator, EmulatorError, InitOutcome, InitType, MAX_PAYLOAD_BYTES, ShutdownReason, Status,
};
use pyrometer::sources::telemetry::{Record, TelemetryEvent};
use serde_json::Value;

/// Nothing here should take longer; far above what any test needs.
const HANG_BOUND: Duration = Duration::from_secs(30);

/// The platform events of an init, a SnapStart restore, and an invocation.
const INIT: [&str; 3] = [
    "platform.initStart",
    "platform.initRuntimeDone",
    "platform.initReport",
];
const RESTORE: [&str; 3] = [
    "platform.restoreStart",
    "platform.restoreRuntimeDone",
    "platform.restoreReport",
];
const INVOKE: [&str; 3] = ["platform.start", "platform.runtimeDone", "platform.report"];

const APP: &str = r#"
import os, sys, time
calls = 0

def handler(event, context):
    global calls
    calls += 1
    mode = (event or {}).get("mode")
    if mode == "raise":
        raise ValueError("boom")
    if mode == "sleep":
        time.sleep(event["seconds"])
    if mode == "crash":
        sys.stdout.flush()
        os._exit(3)
    if mode == "print":
        print("hello from the handler")
    if mode == "big":
        return "x" * (7 * 1024 * 1024)
    if mode == "alloc":
        block = bytearray(event["mb"] * 1024 * 1024)
        for i in range(0, len(block), 4096):
            block[i] = 1
    names = ["_HANDLER", "AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_RUNTIME_API",
             "LAMBDA_TASK_ROOT", "TZ", "LANG", "AWS_REGION", "AWS_EXECUTION_ENV", "_X_AMZN_TRACE_ID",
             "AWS_LAMBDA_INITIALIZATION_TYPE", "WRAPPED", "MY_SETTING"]
    return {
        "calls": calls,
        "requestId": context.aws_request_id,
        "remainingMs": context.get_remaining_time_in_millis(),
        "arn": context.invoked_function_arn,
        "env": {name: os.environ.get(name) for name in names},
        "event": event,
    }
"#;

fn app_dir() -> TempDir {
    let dir = TempDir::new("fn");
    dir.write("app.py", APP);
    dir.write(
        "bad_import.py",
        "import a_module_that_does_not_exist\n\ndef handler(event, context):\n    return 1\n",
    );
    dir.write("raising_init.py", "raise RuntimeError('init went wrong')\n");
    dir.write(
        "sub/pathapp.py",
        "def handler(event, context):\n    return {'path': True}\n",
    );
    dir
}

fn json(bytes: &Option<bytes::Bytes>) -> Value {
    let body = bytes.as_ref().expect("a response body");
    serde_json::from_slice(body).expect("the response is JSON")
}

fn types(events: &[TelemetryEvent]) -> Vec<&str> {
    events
        .iter()
        .map(TelemetryEvent::event_type)
        .filter(|t| t.starts_with("platform."))
        .collect()
}

fn platform_types(events: &[TelemetryEvent]) -> Vec<String> {
    types(events).into_iter().map(str::to_string).collect()
}

#[test]
fn cold_then_warm_invocations_with_the_builtin_runtime() {
    let dir = app_dir();
    let mut config = builtin_config(dir.path(), "app.handler");
    config.env.push(("MY_SETTING".into(), "42".into()));
    config.memory_mb = 256;
    let mut emulator = Emulator::start(config).expect("start");

    let first = emulator.invoke(r#"{"n": 1}"#).expect("invoke");
    assert_eq!(first.status, Status::Success, "{:?}", first.error);
    assert!(first.cold_start);
    let init = first.init.as_ref().expect("a cold start carries its init");
    assert_eq!(init.status, Status::Success);
    assert!(init.runtime_ready.is_some_and(|r| r <= init.duration));
    let body = json(&first.response);
    assert_eq!(body["calls"], 1);
    assert_eq!(body["requestId"], first.request_id.as_str());
    assert_eq!(body["event"]["n"], 1);
    assert!(
        body["remainingMs"]
            .as_u64()
            .is_some_and(|ms| ms > 0 && ms <= 20_000),
        "{body}"
    );
    let env = &body["env"];
    assert_eq!(env["_HANDLER"], "app.handler");
    assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], "256");
    assert_eq!(
        env["AWS_LAMBDA_RUNTIME_API"],
        emulator.runtime_api().to_string()
    );
    assert_eq!(env["TZ"], ":UTC");
    assert_eq!(env["LANG"], "en_US.UTF-8");
    assert_eq!(env["AWS_LAMBDA_INITIALIZATION_TYPE"], "on-demand");
    assert_eq!(env["MY_SETTING"], "42");
    assert!(
        env["_X_AMZN_TRACE_ID"]
            .as_str()
            .is_some_and(|t| t.starts_with("Root=1-"))
    );
    assert_eq!(
        body["arn"],
        "arn:aws:lambda:us-east-1:123456789012:function:pyrometer-function"
    );
    assert!(first.max_memory_used_mb > 0);
    assert_eq!(
        first.billed_duration_ms,
        first.duration.as_micros().div_ceil(1000) as u64
    );
    assert!(first.response_latency.is_some_and(|l| l <= first.duration));

    let second = emulator.invoke(r#"{"n": 2}"#).expect("invoke");
    assert_eq!(second.status, Status::Success);
    assert!(!second.cold_start && second.init.is_none());
    assert_eq!(
        json(&second.response)["calls"],
        2,
        "the same process serves warm invocations"
    );
    assert!(
        second.max_memory_used_mb >= first.max_memory_used_mb,
        "the peak never goes down"
    );

    let events = emulator.events();
    assert_eq!(platform_types(&events), [INIT, INVOKE, INVOKE].concat());
    let reports: Vec<_> = events
        .iter()
        .filter_map(|e| match &e.record {
            Record::Report(r) => Some(r),
            _ => None,
        })
        .collect();
    let m0 = reports[0].metrics.as_ref().expect("metrics");
    let m1 = reports[1].metrics.as_ref().expect("metrics");
    assert!(
        m0.init_duration_ms.is_some(),
        "the first report carries initDurationMs"
    );
    assert!(m1.init_duration_ms.is_none());
    assert_eq!(m0.memory_size_mb, Some(256));
    assert_eq!(m0.billed_duration_ms, Some(first.billed_duration_ms));
    assert_eq!(
        reports[0].request_id.as_deref(),
        Some(first.request_id.as_str())
    );
    let runtime_done = events
        .iter()
        .find_map(|e| match &e.record {
            Record::RuntimeDone(r) => Some(r),
            _ => None,
        })
        .expect("runtimeDone");
    let spans: Vec<_> = runtime_done
        .spans
        .iter()
        .flatten()
        .filter_map(|s| s.name.as_deref())
        .collect();
    assert_eq!(
        spans,
        ["responseLatency", "responseDuration", "runtimeOverhead"]
    );
    let metrics = runtime_done.metrics.as_ref().expect("runtimeDone metrics");
    assert_eq!(metrics.produced_bytes, first.produced_bytes);
    assert_eq!(runtime_done.status.as_deref(), Some("success"));
    // Times are in order.
    let times: Vec<f64> = events
        .iter()
        .filter_map(TelemetryEvent::time_unix_ms)
        .collect();
    assert_eq!(times.len(), events.len());
    assert!(times.windows(2).all(|w| w[0] <= w[1] + 1.0), "{times:?}");

    let shutdown = emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("an environment to shut down");
    assert!(
        shutdown.killed.is_empty() || shutdown.killed == ["runtime"],
        "{shutdown:?}"
    );
    assert!(emulator.runtime_pid().is_none());
    assert!(
        emulator.shutdown(ShutdownReason::Spindown).is_none(),
        "nothing left to shut down"
    );
    let third = emulator.invoke("{}").expect("invoke");
    assert!(
        third.cold_start,
        "after a shutdown the next invocation is cold"
    );
    assert_eq!(json(&third.response)["calls"], 1);
}

#[test]
fn a_handler_error_is_reported_as_lambdas_python_runtime_does() {
    let dir = app_dir();
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let failed = emulator.invoke(r#"{"mode": "raise"}"#).expect("invoke");
    assert_eq!(failed.status, Status::Error);
    let error = failed.error.as_ref().expect("an error");
    assert_eq!(error.error_type, "ValueError");
    assert_eq!(error.error_message, "boom");
    assert!(
        error.stack_trace.iter().any(|f| f.contains("app.py")),
        "{:?}",
        error.stack_trace
    );
    assert!(
        !failed.environment_reset,
        "a handled error keeps the environment"
    );
    let logs: Vec<String> = emulator
        .events()
        .iter()
        .filter_map(|e| match &e.record {
            Record::FunctionLog(Value::String(line)) => Some(line.clone()),
            _ => None,
        })
        .collect();
    assert!(
        logs.iter().any(|l| l == "[ERROR] ValueError: boom"),
        "{logs:?}"
    );
    let report_status = emulator.events().iter().find_map(|e| match &e.record {
        Record::Report(r) => Some((r.status.clone(), r.error_type.clone())),
        _ => None,
    });
    assert_eq!(
        report_status,
        Some((Some("error".into()), Some("ValueError".into())))
    );

    let next = emulator.invoke(r#"{"mode": "print"}"#).expect("invoke");
    assert_eq!(next.status, Status::Success);
    assert!(!next.cold_start);
    let printed = emulator
        .events()
        .iter()
        .any(|e| e.record == Record::FunctionLog(Value::String("hello from the handler".into())));
    assert!(printed, "stdout lines become function telemetry");
}

#[test]
fn a_handler_that_fails_init_is_reported_and_retried_cold() {
    let dir = app_dir();
    for (handler, error_type) in [
        ("bad_import.handler", "Runtime.ImportModuleError"),
        ("raising_init.handler", "RuntimeError"),
        ("app.missing", "Runtime.HandlerNotFound"),
        ("nodots", "Runtime.MalformedHandlerName"),
    ] {
        let mut emulator = Emulator::start(builtin_config(dir.path(), handler)).expect("start");
        let started = Instant::now();
        let outcome = emulator.invoke("{}").expect("invoke");
        assert!(started.elapsed() < HANG_BOUND);
        assert_eq!(outcome.status, Status::Error, "{handler}");
        assert!(outcome.environment_reset);
        let init = outcome.init.as_ref().expect("init outcome");
        assert_eq!(init.status, Status::Error);
        let error = outcome.error.as_ref().expect("error");
        assert_eq!(error.error_type, error_type, "{handler}: {error}");
        let events = emulator.events();
        let init_report = events.iter().find_map(|e| match &e.record {
            Record::InitReport(r) => Some(r.clone()),
            _ => None,
        });
        let init_report = init_report.expect("initReport");
        assert_eq!(init_report.status.as_deref(), Some("error"));
        assert_eq!(init_report.error_type.as_deref(), Some(error_type));
        assert!(
            !types(&events).contains(&"platform.start"),
            "no invocation ran"
        );
        // The next invocation tries a fresh environment.
        let again = emulator.invoke("{}").expect("invoke");
        assert!(
            again.cold_start
                && again
                    .init
                    .as_ref()
                    .is_some_and(|i| i.status == Status::Error)
        );
    }
}

/// `initializationType` of every init event (initStart, initRuntimeDone, initReport).
fn init_types(events: &[TelemetryEvent]) -> Vec<Option<String>> {
    events
        .iter()
        .filter_map(|e| match &e.record {
            Record::InitStart(r) => Some(r.initialization_type.clone()),
            Record::InitRuntimeDone(r) => Some(r.initialization_type.clone()),
            Record::InitReport(r) => Some(r.initialization_type.clone()),
            _ => None,
        })
        .collect()
}

/// The `metrics` of every `platform.report`, in order.
fn report_metrics(events: &[TelemetryEvent]) -> Vec<pyrometer::sources::telemetry::ReportMetrics> {
    events
        .iter()
        .filter_map(|e| match &e.record {
            Record::Report(r) => r.metrics.clone(),
            _ => None,
        })
        .collect()
}

/// An emulator of `init_type` whose environment was initialised ahead of any
/// request (SnapStart: its version "published"), with its init's outcome.
fn initialised_ahead(init_type: InitType) -> (TempDir, Emulator, InitOutcome) {
    let dir = app_dir();
    let mut config = builtin_config(dir.path(), "app.handler");
    config.init_type = init_type;
    let mut emulator = Emulator::start(config).expect("start");
    let init = emulator.init().expect("an init ran");
    assert_eq!(init.status, Status::Success, "{:?}", init.error);
    assert_eq!(
        platform_types(&emulator.events()),
        INIT,
        "{init_type}: the init alone, before any request"
    );
    (dir, emulator, init)
}

#[test]
fn provisioned_concurrency_initialises_ahead_and_its_first_invocation_is_warm() {
    let (_dir, mut emulator, init) = initialised_ahead(InitType::ProvisionedConcurrency);

    let first = emulator.invoke("{}").expect("invoke");
    assert_eq!(first.status, Status::Success, "{:?}", first.error);
    assert!(
        !first.cold_start,
        "the environment was ready before the request"
    );
    assert_eq!(
        first.init.as_ref(),
        Some(&init),
        "it carries the init outcome"
    );
    assert_eq!(
        json(&first.response)["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "provisioned-concurrency"
    );
    let second = emulator.invoke("{}").expect("invoke");
    assert!(!second.cold_start && second.init.is_none());

    let events = emulator.events();
    let pc = Some("provisioned-concurrency".to_string());
    assert_eq!(init_types(&events), [pc.clone(), pc.clone(), pc]);
    let init_report = events
        .iter()
        .find_map(|e| match &e.record {
            Record::InitReport(r) => Some(r.clone()),
            _ => None,
        })
        .expect("initReport");
    assert_eq!(init_report.phase.as_deref(), Some("init"));
    assert_eq!(init_report.status.as_deref(), Some("success"));
    let reports = report_metrics(&events);
    assert_eq!(reports.len(), 2);
    assert!(
        reports.iter().all(|m| m.init_duration_ms.is_none()
            && m.restore_duration_ms.is_none()
            && m.billed_restore_duration_ms.is_none()),
        "no report carries the init: {reports:?}"
    );
}

#[test]
fn a_snapstart_environment_is_restored_before_its_first_invocation() {
    // The "publish": init runs and the environment waits as a snapshot.
    let (_dir, mut emulator, _init) = initialised_ahead(InitType::SnapStart);
    let first = emulator.invoke(r#"{"n": 1}"#).expect("invoke");
    assert_eq!(first.status, Status::Success, "{:?}", first.error);
    assert!(first.cold_start, "the restore is the cold start");
    let restore = first.restore_duration.expect("the restore it waited for");
    assert_eq!(
        json(&first.response)["env"]["AWS_LAMBDA_INITIALIZATION_TYPE"],
        "snap-start"
    );
    assert_eq!(
        json(&first.response)["calls"],
        1,
        "the snapshot's interpreter serves it"
    );
    let second = emulator.invoke(r#"{"n": 2}"#).expect("invoke");
    assert!(!second.cold_start && second.restore_duration.is_none());

    let events = emulator.events();
    assert_eq!(
        platform_types(&events),
        [INIT, RESTORE, INVOKE, INVOKE].concat()
    );
    let snap = Some("snap-start".to_string());
    assert_eq!(init_types(&events), [snap.clone(), snap.clone(), snap]);
    for event in &events {
        match &event.record {
            Record::RestoreStart(r) => {
                assert_eq!(r.function_name.as_deref(), Some("pyrometer-function"));
                assert_eq!(r.function_version.as_deref(), Some("$LATEST"));
                assert_eq!(r.runtime_version.as_deref(), Some("python:3.12"));
            }
            Record::RestoreRuntimeDone(r) => {
                assert_eq!(r.status.as_deref(), Some("success"));
                assert!(r.error_type.is_none());
            }
            Record::RestoreReport(r) => {
                assert_eq!(r.status.as_deref(), Some("success"));
                let ms = r.metrics.as_ref().and_then(|m| m.duration_ms);
                assert!(
                    ms.is_some_and(|ms| (ms - restore.as_secs_f64() * 1e3).abs() < 1e-3),
                    "{ms:?} vs {restore:?}"
                );
            }
            _ => {}
        }
    }
    let reports = report_metrics(&events);
    let (m0, m1) = (&reports[0], &reports[1]);
    assert!(m0.init_duration_ms.is_none(), "the init was not waited for");
    assert!(m0.restore_duration_ms.is_some());
    let billed_restore = restore.as_micros().div_ceil(1000) as u64;
    assert_eq!(m0.billed_restore_duration_ms, Some(billed_restore));
    assert_eq!(
        m0.billed_duration_ms,
        Some(first.duration.as_micros().div_ceil(1000) as u64 + billed_restore),
        "the billed restore is billed with the invocation"
    );
    assert_eq!(m0.billed_duration_ms, Some(first.billed_duration_ms));
    assert!(
        m1.restore_duration_ms.is_none()
            && m1.billed_restore_duration_ms.is_none()
            && m1.init_duration_ms.is_none()
    );

    // A new environment is initialised and restored again.
    emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown");
    emulator.drain_events();
    let third = emulator.invoke("{}").expect("invoke");
    assert!(third.cold_start && third.restore_duration.is_some());
    assert!(third.init.is_some(), "its snapshot's init ran for it");
    assert_eq!(
        platform_types(&emulator.drain_events()),
        [INIT, RESTORE, INVOKE].concat()
    );
}

#[test]
fn handlers_are_found_by_file_path_too() {
    let dir = app_dir();
    let mut emulator =
        Emulator::start(builtin_config(dir.path(), "sub/pathapp.py:handler")).expect("start");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    assert_eq!(json(&outcome.response)["path"], true);
}

#[test]
fn a_timeout_reports_timeout_and_resets_the_environment() {
    let dir = app_dir();
    let mut config = builtin_config(dir.path(), "app.handler");
    config.timeout = Duration::from_millis(500);
    let mut emulator = Emulator::start(config).expect("start");
    let warm_up = emulator.invoke("{}").expect("invoke");
    assert_eq!(warm_up.status, Status::Success);
    let pid = emulator.runtime_pid().expect("a runtime");

    let started = Instant::now();
    let outcome = emulator
        .invoke(r#"{"mode": "sleep", "seconds": 60}"#)
        .expect("invoke");
    assert!(started.elapsed() < HANG_BOUND);
    assert_eq!(outcome.status, Status::Timeout);
    assert_eq!(
        outcome.error.as_ref().map(|e| e.error_type.as_str()),
        Some("Sandbox.Timedout")
    );
    assert!(outcome.error.as_ref().is_some_and(|e| {
        e.error_message
            .contains("Task timed out after 0.50 seconds")
    }));
    assert!(outcome.environment_reset);
    assert!(outcome.duration >= Duration::from_millis(500));
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the timed-out runtime was killed"
    );
    let runtime_done = emulator
        .events()
        .into_iter()
        .rev()
        .find_map(|e| match e.record {
            Record::RuntimeDone(r) => Some(r),
            _ => None,
        });
    assert_eq!(
        runtime_done.and_then(|r| r.status),
        Some("timeout".to_string())
    );

    let after = emulator.invoke("{}").expect("invoke");
    assert_eq!(after.status, Status::Success);
    assert!(after.cold_start, "a timeout resets the environment");
    assert_eq!(json(&after.response)["calls"], 1);
}

#[test]
fn a_runtime_that_crashes_mid_invocation_is_a_failure() {
    let dir = app_dir();
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let started = Instant::now();
    let outcome = emulator.invoke(r#"{"mode": "crash"}"#).expect("invoke");
    assert!(started.elapsed() < HANG_BOUND);
    assert_eq!(outcome.status, Status::Failure);
    let error = outcome.error.as_ref().expect("error");
    assert_eq!(error.error_type, "Runtime.ExitError");
    assert!(error.error_message.contains("exit status: 3"), "{error}");
    assert!(outcome.environment_reset);
    let statuses: Vec<Option<String>> = emulator
        .events()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::RuntimeDone(r) => Some(r.status),
            Record::Report(r) => Some(r.status),
            _ => None,
        })
        .collect();
    assert_eq!(
        statuses,
        [Some("failure".to_string()), Some("failure".to_string())]
    );
    let after = emulator.invoke("{}").expect("invoke");
    assert!(after.cold_start && after.status == Status::Success);
}

#[test]
fn an_extension_that_never_calls_next_fails_init_at_the_limit() {
    let dir = app_dir();
    let ext = python_extension(
        &dir,
        "stuck-ext",
        &["INVOKE", "SHUTDOWN"],
        "time.sleep(3600)",
    );
    let mut config = builtin_config(dir.path(), "app.handler");
    config.init_timeout = Duration::from_millis(800);
    config.shutdown_timeout = Duration::from_millis(200);
    config.extensions.push(ext);
    let mut emulator = Emulator::start(config).expect("start");
    let started = Instant::now();
    let outcome = emulator.invoke("{}").expect("invoke");
    assert!(started.elapsed() < HANG_BOUND);
    assert_eq!(outcome.status, Status::Timeout);
    let init = outcome.init.as_ref().expect("init");
    assert_eq!(init.status, Status::Timeout);
    assert!(init.duration >= Duration::from_millis(800));
    // Registered or not (a loaded machine may not get that far), it never called next.
    assert!(
        init.extensions.iter().all(|e| e == "stuck-ext"),
        "{:?}",
        init.extensions
    );
    let error = outcome.error.as_ref().expect("error");
    assert_eq!(error.error_type, "Sandbox.Timedout");
    assert!(error.error_message.contains("stuck-ext"), "{error}");
    assert!(emulator.runtime_pid().is_none(), "everything was stopped");
    let report = emulator.events().into_iter().find_map(|e| match e.record {
        Record::InitReport(r) => Some(r),
        _ => None,
    });
    assert_eq!(report.and_then(|r| r.status), Some("timeout".to_string()));
}

#[test]
fn shutdown_gives_extensions_their_deadline_then_kills_them() {
    let dir = app_dir();
    let polite_out = dir.path().join("polite.json");
    let stuck_out = dir.path().join("stuck.json");
    let polite = python_extension(
        &dir,
        "polite-ext",
        &["SHUTDOWN"],
        &format!(
            "r, body = api('GET', '/2020-01-01/extension/event/next', headers={{'Lambda-Extension-Identifier': ext_id}})\n\
             open({:?}, 'wb').write(body)\nsys.exit(0)",
            polite_out.display().to_string()
        ),
    );
    let stuck = python_extension(
        &dir,
        "stuck-ext",
        &["SHUTDOWN"],
        &format!(
            "r, body = api('GET', '/2020-01-01/extension/event/next', headers={{'Lambda-Extension-Identifier': ext_id}})\n\
             open({:?}, 'wb').write(body)\ntime.sleep(3600)",
            stuck_out.display().to_string()
        ),
    );
    let mut config = builtin_config(dir.path(), "app.handler");
    config.shutdown_timeout = Duration::from_millis(1500);
    config.extensions = vec![polite, stuck];
    let mut emulator = Emulator::start(config).expect("start");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    assert_eq!(outcome.init.as_ref().map(|i| i.extensions.len()), Some(2));

    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let shutdown = emulator
        .shutdown(ShutdownReason::Spindown)
        .expect("shutdown");
    assert_eq!(shutdown.extensions_done, ["polite-ext"]);
    assert!(
        shutdown.killed.contains(&"stuck-ext".to_string()),
        "{shutdown:?}"
    );
    assert!(
        shutdown.duration >= Duration::from_millis(1500),
        "the stuck one got its full deadline"
    );
    assert!(shutdown.duration < HANG_BOUND);
    for out in [&polite_out, &stuck_out] {
        let event: Value =
            serde_json::from_slice(&std::fs::read(out).expect("the extension wrote its event"))
                .expect("SHUTDOWN is JSON");
        assert_eq!(event["eventType"], "SHUTDOWN");
        assert_eq!(event["shutdownReason"], "SPINDOWN");
        let deadline = event["deadlineMs"].as_u64().expect("deadlineMs");
        assert!(
            deadline >= before + 1500 && deadline < before + 1500 + 30_000,
            "{deadline} vs {before}"
        );
        assert_eq!(event.as_object().map(|o| o.len()), Some(3), "{event}");
    }
}

#[test]
fn the_exec_wrapper_runs_the_runtime_command() {
    let dir = app_dir();
    let wrapper = dir.write_executable("wrapper.sh", "#!/bin/sh\nexport WRAPPED=1\nexec \"$@\"\n");
    let mut config = builtin_config(dir.path(), "app.handler");
    config.exec_wrapper = Some(wrapper.clone());
    let mut emulator = Emulator::start(config).expect("start");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    assert_eq!(json(&outcome.response)["env"]["WRAPPED"], "1");
}

#[test]
fn payloads_are_bounded_like_lambdas() {
    let dir = app_dir();
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let too_big = vec![b' '; MAX_PAYLOAD_BYTES + 1];
    assert!(matches!(
        emulator.invoke(too_big),
        Err(EmulatorError::PayloadTooLarge { .. })
    ));
    let outcome = emulator.invoke(r#"{"mode": "big"}"#).expect("invoke");
    assert_eq!(outcome.status, Status::Error);
    assert_eq!(
        outcome.error.as_ref().map(|e| e.error_type.as_str()),
        Some("Function.ResponseSizeTooLarge")
    );
    let next = emulator.invoke("{}").expect("invoke");
    assert_eq!(
        next.status,
        Status::Success,
        "the runtime carries on after a 413"
    );
}

#[test]
fn max_memory_used_follows_the_runtimes_peak_rss() {
    let dir = app_dir();
    let mut emulator = Emulator::start(builtin_config(dir.path(), "app.handler")).expect("start");
    let baseline = emulator.invoke("{}").expect("invoke").max_memory_used_mb;
    let grown = emulator
        .invoke(r#"{"mode": "alloc", "mb": 96}"#)
        .expect("invoke");
    assert_eq!(grown.status, Status::Success);
    assert!(
        grown.max_memory_used_mb >= baseline + 90,
        "{baseline} -> {}",
        grown.max_memory_used_mb
    );
    let after = emulator.invoke("{}").expect("invoke");
    assert!(
        after.max_memory_used_mb >= grown.max_memory_used_mb,
        "a peak, not the current RSS"
    );
}

#[test]
fn an_extensions_directory_starts_every_executable_in_name_order() {
    let dir = app_dir();
    let quiet = "while True:\n    api('GET', '/2020-01-01/extension/event/next', headers={'Lambda-Extension-Identifier': ext_id})";
    python_extension(&dir, "b-ext", &["INVOKE"], quiet);
    python_extension(&dir, "a-ext", &["INVOKE"], quiet);
    dir.write("extensions/README", "not executable, not an extension");
    let mut config = builtin_config(dir.path(), "app.handler");
    config.extensions_dir = Some(dir.path().join("extensions"));
    let mut emulator = Emulator::start(config).expect("start");
    let init = emulator.init().expect("a new environment");
    assert_eq!(init.status, Status::Success, "{:?}", init.error);
    assert_eq!(init.extensions, ["a-ext", "b-ext"]);
    assert!(emulator.init().is_none(), "already initialised");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert!(
        outcome.cold_start,
        "the first invocation after init() is still the cold one"
    );
    assert_eq!(outcome.init.as_ref().map(|i| i.extensions.len()), Some(2));
    let registered: Vec<String> = emulator
        .events()
        .into_iter()
        .filter_map(|e| match e.record {
            Record::Extension(x) => x.name,
            _ => None,
        })
        .collect();
    assert_eq!(registered.len(), 2);
}

#[test]
fn client_context_and_cognito_identity_reach_the_handler() {
    let dir = TempDir::new("ctx");
    dir.write(
        "ctx.py",
        "def handler(event, context):\n    return {'cc': context.client_context, 'id': context.identity}\n",
    );
    let mut emulator = Emulator::start(builtin_config(dir.path(), "ctx.handler")).expect("start");
    let outcome = emulator
        .invoke_with(pyrometer::emulator::InvokeRequest {
            payload: "{}".into(),
            client_context: Some(r#"{"custom": {"k": "v"}}"#.into()),
            cognito_identity: Some(r#"{"cognitoIdentityId": "us-east-1:abc"}"#.into()),
        })
        .expect("invoke");
    let body = json(&outcome.response);
    assert_eq!(body["cc"]["custom"]["k"], "v");
    assert_eq!(body["id"]["cognitoIdentityId"], "us-east-1:abc");
}

#[test]
fn an_extension_init_error_fails_init_with_its_type() {
    let dir = app_dir();
    let ext = python_extension(
        &dir,
        "picky-ext",
        &["INVOKE"],
        "api('POST', '/2020-01-01/extension/init/error', json.dumps({'errorMessage': 'no config', 'errorType': 'Extension.ConfigInvalid', 'stackTrace': []}),\n    {'Lambda-Extension-Identifier': ext_id, 'Lambda-Extension-Function-Error-Type': 'Extension.ConfigInvalid'})\nsys.exit(1)",
    );
    let mut config = builtin_config(dir.path(), "app.handler");
    config.extensions.push(ext);
    let mut emulator = Emulator::start(config).expect("start");
    let outcome = emulator.invoke("{}").expect("invoke");
    assert_eq!(outcome.status, Status::Error);
    let error = outcome.error.as_ref().expect("error");
    assert_eq!(error.error_type, "Extension.ConfigInvalid");
    assert_eq!(error.error_message, "no config");
}

#[test]
fn dropping_the_emulator_kills_its_processes() {
    let dir = app_dir();
    let ext = python_extension(
        &dir,
        "idle-ext",
        &["INVOKE"],
        "while True:\n    api('GET', '/2020-01-01/extension/event/next', headers={'Lambda-Extension-Identifier': ext_id})",
    );
    let mut config = builtin_config(dir.path(), "app.handler");
    config.extensions.push(ext);
    let mut emulator = Emulator::start(config).expect("start");
    assert_eq!(
        emulator.invoke("{}").expect("invoke").status,
        Status::Success
    );
    let runtime = emulator.runtime_pid().expect("a runtime");
    drop(emulator);
    // Another process's death has no event to wait on here: poll, bounded.
    let gone = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .map(|s| {
                s.lines()
                    .any(|l| l.starts_with("State:") && l.contains('Z'))
            })
            .unwrap_or(true)
    };
    let deadline = Instant::now() + HANG_BOUND;
    while !gone(runtime) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(gone(runtime), "the runtime outlived the emulator");
}
