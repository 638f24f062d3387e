//! The execution environment's state, shared by the API handlers (which the
//! runtime and extensions drive) and the lifecycle (which the caller drives).
//!
//! One mutex guards it; nobody holds it across an `await`. Every change that
//! someone may be waiting for is followed by [`Shared::changed`], and waiters
//! re-check their condition after each wake-up, so no wake-up can be lost and
//! no sleep stands in for synchronisation. Long polls (`next`) wait on a
//! one-shot channel stored in their slot.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, oneshot};

use super::clock::Clock;
use super::config::EmulatorConfig;
use super::events::ResponseTimes;
use super::hub::TelemetryHub;
use super::ids::Trace;
use super::outcome::{FunctionError, InitOutcome, Status};

/// Everything the emulator's tasks share.
pub(crate) struct Shared {
    pub(crate) config: EmulatorConfig,
    /// External extensions to start in each environment, in order.
    pub(crate) extension_paths: Vec<PathBuf>,
    pub(crate) clock: Clock,
    pub(crate) hub: TelemetryHub,
    /// Where the APIs listen (`AWS_LAMBDA_RUNTIME_API`).
    pub(crate) api: SocketAddr,
    state: Mutex<State>,
    changed: Notify,
}

impl Shared {
    pub(crate) fn new(
        config: EmulatorConfig,
        extension_paths: Vec<PathBuf>,
        api: SocketAddr,
    ) -> Self {
        let hub = TelemetryHub::new(config.max_retained_events);
        Shared {
            config,
            extension_paths,
            clock: Clock::new(),
            hub,
            api,
            state: Mutex::new(State::default()),
            changed: Notify::new(),
        }
    }

    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes everyone waiting for a change (call after releasing the lock).
    pub(crate) fn notify(&self) {
        self.changed.notify_waiters();
    }

    /// Waits until `check` returns `Some`, or `deadline` passes (`None`).
    /// `check` runs under the state lock, after every change.
    pub(crate) async fn wait_for<T>(
        &self,
        deadline: Instant,
        mut check: impl FnMut(&mut State) -> Option<T>,
    ) -> Option<T> {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            // Registered before checking, so a change between the check and
            // the await still wakes us.
            notified.as_mut().enable();
            if let Some(found) = check(&mut self.lock()) {
                return Some(found);
            }
            tokio::select! {
                _ = &mut notified => {}
                _ = tokio::time::sleep_until(deadline.into()) => {
                    return check(&mut self.lock());
                }
            }
        }
    }
}

/// Where the environment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Phase {
    /// No environment: the next invocation starts one (a cold start).
    #[default]
    Idle,
    /// Processes started, waiting for everyone's first `next`.
    Init,
    /// Initialised and idle between invocations.
    Ready,
    /// An invocation is in flight.
    Invoking,
    /// SHUTDOWN sent; waiting for extensions, then killing what is left.
    ShuttingDown,
}

/// An invocation as the runtime's `next` returns it.
#[derive(Debug, Clone)]
pub(crate) struct NextInvocation {
    pub(crate) request_id: String,
    pub(crate) payload: Bytes,
    pub(crate) deadline_ms: u64,
    pub(crate) function_arn: String,
    pub(crate) trace: String,
    pub(crate) client_context: Option<String>,
    pub(crate) cognito_identity: Option<String>,
}

/// The runtime process and its API calls.
#[derive(Debug, Default)]
pub(crate) struct RuntimeSlot {
    pub(crate) pid: Option<u32>,
    /// How it exited, once it has.
    pub(crate) exit: Option<String>,
    /// Its first `next` (end of runtime init).
    pub(crate) ready_at: Option<Instant>,
    /// What it posted to `init/error`.
    pub(crate) init_error: Option<FunctionError>,
    waiter: Option<oneshot::Sender<NextInvocation>>,
    pending: Option<NextInvocation>,
}

impl RuntimeSlot {
    /// Hands an invocation to the waiting `next`, or keeps it for the next one.
    pub(crate) fn offer(&mut self, invocation: NextInvocation) {
        match self.waiter.take() {
            Some(waiter) => {
                if let Err(invocation) = waiter.send(invocation) {
                    self.pending = Some(invocation);
                }
            }
            None => self.pending = Some(invocation),
        }
    }

    /// A `next` arrived: the pending invocation, or a receiver to wait on.
    pub(crate) fn poll(&mut self) -> Result<NextInvocation, oneshot::Receiver<NextInvocation>> {
        if let Some(invocation) = self.pending.take() {
            return Ok(invocation);
        }
        let (tx, rx) = oneshot::channel();
        self.waiter = Some(tx);
        Err(rx)
    }
}

