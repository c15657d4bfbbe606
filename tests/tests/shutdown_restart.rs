//! Graceful shutdown and restarts: SIGTERM under load finishes what is in flight and loses
//! nothing (in-process, and the real binaries: exit code 0, within the grace period); the whole
//! stack (ingress, workers and NATS) stopped with events queued, or NATS killed right after
//! acknowledging, resumes from the durable stream and answers everything still in time.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use testkit::faults::binaries::BinaryProcess;
use testkit::faults::{self, Ledger, LoadSpec, NonceLogic};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{FakeSaltedCx, NatsOptions, NatsServer};
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(15);

async fn worker(nats: &str, fake: &FakeSaltedCx, logic: Arc<NonceLogic>) -> Result<Service> {
    let worker = stack::start_worker(nats, &fake.base_url(), logic, |c| {
        c.worker.ack_wait = Duration::from_secs(2);
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(worker)
}

async fn expired(service: &Service, trigger: &str) -> u64 {
    faults::metric_at(
        &service.url(),
        "yourlogic_events_processed_total",
        &[("trigger", trigger), ("outcome", "expired")],
    )
    .await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_stopped_gracefully_under_load_finishes_its_events_and_none_is_lost_or_redone()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // Slow callbacks: the stop lands while many events are in flight.
    fake.set_delay(Duration::from_millis(200));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let stopping = worker(&nats.url(), &fake, logic.clone()).await?;
    let survivor = worker(&nats.url(), &fake, logic.clone()).await?;

    let spec = LoadSpec::new("graceful", "GRACEFUL_STOP", 40, 30)
        .pace(Duration::from_millis(200))
        .max_duration(Duration::from_secs(12));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&ingress.url()),
        spec,
        ledger.clone(),
    ));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let in_flight = faults::metric_at(&stopping.url(), "yourlogic_worker_in_flight", &[]).await;
    let started = Instant::now();
    stopping.stop(Duration::from_secs(30)).await?;
    let stop_took = started.elapsed();

    let ledger = load.await??.snapshot();
    let (settled, audit) = faults::settle_and_audit(
        &fake,
        &ledger,
        &nats.jetstream().await?,
        &survivor.url(),
        "GRACEFUL_STOP",
        Duration::from_secs(30),
    )
    .await?;
    println!(
        "graceful worker stop with ~{in_flight} events in flight (both workers) took {stop_took:?}: \
         {audit}; logic ran {} times",
        logic.decisions()
    );
    assert!(settled, "{audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.expired, 0, "{audit}");
    // Finished, not abandoned: nothing was decided or sent twice.
    assert_eq!(audit.repeated, 0, "{audit}");
    assert_eq!(logic.decisions() as usize, audit.acknowledged, "{audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_exit_0_promptly_on_sigterm_under_load_and_lose_nothing() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_delay(Duration::from_millis(100));
    let url = nats.url();
    let api = fake.base_url();
    let common = [
        ("NATS_URL", url.as_str()),
        ("SALTEDCX_TOKEN", TOKEN),
        ("RUST_LOG", "info"),
    ];
    let mut ingress = BinaryProcess::spawn("ingress", "INGRESS_ADDR", &common)?;
    let mut worker_env = common.to_vec();
    worker_env.extend([("SALTEDCX_API_URL", api.as_str()), ("ACK_WAIT", "2s")]);
    let mut worker = BinaryProcess::spawn("worker", "WORKER_ADDR", &worker_env)?;
    ingress.wait_ready(READY).await?;
    worker.wait_ready(READY).await?;
    // An in-process worker survives both signals and finishes the queue.
    let survivor = stack::start_worker(&url, &api, NonceLogic::shared(), |c| {
        c.worker.ack_wait = Duration::from_secs(2);
    })
    .await?;
    stack::wait_ready(&survivor, READY).await?;

    // Short budgets: after the ingress is gone the load gives up its current events quickly
    // (they were never acknowledged, so nothing is owed for them).
    let spec = LoadSpec::new("sigterm", "SIGTERM_LOAD", 30, 60)
        .pace(Duration::from_millis(100))
        .budget(Duration::from_secs(8))
        .max_duration(Duration::from_secs(5));
    let ledger = Ledger::default();
    let load = tokio::spawn(faults::run_load(
        Poster::new(&ingress.url()),
        spec,
        ledger.clone(),
    ));

    tokio::time::sleep(Duration::from_millis(1500)).await;
    worker.terminate()?;
    let started = Instant::now();
    let worker_status = worker.wait_exit(Duration::from_secs(30)).await?;
    let worker_took = started.elapsed();
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let acknowledged_before = ledger.acknowledged();
    ingress.terminate()?;
    let started = Instant::now();
    let ingress_status = ingress.wait_exit(Duration::from_secs(30)).await?;
    let ingress_took = started.elapsed();

    let ledger = load.await??.snapshot();
    let (settled, audit) = faults::settle_and_audit(
        &fake,
        &ledger,
        &nats.jetstream().await?,
        &survivor.url(),
        "SIGTERM_LOAD",
        Duration::from_secs(30),
    )
    .await?;
    println!(
        "SIGTERM under load: worker exited {worker_status} after {worker_took:?}, ingress exited \
         {ingress_status} after {ingress_took:?} ({acknowledged_before} events acknowledged before \
         its signal): {audit}"
    );
    assert!(
        worker_status.success(),
        "worker: {worker_status}\n{}",
        worker.output()
    );
    assert!(
        ingress_status.success(),
        "ingress: {ingress_status}\n{}",
        ingress.output()
    );
    // Well inside Kubernetes' default 30 s grace period.
    assert!(worker_took < Duration::from_secs(25), "{worker_took:?}");
    assert!(ingress_took < Duration::from_secs(15), "{ingress_took:?}");
    assert!(settled, "{audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.expired, 0, "{audit}");
    assert!(audit.acknowledged >= acknowledged_before);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_stopping_everything_with_events_queued_a_restart_answers_them_all_in_order()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // Slow answers (8 events of a conversation take 8 s): most of the load is still queued when
    // everything stops, however fast the machine posts it.
    fake.set_delay(Duration::from_secs(1));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic = NonceLogic::shared();
    let first_worker = worker(&nats.url(), &fake, logic.clone()).await?;
    let spec = LoadSpec::new("restart", "FULL_RESTART", 30, 8)
        .pace(Duration::ZERO)
        .budget(Duration::from_secs(45));
    let ledger = faults::run_load(Poster::new(&ingress.url()), spec, Ledger::default())
        .await?
        .snapshot();
    let answered_before = fake.successful_callbacks().len();

    // Everything stops: worker and ingress gracefully, then NATS (SIGTERM). The only worker
    // hands back its unstarted events and stops at once (its shutdown timeout is 20 s).
    let stopping = Instant::now();
    first_worker.stop(Duration::from_secs(30)).await?;
    let worker_stop = stopping.elapsed();
    ingress.stop(Duration::from_secs(15)).await?;
    nats.stop().await?;
    let queued = ledger
        .len()
        .saturating_sub(fake.successful_callbacks().len());
    let down = Instant::now();
    nats.restart().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let second_worker = worker(&nats.url(), &fake, logic.clone()).await?;
    fake.set_delay(Duration::ZERO);
    let settled = faults::wait_settled(
        &fake,
        &ledger,
        Duration::from_secs(1),
        Duration::from_secs(45),
    )
    .await;
    let recovered = down.elapsed();
    let dead = faults::dead_letters(&nats.jetstream().await?).await?;
    let counted = expired(&second_worker, "FULL_RESTART").await;

    let audit = faults::audit(&ledger, &fake.callbacks(), &dead, Some(counted));
    println!(
        "full stop with {queued} events queued ({answered_before} answered before the stop, \
         worker stopped in {worker_stop:?}), restart: all settled {recovered:?} after NATS came \
         back: {audit}"
    );
    assert!(
        worker_stop < Duration::from_secs(10),
        "worker stop took {worker_stop:?}"
    );
    assert_eq!(
        audit.dead_lettered, 0,
        "events dead-lettered by the restart: {audit}"
    );
    assert!(queued > 0, "nothing was queued at the stop");
    assert!(settled, "{audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.expired, 0, "{audit}");
    assert_eq!(audit.answered, audit.acknowledged, "{audit}");
    Ok(())
}

/// Posts bursts to an ingress on `nats`, kills NATS with SIGKILL right after the last `202`,
/// restarts it and answers everything; returns the audit.
async fn kill_nats_right_after_acknowledging(
    nats: &NatsServer,
    trigger: &str,
) -> Result<faults::Audit> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let spec = LoadSpec::new(trigger, trigger, 50, 10)
        .pace(Duration::ZERO)
        .budget(Duration::from_secs(45));
    let ledger = faults::run_load(Poster::new(&ingress.url()), spec, Ledger::default())
        .await?
        .snapshot();
    nats.kill();
    nats.restart().await?;
    let worker = worker(&nats.url(), &fake, NonceLogic::shared()).await?;
    faults::wait_settled(
        &fake,
        &ledger,
        Duration::from_secs(1),
        Duration::from_secs(45),
    )
    .await;
    let dead = faults::dead_letters(&nats.jetstream().await?).await?;
    let counted = expired(&worker, trigger).await;
    Ok(faults::audit(
        &ledger,
        &fake.callbacks(),
        &dead,
        Some(counted),
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_events_survive_a_kill_9_of_a_single_nats_server() -> Result<()> {
    let nats = NatsServer::start().await?;
    let audit = kill_nats_right_after_acknowledging(&nats, "NATS_KILL9").await?;
    println!("kill -9 of the only NATS server right after the last 202: {audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.answered, audit.acknowledged, "{audit}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_sync_always_acknowledged_events_survive_a_kill_9_of_a_single_nats_server()
-> Result<()> {
    // `sync_interval: always` makes JetStream fsync every write before acknowledging it: the
    // setting for single-node deployments that must also survive power loss (see
    // docs/reliability.md). Here only the process dies, so this shows it works, not the fsync.
    let dir = tempfile::tempdir()?;
    let config = dir.path().join("nats.conf");
    std::fs::write(&config, "jetstream {\n  sync_interval: always\n}\n")?;
    let nats = NatsServer::start_with(NatsOptions {
        monitoring: false,
        extra_args: vec!["-c".into(), config.display().to_string()],
        ..Default::default()
    })
    .await?;
    let audit = kill_nats_right_after_acknowledging(&nats, "NATS_KILL9_SYNC").await?;
    println!("kill -9 of the only NATS server (sync_interval: always): {audit}");
    assert!(audit.is_clean(), "{audit}");
    assert_eq!(audit.answered, audit.acknowledged, "{audit}");
    Ok(())
}
