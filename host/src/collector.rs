//! The collector: joins what the sources saw — Lambda platform events, the
//! probe's records and procfs samples — into one [`Invocation`] per request
//! and one [`InitReport`] per cold start.
//!
//! It is a pure state machine: callers feed it inputs with the time they
//! arrived and ask for what is complete; it does no I/O and reads no clock,
//! so the Lambda extension and `pyrometer lambda` share it unchanged and tests
//! replay exact sequences.
//!
//! When is an invocation complete? At the first of:
//! - the probe's end-of-invocation record (microseconds after the handler
//!   returns; waiting for `runtimeDone` too would add the Telemetry API's
//!   buffering delay to every invocation);
//! - `platform.runtimeDone`, when no probe is speaking in this environment, or
//!   when the runtime timed out or crashed (the probe cannot report then);
//! - its deadline: it is then marked `partial`, never dropped.
//!
//! `platform.report` arrives only after every extension has called `next`, so
//! its figures (billed duration, max memory) usually find the invocation
//! already drained: they are returned as [`LateReport`]s with the next drain.
//!
//! Init types (Lambda's `initializationType`):
//! - `on-demand`: the environment's first invocation is its cold start, with
//!   the init's duration;
//! - `provisioned-concurrency`: init ran ahead of any request, so the first
//!   invocation is not a cold start (whatever the probe's first-call flag
//!   says, and however long the environment sat idle); the init is still
//!   published once, with its own duration. The probe's "proactive init"
//!   flag (first call long after ready) likewise unmarks a cold start;
//! - `snap-start`: the snapshot's init (type `snap-start`) and the restore
//!   that resumes it (`platform.restore*`) are one environment. The restore
//!   is the cold start: the published [`InitReport`] has the restore's
//!   duration and status (what the first invocation waited for), the probe's
//!   init record and import profile (the interpreter the snapshot holds), and
//!   no breakdown (a restore has no interpreter or import phases). It is
//!   published once the restore is reported.

use std::collections::VecDeque;

use crate::model::{
    ImportProfile, InitBreakdown, InitReport, Invocation, ProcessSample, PythonInit, Status,
};
use crate::sources::probe::{ImportPhase, ProbeInvocation, ProbeMessage, ProbeRecord};
use crate::sources::telemetry::{Record, TelemetryEvent};

/// Most invocations held open at once; beyond it the oldest is completed as partial.
pub const MAX_PENDING_INVOCATIONS: usize = 1024;
/// Most completed invocations held for the next drain; beyond it the oldest are dropped and counted.
pub const MAX_READY_INVOCATIONS: usize = 100_000;
/// Most late report figures held for the next drain.
pub const MAX_LATE_REPORTS: usize = 10_000;

/// Lambda's `initializationType` of SnapStart environments.
const SNAP_START: &str = "snap-start";

/// A Lambda platform event, reduced to what the collector joins. Sources
/// (the Telemetry API listener, the emulator) convert their events into these.
#[derive(Debug, Clone, PartialEq)]
pub enum PlatformEvent {
    /// `platform.initStart`.
    InitStart {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// `on-demand`, `provisioned-concurrency` or `snap-start`.
        init_type: String,
    },
    /// `platform.initRuntimeDone`.
    InitRuntimeDone {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// `success`, `error`, `failure`…
        status: String,
        /// The error type, when init failed.
        error_type: Option<String>,
    },
    /// `platform.initReport`.
    InitReport {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// Lambda's initializationType.
        init_type: String,
        /// Init duration, ms.
        duration_ms: f64,
        /// Init status.
        status: String,
    },
    /// `platform.start`.
    Start {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// The request id.
        request_id: String,
    },
    /// `platform.runtimeDone`.
    RuntimeDone {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// The request id.
        request_id: String,
        /// How the runtime finished.
        status: Status,
        /// `metrics.durationMs`.
        duration_ms: Option<f64>,
        /// The error type, if any.
        error_type: Option<String>,
    },
    /// `platform.restoreStart` (SnapStart).
    RestoreStart {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
    },
    /// `platform.restoreReport` (SnapStart).
    RestoreReport {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// Restore duration, ms.
        duration_ms: f64,
        /// Restore status.
        status: String,
    },
    /// `platform.report`.
    Report {
        /// Event time, ms since the Unix epoch.
        unix_ms: f64,
        /// The request id.
        request_id: String,
        /// `metrics.billedDurationMs`.
        billed_duration_ms: Option<f64>,
        /// `metrics.memorySizeMB`.
        memory_size_mb: Option<f64>,
        /// `metrics.maxMemoryUsedMB`.
        max_memory_used_mb: Option<f64>,
        /// `metrics.initDurationMs` (on-demand cold starts).
        init_duration_ms: Option<f64>,
        /// `metrics.restoreDurationMs` (SnapStart cold starts).
        restore_duration_ms: Option<f64>,
    },
}

