//! pyrometer's own metrics about its plugins, recorded through the `metrics`
//! facade under the names and labels of the export catalogue
//! ([`crate::export::catalogue`] describes them once, with their HELP).
//!
//! Callers that export run plugins under the registry's recorder
//! (`metrics::with_local_recorder`), so these land beside everything else.

use std::time::Duration;

use metrics::{counter, gauge, histogram};

use super::error::FailureKind;
use crate::export::catalogue::{
    PYROMETER_PLUGIN_CALL_DURATION_SECONDS as CALL_DURATION, PYROMETER_PLUGIN_CALLS_TOTAL as CALLS,
    PYROMETER_PLUGIN_DISABLED as DISABLED, PYROMETER_PLUGIN_FAILURES_TOTAL as FAILURES,
    PYROMETER_PLUGIN_INSTANTIATIONS_TOTAL as INSTANTIATIONS,
    PYROMETER_PLUGIN_LOG_LINES_DROPPED_TOTAL as LOG_LINES_DROPPED,
    PYROMETER_PLUGIN_ROWS_TOTAL as ROWS,
    PYROMETER_PLUGIN_STDIO_DROPPED_BYTES_TOTAL as STDIO_DROPPED,
};

/// Records one finished call: latency, rows in, and rows out or the failure.
pub fn record_call(
    plugin: &str,
    elapsed: Duration,
    rows_in: usize,
    result: Result<usize, FailureKind>,
) {
    let p = plugin.to_owned();
    counter!(CALLS.name, "plugin" => p.clone()).increment(1);
    histogram!(CALL_DURATION.name, "plugin" => p.clone()).record(elapsed.as_secs_f64());
    counter!(ROWS.name, "plugin" => p.clone(), "direction" => "in").increment(rows_in as u64);
    match result {
        Ok(rows_out) => {
            counter!(ROWS.name, "plugin" => p, "direction" => "out").increment(rows_out as u64);
        }
        Err(kind) => {
            counter!(FAILURES.name, "plugin" => p, "kind" => kind.as_str()).increment(1);
        }
    }
}

/// Records a new instance.
pub fn record_instantiation(plugin: &str) {
    counter!(INSTANTIATIONS.name, "plugin" => plugin.to_owned()).increment(1);
}

/// Records whether the plugin is disabled.
pub fn record_disabled(plugin: &str, disabled: bool) {
    gauge!(DISABLED.name, "plugin" => plugin.to_owned()).set(if disabled { 1.0 } else { 0.0 });
}

/// Records guest output beyond its bounds.
pub fn record_dropped(plugin: &str, stdout_bytes: u64, stderr_bytes: u64, log_lines: u64) {
    for (stream, bytes) in [("stdout", stdout_bytes), ("stderr", stderr_bytes)] {
        if bytes > 0 {
            counter!(STDIO_DROPPED.name, "plugin" => plugin.to_owned(), "stream" => stream)
                .increment(bytes);
        }
    }
    if log_lines > 0 {
        counter!(LOG_LINES_DROPPED.name, "plugin" => plugin.to_owned()).increment(log_lines);
    }
}
