//! `pyrometer layer build`: package the extension, the Python probe, plugins
//! and settings as an AWS Lambda layer zip.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::{Args, Subcommand};
use pyrometer::layer::{self, BuiltLayer, EXTENSION_FILE, LayerBuild};
use pyrometer::plugins::{PluginSetting, PluginSpec};
use pyrometer::report::terminal::fmt_bytes;

#[derive(Debug, Subcommand)]
pub(crate) enum LayerCommand {
    /// Write a Lambda layer zip laid out for /opt: extensions/pyrometer-extension,
    /// the Python probe and exec wrapper under pyrometer/, plugins precompiled to
    /// pyrometer/plugins/*.cwasm and the extension's settings in pyrometer/pyrometer.toml.
    /// Every input is checked first; attach the zip to a Python function and set
    /// AWS_LAMBDA_EXEC_WRAPPER=/opt/pyrometer/pyrometer-exec-wrapper.
    Build(BuildArgs),
}

#[derive(Debug, Args)]
pub(crate) struct BuildArgs {
    /// A plugin component (.wasm): checked, precompiled for this machine's
    /// architecture and listed in pyrometer.toml (repeatable).
    #[arg(long = "plugin", value_name = "PLUGIN.wasm")]
    plugins: Vec<PathBuf>,
    /// A plugin setting as PLUGIN:KEY=VALUE, PLUGIN being the plugin's name (its
    /// file stem); checked by loading the plugin with it (repeatable).
    #[arg(long = "plugin-config", value_name = "PLUGIN:KEY=VALUE")]
    plugin_config: Vec<PluginSetting>,
    /// The extension's settings to ship: one key per PYROMETER_* variable
    /// (pushgateway_url, flush = "periodic,5000", …) and [[plugin]] tables whose
    /// .wasm paths are relative to the file. Checked in full, merged with
    /// --plugin; the function's PYROMETER_* variables override it in Lambda.
    #[arg(long, value_name = "pyrometer.toml")]
    config: Option<PathBuf>,
    /// The pyrometer-extension binary, built for the function's architecture
    /// [default: the one beside this pyrometer executable].
    #[arg(long, value_name = "PATH")]
    extension_bin: Option<PathBuf>,
    /// Where to write the layer zip.
    #[arg(short, long, value_name = "layer.zip")]
    output: PathBuf,
}

/// Runs one `layer` subcommand.
pub(crate) fn run(cmd: LayerCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LayerCommand::Build(args) => build(args),
    }
}

fn build(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let extension = match args.extension_bin {
        Some(path) => path,
        None => extension_beside_this_executable()?,
    };
    let spec = LayerBuild {
        extension,
        plugins: args.plugins.iter().map(PluginSpec::new).collect(),
        settings: args.plugin_config,
        config: args.config,
    };
    let built = layer::build(&spec, &args.output)?;
    print_summary(&args.output, &built);
    Ok(ExitCode::SUCCESS)
}

/// `pyrometer-extension` in the directory of this `pyrometer` (cargo builds
/// both into `target/<profile>/`).
fn extension_beside_this_executable() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot locate the pyrometer executable")?;
    let path = exe.with_file_name(EXTENSION_FILE);
    if !path.is_file() {
        bail!(
            "no {EXTENSION_FILE} beside {}: build it with `cargo build --release -p pyrometer-extension`, or pass --extension-bin PATH",
            exe.display()
        );
    }
    Ok(path)
}

fn print_summary(out: &Path, built: &BuiltLayer) {
    let files: Vec<_> = built
        .files
        .iter()
        .filter(|f| !f.path.ends_with('/'))
        .collect();
    let unzipped: u64 = files.iter().map(|f| f.size).sum();
    println!(
        "wrote {}: {} zipped, {} unzipped, {} files",
        out.display(),
        fmt_bytes(built.zip_bytes as f64),
        fmt_bytes(unzipped as f64),
        files.len()
    );
    for f in files {
        println!(
            "  {:04o} {:>10}  /opt/{}",
            f.mode,
            fmt_bytes(f.size as f64),
            f.path
        );
    }
    println!(
        "Attach it to a Python function (same architecture as this build) and set on the function:\n  AWS_LAMBDA_EXEC_WRAPPER={}",
        layer::lambda_exec_wrapper()
    );
}
