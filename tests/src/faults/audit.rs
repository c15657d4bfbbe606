//! Checking a load's [`Ledger`](super::Ledger) against what Salted CX (the fake) received, the
//! dead-letter stream and the worker's expiry counter.
//!
//! Every acknowledged event must end in exactly one of: answered (a successful callback; more
//! than one only with the same body, when a crash came between the callback and its record),
//! dead-lettered, or expired (no answer, its deadline passed, and the worker counted it under
//! `yourlogic_events_processed_total{outcome="expired"}`). Whatever is left is lost.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{DeadLetter, Posted};
use crate::Callback;
use crate::fake_saltedcx::FakeSaltedCx;

/// The figures of one run.
#[derive(Debug, Default, Clone)]
pub struct Audit {
    /// Distinct events the load tried to deliver.
    pub sent: usize,
    /// Events the ingress acknowledged with `202`.
    pub acknowledged: usize,
    /// Attempts the ingress answered `503` (event not stored; the load posted it again).
    pub unavailable: usize,
    /// Attempts without any HTTP answer (connection refused or reset, timeout).
    pub transport_errors: usize,
    /// Statuses other than 202 and 503 (should never happen under faults).
    pub unexpected_statuses: Vec<u16>,
    /// Events never acknowledged (the load gave up before their deadline).
    pub not_acknowledged: usize,
    /// Acknowledged events with at least one successful callback.
    pub answered: usize,
    /// Answered events with more than one successful callback, all with the same body.
    pub repeated: usize,
    /// Events with successful callbacks of different bodies (must be 0).
    pub conflicting: usize,
    /// The request ids of the conflicting events, for diagnosis.
    pub conflicting_ids: Vec<String>,
    /// Acknowledged events found in the dead-letter stream.
    pub dead_lettered: usize,
    /// Acknowledged events without answer or dead letter whose deadline has passed.
    pub expired: usize,
    /// What the worker counted as expired (for the load's trigger), if known.
    pub expired_counted: Option<u64>,
    /// Acknowledged events neither answered, nor dead-lettered, nor counted as expired.
    pub lost: usize,
    /// Conversations whose answers came in another order than their events were acknowledged.
    pub order_violations: usize,
    /// Every pair of consecutive events of a conversation whose first answers came in the
    /// wrong order (several per conversation possible), so a failure says where to look.
    pub violations: Vec<OrderViolation>,
    /// Successful callbacks that arrived after the event's `expires` (Salted CX's view).
    pub after_expires: usize,
    /// Events never acknowledged that were answered anyway (stored, but the `202` was lost).
    pub answered_unacknowledged: usize,
}

/// Two consecutive events of one conversation whose first answers came in the wrong order: the
/// later event was first answered `gap` before the earlier one.
#[derive(Debug, Clone)]
pub struct OrderViolation {
    pub conversation: String,
    /// The earlier event (position in its conversation, `requestId`, first `202`, first answer).
    pub earlier: AnsweredEvent,
    /// The next event of the conversation, answered first.
    pub later: AnsweredEvent,
    /// How much earlier the later event was answered.
    pub gap: Duration,
}

/// One acknowledged and answered event, as the order audit sees it.
#[derive(Debug, Clone)]
pub struct AnsweredEvent {
    pub seq: usize,
    pub request_id: String,
    pub acknowledged_at: DateTime<Utc>,
    pub answered_at: DateTime<Utc>,
}

impl fmt::Display for OrderViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let time = |t: DateTime<Utc>| t.format("%H:%M:%S%.3f");
        write!(
            f,
            "{}: #{} ({}, 202 at {}, first answered {}) answered {:?} after #{} ({}, 202 at {}, \
             first answered {})",
            self.conversation,
            self.earlier.seq,
            self.earlier.request_id,
            time(self.earlier.acknowledged_at),
            time(self.earlier.answered_at),
            self.gap,
            self.later.seq,
            self.later.request_id,
            time(self.later.acknowledged_at),
            time(self.later.answered_at),
        )
    }
}

impl Audit {
    /// Whether nothing acknowledged was lost, reordered or answered differently twice.
    pub fn is_clean(&self) -> bool {
        self.lost == 0
            && self.conflicting == 0
            && self.order_violations == 0
            && self.unexpected_statuses.is_empty()
    }
}

