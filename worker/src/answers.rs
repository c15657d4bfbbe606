//! The record of answers, which makes answering at-most-once across redeliveries.
//!
//! Before a callback is sent, the answer is *claimed* under the event's `requestId` as `pending`:
//! the first claim wins (a write that fails if the key exists), so two workers processing the
//! same event at once (a redelivery while the first is still stuck, e.g. during a NATS leader
//! change) both send the winner's answer. After Salted CX accepted it, the record becomes
//! `delivered`. A redelivered event finds the record: `delivered` means nothing more to do,
//! `pending` means send exactly the stored answer again, never a newly computed one.
//!
//! Records are read from the stream leader, not with a direct get: any replica may answer a
//! direct get, including one still catching up after a restart, which would wrongly report "no
//! record" and let the event be decided a second time.

use async_nats::jetstream::kv;
use async_nats::jetstream::stream::LastRawMessageErrorKind;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use shared::answer::Answer;
use uuid::Uuid;

/// Longest wait for [`Answers::delivered_quickly`]: short, so a backlog of expired events drains
/// quickly even while the bucket is unavailable.
const QUICK_LOOKUP: std::time::Duration = std::time::Duration::from_millis(100);

/// What is known about the answer to one event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Record {
    /// Computed and about to be (or being) delivered.
    Pending { answer: Answer },
    /// Accepted by Salted CX.
    Delivered { status: u16 },
}

/// The outcome of [`Answers::claim`].
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// The claimed record is now the event's record.
    Won,
    /// The event already had this record (another processing got there first).
    Taken(Record),
}

/// The answers bucket.
#[derive(Clone)]
pub struct Answers {
    store: kv::Store,
    client: async_nats::Client,
}

/// The bucket could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum AnswersError {
    /// NATS did not answer, or refused the operation.
    #[error("answers record unavailable: {0}")]
    Unavailable(#[source] async_nats::Error),
    /// A stored record is not one this worker can read, or a record cannot be written as JSON.
    #[error("answers record not readable or writable as JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// Other processings of the event kept changing its start record between a read and a
    /// write.
    #[error("answers record unavailable: the start record kept changing")]
    Contended,
}

/// [`AnswersError::Unavailable`] from any NATS error.
fn unavailable(error: impl Into<async_nats::Error>) -> AnswersError {
    AnswersError::Unavailable(error.into())
}

impl Answers {
    /// Wraps the KV store; `client` is the connection it belongs to.
    pub fn new(store: kv::Store, client: async_nats::Client) -> Self {
        Self { store, client }
    }

