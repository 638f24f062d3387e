//! One execution environment's measurements: inputs go into the collector;
//! what it completes goes through the plugins into the metrics sink, which is
//! flushed per the configured strategy.
//!
//! [`Session::on_invoke`] waits — bounded by the invocation's own deadline —
//! for the invocation to complete: the probe's end-of-invocation record, or
//! `platform.runtimeDone` when no probe speaks. It never waits for
//! `platform.report`, which Lambda only sends after every extension has
//! called `next`; those figures join the following flush as late reports.
//! The runtime process is sampled from procfs at INVOKE and at completion
//! (the moment the completing record is fed), see [`RuntimeProcess`].

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyrometer::collector::{Collector, PlatformEvent};
use pyrometer::config::FlushStrategy;
use pyrometer::export::{ExportConfig, FlushReport, Identity, catalogue};
use pyrometer::metrics_sink::MetricsSink;
use pyrometer::model::{Batch, FunctionInfo, PluginOutput};
use pyrometer::sources::probe::ProbeRecord;

use crate::faults::Faults;
use crate::flush::FlushControl;
use crate::inputs::Input;
use crate::plugins::Plugins;
use crate::runtime_process::RuntimeProcess;
use crate::telemetry::TelemetryFeed;

/// How long past an invocation's deadline we still wait for its end: the
/// telemetry buffering (25 ms) plus delivery.
const COMPLETION_GRACE_MS: u64 = 100;
/// Most time SHUTDOWN waits for the last invocation's `platform.report`
/// (buffered up to 25 ms) before the final flush.
const SHUTDOWN_REPORT_WAIT_MS: u64 = 100;
/// The longest a Lambda invocation can run, for an INVOKE without a deadline.
const MAX_INVOCATION_MS: u64 = 900_000;

/// Where inputs come from.
pub(crate) struct Sources {
    /// Every source's input.
    pub(crate) inputs: Receiver<Input>,
    /// The Telemetry API listener, if it started (for its counts).
    pub(crate) telemetry: Option<TelemetryFeed>,
}

/// The state the lifecycle loop drives.
pub(crate) struct Session {
    /// Joins telemetry and probe records into invocations.
    collector: Collector,
    inputs: Receiver<Input>,
    telemetry: Option<TelemetryFeed>,
    /// Telemetry the listener could not use, as counted at the last look.
    telemetry_unusable: u64,
    /// Registry and exporters.
    sink: MetricsSink,
    /// The plugins, loading or loaded.
    plugins: Plugins,
    /// The measured function.
    function: FunctionInfo,
    /// When to flush.
    flush: FlushControl,
    /// Internal faults, counted.
    pub(crate) faults: Faults,
    unflushed: bool,
    opened_any: bool,
    init_duration: InitDuration,
    /// The last invocation, until its `platform.report` arrives.
    awaiting_report: Option<String>,
    /// The invocation INVOKE is waiting for, until it completes.
    current: Option<String>,
    /// The runtime process, sampled around each invocation.
    runtime: RuntimeProcess,
    /// A SnapStart environment's exporters and identity, to take a fresh
    /// `instance` at the first event after the restore.
    after_restore: Option<(ExportConfig, Identity)>,
}

/// The cold start's init duration usually arrives (`platform.initReport`,
/// or `platform.restoreReport` with SnapStart; buffered) after its invocation
/// was recorded; it is recorded once both are in.
#[derive(Debug, Default)]
struct InitDuration {
    /// Seconds, from the init report.
    seconds: Option<f64>,
    /// A cold invocation was recorded without it.
    awaited: bool,
}

