//! `pyrometer-extension`: the AWS Lambda external extension. It measures the
//! Python function it runs beside — cold starts, imports, latency, memory —
//! runs the configured plugins and pushes metrics, without ever failing or
//! noticeably slowing the function.
//!
//! This binary is the lifecycle loop only ([`lifecycle`]); everything it
//! measures and exports with lives in the `pyrometer` library. Configuration
//! is read once from `PYROMETER_*` variables ([`pyrometer::config`]).

mod extensions_api;
mod faults;
mod flush;
mod inputs;
mod lifecycle;
mod probe;
mod session;
mod telemetry;

use std::process::ExitCode;

use pyrometer::config::Config;

fn main() -> ExitCode {
    let (config, warnings) = Config::from_env();
    let filter = tracing_subscriber::EnvFilter::try_new(&config.log)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(pyrometer::config::DEFAULT_LOG));
    // Lambda sends an extension's stderr to the function's log stream.
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(false)
        .init();
    lifecycle::run(config, warnings)
}
