use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};
use ingress::config::{Cli, Command};

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
        let Command::Healthcheck { url } =
            Command::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
        return shared::service::healthcheck(&url);
    }
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|err| err.exit());
    let telemetry =
        shared::telemetry::init(cli.config.log.log_format, &cli.config.traces, "ingress");
    if let Err(code) = shared::service::started("ingress", telemetry) {
        return code;
    }
    // Every connection is a file: the soft limit (often 1024) would cap them long before the
    // hard limit does.
    shared::server::files::raise_open_files_limit();
    let code = match shared::service::started("ingress", ingress::Ingress::build(cli.config).await)
    {
        Ok(ingress) => {
            shared::service::finished("ingress", ingress.run(shared::shutdown::signal()).await)
        }
        Err(code) => code,
    };
    shared::otel::shutdown();
    code
}
