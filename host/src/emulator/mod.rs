//! A local AWS Lambda: the Runtime, Extensions and Telemetry APIs on
//! loopback, driving real processes the way Lambda drives them.
//!
//! The caller ([`Emulator`]) asks for invocations; the function's runtime
//! (any Runtime API client: pyrometer's built-in Python loop, `awslambdaric`,
//! the `lambda_runtime` crate, …) and its external extensions (executables,
//! like `/opt/extensions/*`) talk to the APIs exactly as in Lambda. Every
//! timing in the outcomes and in the emitted telemetry is measured from those
//! processes' API calls — see [`events`](self) for how each figure is derived.
//!
//! Data enters as [`EmulatorConfig`] and [`InvokeRequest`]s, and leaves as
//! [`InitOutcome`], [`InvokeOutcome`] and [`ShutdownOutcome`], plus every
//! Telemetry API event ([`Emulator::events`], in-process subscribers, and HTTP
//! subscribers — extensions or the caller's own listener).
//!
//! Module map: [`config`](self) and [`environment`](self) (what runs, with
//! which variables), `server` and the three `*_api` modules (the HTTP side),
//! `state` and `lifecycle` (init → invoke → shutdown), `process` (children,
//! their output and memory), `hub` and `delivery` (telemetry fan-out and
//! buffered HTTP delivery), `events`, `clock`, `ids`.
//!
//! Deviations from Lambda, on purpose:
//!
//! * memory size is reported, not enforced (no cgroup), so there is no
//!   out-of-memory kill; `maxMemoryUsedMB` is the runtime process tree's peak RSS;
//! * an init failure is reported once (Lambda re-runs init inside the first
//!   invocation, a "suppressed init"); the environment is reset and the next
//!   invocation tries again;
//! * `billedDurationMs` rounds the invocation up to the millisecond and does
//!   not include the init phase;
//! * the Telemetry API delivers over HTTP only (not TCP), to loopback only;
//! * runtime and extensions are started together, and init ends when all
//!   have called `next` (as the Lambda lifecycle documentation describes it);
//! * [`InitType::ProvisionedConcurrency`] environments are initialised when
//!   the caller says so ([`Emulator::init`]), not kept warm by a pool;
//! * [`InitType::SnapStart`] takes no snapshot: init runs as at publish time
//!   and the same processes simply continue at the "restore" before the
//!   first invocation (in Lambda they are frozen in the snapshot and resumed
//!   in a new microVM), so the restore's duration is next to nothing and the
//!   init's telemetry is delivered when emitted, not after the restore.

mod clock;
mod config;
mod delivery;
mod environment;
mod error;
mod events;
mod extensions_api;
mod hub;
mod ids;
mod lifecycle;
mod outcome;
mod process;
mod runtime_api;
mod server;
mod state;
mod telemetry_api;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;

pub use config::{
    DEFAULT_INIT_TIMEOUT, DEFAULT_MEMORY_MB, DEFAULT_RETAINED_EVENTS, DEFAULT_SHUTDOWN_TIMEOUT,
    DEFAULT_TIMEOUT, EmulatorConfig, InitType, MAX_PAYLOAD_BYTES,
};
pub use delivery::Buffering;
pub use error::EmulatorError;
pub use hub::{DeliveryStats, SubscriptionReport, TelemetryType};
pub use outcome::{
    FunctionError, InitOutcome, InvokeOutcome, InvokeRequest, ShutdownOutcome, ShutdownReason,
    Status,
};

use crate::sources::telemetry::TelemetryEvent;
use hub::{DeliveryCounters, Owner, Sink, Subscriber};
use state::{Phase, Shared};

/// Counts about the emulator's own telemetry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmulatorStats {
    /// Telemetry events emitted since start.
    pub events_emitted: u64,
    /// Events pushed out of the retained log by newer ones.
    pub events_evicted: u64,
}

