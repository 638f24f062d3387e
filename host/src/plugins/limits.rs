//! The bounds every plugin runs under, with their defaults in one place.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// Default per-call deadline.
pub const DEFAULT_DEADLINE_MS: u64 = 100;
/// Default cap on each linear memory of a plugin instance.
pub const DEFAULT_MEMORY_CAP_BYTES: u64 = 64 * 1024 * 1024;
/// Default cap on metrics returned by one call.
pub const DEFAULT_MAX_METRICS: usize = 10_000;
/// Default cap on findings returned by one call.
pub const DEFAULT_MAX_FINDINGS: usize = 1_000;
/// Default cap on the total bytes of strings in one call's output.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1024 * 1024;
/// Default number of consecutive failures that disables a plugin.
pub const DEFAULT_BREAKER_THRESHOLD: u32 = 5;
/// Default capacity of each captured guest stream (stdout, stderr) per call.
pub const DEFAULT_CAPTURE_BYTES: usize = 64 * 1024;
/// Default cap on host `log` lines accepted from one call.
pub const DEFAULT_MAX_LOG_LINES: usize = 100;
/// Longest `log` message kept; longer ones are truncated.
pub const MAX_LOG_LINE_BYTES: usize = 1024;

/// Limits for one plugin. Every field has a default, so a config file only
/// names what it changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PluginLimits {
    /// Wall-clock budget for one `configure` or `analyze` call, milliseconds.
    pub deadline_ms: u64,
    /// Cap on the instance's linear memory, bytes; growing past it traps.
    pub memory_cap_bytes: u64,
    /// Most metrics one call may return; more is an invalid output.
    pub max_metrics: usize,
    /// Most findings one call may return; more is an invalid output.
    pub max_findings: usize,
    /// Most bytes of strings (names, labels, help, messages) one output may hold.
    pub max_output_bytes: usize,
    /// Consecutive failures after which the plugin is disabled.
    pub breaker_threshold: u32,
    /// Bytes of guest stdout and of stderr kept per call; the rest is dropped and counted.
    pub capture_bytes: usize,
    /// Host `log` lines kept per call; the rest are dropped and counted.
    pub max_log_lines: usize,
}

impl Default for PluginLimits {
    fn default() -> Self {
        Self {
            deadline_ms: DEFAULT_DEADLINE_MS,
            memory_cap_bytes: DEFAULT_MEMORY_CAP_BYTES,
            max_metrics: DEFAULT_MAX_METRICS,
            max_findings: DEFAULT_MAX_FINDINGS,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            breaker_threshold: DEFAULT_BREAKER_THRESHOLD,
            capture_bytes: DEFAULT_CAPTURE_BYTES,
            max_log_lines: DEFAULT_MAX_LOG_LINES,
        }
    }
}

impl PluginLimits {
    /// The per-call deadline as a [`Duration`].
    pub fn deadline(&self) -> Duration {
        Duration::from_millis(self.deadline_ms)
    }
}
