//! Demo mode: plays a few scenario conversations, one after the other, against a running stack
//! and prints their transcripts and a summary.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::time::Instant;

use super::client::IngressClient;
use super::driver::{Env, Gate, Ingress, Outcome, Pacing, Record, play};
use super::scenario::Scenario;
use super::server::CallbackServer;
use super::stats::{Stats, get};
use super::transcript::{human, render};

/// What the demo plays.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// The ingress's event endpoint.
    pub ingress_url: String,
    /// The shared token.
    pub token: String,
    /// How many conversations to play (the scenarios in turn).
    pub conversations: usize,
    /// `expires - time` of every event.
    pub budget: Duration,
    /// The scenarios to play.
    pub scenarios: Vec<Scenario>,
    /// Print the transcripts (tests turn this off).
    pub print: bool,
}

/// One played conversation.
#[derive(Debug, Clone)]
pub struct Transcript {
    /// The scenario played.
    pub scenario: Scenario,
    /// What happened, step by step.
    pub records: Vec<Record>,
}

impl Transcript {
    /// Events answered in time.
    pub fn answered(&self) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r.event, Some((_, Outcome::Answered { .. }))))
            .count()
    }

    /// Events sent.
    pub fn events(&self) -> usize {
        self.records.iter().filter(|r| r.event.is_some()).count()
    }

    /// Every action of every answer, in order.
    pub fn actions(&self) -> Vec<serde_json::Value> {
        self.records
            .iter()
            .filter_map(|r| match &r.event {
                Some((_, Outcome::Answered { applied, .. })) => Some(applied.actions.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// Plays the demo; fails when the ingress is unreachable or an event went unanswered.
pub async fn run(options: &DemoOptions, server: Arc<CallbackServer>) -> Result<Vec<Transcript>> {
    if options.scenarios.is_empty() {
        bail!("no scenario to play");
    }
    let client = IngressClient::new(&options.ingress_url, &options.token)?;
    client.check_reachable().await?;
    let stats = Arc::new(Stats::default());
    let env = Env {
        ingresses: vec![Ingress::new(client, false).await?],
        server,
        stats: stats.clone(),
        budget: options.budget,
        event_size: 0,
        warmup_until: Instant::now(),
    };
    let pacing = Pacing::Immediate(Arc::new(Gate::new(None)));
    let mut transcripts = Vec::new();
    for i in 0..options.conversations {
        let scenario = &options.scenarios[i % options.scenarios.len()];
        let mut poster = env.poster(i);
        let (records, _) = play(&env, &mut poster, scenario, &pacing, true).await;
        if options.print {
            print!(
                "{}",
                render(
                    i + 1,
                    options.conversations,
                    scenario,
                    &records,
                    options.budget
                )
            );
        }
        transcripts.push(Transcript {
            scenario: scenario.clone(),
            records,
        });
    }
    let events: usize = transcripts.iter().map(Transcript::events).sum();
    let answered: usize = transcripts.iter().map(Transcript::answered).sum();
    let latency = stats.latency();
    if options.print {
        let timing = if answered == 0 {
            format!("budget {}", human(options.budget))
        } else {
            format!(
                "median {}, slowest {}, budget {}",
                human(Duration::from_secs_f64(latency.p50_ms / 1000.0)),
                human(Duration::from_secs_f64(latency.max_ms / 1000.0)),
                human(options.budget)
            )
        };
        println!(
            "\n{} conversation(s), {events} events: {answered} answered in time ({timing}), {} fallback(s) to an agent.",
            transcripts.len(),
            get(&stats.late) + get(&stats.expired) + get(&stats.not_accepted),
        );
    }
    if answered < events {
        bail!(
            "{} of {events} events were not answered in time",
            events - answered
        );
    }
    Ok(transcripts)
}
