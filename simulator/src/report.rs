//! The result of a load run: what is printed at the end and written as JSON (`--report-json`).
//!
//! Definitions (every accepted event ends in exactly one of answered, late or expired):
//! - `answered`: a successful callback arrived before the event's `expires`;
//! - `deadline_misses` (fallbacks to an agent): accepted events without a callback before
//!   `expires`, i.e. `late_answers` + those never answered;
//! - `late_answers`: the callback came, but after `expires`;
//! - `unanswered`: accepted events that never got any callback, even after every deadline
//!   passed and the final drain window (a subset of the deadline misses);
//! - `expired_in_pipeline`: events the workers counted as expired (their deadline passed before
//!   they could answer; from their `/metrics`, when `--worker-metrics` is given);
//! - `lost`: unanswered events the pipeline did not count as expired (`unanswered -
//!   expired_in_pipeline`; all unanswered events when the workers' metrics are not given);
//! - `ordering_violations`: callbacks of a conversation arriving in another order than its
//!   events were accepted (a callback for an earlier event after a later one was answered);
//! - `events_per_s`: answered events per second of the measured window;
//! - latency: from the moment the event was due (closed loop: sent; open loop: scheduled, so
//!   a stalled system cannot hide its backlog) to the callback's arrival; `service_latency`
//!   is from the actual send in both modes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use serde::Serialize;

use super::server::CallbackCounts;
use super::stats::Percentiles;

/// Everything a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// `closed` (as fast as answers allow) or `open` (fixed rate).
    pub mode: &'static str,
    /// The ingresses' event endpoints (comma-separated).
    pub ingress_url: String,
    /// Concurrent conversations.
    pub conversations: usize,
    /// Events per second asked for (open loop).
    pub target_rate: Option<f64>,
    /// `expires - time` of every event, in seconds.
    pub budget_s: f64,
    /// Event size in bytes (0: natural).
    pub event_size: usize,
    /// Length of the measured window (start until the stop of sending).
    pub duration_s: f64,
    /// From start until the last event was resolved.
    pub total_s: f64,
    /// POSTs sent, retries included.
    pub posts: u64,
    /// Events accepted by the ingress.
    pub accepted: u64,
    /// Accepted events answered before `expires`.
    pub answered: u64,
    /// Answered events per second of the measured window.
    pub events_per_s: f64,
    /// Answer latency (from the scheduled send in the open loop).
    pub latency: Percentiles,
    /// Answer latency from the actual send.
    pub service_latency: Percentiles,
    /// Time until the ingress's `202`.
    pub ingress_post_latency: Percentiles,
    /// Accepted events without a callback before `expires` (fallbacks to an agent).
    pub deadline_misses: u64,
    /// Callbacks that came after `expires`.
    pub late_answers: u64,
    /// Accepted events that never got any callback.
    pub unanswered: u64,
    /// Events the workers counted as expired (from their metrics, if given).
    pub expired_in_pipeline: Option<u64>,
    /// Unanswered events the pipeline did not count as expired.
    pub lost: u64,
    /// Events the ingress never accepted before their deadline.
    pub not_accepted: u64,
    /// Callbacks out of the conversation's acceptance order.
    pub ordering_violations: u64,
    /// Repeated callbacks for answered events.
    pub duplicate_callbacks: u64,
    /// Callbacks for unknown conversations or requests.
    pub unknown_callbacks: u64,
    /// Open loop: scheduled sends that found no idle conversation.
    pub rate_not_sustained: u64,
    /// Conversations begun.
    pub conversations_started: u64,
    /// Conversations played to their end.
    pub conversations_completed: u64,
    /// Errors by kind: refused or failed POSTs, and rejected callbacks (`callback_*`).
    pub errors: BTreeMap<String, u64>,
    /// What the callback endpoint saw, by kind.
    pub callbacks: CallbackCounts,
    /// When the run started (UTC, RFC 3339).
    pub started_at: String,
    /// CPUs of the machine.
    pub cpus: usize,
    /// CPU seconds the simulator itself used during the run (it shares the machine).
    pub sim_cpu_s: Option<f64>,
}

