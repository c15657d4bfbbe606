//! Load mode: many concurrent conversations against the pipeline, closed loop (each
//! conversation sends its next event as soon as the previous one is resolved) or open loop
//! (events are scheduled at a fixed rate and handed to idle conversations; when none is idle
//! the send is late, counted as "rate not sustained", and its latency still runs from the
//! scheduled time, so coordinated omission cannot flatter the figures).
//!
//! Every run is bounded: by `duration` or `events`, and in any case by `time_limit`; after the
//! stop, events in flight are waited for (at most their budget), then late callbacks for a short
//! drain window.

use std::collections::VecDeque;
use std::io::IsTerminal;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::client::IngressClient;
use super::driver::{Env, Gate, Ingress, Pacing, play};
use super::report::LoadReport;
use super::scenario::Scenario;
use super::server::CallbackServer;
use super::stats::{Stats, get};

/// What a load run does.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    /// The ingresses' event endpoints; conversations are spread over them.
    pub ingress_urls: Vec<String>,
    /// The shared token.
    pub token: String,
    /// Concurrent conversations.
    pub conversations: usize,
    /// Stop sending after this long (`None`: after `events`).
    pub duration: Option<Duration>,
    /// Stop after this many events.
    pub events: Option<u64>,
    /// Open loop at this many events per second (`None`: closed loop).
    pub rate: Option<f64>,
    /// `expires - time` of every event.
    pub budget: Duration,
    /// Event size in bytes (0: natural size).
    pub event_size: usize,
    /// Conversations start evenly spread over this time (0: all at once).
    pub ramp_up: Duration,
    /// Whether each conversation has its own connection to the ingress.
    pub connections: super::config::Connections,
    /// Latencies of the first moments are left out of the histograms.
    pub warmup: Duration,
    /// How long to wait for late callbacks after the last event was resolved.
    pub drain: Duration,
    /// Hard bound on the sending phase, whatever else is set.
    pub time_limit: Duration,
    /// The workers' `/metrics` URLs: events they count as expired are not lost.
    pub worker_metrics: Vec<String>,
    /// Print a progress line this often (`None`: quiet).
    pub progress: Option<Duration>,
    /// The scenarios the conversations play, in turn.
    pub scenarios: Vec<Scenario>,
}

/// Runs the load against the ingress, with callbacks arriving at `server`.
pub async fn run(options: &LoadOptions, server: Arc<CallbackServer>) -> Result<LoadReport> {
    if options.scenarios.is_empty() || options.conversations == 0 {
        bail!("a load run needs at least one scenario and one conversation");
    }
    if options.rate.is_some_and(|r| !(r > 0.0 && r.is_finite())) {
        bail!("--rate must be a positive number of events per second");
    }
    let started_at = chrono::Utc::now();
    let cpu_before = super::stats::cpu_seconds();
    let start = Instant::now();
    let stats = Arc::new(Stats::default());
    if options.ingress_urls.is_empty() {
        bail!("a load run needs at least one ingress URL");
    }
    let per_conversation = options.connections == super::config::Connections::PerConversation;
    let mut ingresses = Vec::new();
    for url in &options.ingress_urls {
        let client = IngressClient::new(url, &options.token)?;
        client.check_reachable().await?;
        ingresses.push(Ingress::new(client, per_conversation).await?);
    }
    let expired_before = pipeline_expired(&options.worker_metrics).await;
    let env = Arc::new(Env {
        ingresses,
        server: server.clone(),
        stats: stats.clone(),
        budget: options.budget,
        event_size: options.event_size,
        warmup_until: start + options.warmup,
    });
    let window = options
        .duration
        .unwrap_or(options.time_limit)
        .min(options.time_limit);
    let gate = Arc::new(Gate::new(options.events));
    let (idle_tx, idle_rx) = mpsc::unbounded_channel();
    let pacing = match options.rate {
        None => Pacing::Immediate(gate.clone()),
        Some(_) => Pacing::Scheduled(gate.clone(), idle_tx),
    };
    let mut conversations = JoinSet::new();
    for i in 0..options.conversations {
        let (env, pacing, gate) = (env.clone(), pacing.clone(), gate.clone());
        let scenarios = options.scenarios.clone();
        // Conversations start spread over the ramp-up, or all at once without one.
        let delay = options
            .ramp_up
            .mul_f64(i as f64 / options.conversations as f64);
        conversations.spawn(async move {
            tokio::time::sleep(delay).await;
            // One connection per concurrent conversation, reused by the conversations this
            // slot plays one after the other.
            let mut poster = env.poster(i);
            let mut n = i;
            while !gate.is_stopped() {
                let scenario = &scenarios[n % scenarios.len()];
                if !play(&env, &mut poster, scenario, &pacing, false).await.1 {
                    break;
                }
                n += 1;
            }
        });
    }
    drop(pacing);
    let progress = options
        .progress
        .map(|every| tokio::spawn(progress_line(stats.clone(), start, every)));
    let mut scheduler = options.rate.map(|rate| {
        tokio::spawn(schedule(
            rate,
            start,
            start + window,
            gate.clone(),
            idle_rx,
            stats.clone(),
        ))
    });

    // The sending phase: until the window closes or the event budget is used up.
    let window_end = start + window;
    while Instant::now() < window_end && !gate.is_stopped() && !conversations.is_empty() {
        tokio::select! {
            () = tokio::time::sleep_until(window_end) => {}
            () = tokio::time::sleep(Duration::from_millis(20)) => {}
        }
    }
    gate.stop();
    let stopped = Instant::now();
    let answered_in_window = get(&stats.answered);
    if let Some(scheduler) = scheduler.take() {
        let _ = scheduler.await;
    }
    // Events in flight finish within their budget.
    let finish_by = Instant::now() + options.budget + Duration::from_secs(2);
    while !conversations.is_empty() {
        if tokio::time::timeout_at(finish_by, conversations.join_next())
            .await
            .is_err()
        {
            stats.error("sim_conversation_stuck");
            conversations.abort_all();
            break;
        }
    }
    if let Some(progress) = progress {
        progress.abort();
        if std::io::stderr().is_terminal() {
            eprintln!();
        }
    }
    // Late callbacks for expired events may still come.
    let drain_end = Instant::now() + options.drain;
    while get(&stats.expired) > server.counters().late && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let total = start.elapsed();
    let window = stopped.duration_since(start);
    let events_per_s = if options.events.is_some() && options.duration.is_none() {
        get(&stats.answered) as f64 / total.as_secs_f64().max(1e-9)
    } else {
        answered_in_window as f64 / window.as_secs_f64().max(1e-9)
    };
    let mut report = super::build_report(
        options,
        &stats,
        &server,
        started_at,
        window,
        total,
        events_per_s,
    );
    report.sim_cpu_s = cpu_before
        .zip(super::stats::cpu_seconds())
        .map(|(a, b)| b - a);
    if let (Some(before), Some(after)) = (
        expired_before,
        pipeline_expired(&options.worker_metrics).await,
    ) {
        let expired = (after - before).max(0.0) as u64;
        report.expired_in_pipeline = Some(expired);
        report.lost = report.unanswered.saturating_sub(expired);
    }
    Ok(report)
}

