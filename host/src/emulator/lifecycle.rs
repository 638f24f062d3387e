//! The execution environment's lifecycle, driven by the caller: init, one
//! invocation at a time, shutdown — with Lambda's rules.
//!
//! * **Init**: the external extensions and the runtime start together; init
//!   ends when the runtime and every extension have called `next`. It fails
//!   on a posted `init/error`, a process exiting, or the init limit
//!   (10 s by default); the environment is then torn down and the next
//!   invocation starts a new one.
//! * **Invoke**: INVOKE goes to the extensions that asked for it and the
//!   event to the runtime's `next`. The invocation ends when the runtime has
//!   answered and called `next` again and every extension has called `next`
//!   (then `platform.report`). Past the timeout, or if the runtime dies, the
//!   runtime is killed and the environment reset: the next invocation is a
//!   cold start.
//! * **Shutdown**: SHUTDOWN (with a deadline) to the extensions that asked
//!   for it, SIGTERM to the runtime; what is still running at the deadline is
//!   killed with SIGKILL.
//!
//! The [`InitType`] changes what the caller sees, not how the processes run:
//!
//! * `on-demand`: the invocation that finds no environment runs init and is
//!   the cold start; its report carries `initDurationMs`.
//! * `provisioned-concurrency`: the caller initialises ahead
//!   ([`Emulator::init`](super::Emulator::init)); the first invocation is not a
//!   cold start and no report carries `initDurationMs`, however long the
//!   environment sat idle. (An invocation that finds no environment still
//!   initialises one inline, and waits for it: that one is a cold start.)
//! * `snap-start`: init (type `snap-start`) stands for the one Lambda runs
//!   when a version is published; it ends with the environment
//!   "snapshotted". The next invocation first restores it —
//!   `platform.restoreStart`, `restoreRuntimeDone`, `restoreReport` — and is
//!   the cold start, with `restoreDurationMs`/`billedRestoreDurationMs` in its
//!   report. In Lambda the runtime and extensions are frozen in the snapshot
//!   and resumed in a new microVM (their sockets and timers with them); here
//!   the same processes simply continue, so the restore takes next to no time
//!   and the init's telemetry reaches subscribers right away rather than
//!   after the restore.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::config::{InitType, MAX_PAYLOAD_BYTES};
use super::error::EmulatorError;
use super::events::{self, ReportFacts, RuntimeDoneFacts};
use super::extensions_api::{invoke_event, shutdown_event};
use super::outcome::{
    FunctionError, InitOutcome, InvokeOutcome, InvokeRequest, ShutdownOutcome, ShutdownReason,
    Status,
};
use super::process::{self, Launch, Role, SIGKILL, SIGTERM};
use super::runtime_api::status_str;
use super::state::{Invocation, NextInvocation, Phase, Reply, Shared};
use super::{environment, ids};

/// How long killed processes get to be reaped before the environment is
/// considered gone anyway.
const REAP_TIMEOUT: Duration = Duration::from_secs(2);
/// How long Lambda lets the runtime stop gracefully after SIGTERM.
const RUNTIME_GRACE: Duration = Duration::from_millis(300);

