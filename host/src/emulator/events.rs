//! The telemetry events the emulator emits, built from the instants it
//! measured, in the shape Lambda sends them (see `shared/fixtures/telemetry`).
//!
//! How each figure is derived:
//!
//! * `platform.initStart` — when the runtime and extension processes are started;
//! * `platform.initRuntimeDone` — the runtime's first `next` (or its init error,
//!   exit, or the init timeout);
//! * `platform.initReport` `durationMs` — initStart to the moment the runtime
//!   and every extension have called `next`;
//! * `platform.start` — when the invocation is handed to the runtime's `next`;
//! * `platform.runtimeDone` — the runtime's next `next` after its response:
//!   `responseLatency` from the start to the first byte of the response
//!   request, `responseDuration` while its body arrived, `runtimeOverhead`
//!   from there to the `next`; `metrics.durationMs` is start to `next`,
//!   `producedBytes` the response size;
//! * `platform.report` — once every extension has called `next` too:
//!   `durationMs` from the start, `billedDurationMs` that rounded up to the
//!   millisecond, `maxMemoryUsedMB` the peak RSS (VmHWM) of the runtime's
//!   process tree so far, `initDurationMs` on an on-demand environment's
//!   first report (none with provisioned concurrency);
//! * SnapStart (`snap-start`): `platform.restoreStart` when a snapshotted
//!   environment is resumed for its first invocation, `restoreRuntimeDone`
//!   and `restoreReport` (`metrics.durationMs`) right after — the same
//!   processes simply continue, so the restore takes next to no time (and
//!   always succeeds). The first report then
//!   carries `restoreDurationMs` and `billedRestoreDurationMs` (rounded up to
//!   the millisecond, and included in `billedDurationMs`, as Lambda bills it)
//!   instead of `initDurationMs`.

use std::time::{Duration, Instant};

use serde_json::Map;

use super::clock::{Clock, millis};
use super::config::EmulatorConfig;
use super::ids::Trace;
use crate::sources::telemetry::{
    ExtensionState, InitReport, InitRuntimeDone, InitStart, PhaseMetrics, Record, Report,
    ReportMetrics, RestoreReport, RestoreRuntimeDone, RestoreStart, RuntimeDone,
    RuntimeDoneMetrics, Span, Start, TelemetryEvent, TelemetrySubscription, Tracing,
};

const INIT_PHASE: &str = "init";
const SUCCESS: &str = "success";

fn event(clock: &Clock, at: Instant, record: Record) -> TelemetryEvent {
    TelemetryEvent {
        time: clock.timestamp(at),
        record,
    }
}

fn span(clock: &Clock, name: &str, start: Instant, duration: Duration) -> Span {
    Span {
        name: Some(name.to_string()),
        start: Some(clock.timestamp(start)),
        duration_ms: Some(millis(duration)),
        extra: Map::new(),
    }
}

fn tracing(trace: &Trace) -> Tracing {
    Tracing {
        span_id: Some(trace.span_id.clone()),
        trace_type: Some("X-Amzn-Trace-Id".to_string()),
        value: Some(trace.header.clone()),
        extra: Map::new(),
    }
}

/// `metrics` of `platform.initReport` and `platform.restoreReport`.
fn phase_metrics(duration: Duration) -> PhaseMetrics {
    PhaseMetrics {
        duration_ms: Some(millis(duration)),
        extra: Map::new(),
    }
}

/// Lambda's `runtimeVersion` for a runtime id (`python3.12` → `python:3.12`).
fn runtime_version(runtime_id: &str) -> String {
    runtime_id.replacen("python", "python:", 1)
}

pub(crate) fn init_start(clock: &Clock, at: Instant, config: &EmulatorConfig) -> TelemetryEvent {
    let record = InitStart {
        initialization_type: Some(config.init_type.as_str().into()),
        phase: Some(INIT_PHASE.into()),
        runtime_version: Some(runtime_version(&config.runtime_id)),
        function_name: Some(config.function_name.clone()),
        function_version: Some(config.function_version.clone()),
        ..InitStart::default()
    };
    event(clock, at, Record::InitStart(record))
}

