//! Callback faults under load: a Salted CX endpoint that flaps (errors, 429, resets, hangs), one
//! that stays down, and one conversation whose callbacks hang. Retries happen only before the
//! deadline, nothing is sent after `expires`, no event is answered twice, and a hanging or
//! flooded conversation holds back no other conversation, not even one of its partition: the
//! others are answered while its callbacks cannot be, whatever the machine's speed (the
//! latencies are printed).

use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flooded_conversation_keeps_only_its_quota_and_cannot_starve_its_partition() -> Result<()>
{
    const FLOOD: usize = 40;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // The flooded conversation's callbacks hang until its neighbours are answered: its events
    // pile up at the worker and none of them finishes meanwhile.
    fake.set_behaviour_for("flood", Behaviour::always(Reply::Hang));
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    // A small in-flight window per partition, which the flood alone could fill.
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), NonceLogic::shared(), |c| {
        c.worker.in_flight_per_partition = 16;
        c.worker.max_held_per_conversation = 4;
        c.worker.callback_timeout = Duration::from_secs(1);
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    let partition = shared::topology::partition_of("flood", PARTITIONS);

    let mut flood = Vec::new();
    for n in 0..FLOOD {
        let event = EventBuilder::message("flood", &format!("message {n}"))
            .expires_in(Duration::from_secs(60))
            .build();
        assert_eq!(poster.post(&event).await?.0, 202);
        flood.push(event["requestId"].as_str().unwrap_or_default().to_string());
    }
    // Conversations of the same partition, posted while the flood is being worked through.
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
    // The neighbours are answered although no event of the flood can finish.
    let mut waits = Vec::new();
    for (id, at) in &others {
        let answered = fake.wait_for_request(id, Duration::from_secs(60)).await?;
        waits.push((answered.received_at - *at).to_std().unwrap_or_default());
    }
    assert!(
        flood.iter().all(|id| fake.callbacks_for(id).is_empty()),
        "a hanging callback was answered"
    );
    // Then the flood's callbacks go through (150 ms each), and it is answered in order.
    fake.set_behaviour_for(
        "flood",
        Behaviour::default().with_delay(Duration::from_millis(150)),
    );
    let mut firsts = Vec::new();
    for id in &flood {
        firsts.push(
            fake.wait_for_request(id, Duration::from_secs(60))
                .await?
                .received_at,
        );
    }
    let deferred = faults::metric_at(&worker.url(), "yourlogic_deferred_events_total", &[]).await;
    println!(
        "a flood of {FLOOD} events in one conversation (callbacks hanging, quota 4): its \
         neighbours in partition {partition} answered after at most {:?}; {deferred} events \
         parked beyond the quota",
        faults::quantile(&waits, 1.0)
    );
    assert!(
        firsts.windows(2).all(|pair| pair[0] <= pair[1]),
        "flood answered out of order"
    );
    assert!(deferred > 0.0, "the quota never deferred anything");
    Ok(())
}