fn line(out: &mut String, label: &str, value: impl std::fmt::Display) {
    let _ = writeln!(out, "  {label:<24} {value}");
}

fn latency_line(p: &Percentiles) -> String {
    format!(
        "p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms  (n={})",
        p.p50_ms, p.p90_ms, p.p99_ms, p.p999_ms, p.max_ms, p.count
    )
}

impl LoadReport {
    /// Whether nothing went wrong: no loss, no ordering violation, no deadline miss, no error.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.ordering_violations == 0
            && self.deadline_misses == 0
            && self.not_accepted == 0
            && self.errors.values().sum::<u64>() == 0
    }

    /// The human-readable report.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mode = match self.target_rate {
            Some(rate) => format!("open loop at {rate:.0} events/s"),
            None => "closed loop (as fast as answers allow)".into(),
        };
        let _ = writeln!(out, "saltedcx-sim load report: {mode}");
        line(&mut out, "ingress", &self.ingress_url);
        line(&mut out, "conversations", self.conversations);
        line(
            &mut out,
            "event size / budget",
            format!("{} bytes / {:.1} s", self.event_size, self.budget_s),
        );
        line(
            &mut out,
            "window / total",
            format!("{:.1} s / {:.1} s", self.duration_s, self.total_s),
        );
        line(
            &mut out,
            "throughput",
            format!("{:.0} events/s answered", self.events_per_s),
        );
        line(
            &mut out,
            "events",
            format!(
                "{} accepted, {} answered in time ({} POSTs)",
                self.accepted, self.answered, self.posts
            ),
        );
        line(&mut out, "answer latency", latency_line(&self.latency));
        if self.target_rate.is_some() {
            line(
                &mut out,
                "  from actual send",
                latency_line(&self.service_latency),
            );
        }
        line(
            &mut out,
            "ingress POST latency",
            latency_line(&self.ingress_post_latency),
        );
        line(
            &mut out,
            "deadline misses",
            format!(
                "{} (late answers {}, unanswered {}, of which expired in the pipeline {}; lost {})",
                self.deadline_misses,
                self.late_answers,
                self.unanswered,
                self.expired_in_pipeline
                    .map_or_else(|| "unknown".to_string(), |n| n.to_string()),
                self.lost
            ),
        );
        line(&mut out, "ordering violations", self.ordering_violations);
        line(&mut out, "not accepted", self.not_accepted);
        line(&mut out, "duplicate callbacks", self.duplicate_callbacks);
        line(&mut out, "unknown callbacks", self.unknown_callbacks);
        if self.target_rate.is_some() {
            line(
                &mut out,
                "rate not sustained",
                format!(
                    "{} sends found no idle conversation",
                    self.rate_not_sustained
                ),
            );
        }
        line(
            &mut out,
            "conversations",
            format!(
                "{} started, {} completed",
                self.conversations_started, self.conversations_completed
            ),
        );
        if let Some(cpu) = self.sim_cpu_s {
            let per_event = cpu * 1e6 / self.answered.max(1) as f64;
            line(
                &mut out,
                "simulator CPU",
                format!("{cpu:.1} s ({per_event:.0} µs per answered event)"),
            );
        }
        if self.errors.is_empty() {
            line(&mut out, "errors", "none");
        } else {
            let errors: Vec<String> = self
                .errors
                .iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect();
            line(&mut out, "errors", errors.join(", "));
        }
        out
    }

    /// Writes the report as pretty JSON to `path` (creating its directory).
    pub fn write_json(&self, path: &Path) -> Result<()> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let json = serde_json::to_vec_pretty(self).context("serialising the report")?;
        std::fs::write(path, json).with_context(|| format!("writing {}", path.display()))
    }
}