pub(crate) fn init_runtime_done(
    clock: &Clock,
    at: Instant,
    init_type: &str,
    status: &str,
    error_type: Option<&str>,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::InitRuntimeDone(InitRuntimeDone {
            initialization_type: Some(init_type.into()),
            phase: Some(INIT_PHASE.into()),
            status: Some(status.into()),
            error_type: error_type.map(Into::into),
            spans: Some(Vec::new()),
            ..InitRuntimeDone::default()
        }),
    )
}

pub(crate) fn init_report(
    clock: &Clock,
    at: Instant,
    init_type: &str,
    status: &str,
    error_type: Option<&str>,
    duration: Duration,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::InitReport(InitReport {
            initialization_type: Some(init_type.into()),
            phase: Some(INIT_PHASE.into()),
            status: Some(status.into()),
            error_type: error_type.map(Into::into),
            metrics: Some(phase_metrics(duration)),
            spans: Some(Vec::new()),
            ..InitReport::default()
        }),
    )
}

pub(crate) fn restore_start(clock: &Clock, at: Instant, config: &EmulatorConfig) -> TelemetryEvent {
    let record = RestoreStart {
        runtime_version: Some(runtime_version(&config.runtime_id)),
        function_name: Some(config.function_name.clone()),
        function_version: Some(config.function_version.clone()),
        ..RestoreStart::default()
    };
    event(clock, at, Record::RestoreStart(record))
}

/// A successful restore's `platform.restoreRuntimeDone` (the emulator's
/// restores cannot fail: nothing was stopped).
pub(crate) fn restore_runtime_done(clock: &Clock, at: Instant) -> TelemetryEvent {
    let record = RestoreRuntimeDone {
        status: Some(SUCCESS.into()),
        spans: Some(Vec::new()),
        ..RestoreRuntimeDone::default()
    };
    event(clock, at, Record::RestoreRuntimeDone(record))
}

/// A successful restore's `platform.restoreReport`.
pub(crate) fn restore_report(clock: &Clock, at: Instant, duration: Duration) -> TelemetryEvent {
    let record = RestoreReport {
        status: Some(SUCCESS.into()),
        metrics: Some(phase_metrics(duration)),
        spans: Some(Vec::new()),
        ..RestoreReport::default()
    };
    event(clock, at, Record::RestoreReport(record))
}

pub(crate) fn start(
    clock: &Clock,
    at: Instant,
    request_id: &str,
    version: &str,
    trace: &Trace,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::Start(Start {
            request_id: Some(request_id.into()),
            version: Some(version.into()),
            tracing: Some(tracing(trace)),
            ..Start::default()
        }),
    )
}

/// The instants of a runtime's answer to one invocation.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ResponseTimes {
    /// The response (or error) request arrived.
    pub(crate) began: Instant,
    /// Its body was fully read.
    pub(crate) ended: Instant,
}

pub(crate) struct RuntimeDoneFacts<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) trace: &'a Trace,
    pub(crate) started: Instant,
    pub(crate) status: &'a str,
    pub(crate) error_type: Option<&'a str>,
    pub(crate) response: Option<ResponseTimes>,
    pub(crate) produced_bytes: Option<u64>,
}

pub(crate) fn runtime_done(
    clock: &Clock,
    at: Instant,
    facts: RuntimeDoneFacts<'_>,
) -> TelemetryEvent {
    let spans = facts.response.map(|r| {
        vec![
            span(
                clock,
                "responseLatency",
                facts.started,
                r.began.saturating_duration_since(facts.started),
            ),
            span(
                clock,
                "responseDuration",
                r.began,
                r.ended.saturating_duration_since(r.began),
            ),
            span(
                clock,
                "runtimeOverhead",
                r.ended,
                at.saturating_duration_since(r.ended),
            ),
        ]
    });
    event(
        clock,
        at,
        Record::RuntimeDone(RuntimeDone {
            request_id: Some(facts.request_id.into()),
            status: Some(facts.status.into()),
            error_type: facts.error_type.map(Into::into),
            metrics: Some(RuntimeDoneMetrics {
                duration_ms: Some(millis(at.saturating_duration_since(facts.started))),
                produced_bytes: facts.produced_bytes,
                extra: Map::new(),
            }),
            spans: Some(spans.unwrap_or_default()),
            tracing: Some(tracing(facts.trace)),
            ..RuntimeDone::default()
        }),
    )
}

