//! `yadtq-gateway`: the HTTP API. `yadtq-gateway serve` runs it;
//! `yadtq-gateway openapi` prints the OpenAPI document; `yadtq-gateway keys`
//! manages API keys. The work is in the library (`yadtq_gateway`).

use clap::{Parser, Subcommand};
use yadtq_gateway::{keys, openapi, GatewayConfig};

#[derive(Parser)]
#[command(name = "yadtq-gateway", version, about = "yadtq HTTP gateway")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the HTTP API.
    Serve(Box<GatewayConfig>),
    /// Print the OpenAPI 3.1 document to stdout.
    Openapi,
    /// Manage API keys in the database (`DATABASE_URL`).
    Keys(keys::KeysCommand),
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Openapi => {
            print!("{}", openapi::pretty());
            Ok(())
        }
        Command::Keys(cmd) => keys::run(cmd).await,
        Command::Serve(cfg) => {
            let telemetry = yadtq_core::telemetry::init("yadtq-gateway");
            yadtq_core::metrics::install();
            let served = yadtq_gateway::run(*cfg).await;
            telemetry.shutdown();
            served
        }
    }
}
