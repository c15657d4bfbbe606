use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use worker::config::{Cli, Command};

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
    let started = match worker::logic_from_config(&cli.config) {
        Ok(logic) => worker::Worker::build(cli.config, logic).await,
        Err(err) => Err(err),
    };
    let worker = match started {
        Ok(worker) => worker,
        Err(err) => {
            tracing::error!(error = %err, "worker failed to start");
            eprintln!("error: {err}");
            return ExitCode::FAILURE;
        }
    };
    match worker.run(shared::shutdown::signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            tracing::error!(error = %err, "worker failed");
            ExitCode::FAILURE
        }
    }
}
