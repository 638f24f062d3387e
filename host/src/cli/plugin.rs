//! `pyrometer plugin check|run|compile`: tools for plugin authors.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pyrometer::model::{Batch, PluginOutput};
use pyrometer::plugins::{PluginLimits, PluginSet, PluginSpec, artifact};

#[derive(Debug, Subcommand)]
pub(crate) enum PluginCommand {
    /// Check that a file is a plugin pyrometer can load, and list its imports and exports.
    Check {
        /// The plugin (.wasm or .cwasm).
        plugin: PathBuf,
    },
    /// Run a plugin over batches written as JSON and print its output as JSON.
    Run(RunArgs),
    /// Precompile a .wasm plugin to a .cwasm for this platform's pyrometer.
    Compile {
        /// The plugin component (.wasm).
        input: PathBuf,
        /// Where to write the precompiled artifact.
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// The plugin (.wasm or .cwasm).
    plugin: PathBuf,
    /// A JSON file holding one batch, or an array of batches fed in order to one
    /// warm instance; `-` reads standard input.
    #[arg(long)]
    input: PathBuf,
    /// A configuration entry for the plugin (repeatable).
    #[arg(long = "config", value_name = "KEY=VALUE", value_parser = parse_key_value)]
    config: Vec<(String, String)>,
    /// Per-call deadline in milliseconds.
    #[arg(long, default_value_t = PluginLimits::default().deadline_ms)]
    deadline_ms: u64,
    /// Memory cap in MiB.
    #[arg(long, default_value_t = PluginLimits::default().memory_cap_bytes >> 20)]
    memory_mib: u64,
    /// Output format: `json` (one output, or an array for an array of batches) or
    /// `text` (findings and metrics, one per line, per batch).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    format: Format,
}

/// How `plugin run` prints outputs.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub(crate) enum Format {
    Json,
    Text,
}

fn parse_key_value(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

/// Runs one `plugin` subcommand.
pub(crate) fn run(cmd: PluginCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PluginCommand::Check { plugin } => check(&plugin),
        PluginCommand::Run(args) => run_batches(args),
        PluginCommand::Compile { input, output } => compile(&input, &output),
    }
}

fn check(path: &Path) -> anyhow::Result<ExitCode> {
    let set = PluginSet::new()?;
    let summary = set.check(path)?;
    println!(
        "{}: implements pyrometer:plugin/analyzer@0.1.0",
        path.display()
    );
    println!("exports:");
    for e in &summary.exports {
        println!("  {e}");
    }
    println!("imports:");
    for i in &summary.imports {
        println!("  {i}");
    }
    Ok(ExitCode::SUCCESS)
}

fn compile(input: &Path, output: &Path) -> anyhow::Result<ExitCode> {
    let set = PluginSet::new()?;
    let bytes = artifact::precompile(set.engine(), input)?;
    std::fs::write(output, &bytes).with_context(|| format!("cannot write {}", output.display()))?;
    eprintln!("wrote {} ({} bytes)", output.display(), bytes.len());
    Ok(ExitCode::SUCCESS)
}

fn run_batches(args: RunArgs) -> anyhow::Result<ExitCode> {
    let batches = read_batches(&args.input)?;
    let mut set = PluginSet::new()?;
    let mut spec = PluginSpec::new(&args.plugin);
    spec.config = args.config.into_iter().collect();
    spec.limits.deadline_ms = args.deadline_ms;
    spec.limits.memory_cap_bytes = args.memory_mib << 20;
    set.add(&spec)?;
    let mut outputs = Vec::with_capacity(batches.len());
    for (i, batch) in batches.iter().enumerate() {
        let report = set.run(batch);
        if let Some(failure) = report.failures.first() {
            bail!("batch {i}: {failure}");
        }
        outputs.push(report.output);
    }
    match args.format {
        Format::Json if outputs.len() == 1 => {
            println!("{}", serde_json::to_string_pretty(&outputs[0])?);
        }
        Format::Json => println!("{}", serde_json::to_string_pretty(&outputs)?),
        Format::Text => print_text(&outputs),
    }
    Ok(ExitCode::SUCCESS)
}

fn print_text(outputs: &[PluginOutput]) {
    for (i, out) in outputs.iter().enumerate() {
        println!(
            "batch {i}: {} findings, {} metrics",
            out.findings.len(),
            out.metrics.len()
        );
        for f in &out.findings {
            let severity = format!("{:?}", f.severity).to_lowercase();
            println!("  [{severity}] {}: {}", f.rule, f.message);
        }
        for m in &out.metrics {
            let labels: Vec<String> = m.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            println!("  {}{{{}}} {}", m.name, labels.join(","), m.value);
        }
    }
}

/// Reads one batch or an array of batches.
fn read_batches(path: &Path) -> anyhow::Result<Vec<Batch>> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?
    };
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{} is not valid JSON", path.display()))?;
    let parsed = match value {
        serde_json::Value::Array(items) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                serde_json::from_value(v)
                    .with_context(|| format!("{}: batch {i} is not a valid batch", path.display()))
            })
            .collect::<anyhow::Result<Vec<Batch>>>()?,
        v => vec![
            serde_json::from_value(v)
                .with_context(|| format!("{} is not a valid batch", path.display()))?,
        ],
    };
    Ok(parsed)
}