/// The workers' expired-event count, if their metrics were given and could be read.
async fn pipeline_expired(urls: &[String]) -> Option<f64> {
    if urls.is_empty() {
        return None;
    }
    match super::metrics::expired_total(urls).await {
        Ok(total) => Some(total),
        Err(err) => {
            eprintln!("saltedcx-sim: warning: {err:#}; lost events include expired ones");
            None
        }
    }
}

/// Hands scheduled send times to idle conversations at `rate` per second until `end`.
async fn schedule(
    rate: f64,
    start: Instant,
    end: Instant,
    gate: Arc<Gate>,
    mut idle: mpsc::UnboundedReceiver<oneshot::Sender<Instant>>,
    stats: Arc<Stats>,
) {
    let interval = Duration::from_secs_f64(1.0 / rate);
    let mut scheduled: u64 = 0;
    let mut backlog: VecDeque<Instant> = VecDeque::new();
    loop {
        let now = Instant::now();
        if now >= end || gate.is_stopped() {
            break;
        }
        let due = (now.duration_since(start).as_secs_f64() * rate) as u64 + 1;
        let mut fresh = 0;
        while scheduled < due {
            if !gate.admit() {
                break;
            }
            backlog.push_back(start + interval.mul_f64(scheduled as f64));
            scheduled += 1;
            fresh += 1;
        }
        while let Some(&at) = backlog.front() {
            let Ok(ticket) = idle.try_recv() else { break };
            if ticket.send(at).is_ok() {
                backlog.pop_front();
            }
        }
        let missed = backlog.len().min(fresh) as u64;
        stats
            .rate_not_sustained
            .fetch_add(missed, std::sync::atomic::Ordering::Relaxed);
        let next = start + interval.mul_f64(scheduled as f64);
        if backlog.is_empty() {
            tokio::time::sleep_until(next.min(end)).await;
        } else {
            tokio::select! {
                ticket = idle.recv() => match (ticket, backlog.pop_front()) {
                    (Some(ticket), Some(at)) => {
                        if let Err(at) = ticket.send(at) {
                            backlog.push_front(at);
                        }
                    }
                    (None, _) => break,
                    (Some(_), None) => {}
                },
                () = tokio::time::sleep_until(next.min(end)) => {}
            }
        }
    }
    gate.stop();
    // Dropping `idle` releases every waiting conversation.
}

/// Prints a progress line every `every` (overwritten in place on a terminal).
async fn progress_line(stats: Arc<Stats>, start: Instant, every: Duration) {
    let terminal = std::io::stderr().is_terminal();
    let mut ticker = tokio::time::interval_at(start + every, every);
    let mut last = (Instant::now(), 0u64);
    loop {
        ticker.tick().await;
        let now = Instant::now();
        let answered = get(&stats.answered);
        let rate = (answered - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-9);
        last = (now, answered);
        let text = format!(
            "[{:>6.1}s] {:>7.0} ev/s | answered {:>9} | in flight {:>5} | p99 {:>7.2} ms | misses {} | errors {}",
            now.duration_since(start).as_secs_f64(),
            rate,
            answered,
            get(&stats.in_flight),
            stats.p99_ms(),
            get(&stats.late) + get(&stats.expired),
            stats.error_total() + get(&stats.not_accepted),
        );
        if terminal {
            eprint!("\r{text}");
        } else {
            eprintln!("{text}");
        }
    }
}
