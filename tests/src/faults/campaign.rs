//! Fault campaigns: rounds of randomised faults against a 3-node NATS cluster under a Salted
//! CX-like load, each round audited on its own, so that an ordering or durability hole that
//! opens only in some interleavings shows up by repetition (`scripts/fault-campaign.sh`, the
//! `fault-campaign` binary; CI runs a few fixed rounds in `tests/tests/faults_campaign.rs`).
//!
//! A round: start the pipeline afresh ([`stack`]), run the load (conversations post their
//! events one after another, half of them right after each `202`, half only once the previous
//! event was answered, as Salted CX does), apply the round's [`schedule`] step by step, stop
//! the load, let every RAFT group heal and every acknowledged event settle, then audit the
//! ledger against the callbacks, the dead letters and the workers' expiry counters.

pub mod delegate;
pub mod schedule;
pub mod stack;

use std::fmt;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::{AnswerWatch, Audit, Ledger, LoadSpec, Posted};
use crate::Callback;
use crate::stack::Poster;
pub use schedule::{Fault, Group, Schedule, Step};
pub use stack::CampaignStack;

/// The load and timing of a round.
#[derive(Debug, Clone)]
pub struct RoundSpec {
    /// Conversations running at once.
    pub conversations: usize,
    /// Pause between a conversation's events (after the `202`, or after the answer).
    pub pace: Duration,
    /// Load before the first step.
    pub warmup: Duration,
    /// Load after the last step.
    pub tail: Duration,
    /// Longest wait for every acknowledged event to be answered after the load.
    pub settle: Duration,
}

impl Default for RoundSpec {
    fn default() -> Self {
        Self {
            conversations: 40,
            pace: Duration::from_millis(300),
            warmup: Duration::from_secs(3),
            tail: Duration::from_secs(3),
            settle: Duration::from_secs(60),
        }
    }
}

/// What one round did and found.
#[derive(Debug, Clone)]
pub struct RoundReport {
    pub round: usize,
    /// The seed the schedule was drawn from (`None`: written by hand).
    pub seed: Option<u64>,
    pub schedule: Schedule,
    pub audit: Audit,
    /// Whether every acknowledged event was answered or expired within the settle time.
    pub settled: bool,
    /// Events the workers counted as expired.
    pub expired_counted: u64,
    /// The longest any answered event waited from its `202` to its first answer.
    pub longest_wait: Duration,
    /// The longest time without any answer while the load ran.
    pub longest_silence: Duration,
    /// How long the round took, start-up and audit included.
    pub took: Duration,
    /// The 1-minute load average of the machine at the end of the round.
    pub load_average: String,
    /// What happened when.
    pub timeline: Vec<String>,
}

impl RoundReport {
    /// Nothing acknowledged lost, nothing reordered or answered differently twice, nothing
    /// answered after its `expires`, and everything settled.
    pub fn passed(&self) -> bool {
        self.settled && self.audit.is_clean() && self.audit.after_expires == 0
    }

    /// One JSON object with the figures.
    pub fn to_json(&self) -> Value {
        let a = &self.audit;
        json!({
            "round": self.round,
            "seed": self.seed,
            "schedule": self.schedule.to_string(),
            "two_at_once": self.schedule.overlaps(),
            "passed": self.passed(),
            "sent": a.sent,
            "acknowledged": a.acknowledged,
            "answered": a.answered,
            "lost": a.lost,
            "order_violations": a.order_violations,
            "conflicting": a.conflicting,
            "repeated": a.repeated,
            "late_answers": a.after_expires,
            "expired": a.expired,
            "expired_counted": self.expired_counted,
            "dead_lettered": a.dead_lettered,
            "refused_503": a.unavailable,
            "transport_errors": a.transport_errors,
            "never_acknowledged": a.not_acknowledged,
            "settled": self.settled,
            "longest_wait_ms": self.longest_wait.as_millis(),
            "longest_silence_ms": self.longest_silence.as_millis(),
            "took_s": self.took.as_secs(),
            "load_average": self.load_average,
            "violations": a.violations.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "timeline": self.timeline,
        })
    }
}

impl fmt::Display for RoundReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let a = &self.audit;
        let seed = self
            .seed
            .map_or_else(|| "fixed".to_string(), |s| format!("seed {s}"));
        write!(
            f,
            "round {} ({seed}) {}: sent {}, acknowledged {}, answered {}, lost {}, order \
             violations {}, conflicting {}, late answers {}, expired {} (counted {}), \
             dead-lettered {}, 503s {}, longest wait {:.1}s, longest silence {:.1}s, {}s, load \
             {} — {}",
            self.round,
            self.schedule,
            a.sent,
            a.acknowledged,
            a.answered,
            a.lost,
            a.order_violations,
            a.conflicting,
            a.after_expires,
            a.expired,
            self.expired_counted,
            a.dead_lettered,
            a.unavailable,
            self.longest_wait.as_secs_f64(),
            self.longest_silence.as_secs_f64(),
            self.took.as_secs(),
            self.load_average,
            if self.passed() { "PASS" } else { "FAIL" },
        )?;
        if !self.settled {
            write!(f, " (not settled)")?;
        }
        for violation in &a.violations {
            write!(f, "\n  order violation: {violation}")?;
        }
        Ok(())
    }
}

