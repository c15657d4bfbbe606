//! What the fault-injection tests share: bounded steady load with a ledger of every post
//! ([`load`]), the audit of that ledger against the callbacks, the dead letters and the expiry
//! counter ([`audit`]), the real `ingress` and `worker` binaries as child processes
//! ([`binaries`]), a logic whose answers differ on every computation ([`NonceLogic`]), and NATS
//! look-ups (stream leader, dead letters, events published around the ingress).
//!
//! The rule every fault test checks: an event that got `202` is answered (one successful
//! callback, or several with the same body), or explicitly dead-lettered, or counted as expired
//! by the worker because its deadline passed; nothing else. See `docs/reliability.md`.

pub mod audit;
pub mod binaries;
pub mod campaign;
pub mod cutter;
pub mod load;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_nats::jetstream;
use async_trait::async_trait;
use shared::answer::{Action, Reply};
use shared::event::Event;
use worker::logic::{Context, Logic, LogicError};

pub use audit::{
    AnsweredEvent, Audit, OrderViolation, audit, longest_answer_gap, refusal_window, wait_settled,
};
pub use load::{AnswerWatch, Ledger, LoadSpec, Posted, run_load, run_load_watching};

/// Answers every event with one message `"{requestId} {nonce}"`, the nonce fresh on every
/// computation: a redelivered event that were decided a second time (instead of resending the
/// stored answer) would show up as a callback with a different body.
#[derive(Debug, Default)]
pub struct NonceLogic {
    decisions: AtomicU64,
}

impl NonceLogic {
    /// A shareable instance.
    pub fn shared() -> Arc<NonceLogic> {
        Arc::new(NonceLogic::default())
    }

    /// How many times `decide` ran (across every worker using this instance).
    pub fn decisions(&self) -> u64 {
        self.decisions.load(Ordering::Relaxed)
    }
}

#[async_trait]
impl Logic for NonceLogic {
    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        self.decisions.fetch_add(1, Ordering::Relaxed);
        Ok(Reply::with_actions(vec![Action::message(format!(
            "{} {}",
            event.request_id,
            uuid::Uuid::new_v4().simple()
        ))]))
    }
}

/// Logs the in-process services to stderr when `RUST_LOG` is set (for diagnosing a failing
/// fault test: `RUST_LOG=worker=debug cargo nextest run ... --no-capture`); silent otherwise.
pub fn init_test_logging() {
    if std::env::var_os("RUST_LOG").is_some() {
        shared::telemetry::init_logging(shared::config::LogFormat::Text);
    }
}

/// The server name (`n1`, `n2`, ...) of the RAFT leader of `stream`, if it has one.
pub async fn stream_leader(js: &jetstream::Context, stream: &str) -> Result<Option<String>> {
    let mut stream = js
        .get_stream(stream)
        .await
        .with_context(|| format!("looking up stream {stream}"))?;
    let info = stream.info().await.context("stream info")?;
    Ok(info.cluster.as_ref().and_then(|c| c.leader.clone()))
}

/// Whether a RAFT group has a leader and every other replica is current and online.
fn group_current(cluster: Option<&async_nats::jetstream::stream::ClusterInfo>) -> bool {
    cluster
        .is_some_and(|c| c.leader.is_some() && c.replicas.iter().all(|r| r.current && !r.offline))
}

/// Waits (at most `timeout`) until every RAFT group of the pipeline has a leader and all its
/// replicas are current: the event stream and each of its `partitions` consumers, the answers
/// bucket and the dead-letter stream. Returns how long that took. A cluster test injects its
/// next fault only then, so that no group ever loses two replicas at once.
pub async fn wait_raft_groups_current(
    js: &jetstream::Context,
    stream: &str,
    partitions: u16,
    timeout: Duration,
) -> Result<Duration> {
    let started = tokio::time::Instant::now();
    let streams = [
        stream.to_string(),
        format!("KV_{}", shared::topology::ANSWERS_BUCKET),
        shared::topology::DEAD_LETTER_STREAM.to_string(),
    ];
    let healthy = crate::poll::wait_until(timeout, Duration::from_millis(250), || {
        let js = js.clone();
        let streams = streams.clone();
        async move {
            for name in &streams {
                let Ok(mut handle) = js.get_stream(name).await else {
                    return false;
                };
                match handle.info().await {
                    Ok(info) if group_current(info.cluster.as_ref()) => {}
                    _ => return false,
                }
            }
            let Ok(events) = js.get_stream(&streams[0]).await else {
                return false;
            };
            for partition in 0..partitions {
                let name = shared::topology::consumer_name(partition);
                match events.consumer_info(&name).await {
                    Ok(info) if group_current(info.cluster.as_ref()) => {}
                    _ => return false,
                }
            }
            true
        }
    })
    .await;
    anyhow::ensure!(
        healthy,
        "the pipeline's RAFT groups did not all become current within {timeout:?}"
    );
    Ok(started.elapsed())
}