pub(crate) struct ReportFacts<'a> {
    pub(crate) request_id: &'a str,
    pub(crate) trace: &'a Trace,
    pub(crate) status: &'a str,
    pub(crate) error_type: Option<&'a str>,
    pub(crate) duration: Duration,
    pub(crate) memory_mb: u32,
    pub(crate) max_memory_used_mb: u64,
    pub(crate) init_duration: Option<Duration>,
    /// The SnapStart restore this invocation waited for.
    pub(crate) restore_duration: Option<Duration>,
}

/// Lambda bills each invocation rounded up to the next millisecond.
pub(crate) fn billed_ms(duration: Duration) -> u64 {
    duration.as_micros().div_ceil(1000) as u64
}

/// `billedDurationMs`: the invocation's billed time plus, after a SnapStart
/// restore, the billed restore (as in Lambda's reports, where
/// `billedDurationMs` = ⌈`durationMs`⌉ + `billedRestoreDurationMs`).
pub(crate) fn billed_invocation_ms(duration: Duration, restore: Option<Duration>) -> u64 {
    billed_ms(duration) + restore.map_or(0, billed_ms)
}

pub(crate) fn report(clock: &Clock, at: Instant, facts: ReportFacts<'_>) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::Report(Report {
            request_id: Some(facts.request_id.into()),
            status: Some(facts.status.into()),
            error_type: facts.error_type.map(Into::into),
            metrics: Some(ReportMetrics {
                duration_ms: Some(millis(facts.duration)),
                billed_duration_ms: Some(billed_invocation_ms(
                    facts.duration,
                    facts.restore_duration,
                )),
                memory_size_mb: Some(u64::from(facts.memory_mb)),
                max_memory_used_mb: Some(facts.max_memory_used_mb),
                init_duration_ms: facts.init_duration.map(millis),
                restore_duration_ms: facts.restore_duration.map(millis),
                billed_restore_duration_ms: facts.restore_duration.map(billed_ms),
                ..ReportMetrics::default()
            }),
            tracing: Some(tracing(facts.trace)),
            ..Report::default()
        }),
    )
}

pub(crate) fn extension(clock: &Clock, at: Instant, name: &str, events: &[&str]) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::Extension(ExtensionState {
            name: Some(name.into()),
            state: Some("Ready".into()),
            events: Some(events.iter().map(|e| (*e).to_string()).collect()),
            ..ExtensionState::default()
        }),
    )
}

pub(crate) fn telemetry_subscription(
    clock: &Clock,
    at: Instant,
    name: &str,
    types: &[&str],
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::TelemetrySubscription(TelemetrySubscription {
            name: Some(name.into()),
            state: Some("Subscribed".into()),
            types: Some(types.iter().map(|t| (*t).to_string()).collect()),
            ..TelemetrySubscription::default()
        }),
    )
}

pub(crate) fn log_line(
    clock: &Clock,
    at: Instant,
    from_extension: bool,
    line: String,
) -> TelemetryEvent {
    let line = serde_json::Value::String(line);
    let record = if from_extension {
        Record::ExtensionLog(line)
    } else {
        Record::FunctionLog(line)
    };
    event(clock, at, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn billing_rounds_up_to_the_millisecond() {
        assert_eq!(billed_ms(Duration::from_micros(2_599_400)), 2600);
        assert_eq!(billed_ms(Duration::from_millis(5)), 5);
        assert_eq!(billed_ms(Duration::from_micros(1)), 1);
    }

    #[test]
    fn a_billed_restore_is_part_of_the_billed_duration() {
        // Lambda's own report: durationMs 147.156, billedRestoreDurationMs 53, billedDurationMs 201.
        let duration = Duration::from_micros(147_156);
        let restore = Duration::from_micros(52_400);
        assert_eq!(billed_invocation_ms(duration, Some(restore)), 201);
        assert_eq!(billed_invocation_ms(duration, None), 148);
    }
}