impl Session {
    /// A session over its parts.
    pub(crate) fn new(
        collector: Collector,
        sources: Sources,
        sink: MetricsSink,
        plugins: Plugins,
        function: FunctionInfo,
        flush: FlushStrategy,
        faults: Faults,
    ) -> Self {
        Self {
            collector,
            inputs: sources.inputs,
            telemetry: sources.telemetry,
            telemetry_unusable: 0,
            sink,
            plugins,
            function,
            flush: FlushControl::new(flush),
            faults,
            unflushed: false,
            opened_any: false,
            init_duration: InitDuration::default(),
            awaiting_report: None,
            current: None,
            runtime: RuntimeProcess::default(),
            after_restore: None,
        }
    }

    /// This environment is initialised for a SnapStart snapshot: everything
    /// up to the first `next` is the snapshot's, shared by every environment
    /// restored from it. The first INVOKE or SHUTDOWN (the first event after
    /// a restore) re-targets the exporters of `export` at `identity` with
    /// a fresh `instance` ([`Identity::restored_instance`]), so environments
    /// restored from one snapshot push to groups of their own.
    pub(crate) fn identify_after_restore(&mut self, export: ExportConfig, identity: Identity) {
        self.after_restore = Some((export, identity));
    }

    /// The first event after a SnapStart restore: a fresh identity.
    fn resume(&mut self) {
        let Some((export, identity)) = self.after_restore.take() else {
            return;
        };
        let identity = Identity {
            instance: Identity::restored_instance(),
            ..identity
        };
        let left_out = self.sink.reidentify(&export, &identity);
        self.faults.exporters_left_out(left_out);
    }

    /// Handles one INVOKE: waits (bounded) for its end, analyzes, flushes.
    pub(crate) fn on_invoke(&mut self, request_id: &str, deadline_unix_ms: u64) {
        self.resume();
        // Lambda hands an INVOKE to the runtime and the extensions alike, and
        // a busy extension may take it after the runtime is done: the queue
        // can already hold this invocation's end. It is current while the
        // queue is fed, so that end still gets its sample.
        self.current = Some(request_id.to_owned());
        self.take_queued();
        let gap = self.flush.invoked(Instant::now());
        self.collector.open(request_id, now_unix_ms());
        if !self.collector.is_complete(request_id)
            && let Some(sample) = self.runtime.sample(&mut self.faults)
        {
            self.collector.on_process_sample(request_id, false, sample);
        }
        self.opened_any = true;
        self.awaiting_report = Some(request_id.to_owned());
        let limit_ms = match deadline_unix_ms {
            0 => MAX_INVOCATION_MS,
            at => at.saturating_sub(now_unix_ms() as u64),
        };
        let wait_until = Instant::now() + Duration::from_millis(limit_ms + COMPLETION_GRACE_MS);
        while !self.collector.is_complete(request_id) {
            let left = wait_until.saturating_duration_since(Instant::now());
            match self.inputs.recv_timeout(left) {
                Ok(input) => self.feed(input),
                // It joins a later flush when its end arrives, or the final one.
                Err(RecvTimeoutError::Timeout) => {
                    self.faults.report(
                        "incomplete",
                        format!("{request_id} did not complete in time"),
                    );
                    break;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.faults.report("sources", "no source is running");
                    break;
                }
            }
        }
        self.take_queued();
        self.current = None;
        let drained = self.collector.drain();
        self.publish(drained);
        if self.unflushed && self.flush.due(Instant::now(), gap) {
            self.flush_now();
        }
    }

    /// Handles SHUTDOWN: completes what is open, analyzes and flushes by `deadline`.
    pub(crate) fn on_shutdown(&mut self, deadline: Instant) {
        self.resume();
        self.take_queued();
        let wait_until =
            deadline.min(Instant::now() + Duration::from_millis(SHUTDOWN_REPORT_WAIT_MS));
        while self.awaiting_report.is_some() {
            let left = wait_until.saturating_duration_since(Instant::now());
            match self.inputs.recv_timeout(left) {
                Ok(input) => self.feed(input),
                Err(_) => break,
            }
        }
        let drained = self.collector.finish_all();
        self.publish(drained);
        let report = self.sink.shutdown(deadline);
        self.note_export_failures(report);
    }