impl PlatformEvent {
    /// The collector's view of a Telemetry API event, or `None` for events it
    /// does not join (logs, subscriptions, extension states, unknown types) or
    /// that lack the fields it needs. `platform.restoreRuntimeDone` reads as
    /// an `InitRuntimeDone` (of the restore).
    pub fn from_telemetry(event: &TelemetryEvent) -> Option<Self> {
        let unix_ms = event.time_unix_ms()?;
        let or = |v: &Option<String>, default: &str| v.clone().unwrap_or_else(|| default.into());
        let runtime_done =
            |status: &Option<String>, error_type: &Option<String>| Self::InitRuntimeDone {
                unix_ms,
                status: or(status, "success"),
                error_type: error_type.clone(),
            };
        Some(match &event.record {
            Record::InitStart(r) => Self::InitStart {
                unix_ms,
                init_type: or(&r.initialization_type, "on-demand"),
            },
            Record::RestoreStart(_) => Self::RestoreStart { unix_ms },
            Record::InitRuntimeDone(r) => runtime_done(&r.status, &r.error_type),
            Record::RestoreRuntimeDone(r) => runtime_done(&r.status, &r.error_type),
            Record::InitReport(r) => Self::InitReport {
                unix_ms,
                init_type: or(&r.initialization_type, "on-demand"),
                duration_ms: r.metrics.as_ref()?.duration_ms?,
                status: or(&r.status, "success"),
            },
            Record::RestoreReport(r) => Self::RestoreReport {
                unix_ms,
                duration_ms: r.metrics.as_ref()?.duration_ms?,
                status: or(&r.status, "success"),
            },
            Record::Start(r) => Self::Start {
                unix_ms,
                request_id: r.request_id.clone()?,
            },
            Record::RuntimeDone(r) => Self::RuntimeDone {
                unix_ms,
                request_id: r.request_id.clone()?,
                status: parse_status(r.status.as_deref(), r.error_type.as_deref()),
                duration_ms: r.metrics.as_ref().and_then(|m| m.duration_ms),
                error_type: r.error_type.clone(),
            },
            Record::Report(r) => {
                let m = r.metrics.as_ref();
                Self::Report {
                    unix_ms,
                    request_id: r.request_id.clone()?,
                    billed_duration_ms: m.and_then(|m| m.billed_duration_ms).map(|v| v as f64),
                    memory_size_mb: m.and_then(|m| m.memory_size_mb).map(|v| v as f64),
                    max_memory_used_mb: m.and_then(|m| m.max_memory_used_mb).map(|v| v as f64),
                    init_duration_ms: m.and_then(|m| m.init_duration_ms),
                    restore_duration_ms: m.and_then(|m| m.restore_duration_ms),
                }
            }
            _ => return None,
        })
    }
}

/// Lambda's runtimeDone status (and error type, for out-of-memory) as a [`Status`].
fn parse_status(status: Option<&str>, error_type: Option<&str>) -> Status {
    if error_type.is_some_and(|e| e.contains("OutOfMemory")) {
        return Status::OutOfMemory;
    }
    match status {
        Some("success") => Status::Success,
        Some("error") => Status::Error,
        Some("timeout") => Status::Timeout,
        _ => Status::Failure,
    }
}

/// Report figures that arrived after their invocation was drained.
#[derive(Debug, Clone, PartialEq)]
pub struct LateReport {
    /// The request id.
    pub request_id: String,
    /// Billed duration, ms.
    pub billed_duration_ms: Option<f64>,
    /// Max memory used by the environment so far, MB.
    pub max_memory_used_mb: Option<f64>,
    /// Configured memory, MB.
    pub memory_size_mb: Option<f64>,
    /// report − runtimeDone, ms.
    pub post_runtime_ms: Option<f64>,
}

/// What one drain hands to plugins and exporters.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Drained {
    /// Completed invocations, oldest first.
    pub invocations: Vec<Invocation>,
    /// Report figures for invocations drained earlier.
    pub late_reports: Vec<LateReport>,
    /// Cold starts completed since the last drain.
    pub inits: Vec<InitReport>,
}

/// What the collector counted about its inputs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CollectorStats {
    /// Invocations completed by the probe's record.
    pub completed_by_probe: u64,
    /// Invocations completed by `runtimeDone`.
    pub completed_by_runtime_done: u64,
    /// Invocations completed by their deadline (partial).
    pub completed_by_deadline: u64,
    /// Inputs naming a request the collector never saw start (kept as their own record).
    pub unmatched: u64,
    /// Completed records or late reports dropped because a bound was reached.
    pub dropped: u64,
}

/// Timing rules of a collector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CollectorConfig {
    /// How long after its start an invocation may stay open, ms (the function
    /// timeout plus a margin for the telemetry buffering).
    pub deadline_ms: f64,
    /// Whether the probe runs in the function: an init is then complete only
    /// with the probe's init record (or when the environment ends).
    pub expect_probe: bool,
}

#[derive(Debug, Clone)]
struct Pending {
    invocation: Invocation,
    opened_unix_ms: f64,
    runtime_done_unix_ms: Option<f64>,
    runtime_done: bool,
    probe_done: bool,
    start_sample: Option<ProcessSample>,
}

#[derive(Debug, Default)]
struct InitState {
    report: InitReport,
    started_unix_ms: Option<f64>,
    /// Something of this environment's init was seen.
    seen: bool,
    /// `platform.initReport` arrived.
    telemetry_done: bool,
    /// The probe's init record arrived.
    probe_done: bool,
    /// The probe announced an import profile that has not arrived yet.
    profile_pending: bool,
    /// `platform.restoreStart` arrived (SnapStart).
    restore_started: bool,
    /// The restore's duration, from `platform.restoreReport`, ms.
    restore_duration_ms: Option<f64>,
    /// Handed out by a drain: never again.
    published: bool,
}

/// Joins sources into invocation and init records.
#[derive(Debug)]
pub struct Collector {
    config: CollectorConfig,
    pending: VecDeque<Pending>,
    ready: VecDeque<Invocation>,
    /// Recently completed request ids and their runtimeDone time, so late
    /// telemetry joins them instead of opening new records.
    recent: VecDeque<(String, Option<f64>)>,
    late: Vec<LateReport>,
    init: InitState,
    /// The init type the environment itself states, until telemetry does.
    environment_init_type: Option<String>,
    inits_ready: Vec<InitReport>,
    probe_speaking: bool,
    invocations_since_init: u64,
    stats: CollectorStats,
}

impl Collector {
    /// A collector with no history.
    pub fn new(config: CollectorConfig) -> Self {
        Self {
            config,
            pending: VecDeque::new(),
            ready: VecDeque::new(),
            recent: VecDeque::new(),
            late: Vec::new(),
            init: InitState::default(),
            environment_init_type: None,
            inits_ready: Vec::new(),
            probe_speaking: config.expect_probe,
            invocations_since_init: 0,
            stats: CollectorStats::default(),
        }
    }

    /// Sets the init type the environment states (Lambda's
    /// `AWS_LAMBDA_INITIALIZATION_TYPE`), used until telemetry names it: in
    /// Lambda the init's telemetry is delivered after the environment is
    /// thawed for its first invocation, which may be opened first.
    pub fn set_environment_init_type(&mut self, init_type: &str) {
        self.environment_init_type = Some(init_type.to_owned());
        if self.init.report.init_type.is_empty() {
            self.init.report.init_type = init_type.to_owned();
        }
    }

