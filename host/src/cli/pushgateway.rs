//! `pyrometer pushgateway gc`: delete stale groups from a Pushgateway, which
//! otherwise keeps every execution environment's last push forever.

use std::process::ExitCode;

use clap::Subcommand;
use pyrometer::export::pushgateway::{GcConfig, gc_stale_groups, parse_age};

#[derive(Debug, Subcommand)]
pub(crate) enum PushgatewayCommand {
    /// Delete groups whose last successful push (`push_time_seconds`) is older than a bound.
    Gc {
        /// Base URL of the gateway, e.g. http://127.0.0.1:9091.
        #[arg(long)]
        url: String,
        /// Age beyond which a group is stale: `90s`, `10m`, `2h`, `1d`.
        #[arg(long, value_parser = parse_age)]
        older_than: std::time::Duration,
        /// Only list what would be deleted.
        #[arg(long)]
        dry_run: bool,
    },
}

/// Runs one `pushgateway` subcommand.
pub(crate) fn run(cmd: PushgatewayCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        PushgatewayCommand::Gc {
            url,
            older_than,
            dry_run,
        } => {
            let mut config = GcConfig::new(url, older_than);
            config.dry_run = dry_run;
            let report = gc_stale_groups(&config)?;
            let verb = if dry_run { "would delete" } else { "deleted" };
            for group in &report.deleted {
                println!("{verb} {group:?}");
            }
            for (group, reason) in &report.failed {
                eprintln!("pyrometer: could not delete {group:?}: {reason}");
            }
            println!(
                "{verb} {} stale groups, kept {}, {} failed",
                report.deleted.len(),
                report.kept,
                report.failed.len()
            );
            Ok(if report.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
    }
}
