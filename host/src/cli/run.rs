//! `pyrometer run -- CMD …`: run a long-running Python service with the
//! probe, serve its metrics on `/metrics`, and summarise it when it exits.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use pyrometer::report::service::write_service;
use pyrometer::sidecar::{self, RunConfig};

use super::common::{ExportArgs, PluginArgs};

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    /// Serve Prometheus metrics on http://ADDR/metrics (port 0 picks a free one).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:9464")]
    listen: SocketAddr,
    /// Do not serve /metrics (push or print only).
    #[arg(long, conflicts_with = "listen")]
    no_listen: bool,
    /// Run the plugins and flush the exporters this often (e.g. 15s, 500ms, 2m).
    #[arg(long, value_name = "DURATION", default_value = "15s", value_parser = parse_duration)]
    window: Duration,
    /// Sample memory, CPU, threads and fds of the whole process tree this often.
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = parse_duration)]
    interval: Duration,
    /// The service's name in metrics (the `function_name` label). Default: from the command.
    #[arg(long)]
    name: Option<String>,
    /// The service's version in metrics (the `function_version` label).
    #[arg(long = "service-version", default_value = "local")]
    service_version: String,
    /// Write the summary as JSON when the service exits.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    #[command(flatten)]
    plugins: PluginArgs,
    #[command(flatten)]
    export: ExportArgs,
    /// The service's command line, after `--` (e.g. `-- gunicorn -w 2 app:app`).
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD"
    )]
    command: Vec<OsString>,
}

/// Runs `pyrometer run`; exits with the service's exit status.
pub(crate) fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let mut config = RunConfig::new(args.command.clone());
    config.listen = (!args.no_listen).then_some(args.listen);
    config.window = args.window;
    config.interval = args.interval;
    if let Some(name) = &args.name {
        config.name.clone_from(name);
    }
    config.version.clone_from(&args.service_version);
    config.plugins = args.plugins.specs()?;
    config.export = args.export.config();
    let outcome = sidecar::run(&config, |addr| {
        eprintln!("pyrometer: serving metrics on http://{addr}/metrics");
    })?;
    if let Some(path) = &args.json {
        let report = serde_json::json!({
            "schema": "pyrometer.run-report/1",
            "exit_code": outcome.exit_code,
            "summary": outcome.summary,
            "findings": outcome.findings,
        });
        std::fs::write(path, serde_json::to_string_pretty(&report)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let mut stderr = std::io::stderr().lock();
    write_service(&outcome.summary, &outcome.findings, &mut stderr)?;
    Ok(ExitCode::from(outcome.exit_code))
}

/// `15s`, `500ms`, `2m`, `1h`, or a bare number of seconds; more than 0.
fn parse_duration(text: &str) -> anyhow::Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("{text:?} is not a duration (try 15s, 500ms, 2m)"))?;
    let seconds = match unit {
        "" | "s" => value,
        "ms" => value / 1e3,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => bail!("unknown unit {other:?} in {text:?} (use ms, s, m or h)"),
    };
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        bail!("{text:?} must be more than 0 and at most a day");
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("15s").ok(), Some(Duration::from_secs(15)));
        assert_eq!(
            parse_duration("500ms").ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(parse_duration("2m").ok(), Some(Duration::from_secs(120)));
        assert_eq!(
            parse_duration("1.5").ok(),
            Some(Duration::from_millis(1500))
        );
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }
}
