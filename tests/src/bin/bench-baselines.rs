//! `bench-baselines`: the baselines of the pipeline benchmark and its summary (see
//! `testkit::bench` and `tests/bench/run.sh`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use shared::config::parse_duration;
use testkit::bench::{self, http, jetstream};

/// Baselines for the pipeline benchmark: raw JetStream and a trivial HTTP endpoint under the
/// same load, and the summary with the ratios.
#[derive(Debug, Parser)]
#[command(name = "bench-baselines", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish + consume the simulator's payloads on JetStream; writes the report as JSON.
    Jetstream {
        #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
        nats_url: String,
        #[arg(long, env = "BENCH_EVENT_SIZE", default_value_t = 3072)]
        payload_size: usize,
        #[arg(long, env = "BENCH_DURATION", default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Messages in the system (published, not yet consumed) at most.
        #[arg(long, env = "BENCH_IN_FLIGHT", default_value_t = 2000)]
        in_flight: usize,
        #[arg(long, env = "PARTITIONS", default_value_t = 64)]
        partitions: u16,
        /// One consumer per partition with one unacknowledged message (the pipeline's scheme).
        #[arg(long, env = "BENCH_ORDERED")]
        ordered: bool,
        #[arg(long, env = "BENCH_REPORT_JSON")]
        report_json: PathBuf,
    },
    /// Serve the trivial endpoint `POST /v1/events` until Ctrl-C / SIGTERM.
    HttpServe {
        #[arg(long, env = "BENCH_HTTP_ADDR", default_value = "127.0.0.1:8099")]
        listen: SocketAddr,
    },
    /// Post event bodies from closed-loop senders; writes the report as JSON.
    HttpLoad {
        #[arg(
            long,
            env = "BENCH_HTTP_URL",
            default_value = "http://127.0.0.1:8099/v1/events"
        )]
        url: String,
        #[arg(
            long,
            env = "SALTEDCX_TOKEN",
            hide_env_values = true,
            default_value = "local-dev-token"
        )]
        token: String,
        #[arg(long, env = "BENCH_CONCURRENCY", default_value_t = 2000)]
        concurrency: usize,
        #[arg(long, env = "BENCH_DURATION", default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        #[arg(long, env = "BENCH_EVENT_SIZE", default_value_t = 3072)]
        event_size: usize,
        #[arg(long, env = "BENCH_REPORT_JSON")]
        report_json: PathBuf,
    },
    /// Print and write (`summary.json`) the summary of a run directory.
    Summarize {
        /// The run directory (holding closed.json, open.json, jetstream-*.json, http.json,
        /// rss.csv, machine.txt).
        dir: PathBuf,
    },
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::Jetstream {
            nats_url,
            payload_size,
            duration,
            in_flight,
            partitions,
            ordered,
            report_json,
        } => {
            let options = jetstream::JetStreamOptions {
                nats_url,
                payload_size,
                duration,
                in_flight,
                partitions,
                ordered,
            };
            let report = jetstream::run(&options).await?;
            println!(
                "JetStream {}: {:.0} published/s, {:.0} consumed/s, latency p50 {:.2} ms p99 {:.2} ms",
                report.variant,
                report.published_per_s,
                report.consumed_per_s,
                report.latency.p50_ms,
                report.latency.p99_ms
            );
            bench::write_json(&report_json, &report)
        }
        Command::HttpServe { listen } => http::serve(listen).await,
        Command::HttpLoad {
            url,
            token,
            concurrency,
            duration,
            event_size,
            report_json,
        } => {
            let report = http::load(&http::HttpOptions {
                url,
                token,
                concurrency,
                duration,
                event_size,
            })
            .await?;
            println!(
                "trivial HTTP endpoint: {:.0} requests/s, latency p50 {:.2} ms p99 {:.2} ms, {} errors",
                report.requests_per_s, report.latency.p50_ms, report.latency.p99_ms, report.errors
            );
            bench::write_json(&report_json, &report)
        }
        Command::Summarize { dir } => {
            print!("{}", bench::summary::summarize(&dir)?);
            Ok(())
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    shared::telemetry::init_logging(shared::config::LogFormat::Text);
    match run(cli.command).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench-baselines: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
