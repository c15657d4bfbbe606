//! `bench-logic`: what the conversation logic costs, without the pipeline around it.
//!
//! 1. **Playbook CPU per event**: the events of the shipped conversation tests
//!    (`tests/conversations`, built the way Salted CX sends them, growing turns included) are
//!    replayed through the built-in playbook many times on one thread; it prints the wall and
//!    process CPU time per event for parsing the event, for deciding the reply, and for
//!    deciding with the explanation, and how long loading the playbook (training its
//!    classifier) takes.
//! 2. **Generative answer latency**: the generative logic against a fake OpenAI-compatible server
//!    on loopback, answering at once, after a fixed delay, or never (the playbook's fallback
//!    then leaves at the budget the deadline allows); it prints latency percentiles of
//!    `Logic::decide`.
//!
//! Build with `--release`; the figures are in docs/benchmarks.md.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::Utc;
use clap::Parser;
use hdrhistogram::Histogram;
use saltedcx_sim::cases::{self, run::play_in_process};
use serde_json::json;
use shared::event::Event;
use testkit::fake_model::{Behaviour, FakeModel};
use testkit::workspace_root;
use worker::logic::Context;
use worker::logic::playbook::{DEFAULT_PLAYBOOK, Playbook, PlaybookLogic};
use worker::process::FALLBACK_RESERVE;

/// Measures the playbook's CPU per event and the generative step's answer latency.
#[derive(Debug, Parser)]
#[command(name = "bench-logic", version)]
struct Cli {
    /// Times the whole set of conversation-test events is replayed through the playbook.
    #[arg(long, env = "BENCH_ROUNDS", default_value_t = 200)]
    rounds: usize,
    /// The conversation tests whose events are replayed (the shipped ones by default).
    #[arg(long, env = "BENCH_CONVERSATIONS")]
    conversations: Option<PathBuf>,
    /// Requests to the fake model per generative scenario.
    #[arg(long, env = "BENCH_REQUESTS", default_value_t = 200)]
    requests: usize,
    /// The delay of the "slow model" scenario.
    #[arg(long, env = "BENCH_MODEL_DELAY", default_value = "300ms", value_parser = shared::config::parse_duration)]
    model_delay: Duration,
}

#[tokio::main]
async fn main() -> Result<()> {
    let cli = Cli::parse();
    let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    println!(
        "machine: {} CPUs available ({cpu_model})",
        std::thread::available_parallelism().map_or(1, usize::from),
    );
    let conversations = cli
        .conversations
        .clone()
        .unwrap_or_else(|| workspace_root().join("tests/conversations"));
    playbook_cpu(&conversations, cli.rounds).await?;
    generative_latency(&cli).await?;
    Ok(())
}

/// User + system CPU time of this process so far (Linux `/proc/self/stat`, clock ticks of
/// 10 ms).
fn process_cpu() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

async fn playbook_cpu(conversations: &std::path::Path, rounds: usize) -> Result<()> {
    let cases = cases::load(&[conversations.to_path_buf()])?;
    let logic = PlaybookLogic::new(Playbook::builtin()?);
    let mut bodies: Vec<Vec<u8>> = Vec::new();
    for case in &cases {
        play_in_process(&logic, case, Duration::from_secs(15), |body| {
            bodies.push(body.to_vec())
        })
        .await;
    }
    let bytes: usize = bodies.iter().map(Vec::len).sum();
    let events: Vec<Event> = bodies
        .iter()
        .map(|b| Event::from_json(b))
        .collect::<Result<_, _>>()
        .context("the recorded events parse")?;
    let playbook = Playbook::builtin()?;
    let n = (bodies.len() * rounds) as f64;

    let (wall, cpu) = measure(|| {
        for _ in 0..rounds {
            for body in &bodies {
                std::hint::black_box(Event::from_json(body).ok());
            }
        }
    });
    let parse = (
        wall.as_secs_f64() * 1e6 / n,
        cpu.map(|c| c.as_secs_f64() * 1e6 / n),
    );
    let (wall, cpu) = measure(|| {
        for _ in 0..rounds {
            for event in &events {
                std::hint::black_box(playbook.decide(event));
            }
        }
    });
    let decide = (
        wall.as_secs_f64() * 1e6 / n,
        cpu.map(|c| c.as_secs_f64() * 1e6 / n),
    );
    let (wall, cpu) = measure(|| {
        for _ in 0..rounds {
            for event in &events {
                std::hint::black_box(playbook.decide_explained(event));
            }
        }
    });
    let explained = (
        wall.as_secs_f64() * 1e6 / n,
        cpu.map(|c| c.as_secs_f64() * 1e6 / n),
    );
    const LOADS: u32 = 5;
    let (load, _) = measure(|| {
        for _ in 0..LOADS {
            std::hint::black_box(Playbook::from_toml("default.toml", DEFAULT_PLAYBOOK).ok());
        }
    });
    println!(
        "\nplaybook: {} events of {} conversation tests (mean {} bytes), {rounds} rounds, one thread",
        bodies.len(),
        cases.len(),
        bytes / bodies.len().max(1)
    );
    for (what, (wall, cpu)) in [
        ("parse the event", parse),
        ("decide the reply", decide),
        ("decide, explained", explained),
    ] {
        let cpu = cpu.map_or("n/a".into(), |c| format!("{c:.1} us"));
        println!("  {what:<18} {wall:>8.1} us/event wall, {cpu:>10} /event CPU");
    }
    println!(
        "  load the playbook  {:>8.1} ms (parse, check and train the classifier; mean of {LOADS})",
        load.as_secs_f64() * 1e3 / f64::from(LOADS)
    );
    Ok(())
}