/// Runs one round of `schedule` (drawn from `seed`, if it was) and reports it; with `keep`, the
/// logs of a failing round are written there.
pub async fn run_round(
    round: usize,
    seed: Option<u64>,
    schedule: Schedule,
    spec: &RoundSpec,
    keep: Option<&Path>,
) -> Result<RoundReport> {
    let started = tokio::time::Instant::now();
    let stack = CampaignStack::start(schedule.workers).await?;
    stack.note(format!("schedule: {schedule}"));
    let ledger = Ledger::default();
    let answers = AnswerWatch::start(&stack.fake);
    let load_spec = LoadSpec::new(
        &format!("r{round}"),
        stack::TRIGGER,
        spec.conversations,
        100_000,
    )
    .pace(spec.pace)
    .max_duration(Duration::from_secs(600))
    .answered_first(2);
    let load_started = Utc::now();
    let load = tokio::spawn(super::run_load_watching(
        Poster::new(&stack.ingress.url()),
        load_spec,
        ledger.clone(),
        Some(answers),
    ));
    tokio::time::sleep(spec.warmup).await;
    for step in &schedule.steps {
        tokio::time::sleep(step.pause).await;
        let faults = step.faults.iter().map(|fault| stack.apply(fault));
        for outcome in futures::future::join_all(faults).await {
            outcome?;
        }
    }
    tokio::time::sleep(spec.tail).await;
    ledger.stop();
    let load_ended = Utc::now();
    stack.note("load stopped".into());
    // Conversations waiting for an answer finish by their event's `expires` at the latest.
    load.await.context("the load task failed")??;
    let healed = stack.heal().await?;
    stack.note(format!("every RAFT group current ({healed:?})"));
    let posted = ledger.snapshot();
    let settled =
        super::wait_settled(&stack.fake, &posted, Duration::from_secs(1), spec.settle).await;
    let expired_counted = stack.expired_counted().await;
    let callbacks = stack.fake.callbacks();
    let dead = super::dead_letters(&stack.js).await?;
    let audit = super::audit(&posted, &callbacks, &dead, Some(expired_counted));
    let report = RoundReport {
        round,
        seed,
        schedule,
        longest_wait: longest_wait(&posted, &callbacks),
        longest_silence: super::longest_answer_gap(&callbacks, load_started, load_ended),
        audit,
        settled,
        expired_counted,
        took: started.elapsed(),
        load_average: load_average(),
        timeline: stack.timeline(),
    };
    if let Some(dir) = keep.filter(|_| !report.passed()) {
        keep_logs(&stack, &report, dir).await?;
    }
    Ok(report)
}

/// The longest time from an event's `202` to its first successful callback.
fn longest_wait(posted: &[Posted], callbacks: &[Callback]) -> Duration {
    let mut first: std::collections::HashMap<&str, DateTime<Utc>> =
        std::collections::HashMap::new();
    for call in callbacks.iter().filter(|c| c.is_success()) {
        if let Some(id) = call.request_id.as_deref() {
            let at = first.entry(id).or_insert(call.received_at);
            *at = (*at).min(call.received_at);
        }
    }
    posted
        .iter()
        .filter_map(|p| Some((first.get(p.request_id.as_str())?, p.acknowledged_at?)))
        .filter_map(|(answered, acknowledged)| (*answered - acknowledged).to_std().ok())
        .max()
        .unwrap_or_default()
}

/// The machine's 1-, 5- and 15-minute load averages.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "?".into())
}

/// Writes a failing round's report, timeline and every process's log under `dir/round-N`.
async fn keep_logs(stack: &CampaignStack, report: &RoundReport, dir: &Path) -> Result<()> {
    let dir = dir.join(format!("round-{}", report.round));
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
    };
    write("report.txt", &report.to_string())?;
    write("timeline.txt", &report.timeline.join("\n"))?;
    for (name, output) in stack.outputs().await {
        write(&format!("{name}.log"), &output)?;
    }
    for node in 0..stack.cluster.size() {
        let log = std::fs::read_to_string(stack.node_log(node)).unwrap_or_default();
        write(&format!("n{}.log", node + 1), &log)?;
    }
    Ok(())
}