/// Runs an init phase. On failure the environment is already torn down.
pub(crate) async fn init(shared: &Arc<Shared>) -> InitOutcome {
    let config = &shared.config;
    let started = shared.clock.now();
    let generation = shared.lock().begin_environment(started);
    shared.hub.begin_environment();
    let init_type = config.init_type.as_str();
    shared
        .hub
        .emit(events::init_start(&shared.clock, started, config));
    let wall_date = &shared.clock.timestamp(started)[..10].replace('-', "/");
    let log_stream = ids::log_stream_name(wall_date, &config.function_version);
    let runtime_env = environment::runtime_env(config, shared.api, &log_stream);
    let launched = launch_processes(shared, generation, runtime_env);
    let verdict = match launched {
        Err(error) => Err((Status::Failure, error)),
        Ok(()) => wait_for_init(shared, started + config.init_timeout).await,
    };
    let ended = shared.clock.now();
    let duration = ended.saturating_duration_since(started);
    let (runtime_ready, extensions) = {
        let state = shared.lock();
        (
            state
                .runtime
                .ready_at
                .map(|at| at.saturating_duration_since(started)),
            state
                .extensions
                .iter()
                .filter(|e| e.id.is_some())
                .map(|e| e.name.clone())
                .collect(),
        )
    };
    let outcome = InitOutcome {
        status: Status::Success,
        error: None,
        duration,
        runtime_ready,
        start_unix_ms: shared.clock.unix_ms(started),
        extensions,
    };
    match verdict {
        Ok(()) => {
            let runtime_pid = shared.lock().runtime.pid;
            let peak = runtime_pid.map_or(0, process::peak_rss_kib);
            let mut state = shared.lock();
            state.phase = Phase::Ready;
            // Only an on-demand init is waited for by an invocation, and reported with it.
            state.unreported_init = (config.init_type == InitType::OnDemand).then_some(duration);
            state.snapshotted = config.init_type == InitType::SnapStart;
            state.peak_rss_kib = state.peak_rss_kib.max(peak);
            shared.hub.emit(events::init_report(
                &shared.clock,
                ended,
                init_type,
                "success",
                None,
                duration,
            ));
            outcome
        }
        Err((status, error)) => {
            {
                let state = shared.lock();
                if state.runtime.ready_at.is_none() {
                    shared.hub.emit(events::init_runtime_done(
                        &shared.clock,
                        ended,
                        init_type,
                        status_str(status),
                        Some(&error.error_type),
                    ));
                }
                shared.hub.emit(events::init_report(
                    &shared.clock,
                    ended,
                    init_type,
                    status_str(status),
                    Some(&error.error_type),
                    duration,
                ));
            }
            let reason = if status == Status::Timeout {
                ShutdownReason::Timeout
            } else {
                ShutdownReason::Failure
            };
            shutdown(shared, reason).await;
            InitOutcome {
                status,
                error: Some(error),
                ..outcome
            }
        }
    }
}

/// Starts the extensions, then the runtime (together, without waiting).
fn launch_processes(
    shared: &Arc<Shared>,
    generation: u64,
    runtime_env: environment::EnvVars,
) -> Result<(), FunctionError> {
    let config = &shared.config;
    let extension_env = environment::extension_env(&runtime_env);
    for path in &shared.extension_paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let index = {
            let mut state = shared.lock();
            state
                .extensions
                .push(super::state::ExtensionSlot::named(name.clone()));
            state.extensions.len() - 1
        };
        let launch = Launch {
            program: path.as_os_str().to_os_string(),
            args: Vec::new(),
            env: extension_env.clone(),
            cwd: config.task_root.clone(),
            label: name.clone(),
        };
        match process::launch(shared, launch, Role::Extension(index), generation) {
            Ok(pid) => {
                if let Some(slot) = shared.lock().extensions.get_mut(index) {
                    slot.pid = Some(pid);
                }
            }
            Err(e) => {
                return Err(FunctionError::platform(
                    "Extension.LaunchError",
                    format!("cannot start extension {}: {e}", path.display()),
                ));
            }
        }
    }
    // Lambda passes the runtime's command line to the exec wrapper.
    let mut command = config.runtime_cmd.clone();
    if let Some(wrapper) = &config.exec_wrapper {
        command.insert(0, wrapper.as_os_str().to_os_string());
    }
    let mut parts = command.into_iter();
    let program = parts.next().unwrap_or_default();
    let launch = Launch {
        program: program.clone(),
        args: parts.collect(),
        env: runtime_env,
        cwd: config.task_root.clone(),
        label: "runtime".to_string(),
    };
    match process::launch(shared, launch, Role::Runtime, generation) {
        Ok(pid) => {
            shared.lock().runtime.pid = Some(pid);
            Ok(())
        }
        Err(e) => Err(FunctionError::platform(
            "Runtime.InvalidEntrypoint",
            format!(
                "cannot start the runtime {}: {e}",
                program.to_string_lossy()
            ),
        )),
    }
}

