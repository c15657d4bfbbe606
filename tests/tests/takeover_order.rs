//! Ownership changes with several events of each conversation in flight: conversations post
//! their events back to back (without waiting for answers), so each partition's owner holds many
//! of them, queued in per-conversation lanes behind slow callbacks. Then partitions move while
//! both the old and the new owner hold events of the same conversations: a second worker joins
//! (the first gives half its partitions up while still working on their events), then the first
//! is killed (`kill -9`: its events come back after the ack wait) or stopped gracefully (it
//! hands back what it has not started). Every conversation's answers must still come in
//! acceptance order, none lost, none answered twice differently; and repeated graceful stops
//! under load must never leave an event waiting for the ack wait.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
const CONVERSATIONS: usize = 40;
const EVENTS: usize = 15;

async fn start_worker(
    nats: &str,
    fake: &FakeSaltedCx,
    logic: Arc<NonceLogic>,
    ack_wait: Duration,
) -> Result<Service> {
    let worker = stack::start_worker(nats, &fake.base_url(), logic, |c| {
        c.worker.ack_wait = ack_wait;
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(worker)
}

/// How the first owner leaves.
#[derive(Debug, Clone, Copy)]
enum Leaving {
    Killed,
    Stopped,
}

async fn ownership_moves_while_both_workers_hold_events_of_the_same_conversations(
    leaving: Leaving,
) -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // Slow answers: each conversation's events queue in its lane.
    fake.set_delay(Duration::from_millis(25));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let poster = Poster::new(&ingress.url());
    let logic = NonceLogic::shared();
    let ack_wait = Duration::from_secs(2);
    let first = start_worker(&nats.url(), &fake, logic.clone(), ack_wait).await?;

    let total = CONVERSATIONS * EVENTS;
    let posting = tokio::spawn({
        let poster = poster.clone();
        async move {
            stack::post_conversations(
                &poster,
                "move",
                CONVERSATIONS,
                EVENTS,
                Duration::from_secs(60),
            )
            .await
        }
    });
    let answered = |n: usize| {
        let fake = &fake;
        testkit::wait_until(
            Duration::from_secs(60),
            Duration::from_millis(10),
            move || async move { fake.successful_callbacks().len() >= n },
        )
    };
    anyhow::ensure!(
        answered(total / 5).await,
        "the first worker did not start answering"
    );
    // A second worker joins: the first gives half its partitions up while its lanes still hold
    // events of their conversations; the second holds later events back until those are done.
    let second = start_worker(&nats.url(), &fake, logic.clone(), ack_wait).await?;
    anyhow::ensure!(
        answered(total / 2).await,
        "no progress after the second worker joined"
    );
    let left_at = tokio::time::Instant::now();
    match leaving {
        Leaving::Killed => first.kill().await,
        Leaving::Stopped => first.stop(Duration::from_secs(30)).await?,
    }
    let accepted = posting.await??;
    let all = testkit::wait_until(
        Duration::from_secs(60),
        Duration::from_millis(20),
        || async { stack::verdict(&accepted, &fake.callbacks()).lost == 0 },
    )
    .await;
    let verdict = stack::verdict(&accepted, &fake.callbacks());
    let takeovers =
        faults::metric_at(&second.url(), "yourlogic_partition_takeovers_total", &[]).await;
    println!(
        "{leaving:?}: all {total} answered {:?} after the first worker left; {verdict:?}; \
         partition takeovers counted in this process: {takeovers}",
        left_at.elapsed()
    );
    assert!(all, "{}", fake.summary());
    assert_eq!(verdict.lost, 0);
    assert_eq!(verdict.order_violations, 0, "{verdict:?}");
    assert_eq!(verdict.conflicting, 0, "{verdict:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_first_owner_while_both_hold_events_of_the_same_conversations_keeps_order()
-> Result<()> {
    ownership_moves_while_both_workers_hold_events_of_the_same_conversations(Leaving::Killed).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stopping_the_first_owner_while_both_hold_events_of_the_same_conversations_keeps_order()
-> Result<()> {
    ownership_moves_while_both_workers_hold_events_of_the_same_conversations(Leaving::Stopped).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_graceful_stops_under_load_never_leave_an_event_waiting_for_the_ack_wait()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_delay(Duration::from_millis(10));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    // A long ack wait: an event a stopping worker failed to hand back would wait for it, and
    // show as a latency of 20 s or more (answers otherwise take milliseconds; half of it leaves
    // a busy machine plenty of room).
    let ack_wait = Duration::from_secs(20);
    let mut workers = vec![
        start_worker(&nats.url(), &fake, logic.clone(), ack_wait).await?,
        start_worker(&nats.url(), &fake, logic.clone(), ack_wait).await?,
    ];
    // The load runs until the stops are done (bounded: at most 2 minutes).
    let spec = LoadSpec::new("sigterm", "FAULT_SIGTERM", 80, 2000)
        .pace(Duration::from_millis(200))
        .max_duration(Duration::from_secs(120));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&ingress.url()),
        spec,
        ledger.clone(),
    ));

    const STOPS: usize = 8;
    for _ in 0..STOPS {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // As Kubernetes replaces a pod: the new one starts, the old one gets SIGTERM.
        workers.push(start_worker(&nats.url(), &fake, logic.clone(), ack_wait).await?);
        let oldest = workers.remove(0);
        oldest.stop(Duration::from_secs(30)).await?;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    ledger.stop();
    let ledger = load.await??.snapshot();
    let (settled, audit) = faults::settle_and_audit(
        &fake,
        &ledger,
        &nats.jetstream().await?,
        &workers[0].url(),
        "OTHER",
        Duration::from_secs(40),
    )
    .await?;
    // The longest any acknowledged event waited for its first answer.
    let callbacks = fake.callbacks();
    let mut waits = Vec::new();
    for posted in ledger.iter().filter(|p| p.acknowledged()) {
        let first = callbacks
            .iter()
            .filter(|c| {
                c.is_success() && c.request_id.as_deref() == Some(posted.request_id.as_str())
            })
            .map(|c| c.received_at)
            .min();
        if let (Some(answered), Some(acknowledged)) = (first, posted.acknowledged_at) {
            waits.push((answered - acknowledged).to_std().unwrap_or_default());
        }
    }
    waits.sort_unstable();
    let longest = waits.last().copied().unwrap_or_default();
    println!(
        "{STOPS} graceful stops under load: {audit}; answer waits p50 {:?}, p99 {:?}, max {longest:?}",
        faults::quantile(&waits, 0.5),
        faults::quantile(&waits, 0.99)
    );
    assert!(settled, "not settled: {audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.not_acknowledged, 0, "{audit}");
    assert!(
        longest < ack_wait / 2,
        "an event waited {longest:?}: a stopping worker did not hand it back (ack wait {ack_wait:?})"
    );
    Ok(())
}
