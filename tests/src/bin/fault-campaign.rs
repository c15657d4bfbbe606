//! `fault-campaign`: rounds of randomised faults (NATS node `kill -9` and restart, leader
//! step-downs, worker `kill -9` and SIGTERM, scaling 1 → 3 → 1; one at a time and two at once)
//! against a 3-node NATS cluster and the real `ingress` and `worker` binaries under a Salted
//! CX-like load, each round audited: sent, acknowledged, answered, lost, order violations,
//! conflicting answers, late answers, longest stall. Run it through `scripts/fault-campaign.sh`
//! (which builds the binaries and installs nats-server); see docs/reliability.md.
//!
//! Exit status 0 when every round passed, 1 when one failed or could not run (the cluster did
//! not come back in time, a process did not start), 2 when the campaign could not start.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use clap::Parser;
use testkit::faults::campaign::{self, RoundReport, RoundSpec, Schedule};

/// Randomised fault rounds against a 3-node NATS cluster under load, each one audited.
#[derive(Debug, Parser)]
#[command(name = "fault-campaign", version)]
struct Cli {
    /// Rounds to run (the campaign also ends after `--minutes`).
    #[arg(long, env = "CAMPAIGN_ROUNDS", default_value_t = 50)]
    rounds: usize,
    /// Start no new round after this many minutes (0: no limit).
    #[arg(long, env = "CAMPAIGN_MINUTES", default_value_t = 0)]
    minutes: u64,
    /// Seed of the first round's schedule; round `i` uses `seed + i`. Replay a failing round
    /// with `--seed <its seed> --rounds 1`. Default: drawn from the clock.
    #[arg(long, env = "CAMPAIGN_SEED")]
    seed: Option<u64>,
    /// Conversations running at once in each round.
    #[arg(long, env = "CAMPAIGN_CONVERSATIONS", default_value_t = 40)]
    conversations: usize,
    /// Directory for the figures (`rounds.jsonl`, `summary.txt`) and the logs of failing rounds.
    #[arg(long, env = "CAMPAIGN_OUT")]
    out: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => std::process::ExitCode::SUCCESS,
        Ok(false) => std::process::ExitCode::from(1),
        Err(err) => {
            eprintln!("fault-campaign: {err:#}");
            std::process::ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> Result<bool> {
    let seed = cli.seed.unwrap_or_else(|| {
        u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap_or_default() % 1_000_000
    });
    if let Some(out) = &cli.out {
        std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    }
    let spec = RoundSpec {
        conversations: cli.conversations,
        ..RoundSpec::default()
    };
    let limit = (cli.minutes > 0).then(|| Duration::from_secs(cli.minutes * 60));
    let started = std::time::Instant::now();
    println!(
        "fault campaign: up to {} rounds{}, seeds from {seed}, {} conversations; load average \
         at start {}",
        cli.rounds,
        limit.map_or_else(String::new, |l| format!(" or {} min", l.as_secs() / 60)),
        spec.conversations,
        campaign::load_average()
    );
    let mut reports = Vec::new();
    let mut not_run = Vec::new();
    for round in 1..=cli.rounds {
        if limit.is_some_and(|limit| started.elapsed() >= limit) {
            break;
        }
        let round_seed = seed + round as u64 - 1;
        let schedule = Schedule::random(round_seed, campaign::stack::PARTITIONS);
        let ran =
            campaign::run_round(round, Some(round_seed), schedule, &spec, cli.out.as_deref()).await;
        let report = match ran {
            Ok(report) => report,
            Err(err) => {
                // The test rig failed, not necessarily the pipeline: say so, go on.
                println!("round {round} (seed {round_seed}) could not run: {err:#}");
                not_run.push(format!("{round} (seed {round_seed})"));
                continue;
            }
        };
        println!("{report}");
        if let Some(out) = &cli.out {
            append_line(&out.join("rounds.jsonl"), &report.to_json().to_string())?;
        }
        reports.push(report);
    }
    let mut summary = summary(&reports, started.elapsed());
    if !not_run.is_empty() {
        summary.push_str(&format!(
            "; rounds that could not run: {}",
            not_run.join(", ")
        ));
    }
    println!("{summary}");
    if let Some(out) = &cli.out {
        std::fs::write(out.join("summary.txt"), format!("{summary}\n"))
            .context("writing summary.txt")?;
    }
    Ok(not_run.is_empty() && reports.iter().all(RoundReport::passed))
}

fn append_line(path: &std::path::Path, line: &str) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("opening {}", path.display()))?;
    writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))
}

/// The campaign's totals.
fn summary(reports: &[RoundReport], took: Duration) -> String {
    let sum = |f: fn(&RoundReport) -> usize| reports.iter().map(f).sum::<usize>();
    let max = |f: fn(&RoundReport) -> Duration| reports.iter().map(f).max().unwrap_or_default();
    let failed: Vec<String> = reports
        .iter()
        .filter(|r| !r.passed())
        .map(|r| format!("{} (seed {})", r.round, r.seed.unwrap_or_default()))
        .collect();
    format!(
        "campaign: {} rounds in {:.0} min ({} with two faults at once), {} passed; sent {}, \
         acknowledged {}, answered {}, lost {}, order violations {}, conflicting {}, late \
         answers {}, expired {}; longest wait {:.1}s, longest silence {:.1}s; load average at \
         end {}{}",
        reports.len(),
        took.as_secs_f64() / 60.0,
        reports.iter().filter(|r| r.schedule.overlaps()).count(),
        reports.iter().filter(|r| r.passed()).count(),
        sum(|r| r.audit.sent),
        sum(|r| r.audit.acknowledged),
        sum(|r| r.audit.answered),
        sum(|r| r.audit.lost),
        sum(|r| r.audit.order_violations),
        sum(|r| r.audit.conflicting),
        sum(|r| r.audit.after_expires),
        sum(|r| r.audit.expired),
        max(|r| r.longest_wait).as_secs_f64(),
        max(|r| r.longest_silence).as_secs_f64(),
        campaign::load_average(),
        if failed.is_empty() {
            String::new()
        } else {
            format!("; FAILED rounds: {}", failed.join(", "))
        }
    )
}
