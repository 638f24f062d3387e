//! The `pyrometer` command: a thin layer over the `pyrometer` library.
//!
//! Each subcommand lives in `cli/`; errors from the library become one line on
//! stderr and a non-zero exit code.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging();
    match cli::run(args) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("pyrometer: {}", cli::one_line(&e));
            ExitCode::FAILURE
        }
    }
}
