//! The one wasmtime [`Engine`] every plugin runs on, and the epoch ticker that
//! enforces per-call deadlines.
//!
//! `pyrometer plugin compile` and the runtime build their engine here, from the
//! same settings, so a `.cwasm` written by one always loads in the other —
//! also in a build without the `compiler` feature (the lean Lambda
//! extension), whose engine only loads `.cwasm`: wasmtime checks a `.cwasm`
//! against the target, tunables and wasm features, none of which depend on
//! the compiler being built in.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use wasmtime::{Config, Engine};

/// How often the epoch advances while a plugin call is running. Deadlines are
/// enforced to within one tick.
pub const EPOCH_TICK_MS: u64 = 2;

/// The target triple compiled code is generated for. Naming the host's own
/// architecture explicitly (instead of letting Cranelift probe the CPU) limits
/// code to that architecture's baseline features, so a `.cwasm` built on a
/// developer's machine runs on any Lambda host of the same architecture.
pub fn portable_target() -> String {
    format!("{}-unknown-linux-gnu", std::env::consts::ARCH)
}

/// Builds the plugin engine. Every setting here is part of the `.cwasm`
/// compatibility contract: change one and previously compiled artifacts are
/// refused with a clear error (wasmtime checks them on deserialize).
pub fn plugin_engine() -> wasmtime::Result<Engine> {
    let mut config = Config::new();
    // Deadlines: the ticker below advances the epoch, and each call sets how
    // many ticks it may run for. Cheaper than fuel, and enough for a time limit.
    config.epoch_interruption(true);
    // Plugins are plain synchronous components; turning off the component
    // model's concurrency support keeps per-store bookkeeping out of every call.
    config.concurrency_support(false);
    config.wasm_component_model(true);
    // Portable code: see portable_target().
    config.target(&portable_target())?;
    // Code generation only; a compiler-less build has nothing to configure.
    #[cfg(feature = "compiler")]
    config.cranelift_opt_level(wasmtime::OptLevel::Speed);
    // Instantiation maps linear-memory images copy-on-write, which is what
    // makes re-instantiating a plugin after a trap cheap.
    config.memory_init_cow(true);
    Engine::new(&config)
}

/// Advances an engine's epoch every [`EPOCH_TICK_MS`], but only while at least
/// one plugin call is in flight, so an idle process (or a frozen Lambda
/// environment) has no thread waking up for nothing.
pub struct EpochTicker {
    shared: Arc<TickerShared>,
    thread: Option<JoinHandle<()>>,
}

struct TickerShared {
    active_calls: Mutex<usize>,
    wake: Condvar,
    stop: AtomicBool,
}

/// Keeps the ticker running for as long as it lives: one per plugin call.
pub struct ActiveCall<'a> {
    shared: &'a TickerShared,
}

impl EpochTicker {
    /// Starts the ticker thread for `engine`.
    pub fn start(engine: &Engine) -> std::io::Result<Self> {
        let shared = Arc::new(TickerShared {
            active_calls: Mutex::new(0),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let thread_shared = Arc::clone(&shared);
        let engine = engine.clone();
        let thread = std::thread::Builder::new()
            .name("pyrometer-epoch".into())
            .spawn(move || tick_while_active(&engine, &thread_shared))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Marks a call as in flight until the returned guard is dropped.
    pub fn call(&self) -> ActiveCall<'_> {
        let mut active = lock(&self.shared.active_calls);
        *active += 1;
        self.shared.wake.notify_one();
        ActiveCall {
            shared: &self.shared,
        }
    }
}

fn tick_while_active(engine: &Engine, shared: &TickerShared) {
    let tick = Duration::from_millis(EPOCH_TICK_MS);
    loop {
        {
            let active = lock(&shared.active_calls);
            let _idle = shared
                .wake
                .wait_while(active, |n| *n == 0 && !shared.stop.load(Ordering::Acquire))
                .unwrap_or_else(PoisonError::into_inner);
        }
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        std::thread::sleep(tick);
        engine.increment_epoch();
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding this lock cannot leave the counter inconsistent.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Drop for ActiveCall<'_> {
    fn drop(&mut self) {
        *lock(&self.shared.active_calls) -= 1;
    }
}

impl Drop for EpochTicker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        {
            let _guard = lock(&self.shared.active_calls);
            self.shared.wake.notify_all();
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The number of epoch ticks a call with `deadline` may run for.
pub fn deadline_ticks(deadline: Duration) -> u64 {
    let tick_ms = u128::from(EPOCH_TICK_MS);
    let ticks = deadline.as_millis().div_ceil(tick_ms).max(1);
    // +1: the call may start just before a tick.
    u64::try_from(ticks).unwrap_or(u64::MAX - 1) + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadline_rounds_up_to_whole_ticks_plus_one() {
        assert_eq!(deadline_ticks(Duration::from_millis(100)), 51);
        assert_eq!(deadline_ticks(Duration::from_millis(1)), 2);
        assert_eq!(deadline_ticks(Duration::ZERO), 2);
    }

    #[test]
    fn engine_builds_with_portable_target() {
        assert!(plugin_engine().is_ok());
    }
}
