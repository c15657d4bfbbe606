//! Worker faults under steady load: workers killed like `kill -9` at random, again and again, and
//! the worker count scaled from 1 to 4 and back. Every acknowledged event must be answered
//! exactly once (or with the same body again), in conversation order, with nothing lost; the
//! time the survivors take to pick up a dead worker's partitions is measured.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use chrono::{DateTime, Utc};
use rand::Rng;
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{FakeSaltedCx, NatsServer};
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(15);
/// The default (2 s), pinned here so that the take-over times this test reports do not change
/// with the default; reported with the figures.
const ACK_WAIT: Duration = Duration::from_secs(2);
const PARTITIONS: u16 = 64;

async fn start_worker(nats: &str, fake: &FakeSaltedCx, logic: Arc<NonceLogic>) -> Result<Service> {
    let worker = stack::start_worker(nats, &fake.base_url(), logic, |c| {
        c.worker.ack_wait = ACK_WAIT;
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(worker)
}

/// For each kill instant: the longest wait, over the partitions that had an acknowledged but
/// unanswered event at that instant, until that partition's next answer.
fn takeover_times(
    kills: &[DateTime<Utc>],
    ledger: &[faults::Posted],
    callbacks: &[testkit::Callback],
) -> Vec<Duration> {
    use std::collections::HashMap;
    let mut answered: HashMap<&str, DateTime<Utc>> = HashMap::new();
    let mut partition_answers: HashMap<u16, Vec<DateTime<Utc>>> = HashMap::new();
    for callback in callbacks.iter().filter(|c| c.is_success()) {
        let partition = shared::topology::partition_of(&callback.conversation_pid, PARTITIONS);
        partition_answers
            .entry(partition)
            .or_default()
            .push(callback.received_at);
        if let Some(id) = callback.request_id.as_deref() {
            answered.entry(id).or_insert(callback.received_at);
        }
    }
    kills
        .iter()
        .map(|&kill| {
            let busy: std::collections::HashSet<u16> = ledger
                .iter()
                .filter(|p| p.acknowledged_at.is_some_and(|at| at < kill))
                .filter(|p| {
                    answered
                        .get(p.request_id.as_str())
                        .is_some_and(|at| *at > kill)
                })
                .map(|p| p.partition(PARTITIONS))
                .collect();
            busy.iter()
                .filter_map(|partition| {
                    let next = partition_answers
                        .get(partition)?
                        .iter()
                        .filter(|at| **at > kill)
                        .min()?;
                    (*next - kill).to_std().ok()
                })
                .max()
                .unwrap_or_default()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_killed_at_random_under_load_lose_nothing_and_keep_conversation_order() -> Result<()>
{
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // Callbacks take a while, so every kill lands on events in flight.
    fake.set_delay(Duration::from_millis(150));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(start_worker(&nats.url(), &fake, logic.clone()).await?);
    }

    // The load runs until the kills are done (bounded: at most 2 minutes).
    let spec = LoadSpec::new("kill9", "FAULT_KILL9", 60, 1000)
        .pace(Duration::from_millis(400))
        .max_duration(Duration::from_secs(120));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&ingress.url()),
        spec,
        ledger.clone(),
    ));

    // Kill a random worker every ~2.5 s and start a replacement, seven times.
    let mut kills = Vec::new();
    for _ in 0..7 {
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let victim = rand::rng().random_range(0..workers.len());
        kills.push(Utc::now());
        workers.swap_remove(victim).kill().await;
        workers.push(start_worker(&nats.url(), &fake, logic.clone()).await?);
    }
    tokio::time::sleep(Duration::from_millis(2500)).await;
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
    let callbacks = fake.callbacks();
    let takeovers = takeover_times(&kills, &ledger, &callbacks);
    println!(
        "random kill -9 of workers ({} kills, ack_wait {ACK_WAIT:?}): {audit}; take-over per \
         kill {takeovers:?} (max {:?}); logic ran {} times",
        kills.len(),
        takeovers.iter().max().copied().unwrap_or_default(),
        logic.decisions(),
    );
    assert!(settled, "not settled: {audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.lost, 0, "{audit}");
    assert_eq!(audit.conflicting, 0, "{audit}");
    assert_eq!(audit.order_violations, 0, "{audit}");
    assert_eq!(audit.not_acknowledged, 0, "{audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_workers_from_one_to_four_and_back_under_load_loses_nothing() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_delay(Duration::from_millis(50));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let mut workers = vec![start_worker(&nats.url(), &fake, logic.clone()).await?];

    // The load runs until the scaling is done (bounded: at most 2 minutes).
    let spec = LoadSpec::new("scale", "FAULT_SCALE", 60, 1000)
        .pace(Duration::from_millis(300))
        .max_duration(Duration::from_secs(120));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&ingress.url()),
        spec,
        ledger.clone(),
    ));

    // Up: 1 -> 4, one new worker every 1.5 s.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        workers.push(start_worker(&nats.url(), &fake, logic.clone()).await?);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // Down: 4 -> 1, gracefully (as Kubernetes scales down: SIGTERM), oldest first.
    let mut stop_times = Vec::new();
    for _ in 0..3 {
        let worker = workers.remove(0);
        let started = Instant::now();
        worker.stop(Duration::from_secs(30)).await?;
        stop_times.push(started.elapsed());
        tokio::time::sleep(Duration::from_millis(1500)).await;
    }
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
    println!("scaling 1 -> 4 -> 1 under load: {audit}; graceful stops took {stop_times:?}");
    assert!(settled, "not settled: {audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(
        audit.repeated, 0,
        "graceful stops must not cause resends: {audit}"
    );
    assert_eq!(audit.not_acknowledged, 0, "{audit}");
    Ok(())
}