/// A running local Lambda for one function.
///
/// Its methods block; it runs its own small async runtime, so it must not be
/// used from inside another async runtime's worker threads (use
/// `spawn_blocking`). Dropping it kills every process it started.
///
/// ```no_run
/// use pyrometer::emulator::{Emulator, EmulatorConfig, ShutdownReason, Status};
///
/// let mut config = EmulatorConfig::new(
///     ["python3", "host/python/pyrometer_runtime.py"],
///     "app.handler",
///     "examples/app",
/// );
/// config.timeout = std::time::Duration::from_secs(10);
/// let mut emulator = Emulator::start(config)?;
/// let first = emulator.invoke(r#"{"hello": "world"}"#)?;
/// assert!(first.cold_start);
/// if first.status == Status::Success {
///     println!("init {:?}, response {:?}", first.init.map(|i| i.duration), first.response);
/// }
/// let second = emulator.invoke("{}")?;
/// println!("warm: {:?}, billed {} ms", second.duration, second.billed_duration_ms);
/// emulator.shutdown(ShutdownReason::Spindown);
/// for event in emulator.events() {
///     println!("{} {}", event.time, event.event_type());
/// }
/// # Ok::<(), pyrometer::emulator::EmulatorError>(())
/// ```
pub struct Emulator {
    shared: Arc<Shared>,
    server: tokio::task::JoinHandle<()>,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Emulator {
    /// Starts the APIs on loopback. No process starts until the first
    /// [`Self::invoke`] (or [`Self::init`]), as with on-demand Lambda.
    pub fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        validate(&config)?;
        let extension_paths = extension_paths(&config)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pyrometer-emulator")
            .enable_all()
            .build()
            .map_err(EmulatorError::Runtime)?;
        let addr = config.bind;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind(addr))
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let api = listener
            .local_addr()
            .map_err(|source| EmulatorError::Bind { addr, source })?;
        let shared = Arc::new(Shared::new(config, extension_paths, api));
        let server = runtime.spawn(server::serve(listener, shared.clone()));
        Ok(Emulator {
            shared,
            server,
            runtime: Some(runtime),
        })
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            // Only `Drop` takes the runtime.
            None => unreachable!("the emulator's runtime lives as long as the emulator"),
        }
    }

    /// `AWS_LAMBDA_RUNTIME_API`: where the APIs listen.
    pub fn runtime_api(&self) -> SocketAddr {
        self.shared.api
    }

    /// The configuration it runs with.
    pub fn config(&self) -> &EmulatorConfig {
        &self.shared.config
    }

    /// Runs an init phase now, ahead of the first invocation, which carries
    /// this outcome. With [`InitType::OnDemand`] that invocation still counts
    /// as the cold start; with [`InitType::ProvisionedConcurrency`] it does
    /// not (this is how such environments are meant to start); with
    /// [`InitType::SnapStart`] this is the snapshot's init, and the restore
    /// before the first invocation is its cold start. `None` if an
    /// environment is already up.
    pub fn init(&mut self) -> Option<InitOutcome> {
        if self.shared.lock().phase != Phase::Idle {
            return None;
        }
        let outcome = self.block_on(lifecycle::init(&self.shared));
        if outcome.status == Status::Success {
            self.shared.lock().pending_init = Some(outcome.clone());
        }
        Some(outcome)
    }

    /// Invokes the function with a payload (starting an environment if
    /// there is none) and waits until the invocation is over: the runtime
    /// answered and every extension is done, or the timeout passed.
    pub fn invoke(&mut self, payload: impl Into<Bytes>) -> Result<InvokeOutcome, EmulatorError> {
        self.invoke_with(InvokeRequest::new(payload))
    }

    /// [`Self::invoke`] with a client context or Cognito identity.
    pub fn invoke_with(&mut self, request: InvokeRequest) -> Result<InvokeOutcome, EmulatorError> {
        self.block_on(lifecycle::invoke(&self.shared, request))
    }

    /// Shuts the environment down: SHUTDOWN to the extensions, which get
    /// [`EmulatorConfig::shutdown_timeout`], then SIGKILL. `None` if there
    /// was no environment. The next invocation starts a new one.
    pub fn shutdown(&mut self, reason: ShutdownReason) -> Option<ShutdownOutcome> {
        self.block_on(lifecycle::shutdown(&self.shared, reason))
    }

    /// Every telemetry event retained so far (all types, emission order).
    pub fn events(&self) -> Vec<TelemetryEvent> {
        self.shared.hub.events()
    }

    /// Takes the retained telemetry events, leaving the log empty.
    pub fn drain_events(&self) -> Vec<TelemetryEvent> {
        self.shared.hub.drain_events()
    }

    /// Subscribes in process: the events of `types` arrive on the returned
    /// channel as they are emitted, starting with the current environment's
    /// so far. At most `capacity` wait; more are dropped and counted in
    /// [`Self::subscriptions`]. Ends when the receiver is dropped.
    pub fn subscribe(
        &self,
        types: &[TelemetryType],
        capacity: usize,
    ) -> std::sync::mpsc::Receiver<TelemetryEvent> {
        let (tx, rx) = std::sync::mpsc::sync_channel(capacity.max(1));
        self.shared.hub.subscribe(
            Subscriber {
                name: "pyrometer".to_string(),
                destination: "channel".to_string(),
                owner: Owner::Caller,
                types: types.to_vec(),
                sink: Sink::Channel(tx),
                counters: Arc::new(DeliveryCounters::default()),
            },
            true,
        );
        rx
    }

    /// Subscribes an HTTP endpoint on loopback (such as a
    /// [`TelemetryListener`](crate::sources::telemetry::TelemetryListener)),
    /// delivered exactly as to an extension, for as long as the emulator runs.
    pub fn subscribe_http(
        &self,
        uri: &str,
        types: &[TelemetryType],
        buffering: Buffering,
    ) -> Result<(), EmulatorError> {
        let Some(runtime) = &self.runtime else {
            return Err(EmulatorError::Subscription(
                "the emulator is stopping".into(),
            ));
        };
        let _context = runtime.enter();
        telemetry_api::add_http_subscriber(
            &self.shared,
            "pyrometer".to_string(),
            Owner::Caller,
            uri,
            types.to_vec(),
            buffering,
        )
        .map_err(EmulatorError::Subscription)
    }

    /// Every subscription so far, extensions' included, and how delivery went.
    pub fn subscriptions(&self) -> Vec<SubscriptionReport> {
        self.shared.hub.reports()
    }

    /// The runtime process's pid, while an environment is up (for sampling it).
    pub fn runtime_pid(&self) -> Option<u32> {
        let state = self.shared.lock();
        state.runtime.pid.filter(|_| state.runtime.exit.is_none())
    }

    /// Counts about the emitted telemetry.
    pub fn stats(&self) -> EmulatorStats {
        let (events_emitted, events_evicted) = self.shared.hub.counts();
        EmulatorStats {
            events_emitted,
            events_evicted,
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        for (_, pid) in self.shared.lock().live_processes() {
            process::signal_group(pid, process::SIGKILL);
        }
        self.server.abort();
        if let Some(runtime) = self.runtime.take() {
            // Not `shutdown_timeout`: that would panic inside an async context.
            runtime.shutdown_background();
        }
    }
}