async fn wait_for_init(
    shared: &Arc<Shared>,
    deadline: Instant,
) -> Result<(), (Status, FunctionError)> {
    let verdict = shared
        .wait_for(deadline, |state| {
            if let Some(error) = &state.runtime.init_error {
                return Some(Err((Status::Error, error.clone())));
            }
            if let Some(error) = state.extensions.iter().find_map(|e| e.init_error.clone()) {
                return Some(Err((Status::Error, error)));
            }
            if let Some(exit) = &state.runtime.exit {
                let message = format!("Runtime exited during init: {exit}");
                return Some(Err((
                    Status::Failure,
                    FunctionError::platform("Runtime.ExitError", message),
                )));
            }
            if let Some(ext) = state.extensions.iter().find(|e| e.exit.is_some()) {
                let message = format!(
                    "Extension {} exited during init: {}",
                    ext.name,
                    ext.exit.as_deref().unwrap_or("")
                );
                return Some(Err((
                    Status::Failure,
                    FunctionError::platform("Extension.Crash", message),
                )));
            }
            let everyone_ready =
                state.runtime.ready_at.is_some() && state.extensions.iter().all(|e| e.ready);
            everyone_ready.then_some(Ok(()))
        })
        .await;
    verdict.unwrap_or_else(|| {
        let limit = shared.config.init_timeout.as_secs_f64();
        let waiting = {
            let state = shared.lock();
            let mut names: Vec<String> = state
                .extensions
                .iter()
                .filter(|e| !e.ready)
                .map(|e| e.name.clone())
                .collect();
            if state.runtime.ready_at.is_none() {
                names.insert(0, "runtime".to_string());
            }
            names.join(", ")
        };
        let message = format!(
            "Init phase did not complete within {limit:.2} seconds (waiting for: {waiting})"
        );
        Err((
            Status::Timeout,
            FunctionError::platform("Sandbox.Timedout", message),
        ))
    })
}

/// Why an invocation stopped waiting.
enum Ending {
    /// The runtime called `next` after answering and every extension is done.
    Complete,
    /// The runtime process exited.
    RuntimeExited(String),
    /// An extension that got INVOKE exited.
    ExtensionExited(String, String),
    /// The deadline passed.
    TimedOut,
}

