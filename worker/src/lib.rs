//! The worker: consumes events from NATS JetStream strictly in order per conversation, runs the
//! conversation [`logic::Logic`], and delivers each answer to Salted CX before its deadline.
//!
//! `main.rs` parses the configuration and calls [`Worker::build`] then [`Worker::run`]; tests and
//! users embedding their own logic do the same in-process.

pub mod answers;
pub mod callback;
pub mod config;
pub mod consumer;
pub mod deadletter;
pub mod logic;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures::future::BoxFuture;
use shared::health::Readiness;
use shared::topology;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use config::LogicKind;
use logic::Logic;

/// Start-up failed: the message says which setting or resource is the problem.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Nats(#[from] shared::nats::ConnectError),
    #[error("{0}")]
    Logic(String),
}

/// The logic selected by the configuration: the playbook (`PLAYBOOK`, else the built-in one),
/// the playbook with the generative step (`GENERATIVE_URL` and `GENERATIVE_MODEL` required),
/// echo, or the HTTP delegate (`LOGIC_URL` required). Errors say precisely what is wrong.
pub fn logic_from_config(config: &Config) -> Result<Arc<dyn Logic>, StartError> {
    let worker = &config.worker;
    match worker.logic {
        LogicKind::Playbook => logic::setup::playbook_logic(worker)
            .map(|logic| Arc::new(logic) as Arc<dyn Logic>)
            .map_err(|err| StartError::Logic(err.to_string())),
        LogicKind::Generative => logic::setup::generative_logic(worker)
            .map(|logic| Arc::new(logic) as Arc<dyn Logic>)
            .map_err(|err| StartError::Logic(err.to_string())),
        LogicKind::Echo => Ok(Arc::new(logic::echo::EchoLogic)),
        LogicKind::Http => {
            let url = worker.logic_url.as_deref().ok_or_else(|| {
                StartError::Logic(
                    "LOGIC=http needs LOGIC_URL (--logic-url), the URL of your logic service"
                        .into(),
                )
            })?;
            // The delegate must finish early enough for the callback to make the deadline.
            let margin = worker.deadline_margin + Duration::from_millis(100);
            let logic = logic::http::HttpLogic::new(url, worker.logic_timeout)
                .map_err(|err| StartError::Logic(err.to_string()))?
                .with_margin(margin);
            Ok(Arc::new(logic))
        }
    }
}

/// A bound, not yet consuming worker.
pub struct Worker {
    config: Arc<Config>,
    listener: TcpListener,
    client: async_nats::Client,
    logic: Arc<dyn Logic>,
    live: Arc<AtomicUsize>,
}

struct WorkerReadiness {
    client: async_nats::Client,
    live: Arc<AtomicUsize>,
    partitions: usize,
}

impl Readiness for WorkerReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !shared::nats::is_connected(&self.client) {
                return Err("not connected to NATS".into());
            }
            let live = self.live.load(Ordering::Relaxed);
            if live < self.partitions {
                return Err(format!(
                    "consuming {live} of {} partitions",
                    self.partitions
                ));
            }
            Ok(())
        })
    }
}

impl Worker {
    /// Binds the health listener and connects to NATS (in the background: the worker starts,
    /// and is not ready, while NATS is down).
    pub async fn build(config: Config, logic: Arc<dyn Logic>) -> Result<Self, StartError> {
        let listener = TcpListener::bind(config.worker.addr)
            .await
            .map_err(|source| StartError::Bind {
                addr: config.worker.addr,
                source,
            })?;
        let client = shared::nats::connect(&config.nats, "yourlogic-worker").await?;
        Ok(Self {
            config: Arc::new(config),
            listener,
            client,
            logic,
            live: Arc::new(AtomicUsize::new(0)),
        })
    }

    /// The health/metrics address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Consumes until `shutdown` resolves; then stops taking events, finishes the ones in
    /// progress (bounded by the shutdown timeout), hands back unstarted ones and drains NATS.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        shared::telemetry::register(shared::telemetry::Service::Worker);
        let config = self.config.clone();
        let stop = CancellationToken::new();
        let readiness = Arc::new(WorkerReadiness {
            client: self.client.clone(),
            live: self.live.clone(),
            partitions: usize::from(config.topology.partitions),
        });
        // Every task lives in this set, so dropping `run` (an aborted task in tests) stops them
        // all, like a killed process.
        let mut tasks = tokio::task::JoinSet::new();
        let health = axum::serve(self.listener, shared::health::routes(readiness))
            .with_graceful_shutdown(stop.clone().cancelled_owned());
        tasks.spawn(async move {
            if let Err(err) = health.await {
                tracing::error!(error = %err, "health server failed");
            }
        });
        let js = jetstream::new(self.client.clone());
        tasks.spawn(shared::queue::monitor(
            js.clone(),
            config.topology.clone(),
            config.worker.queue_stats_interval,
        ));
        let consuming = consume(
            js,
            config.clone(),
            self.logic.clone(),
            self.live.clone(),
            stop.clone(),
        );
        tokio::pin!(consuming);
        tracing::info!(partitions = config.topology.partitions, "worker started");

        tokio::select! {
            () = shutdown => {}
            () = &mut consuming => {}
        }
        tracing::info!("stopping: finishing in-flight events");
        stop.cancel();
        let timeout = config.worker.shutdown_timeout;
        if tokio::time::timeout(timeout, consuming).await.is_err() {
            tracing::warn!(
                ?timeout,
                "in-flight events did not finish in time; they will be redelivered"
            );
        }
        tasks.abort_all();
        if tokio::time::timeout(Duration::from_secs(5), self.client.drain())
            .await
            .is_err()
        {
            tracing::warn!("NATS drain timed out");
        }
        tracing::info!("worker stopped");
        Ok(())
    }
}

/// Sets up the topology (retrying while NATS is unavailable), then runs one loop per partition
/// until `stop` is cancelled and every loop has finished its current event.
async fn consume(
    js: jetstream::Context,
    config: Arc<Config>,
    logic: Arc<dyn Logic>,
    live: Arc<AtomicUsize>,
    stop: CancellationToken,
) {
    let mut pause = Duration::from_millis(200);
    let answers = loop {
        let setup = async {
            topology::ensure_event_stream(&js, &config.topology).await?;
            topology::ensure_dead_letter_stream(&js, config.topology.stream_replicas).await?;
            topology::ensure_answers_bucket(&js, &config.topology).await
        };
        match setup.await {
            Ok(store) => break answers::Answers::new(store, js.client()),
            Err(err) => {
                tracing::warn!(error = %err, "NATS topology not ready; retrying");
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        }
    };
    let worker = &config.worker;
    let processor = Arc::new(process::Processor {
        js: js.clone(),
        answers,
        deliverer: callback::Deliverer::new(
            worker.api_url.clone(),
            config.token.saltedcx_token.signing().clone(),
            worker.callback_timeout,
            worker.deadline_margin,
        ),
        logic,
        max_deliveries: worker.max_deliveries,
        ack_wait: worker.ack_wait,
        answers_ttl: config.topology.answers_ttl,
    });
    let mut loops = tokio::task::JoinSet::new();
    for partition in 0..config.topology.partitions {
        loops.spawn(consumer::run_partition(
            js.clone(),
            config.topology.clone(),
            worker.ack_wait,
            processor.clone(),
            partition,
            stop.clone(),
            live.clone(),
        ));
    }
    while loops.join_next().await.is_some() {}
}