    /// Feeds everything already queued, without waiting.
    fn take_queued(&mut self) {
        while let Ok(input) = self.inputs.try_recv() {
            self.feed(input);
        }
    }

    fn feed(&mut self, input: Input) {
        match input {
            Input::Telemetry(event) => {
                let Some(platform) = PlatformEvent::from_telemetry(&event) else {
                    return;
                };
                // An extension lives in one environment: an initStart buffered
                // past the first INVOKE is this environment's, not a new one's.
                if self.opened_any && matches!(platform, PlatformEvent::InitStart { .. }) {
                    return;
                }
                if let PlatformEvent::Report { request_id, .. } = &platform
                    && self.awaiting_report.as_ref() == Some(request_id)
                {
                    self.awaiting_report = None;
                }
                if let PlatformEvent::RuntimeDone { request_id, .. } = &platform {
                    self.sample_at_completion(Some(request_id));
                }
                self.collector.on_platform(platform);
            }
            Input::Probe(message) => {
                self.runtime.observe(&message);
                if let ProbeRecord::Invocation(inv) = &message.record {
                    self.sample_at_completion(inv.request_id.as_ref());
                }
                self.collector.on_probe(*message);
            }
            Input::ProbeRejected(reason) => {
                self.faults.report(
                    "probe",
                    format!("rejected a probe datagram: {}", reason.as_str()),
                );
                self.sink.registry().record(
                    &catalogue::PYROMETER_DROPPED_RECORDS_TOTAL,
                    &[("source", "probe")],
                    1.0,
                );
            }
        }
    }

    /// Samples the runtime as the record that may complete the current
    /// invocation is fed (`request_id`: the one the record names, if it
    /// does), so the end sample lands on the invocation before it is closed.
    /// An invocation whose end came before its INVOKE was handled is opened
    /// here, as feeding the record would have opened it.
    fn sample_at_completion(&mut self, request_id: Option<&String>) {
        let Some(current) = &self.current else {
            return;
        };
        if request_id.is_some_and(|id| id != current) || self.collector.was_completed(current) {
            return;
        }
        if let Some(sample) = self.runtime.sample(&mut self.faults) {
            self.collector.open(current, now_unix_ms());
            self.collector.on_process_sample(current, true, sample);
        }
    }

    /// Counts (and logs once) telemetry the listener received but could not use.
    fn check_telemetry(&mut self) {
        let Some(feed) = &self.telemetry else {
            return;
        };
        let stats = feed.stats();
        let parse = stats.parse;
        let unusable = stats.unreadable_bodies
            + stats.dropped
            + parse.invalid_batches
            + parse.incomplete
            + parse.malformed;
        let new = unusable.saturating_sub(self.telemetry_unusable);
        if new == 0 {
            return;
        }
        self.telemetry_unusable = unusable;
        self.faults
            .report("telemetry", format!("unusable telemetry: {stats:?}"));
        self.sink.registry().record(
            &catalogue::PYROMETER_DROPPED_RECORDS_TOTAL,
            &[("source", "telemetry")],
            new as f64,
        );
    }