fn validate(config: &EmulatorConfig) -> Result<(), EmulatorError> {
    let fail = |message: &str| Err(EmulatorError::Config(message.to_string()));
    if config.runtime_cmd.is_empty() || config.runtime_cmd[0].is_empty() {
        return fail("the runtime command is empty");
    }
    if config.handler.is_empty() {
        return fail("the handler is empty");
    }
    if !config.task_root.is_dir() {
        return fail(&format!(
            "the task root {} is not a directory",
            config.task_root.display()
        ));
    }
    if !config.bind.ip().is_loopback() {
        return fail(&format!("{} is not a loopback address", config.bind));
    }
    if config.timeout.is_zero() || config.init_timeout.is_zero() {
        return fail("timeouts must be positive");
    }
    if config.memory_mb == 0 {
        return fail("memory size must be positive");
    }
    Ok(())
}

/// The configured extensions, then the executables of the extensions
/// directory in name order (as Lambda starts `/opt/extensions/*`).
fn extension_paths(config: &EmulatorConfig) -> Result<Vec<PathBuf>, EmulatorError> {
    let mut paths = config.extensions.clone();
    if let Some(dir) = &config.extensions_dir {
        let entries = std::fs::read_dir(dir).map_err(|source| EmulatorError::ExtensionsDir {
            path: dir.clone(),
            source,
        })?;
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| process::is_executable(p))
            .collect();
        found.sort();
        paths.extend(found);
    }
    for path in &paths {
        if !process::is_executable(path) {
            return Err(EmulatorError::Config(format!(
                "extension {} is not an executable file",
                path.display()
            )));
        }
    }
    Ok(paths)
}