/// Runs one invocation, starting an environment first if there is none.
pub(crate) async fn invoke(
    shared: &Arc<Shared>,
    request: InvokeRequest,
) -> Result<InvokeOutcome, EmulatorError> {
    if request.payload.len() > MAX_PAYLOAD_BYTES {
        return Err(EmulatorError::PayloadTooLarge {
            size: request.payload.len(),
            limit: MAX_PAYLOAD_BYTES,
        });
    }
    let (idle, pending_init) = {
        let mut state = shared.lock();
        (state.phase == Phase::Idle, state.pending_init.take())
    };
    let init_outcome = if idle {
        Some(init(shared).await)
    } else {
        pending_init
    };
    if let Some(failed) = init_outcome
        .as_ref()
        .filter(|i| i.status != Status::Success)
    {
        return Ok(failed_init_outcome(failed.clone()));
    }
    let restored = restore(shared);
    let cold_start = match shared.config.init_type {
        InitType::OnDemand => init_outcome.is_some(),
        InitType::ProvisionedConcurrency => idle,
        InitType::SnapStart => restored,
    };
    let config = &shared.config;
    let started = shared.clock.now();
    let deadline = started + config.timeout;
    let request_id = ids::uuid();
    let trace = ids::trace(shared.clock.unix_ms_u64(started) / 1000);
    let deadline_ms = shared.clock.unix_ms_u64(deadline);
    let function_arn = config.function_arn();
    {
        let mut state = shared.lock();
        state.phase = Phase::Invoking;
        shared.hub.emit(events::start(
            &shared.clock,
            started,
            &request_id,
            &config.function_version,
            &trace,
        ));
        let body = invoke_event(deadline_ms, &request_id, &function_arn, &trace.header);
        let mut pending_extensions = Vec::new();
        for ext in state
            .extensions
            .iter_mut()
            .filter(|e| e.wants_invoke && e.alive())
        {
            if let Some(id) = &ext.id {
                pending_extensions.push(id.clone());
                ext.offer(body.clone());
            }
        }
        state.invocation = Some(Invocation {
            request_id: request_id.clone(),
            trace: trace.clone(),
            started,
            reply_began: None,
            reply: None,
            reply_times: None,
            runtime_done: None,
            pending_extensions,
        });
        state.runtime.offer(NextInvocation {
            request_id: request_id.clone(),
            payload: request.payload,
            deadline_ms,
            function_arn,
            trace: trace.header.clone(),
            client_context: request.client_context,
            cognito_identity: request.cognito_identity,
        });
    }
    shared.notify();
    let ending = shared
        .wait_for(deadline, |state| {
            let invocation = state.invocation.as_ref()?;
            if invocation.runtime_done.is_some() && invocation.pending_extensions.is_empty() {
                return Some(Ending::Complete);
            }
            if let Some(exit) = &state.runtime.exit {
                return Some(Ending::RuntimeExited(exit.clone()));
            }
            state
                .extensions
                .iter()
                .find(|e| {
                    e.exit.is_some()
                        && e.id
                            .as_ref()
                            .is_some_and(|id| invocation.pending_extensions.contains(id))
                })
                .map(|e| {
                    Ending::ExtensionExited(e.name.clone(), e.exit.clone().unwrap_or_default())
                })
        })
        .await
        .unwrap_or(Ending::TimedOut);
    Ok(finish_invocation(shared, ending, init_outcome, cold_start).await)
}

/// SnapStart: resumes a snapshotted environment before its first
/// invocation, emitting the restore's events. False if there was nothing
/// to restore.
fn restore(shared: &Shared) -> bool {
    let mut state = shared.lock();
    if !std::mem::take(&mut state.snapshotted) {
        return false;
    }
    let config = &shared.config;
    let started = shared.clock.now();
    shared
        .hub
        .emit(events::restore_start(&shared.clock, started, config));
    // The processes were never stopped, so there is nothing to resume: the
    // restore ends as it begins. (One that died is found by the invocation.)
    let ended = shared.clock.now();
    shared
        .hub
        .emit(events::restore_runtime_done(&shared.clock, ended));
    let duration = ended.saturating_duration_since(started);
    shared
        .hub
        .emit(events::restore_report(&shared.clock, ended, duration));
    state.unreported_restore = Some(duration);
    true
}

async fn finish_invocation(
    shared: &Arc<Shared>,
    ending: Ending,
    init: Option<InitOutcome>,
    cold_start: bool,
) -> InvokeOutcome {
    let runtime_pid = shared.lock().runtime.pid;
    if matches!(ending, Ending::TimedOut)
        && let Some(pid) = runtime_pid
    {
        // Lambda stops the function at its timeout, before anything else.
        process::signal_group(pid, SIGKILL);
    }
    let peak = runtime_pid.map_or(0, process::peak_rss_kib);
    let (outcome, reason) = settle(shared, &ending, init, cold_start, peak);
    if outcome.environment_reset {
        shutdown(shared, reason).await;
    }
    outcome
}