    /// Runs the plugins over what completed and records it all.
    fn publish(&mut self, drained: pyrometer::collector::Drained) {
        self.check_telemetry();
        if !drained.late_reports.is_empty() {
            self.sink.record_late_reports(&drained.late_reports);
            self.unflushed = true;
        }
        self.init_duration.awaited |= drained
            .invocations
            .iter()
            .any(|i| i.cold_start && i.init_duration_ms.is_none());
        // A provisioned-concurrency init delayed no invocation: it is not a
        // cold start's init duration (its import profile still counts).
        let cold_inits = drained.inits.iter().filter(|i| i.is_cold_start());
        if let Some(ms) = cold_inits.filter_map(|i| i.init_duration_ms).next() {
            self.init_duration.seconds = Some(ms / 1e3);
        }
        if let (true, Some(seconds)) = (self.init_duration.awaited, self.init_duration.seconds) {
            let spec = &catalogue::FAAS_INIT_DURATION_SECONDS;
            self.sink.registry().record(spec, &[], seconds);
            self.init_duration = InitDuration::default();
            self.unflushed = true;
        }
        let imports = drained.inits.iter().find_map(|i| i.imports.clone());
        if drained.invocations.is_empty() && imports.is_none() {
            return;
        }
        let batch = Batch {
            function: self.function.clone(),
            invocations: drained.invocations,
            imports,
        };
        match self.plugins.get(&mut self.faults) {
            Some(plugins) => {
                let run = self.sink.analyze(&batch, plugins);
                for failure in &run.failures {
                    self.faults.report("plugin", failure);
                }
            }
            None => self.sink.record(&batch, &PluginOutput::default()),
        }
        self.unflushed = true;
    }

    fn flush_now(&mut self) {
        self.flush.flushed(Instant::now());
        self.unflushed = false;
        let report = self.sink.flush();
        self.note_export_failures(report);
    }

    fn note_export_failures(&mut self, report: Option<FlushReport>) {
        let outcomes = report.map(|r| r.outcomes).unwrap_or_default();
        for outcome in outcomes {
            if let Err(e) = outcome.result {
                self.faults
                    .report("export", format!("{}: {e}", outcome.exporter));
            }
        }
    }
}

/// Now, in ms since the Unix epoch.
pub(crate) fn now_unix_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
}

#[cfg(test)]
mod tests {
    use pyrometer::collector::CollectorConfig;
    use pyrometer::model::{PythonInit, PythonRuntime, Status};
    use pyrometer::sources::probe::{ProbeInit, ProbeInvocation, ProbeMessage};

    use super::*;
    use crate::inputs::channel;

    fn probe(record: ProbeRecord) -> Input {
        Input::Probe(Box::new(ProbeMessage {
            pid: std::process::id(),
            seq: 1,
            dropped: 0,
            record,
        }))
    }

    fn session() -> (std::sync::mpsc::SyncSender<Input>, Session) {
        let (tx, rx) = channel();
        let mut faults = Faults::default();
        let identity = Identity {
            job: "test".into(),
            function_name: "f".into(),
            function_version: "1".into(),
            instance: "i".into(),
        };
        let session = Session::new(
            Collector::new(CollectorConfig {
                deadline_ms: 1000.0,
                expect_probe: true,
            }),
            Sources {
                inputs: rx,
                telemetry: None,
            },
            MetricsSink::without_exporters(&identity),
            Plugins::now(&[], &mut faults),
            FunctionInfo::default(),
            FlushStrategy::End,
            faults,
        );
        (tx, session)
    }

    #[test]
    fn an_invocation_that_ended_before_its_invoke_was_handled_is_still_sampled() {
        let (tx, mut session) = session();
        let init = ProbeInit {
            init: PythonInit::default(),
            profile_id: 1,
            profile_modules: 0,
        };
        let invocation = ProbeInvocation {
            request_id: Some("r1".into()),
            number: 1,
            cold_start: true,
            proactive_init: false,
            start_unix_us: 1_000_000,
            duration_ns: 1_000_000,
            status: Status::Success,
            error_type: None,
            runtime: PythonRuntime::default(),
            probe_ns: 0,
        };
        // Both queued before INVOKE is handled: the extension was late.
        tx.send(probe(ProbeRecord::Init(init))).expect("queue");
        tx.send(probe(ProbeRecord::Invocation(invocation)))
            .expect("queue");
        session.on_invoke("r1", 0);
        let text = session.sink.registry().handle().render();
        let fds = text
            .lines()
            .find(|line| line.starts_with("process_open_fds"))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|value| value.parse::<f64>().ok());
        assert!(fds.is_some_and(|n| n >= 1.0), "{text}");
        assert!(!session.faults.any(), "{}", session.faults.summary());
    }
}
