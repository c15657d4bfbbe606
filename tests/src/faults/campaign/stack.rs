//! The pipeline a campaign round runs against: a 3-node NATS cluster, the real `ingress` and
//! `worker` binaries as processes (so a kill is a real `kill -9` and a stop a real SIGTERM),
//! the fake Salted CX and the nonce logic delegate; and the faults of [`super::schedule`]
//! applied to it.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Result;
use async_nats::jetstream;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::delegate::NonceDelegate;
use super::schedule::{Fault, Group};
use crate::faults::binaries::BinaryProcess;
use crate::stack::TOKEN;
use crate::{FakeSaltedCx, NatsCluster};

/// The event stream's name (the default `STREAM_NAME`).
pub const STREAM: &str = "YOURLOGIC_EVENTS";
/// Partitions (the default `PARTITIONS`).
pub const PARTITIONS: u16 = 64;
/// The trigger type of the load's events (the expiry counter is read under this label).
pub const TRIGGER: &str = "MESSAGE";
/// How long a process may take to become ready.
const READY: Duration = Duration::from_secs(60);
/// How long the RAFT groups may take to become current after a node is back.
const HEAL: Duration = Duration::from_secs(60);
/// How long a stopped worker may take to exit (its drain is bounded by `SHUTDOWN_TIMEOUT`).
const EXIT: Duration = Duration::from_secs(40);

/// A worker process and its name in the round's log.
struct Worker {
    name: String,
    process: BinaryProcess,
}

/// The running pipeline of one round.
pub struct CampaignStack {
    pub cluster: NatsCluster,
    pub fake: Arc<FakeSaltedCx>,
    pub ingress: BinaryProcess,
    pub js: jetstream::Context,
    delegate: NonceDelegate,
    workers: Mutex<Vec<Worker>>,
    started_workers: AtomicUsize,
    /// Events counted as expired by workers that are gone.
    expired_of_gone: AtomicU64,
    /// What the workers that are gone wrote, by name.
    gone_output: std::sync::Mutex<Vec<(String, String)>>,
    /// What happened, with the time since the stack started.
    timeline: std::sync::Mutex<Vec<(Duration, String)>>,
    started: Instant,
}

impl CampaignStack {
    /// Starts the cluster, the fake, the delegate, the ingress and `workers` workers, and waits
    /// until all are ready.
    pub async fn start(workers: usize) -> Result<CampaignStack> {
        let started = Instant::now();
        let cluster = NatsCluster::start(3).await?;
        let fake = Arc::new(FakeSaltedCx::start(TOKEN).await?);
        fake.set_delay(Duration::from_millis(20));
        let delegate = NonceDelegate::start().await?;
        let urls = cluster.urls();
        let mut ingress = BinaryProcess::spawn(
            "ingress",
            "INGRESS_ADDR",
            &[
                ("NATS_URL", &urls),
                ("SALTEDCX_TOKEN", TOKEN),
                ("STREAM_REPLICAS", "3"),
                ("RUST_LOG", "warn"),
            ],
        )?;
        ingress.wait_ready(READY).await?;
        let js = crate::faults::jetstream_for(&urls).await?;
        let stack = CampaignStack {
            cluster,
            fake,
            ingress,
            js,
            delegate,
            workers: Mutex::new(Vec::new()),
            started_workers: AtomicUsize::new(0),
            expired_of_gone: AtomicU64::new(0),
            gone_output: std::sync::Mutex::new(Vec::new()),
            timeline: std::sync::Mutex::new(Vec::new()),
            started,
        };
        for _ in 0..workers {
            let mut worker = stack.spawn_worker()?;
            worker.process.wait_ready(READY).await?;
            stack.workers.lock().await.push(worker);
        }
        Ok(stack)
    }

    fn spawn_worker(&self) -> Result<Worker> {
        let number = self.started_workers.fetch_add(1, Ordering::Relaxed) + 1;
        let urls = self.cluster.urls();
        let api = self.fake.base_url();
        let process = BinaryProcess::spawn(
            "worker",
            "WORKER_ADDR",
            &[
                ("NATS_URL", &urls),
                ("SALTEDCX_TOKEN", TOKEN),
                ("SALTEDCX_API_URL", &api),
                ("LOGIC", "http"),
                ("LOGIC_URL", self.delegate.url()),
                ("STREAM_REPLICAS", "3"),
                ("ACK_WAIT", "2s"),
                // Every delivery, start and acknowledgement, to reconstruct a failing round.
                ("RUST_LOG", "info,worker::intake=debug"),
            ],
        )?;
        let name = format!("w{number}");
        self.note(format!("{name} started (pid {})", process.pid()));
        Ok(Worker { name, process })
    }

    /// Records `what` in the round's timeline.
    pub fn note(&self, what: String) {
        let at = self.started.elapsed();
        self.timeline
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((at, what));
    }

    /// The timeline so far, one line per entry.
    pub fn timeline(&self) -> Vec<String> {
        let lines = self.timeline.lock().unwrap_or_else(|p| p.into_inner());
        lines
            .iter()
            .map(|(at, what)| format!("{:>7.2}s {what}", at.as_secs_f64()))
            .collect()
    }

