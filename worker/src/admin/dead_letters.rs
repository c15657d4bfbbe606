//! Reading and purging the dead-letter stream (`YOURLOGIC_DEAD_LETTERS`), for
//! `worker dead-letters`. A dead letter is the original event (body and envelope headers) plus
//! the error headers [`crate::deadletter::store`] adds; its id is its sequence number in the
//! stream.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use shared::config::NatsArgs;
use shared::envelope;
use shared::topology::DEAD_LETTER_STREAM;

use crate::deadletter;

/// Longest wait for the connection to NATS (the service waits forever; a command should not).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for the next dead letter while reading the stream: NATS answers within
/// milliseconds, so a silence this long means it is gone.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// One dead letter.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    /// Its sequence number in the stream: the id `show` takes.
    pub id: u64,
    /// When it was dead-lettered (stored in the stream).
    pub stored_at: DateTime<Utc>,
    /// The stream subject (`yourlogic.dead.<partition>`).
    pub subject: String,
    /// The reason (`Yl-Error-Kind`: `logic_error`, `callback_rejected`, ...).
    pub reason: String,
    /// The error message (`Yl-Error`).
    pub error: String,
    /// The event's requestId (`Yl-Request-Id`), when the envelope had one.
    pub request_id: Option<String>,
    /// The conversation (`Yl-Conversation`), when the envelope had one.
    pub conversation: Option<String>,
    /// The trigger type (`Yl-Trigger`), when the envelope had one.
    pub trigger: Option<String>,
    /// Every header as stored, in order.
    pub headers: Vec<(String, String)>,
    /// The event body exactly as Salted CX sent it.
    pub payload: Bytes,
}

impl DeadLetter {
    fn new(
        id: u64,
        stored_at: DateTime<Utc>,
        subject: &str,
        headers: Option<&HeaderMap>,
        payload: Bytes,
    ) -> Self {
        let get = |name: &str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
        };
        let mut all = Vec::new();
        for (name, values) in headers.into_iter().flat_map(HeaderMap::iter) {
            let name: &str = name.as_ref();
            for value in values {
                all.push((name.to_string(), value.as_str().to_string()));
            }
        }
        // Header order carries no meaning in NATS; sorted by name they are easier to read.
        all.sort_by(|a, b| a.0.cmp(&b.0));
        Self {
            id,
            stored_at,
            subject: subject.to_string(),
            reason: get(deadletter::REASON).unwrap_or_default(),
            error: get(deadletter::ERROR).unwrap_or_default(),
            request_id: get(envelope::REQUEST_ID),
            conversation: get(envelope::CONVERSATION),
            trigger: get(envelope::TRIGGER),
            headers: all,
            payload,
        }
    }
}

/// Why a dead-letter command failed; each message says what to check.
#[derive(Debug, thiserror::Error)]
pub enum DeadLetterError {
    #[error(transparent)]
    Connect(#[from] shared::nats::ConnectError),
    /// `url` is `NATS_URL` without its passwords or tokens.
    #[error(
        "no answer from NATS at {url}: {reason} (is it running? check NATS_URL and the NATS \
         credentials)"
    )]
    Unreachable { url: String, reason: String },
    #[error("reading the dead-letter stream {DEAD_LETTER_STREAM} failed: {0}")]
    Read(String),
    #[error(
        "no dead letter `{0}`: give an id that `worker dead-letters list` prints, or the \
         requestId of a dead-lettered event"
    )]
    NotFound(String),
    #[error("purging the dead-letter stream {DEAD_LETTER_STREAM} failed: {0}")]
    Purge(String),
}

/// The dead-letter stream of one NATS system.
pub struct DeadLetters {
    /// `None` when the stream does not exist (no worker has run against this NATS yet): then
    /// there are no dead letters.
    stream: Option<stream::Stream>,
}

/// How many dead letters there are, and the range of their ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Count {
    /// Dead letters in the stream.
    pub letters: u64,
    /// The oldest id.
    pub first_id: u64,
    /// The newest id.
    pub last_id: u64,
}

