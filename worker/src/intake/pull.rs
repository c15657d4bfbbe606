//! The JetStream pull protocol as the intake speaks it: pull requests (with the priority group
//! and, once pinned, the pin id), the reply subjects that route deliveries back to their
//! partition, and the status messages that end a request.
//!
//! All deliveries of one worker arrive on one subscription, `<inbox>.<partition>.<request>`, so
//! one task sees every event in the order NATS sent it.

use std::time::Duration;

use async_nats::{Message, StatusCode};
use bytes::Bytes;
use serde::Serialize;
use shared::topology::PRIORITY_GROUP;

/// Header carrying the pin id on deliveries from a pinned-client consumer.
pub const PIN_HEADER: &str = "Nats-Pin-Id";

/// The body of `$JS.API.CONSUMER.MSG.NEXT.<stream>.<consumer>`.
#[derive(Debug, Serialize)]
struct Request<'a> {
    batch: u32,
    /// Nanoseconds.
    expires: u64,
    max_bytes: usize,
    group: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
}

/// A pull request for up to `batch` events (at most `max_bytes` in all), open for `expires`,
/// with the pin id once this worker is pinned.
pub fn request_body(batch: u32, expires: Duration, max_bytes: usize, pin: Option<&str>) -> Bytes {
    let request = Request {
        batch: batch.max(1),
        expires: u64::try_from(expires.as_nanos()).unwrap_or(u64::MAX),
        max_bytes,
        group: PRIORITY_GROUP,
        id: pin,
    };
    // Serialising plain numbers and strings cannot fail.
    serde_json::to_vec(&request).map_or_else(|_| Bytes::new(), Bytes::from)
}

/// The subject pull requests for `consumer` of `stream` are sent to.
pub fn api_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.API.CONSUMER.MSG.NEXT.{stream}.{consumer}")
}

/// The subject a consumer's pin is released with.
pub fn unpin_subject(stream: &str, consumer: &str) -> String {
    format!("$JS.API.CONSUMER.UNPIN.{stream}.{consumer}")
}

/// The reply subject of request number `request` for `partition`.
pub fn reply_subject(inbox: &str, partition: u16, request: u64) -> String {
    format!("{inbox}.{partition}.{request}")
}

/// The partition of a delivered event, from its subject (`yourlogic.events.<partition>`).
/// Deliveries keep their stream subject; only status messages come on the reply subject.
pub fn delivered_partition(subject: &str) -> Option<u16> {
    subject
        .strip_prefix(shared::topology::EVENTS_PREFIX)?
        .strip_prefix('.')?
        .split('.')
        .next()?
        .parse()
        .ok()
}

/// The partition and request a status message on `subject` is about, if it is one of ours.
pub fn route(inbox: &str, subject: &str) -> Option<(u16, u64)> {
    let rest = subject.strip_prefix(inbox)?.strip_prefix('.')?;
    let (partition, request) = rest.split_once('.')?;
    Some((partition.parse().ok()?, request.parse().ok()?))
}

/// What a status message (a message without an event) says about its request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// The request is alive but idle; nothing to do.
    Heartbeat,
    /// The request ended (expired, or NATS terminated it); a new one may be sent.
    Ended,
    /// Another worker holds the pin (or ours expired): the request was refused.
    WrongPin,
    /// The consumer (or JetStream) is not there: it must be set up again.
    ConsumerGone,
}

/// The status a message carries, or `None` for a delivered event.
pub fn status_of(message: &Message) -> Option<Status> {
    let status = message.status?;
    if status == StatusCode::OK {
        return None;
    }
    let description = message.description.as_deref().unwrap_or_default();
    Some(if status == StatusCode::IDLE_HEARTBEAT {
        Status::Heartbeat
    } else if status == StatusCode::PIN_ID_MISMATCH {
        Status::WrongPin
    } else if status == StatusCode::NO_RESPONDERS
        || description.eq_ignore_ascii_case("Consumer Deleted")
        || description.contains("Priority Group")
        || description.contains("Pinned Client")
    {
        Status::ConsumerGone
    } else {
        // 404, 408 (expired), other 409s (leadership change, batch completed, size).
        Status::Ended
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_name_the_group_and_the_pin_once_known() {
        let first = request_body(64, Duration::from_secs(1), 1 << 20, None);
        let json: serde_json::Value = serde_json::from_slice(&first).expect("json");
        assert_eq!(json["batch"], 64);
        assert_eq!(json["expires"], 1_000_000_000u64);
        assert_eq!(json["group"], PRIORITY_GROUP);
        assert!(json.get("id").is_none());
        let pinned = request_body(0, Duration::from_secs(1), 1 << 20, Some("pin-1"));
        let json: serde_json::Value = serde_json::from_slice(&pinned).expect("json");
        assert_eq!(json["id"], "pin-1");
        assert_eq!(json["batch"], 1, "a batch is never empty");
    }

    #[test]
    fn replies_route_back_to_their_partition_and_request() {
        let subject = reply_subject("_INBOX.abc", 17, 42);
        assert_eq!(route("_INBOX.abc", &subject), Some((17, 42)));
        assert_eq!(route("_INBOX.abc", "_INBOX.abcd.1.2"), None);
        assert_eq!(route("_INBOX.abc", "_INBOX.abc.x.2"), None);
        assert_eq!(route("_INBOX.abc", "other.1.2"), None);
        assert_eq!(delivered_partition("yourlogic.events.12"), Some(12));
        assert_eq!(delivered_partition("yourlogic.events.x"), None);
        assert_eq!(delivered_partition("yourlogic.eventsx.1"), None);
    }

    fn status(code: u16, description: &str) -> Message {
        Message {
            subject: "s".into(),
            reply: None,
            payload: Bytes::new(),
            headers: None,
            status: StatusCode::from_u16(code).ok(),
            description: Some(description.into()),
            length: 0,
        }
    }

    #[test]
    fn status_messages_are_classified() {
        assert_eq!(
            status_of(&status(100, "Idle Heartbeat")),
            Some(Status::Heartbeat)
        );
        assert_eq!(
            status_of(&status(408, "Request Timeout")),
            Some(Status::Ended)
        );
        assert_eq!(
            status_of(&status(409, "Leadership Change")),
            Some(Status::Ended)
        );
        assert_eq!(
            status_of(&status(423, "Nats-Wrong-Pin-Id")),
            Some(Status::WrongPin)
        );
        assert_eq!(
            status_of(&status(409, "Consumer Deleted")),
            Some(Status::ConsumerGone)
        );
        assert_eq!(status_of(&status(503, "")), Some(Status::ConsumerGone));
        assert_eq!(
            status_of(&status(400, "Bad Request - Invalid Priority Group")),
            Some(Status::ConsumerGone)
        );
    }
}
