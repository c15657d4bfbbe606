//! The NATS look-ups behind the takeover barrier (see [`super::partition`]): which events of a
//! partition were delivered to some worker and not yet acknowledged when this one was pinned,
//! and which of them are still unacknowledged now.
//!
//! The stream is a work queue, so an acknowledged event is deleted from it: the events between
//! the consumer's acknowledgement floor and its last delivered sequence that are still in the
//! stream are exactly the ones delivered and not acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::ConsumerInfoError;
use async_nats::jetstream::context::GetStreamError;
use async_nats::jetstream::stream::{RawMessageError, RawMessageErrorKind};
use async_nats::jetstream::{self, stream};
use shared::envelope::CONVERSATION;

/// A look-up or an unpin failed (NATS unavailable, a leader election, the consumer gone); the
/// look-ups are tried again, an unpin expires by itself.
#[derive(Debug, thiserror::Error)]
pub enum TakeoverError {
    #[error("cannot look up stream {stream}: {source}")]
    Stream {
        stream: String,
        #[source]
        source: GetStreamError,
    },
    #[error("cannot read consumer {consumer}: {source}")]
    Consumer {
        consumer: String,
        #[source]
        source: ConsumerInfoError,
    },
    #[error("cannot read the stream at sequence {sequence}: {source}")]
    Message {
        sequence: u64,
        #[source]
        source: RawMessageError,
    },
    #[error("unpin request failed: {0}")]
    Unpin(#[source] async_nats::RequestError),
    #[error("no answer to the unpin request within {0:?}")]
    UnpinTimeout(Duration),
    #[error("unreadable answer to the unpin request: {0}")]
    UnpinAnswer(#[source] serde_json::Error),
    #[error("NATS refused the unpin: {0}")]
    UnpinRefused(String),
}

async fn open_stream(
    js: &jetstream::Context,
    stream_name: &str,
) -> Result<stream::Stream<()>, TakeoverError> {
    js.get_stream_no_info(stream_name)
        .await
        .map_err(|source| TakeoverError::Stream {
            stream: stream_name.to_string(),
            source,
        })
}

async fn consumer_info(
    stream: &stream::Stream<()>,
    consumer: &str,
) -> Result<jetstream::consumer::Info, TakeoverError> {
    stream
        .consumer_info(consumer)
        .await
        .map_err(|source| TakeoverError::Consumer {
            consumer: consumer.to_string(),
            source,
        })
}

/// The events of `consumer` (on `stream_name`, partition subject `subject`) delivered and not
/// acknowledged right now: sequence and conversation of each, at most the consumer's pending
/// count.
pub async fn unacknowledged(
    js: &jetstream::Context,
    stream_name: &str,
    consumer: &str,
    subject: &str,
) -> Result<Vec<(u64, Arc<str>)>, TakeoverError> {
    let stream = open_stream(js, stream_name).await?;
    let info = consumer_info(&stream, consumer).await?;
    let floor = info.ack_floor.stream_sequence;
    let last = info.delivered.stream_sequence;
    let pending = info.num_ack_pending;
    let mut found = Vec::new();
    let mut next = floor.saturating_add(1);
    while next <= last && found.len() < pending {
        let message = match stream.get_first_raw_message_by_subject(subject, next).await {
            Ok(message) => message,
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => break,
            Err(source) => {
                return Err(TakeoverError::Message {
                    sequence: next,
                    source,
                });
            }
        };
        if message.sequence > last {
            break;
        }
        let conversation: Arc<str> = message
            .headers
            .get(CONVERSATION)
            .map_or("", |value| value.as_str())
            .into();
        found.push((message.sequence, conversation));
        next = message.sequence.saturating_add(1);
    }
    Ok(found)
}

/// Which of `sequences` are no longer in the stream (acknowledged, or removed by its limits).
pub async fn gone(
    js: &jetstream::Context,
    stream_name: &str,
    consumer: &str,
    sequences: &[u64],
) -> Result<Vec<u64>, TakeoverError> {
    let stream = open_stream(js, stream_name).await?;
    let floor = consumer_info(&stream, consumer)
        .await?
        .ack_floor
        .stream_sequence;
    let mut gone = Vec::new();
    for &sequence in sequences {
        if sequence <= floor || !stored(&stream, sequence).await? {
            gone.push(sequence);
        }
    }
    Ok(gone)
}

async fn stored(stream: &stream::Stream<()>, sequence: u64) -> Result<bool, TakeoverError> {
    match stream.get_raw_message(sequence).await {
        Ok(_) => Ok(true),
        Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => Ok(false),
        Err(source) => Err(TakeoverError::Message { sequence, source }),
    }
}

/// Longest wait for NATS to confirm an unpin. Without an answer (the consumer's leader is being
/// elected) the pin expires by itself after `pin_ttl` anyway, and a stopping worker waits for
/// its unpins: the client's default 10 s would hold its stop that long.
const UNPIN_TIMEOUT: Duration = Duration::from_secs(1);

/// Gives up the pin of `consumer` (the partition goes to the next worker that pulls).
pub async fn unpin(
    client: &async_nats::Client,
    stream_name: &str,
    consumer: &str,
) -> Result<(), TakeoverError> {
    let body = serde_json::json!({ "group": shared::topology::PRIORITY_GROUP }).to_string();
    let request = client.request(
        super::pull::unpin_subject(stream_name, consumer),
        body.into(),
    );
    let reply = tokio::time::timeout(UNPIN_TIMEOUT, request)
        .await
        .map_err(|_| TakeoverError::UnpinTimeout(UNPIN_TIMEOUT))?
        .map_err(TakeoverError::Unpin)?;
    let answer: serde_json::Value =
        serde_json::from_slice(&reply.payload).map_err(TakeoverError::UnpinAnswer)?;
    match answer.get("error") {
        Some(error) => Err(TakeoverError::UnpinRefused(error.to_string())),
        None => Ok(()),
    }
}
