//! `saltedcx-sim`: a Salted CX emulator for the demo, end-to-end tests and load benchmarks (the
//! binary parses the command line and calls [`run`]; the end-to-end tests use the library).
//!
//! It behaves like Salted CX towards Your Logic: it POSTs events with the bearer token to the
//! ingress, one at a time per conversation (the next only after the previous one was answered
//! or expired), serves the callback API the workers answer to, applies the answers (bot
//! messages, custom data, `needsHelp`) to the following events, and falls back to an agent when
//! an answer misses `expires`. Conversations come from scenario files with realistic, growing
//! context.
//!
//! - [`config`]: the command line; [`scenario`]: scenario files (the built-in ones are
//!   `simulator/scenarios/*.toml`);
//! - [`conversation`] and [`body`]: the growing event of one conversation;
//! - [`server`] and [`registry`]: the callback API and routing callbacks to conversations;
//! - [`client`]: posting events; [`driver`]: playing conversations;
//! - [`demo`], [`load`], [`serve`], [`send`]: the four commands; [`stats`], [`report`],
//!   [`transcript`]: what they show; [`metrics`]: the workers' own count of expired events;
//! - [`cases`]: `test`, conversation tests with expectations on every answer;
//! - [`studio`]: `studio`, a page to chat with a playbook, see why it answered, and keep the
//!   conversation as a test.

pub mod body;
pub mod cases;
pub mod client;
pub mod config;
pub mod conversation;
pub mod dedicated;
pub mod demo;
pub mod driver;
pub mod load;
pub mod metrics;
pub mod registry;
pub mod report;
pub mod scenario;
pub mod send;
pub mod serve;
pub mod server;
pub mod stats;
pub mod studio;
pub mod transcript;

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;

use config::{Cli, Command};
use report::LoadReport;
use server::CallbackServer;
use stats::{Stats, get};

/// The bearer token and the callback API the workers answer to, listening on `endpoint`.
pub(crate) async fn start_callbacks(
    endpoint: &config::Endpoint,
) -> Result<(String, Arc<CallbackServer>)> {
    let token = endpoint.token();
    let server = CallbackServer::start(
        endpoint.listen,
        &token,
        Some(conversation::ACCOUNT_ID),
        false,
    )
    .await?;
    Ok((token, Arc::new(server)))
}

/// Runs the command line's command.
pub async fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Demo(args) => {
            let (token, server) = start_callbacks(&args.endpoint).await?;
            let options = demo::DemoOptions {
                ingress_url: args.target.ingress_url,
                token,
                conversations: args.conversations,
                budget: args.target.budget,
                scenarios: scenario::load(args.scenario.scenarios.as_deref())?,
                print: true,
            };
            demo::run(&options, server).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Load(args) => {
            let (token, server) = start_callbacks(&args.endpoint).await?;
            let options = load::LoadOptions {
                ingress_urls: args
                    .target
                    .ingress_url
                    .split(',')
                    .map(str::trim)
                    .filter(|url| !url.is_empty())
                    .map(str::to_string)
                    .collect(),
                token,
                conversations: args.conversations,
                duration: args
                    .duration
                    .or(args.events.is_none().then_some(Duration::from_secs(30))),
                events: args.events,
                rate: args.rate,
                budget: args.target.budget,
                event_size: args.event_size,
                ramp_up: args.ramp_up,
                connections: args.connections,
                worker_metrics: args.worker_metrics,
                warmup: args.warmup,
                drain: args.drain,
                time_limit: args.time_limit,
                progress: (!args.progress.is_zero()).then_some(args.progress),
                scenarios: scenario::load(args.scenario.scenarios.as_deref())?,
            };
            let report = load::run(&options, server).await?;
            print!("{}", report.render());
            if let Some(path) = &args.report_json {
                report.write_json(path)?;
                println!("  {:<24} {}", "report written to", path.display());
            }
            let ok = report.lost == 0 && report.ordering_violations == 0;
            Ok(if args.check && !ok {
                ExitCode::FAILURE
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Serve(args) => {
            serve::run(&args.endpoint).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Send(args) => send::run(&args).await,
        Command::Test(args) => cases::command(&args).await,
        Command::Studio(args) => {
            studio::command(&args).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Score(args) => cases::score_command(&args).await,
    }
}

/// Builds the report of a finished load run.
pub(crate) fn build_report(
    options: &load::LoadOptions,
    stats: &Stats,
    server: &CallbackServer,
    started_at: chrono::DateTime<chrono::Utc>,
    window: Duration,
    total: Duration,
    events_per_s: f64,
) -> LoadReport {
    let callbacks = server.counters();
    let mut errors = stats.errors();
    for (kind, count) in [
        ("callback_unauthorized", callbacks.unauthorized),
        ("callback_malformed", callbacks.malformed),
        ("callback_wrong_account", callbacks.wrong_account),
    ] {
        if count > 0 {
            errors.insert(kind.into(), count);
        }
    }
    let expired = get(&stats.expired);
    LoadReport {
        mode: if options.rate.is_some() {
            "open"
        } else {
            "closed"
        },
        ingress_url: options.ingress_urls.join(","),
        conversations: options.conversations,
        target_rate: options.rate,
        budget_s: options.budget.as_secs_f64(),
        event_size: options.event_size,
        duration_s: window.as_secs_f64(),
        total_s: total.as_secs_f64(),
        posts: get(&stats.posts),
        accepted: get(&stats.accepted),
        answered: get(&stats.answered),
        events_per_s,
        latency: stats.latency(),
        service_latency: stats.service(),
        ingress_post_latency: stats.post(),
        deadline_misses: get(&stats.late) + expired,
        late_answers: get(&stats.late) + callbacks.late,
        unanswered: expired.saturating_sub(callbacks.late),
        expired_in_pipeline: None,
        lost: expired.saturating_sub(callbacks.late),
        not_accepted: get(&stats.not_accepted),
        ordering_violations: callbacks.out_of_order,
        duplicate_callbacks: callbacks.duplicate,
        unknown_callbacks: callbacks.unknown,
        rate_not_sustained: get(&stats.rate_not_sustained),
        conversations_started: get(&stats.conversations_started),
        conversations_completed: get(&stats.conversations_completed),
        errors,
        callbacks,
        started_at: started_at.to_rfc3339(),
        cpus: std::thread::available_parallelism().map_or(1, usize::from),
        sim_cpu_s: None,
    }
}
