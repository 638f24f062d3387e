//! `pyrometer lambda HANDLER`: run a Lambda handler the way Lambda does, on
//! this machine, and show where its cold start and invocations spend time.

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use pyrometer::local_lambda::{self, LocalLambdaConfig, Progress, RuntimeClient};
use pyrometer::report::{LambdaReport, html, speedscope, terminal};

use super::common::{ExportArgs, PluginArgs};

#[derive(Debug, Args)]
pub(crate) struct LambdaArgs {
    /// The handler: `path/to/app.py:function` or `module.function`.
    handler: String,
    /// The event every invocation receives: a JSON file, or `-` for stdin. Default `{}`.
    #[arg(long)]
    event: Option<PathBuf>,
    /// Invocations per execution environment.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=100_000))]
    invocations: u64,
    /// Fresh execution environments (cold starts), one after the other.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=100))]
    cold: u64,
    /// Configured memory, MB (reported as Lambda reports it; not enforced).
    #[arg(long, default_value_t = 128, value_parser = clap::value_parser!(u32).range(128..=10_240))]
    memory_mb: u32,
    /// Per-invocation timeout in seconds.
    #[arg(long, default_value_t = 3.0)]
    timeout: f64,
    /// The runtime client that runs the handler.
    #[arg(long, value_enum, default_value_t = Runtime::Builtin)]
    runtime: Runtime,
    /// The Python interpreter.
    #[arg(long, default_value = "python3")]
    python: PathBuf,
    #[command(flatten)]
    plugins: PluginArgs,
    /// An external extension executable, started as Lambda starts /opt/extensions/* (repeatable).
    #[arg(long = "extension", value_name = "PATH")]
    extensions: Vec<PathBuf>,
    /// A Lambda layer zip (`pyrometer layer build` writes one), attached as in
    /// Lambda: unpacked into a directory playing /opt, every extensions/* started
    /// as an external extension, and pyrometer's exec wrapper from the layer
    /// running the runtime. The layer's extension then receives the probe's
    /// records and exports per its pyrometer.toml, while this report shows what
    /// the platform sees (telemetry, procfs). Combines with --extension.
    #[arg(long, value_name = "layer.zip")]
    layer: Option<PathBuf>,
    /// The function name used in reports.
    #[arg(long, default_value = "local-function")]
    function_name: String,
    /// Write the report as JSON (schema pyrometer.lambda-report/1).
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Write a self-contained HTML report (import flame chart, latency and memory plots).
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// Write the cold start's import tree for speedscope.app.
    #[arg(long, value_name = "FILE")]
    speedscope: Option<PathBuf>,
    /// Write the import tree as folded stacks (flamegraph.pl, inferno).
    #[arg(long, value_name = "FILE")]
    folded: Option<PathBuf>,
    /// Exporters, flushed after every invocation.
    #[command(flatten)]
    export: ExportArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Runtime {
    Builtin,
    Awslambdaric,
}

/// Runs `pyrometer lambda`.
pub(crate) fn run(args: LambdaArgs) -> anyhow::Result<ExitCode> {
    let config = config(&args)?;
    let mut bar = ProgressBar::new();
    let report = local_lambda::run(&config, |p| bar.show(p));
    bar.finish();
    let report = report?;
    write_outputs(&args, &report)?;
    let mut stdout = std::io::stdout().lock();
    terminal::write_terminal(
        &report,
        &terminal::TerminalOptions::for_stdout(),
        &mut stdout,
    )?;
    stdout.flush()?;
    if args.layer.is_some() {
        eprintln!(
            "note: the layer's extension received the probe's records (imports, Python runtime) and exported them per its pyrometer.toml"
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn config(args: &LambdaArgs) -> anyhow::Result<LocalLambdaConfig> {
    let mut config = LocalLambdaConfig::new(&args.handler);
    if let Some(path) = &args.event {
        let text = if path == Path::new("-") {
            std::io::read_to_string(std::io::stdin()).context("cannot read the event from stdin")?
        } else {
            std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?
        };
        serde_json::from_str::<serde_json::Value>(&text)
            .with_context(|| format!("the event {} is not valid JSON", path.display()))?;
        config.event = text.into();
    }
    if !(args.timeout.is_finite() && args.timeout > 0.0 && args.timeout <= 900.0) {
        bail!(
            "--timeout must be between 0 and 900 seconds, got {}",
            args.timeout
        );
    }
    config.invocations = usize::try_from(args.invocations)?;
    config.environments = usize::try_from(args.cold)?;
    config.memory_mb = args.memory_mb;
    config.timeout = Duration::from_secs_f64(args.timeout);
    config.python.clone_from(&args.python);
    config.runtime = match args.runtime {
        Runtime::Builtin => RuntimeClient::Builtin,
        Runtime::Awslambdaric => RuntimeClient::Awslambdaric,
    };
    config.extensions.clone_from(&args.extensions);
    config.layer.clone_from(&args.layer);
    config.function_name.clone_from(&args.function_name);
    config.plugins = args.plugins.specs()?;
    config.export = args.export.config();
    Ok(config)
}

fn write_outputs(args: &LambdaArgs, report: &LambdaReport) -> anyhow::Result<()> {
    let write = |path: &Path, text: String| {
        std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
    };
    if let Some(path) = &args.json {
        write(path, serde_json::to_string_pretty(report)?)?;
    }
    if let Some(path) = &args.html {
        write(path, html::html_page(report))?;
    }
    let first_init = report.environments.first().map(|e| &e.init);
    if let Some(path) = &args.speedscope {
        let init = first_init.cloned().unwrap_or_default();
        write(
            path,
            serde_json::to_string(&speedscope::speedscope_json(&init, &report.function.name))?,
        )?;
    }
    if let Some(path) = &args.folded {
        let profile = first_init
            .and_then(|i| i.imports.clone())
            .unwrap_or_default();
        write(path, speedscope::folded_stacks(&profile))?;
    }
    Ok(())
}

/// A one-line progress bar on stderr, drawn only when stderr is a terminal.
struct ProgressBar {
    enabled: bool,
}

impl ProgressBar {
    fn new() -> Self {
        Self {
            enabled: std::io::stderr().is_terminal(),
        }
    }

    fn show(&mut self, p: Progress) {
        if !self.enabled || p.total == 0 {
            return;
        }
        const WIDTH: usize = 30;
        let filled = p.done * WIDTH / p.total;
        eprint!(
            "\r[{}{}] {}/{} invocations",
            "#".repeat(filled),
            " ".repeat(WIDTH - filled),
            p.done,
            p.total
        );
    }

    fn finish(&mut self) {
        if self.enabled {
            eprint!("\r{}\r", " ".repeat(60));
        }
    }
}
