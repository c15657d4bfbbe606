//! One consuming loop per partition. Each partition's durable consumer lets at most one event be
//! unacknowledged, so whichever worker holds it, the next event of that partition (and so of each
//! of its conversations) waits until it is finished: strict per-conversation order across any
//! number of workers and restarts. Different partitions progress in parallel.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use shared::config::TopologyArgs;
use shared::telemetry::names;
use shared::topology;
use tokio_util::sync::CancellationToken;

use crate::process::Processor;

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
    let mut pause = Duration::from_millis(100);
    while !stop.is_cancelled() {
        let mut messages = match open(&js, &topology, ack_wait, partition).await {
            Ok(messages) => messages,
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
                    break;
                }
                None => break,
            }
        }
        live.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        metrics::gauge!(names::WORKER_PARTITIONS).decrement(1.0);
        if stop.is_cancelled() {
            hand_back(&mut messages, partition).await;
        }
    }
}

/// Opens the pull stream of `partition`, creating what is missing.
async fn open(
    js: &jetstream::Context,
    topology: &TopologyArgs,
    ack_wait: Duration,
    partition: u16,
) -> Result<jetstream::consumer::pull::Stream, String> {
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
    let consumer = topology::ensure_consumer(&stream, partition, ack_wait)
        .await
        .map_err(|e| e.to_string())?;
    consumer
        .stream()
        .max_messages_per_batch(16)
        .expires(Duration::from_secs(10))
        .heartbeat(Duration::from_secs(3))
        .messages()
        .await
        .map_err(|e| e.to_string())
}

/// On shutdown, gives back (NAK) an event that was delivered to this worker but not started, so
/// another worker takes it at once instead of after the ack wait.
async fn hand_back(messages: &mut jetstream::consumer::pull::Stream, partition: u16) {
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(Duration::from_millis(50), messages.next()).await
    {
        tracing::debug!(partition, "handing back an unstarted event");
        if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
            tracing::debug!(error = %err, "hand-back failed; it will be redelivered after the ack wait");
        }
    }
}
