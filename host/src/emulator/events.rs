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
//!   process tree so far, `initDurationMs` on an environment's first report.

use std::time::{Duration, Instant};

use serde_json::Map;

use super::clock::{Clock, millis};
use super::ids::Trace;
use crate::sources::telemetry::{
    ExtensionState, InitReport, InitRuntimeDone, InitStart, PhaseMetrics, Record, Report,
    ReportMetrics, RuntimeDone, RuntimeDoneMetrics, Span, Start, TelemetryEvent,
    TelemetrySubscription, Tracing,
};

const ON_DEMAND: &str = "on-demand";
const INIT_PHASE: &str = "init";

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

pub(crate) fn init_start(
    clock: &Clock,
    at: Instant,
    runtime_id: &str,
    name: &str,
    version: &str,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::InitStart(InitStart {
            initialization_type: Some(ON_DEMAND.into()),
            phase: Some(INIT_PHASE.into()),
            runtime_version: Some(runtime_id.replacen("python", "python:", 1)),
            function_name: Some(name.into()),
            function_version: Some(version.into()),
            ..InitStart::default()
        }),
    )
}

pub(crate) fn init_runtime_done(
    clock: &Clock,
    at: Instant,
    status: &str,
    error_type: Option<&str>,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::InitRuntimeDone(InitRuntimeDone {
            initialization_type: Some(ON_DEMAND.into()),
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
    status: &str,
    error_type: Option<&str>,
    duration: Duration,
) -> TelemetryEvent {
    event(
        clock,
        at,
        Record::InitReport(InitReport {
            initialization_type: Some(ON_DEMAND.into()),
            phase: Some(INIT_PHASE.into()),
            status: Some(status.into()),
            error_type: error_type.map(Into::into),
            metrics: Some(PhaseMetrics {
                duration_ms: Some(millis(duration)),
                extra: Map::new(),
            }),
            spans: Some(Vec::new()),
            ..InitReport::default()
        }),
    )
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
}

/// Lambda bills each invocation rounded up to the next millisecond.
pub(crate) fn billed_ms(duration: Duration) -> u64 {
    duration.as_micros().div_ceil(1000) as u64
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
                billed_duration_ms: Some(billed_ms(facts.duration)),
                memory_size_mb: Some(u64::from(facts.memory_mb)),
                max_memory_used_mb: Some(facts.max_memory_used_mb),
                init_duration_ms: facts.init_duration.map(millis),
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
}