    /// What was counted so far.
    pub fn stats(&self) -> CollectorStats {
        self.stats
    }

    /// Invocations still open.
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Whether `request_id` is complete (or was never seen open).
    pub fn is_complete(&self, request_id: &str) -> bool {
        !self
            .pending
            .iter()
            .any(|p| p.invocation.request_id == request_id)
    }

    /// Opens an invocation (the extension's INVOKE event or the emulator's
    /// invoke), at `unix_ms`. Opening one that is already open is a no-op.
    pub fn open(&mut self, request_id: &str, unix_ms: f64) {
        if self.find(request_id).is_some() || self.was_completed(request_id) {
            return;
        }
        if self.pending.len() >= MAX_PENDING_INVOCATIONS
            && let Some(oldest) = self.pending.pop_front()
        {
            self.finish(oldest, Completion::Deadline);
        }
        self.invocations_since_init += 1;
        let cold_start = self.invocations_since_init == 1 && !self.initialised_ahead();
        self.pending.push_back(Pending {
            invocation: Invocation {
                request_id: request_id.to_owned(),
                start_unix_ms: unix_ms,
                cold_start,
                init_duration_ms: if cold_start {
                    self.cold_start_duration()
                } else {
                    None
                },
                ..Invocation::default()
            },
            opened_unix_ms: unix_ms,
            runtime_done_unix_ms: None,
            runtime_done: false,
            probe_done: false,
            start_sample: None,
        });
    }

    /// Feeds a platform event.
    pub fn on_platform(&mut self, event: PlatformEvent) {
        match event {
            PlatformEvent::InitStart { unix_ms, init_type } => {
                // The probe's init record may precede the buffered initStart of
                // its own environment; only an environment Lambda already
                // started (or that served invocations) is over.
                if self.init.started_unix_ms.is_some()
                    || self.init.telemetry_done
                    || self.invocations_since_init > 0
                {
                    self.begin_environment();
                }
                self.init.started_unix_ms = Some(unix_ms);
                self.init.report.init_type = init_type;
            }
            PlatformEvent::InitRuntimeDone {
                status, error_type, ..
            } => {
                self.init.seen = true;
                self.init.report.init_status.get_or_insert(status);
                if self.init.report.error_type.is_none() {
                    self.init.report.error_type = error_type;
                }
            }
            PlatformEvent::InitReport {
                init_type,
                duration_ms,
                status,
                ..
            } => {
                self.init.seen = true;
                if self.init.report.init_type.is_empty() {
                    self.init.report.init_type = init_type;
                }
                self.init.report.init_duration_ms = Some(duration_ms);
                self.init.report.init_status = Some(status);
                self.init.telemetry_done = true;
                self.publish_init_if_ready();
            }
            PlatformEvent::RestoreStart { .. } => {
                // The restore resumes the environment whose snapshot init was
                // seen (its buffered telemetry may even follow the first
                // INVOKE); only a second restore is another environment.
                if self.init.restore_started {
                    self.begin_environment();
                }
                self.init.restore_started = true;
                self.init.report.init_type = SNAP_START.into();
            }
            PlatformEvent::RestoreReport {
                duration_ms,
                status,
                ..
            } => {
                self.init.seen = true;
                self.init.restore_started = true;
                self.init.report.init_type = SNAP_START.into();
                self.init.restore_duration_ms = Some(duration_ms);
                self.init.report.init_status = Some(status);
                self.publish_init_if_ready();
            }
            PlatformEvent::Start {
                unix_ms,
                request_id,
            } => self.open(&request_id, unix_ms),
            PlatformEvent::RuntimeDone {
                unix_ms,
                request_id,
                status,
                duration_ms,
                error_type,
            } => self.on_runtime_done(unix_ms, &request_id, status, duration_ms, error_type),
            PlatformEvent::Report {
                unix_ms,
                request_id,
                billed_duration_ms,
                memory_size_mb,
                max_memory_used_mb,
                init_duration_ms,
                restore_duration_ms,
            } => {
                let report = LateReport {
                    post_runtime_ms: self.runtime_done_time(&request_id).map(|t| unix_ms - t),
                    request_id,
                    billed_duration_ms,
                    max_memory_used_mb,
                    memory_size_mb,
                };
                // Either is what this (cold) invocation waited for.
                self.on_report(report, init_duration_ms.or(restore_duration_ms));
            }
        }
    }

    /// Feeds one decoded probe message.
    pub fn on_probe(&mut self, message: ProbeMessage) {
        match message.record {
            ProbeRecord::Init(init) => {
                self.probe_speaking = true;
                self.init.seen = true;
                self.init.probe_done = true;
                self.init.profile_pending =
                    init.profile_modules > 0 && self.init.report.imports.is_none();
                if init.init.error.is_some() && self.init.report.error_type.is_none() {
                    self.init.report.error_type.clone_from(&init.init.error);
                }
                self.init.report.python = Some(init.init);
                self.publish_init_if_ready();
            }
            ProbeRecord::Imports(imports) if imports.phase == ImportPhase::Init => {
                self.probe_speaking = true;
                self.init.report.imports = Some(imports.profile);
                self.init.profile_pending = false;
                self.publish_init_if_ready();
            }
            ProbeRecord::Invocation(inv) => {
                self.probe_speaking = true;
                self.on_probe_invocation(inv);
            }
            // HTTP windows come from long-running services (`pyrometer run`
            // consumes them), not from Lambda handlers.
            ProbeRecord::Imports(_)
            | ProbeRecord::Fork(_)
            | ProbeRecord::Ready(_)
            | ProbeRecord::Exit(_)
            | ProbeRecord::Http(_) => {}
        }
    }