impl fmt::Display for Audit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, acknowledged {} ({} attempts got 503, {} transport errors, {} never \
             acknowledged), answered {} ({} repeated with the same body, {} conflicting), \
             dead-lettered {}, expired {} (counted {}), lost {}, order violations {}, \
             answers after expires {}, answered without 202 {}",
            self.sent,
            self.acknowledged,
            self.unavailable,
            self.transport_errors,
            self.not_acknowledged,
            self.answered,
            self.repeated,
            self.conflicting,
            self.dead_lettered,
            self.expired,
            self.expired_counted
                .map_or_else(|| "?".to_string(), |n| n.to_string()),
            self.lost,
            self.order_violations,
            self.after_expires,
            self.answered_unacknowledged,
        )?;
        if !self.conflicting_ids.is_empty() {
            write!(f, ", conflicting ids {:?}", self.conflicting_ids)?;
        }
        if !self.unexpected_statuses.is_empty() {
            write!(f, ", unexpected statuses {:?}", self.unexpected_statuses)?;
        }
        for violation in &self.violations {
            write!(f, "\n  order violation: {violation}")?;
        }
        Ok(())
    }
}

/// Audits `ledger` against `callbacks` (every call the fake recorded), `dead` letters and the
/// worker's expiry count for the load's trigger (`None` when unknown: then every unanswered
/// past-deadline event counts as expired).
pub fn audit(
    ledger: &[Posted],
    callbacks: &[Callback],
    dead: &[DeadLetter],
    expired_counted: Option<u64>,
) -> Audit {
    let mut by_request: HashMap<&str, Vec<&Callback>> = HashMap::new();
    for callback in callbacks.iter().filter(|c| c.is_success()) {
        if let Some(id) = callback.request_id.as_deref() {
            by_request.entry(id).or_default().push(callback);
        }
    }
    let dead_ids: HashSet<&str> = dead.iter().map(|d| d.request_id.as_str()).collect();
    let now = Utc::now();
    let mut audit = Audit {
        sent: ledger.len(),
        expired_counted,
        ..Audit::default()
    };
    let mut firsts: HashMap<&str, Vec<AnsweredEvent>> = HashMap::new();
    let mut unanswered_expired = 0;
    for posted in ledger {
        for &status in &posted.statuses {
            match status {
                0 => audit.transport_errors += 1,
                503 => audit.unavailable += 1,
                202 => {}
                other => audit.unexpected_statuses.push(other),
            }
        }
        let calls = by_request.get(posted.request_id.as_str());
        if !posted.acknowledged() {
            audit.not_acknowledged += 1;
            if calls.is_some() {
                audit.answered_unacknowledged += 1;
            }
            continue;
        }
        audit.acknowledged += 1;
        if dead_ids.contains(posted.request_id.as_str()) {
            audit.dead_lettered += 1;
        }
        match calls {
            Some(calls) => {
                audit.answered += 1;
                if calls.len() > 1 {
                    if calls.iter().any(|c| c.body != calls[0].body) {
                        audit.conflicting += 1;
                        audit.conflicting_ids.push(posted.request_id.clone());
                    } else {
                        audit.repeated += 1;
                    }
                }
                if calls.iter().any(|c| c.received_at > posted.expires) {
                    audit.after_expires += 1;
                }
                let answered_at = calls.iter().map(|c| c.received_at).min();
                if let (Some(answered_at), Some(acknowledged_at)) =
                    (answered_at, posted.acknowledged_at)
                {
                    firsts
                        .entry(posted.conversation.as_str())
                        .or_default()
                        .push(AnsweredEvent {
                            seq: posted.seq,
                            request_id: posted.request_id.clone(),
                            acknowledged_at,
                            answered_at,
                        });
                }
            }
            None if dead_ids.contains(posted.request_id.as_str()) => {}
            None if now > posted.expires => unanswered_expired += 1,
            None => audit.lost += 1,
        }
    }
    audit.expired = unanswered_expired;
    let accounted = expired_counted.map_or(unanswered_expired, |n| {
        unanswered_expired.min(usize::try_from(n).unwrap_or(usize::MAX))
    });
    audit.lost += unanswered_expired - accounted;
    let mut conversations: Vec<_> = firsts.into_iter().collect();
    conversations.sort_by(|a, b| a.0.cmp(b.0));
    for (conversation, mut answers) in conversations {
        answers.sort_by_key(|answer| answer.seq);
        let inverted: Vec<OrderViolation> = answers
            .windows(2)
            .filter(|pair| pair[0].answered_at > pair[1].answered_at)
            .map(|pair| OrderViolation {
                conversation: conversation.to_string(),
                gap: (pair[0].answered_at - pair[1].answered_at)
                    .to_std()
                    .unwrap_or_default(),
                earlier: pair[0].clone(),
                later: pair[1].clone(),
            })
            .collect();
        if !inverted.is_empty() {
            audit.order_violations += 1;
            audit.violations.extend(inverted);
        }
    }
    audit
}