/// Emits the invocation's last events and builds its outcome; the reason
/// to reset the environment with, if `environment_reset`.
fn settle(
    shared: &Shared,
    ending: &Ending,
    init: Option<InitOutcome>,
    cold_start: bool,
    peak: u64,
) -> (InvokeOutcome, ShutdownReason) {
    let config = &shared.config;
    let now = shared.clock.now();
    let mut state = shared.lock();
    state.peak_rss_kib = state.peak_rss_kib.max(peak);
    let max_memory_used_mb = state.peak_rss_kib.div_ceil(1024);
    let Some(mut invocation) = state.invocation.take() else {
        // Unreachable: an invocation is in flight until this point.
        let lost = failed_init_outcome(InitOutcome {
            status: Status::Failure,
            error: Some(FunctionError::platform(
                "Sandbox.Failure",
                "the invocation was lost",
            )),
            duration: Duration::ZERO,
            runtime_ready: None,
            start_unix_ms: 0.0,
            extensions: Vec::new(),
        });
        return (lost, ShutdownReason::Failure);
    };
    let timeout_message = || {
        format!(
            "{} {} Task timed out after {:.2} seconds",
            shared.clock.timestamp(now),
            invocation.request_id,
            config.timeout.as_secs_f64()
        )
    };
    // The status of the whole invocation, and the error that goes with it.
    let (status, platform_error) = match ending {
        Ending::Complete => match &invocation.runtime_done {
            Some((_, status, _)) => (*status, None),
            None => (Status::Failure, None),
        },
        Ending::RuntimeExited(exit) => (
            Status::Failure,
            Some(FunctionError::platform(
                "Runtime.ExitError",
                format!(
                    "RequestId: {} Error: Runtime exited with error: {exit}",
                    invocation.request_id
                ),
            )),
        ),
        Ending::ExtensionExited(name, exit) => (
            Status::Failure,
            Some(FunctionError::platform(
                "Extension.Crash",
                format!("Extension {name} exited: {exit}"),
            )),
        ),
        Ending::TimedOut => (
            Status::Timeout,
            Some(FunctionError::platform(
                "Sandbox.Timedout",
                timeout_message(),
            )),
        ),
    };
    if invocation.runtime_done.is_none() {
        let error_type = platform_error.as_ref().map(|e| e.error_type.clone());
        shared.hub.emit(events::runtime_done(
            &shared.clock,
            now,
            RuntimeDoneFacts {
                request_id: &invocation.request_id,
                trace: &invocation.trace,
                started: invocation.started,
                status: status_str(status),
                error_type: error_type.as_deref(),
                response: None,
                produced_bytes: None,
            },
        ));
        invocation.runtime_done = Some((now, status, error_type));
    }
    let (response, reply_error) = match invocation.reply.take() {
        Some(Reply::Response(body)) => (Some(body), None),
        Some(Reply::Error(error)) => (None, Some(error)),
        None => (None, None),
    };
    let error = platform_error.or(reply_error).or_else(|| {
        // Failed without a word from the runtime (it called `next` without answering).
        let error_type = invocation
            .runtime_done
            .as_ref()
            .and_then(|(_, _, t)| t.clone())?;
        Some(FunctionError::platform(
            &error_type,
            "the runtime asked for the next invocation without answering this one",
        ))
    });
    let duration = now.saturating_duration_since(invocation.started);
    let init_duration = state.unreported_init.take();
    let restore_duration = state.unreported_restore.take();
    shared.hub.emit(events::report(
        &shared.clock,
        now,
        ReportFacts {
            request_id: &invocation.request_id,
            trace: &invocation.trace,
            status: status_str(status),
            error_type: error
                .as_ref()
                .filter(|_| status != Status::Success)
                .map(|e| e.error_type.as_str()),
            duration,
            memory_mb: config.memory_mb,
            max_memory_used_mb,
            init_duration,
            restore_duration,
        },
    ));
    let reset = !matches!(ending, Ending::Complete) || state.exit_error.is_some();
    if !reset {
        state.phase = Phase::Ready;
    }
    let reason = match ending {
        Ending::TimedOut => ShutdownReason::Timeout,
        _ => ShutdownReason::Failure,
    };
    let produced_bytes = response.as_ref().map(|r| r.len() as u64);
    let outcome = InvokeOutcome {
        request_id: invocation.request_id,
        status,
        response,
        error,
        cold_start,
        init,
        restore_duration,
        start_unix_ms: shared.clock.unix_ms(invocation.started),
        response_latency: invocation
            .reply_times
            .map(|r| r.ended.saturating_duration_since(invocation.started)),
        runtime_duration: invocation
            .runtime_done
            .map(|(at, _, _)| at.saturating_duration_since(invocation.started)),
        duration,
        billed_duration_ms: events::billed_invocation_ms(duration, restore_duration),
        max_memory_used_mb,
        produced_bytes,
        environment_reset: reset,
    };
    (outcome, reason)
}