    /// Applies `fault` and returns once it is over (see [`super::schedule`]).
    pub async fn apply(&self, fault: &Fault) -> Result<()> {
        self.note(format!("begin: {fault}"));
        match fault {
            Fault::NodeKill { node, down_for } => self.kill_node(*node, *down_for).await?,
            Fault::StepDown { group } => self.step_down(*group).await,
            Fault::WorkerKill {
                pick,
                replace_after,
            } => {
                if let Some(worker) = self.take_worker(*pick).await {
                    self.retire(worker, true).await;
                    tokio::time::sleep(*replace_after).await;
                    self.add_worker().await?;
                }
            }
            Fault::WorkerStop {
                pick,
                replace_after,
            } => {
                if let Some(worker) = self.take_worker(*pick).await {
                    self.retire(worker, false).await;
                    tokio::time::sleep(*replace_after).await;
                    self.add_worker().await?;
                }
            }
            Fault::Scale { to, hold } => self.scale(*to, *hold).await?,
        }
        self.note(format!("end: {fault}"));
        Ok(())
    }

    async fn kill_node(&self, node: usize, down_for: Duration) -> Result<()> {
        self.cluster.kill(node);
        self.note(format!("n{} killed", node + 1));
        tokio::time::sleep(down_for).await;
        self.cluster.restart(node).await?;
        self.note(format!("n{} restarted", node + 1));
        let healed = self.heal().await?;
        self.note(format!("every RAFT group current after {healed:?}"));
        Ok(())
    }

    /// Waits until every RAFT group of the pipeline has a leader and current replicas.
    pub async fn heal(&self) -> Result<Duration> {
        for node in 0..self.cluster.size() {
            if !self.cluster.is_running(node) {
                self.cluster.restart(node).await?;
            }
        }
        crate::faults::wait_raft_groups_current(&self.js, STREAM, PARTITIONS, HEAL).await
    }

    async fn step_down(&self, group: Group) {
        let subject = match group {
            Group::Events => format!("$JS.API.STREAM.LEADER.STEPDOWN.{STREAM}"),
            Group::Answers => format!(
                "$JS.API.STREAM.LEADER.STEPDOWN.KV_{}",
                shared::topology::ANSWERS_BUCKET
            ),
            Group::Consumer(partition) => format!(
                "$JS.API.CONSUMER.LEADER.STEPDOWN.{STREAM}.{}",
                shared::topology::consumer_name(partition)
            ),
        };
        let answer = self.js.client().request(subject, "".into()).await;
        let outcome = match answer {
            Ok(reply) => String::from_utf8_lossy(&reply.payload).into_owned(),
            Err(err) => format!("failed: {err}"),
        };
        self.note(format!("{group} step-down: {outcome}"));
    }

    /// Removes the `pick`-th live worker (modulo their number) from the set.
    async fn take_worker(&self, pick: usize) -> Option<Worker> {
        let mut workers = self.workers.lock().await;
        if workers.is_empty() {
            self.note("no worker left to take".into());
            return None;
        }
        let index = pick % workers.len();
        Some(workers.remove(index))
    }

    /// Ends a worker: `kill -9`, or SIGTERM and its exit; its expiry count is read first.
    async fn retire(&self, mut worker: Worker, kill: bool) {
        let expired = expired_count(&worker.process).await;
        self.expired_of_gone.fetch_add(expired, Ordering::Relaxed);
        if kill {
            worker.process.kill();
            self.note(format!("{} killed (kill -9)", worker.name));
        } else {
            let stopped = match worker.process.terminate() {
                Ok(()) => worker.process.wait_exit(EXIT).await.map(|s| format!("{s}")),
                Err(err) => Err(err),
            };
            let outcome = stopped.unwrap_or_else(|err| format!("{err:#}"));
            self.note(format!("{} stopped (SIGTERM): {outcome}", worker.name));
        }
        let output = worker.process.output();
        self.gone_output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((worker.name, output));
    }

    async fn add_worker(&self) -> Result<()> {
        let worker = self.spawn_worker()?;
        self.workers.lock().await.push(worker);
        Ok(())
    }

    /// Scales up to `to` workers, waits until the new ones are ready, holds, then stops them.
    async fn scale(&self, to: usize, hold: Duration) -> Result<()> {
        let current = self.workers.lock().await.len();
        let mut added = Vec::new();
        for _ in current..to {
            added.push(self.spawn_worker()?);
        }
        for worker in &mut added {
            worker.process.wait_ready(READY).await?;
        }
        let names: Vec<String> = added.iter().map(|w| w.name.clone()).collect();
        self.note(format!("scaled from {current} to {to}: {names:?} ready"));
        tokio::time::sleep(hold).await;
        for worker in added {
            self.retire(worker, false).await;
        }
        Ok(())
    }

    /// Events counted as expired by every worker, gone or running.
    pub async fn expired_counted(&self) -> u64 {
        let mut total = self.expired_of_gone.load(Ordering::Relaxed);
        for worker in self.workers.lock().await.iter() {
            total += expired_count(&worker.process).await;
        }
        total
    }

    /// What every worker wrote (gone ones first) and the ingress, by name.
    pub async fn outputs(&self) -> Vec<(String, String)> {
        let mut all = self
            .gone_output
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for worker in self.workers.lock().await.iter() {
            all.push((worker.name.clone(), worker.process.output()));
        }
        all.push(("ingress".into(), self.ingress.output()));
        all
    }

    /// The log file of NATS node `i`.
    pub fn node_log(&self, i: usize) -> std::path::PathBuf {
        self.cluster.log_path(i).to_path_buf()
    }
}

async fn expired_count(process: &BinaryProcess) -> u64 {
    let counted = crate::faults::metric_at(
        &process.url(),
        "yourlogic_events_processed_total",
        &[("trigger", TRIGGER), ("outcome", "expired")],
    )
    .await;
    // A count is a small whole number.
    counted as u64
}
