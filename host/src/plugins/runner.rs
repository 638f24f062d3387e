//! One loaded plugin: its pre-linked component, a warm instance reused across
//! calls, re-instantiation after traps, and the circuit breaker.
//!
//! A call goes: refuse if disabled → instantiate and `configure` if there is
//! no warm instance → set the epoch deadline → `analyze` → validate → count.
//! A trap drops the store (a trapped store cannot be entered again); the next
//! call starts a fresh instance. `breaker_threshold` consecutive failures of
//! any kind disable the plugin for the rest of the process.

use std::path::Path;
use std::time::Instant;

use tracing::{error, info, warn};
use wasmtime::component::Linker;
use wasmtime::{Engine, Store, Trap};

use super::bindings::pyrometer::plugin::types as wit;
use super::bindings::{Analyzer, AnalyzerPre};
use super::capture::CapturedOutput;
use super::engine::{EpochTicker, deadline_ticks};
use super::error::{CallError, FailureKind, LoadError, first_line};
use super::limits::PluginLimits;
use super::sandbox::PluginState;
use super::telemetry;
use super::validate::{MetricKinds, validate_output};
use crate::model::{Finding, PluginOutput, Severity};

/// Longest guest stdout/stderr text logged per call (the capture may hold more).
const LOGGED_STDIO_BYTES: usize = 4096;

/// A plugin ready to be called.
pub struct Plugin {
    name: String,
    config: Vec<(String, String)>,
    limits: PluginLimits,
    pre: AnalyzerPre<PluginState>,
    engine: Engine,
    warm: Option<Warm>,
    stdout: CapturedOutput,
    stderr: CapturedOutput,
    consecutive_failures: u32,
    disabled: bool,
}

struct Warm {
    store: Store<PluginState>,
    instance: Analyzer,
}

/// Where a failed wasm call came from, to tell traps apart.
enum Stage {
    Configure,
    Analyze,
}

impl Plugin {
    /// Loads `path`, links it, checks it implements the world, and starts a
    /// first instance with `config` (so a rejected config is reported now,
    /// not at the first batch).
    pub fn load(
        engine: &Engine,
        linker: &Linker<PluginState>,
        ticker: &EpochTicker,
        name: &str,
        path: &Path,
        config: Vec<(String, String)>,
        limits: PluginLimits,
    ) -> Result<Self, LoadError> {
        let pre = prepare(engine, linker, path)?;
        let mut plugin = Self {
            name: name.to_owned(),
            config,
            stdout: CapturedOutput::new(limits.capture_bytes),
            stderr: CapturedOutput::new(limits.capture_bytes),
            limits,
            pre,
            engine: engine.clone(),
            warm: None,
            consecutive_failures: 0,
            disabled: false,
        };
        telemetry::record_disabled(name, false);
        plugin.ensure_instance(ticker).map_err(|e| {
            telemetry::record_disabled(name, true);
            LoadError::Start {
                plugin: name.to_owned(),
                reason: e.message,
            }
        })?;
        Ok(plugin)
    }

    /// The plugin's name (labels, logs, findings).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether the breaker has disabled this plugin.
    pub fn is_disabled(&self) -> bool {
        self.disabled
    }

    /// Creates a fresh instance and configures it, replacing any warm one.
    /// Public so benchmarks can measure re-instantiation alone.
    pub fn reinstantiate(&mut self, ticker: &EpochTicker) -> Result<(), CallError> {
        self.warm = None;
        self.ensure_instance(ticker)
    }