/// The outcome of an invocation that never ran because init failed.
fn failed_init_outcome(init: InitOutcome) -> InvokeOutcome {
    InvokeOutcome {
        request_id: ids::uuid(),
        status: init.status,
        response: None,
        error: init.error.clone(),
        cold_start: true,
        restore_duration: None,
        start_unix_ms: init.start_unix_ms,
        response_latency: None,
        runtime_duration: None,
        duration: Duration::ZERO,
        billed_duration_ms: 0,
        max_memory_used_mb: 0,
        produced_bytes: None,
        environment_reset: true,
        init: Some(init),
    }
}

/// Shuts the environment down; `None` if there is none.
pub(crate) async fn shutdown(
    shared: &Arc<Shared>,
    reason: ShutdownReason,
) -> Option<ShutdownOutcome> {
    let started = shared.clock.now();
    let deadline = started + shared.config.shutdown_timeout;
    let (generation, graceful) = {
        let mut state = shared.lock();
        if state.phase == Phase::Idle {
            return None;
        }
        state.phase = Phase::ShuttingDown;
        let body = shutdown_event(reason.as_wire(), shared.clock.unix_ms_u64(deadline));
        let mut external = false;
        for ext in state
            .extensions
            .iter_mut()
            .filter(|e| e.alive() && e.id.is_some())
        {
            external |= ext.pid.is_some();
            if ext.wants_shutdown {
                ext.shutdown_sent = true;
                ext.offer(body.clone());
            }
        }
        if let (Some(pid), None) = (state.runtime.pid, &state.runtime.exit) {
            // With external extensions Lambda lets the runtime shut down
            // gracefully (SIGTERM); without, it just stops it.
            process::signal_group(pid, if external { SIGTERM } else { SIGKILL });
        }
        (state.generation, external)
    };
    shared.notify();
    // Extensions may hold telemetry for the last invocation: send it now.
    shared.hub.flush_all();
    shared
        .wait_for(deadline, |state| {
            state
                .extensions
                .iter()
                .all(|e| !e.shutdown_sent || !e.alive() || e.done_after_shutdown)
                .then_some(())
        })
        .await;
    if graceful {
        let grace = (started + RUNTIME_GRACE).min(deadline);
        shared
            .wait_for(grace, |state| state.runtime.exit.is_some().then_some(()))
            .await;
    }
    let (extensions_done, killed): (Vec<String>, Vec<String>) = {
        let state = shared.lock();
        let done = state
            .extensions
            .iter()
            .filter(|e| e.shutdown_sent && (!e.alive() || e.done_after_shutdown))
            .map(|e| e.name.clone())
            .collect();
        let live = state.live_processes();
        for (_, pid) in &live {
            process::signal_group(*pid, SIGKILL);
        }
        (done, live.into_iter().map(|(name, _)| name).collect())
    };
    // Wait (bounded) until every process is reaped, so none outlives its environment.
    shared
        .wait_for(shared.clock.now() + REAP_TIMEOUT, |state| {
            state.live_processes().is_empty().then_some(())
        })
        .await;
    let killed: Vec<String> = {
        let mut state = shared.lock();
        state.phase = Phase::Idle;
        state.invocation = None;
        // Processes that ended on their own after SHUTDOWN were not "killed".
        killed
            .into_iter()
            .filter(|name| !extensions_done.contains(name))
            .collect()
    };
    shared.hub.end_environment(generation);
    shared.notify();
    Some(ShutdownOutcome {
        reason,
        duration: shared.clock.now().saturating_duration_since(started),
        extensions_done,
        killed,
    })
}
