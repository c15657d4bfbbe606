//! NATS cluster faults under steady load: a 3-node JetStream cluster on loopback, the event
//! stream, its consumers, the answers bucket and the dead-letter stream with 3 replicas; nodes
//! are killed with SIGKILL (the stream leader first) and restarted while events flow.
//!
//! Checked for every event: a `202` means stored, so it is answered (or dead-lettered, or
//! counted as expired); events the ingress could not store got `503` (never 2xx) and were posted
//! again by the load; conversation order holds; no event gets two different answers.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream;
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{FakeSaltedCx, NatsCluster};
use tokio::time::Instant;

const STREAM: &str = "YOURLOGIC_EVENTS";
const READY: Duration = Duration::from_secs(30);
const ACK_WAIT: Duration = Duration::from_secs(2);

struct Stack {
    cluster: NatsCluster,
    fake: FakeSaltedCx,
    ingress: Service,
    workers: Vec<Service>,
    logic: Arc<NonceLogic>,
    js: jetstream::Context,
}

/// A 3-node cluster, an ingress and two workers, all with 3 replicas.
async fn start_stack() -> Result<Stack> {
    faults::init_test_logging();
    let cluster = NatsCluster::start(3).await?;
    let urls = cluster.urls();
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_delay(Duration::from_millis(20));
    let ingress = stack::start_ingress(&urls, |c| c.topology.stream_replicas = 3).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let mut workers = Vec::new();
    for _ in 0..2 {
        let worker = stack::start_worker(&urls, &fake.base_url(), logic.clone(), |c| {
            c.topology.stream_replicas = 3;
            c.worker.ack_wait = ACK_WAIT;
        })
        .await?;
        stack::wait_ready(&worker, READY).await?;
        workers.push(worker);
    }
    let js = faults::jetstream_for(&urls).await?;
    Ok(Stack {
        cluster,
        fake,
        ingress,
        workers,
        logic,
        js,
    })
}

/// Index (0-based) of the node currently leading the event stream.
async fn leader_index(stack: &Stack) -> Result<usize> {
    let found =
        testkit::poll::wait_for(Duration::from_secs(15), Duration::from_millis(100), || {
            let js = stack.js.clone();
            async move { faults::stream_leader(&js, STREAM).await.ok().flatten() }
        })
        .await
        .context("the event stream has no leader")?;
    (0..stack.cluster.size())
        .find(|&i| stack.cluster.node_name(i) == found)
        .with_context(|| format!("leader {found} is not a node of the cluster"))
}

/// Waits until every RAFT group of the pipeline is whole again (the restarted node caught up
/// everywhere) and returns how long that took.
async fn wait_replicas_current(stack: &Stack) -> Result<Duration> {
    faults::wait_raft_groups_current(&stack.js, STREAM, 64, Duration::from_secs(30)).await
}

/// Audits the run: settles, reads dead letters and the expiry counter, prints the figures.
async fn audit(stack: &Stack, ledger: &[faults::Posted], trigger: &str) -> Result<faults::Audit> {
    let (settled, audit) = faults::settle_and_audit(
        &stack.fake,
        ledger,
        &stack.js,
        &stack.workers[0].url(),
        trigger,
        Duration::from_secs(40),
    )
    .await?;
    anyhow::ensure!(settled, "not every acknowledged event settled: {audit}");
    Ok(audit)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_stream_leader_under_load_loses_no_acknowledged_event() -> Result<()> {
    let stack = start_stack().await?;
    let spec = LoadSpec::new("leader", "FAULT_LEADER", 40, 80)
        .pace(Duration::from_millis(300))
        .max_duration(Duration::from_secs(20));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&stack.ingress.url()),
        spec,
        ledger.clone(),
    ));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let leader = leader_index(&stack).await?;
    let before = ledger.acknowledged();
    let killed_at = chrono::Utc::now();
    stack.cluster.kill(leader);
    let killed = Instant::now();
    // The outage: the node stays dead for 5 s while the load goes on.
    tokio::time::sleep(Duration::from_secs(5)).await;
    stack.cluster.restart(leader).await?;
    let down_for = killed.elapsed();
    let new_leader = leader_index(&stack).await?;
    let ledger = load.await??.snapshot();
    let caught_up = wait_replicas_current(&stack).await?;
    let audit = audit(&stack, &ledger, "FAULT_LEADER").await?;
    let refused = faults::refusal_window(&ledger)
        .map(|(first, last)| {
            let offset = |t: chrono::DateTime<chrono::Utc>| (t - killed_at).num_milliseconds();
            format!(
                "from +{} ms to +{} ms after the kill",
                offset(first),
                offset(last)
            )
        })
        .unwrap_or_else(|| "never".into());
    let gap = faults::longest_answer_gap(
        &stack.fake.callbacks(),
        killed_at,
        killed_at + chrono::Duration::seconds(15),
    );
    println!(
        "stream leader {} killed (kill -9) after {before} acknowledged events, down {down_for:?}, \
         new leader {}, replicas current {caught_up:?} after the load; the ingress refused \
         (503) {refused}; longest time without any answer in the 15 s after the kill: {gap:?}: \
         {audit}; logic ran {} times",
        stack.cluster.node_name(leader),
        stack.cluster.node_name(new_leader),
        stack.logic.decisions()
    );
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.lost, 0, "{audit}");
    assert!(audit.acknowledged > before, "the load stalled: {audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_of_the_cluster_crashing_in_turn_under_load_loses_no_acknowledged_event()
-> Result<()> {
    let stack = start_stack().await?;
    let spec = LoadSpec::new("rolling", "FAULT_ROLLING", 40, 100)
        .pace(Duration::from_millis(300))
        .max_duration(Duration::from_secs(22));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&stack.ingress.url()),
        spec,
        ledger.clone(),
    ));

    let mut outages = Vec::new();
    for node in 0..stack.cluster.size() {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let was_leader = leader_index(&stack).await? == node;
        stack.cluster.kill(node);
        let killed = Instant::now();
        tokio::time::sleep(Duration::from_secs(3)).await;
        stack.cluster.restart(node).await?;
        let down = killed.elapsed();
        // The next node dies only once every group has caught up: one fault at a time (a group
        // that lost two of three replicas has no quorum and stalls until one is back).
        let healed = wait_replicas_current(&stack).await?;
        outages.push((stack.cluster.node_name(node), was_leader, down, healed));
    }
    let ledger = load.await??.snapshot();
    let audit = audit(&stack, &ledger, "FAULT_ROLLING").await?;
    println!(
        "rolling kill -9 of every node (node, was stream leader, down for, all groups current \
         after): {outages:?}: {audit}; \
         logic ran {} times",
        stack.logic.decisions()
    );
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.lost, 0, "{audit}");
    Ok(())
}
