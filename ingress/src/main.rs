use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use ingress::config::{Cli, Command};

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Healthcheck { url }) = cli.command {
        return match shared::health::probe(&url, Duration::from_secs(2)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(reason) => {
                eprintln!("unhealthy: {reason}");
                ExitCode::FAILURE
            }
        };
    }
    shared::telemetry::init_logging(cli.config.log.log_format);
    let ingress = match ingress::Ingress::build(cli.config).await {
        Ok(ingress) => ingress,
        Err(err) => {
            tracing::error!(error = %err, "ingress failed to start");
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match ingress.run(shared::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "ingress failed");
            ExitCode::FAILURE
        }
    }
}