/// One event in the dead-letter stream.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// `Yl-Request-Id` of the original event.
    pub request_id: String,
    /// `Yl-Error-Kind`: the `reason` label (`logic_error`, ...).
    pub reason: String,
    /// `Yl-Error`: the error message.
    pub error: String,
    /// The original event body.
    pub payload: bytes::Bytes,
}

/// Every message in the dead-letter stream (empty if it does not exist yet).
pub async fn dead_letters(js: &jetstream::Context) -> Result<Vec<DeadLetter>> {
    let Ok(mut stream) = js.get_stream(shared::topology::DEAD_LETTER_STREAM).await else {
        return Ok(Vec::new());
    };
    let state = stream
        .info()
        .await
        .context("dead-letter stream info")?
        .state
        .clone();
    let mut letters = Vec::new();
    if state.messages == 0 {
        return Ok(letters);
    }
    for sequence in state.first_sequence..=state.last_sequence {
        let Ok(message) = stream.get_raw_message(sequence).await else {
            continue; // deleted
        };
        let header = |name: &str| {
            message
                .headers
                .get(name)
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        };
        letters.push(DeadLetter {
            request_id: header(shared::envelope::REQUEST_ID),
            reason: header(worker::deadletter::REASON),
            error: header(worker::deadletter::ERROR),
            payload: message.payload.clone(),
        });
    }
    Ok(letters)
}

/// A JetStream context on a client that knows every server in `urls` (comma-separated), with
/// a short request timeout so look-ups during an outage fail fast.
pub async fn jetstream_for(urls: &str) -> Result<jetstream::Context> {
    let addrs = urls
        .split(',')
        .map(|u| u.parse::<async_nats::ServerAddr>())
        .collect::<Result<Vec<_>, _>>()
        .context("parsing NATS urls")?;
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(2))
        .connect(addrs)
        .await
        .context("connecting to NATS")?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(3));
    Ok(js)
}

/// The sum of the samples of `name` whose labels include every pair of `labels`, read from a
/// `/metrics` page at `url`; 0 if the page cannot be read.
/// Waits (up to `timeout`, with a 1 s grace) until every event acknowledged in `ledger` has
/// settled, then audits the run against the fake's callbacks, the dead letters in `js` and the
/// events the worker at `worker_url` counted as expired for `trigger`. Returns whether every
/// event settled, and the audit.
pub async fn settle_and_audit(
    fake: &crate::FakeSaltedCx,
    ledger: &[Posted],
    js: &jetstream::Context,
    worker_url: &str,
    trigger: &str,
    timeout: Duration,
) -> Result<(bool, Audit)> {
    let settled = wait_settled(fake, ledger, Duration::from_secs(1), timeout).await;
    let dead = dead_letters(js).await?;
    let expired = metric_at(
        worker_url,
        "yourlogic_events_processed_total",
        &[("trigger", trigger), ("outcome", "expired")],
    )
    .await;
    let audit = audit(ledger, &fake.callbacks(), &dead, Some(expired as u64));
    Ok((settled, audit))
}

pub async fn metric_at(url: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    let page = match reqwest::get(format!("{url}/metrics")).await {
        Ok(response) => response.text().await.unwrap_or_default(),
        Err(_) => String::new(),
    };
    saltedcx_sim::metrics::metric_value(&page, name, labels)
}

/// `q`-quantile (0..=1) of `values` (nearest rank); zero for an empty list.
pub fn quantile(values: &[Duration], q: f64) -> Duration {
    if values.is_empty() {
        return Duration::ZERO;
    }
    let mut sorted = values.to_vec();
    sorted.sort();
    let rank = ((q.clamp(0.0, 1.0) * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Publishes `body` as an event of `conversation` straight to its NATS subject (64 partitions),
/// around the ingress, as whatever else may publish there could: with an envelope as the ingress
/// writes it (`request_id`, the test account and region) but the given `deadline`.
pub async fn publish_around_the_ingress(
    js: &jetstream::Context,
    conversation: &str,
    request_id: uuid::Uuid,
    body: Vec<u8>,
    deadline: chrono::DateTime<chrono::Utc>,
) -> Result<()> {
    let envelope = shared::envelope::Envelope {
        request_id,
        conversation: conversation.to_string(),
        deadline,
        received_at: chrono::Utc::now(),
        trigger: "MESSAGE".into(),
        silent: false,
        account_id: Some(crate::events::ACCOUNT_ID.into()),
        region: Some(crate::events::REGION.into()),
    };
    let partition = shared::topology::partition_of(conversation, 64);
    js.publish_with_headers(
        shared::topology::event_subject(partition),
        envelope.to_headers(),
        body.into(),
    )
    .await?
    .await?;
    Ok(())
}
