//! Baseline: raw JetStream publish + consume of the simulator's event payloads, with the
//! ingress's headers (`Nats-Msg-Id` de-duplication included) and acknowledged publishes, on a
//! file-stored work-queue stream like the pipeline's.
//!
//! Two shapes: `raw` (one consumer, many unacknowledged messages: what NATS can do at best) and
//! `ordered` (one consumer per partition with at most one unacknowledged message, the pipeline's
//! ordering scheme, without any logic or callback).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Serialize;
use tokio::sync::Semaphore;
use tokio::time::Instant;

use saltedcx_sim::stats::{Percentiles, Stats};

const STREAM: &str = "BENCH_BASELINE";
const PREFIX: &str = "bench.baseline";
const SENT: &str = "Bench-Sent-Micros";

/// What the JetStream baseline does.
#[derive(Debug, Clone)]
pub struct JetStreamOptions {
    /// The NATS server.
    pub nats_url: String,
    /// Event payload size in bytes.
    pub payload_size: usize,
    /// How long to publish.
    pub duration: Duration,
    /// Messages in the system (published, not yet consumed) at most.
    pub in_flight: usize,
    /// Partitions (subjects); with `ordered`, one consumer each.
    pub partitions: u16,
    /// One unacknowledged message per partition consumer (the pipeline's ordering scheme).
    pub ordered: bool,
}

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct JetStreamReport {
    /// `raw` or `ordered`.
    pub variant: &'static str,
    /// Event payload size in bytes.
    pub payload_size: usize,
    /// Subjects (and consumers when ordered).
    pub partitions: u16,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Publishes acknowledged in the window.
    pub published: u64,
    /// Messages consumed and acknowledged in the window.
    pub consumed: u64,
    /// Publishes per second.
    pub published_per_s: f64,
    /// Messages consumed per second.
    pub consumed_per_s: f64,
    /// Publish to delivery to the consumer.
    pub latency: Percentiles,
}

/// Runs the baseline against the NATS server at `nats_url` (its stream is re-created).
pub async fn run(options: &JetStreamOptions) -> Result<JetStreamReport> {
    let client = async_nats::connect(&options.nats_url)
        .await
        .with_context(|| format!("connecting to {}", options.nats_url))?;
    let js = jetstream::new(client.clone());
    let _ = js.delete_stream(STREAM).await;
    let stream = js
        .create_stream(stream::Config {
            name: STREAM.into(),
            subjects: vec![format!("{PREFIX}.*")],
            storage: stream::StorageType::File,
            retention: stream::RetentionPolicy::WorkQueue,
            max_bytes: 1 << 30,
            max_age: Duration::from_secs(3600),
            duplicate_window: Duration::from_secs(120), // the pipeline's default DUPLICATE_WINDOW
            ..Default::default()
        })
        .await
        .context("creating the baseline stream")?;
    let payloads = super::payloads(1000, options.payload_size)?;
    let stats = Arc::new(Stats::default());
    let consumed = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    // At most `in_flight` messages are in the system (published, not yet consumed), like the
    // pipeline's conversations, each waiting for its answer before sending again.
    let window = Arc::new(Semaphore::new(options.in_flight.max(1)));
    let consumers = if options.ordered {
        options.partitions
    } else {
        1
    };
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..consumers {
        let config = consumer::pull::Config {
            durable_name: Some(format!("bench-{i}")),
            filter_subject: if options.ordered {
                format!("{PREFIX}.{i}")
            } else {
                String::new()
            },
            ack_policy: consumer::AckPolicy::Explicit,
            max_ack_pending: if options.ordered { 1 } else { 20_000 },
            // Progress in memory, as the pipeline's consumers keep it.
            memory_storage: true,
            ..Default::default()
        };
        let consumer = stream
            .create_consumer(config)
            .await
            .context("creating a baseline consumer")?;
        let (stats, consumed, stop) = (stats.clone(), consumed.clone(), stop.clone());
        let window = window.clone();
        let batch = if options.ordered { 16 } else { 1000 };
        tasks.spawn(async move {
            let Ok(mut messages) = consumer
                .stream()
                .max_messages_per_batch(batch)
                .messages()
                .await
            else {
                return;
            };
            while !stop.load(Ordering::Relaxed) {
                let next = tokio::time::timeout(Duration::from_millis(200), messages.next());
                let message = match next.await {
                    Ok(Some(Ok(message))) => message,
                    Ok(None) => break,
                    Ok(Some(Err(_))) | Err(_) => continue,
                };
                let sent = message
                    .headers
                    .as_ref()
                    .and_then(|h| h.get(SENT))
                    .and_then(|v| v.as_str().parse::<u64>().ok());
                if let Some(sent) = sent {
                    let latency = start.elapsed().saturating_sub(Duration::from_micros(sent));
                    stats.record_answer(latency, latency);
                }
                if message.ack().await.is_ok() {
                    consumed.fetch_add(1, Ordering::Relaxed);
                }
                window.add_permits(1);
            }
        });
    }

    let mut pending = FuturesUnordered::new();
    let mut published = 0u64;
    let end = start + options.duration;
    let mut n = 0usize;
    loop {
        tokio::select! {
            permit = window.clone().acquire_owned() => {
                let Ok(permit) = permit else { break };
                permit.forget();
                let mut headers = async_nats::HeaderMap::new();
                let id = uuid::Uuid::new_v4().to_string();
                headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
                headers.insert(shared::envelope::REQUEST_ID, id.as_str());
                headers.insert(shared::envelope::CONVERSATION, id.as_str());
                headers.insert(shared::envelope::DEADLINE, "2099-01-01T00:00:00.000000Z");
                headers.insert(shared::envelope::RECEIVED, "2099-01-01T00:00:00.000000Z");
                headers.insert(shared::envelope::TRIGGER, "MESSAGE");
                headers.insert(SENT, start.elapsed().as_micros().to_string().as_str());
                let subject = format!("{PREFIX}.{}", n % usize::from(options.partitions.max(1)));
                let payload = payloads[n % payloads.len()].clone();
                n += 1;
                let js = js.clone();
                pending.push(async move { js.publish_with_headers(subject, headers, payload).await?.await });
            }
            Some(result) = pending.next(), if !pending.is_empty() => match result {
                Ok(_) => published += 1,
                Err(err) => tracing::warn!(error = %err, "baseline publish failed"),
            },
            () = tokio::time::sleep_until(end) => break,
        }
    }
    let window = start.elapsed();
    let consumed_in_window = consumed.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    while pending.next().await.is_some() {}
    while tasks.join_next().await.is_some() {}
    let _ = js.delete_stream(STREAM).await;
    let seconds = window.as_secs_f64().max(1e-9);
    Ok(JetStreamReport {
        variant: if options.ordered { "ordered" } else { "raw" },
        payload_size: options.payload_size,
        partitions: options.partitions,
        duration_s: seconds,
        published,
        consumed: consumed_in_window,
        published_per_s: published as f64 / seconds,
        consumed_per_s: consumed_in_window as f64 / seconds,
        latency: stats.latency(),
    })
}
