//! The NATS look-ups behind the takeover barrier (see [`super::partition`]): which events of a
//! partition were delivered to some worker and not yet acknowledged when this one was pinned,
//! and which of them are still unacknowledged now.
//!
//! The stream is a work queue, so an acknowledged event is deleted from it: the events between
//! the consumer's acknowledgement floor and its last delivered sequence that are still in the
//! stream are exactly the ones delivered and not acknowledged.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::stream::RawMessageErrorKind;
use async_nats::jetstream::{self, stream};
use shared::envelope::CONVERSATION;

/// A look-up failed (NATS unavailable, consumer gone); it is tried again.
#[derive(Debug, thiserror::Error)]
#[error("takeover look-up failed: {0}")]
pub struct TakeoverError(String);

fn failed(err: impl std::fmt::Display) -> TakeoverError {
    TakeoverError(err.to_string())
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
    let stream = js.get_stream_no_info(stream_name).await.map_err(failed)?;
    let info = stream.consumer_info(consumer).await.map_err(failed)?;
    let floor = info.ack_floor.stream_sequence;
    let last = info.delivered.stream_sequence;
    let pending = info.num_ack_pending;
    let mut found = Vec::new();
    let mut next = floor.saturating_add(1);
    while next <= last && found.len() < pending {
        let message = match stream.get_first_raw_message_by_subject(subject, next).await {
            Ok(message) => message,
            Err(err) if err.kind() == RawMessageErrorKind::NoMessageFound => break,
            Err(err) => return Err(failed(err)),
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
    let stream = js.get_stream_no_info(stream_name).await.map_err(failed)?;
    let floor = stream
        .consumer_info(consumer)
        .await
        .map_err(failed)?
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
        Err(err) => Err(failed(err)),
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
        .map_err(|_| TakeoverError(format!("no answer within {UNPIN_TIMEOUT:?}")))?
        .map_err(failed)?;
    let answer: serde_json::Value = serde_json::from_slice(&reply.payload).map_err(failed)?;
    match answer.get("error") {
        Some(error) => Err(TakeoverError(error.to_string())),
        None => Ok(()),
    }
}
