//! What a plugin's store holds: its WASI context (no files, env, network or
//! inherited stdio), its memory limiter, and the host side of `log`.
//!
//! A fresh [`PluginState`] is built for every instantiation; it is dropped
//! with the store after a trap.

use tracing::{debug, error, info, warn};
use wasmtime::ResourceLimiter;
use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{self, Analyzer, pyrometer::plugin::host::Level};
use super::capture::CapturedOutput;
use super::limits::{MAX_LOG_LINE_BYTES, PluginLimits};

/// Most table elements an instance may grow to; a bound like memory.
const MAX_TABLE_ELEMENTS: usize = 100_000;

/// Store data of one plugin instance.
pub struct PluginState {
    plugin: String,
    wasi: WasiCtx,
    table: ResourceTable,
    memory: MemoryCap,
    log_lines_left: usize,
    log_lines_dropped: u64,
}

/// Tracks linear-memory growth against the plugin's cap. Growth beyond it
/// fails the grow, which traps (the host then knows the trap was the cap).
struct MemoryCap {
    cap_bytes: usize,
    hit: bool,
}

impl PluginState {
    /// A state for `plugin` under `limits`, writing guest stdout/stderr into the
    /// given captures.
    pub fn new(
        plugin: &str,
        limits: &PluginLimits,
        stdout: &CapturedOutput,
        stderr: &CapturedOutput,
    ) -> Self {
        // Nothing is inherited: no preopened directories, no environment
        // variables, no arguments, no stdin, and (see `linker`) no sockets.
        let wasi = WasiCtxBuilder::new()
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .allow_ip_name_lookup(false)
            .allow_tcp(false)
            .allow_udp(false)
            .build();
        Self {
            plugin: plugin.to_owned(),
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap {
                cap_bytes: usize::try_from(limits.memory_cap_bytes).unwrap_or(usize::MAX),
                hit: false,
            },
            log_lines_left: limits.max_log_lines,
            log_lines_dropped: 0,
        }
    }

    /// Whether the last trap came from the memory cap.
    pub fn memory_cap_hit(&self) -> bool {
        self.memory.hit
    }

    /// Resets the per-call budgets (log lines, dropped-line count, memory-cap
    /// flag) before a call.
    pub fn begin_call(&mut self, limits: &PluginLimits) {
        self.log_lines_left = limits.max_log_lines;
        self.log_lines_dropped = 0;
        self.memory.hit = false;
    }

    /// Log lines dropped since the last [`begin_call`](Self::begin_call).
    pub fn log_lines_dropped(&self) -> u64 {
        self.log_lines_dropped
    }
}

impl WasiView for PluginState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl ResourceLimiter for PluginState {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory.cap_bytes {
            self.memory.hit = true;
            wasmtime::bail!(
                "plugin memory cap of {} bytes exceeded (wanted {desired})",
                self.memory.cap_bytes
            );
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > MAX_TABLE_ELEMENTS {
            wasmtime::bail!("plugin table cap of {MAX_TABLE_ELEMENTS} elements exceeded");
        }
        Ok(true)
    }
}

impl bindings::pyrometer::plugin::types::Host for PluginState {}

impl bindings::pyrometer::plugin::host::Host for PluginState {
    fn log(&mut self, level: Level, message: String) {
        if self.log_lines_left == 0 {
            self.log_lines_dropped += 1;
            return;
        }
        self.log_lines_left -= 1;
        let message = truncate_utf8(&message, MAX_LOG_LINE_BYTES);
        let plugin = self.plugin.as_str();
        match level {
            Level::Debug => debug!(plugin, "{message}"),
            Level::Info => info!(plugin, "{message}"),
            Level::Warn => warn!(plugin, "{message}"),
            Level::Error => error!(plugin, "{message}"),
        }
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate_utf8(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The linker every plugin is instantiated with: the `pyrometer:plugin/host`
/// import and WASI 0.2. Sockets are linked (wasmtime-wasi links them as one
/// set) but a component that imports them is refused at load time by
/// `artifact::check_capabilities`, and the context above denies them anyway.
pub fn linker(engine: &wasmtime::Engine) -> wasmtime::Result<Linker<PluginState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
    Analyzer::add_to_linker::<PluginState, HasSelf<PluginState>>(&mut linker, |s| s)?;
    Ok(linker)
}

#[cfg(test)]
mod tests {
    use super::truncate_utf8;

    #[test]
    fn truncates_on_char_boundary() {
        assert_eq!(truncate_utf8("héllo", 2), "h");
        assert_eq!(truncate_utf8("héllo", 3), "hé");
        assert_eq!(truncate_utf8("hi", 10), "hi");
    }
}
