//! One consuming loop per partition. Each partition's durable consumer lets at most one event be
//! unacknowledged, so whichever worker holds it, the next event of that partition (and so of each
//! of its conversations) waits until it is finished: strict per-conversation order across any
//! number of workers and restarts. Different partitions progress in parallel.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::consumer::pull::MessagesErrorKind;
use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use shared::config::TopologyArgs;
use shared::telemetry::names;
use shared::topology;
use tokio_util::sync::CancellationToken;

use crate::process::Processor;

/// Longest wait for one JetStream API call while (re)opening a partition. During a leader
/// election calls time out; short attempts, retried, notice the new leader sooner.
const API_TIMEOUT: Duration = Duration::from_secs(2);
/// Pull requests expire after this; a missed heartbeat (no consumer leader answering) is
/// noticed after two heartbeat periods and a new pull request is sent.
const PULL_EXPIRES: Duration = Duration::from_secs(5);
const PULL_HEARTBEAT: Duration = Duration::from_secs(2);

/// Consumes `partition` until `stop` is cancelled, re-creating the consumer (and the stream, if
/// NATS lost it) after errors. The event being processed when `stop` fires is finished first.
pub async fn run_partition(
    js: jetstream::Context,
    topology: TopologyArgs,
    ack_wait: Duration,
    processor: Arc<Processor>,
    partition: u16,
    stop: CancellationToken,
    live: Arc<std::sync::atomic::AtomicUsize>,
) {
    let mut js = js;
    js.set_timeout(API_TIMEOUT);
    let mut pause = Duration::from_millis(100);
    // Kept across pull-stream errors: a missed heartbeat (typically a consumer leader change in
    // a cluster) needs only a new pull request, not the API round trips of re-creating the
    // consumer, which time out for as long as leaders are being elected.
    let mut consumer: Option<PullConsumer> = None;
    while !stop.is_cancelled() {
        let opened = match consumer.take() {
            Some(existing) => Ok(existing),
            None => open(&js, &topology, ack_wait, partition).await,
        };
        let pulled = match opened {
            Ok(opened) => pull(&opened).await.map(|messages| (opened, messages)),
            Err(err) => Err(err),
        };
        let mut messages = match pulled {
            Ok((opened, messages)) => {
                consumer = Some(opened);
                messages
            }
            Err(err) => {
                tracing::warn!(partition, error = %err, "cannot consume partition yet; retrying");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(5));
                continue;
            }
        };
        pause = Duration::from_millis(100);
        live.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(names::WORKER_PARTITIONS).increment(1.0);
        loop {
            let next = tokio::select! {
                () = stop.cancelled() => break,
                next = messages.next() => next,
            };
            match next {
                Some(Ok(message)) => {
                    processor.handle(partition, message).await;
                }
                Some(Err(err)) => {
                    tracing::warn!(partition, error = %err, "partition stream error; reopening");
                    if err.kind() != MessagesErrorKind::MissingHeartbeat {
                        // The consumer may be gone (deleted, or NATS lost its storage).
                        consumer = None;
                    }
                    break;
                }
                None => break,
            }
        }
        live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(names::WORKER_PARTITIONS).decrement(1.0);
        if stop.is_cancelled() {
            hand_back(messages, partition).await;
        }
    }
}

/// Looks up (creating what is missing) the consumer of `partition`.
async fn open(
    js: &jetstream::Context,
    topology: &TopologyArgs,
    ack_wait: Duration,
    partition: u16,
) -> Result<PullConsumer, String> {
    let stream = match js.get_stream(&topology.stream_name).await {
        Ok(stream) => stream,
        Err(_) => {
            topology::ensure_event_stream(js, topology)
                .await
                .map_err(|e| e.to_string())?;
            js.get_stream(&topology.stream_name)
                .await
                .map_err(|e| e.to_string())?
        }
    };
    topology::ensure_consumer(&stream, partition, ack_wait)
        .await
        .map_err(|e| e.to_string())
}

/// Starts pulling from `consumer`.
async fn pull(consumer: &PullConsumer) -> Result<jetstream::consumer::pull::Stream, String> {
    consumer
        .stream()
        .max_messages_per_batch(16)
        .expires(PULL_EXPIRES)
        .heartbeat(PULL_HEARTBEAT)
        .messages()
        .await
        .map_err(|e| e.to_string())
}

/// On shutdown, gives back (NAK) an event that was delivered to this worker but not started, so
/// another worker takes it at once instead of after the ack wait.
///
/// The pull stream is closed *before* the NAK: a NAK'd event is redelivered at once, and an open
/// pull request of this worker would receive it again, and again (with a single worker, tens of
/// thousands of deliveries until the shutdown timeout, after which the event counts as
/// delivered too often and is dead-lettered instead of answered).
async fn hand_back(mut messages: jetstream::consumer::pull::Stream, partition: u16) {
    let mut unstarted = Vec::new();
    // At most one event per partition is unacknowledged, so at most one can be waiting here;
    // the bound is only a guard.
    while unstarted.len() < 16 {
        match tokio::time::timeout(Duration::from_millis(50), messages.next()).await {
            Ok(Some(Ok(message))) => unstarted.push(message),
            _ => break,
        }
    }
    drop(messages);
    for message in unstarted {
        tracing::debug!(partition, "handing back an unstarted event");
        if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
            tracing::debug!(error = %err, "hand-back failed; it will be redelivered after the ack wait");
        }
    }
}
