//! The record of answers, which makes answering at-most-once across redeliveries.
//!
//! Before a callback is sent, the answer is stored under the event's `requestId` as `pending`;
//! after Salted CX accepted it, as `delivered`. A redelivered event (a worker died, an ack was
//! lost) finds the record: `delivered` means nothing more to do, `pending` means send exactly the
//! stored answer again, never a newly computed one.

use async_nats::jetstream::kv;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shared::answer::Answer;
use uuid::Uuid;

/// What is known about the answer to one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// Computed and about to be (or being) delivered.
    Pending { answer: Answer },
    /// Accepted by Salted CX.
    Delivered { status: u16 },
}

/// The answers bucket.
#[derive(Clone)]
pub struct Answers {
    store: kv::Store,
}

/// The bucket could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("answers record unavailable: {0}")]
pub struct AnswersError(String);

impl Answers {
    /// Wraps the KV store.
    pub fn new(store: kv::Store) -> Self {
        Self { store }
    }

    /// The record for `request_id`, if any.
    pub async fn get(&self, request_id: Uuid) -> Result<Option<Record>, AnswersError> {
        let value = self
            .store
            .get(request_id.to_string())
            .await
            .map_err(|e| AnswersError(e.to_string()))?;
        match value {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| AnswersError(format!("corrupt record: {e}"))),
        }
    }

    /// Stores `record` for `request_id`.
    pub async fn put(&self, request_id: Uuid, record: &Record) -> Result<(), AnswersError> {
        let bytes = serde_json::to_vec(record).map_err(|e| AnswersError(e.to_string()))?;
        self.store
            .put(request_id.to_string(), Bytes::from(bytes))
            .await
            .map(|_| ())
            .map_err(|e| AnswersError(e.to_string()))
    }
}
