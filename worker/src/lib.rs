//! The worker: consumes events from NATS JetStream strictly in order per conversation, runs the
//! conversation [`logic::Logic`], and delivers each answer to Salted CX before its deadline.
//!
//! `main.rs` parses the configuration and calls [`Worker::build`] then [`Worker::run`]; tests and
//! users embedding their own logic do the same in-process.

pub mod admin;
pub mod answers;
pub mod callback;
pub mod config;
pub mod deadletter;
pub mod intake;
pub mod logic;
pub mod process;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream;
use futures::future::BoxFuture;
use shared::health::Readiness;
use shared::retry::{Backoff, Failure, GaveUp, Limits, retry};
use shared::topology::{self, ConsumerSettings, Layout};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
use config::LogicKind;
use intake::membership::Membership;
use intake::{Intake, IntakeError, IntakeSettings, IntakeStatus};
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
    #[error("cannot build the callback client: {0}")]
    Callback(#[from] reqwest::Error),
}

/// The worker could not go on: it stops, and the process exits with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the NATS topology does not match this worker's configuration: {0}")]
    Topology(#[source] topology::TopologyError),
    #[error("cannot join the worker membership: {0}")]
    Membership(#[source] async_nats::SubscribeError),
    #[error(transparent)]
    Intake(#[from] IntakeError),
}

/// The logic selected by the configuration: the playbook (`PLAYBOOK`, else the built-in one),
/// the playbook with the generative step (`GENERATIVE_URL` and `GENERATIVE_MODEL` required),
/// echo, or the HTTP delegate (`LOGIC_URL` required). Errors say precisely what is wrong.
pub fn logic_from_config(config: &Config) -> Result<Arc<dyn Logic>, StartError> {
    logic_from_settings(&config.worker)
}

/// [`logic_from_config`] from the worker settings alone (for commands that need no token and
/// no NATS, such as `worker decide`).
pub fn logic_from_settings(worker: &config::WorkerArgs) -> Result<Arc<dyn Logic>, StartError> {
    load_logic(worker).map(|loaded| loaded.logic)
}

/// A logic built from the settings, and what it is.
pub struct LoadedLogic {
    pub logic: Arc<dyn Logic>,
    /// One line for the start-up log: which logic and, for the playbook-based ones, which
    /// playbook (the file, or the built-in one) with a summary of what it holds. URLs are shown
    /// without credentials.
    pub description: String,
}

/// [`logic_from_settings`], with the description the service logs when it starts.
pub fn load_logic(worker: &config::WorkerArgs) -> Result<LoadedLogic, StartError> {
    let playbook = || match &worker.playbook {
        Some(path) => format!("playbook {}", path.display()),
        None => "the built-in playbook (worker/playbooks/default.toml)".to_string(),
    };
    let setup = |err: logic::setup::SetupError| StartError::Logic(err.to_string());
    match worker.logic {
        LogicKind::Playbook => {
            let logic = logic::setup::playbook_logic(worker).map_err(setup)?;
            let description = format!("{}: {}", playbook(), logic.playbook().summary());
            Ok(LoadedLogic {
                logic: Arc::new(logic),
                description,
            })
        }
        LogicKind::Generative => {
            let logic = logic::setup::generative_logic(worker).map_err(setup)?;
            let generative = &worker.generative;
            let answers = match generative.answers {
                logic::generative::AnswerScope::All => "every message at the auto-answer step",
                logic::generative::AnswerScope::Unmatched => "the messages it does not understand",
            };
            let description = format!(
                "{} with the generative step: model {} at {} answers {answers}",
                playbook(),
                generative.model.as_deref().unwrap_or_default(),
                shared::secret::redact_url(generative.url.as_deref().unwrap_or_default()),
            );
            Ok(LoadedLogic {
                logic: Arc::new(logic),
                description,
            })
        }
        LogicKind::Echo => Ok(LoadedLogic {
            logic: Arc::new(logic::echo::EchoLogic),
            description: "echo: every customer message is sent back".into(),
        }),
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
            Ok(LoadedLogic {
                logic: Arc::new(logic),
                description: format!(
                    "the HTTP delegate at {} (at most {:?} per event)",
                    shared::secret::redact_url(url),
                    worker.logic_timeout
                ),
            })
        }
    }
}

/// How long a partition stays with a worker that stopped pulling (killed, frozen, cut off)
/// before NATS gives it to another.
const PIN_TTL: Duration = Duration::from_secs(2);
/// How long a pull request stays open; it renews the pin, so it is well below [`PIN_TTL`].
const PULL_EXPIRES: Duration = Duration::from_secs(1);
/// Most events asked for in one pull request.
const PULL_BATCH: u32 = 64;
/// Longest wait for one JetStream API call of the intake. During a leader election calls time
/// out; short attempts, retried, notice the new leader sooner.
const API_TIMEOUT: Duration = Duration::from_secs(2);

/// A bound, not yet consuming worker.
pub struct Worker {
    config: Arc<Config>,
    listener: TcpListener,
    client: async_nats::Client,
    logic: Arc<dyn Logic>,
    deliverer: callback::Deliverer,
    status: Arc<IntakeStatus>,
}

struct WorkerReadiness {
    client: async_nats::Client,
    status: Arc<IntakeStatus>,
}

impl Readiness for WorkerReadiness {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !shared::nats::is_connected(&self.client) {
                return Err("not connected to NATS".into());
            }
            self.status.check()
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
        let worker = &config.worker;
        let deliverer = callback::Deliverer::new(
            worker.api_url.clone(),
            config.token.saltedcx_token.signing().clone(),
            worker.callback_timeout,
            worker.deadline_margin,
            worker.callback_max_attempts,
        )?;
        if worker.max_budget >= config.answers.answers_ttl {
            tracing::warn!(
                max_budget = ?worker.max_budget,
                answers_ttl = ?config.answers.answers_ttl,
                "MAX_BUDGET should be below ANSWERS_TTL: an answer record could expire while its \
                 event is still worked on"
            );
        }
        let client = shared::nats::connect(&config.nats, "yourlogic-worker").await?;
        Ok(Self {
            config: Arc::new(config),
            listener,
            client,
            logic,
            deliverer,
            status: Arc::new(IntakeStatus::default()),
        })
    }

    /// The health/metrics address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Consumes until `shutdown` resolves; then gives its partitions up, hands back the events
    /// it has not started, finishes the ones in progress (bounded by the shutdown timeout) and
    /// flushes NATS. An error means the worker could not work (a topology that does not match
    /// its configuration, a NATS connection closed for good): it stopped without being asked.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), RunError> {
        shared::telemetry::register(shared::telemetry::Service::Worker);
        let config = self.config.clone();
        let stop = CancellationToken::new();
        let readiness = Arc::new(WorkerReadiness {
            client: self.client.clone(),
            status: self.status.clone(),
        });
        // Every task lives in this set, so dropping `run` (an aborted task in tests) stops them
        // all, like a killed process.
        let mut tasks = tokio::task::JoinSet::new();
        // The same hardened server as the ingress's (header and idle timeouts, a connection
        // cap): the port is reachable by whatever can reach the pod.
        tasks.spawn(shared::server::serve(
            self.listener,
            shared::health::routes(readiness),
            shared::server::Limits::admin(),
            stop.clone().cancelled_owned(),
        ));
        let mut js = jetstream::new(self.client.clone());
        js.set_timeout(API_TIMEOUT);
        tasks.spawn(shared::queue::monitor(
            js.clone(),
            config.topology.clone(),
            config.worker.queue_stats_interval,
        ));
        let consuming = consume(
            js,
            self.client.clone(),
            config.clone(),
            self.logic.clone(),
            self.deliverer,
            self.status.clone(),
            stop.clone(),
        );
        let mut consuming = std::pin::pin!(consuming);
        tracing::info!(
            partitions = config.topology.partitions,
            shards = config.topology.shards,
            "worker started"
        );

        let failed = tokio::select! {
            () = shutdown => None,
            // Consuming ends by itself only when it cannot go on.
            result = &mut consuming => Some(result),
        };
        let result = match failed {
            Some(result) => {
                stop.cancel();
                result
            }
            None => {
                tracing::info!("stopping: handing back partitions and finishing in-flight events");
                stop.cancel();
                // The intake bounds its own hand-back by the shutdown timeout; this is only a
                // guard.
                let guard = config.worker.shutdown_timeout + Duration::from_secs(5);
                tokio::time::timeout(guard, consuming)
                    .await
                    .unwrap_or_else(|_| {
                        tracing::warn!("the intake did not stop in time");
                        Ok(())
                    })
            }
        };
        tasks.abort_all();
        if tokio::time::timeout(Duration::from_secs(5), self.client.drain())
            .await
            .is_err()
        {
            tracing::warn!("NATS drain timed out");
        }
        match &result {
            Ok(()) => tracing::info!("worker stopped"),
            Err(err) => tracing::error!(error = %err, "worker stopped: it cannot work"),
        }
        result
    }
}