    /// Records a procfs sample of the runtime process at the start or end of
    /// `request_id`. The end sample fills open fds and threads, and RSS and
    /// CPU unless the probe measured them.
    pub fn on_process_sample(&mut self, request_id: &str, at_end: bool, sample: ProcessSample) {
        let Some(i) = self.find(request_id) else {
            return;
        };
        let p = &mut self.pending[i];
        if !at_end {
            p.start_sample = Some(sample);
            return;
        }
        let inv = &mut p.invocation;
        inv.rss_bytes.get_or_insert(sample.rss_bytes as f64);
        inv.open_fds = Some(sample.open_fds as f64);
        inv.threads = Some(sample.threads as f64);
        if let Some(start) = p.start_sample {
            inv.cpu_user_ms
                .get_or_insert(sample.cpu_user_ms - start.cpu_user_ms);
            inv.cpu_system_ms
                .get_or_insert(sample.cpu_system_ms - start.cpu_system_ms);
        }
    }

    /// Completes, as partial, every invocation opened more than the deadline
    /// before `now_unix_ms`.
    pub fn expire(&mut self, now_unix_ms: f64) {
        while let Some(front) = self.pending.front() {
            if now_unix_ms - front.opened_unix_ms < self.config.deadline_ms {
                break;
            }
            if let Some(p) = self.pending.pop_front() {
                self.finish(p, Completion::Deadline);
            }
        }
    }

    /// Takes everything complete since the last drain.
    pub fn drain(&mut self) -> Drained {
        Drained {
            invocations: self.ready.drain(..).collect(),
            late_reports: std::mem::take(&mut self.late),
            inits: std::mem::take(&mut self.inits_ready),
        }
    }

    /// Completes every open invocation as partial and publishes a pending
    /// init: the last drain before shutdown.
    pub fn finish_all(&mut self) -> Drained {
        while let Some(p) = self.pending.pop_front() {
            self.finish(p, Completion::Deadline);
        }
        self.publish_init_now();
        self.drain()
    }

    fn begin_environment(&mut self) {
        // A new environment: what was open in the old one is over.
        while let Some(p) = self.pending.pop_front() {
            self.finish(p, Completion::Deadline);
        }
        self.publish_init_now();
        self.init = InitState::default();
        if let Some(init_type) = &self.environment_init_type {
            self.init.report.init_type.clone_from(init_type);
        }
        self.probe_speaking = self.config.expect_probe;
        self.invocations_since_init = 0;
    }

    fn find(&self, request_id: &str) -> Option<usize> {
        self.pending
            .iter()
            .position(|p| p.invocation.request_id == request_id)
    }

    fn runtime_done_time(&self, request_id: &str) -> Option<f64> {
        self.pending
            .iter()
            .find(|p| p.invocation.request_id == request_id)
            .and_then(|p| p.runtime_done_unix_ms)
            .or_else(|| {
                self.recent
                    .iter()
                    .find(|(id, _)| id == request_id)
                    .and_then(|(_, t)| *t)
            })
    }