    /// The record for `request_id`, if any, as the stream leader knows it.
    pub async fn get(&self, request_id: Uuid) -> Result<Option<Record>, AnswersError> {
        let subject = format!("{}{request_id}", self.store.prefix);
        let message = match self
            .store
            .stream
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(message) => message,
            Err(err) if err.kind() == LastRawMessageErrorKind::NoMessageFound => return Ok(None),
            Err(err) => return Err(unavailable(err)),
        };
        // A deleted or purged key reads as absent (records are never deleted, but be exact).
        let removed = message
            .headers
            .get("KV-Operation")
            .is_some_and(|op| matches!(op.as_str(), "DEL" | "PURGE"));
        if removed {
            return Ok(None);
        }
        Ok(Some(serde_json::from_slice(&message.payload)?))
    }

    /// Whether the record of `request_id` says its answer was delivered, from one look-up of at
    /// most [`QUICK_LOOKUP`] (used only to count an expiry correctly: a slower answer just means
    /// the event is counted as expired).
    pub async fn delivered_quickly(&self, request_id: Uuid) -> bool {
        matches!(
            tokio::time::timeout(QUICK_LOOKUP, self.get(request_id)).await,
            Ok(Ok(Some(Record::Delivered { .. })))
        )
    }

    /// Stores `record` for `request_id` unless the event already has a record, which is then
    /// returned instead. Safe to retry after a timeout: a claim that was stored although its
    /// acknowledgement was lost is found and returned as taken (with this very record).
    pub async fn claim(&self, request_id: Uuid, record: &Record) -> Result<Claim, AnswersError> {
        let bytes = serde_json::to_vec(record)?;
        // Revision 0: the write succeeds only if the key does not exist yet.
        let created = self
            .store
            .update(request_id.to_string(), Bytes::from(bytes), 0)
            .await;
        match created {
            Ok(_) => Ok(Claim::Won),
            Err(err) => match self.get(request_id).await? {
                Some(existing) => Ok(Claim::Taken(existing)),
                None => Err(unavailable(err)),
            },
        }
    }

    /// Records that processing of `request_id` starts on its `delivery`-th delivery and returns
    /// how many times it started before. Starts are recorded only when the event may be a
    /// redelivery (first deliveries, the common case, cost nothing here); an unrecorded first
    /// delivery counts as one earlier start. Counting starts rather than deliveries matters
    /// because an event queued behind another of its conversation is redelivered with it after
    /// a crash without ever having started.
    pub async fn record_start(&self, request_id: Uuid, delivery: i64) -> Result<u64, AnswersError> {
        let key = format!("starts.{request_id}");
        // Two processings of one event racing on the record are rare: a few tries suffice.
        for _ in 0..5 {
            let current = self
                .store
                .entry(key.clone())
                .await
                .map_err(unavailable)?
                .filter(|entry| entry.operation == kv::Operation::Put);
            let mut started = current
                .as_ref()
                .map(|entry| Starts::parse(&entry.value))
                .unwrap_or_default();
            let before = started.before(delivery);
            started.add(delivery);
            let value = Bytes::from(started.to_string());
            let written = match &current {
                Some(entry) => self.store.update(&key, value, entry.revision).await.is_ok(),
                None => self.store.create(&key, value).await.is_ok(),
            };
            if written {
                return Ok(before);
            }
        }
        Err(AnswersError::Contended)
    }

    /// Sends `record` for `request_id` to the bucket, replacing any record, without waiting for
    /// (or asking for) JetStream's confirmation: for records whose loss is tolerated (the
    /// "delivered" mark, which only saves a redelivery from re-sending the same answer). The
    /// error says only that it could not be handed to the connection.
    pub async fn put_unconfirmed(
        &self,
        request_id: Uuid,
        record: &Record,
    ) -> Result<(), AnswersError> {
        let bytes = serde_json::to_vec(record)?;
        let prefix = self.store.put_prefix.as_ref().unwrap_or(&self.store.prefix);
        self.client
            .publish(format!("{prefix}{request_id}"), Bytes::from(bytes))
            .await
            .map_err(unavailable)
    }
}

/// The deliveries on which processing of one event started, as recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct Starts(std::collections::BTreeSet<i64>);

impl Starts {
    fn parse(bytes: &[u8]) -> Self {
        let text = std::str::from_utf8(bytes).unwrap_or_default();
        Starts(
            text.split(',')
                .filter_map(|n| n.trim().parse().ok())
                .collect(),
        )
    }

    /// Starts before the one on `delivery`: the recorded ones, plus the first delivery's when
    /// it was not recorded.
    fn before(&self, delivery: i64) -> u64 {
        let recorded = self.0.iter().filter(|d| **d < delivery).count();
        let unrecorded_first = delivery > 1 && !self.0.contains(&1);
        u64::try_from(recorded).unwrap_or(u64::MAX) + u64::from(unrecorded_first)
    }

    fn add(&mut self, delivery: i64) {
        self.0.insert(delivery);
    }
}

impl std::fmt::Display for Starts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list: Vec<String> = self.0.iter().map(i64::to_string).collect();
        f.write_str(&list.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unrecorded_first_delivery_counts_as_a_start() {
        let none = Starts::default();
        assert_eq!(none.before(1), 0);
        assert_eq!(none.before(3), 1);
        let mut recorded = Starts::parse(b"1,2");
        assert_eq!(recorded.before(3), 2);
        recorded.add(3);
        assert_eq!(recorded.to_string(), "1,2,3");
        assert_eq!(Starts::parse(b"2").before(3), 2);
        assert_eq!(Starts::parse(b"junk").before(2), 1);
    }
}