/// Sets up the topology (retrying while NATS is unavailable), joins the membership and runs the
/// intake until `stop` is cancelled and it has handed everything back. Returns early, with the
/// error, when the worker cannot work.
async fn consume(
    js: jetstream::Context,
    client: async_nats::Client,
    config: Arc<Config>,
    logic: Arc<dyn Logic>,
    deliverer: callback::Deliverer,
    status: Arc<IntakeStatus>,
    stop: CancellationToken,
) -> Result<(), RunError> {
    let setup = retry(
        Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
        Limits::until_cancelled(&stop),
        |_| async {
            let setup = async {
                topology::ensure_event_streams(&js, &config.topology).await?;
                topology::ensure_dead_letter_stream(&js, config.topology.stream_replicas).await?;
                topology::ensure_answers_bucket(
                    &js,
                    &config.answers,
                    config.topology.stream_replicas,
                )
                .await
            };
            setup.await.map_err(|err| {
                if err.is_mismatch() {
                    // Another PARTITIONS or SHARDS than the streams': waiting cannot help.
                    Failure::Permanent(err)
                } else {
                    tracing::warn!(error = %err, "NATS topology not ready; retrying");
                    Failure::Transient(err)
                }
            })
        },
    )
    .await;
    let store = match setup {
        Ok(store) => store,
        Err(GaveUp::Permanent(err)) => return Err(RunError::Topology(err)),
        Err(_) => return Ok(()),
    };
    let tokens = config.token.saltedcx_token.clone();
    let (membership, announcing) = Membership::start(client.clone(), tokens, stop.clone())
        .await
        .map_err(RunError::Membership)?;
    let worker = &config.worker;
    let processor = Arc::new(process::Processor {
        js: js.clone(),
        answers: answers::Answers::new(store, client.clone()),
        deliverer,
        logic,
        max_deliveries: worker.max_deliveries,
        limits: process::EventLimits {
            max_body_bytes: worker.max_body_bytes,
            max_budget: worker.max_budget,
        },
    });
    let settings = IntakeSettings {
        consumer: ConsumerSettings {
            ack_wait: worker.ack_wait,
            max_in_flight: worker.in_flight_per_partition,
            pin_ttl: PIN_TTL,
        },
        batch: PULL_BATCH,
        pull_expires: PULL_EXPIRES,
        max_buffered_bytes: usize::try_from(worker.max_held_bytes).unwrap_or(usize::MAX),
        max_held_per_conversation: usize::try_from(worker.max_held_per_conversation)
            .unwrap_or(usize::MAX),
    };
    tracing::info!(worker = membership.id(), "joined the workers");
    let intake = Intake::new(
        client,
        js,
        Layout::new(&config.topology),
        settings,
        processor,
        membership.id().to_string(),
        status,
    );
    let running = async {
        let result = intake::run(
            intake,
            membership.view(),
            stop.clone(),
            worker.shutdown_timeout,
        )
        .await;
        // An intake that cannot go on stops the announcements too: the worker leaves.
        stop.cancel();
        result
    };
    let ((), result) = tokio::join!(announcing, running);
    Ok(result?)
}
