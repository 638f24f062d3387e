//! `pyrometer-extension`: the AWS Lambda external extension. It measures the
//! Python function it runs beside — cold starts, imports, latency, memory —
//! runs the configured plugins and pushes metrics, without ever failing or
//! noticeably slowing the function.
//!
//! This binary is the lifecycle loop only ([`lifecycle`]); everything it
//! measures and exports with lives in the `pyrometer` library. Configuration
//! is read once ([`pyrometer::config`]): the layer's `pyrometer.toml`, found
//! beside the directory this executable runs from (`/opt/pyrometer` in
//! Lambda), under the `PYROMETER_*` variables, which override it.

mod extensions_api;
mod faults;
mod flush;
mod inputs;
mod lifecycle;
mod plugins;
mod probe;
mod runtime_process;
mod session;
mod telemetry;

use std::process::ExitCode;

use pyrometer::config::Config;

fn main() -> ExitCode {
    let layer_dir = std::env::current_exe()
        .ok()
        .and_then(|exe| pyrometer::layer::dir_of_extension(&exe));
    let (config, warnings) = Config::load(std::env::vars(), layer_dir.as_deref());
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
