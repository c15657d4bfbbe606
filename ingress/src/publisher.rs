//! Durable publishing to JetStream, and the readiness that depends on it.
//!
//! A publish counts only once JetStream has acknowledged it (the event is on disk, replicated
//! as configured). If that does not happen within the publish timeout, or NATS is not connected,
//! the caller gets an error at once, so the ingress answers 503 instead of hanging or lying.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream::{self, context::PublishErrorKind};
use bytes::Bytes;
use futures::future::BoxFuture;
use shared::config::TopologyArgs;
use shared::envelope::Envelope;
use shared::health::Readiness;
use shared::retry::{Backoff, Failure, Limits, retry};
use shared::telemetry::names;
use shared::topology::{self, TopologyError, event_subject, partition_of};

/// How often the ingress checks that the event streams still exist once they do.
const TOPOLOGY_CHECK: Duration = Duration::from_secs(10);

/// Why an event was not stored. The text is for the logs; the sender gets a generic message.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("not connected to NATS")]
    NotConnected,
    #[error("NATS did not confirm the publish within {0:?}")]
    Timeout(Duration),
    /// The event and its headers exceed the largest message NATS accepts: it can never be
    /// stored, retrying cannot help.
    #[error(
        "the event and its headers exceed the largest message NATS accepts ({max_payload} bytes)"
    )]
    TooLarge { max_payload: usize },
    #[error("NATS refused the publish: {0}")]
    Refused(String),
}

/// Outcome of a durable publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stored {
    /// Stored for the first time.
    New,
    /// JetStream already had this requestId within the duplicate window.
    Duplicate,
}

/// Publishes events and tracks whether the stream is usable.
#[derive(Clone)]
pub struct Publisher {
    client: async_nats::Client,
    js: jetstream::Context,
    topology: TopologyArgs,
    timeout: Duration,
    stream_ready: Arc<AtomicBool>,
}

impl Publisher {
    /// A publisher over `client`; call [`Publisher::keep_topology`] in the background.
    pub fn new(client: async_nats::Client, topology: TopologyArgs, timeout: Duration) -> Self {
        let mut js = jetstream::new(client.clone());
        js.set_timeout(timeout);
        Self {
            client,
            js,
            topology,
            timeout,
            stream_ready: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The JetStream context (for the queue monitor).
    pub fn jetstream(&self) -> jetstream::Context {
        self.js.clone()
    }

    /// Stores `body` durably with the envelope's headers (and, with traces on, the trace context
    /// of the current span).
    pub async fn publish(&self, envelope: &Envelope, body: Bytes) -> Result<Stored, PublishError> {
        if !shared::nats::is_connected(&self.client) {
            return Err(PublishError::NotConnected);
        }
        let subject = event_subject(partition_of(
            &envelope.conversation,
            self.topology.partitions,
        ));
        let mut headers = envelope.to_headers();
        // The request's trace context, so the worker's spans continue its trace (traces on).
        shared::otel::propagation::inject_current(&mut headers);
        let started = Instant::now();
        let result = tokio::time::timeout(self.timeout, async {
            let ack = self
                .js
                .publish_with_headers(subject, headers, body)
                .await
                .map_err(|e| self.refused(e.kind(), e))?;
            ack.await.map_err(|e| self.refused(e.kind(), e))
        })
        .await;
        metrics::histogram!(names::PUBLISH_SECONDS).record(started.elapsed().as_secs_f64());
        match result {
            Ok(Ok(ack)) if ack.duplicate => Ok(Stored::Duplicate),
            Ok(Ok(_)) => Ok(Stored::New),
            Ok(Err(err)) => Err(err),
            Err(_) => Err(PublishError::Timeout(self.timeout)),
        }
    }

    fn refused(&self, kind: PublishErrorKind, err: impl std::fmt::Display) -> PublishError {
        match kind {
            PublishErrorKind::MaxPayloadExceeded => PublishError::TooLarge {
                max_payload: self.client.max_payload(),
            },
            PublishErrorKind::StreamNotFound => {
                self.stream_ready.store(false, Ordering::Relaxed);
                PublishError::Refused(err.to_string())
            }
            _ => PublishError::Refused(err.to_string()),
        }
    }

    /// Creates the stream at start-up and re-creates it if it disappears (a NATS server that
    /// lost its storage): retried with growing pauses until it exists, then checked again every
    /// [`TOPOLOGY_CHECK`]. Runs until dropped.
    pub async fn keep_topology(self) {
        loop {
            // No deadline, no cancellation and only transient failures: returns once it exists.
            let _exists = retry(
                Backoff::new(Duration::from_millis(200), Duration::from_secs(5)),
                Limits::default(),
                |_| self.ensure_topology(),
            )
            .await;
            tokio::time::sleep(TOPOLOGY_CHECK).await;
        }
    }

    /// One attempt of [`Publisher::keep_topology`]: the stream exists (now), or why not.
    async fn ensure_topology(&self) -> Result<(), Failure<TopologyError>> {
        let result = topology::ensure_event_streams(&self.js, &self.topology).await;
        self.stream_ready.store(result.is_ok(), Ordering::Relaxed);
        result.map_err(|err| {
            if err.is_mismatch() {
                tracing::error!(error = %err, "event stream does not match the configuration");
            } else {
                tracing::warn!(error = %err, "event stream not available yet");
            }
            // A mismatch may be corrected by an operator: keep trying, and stay unready.
            Failure::Transient(err)
        })
    }
}

impl Readiness for Publisher {
    fn check(&self) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            if !shared::nats::is_connected(&self.client) {
                return Err("not connected to NATS".into());
            }
            if !self.stream_ready.load(Ordering::Relaxed) {
                return Err(format!(
                    "stream {} is not available",
                    self.topology.stream_name
                ));
            }
            Ok(())
        })
    }
}
