//! A Lambda extension on the `lambda-extension` crate (1.x), registered for
//! INVOKE and SHUTDOWN and subscribed to the Telemetry API through the
//! crate's own listener and types. It appends one JSON line per thing it
//! received to `$CONFORMANCE_OUT`, so the emulator's tests can check that an
//! extension nobody here wrote gets what Lambda would send it.
//!
//! `$CONFORMANCE_TELEMETRY_PORT` picks its telemetry listener's port (tests
//! run in parallel). On SHUTDOWN it waits, bounded by the event's deadline,
//! until the telemetry of every invocation it saw has arrived, then exits.

use std::collections::HashSet;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lambda_extension::{
    Error, Extension, LambdaEvent, LambdaTelemetry, LambdaTelemetryRecord, NextEvent,
    SharedService, service_fn,
};
use serde_json::{Value, json};
use tokio::sync::Notify;

#[derive(Default)]
struct Seen {
    invokes: HashSet<String>,
    reports: HashSet<String>,
}

fn record(line: Value) {
    let Ok(path) = std::env::var("CONFORMANCE_OUT") else {
        return;
    };
    // One write per line: the telemetry and event handlers run on different
    // threads, and `writeln!` on a `File` writes piece by piece, which
    // interleaves two records into two unparseable lines.
    let text = format!("{line}\n");
    if let Ok(mut file) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
    {
        let _ = file.write_all(text.as_bytes());
    }
}

fn type_name(record: &LambdaTelemetryRecord) -> &'static str {
    match record {
        LambdaTelemetryRecord::Function(_) => "function",
        LambdaTelemetryRecord::Extension(_) => "extension",
        LambdaTelemetryRecord::PlatformInitStart { .. } => "platform.initStart",
        LambdaTelemetryRecord::PlatformInitRuntimeDone { .. } => "platform.initRuntimeDone",
        LambdaTelemetryRecord::PlatformInitReport { .. } => "platform.initReport",
        LambdaTelemetryRecord::PlatformStart { .. } => "platform.start",
        LambdaTelemetryRecord::PlatformRuntimeDone { .. } => "platform.runtimeDone",
        LambdaTelemetryRecord::PlatformReport { .. } => "platform.report",
        LambdaTelemetryRecord::PlatformExtension { .. } => "platform.extension",
        LambdaTelemetryRecord::PlatformTelemetrySubscription { .. } => {
            "platform.telemetrySubscription"
        }
        LambdaTelemetryRecord::PlatformLogsDropped { .. } => "platform.logsDropped",
    }
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let arrived = Arc::new(Notify::new());

    let telemetry_seen = seen.clone();
    let telemetry_arrived = arrived.clone();
    let telemetry = service_fn(move |batch: Vec<LambdaTelemetry>| {
        let seen = telemetry_seen.clone();
        let arrived = telemetry_arrived.clone();
        async move {
            let mut types = Vec::new();
            for event in &batch {
                types.push(type_name(&event.record));
                if let LambdaTelemetryRecord::PlatformReport {
                    request_id,
                    metrics,
                    status,
                    ..
                } = &event.record
                {
                    record(json!({
                        "kind": "report",
                        "requestId": request_id,
                        "status": format!("{status:?}"),
                        "durationMs": metrics.duration_ms,
                        "billedDurationMs": metrics.billed_duration_ms,
                        "memorySizeMB": metrics.memory_size_mb,
                        "maxMemoryUsedMB": metrics.max_memory_used_mb,
                        "initDurationMs": metrics.init_duration_ms,
                    }));
                    if let Ok(mut seen) = seen.lock() {
                        seen.reports.insert(request_id.clone());
                    }
                }
            }
            record(json!({ "kind": "telemetry", "types": types }));
            arrived.notify_one();
            Ok::<(), Error>(())
        }
    });

    let events_seen = seen.clone();
    let events_arrived = arrived.clone();
    let events = service_fn(move |event: LambdaEvent| {
        let seen = events_seen.clone();
        let arrived = events_arrived.clone();
        async move {
            match event.next {
                NextEvent::Invoke(invoke) => {
                    record(json!({
                        "kind": "invoke",
                        "requestId": invoke.request_id,
                        "deadlineMs": invoke.deadline_ms,
                        "invokedFunctionArn": invoke.invoked_function_arn,
                        "tracingType": invoke.tracing.r#type,
                        "tracingValue": invoke.tracing.value,
                    }));
                    if let Ok(mut seen) = seen.lock() {
                        seen.invokes.insert(invoke.request_id);
                    }
                }
                NextEvent::Shutdown(shutdown) => {
                    record(json!({
                        "kind": "shutdown",
                        "shutdownReason": shutdown.shutdown_reason,
                        "deadlineMs": shutdown.deadline_ms,
                    }));
                    // Wait for the last reports, but never past the deadline.
                    let now_ms = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map(|d| d.as_millis() as u64)
                        .unwrap_or(0);
                    let budget = Duration::from_millis(
                        shutdown
                            .deadline_ms
                            .saturating_sub(now_ms)
                            .saturating_sub(200),
                    );
                    let all_reported = async {
                        loop {
                            let waiting = arrived.notified();
                            let done = seen
                                .lock()
                                .map(|s| s.invokes.is_subset(&s.reports))
                                .unwrap_or(true);
                            if done {
                                break;
                            }
                            waiting.await;
                        }
                    };
                    let complete = tokio::time::timeout(budget, all_reported).await.is_ok();
                    record(json!({ "kind": "exit", "allReportsSeen": complete }));
                    std::process::exit(0);
                }
            }
            Ok::<(), Error>(())
        }
    });

    let port = std::env::var("CONFORMANCE_TELEMETRY_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(9003);
    let registered = Extension::new()
        .with_events_processor(events)
        .with_telemetry_processor(SharedService::new(telemetry))
        .with_telemetry_port_number(port)
        .with_telemetry_types(&["platform", "function", "extension"])
        .register()
        .await
        .inspect_err(|e| record(json!({ "kind": "error", "message": e.to_string() })))?;
    record(json!({
        "kind": "register",
        "functionName": registered.function_name,
        "functionVersion": registered.function_version,
        "handler": registered.handler,
        "accountId": registered.account_id,
    }));
    registered.run().await
}
