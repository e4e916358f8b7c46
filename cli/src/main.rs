//! `yadtq`: the command-line client of a yadtq gateway (see `yadtq --help`
//! and docs/cli.md).

mod api;
mod cli;
mod commands;
mod limits;
mod render;
mod schedules;
mod workflows;

use clap::Parser;

fn main() {
    let cli = cli::Cli::parse();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("tokio runtime");
    if let Err(e) = runtime.block_on(commands::run(cli)) {
        eprintln!("error: {e}");
        std::process::exit(e.exit_code());
    }
}