/// Runs `work`, returning the wall time and the process CPU time it took.
fn measure(work: impl FnOnce()) -> (Duration, Option<Duration>) {
    let cpu_before = process_cpu();
    let started = Instant::now();
    work();
    let wall = started.elapsed();
    let cpu = process_cpu()
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before));
    (wall, cpu)
}

async fn generative_latency(cli: &Cli) -> Result<()> {
    let model = FakeModel::start(Behaviour::Answer(
        "Your parcel left our depot today.".into(),
    ))
    .await;
    let url = model.base_url();
    let config = worker::config::Cli::try_parse_from([
        "worker",
        "--saltedcx-token",
        "bench",
        "--logic",
        "generative",
        "--generative-url",
        &url,
        "--generative-model",
        "bench-model",
    ])?
    .config;
    let logic = worker::logic_from_config(&config)?;
    println!(
        "\ngenerative step against a fake OpenAI-compatible server on loopback ({} requests each):",
        cli.requests
    );
    let scenarios = [
        (
            "answers at once",
            Behaviour::Answer("Your parcel left our depot today.".into()),
            Duration::from_secs(15),
            cli.requests,
        ),
        (
            "answers after the delay",
            Behaviour::Slow(cli.model_delay, "Your parcel left our depot today.".into()),
            Duration::from_secs(15),
            cli.requests,
        ),
        (
            "never answers, 3 s deadline",
            Behaviour::Hang,
            Duration::from_secs(3),
            5,
        ),
    ];
    for (name, behaviour, budget, requests) in scenarios {
        model.set(behaviour);
        let mut histogram = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)?;
        for _ in 0..requests {
            let (raw, event) = message(budget)?;
            // As the worker runs it: the logic must return the callback margin and the
            // fallback's reserve before the deadline.
            let mut context = Context::new(event.expires, Utc::now(), 1, raw);
            context.answer_by = event.expires
                - chrono::Duration::from_std(config.worker.deadline_margin + FALLBACK_RESERVE)?;
            let started = Instant::now();
            logic.decide(&event, &context).await?;
            histogram.record(started.elapsed().as_micros().max(1) as u64)?;
        }
        let ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
        println!(
            "  {name:<30} p50 {:>8.2} ms  p90 {:>8.2} ms  p99 {:>8.2} ms  max {:>8.2} ms",
            ms(0.5),
            ms(0.9),
            ms(0.99),
            histogram.max() as f64 / 1000.0
        );
    }
    Ok(())
}

/// A customer question in a conversation under way, expiring after `budget`.
fn message(budget: Duration) -> Result<(Bytes, Event)> {
    let expires = Utc::now() + chrono::Duration::from_std(budget)?;
    let body = json!({
        "requestId": uuid::Uuid::new_v4().to_string(),
        "accountId": "bench",
        "expires": expires.to_rfc3339(),
        "trigger": {"type": "MESSAGE", "participantType": "CUSTOMER", "content": "Where is my parcel?",
                    "contentCustomer": "Where is my parcel?", "languageCustomer": "en"},
        "conversation": {"pid": "bench", "needsHelp": false, "custom": {"yl": {"p": "a"}}},
        "engagements": [],
        "turns": [
            {"type": "MESSAGE", "participantType": "CUSTOMER", "content": "Hi"},
            {"type": "MESSAGE", "participantType": "BOT", "content": "Hello! How can I help?"},
            {"type": "MESSAGE", "participantType": "CUSTOMER", "content": "Where is my parcel?"}
        ]
    });
    let raw = Bytes::from(serde_json::to_vec(&body)?);
    let event = Event::from_json(&raw)?;
    Ok((raw, event))
}
