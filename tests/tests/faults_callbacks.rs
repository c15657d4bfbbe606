//! Callback faults under load: a Salted CX endpoint that flaps (errors, 429, resets, hangs), one
//! that stays down, and one conversation whose callbacks hang. Retries happen only before the
//! deadline, nothing is sent after `expires`, no event is answered twice, and a hanging or
//! flooded conversation holds back no other conversation, not even one of its partition: the
//! others are answered while its callbacks (or decisions) cannot be, whatever the machine's
//! speed (the latencies are printed).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use shared::answer::{Action, Reply as Answer};
use shared::event::Event;
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};
use worker::logic::{Context, Logic, LogicError};

const READY: Duration = Duration::from_secs(15);
const PARTITIONS: u16 = 64;

/// NATS, an ingress and `workers` workers whose callback attempts time out after
/// `attempt_timeout`.
async fn stack_with(
    fake: &FakeSaltedCx,
    workers: usize,
    attempt_timeout: Duration,
) -> Result<(NatsServer, Service, Vec<Service>)> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let mut started = Vec::new();
    for _ in 0..workers {
        let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic.clone(), |c| {
            c.worker.callback_timeout = attempt_timeout;
        })
        .await?;
        stack::wait_ready(&worker, READY).await?;
        started.push(worker);
    }
    Ok((nats, ingress, started))
}