impl DeadLetters {
    /// Connects with the worker's NATS settings and looks the stream up.
    pub async fn open(nats: &NatsArgs) -> Result<Self, DeadLetterError> {
        let client = shared::nats::connect(nats, "yourlogic-worker-admin").await?;
        // The client connects in the background; a flush completes once it is connected.
        let connected = tokio::time::timeout(CONNECT_TIMEOUT, client.flush()).await;
        if !matches!(connected, Ok(Ok(()))) {
            return Err(DeadLetterError::Unreachable {
                url: shared::secret::redact_urls(&nats.nats_url),
                reason: format!("not connected within {CONNECT_TIMEOUT:?}"),
            });
        }
        let js = jetstream::new(client);
        match js.get_stream(DEAD_LETTER_STREAM).await {
            Ok(stream) => Ok(Self {
                stream: Some(stream),
            }),
            Err(err) => match err.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(js_err)
                    if js_err.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(Self { stream: None })
                }
                _ => Err(DeadLetterError::Unreachable {
                    url: shared::secret::redact_urls(&nats.nats_url),
                    reason: err.to_string(),
                }),
            },
        }
    }

    /// How many dead letters there are now.
    pub async fn count(&self) -> Result<Count, DeadLetterError> {
        let Some(stream) = &self.stream else {
            return Ok(Count::default());
        };
        let state = stream
            .get_info()
            .await
            .map_err(|e| DeadLetterError::Read(e.to_string()))?
            .state;
        Ok(Count {
            letters: state.messages,
            first_id: state.first_sequence,
            last_id: state.last_sequence,
        })
    }

    /// The dead letters present now, oldest first; with `limit`, only the newest `limit`.
    pub async fn list(&self, limit: Option<u64>) -> Result<Vec<DeadLetter>, DeadLetterError> {
        let count = self.count().await?;
        let stream = self.stream.as_ref().filter(|_| count.letters > 0);
        let Some(stream) = stream.filter(|_| limit != Some(0)) else {
            return Ok(Vec::new());
        };
        let start = match limit {
            Some(limit) => count.last_id.saturating_sub(limit - 1).max(count.first_id),
            None => count.first_id,
        };
        read_range(stream, start, count.last_id).await
    }

    /// The dead letter with this id (sequence number), or the newest one of this requestId.
    pub async fn find(&self, id: &str) -> Result<DeadLetter, DeadLetterError> {
        let not_found = || DeadLetterError::NotFound(id.to_string());
        let Some(stream) = &self.stream else {
            return Err(not_found());
        };
        if let Ok(sequence) = id.trim().parse::<u64>() {
            return match stream.get_raw_message(sequence).await {
                Ok(message) => Ok(DeadLetter::new(
                    message.sequence,
                    from_unix_nanos(message.time.unix_timestamp_nanos()),
                    message.subject.as_str(),
                    Some(&message.headers),
                    message.payload,
                )),
                Err(err) if err.kind() == stream::RawMessageErrorKind::NoMessageFound => {
                    Err(not_found())
                }
                Err(err) => Err(DeadLetterError::Read(err.to_string())),
            };
        }
        self.list(None)
            .await?
            .into_iter()
            .rev()
            .find(|letter| letter.request_id.as_deref() == Some(id.trim()))
            .ok_or_else(not_found)
    }

    /// Deletes the dead letters present now (those stored meanwhile are kept); returns how
    /// many were deleted.
    pub async fn purge(&self) -> Result<u64, DeadLetterError> {
        let count = self.count().await?;
        let Some(stream) = self.stream.as_ref().filter(|_| count.letters > 0) else {
            return Ok(0);
        };
        let purged = stream
            .purge()
            .sequence(count.last_id + 1)
            .await
            .map_err(|e| DeadLetterError::Purge(e.to_string()))?;
        Ok(purged.purged)
    }
}

/// Reads the dead letters with ids `first..=last` through an ordered consumer (one pass, no
/// acknowledgements, gone when the command ends).
async fn read_range(
    stream: &stream::Stream,
    first: u64,
    last: u64,
) -> Result<Vec<DeadLetter>, DeadLetterError> {
    let read = |e: &dyn std::fmt::Display| DeadLetterError::Read(e.to_string());
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            description: Some("worker dead-letters: reading".into()),
            deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                start_sequence: first,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| read(&e))?;
    let mut messages = consumer.messages().await.map_err(|e| read(&e))?;
    let mut letters = Vec::new();
    loop {
        let next = tokio::time::timeout(READ_TIMEOUT, messages.next())
            .await
            .map_err(|_| read(&format!("no message from NATS for {READ_TIMEOUT:?}")))?;
        let Some(message) = next else { break };
        let message = message.map_err(|e| read(&e))?;
        let info = message.info().map_err(|e| read(&e))?;
        let (sequence, pending) = (info.stream_sequence, info.pending);
        let stored_at = from_unix_nanos(info.published.unix_timestamp_nanos());
        letters.push(DeadLetter::new(
            sequence,
            stored_at,
            message.subject.as_str(),
            message.headers.as_ref(),
            message.payload.clone(),
        ));
        // Stop at the newest letter present when the command started (or earlier, when it was
        // deleted meanwhile and nothing follows).
        if sequence >= last || pending == 0 {
            break;
        }
    }
    Ok(letters)
}

fn from_unix_nanos(nanos: i128) -> DateTime<Utc> {
    i64::try_from(nanos)
        .map(DateTime::from_timestamp_nanos)
        .unwrap_or_default()
}
