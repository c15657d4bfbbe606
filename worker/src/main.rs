use std::path::Path;
use std::process::ExitCode;

use clap::{ArgMatches, CommandFactory, FromArgMatches};
use shared::config::NatsArgs;
use worker::config::{Cli, Command, WorkerArgs};

// Every event allocates many small buffers on several threads; mimalloc cut allocation time
// (a quarter of the CPU per event with glibc malloc) markedly in our profiles.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    // Subcommands first, from the raw matches: they do not need the serving configuration
    // (building `Config` would demand SALTEDCX_TOKEN even though clap waived it).
    let matches = Cli::command().get_matches();
    if matches.subcommand().is_some() {
        return match Command::from_arg_matches(&matches) {
            Ok(command) => run_command(command, &matches).await,
            Err(err) => err.exit(),
        };
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let telemetry =
        shared::telemetry::init(cli.config.log.log_format, &cli.config.traces, "worker");
    if let Err(code) = shared::service::started("worker", telemetry) {
        return code;
    }
    // Every connection is a file: the soft limit (often 1024) would cap them long before the
    // hard limit does.
    shared::server::files::raise_open_files_limit();
    let started = match worker::load_logic(&cli.config.worker) {
        Ok(loaded) => {
            tracing::info!(logic = %loaded.description, "conversation logic loaded");
            worker::Worker::build(cli.config, loaded.logic).await
        }
        Err(err) => Err(err),
    };
    let code = match shared::service::started("worker", started) {
        Ok(worker) => {
            shared::service::finished("worker", worker.run(shared::shutdown::signal()).await)
        }
        Err(code) => code,
    };
    shared::otel::shutdown();
    code
}

/// Runs a subcommand to completion; those that need settings (NATS, the logic) read them from
/// the same flags and environment variables as the service.
async fn run_command(command: Command, matches: &ArgMatches) -> ExitCode {
    match command {
        Command::Healthcheck { url } => shared::service::healthcheck(&url),
        Command::CheckPlaybook { file } => check_playbook(&file),
        Command::DeadLetters { command } => {
            let nats = NatsArgs::from_arg_matches(matches).unwrap_or_else(|err| err.exit());
            worker::admin::dead_letters(&nats, command).await
        }
        Command::Decide { file } => {
            let settings = WorkerArgs::from_arg_matches(matches).unwrap_or_else(|err| err.exit());
            worker::admin::decide(&settings, &file).await
        }
    }
}

fn check_playbook(file: &Path) -> ExitCode {
    match worker::logic::playbook::Playbook::load(file) {
        Ok(playbook) => {
            println!("{}: valid playbook: {}", file.display(), playbook.summary());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            ExitCode::FAILURE
        }
    }
}