    fn ensure_instance(&mut self, ticker: &EpochTicker) -> Result<(), CallError> {
        if self.warm.is_some() {
            return Ok(());
        }
        let state = PluginState::new(&self.name, &self.limits, &self.stdout, &self.stderr);
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| s);
        store.set_epoch_deadline(deadline_ticks(self.limits.deadline()));
        let _active = ticker.call();
        let instance = self
            .pre
            .instantiate(&mut store)
            .map_err(|e| self.wasm_failure(&store, e, Stage::Configure))?;
        telemetry::record_instantiation(&self.name);
        let configured = instance
            .call_configure(&mut store, &self.config)
            .map_err(|e| self.wasm_failure(&store, e, Stage::Configure))?;
        if let Err(message) = configured {
            // A rejected config will be rejected again: disable for good.
            self.disabled = true;
            telemetry::record_disabled(&self.name, true);
            return Err(
                self.call_error(FailureKind::Disabled, format!("config rejected: {message}"))
            );
        }
        self.warm = Some(Warm { store, instance });
        Ok(())
    }

    /// Runs `analyze` over `batch`. Failures are counted, logged and returned;
    /// when one opens the breaker, `breaker_findings` receives a finding saying so.
    pub fn analyze(
        &mut self,
        ticker: &EpochTicker,
        batch: &wit::Batch,
        kinds: &mut MetricKinds,
        breaker_findings: &mut Vec<Finding>,
    ) -> Result<PluginOutput, CallError> {
        let started = Instant::now();
        let rows_in = batch.invocations.request_id.len();
        let result = if self.disabled {
            Err(self.call_error(FailureKind::Disabled, "plugin is disabled".into()))
        } else {
            self.call_analyze(ticker, batch, kinds)
        };
        self.log_guest_output();
        telemetry::record_call(
            &self.name,
            started.elapsed(),
            rows_in,
            result
                .as_ref()
                .map(|o| o.metrics.len() + o.findings.len())
                .map_err(|e| e.kind),
        );
        match &result {
            Ok(_) => self.consecutive_failures = 0,
            Err(e) if e.kind == FailureKind::Disabled => {}
            Err(e) => {
                warn!(plugin = %self.name, kind = %e.kind, "{}", e.message);
                self.consecutive_failures += 1;
                if self.consecutive_failures >= self.limits.breaker_threshold {
                    breaker_findings.push(self.open_breaker(e));
                }
            }
        }
        result
    }

    fn call_analyze(
        &mut self,
        ticker: &EpochTicker,
        batch: &wit::Batch,
        kinds: &mut MetricKinds,
    ) -> Result<PluginOutput, CallError> {
        self.ensure_instance(ticker)?;
        let Some(warm) = self.warm.as_mut() else {
            return Err(self.call_error(FailureKind::Trap, "no instance".into()));
        };
        warm.store.data_mut().begin_call(&self.limits);
        warm.store
            .set_epoch_deadline(deadline_ticks(self.limits.deadline()));
        let returned = {
            let _active = ticker.call();
            warm.instance.call_analyze(&mut warm.store, batch)
        };
        telemetry::record_dropped(&self.name, 0, 0, warm.store.data().log_lines_dropped());
        match returned {
            Ok(Ok(output)) => validate_output(&self.name, output, &self.limits, kinds)
                .map_err(|m| self.call_error(FailureKind::InvalidOutput, m)),
            Ok(Err(message)) => Err(self.call_error(FailureKind::Error, message)),
            Err(e) => {
                let store = match self.warm.take() {
                    Some(w) => w.store,
                    None => return Err(self.call_error(FailureKind::Trap, format!("{e:#}"))),
                };
                Err(self.wasm_failure(&store, e, Stage::Analyze))
            }
        }
    }

    /// Classifies a wasm-level error (a trap) from `store`'s call.
    fn wasm_failure(
        &self,
        store: &Store<PluginState>,
        e: wasmtime::Error,
        stage: Stage,
    ) -> CallError {
        let kind = if e.downcast_ref::<Trap>() == Some(&Trap::Interrupt) {
            FailureKind::Deadline
        } else if store.data().memory_cap_hit() {
            FailureKind::Memory
        } else {
            FailureKind::Trap
        };
        let during = match stage {
            Stage::Configure => "while starting",
            Stage::Analyze => "in analyze",
        };
        let detail = match kind {
            FailureKind::Deadline => {
                format!("exceeded its {} ms deadline", self.limits.deadline_ms)
            }
            FailureKind::Memory => format!(
                "exceeded its memory cap of {} bytes",
                self.limits.memory_cap_bytes
            ),
            _ => first_line(&e),
        };
        self.call_error(kind, format!("{during}: {detail}"))
    }

    fn call_error(&self, kind: FailureKind, message: String) -> CallError {
        CallError {
            plugin: self.name.clone(),
            kind,
            message,
        }
    }

    fn open_breaker(&mut self, last: &CallError) -> Finding {
        self.disabled = true;
        self.warm = None;
        telemetry::record_disabled(&self.name, true);
        let message = format!(
            "plugin {} disabled after {} consecutive failures; last: {}: {}",
            self.name, self.consecutive_failures, last.kind, last.message
        );
        error!(plugin = %self.name, "{message}");
        Finding {
            plugin: self.name.clone(),
            rule: "plugin-disabled".into(),
            severity: Severity::Critical,
            message,
            labels: vec![
                ("plugin".into(), self.name.clone()),
                ("reason".into(), last.kind.as_str().into()),
            ],
        }
    }

    /// Logs what the guest printed during the call, bounded, and counts what
    /// the capture dropped.
    fn log_guest_output(&self) {
        let out = self.stdout.drain();
        let err = self.stderr.drain();
        telemetry::record_dropped(&self.name, out.dropped_bytes, err.dropped_bytes, 0);
        for (stream, drained) in [("stdout", &out), ("stderr", &err)] {
            let text = super::sandbox::truncate_utf8(drained.text.trim_end(), LOGGED_STDIO_BYTES);
            if !text.is_empty() {
                info!(plugin = %self.name, stream, dropped_bytes = drained.dropped_bytes, "{text}");
            }
        }
    }
}

/// Loads `path` and checks that it links against the host and implements the
/// `analyzer` world, without instantiating it.
pub fn prepare(
    engine: &Engine,
    linker: &Linker<PluginState>,
    path: &Path,
) -> Result<AnalyzerPre<PluginState>, LoadError> {
    let component = super::artifact::load_component(engine, path)?;
    let instance_pre = linker
        .instantiate_pre(&component)
        .map_err(|e| LoadError::Unlinkable {
            path: path.to_owned(),
            reason: format!("{e:#}"),
        })?;
    AnalyzerPre::new(instance_pre).map_err(|e| LoadError::World {
        path: path.to_owned(),
        reason: format!("{e:#}"),
    })
}