/// Every call (successful or not) received at or after the `expires` of its event.
fn calls_after_expiry(ledger: &[faults::Posted], fake: &FakeSaltedCx) -> usize {
    let expires: std::collections::HashMap<&str, DateTime<Utc>> = ledger
        .iter()
        .map(|p| (p.request_id.as_str(), p.expires))
        .collect();
    fake.callbacks()
        .iter()
        .filter(|c| {
            c.request_id
                .as_deref()
                .and_then(|id| expires.get(id))
                .is_some_and(|expires| c.received_at >= *expires)
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_salted_cx_gets_every_answer_once_within_the_deadline_under_load() -> Result<()>
{
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // Of every ten calls: 500, reset, 429, 503, a hang past the 500 ms attempt timeout, 502,
    // and four successes.
    let cycle = [
        Reply::status(500),
        Reply::ok(),
        Reply::Reset,
        Reply::status(429),
        Reply::ok(),
        Reply::status(503),
        Reply::Hang,
        Reply::ok(),
        Reply::status(502),
        Reply::ok(),
    ];
    fake.set_behaviour(Behaviour::script(
        cycle.iter().cycle().take(20_000).cloned(),
    ));
    let (nats, ingress, workers) = stack_with(&fake, 2, Duration::from_millis(500)).await?;
    let spec = LoadSpec::new("flap", "FLAPPING", 30, 15)
        .pace(Duration::from_millis(100))
        .budget(Duration::from_secs(10))
        .max_duration(Duration::from_secs(15));
    let ledger = faults::run_load(Poster::new(&ingress.url()), spec, Ledger::default())
        .await?
        .snapshot();
    let (settled, audit) = faults::settle_and_audit(
        &fake,
        &ledger,
        &nats.jetstream().await?,
        &workers[0].url(),
        "OTHER",
        Duration::from_secs(30),
    )
    .await?;
    let calls = fake.callbacks().len();
    let late = calls_after_expiry(&ledger, &fake);
    println!(
        "flapping endpoint: {calls} calls for {} events ({:.1} per event): {audit}; calls after \
         expires: {late}",
        audit.acknowledged,
        calls as f64 / audit.acknowledged.max(1) as f64
    );
    assert!(settled, "{audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.answered, audit.acknowledged, "{audit}");
    assert_eq!(
        audit.repeated, 0,
        "a success is never followed by another call: {audit}"
    );
    assert_eq!(late, 0);
    assert!(
        calls > audit.acknowledged * 3 / 2,
        "the faults were not exercised"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_salted_cx_that_keeps_failing_gets_no_call_after_expires_and_the_events_count_as_expired()
-> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour(Behaviour::always(Reply::status(503)));
    let (nats, ingress, workers) = stack_with(&fake, 1, Duration::from_millis(500)).await?;
    let spec = LoadSpec::new("down", "DOWN", 20, 3)
        .pace(Duration::ZERO)
        .budget(Duration::from_secs(2));
    let ledger = faults::run_load(Poster::new(&ingress.url()), spec, Ledger::default())
        .await?
        .snapshot();
    let counted = |url: String| async move {
        faults::metric_at(
            &url,
            "yourlogic_events_processed_total",
            &[("trigger", "OTHER"), ("outcome", "expired")],
        )
        .await
    };
    let all_counted =
        testkit::wait_until(Duration::from_secs(20), Duration::from_millis(100), || {
            let (url, n) = (workers[0].url(), ledger.len() as f64);
            async move { counted(url).await >= n }
        })
        .await;
    // The worker gives up at its cutoff, a little before `expires`; wait for `expires` itself.
    faults::wait_settled(
        &fake,
        &ledger,
        Duration::from_millis(100),
        Duration::from_secs(10),
    )
    .await;
    // Salted CX is back: nothing more arrives for the expired events.
    fake.set_behaviour(Behaviour::default());
    let next = EventBuilder::message("down-0", "back?").build();
    assert_eq!(Poster::new(&ingress.url()).post(&next).await?.0, 202);
    fake.wait_for_request(
        next["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;
    let dead = faults::dead_letters(&nats.jetstream().await?).await?;
    let total = counted(workers[0].url()).await as u64;
    let audit = faults::audit(&ledger, &fake.callbacks(), &dead, Some(total));
    let attempts = fake.callbacks().len() - 1;
    let late = calls_after_expiry(&ledger, &fake);
    println!(
        "endpoint down for the whole budget: {attempts} attempts for {} events, {late} after \
         expires: {audit}",
        ledger.len()
    );
    assert!(all_counted, "{audit}");
    assert_eq!(late, 0);
    assert_eq!(audit.answered, 0);
    assert_eq!(audit.expired, ledger.len());
    assert_eq!(audit.lost, 0, "{audit}");
    Ok(())
}

/// `count` conversation ids `{prefix}-{i}` whose partition is (or, with `same == false`, is
/// not) `partition`.
fn conversations_in(prefix: &str, partition: u16, same: bool, count: usize) -> Vec<String> {
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .filter(|c| (shared::topology::partition_of(c, PARTITIONS) == partition) == same)
        .take(count)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_conversation_holds_back_no_other_conversation_not_even_of_its_partition()
-> Result<()> {
    const ROUNDS: usize = 3;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // The slow conversation's callbacks hang (each attempt times out after 1 s and is retried)
    // until the round's other events are answered; then it is let through.
    let hanging = || Behaviour::always(Reply::Hang);
    fake.set_behaviour_for("hol-slow", hanging());
    let (_nats, ingress, _workers) = stack_with(&fake, 2, Duration::from_secs(1)).await?;
    let poster = Poster::new(&ingress.url());
    let partition = shared::topology::partition_of("hol-slow", PARTITIONS);
    let same = conversations_in("hol-same", partition, true, 4);
    let other = conversations_in("hol-other", partition, false, 8);

    let mut posted: Vec<(String, bool, DateTime<Utc>)> = Vec::new();
    for round in 0..ROUNDS {
        let slow = EventBuilder::message("hol-slow", &format!("round {round}"))
            .expires_in(Duration::from_secs(90))
            .build();
        let slow_id = slow["requestId"].as_str().unwrap_or_default().to_string();
        assert_eq!(poster.post(&slow).await?.0, 202);
        for (group, conversations) in [(true, &same), (false, &other)] {
            for conversation in conversations {
                let event = EventBuilder::message(conversation, &format!("round {round}")).build();
                let at = Utc::now();
                assert_eq!(poster.post(&event).await?.0, 202);
                posted.push((
                    event["requestId"].as_str().unwrap_or_default().to_string(),
                    group,
                    at,
                ));
            }
        }
        // Every other conversation is answered while the slow one's callback hangs ...
        for (id, _, _) in &posted {
            fake.wait_for_request(id, Duration::from_secs(60)).await?;
        }
        assert!(
            fake.callbacks_for(&slow_id).is_empty(),
            "the hanging callback was answered: {}",
            fake.summary()
        );
        // ... then it is let through, and the next round starts once it is answered, as Salted
        // CX would.
        fake.set_behaviour_for("hol-slow", Behaviour::default());
        fake.wait_for_request(&slow_id, Duration::from_secs(60))
            .await?;
        fake.set_behaviour_for("hol-slow", hanging());
    }
    let latency = |group: bool| -> Vec<Duration> {
        posted
            .iter()
            .filter(|(_, g, _)| *g == group)
            .filter_map(|(id, _, at)| {
                let callback = fake.callbacks_for(id).into_iter().next()?;
                (callback.received_at - *at).to_std().ok()
            })
            .collect()
    };
    let (same_latency, other_latency) = (latency(true), latency(false));
    println!(
        "head-of-line with one conversation's callbacks hanging (partition {partition}): same \
         partition p50 {:?} max {:?} ({} events); other partitions p50 {:?} max {:?} ({} \
         events)",
        faults::quantile(&same_latency, 0.5),
        faults::quantile(&same_latency, 1.0),
        same_latency.len(),
        faults::quantile(&other_latency, 0.5),
        faults::quantile(&other_latency, 1.0),
        other_latency.len(),
    );
    // Every one answered while the slow callback hung (checked above): each conversation has
    // its own lane.
    assert_eq!(same_latency.len(), same.len() * ROUNDS);
    assert_eq!(other_latency.len(), other.len() * ROUNDS);
    Ok(())
}

/// Answers like [`NonceLogic`], but holds every decision of the conversation `flood` until
/// the gate opens, and counts them.
struct GatedLogic {
    open: tokio::sync::watch::Receiver<bool>,
    flood_decisions: AtomicUsize,
}

#[async_trait::async_trait]
impl Logic for GatedLogic {
    async fn decide(&self, event: &Event, _context: &Context) -> Result<Answer, LogicError> {
        if event.conversation_pid() == Some("flood") {
            self.flood_decisions.fetch_add(1, Ordering::SeqCst);
            let mut open = self.open.clone();
            let _ = open.wait_for(|open| *open).await;
        }
        Ok(Answer::with_actions(vec![Action::message(format!(
            "{} {}",
            event.request_id,
            uuid::Uuid::new_v4().simple()
        ))]))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_in_one_conversation_cannot_fill_its_partitions_window_the_excess_skips_to_the_latest()
-> Result<()> {
    const FLOOD: usize = 60;
    const QUOTA: u32 = 2;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    // The flood's decisions hang until the gate opens: its first event cannot finish.
    let (gate, open) = tokio::sync::watch::channel(false);
    let logic = Arc::new(GatedLogic {
        open,
        flood_decisions: AtomicUsize::new(0),
    });
    // A window of 4 events per partition (NATS lets 16 be delivered and unacknowledged),
    // which the flood alone could fill many times over.
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic.clone(), |c| {
        c.worker.in_flight_per_partition = 4;
        c.worker.max_held_per_conversation = QUOTA;
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    let partition = shared::topology::partition_of("flood", PARTITIONS);

    let mut flood = Vec::new();
    for n in 0..FLOOD {
        let event = EventBuilder::message("flood", &format!("message {n}"))
            .expires_in(Duration::from_secs(90))
            .build();
        assert_eq!(poster.post(&event).await?.0, 202);
        flood.push(event["requestId"].as_str().unwrap_or_default().to_string());
    }
    // Conversations of the same partition, stored after the whole flood.
    let mut others = Vec::new();
    for conversation in conversations_in("neighbour", partition, true, 6) {
        let event = EventBuilder::message(&conversation, "hello").build();
        let at = Utc::now();
        assert_eq!(poster.post(&event).await?.0, 202);
        others.push((
            event["requestId"].as_str().unwrap_or_default().to_string(),
            at,
        ));
    }
    // The neighbours are answered while the flood's first event still cannot finish (a generous
    // bound; without the fast path they are never delivered while the gate is closed).
    let mut waits = Vec::new();
    for (id, at) in &others {
        let answered = fake.wait_for_request(id, Duration::from_secs(60)).await?;
        waits.push((answered.received_at - *at).to_std().unwrap_or_default());
    }
    let first = &flood[0];
    let latest = &flood[FLOOD - 1];
    assert!(
        fake.callbacks_for(first).is_empty() && fake.callbacks_for(latest).is_empty(),
        "the flood's first or latest event was answered while the gate was closed"
    );
    // What the flood holds at the worker is bounded by the quota (the running event and the
    // latest one), not by NATS's window.
    let held = poll_metric_at_most(
        &worker.url(),
        "yourlogic_worker_held_events",
        f64::from(QUOTA),
    )
    .await;
    assert!(
        held <= f64::from(QUOTA),
        "{held} events held, quota {QUOTA}"
    );

    gate.send_replace(true);
    let mut answers = Vec::new();
    for id in &flood {
        answers.push(fake.wait_for_request(id, Duration::from_secs(60)).await?);
    }
    let skipped: Vec<&testkit::Callback> = answers[1..FLOOD - 1].iter().collect();
    println!(
        "a flood of {FLOOD} events in one conversation (its decisions held, quota {QUOTA}, \
         window 4): its neighbours in partition {partition} answered after at most {:?}; {} \
         events skipped to the latest, {} decided",
        faults::quantile(&waits, 1.0),
        skipped.len(),
        logic.flood_decisions.load(Ordering::SeqCst)
    );
    // Every older event beyond the quota was answered at once, empty, skipping to the latest;
    // only the first (running) and the latest ran the logic, in order.
    for callback in &skipped {
        assert!(callback.actions().is_empty(), "{:?}", callback.body);
        assert_eq!(
            callback.body["control"]["skipToLatest"],
            serde_json::Value::Bool(true),
            "{:?}",
            callback.body
        );
    }
    assert_eq!(answers[0].actions().len(), 1);
    assert_eq!(answers[FLOOD - 1].actions().len(), 1);
    assert!(answers[0].received_at <= answers[FLOOD - 1].received_at);
    assert_eq!(
        logic.flood_decisions.load(Ordering::SeqCst),
        QUOTA as usize,
        "the logic ran for more of the flood than the quota lets wait"
    );
    for id in &flood {
        assert_eq!(
            fake.callbacks_for(id).len(),
            1,
            "{id} answered more than once"
        );
    }
    Ok(())
}

/// Polls a gauge of `url`'s metrics until it is at most `bound` (at most 30 s); returns it.
async fn poll_metric_at_most(url: &str, name: &str, bound: f64) -> f64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let value = faults::metric_at(url, name, &[]).await;
        if value <= bound || tokio::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
