//! Argument parsing and dispatch for the `pyrometer` command.

mod common;
mod lambda;
mod layer;
mod plugin;
mod pushgateway;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// See why a Python function is slow to start and slow to run.
#[derive(Debug, Parser)]
#[command(name = "pyrometer", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a Lambda handler as Lambda does, on this machine, and report its cold
    /// start (imports as a tree), latency, memory, GC and what the plugins found.
    Lambda(Box<lambda::LambdaArgs>),
    /// Package pyrometer as an AWS Lambda layer: the extension, the probe,
    /// precompiled plugins and their settings.
    #[command(subcommand)]
    Layer(layer::LayerCommand),
    /// Write, check and run WebAssembly analysis plugins.
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Maintain a Prometheus Pushgateway that pyrometer pushes to.
    #[command(subcommand)]
    Pushgateway(pushgateway::PushgatewayCommand),
    /// Run a long-running Python service (Flask, Django, FastAPI, …) with the
    /// probe: start-up and imports, latency by route, memory, GC and event-loop
    /// lag on /metrics, checked by the plugins; exits with the service's status.
    Run(Box<run::RunArgs>),
}

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Lambda(args) => lambda::run(*args),
        Command::Layer(cmd) => layer::run(cmd),
        Command::Plugin(cmd) => plugin::run(cmd),
        Command::Pushgateway(cmd) => pushgateway::run(cmd),
        Command::Run(args) => run::run(*args),
    }
}

/// Logs go to stderr; `PYROMETER_LOG` takes a tracing filter (default `info`).
pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("PYROMETER_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}

/// An error chain as one line: `outer: inner: root`, duplicates removed.
pub(crate) fn one_line(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
    }
    parts.join(": ").replace('\n', " ")
}