    fn on_runtime_done(
        &mut self,
        unix_ms: f64,
        request_id: &str,
        status: Status,
        duration_ms: Option<f64>,
        error_type: Option<String>,
    ) {
        let i = match self.find(request_id) {
            Some(i) => i,
            None if self.was_completed(request_id) => {
                self.remember_runtime_done(request_id, unix_ms);
                return;
            }
            None => {
                self.stats.unmatched += 1;
                self.open(request_id, unix_ms - duration_ms.unwrap_or(0.0));
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        p.runtime_done = true;
        p.runtime_done_unix_ms = Some(unix_ms);
        let inv = &mut p.invocation;
        // The runtime's verdict on timeouts and crashes beats the probe's.
        if status != Status::Success || !p.probe_done {
            inv.status = status;
        }
        if inv.error_type.is_none() {
            inv.error_type = error_type;
        }
        if !p.probe_done
            && let Some(d) = duration_ms
        {
            inv.duration_ms = d;
        }
        let complete = p.probe_done
            || !self.probe_speaking
            || matches!(
                status,
                Status::Timeout | Status::Failure | Status::OutOfMemory
            );
        if complete && let Some(p) = self.pending.remove(i) {
            self.finish(p, Completion::RuntimeDone);
        }
    }

    fn on_probe_invocation(&mut self, inv: ProbeInvocation) {
        let i = match inv.request_id.as_deref().and_then(|id| self.find(id)) {
            Some(i) => Some(i),
            // Without a request id (outside Lambda), the oldest record the probe
            // has not reported yet is the one it is reporting.
            None if inv.request_id.is_none() => self.pending.iter().position(|p| !p.probe_done),
            None => None,
        };
        // The probe's first call in the process is no cold start when the
        // environment was initialised ahead of it.
        let not_cold = inv.proactive_init || self.initialised_ahead();
        if i.is_none()
            && let Some(id) = inv.request_id.as_deref()
            && self.was_completed(id)
        {
            // Completed without it (runtimeDone came first): enrich the record
            // if it has not been drained yet; never open a second one.
            match self.ready.iter_mut().find(|r| r.request_id == id) {
                Some(record) => {
                    apply_probe(record, &inv, true);
                    record.cold_start &= !not_cold;
                }
                None => self.stats.unmatched += 1,
            }
            return;
        }
        let i = match i {
            Some(i) => i,
            None => {
                self.stats.unmatched += 1;
                let id = inv
                    .request_id
                    .clone()
                    .unwrap_or_else(|| format!("probe-{}", inv.number));
                self.open(&id, inv.start_unix_us as f64 / 1000.0);
                self.pending.len() - 1
            }
        };
        let p = &mut self.pending[i];
        p.probe_done = true;
        apply_probe(&mut p.invocation, &inv, p.runtime_done);
        if not_cold {
            p.invocation.cold_start = false;
            p.invocation.init_duration_ms = None;
        }
        if let Some(p) = self.pending.remove(i) {
            self.finish(p, Completion::Probe);
        }
    }

    fn on_report(&mut self, report: LateReport, init_duration_ms: Option<f64>) {
        if let Some(i) = self.find(&report.request_id) {
            let inv = &mut self.pending[i].invocation;
            fill_report(inv, &report, init_duration_ms);
            return;
        }
        if let Some(inv) = self
            .ready
            .iter_mut()
            .find(|r| r.request_id == report.request_id)
        {
            fill_report(inv, &report, init_duration_ms);
            return;
        }
        if self.late.len() >= MAX_LATE_REPORTS {
            self.stats.dropped += 1;
            return;
        }
        self.late.push(report);
    }

    /// Whether `request_id` was completed (among the recent ones): unlike
    /// `is_complete`, false for an invocation not opened yet.
    pub fn was_completed(&self, request_id: &str) -> bool {
        self.recent.iter().any(|(id, _)| id == request_id)
    }

    fn remember_runtime_done(&mut self, request_id: &str, unix_ms: f64) {
        if let Some(entry) = self.recent.iter_mut().find(|(id, _)| id == request_id) {
            entry.1 = Some(unix_ms);
        }
    }

    fn finish(&mut self, p: Pending, how: Completion) {
        match how {
            Completion::Probe => self.stats.completed_by_probe += 1,
            Completion::RuntimeDone => self.stats.completed_by_runtime_done += 1,
            Completion::Deadline => self.stats.completed_by_deadline += 1,
        }
        let mut inv = p.invocation;
        inv.partial = how == Completion::Deadline;
        if inv.partial && !p.runtime_done && !p.probe_done {
            inv.status = Status::Failure;
        }
        if self.recent.len() >= MAX_LATE_REPORTS {
            self.recent.pop_front();
        }
        self.recent
            .push_back((inv.request_id.clone(), p.runtime_done_unix_ms));
        if self.ready.len() >= MAX_READY_INVOCATIONS {
            self.ready.pop_front();
            self.stats.dropped += 1;
        }
        self.ready.push_back(inv);
    }

    /// Whether this environment was initialised before any request came
    /// (provisioned concurrency): its first invocation is no cold start.
    fn initialised_ahead(&self) -> bool {
        !self.init.report.is_cold_start()
    }

    /// What this environment's cold start waited for: the restore (SnapStart,
    /// once reported) or the init, ms.
    fn cold_start_duration(&self) -> Option<f64> {
        if self.init.report.init_type == SNAP_START {
            self.init.restore_duration_ms
        } else {
            self.init.report.init_duration_ms
        }
    }

    fn publish_init_if_ready(&mut self) {
        let init = &self.init;
        let probe_ready = init.probe_done || !self.config.expect_probe;
        // A snapshot's init is reported with the restore that resumes it.
        let telemetry_ready = if init.report.init_type == SNAP_START {
            init.restore_duration_ms.is_some()
        } else {
            init.telemetry_done
        };
        if telemetry_ready && probe_ready && !init.profile_pending {
            self.publish_init_now();
        }
    }

    /// Publishes this environment's init with what is known, once.
    fn publish_init_now(&mut self) {
        let init = &mut self.init;
        if !init.seen || init.published {
            return;
        }
        init.published = true;
        let mut report = init.report.clone();
        match init.restore_duration_ms {
            // The cold start was the restore: no init phases to split.
            Some(restore_ms) => report.init_duration_ms = Some(restore_ms),
            None => {
                report.breakdown = breakdown(
                    init.started_unix_ms,
                    report.init_duration_ms,
                    report.python.as_ref(),
                    report.imports.as_ref(),
                );
            }
        }
        self.inits_ready.push(report);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Completion {
    Probe,
    RuntimeDone,
    Deadline,
}

/// The invocation a probe record describes on its own, with no platform
/// events to join (a function wrapped with `pyrometer_probe.wrap` in a
/// service run by `pyrometer run`). `pid` names the sender when the record
/// has no request id.
pub fn invocation_from_probe(p: &ProbeInvocation, pid: u32) -> Invocation {
    let mut inv = Invocation {
        request_id: p
            .request_id
            .clone()
            .unwrap_or_else(|| format!("{pid}-{}", p.number)),
        ..Invocation::default()
    };
    apply_probe(&mut inv, p, false);
    inv
}

fn apply_probe(inv: &mut Invocation, p: &ProbeInvocation, runtime_done: bool) {
    inv.start_unix_ms = p.start_unix_us as f64 / 1000.0;
    inv.duration_ms = p.duration_ns as f64 / 1e6;
    inv.cold_start = p.cold_start;
    if !runtime_done || inv.status == Status::Success {
        inv.status = p.status;
    }
    if p.error_type.is_some() {
        inv.error_type.clone_from(&p.error_type);
    }
    let rt = &p.runtime;
    inv.gc_collections = rt
        .gc
        .iter()
        .map(|g| g.collections)
        .sum::<u64>()
        .try_into()
        .unwrap_or(u32::MAX);
    inv.gc_pause_ms = Some(rt.gc.iter().map(|g| g.pause_ns).sum::<u64>() as f64 / 1e6);
    inv.allocated_blocks = Some(rt.allocated_blocks as f64);
    if let Some(rss) = rt.rss_bytes {
        inv.rss_bytes = Some(rss as f64);
    }
    if let Some(u) = rt.cpu_user_us {
        inv.cpu_user_ms = Some(u as f64 / 1000.0);
    }
    if let Some(s) = rt.cpu_system_us {
        inv.cpu_system_ms = Some(s as f64 / 1000.0);
    }
    inv.python = Some(rt.clone());
}

fn fill_report(inv: &mut Invocation, r: &LateReport, init_duration_ms: Option<f64>) {
    inv.billed_duration_ms = r.billed_duration_ms.or(inv.billed_duration_ms);
    inv.max_memory_used_mb = r.max_memory_used_mb.or(inv.max_memory_used_mb);
    inv.memory_size_mb = r.memory_size_mb.or(inv.memory_size_mb);
    inv.post_runtime_ms = r.post_runtime_ms.or(inv.post_runtime_ms);
    if let Some(d) = init_duration_ms {
        inv.init_duration_ms = Some(d);
        inv.cold_start = true;
    }
    // Out of memory: Lambda's signal is max memory reaching the configured size.
    if let (Some(max), Some(size)) = (inv.max_memory_used_mb, inv.memory_size_mb)
        && max >= size
        && inv.status != Status::Success
    {
        inv.status = Status::OutOfMemory;
    }
}

/// Splits the init duration into interpreter start, imports, the handler
/// module and the rest, when the probe's timestamps allow.
fn breakdown(
    init_start_unix_ms: Option<f64>,
    init_duration_ms: Option<f64>,
    python: Option<&PythonInit>,
    imports: Option<&ImportProfile>,
) -> Option<InitBreakdown> {
    let python = python?;
    let total = init_duration_ms?;
    let start_ms =
        init_start_unix_ms.or_else(|| python.exec_unix_us.map(|us| us as f64 / 1000.0))?;
    let interpreter_ms = (python.probe_start_unix_us as f64 / 1000.0 - start_ms).max(0.0);
    let handler_module_ms = python.handler_load_us.unwrap_or(0) as f64 / 1000.0;
    let import_phase_ms = if python.import_phase_us > 0 {
        python.import_phase_us as f64 / 1000.0
    } else {
        imports.map_or(0.0, |p| {
            p.modules
                .iter()
                .filter(|m| m.parent.is_none())
                .map(|m| m.cumulative_us as f64 / 1000.0)
                .sum()
        })
    };
    let imports_ms = (import_phase_ms - handler_module_ms).max(0.0);
    let rest_ms = (total - interpreter_ms - imports_ms - handler_module_ms).max(0.0);
    Some(InitBreakdown {
        interpreter_ms,
        imports_ms,
        handler_module_ms,
        rest_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{ImportedModule, PythonRuntime};
    use crate::sources::probe::{ProbeImports, ProbeInit};

    fn collector() -> Collector {
        Collector::new(CollectorConfig {
            deadline_ms: 1000.0,
            expect_probe: false,
        })
    }

    fn message(record: ProbeRecord) -> ProbeMessage {
        ProbeMessage {
            pid: 7,
            seq: 1,
            dropped: 0,
            record,
        }
    }

    fn probe_invocation(id: &str, status: Status) -> ProbeMessage {
        message(ProbeRecord::Invocation(ProbeInvocation {
            request_id: Some(id.into()),
            number: 1,
            cold_start: true,
            proactive_init: false,
            start_unix_us: 1_000_000,
            duration_ns: 12_500_000,
            status,
            error_type: (status == Status::Error).then(|| "ValueError".into()),
            runtime: PythonRuntime {
                rss_bytes: Some(50_000_000),
                ..PythonRuntime::default()
            },
            probe_ns: 3_000,
        }))
    }

    fn runtime_done(id: &str, unix_ms: f64, status: Status) -> PlatformEvent {
        PlatformEvent::RuntimeDone {
            unix_ms,
            request_id: id.into(),
            status,
            duration_ms: Some(14.0),
            error_type: None,
        }
    }

    fn report(id: &str, unix_ms: f64) -> PlatformEvent {
        PlatformEvent::Report {
            unix_ms,
            request_id: id.into(),
            billed_duration_ms: Some(15.0),
            memory_size_mb: Some(128.0),
            max_memory_used_mb: Some(60.0),
            init_duration_ms: None,
            restore_duration_ms: None,
        }
    }

    #[test]
    fn probe_record_completes_before_runtime_done_and_report_comes_late() {
        let mut c = collector();
        c.on_probe(message(ProbeRecord::Init(ProbeInit {
            init: PythonInit::default(),
            profile_id: 1,
            profile_modules: 0,
        })));
        c.open("r1", 1000.0);
        c.on_probe(probe_invocation("r1", Status::Success));
        assert!(c.is_complete("r1"), "the probe's record completes it");
        let first = c.drain();
        assert_eq!(first.invocations.len(), 1);
        let inv = &first.invocations[0];
        assert_eq!(
            (inv.duration_ms, inv.rss_bytes, inv.partial),
            (12.5, Some(5e7), false)
        );
        // Telemetry arrives after the drain: no second record, report figures come late.
        c.on_platform(runtime_done("r1", 1014.0, Status::Success));
        c.on_platform(report("r1", 1016.5));
        let second = c.drain();
        assert!(second.invocations.is_empty());
        assert_eq!(second.late_reports.len(), 1);
        assert_eq!(second.late_reports[0].billed_duration_ms, Some(15.0));
        assert_eq!(second.late_reports[0].post_runtime_ms, Some(2.5));
        assert_eq!(c.stats().completed_by_probe, 1);
    }

    #[test]
    fn procfs_samples_around_an_invocation_join_it_and_the_probe_wins_where_both_measure() {
        let mut c = collector();
        c.open("r1", 1000.0);
        let sample = |cpu_user_ms: f64, rss_bytes: u64| ProcessSample {
            cpu_user_ms,
            cpu_system_ms: cpu_user_ms / 10.0,
            rss_bytes,
            open_fds: 9,
            threads: 3,
            ..ProcessSample::default()
        };
        c.on_process_sample("r1", false, sample(100.0, 40_000_000));
        c.on_process_sample("r1", true, sample(130.0, 60_000_000));
        c.on_probe(probe_invocation("r1", Status::Success));
        let inv = &c.drain().invocations[0];
        assert_eq!((inv.open_fds, inv.threads), (Some(9.0), Some(3.0)));
        assert_eq!(inv.rss_bytes, Some(5e7), "the probe's own RSS reading wins");
        assert_eq!(
            (inv.cpu_user_ms, inv.cpu_system_ms),
            (Some(30.0), Some(3.0)),
            "CPU over the invocation from procfs when the probe has none"
        );
    }

    #[test]
    fn without_a_probe_runtime_done_completes_and_report_joins_before_drain() {
        let mut c = collector();
        c.on_platform(PlatformEvent::Start {
            unix_ms: 1000.0,
            request_id: "r1".into(),
        });
        c.on_platform(runtime_done("r1", 1014.0, Status::Error));
        assert!(c.is_complete("r1"));
        c.on_platform(report("r1", 1020.0));
        let d = c.drain();
        let inv = &d.invocations[0];
        assert_eq!(
            (inv.status, inv.duration_ms, inv.billed_duration_ms),
            (Status::Error, 14.0, Some(15.0))
        );
        assert_eq!(inv.post_runtime_ms, Some(6.0));
        assert!(inv.cold_start);
        assert!(d.late_reports.is_empty());
    }

    #[test]
    fn a_lost_probe_record_is_completed_partial_at_the_deadline() {
        let mut c = collector();
        c.on_probe(probe_invocation("r0", Status::Success));
        c.open("r1", 1000.0);
        c.on_platform(runtime_done("r1", 1014.0, Status::Success));
        assert!(
            !c.is_complete("r1"),
            "the probe speaks here, so its record is awaited"
        );
        c.expire(1500.0);
        assert!(!c.is_complete("r1") || c.pending() == 0);
        c.expire(2000.0);
        let d = c.drain();
        let inv = d
            .invocations
            .iter()
            .find(|i| i.request_id == "r1")
            .expect("r1");
        assert!(inv.partial);
        assert_eq!(
            (inv.status, inv.duration_ms),
            (Status::Success, 14.0),
            "figures kept, none invented"
        );
        assert_eq!(c.stats().completed_by_deadline, 1);
    }

    #[test]
    fn timeouts_complete_on_runtime_done_even_when_the_probe_speaks() {
        let mut c = collector();
        c.on_probe(probe_invocation("r0", Status::Success));
        c.open("r1", 1000.0);
        c.on_platform(runtime_done("r1", 4000.0, Status::Timeout));
        let d = c.drain();
        let inv = d
            .invocations
            .iter()
            .find(|i| i.request_id == "r1")
            .expect("r1");
        assert_eq!((inv.status, inv.partial), (Status::Timeout, false));
    }

    #[test]
    fn init_report_waits_for_the_profile_and_splits_the_init_time() {
        let mut c = collector();
        c.on_platform(PlatformEvent::InitStart {
            unix_ms: 1000.0,
            init_type: "on-demand".into(),
        });
        c.on_probe(message(ProbeRecord::Init(ProbeInit {
            init: PythonInit {
                probe_start_unix_us: 1_030_000,
                import_phase_us: 200_000,
                handler_load_us: Some(150_000),
                ..PythonInit::default()
            },
            profile_id: 9,
            profile_modules: 1,
        })));
        c.on_platform(PlatformEvent::InitReport {
            unix_ms: 1300.0,
            init_type: "on-demand".into(),
            duration_ms: 300.0,
            status: "success".into(),
        });
        assert!(
            c.drain().inits.is_empty(),
            "the announced profile has not arrived"
        );
        c.on_probe(message(ProbeRecord::Imports(ProbeImports {
            profile_id: 9,
            phase: ImportPhase::Init,
            invocation: 0,
            base_index: 0,
            profile: ImportProfile {
                modules: vec![ImportedModule {
                    module: "app".into(),
                    cumulative_us: 200_000,
                    ..ImportedModule::default()
                }],
            },
        })));
        let inits = c.drain().inits;
        assert_eq!(inits.len(), 1);
        let b = inits[0].breakdown.expect("breakdown");
        assert_eq!(
            (b.interpreter_ms, b.imports_ms, b.handler_module_ms),
            (30.0, 50.0, 150.0)
        );
        assert!((b.rest_ms - 70.0).abs() < 1e-9);
        assert_eq!(inits[0].imports.as_ref().map(|p| p.modules.len()), Some(1));
    }

    #[test]
    fn the_shared_fixture_joins_into_one_cold_invocation() {
        let body = include_bytes!("../../../shared/fixtures/telemetry/on-demand-cold-invoke.json");
        let (events, _) = crate::sources::telemetry::parse_batch(body);
        let mut c = collector();
        for e in &events {
            if let Some(p) = PlatformEvent::from_telemetry(e) {
                c.on_platform(p);
            }
        }
        let d = c.drain();
        assert_eq!(d.invocations.len(), 1);
        let inv = &d.invocations[0];
        assert_eq!(inv.request_id, "459921b5-681c-4a96-beb0-81e0aa586026");
        assert_eq!(
            (inv.status, inv.duration_ms, inv.billed_duration_ms),
            (Status::Success, 2599.0, Some(2600.0))
        );
        assert_eq!(
            (inv.max_memory_used_mb, inv.init_duration_ms),
            (Some(94.0), Some(549.04))
        );
        assert_eq!(inv.post_runtime_ms, Some(2.0));
        assert!(inv.cold_start);
        assert_eq!(d.inits.len(), 1);
        assert_eq!(d.inits[0].init_duration_ms, Some(500.0));
    }

    #[test]
    fn with_a_probe_expected_init_waits_for_it_whatever_the_order() {
        let init_report = || PlatformEvent::InitReport {
            unix_ms: 1300.0,
            init_type: "on-demand".into(),
            duration_ms: 300.0,
            status: "success".into(),
        };
        let probe_init = || {
            message(ProbeRecord::Init(ProbeInit {
                init: PythonInit::default(),
                profile_id: 1,
                profile_modules: 0,
            }))
        };
        for probe_first in [false, true] {
            let mut c = Collector::new(CollectorConfig {
                deadline_ms: 1000.0,
                expect_probe: true,
            });
            if probe_first {
                c.on_probe(probe_init());
            }
            c.on_platform(PlatformEvent::InitStart {
                unix_ms: 1000.0,
                init_type: "on-demand".into(),
            });
            c.on_platform(init_report());
            if !probe_first {
                assert!(c.drain().inits.is_empty(), "waits for the probe");
                c.on_probe(probe_init());
            }
            let inits = c.finish_all().inits;
            assert_eq!(
                inits.len(),
                1,
                "published once (probe first: {probe_first})"
            );
            assert!(inits[0].python.is_some() && inits[0].init_duration_ms == Some(300.0));
        }
    }

    #[test]
    fn a_probe_record_after_runtime_done_enriches_instead_of_duplicating() {
        let mut c = collector();
        c.open("r1", 1000.0);
        c.on_platform(runtime_done("r1", 1014.0, Status::Success));
        c.on_probe(probe_invocation("r1", Status::Success));
        c.on_platform(PlatformEvent::Start {
            unix_ms: 1000.0,
            request_id: "r1".into(),
        });
        let d = c.drain();
        assert_eq!(d.invocations.len(), 1);
        assert_eq!(
            d.invocations[0].duration_ms, 12.5,
            "the probe's finer duration wins"
        );
        assert!(d.invocations[0].python.is_some());
    }

    #[test]
    fn open_invocations_are_bounded() {
        let mut c = collector();
        for i in 0..MAX_PENDING_INVOCATIONS + 3 {
            c.open(&format!("r{i}"), i as f64);
        }
        assert_eq!(c.pending(), MAX_PENDING_INVOCATIONS);
        let d = c.drain();
        assert_eq!(d.invocations.len(), 3);
        assert!(d.invocations.iter().all(|i| i.partial));
    }

    /// A successful probe invocation record of `id`, changed by `edit`.
    fn edited_probe_invocation(id: &str, edit: impl FnOnce(&mut ProbeInvocation)) -> ProbeMessage {
        let mut message = probe_invocation(id, Status::Success);
        if let ProbeRecord::Invocation(inv) = &mut message.record {
            edit(inv);
        }
        message
    }

    fn init_events(init_type: &str) -> [PlatformEvent; 3] {
        [
            PlatformEvent::InitStart {
                unix_ms: 1000.0,
                init_type: init_type.into(),
            },
            PlatformEvent::InitRuntimeDone {
                unix_ms: 1250.0,
                status: "success".into(),
                error_type: None,
            },
            PlatformEvent::InitReport {
                unix_ms: 1300.0,
                init_type: init_type.into(),
                duration_ms: 300.0,
                status: "success".into(),
            },
        ]
    }

    fn probe_init() -> ProbeMessage {
        message(ProbeRecord::Init(ProbeInit {
            init: PythonInit {
                probe_start_unix_us: 1_030_000,
                import_phase_us: 200_000,
                ..PythonInit::default()
            },
            profile_id: 1,
            profile_modules: 0,
        }))
    }

    #[test]
    fn a_snapstart_restore_is_the_one_cold_start_whatever_the_telemetry_order() {
        // The extension's view: INVOKE (open) may come before the restore's
        // buffered telemetry, or after it.
        for restore_first in [true, false] {
            let mut c = collector();
            c.on_probe(probe_init());
            for e in init_events("snap-start") {
                c.on_platform(e);
            }
            assert!(
                c.drain().inits.is_empty(),
                "a snapshot's init waits for its restore"
            );
            let restore = [
                PlatformEvent::RestoreStart { unix_ms: 60_000.0 },
                PlatformEvent::InitRuntimeDone {
                    unix_ms: 60_001.0,
                    status: "success".into(),
                    error_type: None,
                },
                PlatformEvent::RestoreReport {
                    unix_ms: 60_001.0,
                    duration_ms: 1.5,
                    status: "success".into(),
                },
            ];
            if restore_first {
                restore.iter().cloned().for_each(|e| c.on_platform(e));
            }
            c.open("r1", 60_002.0);
            if !restore_first {
                restore.iter().cloned().for_each(|e| c.on_platform(e));
            }
            c.on_probe(probe_invocation("r1", Status::Success));
            let mut restored_report = report("r1", 60_020.0);
            if let PlatformEvent::Report {
                restore_duration_ms,
                ..
            } = &mut restored_report
            {
                *restore_duration_ms = Some(1.5);
            }
            c.on_platform(restored_report);
            c.open("r2", 60_030.0);
            c.on_probe(edited_probe_invocation("r2", |inv| inv.cold_start = false));
            let d = c.drain();
            assert_eq!(
                d.inits.len(),
                1,
                "reported once (restore first: {restore_first})"
            );
            let init = &d.inits[0];
            assert_eq!(init.init_type, "snap-start");
            assert_eq!(init.init_duration_ms, Some(1.5), "the restore's duration");
            assert!(init.python.is_some(), "the snapshot's interpreter");
            assert!(init.breakdown.is_none(), "a restore has no init phases");
            assert!(init.is_cold_start());
            assert_eq!(d.invocations.len(), 2, "the restore ended no invocation");
            assert!(d.invocations.iter().all(|i| !i.partial));
            let first = &d.invocations[0];
            assert!(first.cold_start);
            assert_eq!(first.init_duration_ms, Some(1.5));
            assert!(!d.invocations[1].cold_start);
        }
    }

    #[test]
    fn a_provisioned_concurrency_first_invocation_is_not_a_cold_start() {
        for telemetry_first in [true, false] {
            let mut c = collector();
            if !telemetry_first {
                // Lambda thaws the environment for the first INVOKE and only
                // then delivers the init's telemetry: the variable says it.
                c.set_environment_init_type("provisioned-concurrency");
                c.open("r1", 90_000.0);
            }
            c.on_probe(probe_init());
            for e in init_events("provisioned-concurrency") {
                // The extension drops an initStart that comes after its first
                // INVOKE: it lives in one environment.
                if telemetry_first || !matches!(e, PlatformEvent::InitStart { .. }) {
                    c.on_platform(e);
                }
            }
            if telemetry_first {
                c.open("r1", 90_000.0);
            }
            // The probe's first call in the process says "cold".
            c.on_probe(probe_invocation("r1", Status::Success));
            c.on_platform(report("r1", 90_020.0));
            let d = c.drain();
            let inv = &d.invocations[0];
            assert!(
                !inv.cold_start && inv.init_duration_ms.is_none(),
                "telemetry first: {telemetry_first}: {inv:?}"
            );
            assert_eq!(d.inits.len(), 1);
            let init = &d.inits[0];
            assert_eq!(init.init_type, "provisioned-concurrency");
            assert_eq!(
                init.init_duration_ms,
                Some(300.0),
                "the init's own duration, not the idle time before the first call"
            );
            assert!(!init.is_cold_start());
            if telemetry_first {
                let b = init.breakdown.expect("split from initStart");
                assert_eq!(b.interpreter_ms, 30.0, "initStart → the probe's start");
            }
        }
    }

    #[test]
    fn a_proactive_init_flagged_by_the_probe_is_not_a_cold_start() {
        let mut c = collector();
        for e in init_events("on-demand") {
            c.on_platform(e);
        }
        c.open("r1", 30_000.0);
        c.on_probe(edited_probe_invocation("r1", |inv| {
            inv.proactive_init = true
        }));
        let inv = &c.drain().invocations[0];
        assert!(!inv.cold_start && inv.init_duration_ms.is_none(), "{inv:?}");
    }
}
