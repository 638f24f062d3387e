//! pyrometer's own metrics about its plugins: names, help texts, and the
//! calls that record them through the `metrics` facade.

use std::time::Duration;

use metrics::{
    Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram,
};

use super::error::FailureKind;

/// Calls made to a plugin's `analyze`, including refused ones.
pub const CALLS_TOTAL: &str = "pyrometer_plugin_calls_total";
/// Failed calls by kind (deadline, memory, trap, invalid_output, error, disabled).
pub const FAILURES_TOTAL: &str = "pyrometer_plugin_failures_total";
/// Latency of `analyze` calls, including validation.
pub const CALL_DURATION_SECONDS: &str = "pyrometer_plugin_call_duration_seconds";
/// Invocations handed to the plugin.
pub const ROWS_IN_TOTAL: &str = "pyrometer_plugin_rows_in_total";
/// Metrics and findings the plugin returned and pyrometer accepted.
pub const ROWS_OUT_TOTAL: &str = "pyrometer_plugin_rows_out_total";
/// Fresh instances created (the first, and one after every trap).
pub const INSTANTIATIONS_TOTAL: &str = "pyrometer_plugin_instantiations_total";
/// 1 while the plugin is disabled (breaker open or config rejected).
pub const DISABLED: &str = "pyrometer_plugin_disabled";
/// Guest stdout/stderr bytes beyond the capture bound, discarded.
pub const STDIO_DROPPED_BYTES_TOTAL: &str = "pyrometer_plugin_stdio_dropped_bytes_total";
/// Host `log` lines beyond the per-call bound, discarded.
pub const LOG_LINES_DROPPED_TOTAL: &str = "pyrometer_plugin_log_lines_dropped_total";

/// Registers HELP texts and units with the installed recorder.
pub fn describe() {
    describe_counter!(
        CALLS_TOTAL,
        "Calls made to a plugin's analyze, including refused ones."
    );
    describe_counter!(FAILURES_TOTAL, "Failed plugin calls, by kind of failure.");
    describe_histogram!(
        CALL_DURATION_SECONDS,
        Unit::Seconds,
        "Latency of plugin analyze calls, including output validation."
    );
    describe_counter!(ROWS_IN_TOTAL, "Invocations handed to a plugin.");
    describe_counter!(
        ROWS_OUT_TOTAL,
        "Metrics and findings a plugin returned that were accepted."
    );
    describe_counter!(
        INSTANTIATIONS_TOTAL,
        "Fresh plugin instances created (first start and after each trap)."
    );
    describe_gauge!(
        DISABLED,
        "1 while a plugin is disabled by its circuit breaker or a rejected config."
    );
    describe_counter!(
        STDIO_DROPPED_BYTES_TOTAL,
        Unit::Bytes,
        "Plugin stdout/stderr bytes beyond the capture bound, discarded."
    );
    describe_counter!(
        LOG_LINES_DROPPED_TOTAL,
        "Plugin log lines beyond the per-call bound, discarded."
    );
}

/// Records one finished call.
pub fn record_call(
    plugin: &str,
    elapsed: Duration,
    rows_in: usize,
    result: Result<usize, FailureKind>,
) {
    let p = plugin.to_owned();
    counter!(CALLS_TOTAL, "plugin" => p.clone()).increment(1);
    histogram!(CALL_DURATION_SECONDS, "plugin" => p.clone()).record(elapsed.as_secs_f64());
    counter!(ROWS_IN_TOTAL, "plugin" => p.clone()).increment(rows_in as u64);
    match result {
        Ok(rows_out) => counter!(ROWS_OUT_TOTAL, "plugin" => p).increment(rows_out as u64),
        Err(kind) => record_failure(plugin, kind),
    }
}

/// Records a failure of `kind`.
pub fn record_failure(plugin: &str, kind: FailureKind) {
    counter!(FAILURES_TOTAL, "plugin" => plugin.to_owned(), "kind" => kind.as_str()).increment(1);
}

/// Records a new instance.
pub fn record_instantiation(plugin: &str) {
    counter!(INSTANTIATIONS_TOTAL, "plugin" => plugin.to_owned()).increment(1);
}

/// Records whether the plugin is disabled.
pub fn record_disabled(plugin: &str, disabled: bool) {
    gauge!(DISABLED, "plugin" => plugin.to_owned()).set(if disabled { 1.0 } else { 0.0 });
}

/// Records dropped guest output.
pub fn record_dropped(plugin: &str, stdout_bytes: u64, stderr_bytes: u64, log_lines: u64) {
    let p = plugin.to_owned();
    if stdout_bytes > 0 {
        counter!(STDIO_DROPPED_BYTES_TOTAL, "plugin" => p.clone(), "stream" => "stdout")
            .increment(stdout_bytes);
    }
    if stderr_bytes > 0 {
        counter!(STDIO_DROPPED_BYTES_TOTAL, "plugin" => p.clone(), "stream" => "stderr")
            .increment(stderr_bytes);
    }
    if log_lines > 0 {
        counter!(LOG_LINES_DROPPED_TOTAL, "plugin" => p).increment(log_lines);
    }
}