/// The first and last moment the ingress refused an attempt (503 or no answer), if it did.
pub fn refusal_window(ledger: &[Posted]) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let refused = ledger.iter().flat_map(|p| {
        p.statuses
            .iter()
            .zip(&p.attempted_at)
            .filter(|(status, _)| **status != 202)
            .map(|(_, at)| *at)
    });
    refused.fold(None, |window, at| match window {
        None => Some((at, at)),
        Some((first, last)) => Some((first.min(at), last.max(at))),
    })
}

/// The longest time without any successful callback between `from` and `to`.
pub fn longest_answer_gap(
    callbacks: &[Callback],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> std::time::Duration {
    let mut times: Vec<DateTime<Utc>> = callbacks
        .iter()
        .filter(|c| c.is_success() && c.received_at >= from && c.received_at <= to)
        .map(|c| c.received_at)
        .collect();
    times.sort();
    let bounded = std::iter::once(from)
        .chain(times)
        .chain(std::iter::once(to));
    let times: Vec<DateTime<Utc>> = bounded.collect();
    times
        .windows(2)
        .filter_map(|w| (w[1] - w[0]).to_std().ok())
        .max()
        .unwrap_or_default()
}

/// Waits (at most `timeout`) until every acknowledged event of `ledger` has a successful
/// callback or its `expires` has passed by `grace`; returns whether that happened.
pub async fn wait_settled(
    fake: &FakeSaltedCx,
    ledger: &[Posted],
    grace: Duration,
    timeout: Duration,
) -> bool {
    let grace = chrono::Duration::from_std(grace).unwrap_or_default();
    crate::poll::wait_until(timeout, Duration::from_millis(100), || {
        let answered: HashSet<String> = fake
            .successful_callbacks()
            .into_iter()
            .filter_map(|c| c.request_id)
            .collect();
        let now = Utc::now();
        let settled = ledger
            .iter()
            .filter(|p| p.acknowledged())
            .all(|p| answered.contains(&p.request_id) || now > p.expires + grace);
        async move { settled }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Outcome;

    fn posted(conversation: &str, seq: usize, at: DateTime<Utc>) -> Posted {
        Posted {
            conversation: conversation.into(),
            seq,
            request_id: format!("{conversation}-{seq}"),
            time: at,
            expires: at + chrono::Duration::seconds(30),
            acknowledged_at: Some(at),
            statuses: vec![202],
            attempted_at: vec![at],
        }
    }

    fn answer(posted: &Posted, at: DateTime<Utc>) -> Callback {
        Callback {
            account_id: "a".into(),
            conversation_pid: posted.conversation.clone(),
            request_id: Some(posted.request_id.clone()),
            body: serde_json::json!({"requestId": posted.request_id}),
            authorization: None,
            received_at: at,
            status_returned: 200,
            outcome: Outcome::Responded(200),
        }
    }

    #[test]
    fn an_order_violation_names_both_events_and_the_gap() {
        let t0 = Utc::now() - chrono::Duration::seconds(5);
        let ms = chrono::Duration::milliseconds;
        let ledger = vec![
            posted("c", 0, t0),
            posted("c", 1, t0 + ms(100)),
            posted("c", 2, t0 + ms(400)),
            posted("d", 0, t0),
        ];
        let callbacks = vec![
            answer(&ledger[0], t0 + ms(10)),
            // #2 answered 1.5 s before #1: one inverted pair (1, 2).
            answer(&ledger[2], t0 + ms(500)),
            answer(&ledger[1], t0 + ms(2000)),
            answer(&ledger[3], t0 + ms(5)),
        ];
        let audit = audit(&ledger, &callbacks, &[], Some(0));
        assert_eq!(audit.order_violations, 1);
        assert_eq!(audit.violations.len(), 1);
        let violation = &audit.violations[0];
        assert_eq!(violation.conversation, "c");
        assert_eq!((violation.earlier.seq, violation.later.seq), (1, 2));
        assert_eq!(violation.gap, Duration::from_millis(1500));
        assert!(audit.to_string().contains("c: #1 (c-1"), "{audit}");
        assert!(!audit.is_clean());
    }
}