/// One extension (external, started by us, or internal, registered from
/// inside the runtime process).
#[derive(Debug, Default)]
pub(crate) struct ExtensionSlot {
    /// The `Lambda-Extension-Name` (the executable's file name for external ones).
    pub(crate) name: String,
    pub(crate) pid: Option<u32>,
    /// `Lambda-Extension-Identifier`, once registered.
    pub(crate) id: Option<String>,
    pub(crate) wants_invoke: bool,
    pub(crate) wants_shutdown: bool,
    /// Has called `next` at least once (end of its init).
    pub(crate) ready: bool,
    pub(crate) exit: Option<String>,
    pub(crate) init_error: Option<FunctionError>,
    pub(crate) shutdown_sent: bool,
    /// Called `next` after SHUTDOWN: done with the shutdown.
    pub(crate) done_after_shutdown: bool,
    waiter: Option<oneshot::Sender<Bytes>>,
    queue: VecDeque<Bytes>,
}

/// Events one extension may have queued (an INVOKE and a SHUTDOWN at most).
const MAX_QUEUED_EXTENSION_EVENTS: usize = 4;

impl ExtensionSlot {
    pub(crate) fn named(name: String) -> Self {
        ExtensionSlot {
            name,
            ..ExtensionSlot::default()
        }
    }

    /// No event is waiting to be fetched.
    pub(crate) fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Hands an event body to the waiting `next`, or queues it.
    pub(crate) fn offer(&mut self, body: Bytes) {
        let body = match self.waiter.take() {
            Some(waiter) => match waiter.send(body) {
                Ok(()) => return,
                Err(body) => body,
            },
            None => body,
        };
        if self.queue.len() >= MAX_QUEUED_EXTENSION_EVENTS {
            self.queue.pop_front();
        }
        self.queue.push_back(body);
    }

    pub(crate) fn poll(&mut self) -> Result<Bytes, oneshot::Receiver<Bytes>> {
        if let Some(body) = self.queue.pop_front() {
            return Ok(body);
        }
        let (tx, rx) = oneshot::channel();
        self.waiter = Some(tx);
        Err(rx)
    }

    pub(crate) fn alive(&self) -> bool {
        self.exit.is_none()
    }
}

/// What the runtime answered.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    Response(Bytes),
    Error(FunctionError),
}

/// The invocation in flight.
#[derive(Debug)]
pub(crate) struct Invocation {
    pub(crate) request_id: String,
    pub(crate) trace: Trace,
    pub(crate) started: Instant,
    /// A response or error request has begun arriving.
    pub(crate) reply_began: Option<Instant>,
    pub(crate) reply: Option<Reply>,
    pub(crate) reply_times: Option<ResponseTimes>,
    /// The runtime's `next` after replying, and the status it was reported with.
    pub(crate) runtime_done: Option<(Instant, Status, Option<String>)>,
    /// Ids of the extensions that got INVOKE and have not called `next` since.
    pub(crate) pending_extensions: Vec<String>,
}

/// The execution environment.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Incremented for every new environment, so late news from a previous
    /// environment's processes is recognised and ignored.
    pub(crate) generation: u64,
    pub(crate) phase: Phase,
    pub(crate) init_started: Option<Instant>,
    pub(crate) runtime: RuntimeSlot,
    pub(crate) extensions: Vec<ExtensionSlot>,
    pub(crate) invocation: Option<Invocation>,
    /// The outcome of an init run ahead of the first invocation.
    pub(crate) pending_init: Option<InitOutcome>,
    /// The init duration, until the first report carries it (on-demand only).
    pub(crate) unreported_init: Option<Duration>,
    /// SnapStart: init is done and the environment waits, as a snapshot, to
    /// be restored for its first invocation.
    pub(crate) snapshotted: bool,
    /// The SnapStart restore's duration, until the first report carries it.
    pub(crate) unreported_restore: Option<Duration>,
    /// Peak RSS of the runtime's process tree in this environment, KiB.
    pub(crate) peak_rss_kib: u64,
    /// An extension's `exit/error`: the environment is reset after the invocation.
    pub(crate) exit_error: Option<FunctionError>,
}

impl State {
    /// Forgets the previous environment and starts a new one in `Init`.
    pub(crate) fn begin_environment(&mut self, now: Instant) -> u64 {
        *self = State {
            generation: self.generation + 1,
            ..State::default()
        };
        self.phase = Phase::Init;
        self.init_started = Some(now);
        self.generation
    }

    /// Every process of this environment still running: (label, pid).
    pub(crate) fn live_processes(&self) -> Vec<(String, u32)> {
        let mut out = Vec::new();
        if let (Some(pid), None) = (self.runtime.pid, &self.runtime.exit) {
            out.push(("runtime".to_string(), pid));
        }
        for ext in &self.extensions {
            if let (Some(pid), None) = (ext.pid, &ext.exit) {
                out.push((ext.name.clone(), pid));
            }
        }
        out
    }

    pub(crate) fn extension_by_id(&mut self, id: &str) -> Option<&mut ExtensionSlot> {
        self.extensions
            .iter_mut()
            .find(|e| e.id.as_deref() == Some(id))
    }
}
