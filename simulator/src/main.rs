//! `saltedcx-sim`: parses the command line and runs the simulator (see the `saltedcx_sim` library).

use std::process::ExitCode;

use clap::Parser;
use saltedcx_sim::config::Cli;

// The simulator allocates a little for every event and callback on many threads; mimalloc does
// that at a fraction of glibc malloc's cost, leaving more of the shared CPU to the pipeline.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_logging(cli.log_format);
    match saltedcx_sim::run(cli).await {
        Ok(code) => code,
        Err(err) => {
            eprintln!("saltedcx-sim: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
