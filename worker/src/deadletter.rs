//! The dead-letter stream: events that cannot be processed are stored there with the error, so
//! they never block their conversation and can be inspected or replayed.

use async_nats::HeaderMap;
use async_nats::jetstream;
use bytes::Bytes;
use shared::telemetry::names;
use shared::topology::dead_letter_subject;

/// Header with the error message of a dead letter.
pub const ERROR: &str = "Yl-Error";
/// Header with the error kind (the `reason` label of the metric).
pub const REASON: &str = "Yl-Error-Kind";

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The queued message lacks its routing headers.
    BadEnvelope,
    /// The body is not a valid event.
    InvalidEvent,
    /// The logic returned an error, panicked or timed out.
    LogicError,
    /// Salted CX refused the callback with a 4xx (other than 429).
    CallbackRejected,
    /// The callback URL cannot be built.
    NoCallbackUrl,
    /// The answer cannot be written as JSON.
    UnserialisableAnswer,
    /// Every allowed callback attempt failed (unreachable or failing Salted CX host).
    CallbackUnreachable,
    /// Delivered too many times (probably crashes workers).
    TooManyDeliveries,
}

impl Reason {
    /// The `reason` label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::BadEnvelope => "bad_envelope",
            Reason::InvalidEvent => "invalid_event",
            Reason::LogicError => "logic_error",
            Reason::CallbackRejected => "callback_rejected",
            Reason::NoCallbackUrl => "no_callback_url",
            Reason::UnserialisableAnswer => "unserialisable_answer",
            Reason::CallbackUnreachable => "callback_unreachable",
            Reason::TooManyDeliveries => "too_many_deliveries",
        }
    }

    /// Whether the fallback answer follows the dead letter (the logic could not decide, or the
    /// event was delivered too often): the outcome is then counted after that answer.
    pub fn answered_with_fallback(self) -> bool {
        matches!(
            self,
            Reason::LogicError | Reason::TooManyDeliveries | Reason::InvalidEvent
        )
    }
}

/// The dead letter could not be stored (NATS unavailable); the event is tried again.
#[derive(Debug, thiserror::Error)]
#[error("dead letter not stored: {0}")]
pub struct StoreError(#[from] async_nats::Error);

/// Stores `payload` with its original headers plus the error in the dead-letter stream and waits
/// for JetStream to confirm (the original is acknowledged only after that).
pub async fn store(
    js: &jetstream::Context,
    partition: u16,
    original: Option<&HeaderMap>,
    payload: Bytes,
    reason: Reason,
    error: &str,
) -> Result<(), StoreError> {
    let mut headers = HeaderMap::new();
    if let Some(original) = original {
        for (name, values) in original.iter() {
            let name_text: &str = name.as_ref();
            if name_text.eq_ignore_ascii_case("Nats-Msg-Id") {
                continue;
            }
            for value in values {
                headers.append(name.clone(), value.clone());
            }
        }
    }
    let error: String = error.chars().take(2000).collect();
    headers.insert(ERROR, error.replace(['\r', '\n'], " ").as_str());
    headers.insert(REASON, reason.as_str());
    let ack = js
        .publish_with_headers(dead_letter_subject(partition), headers, payload)
        .await
        .map_err(|e| StoreError(e.into()))?;
    ack.await.map_err(|e| StoreError(e.into()))?;
    metrics::counter!(names::DEAD_LETTERS, "reason" => reason.as_str()).increment(1);
    Ok(())
}
