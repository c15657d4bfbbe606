//! What travels with an event through the queue besides its raw JSON: NATS headers carrying the
//! request id, the conversation, the local deadline, the receipt time and where the answer goes,
//! so every stage can drop work that can no longer be answered in time, and answer an event that
//! cannot be processed with the fallback, without parsing the body.

use async_nats::HeaderMap;
use chrono::{DateTime, SecondsFormat, Utc};
use uuid::Uuid;

/// Header with the event's request id (also used as `Nats-Msg-Id` for de-duplication).
pub const REQUEST_ID: &str = "Yl-Request-Id";
/// Header with the conversation id.
pub const CONVERSATION: &str = "Yl-Conversation";
/// Header with the local deadline (RFC 3339, our clock).
pub const DEADLINE: &str = "Yl-Deadline";
/// Header with the ingress receipt time (RFC 3339, our clock).
pub const RECEIVED: &str = "Yl-Received";
/// Header with the trigger type, for metrics.
pub const TRIGGER: &str = "Yl-Trigger";
/// Header present (`1`) when the trigger is silent.
pub const SILENT: &str = "Yl-Silent";
/// Header with the Salted CX account id (part of the callback path).
pub const ACCOUNT: &str = "Yl-Account";
/// Header with the account's region (selects the callback host), when the event has one.
pub const REGION: &str = "Yl-Region";

/// The routing and timing facts of one queued event.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    pub request_id: Uuid,
    pub conversation: String,
    pub deadline: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub trigger: String,
    pub silent: bool,
    /// The account the answer goes to (absent in events queued by earlier versions, which
    /// carry it only in the body).
    pub account_id: Option<String>,
    /// The account's region, if the event names one.
    pub region: Option<String>,
}

/// A queued message lacks a header or has a malformed one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("queued event header `{header}` is missing or malformed")]
pub struct EnvelopeError {
    pub header: &'static str,
}

impl Envelope {
    /// The headers to publish, including `Nats-Msg-Id`.
    pub fn to_headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let id = self.request_id.to_string();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, id.as_str());
        headers.insert(REQUEST_ID, id.as_str());
        headers.insert(CONVERSATION, header_safe(&self.conversation).as_ref());
        headers.insert(DEADLINE, format_time(self.deadline).as_str());
        headers.insert(RECEIVED, format_time(self.received_at).as_str());
        headers.insert(TRIGGER, header_safe(&self.trigger).as_ref());
        if self.silent {
            headers.insert(SILENT, "1");
        }
        if let Some(account) = &self.account_id {
            headers.insert(ACCOUNT, header_safe(account).as_ref());
        }
        if let Some(region) = &self.region {
            headers.insert(REGION, header_safe(region).as_ref());
        }
        headers
    }

    /// Reads the envelope back from a delivered message's headers.
    pub fn from_headers(headers: Option<&HeaderMap>) -> Result<Self, EnvelopeError> {
        let get = |name: &'static str| {
            headers
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_string())
                .ok_or(EnvelopeError { header: name })
        };
        let time = |name: &'static str| {
            get(name).and_then(|text| {
                DateTime::parse_from_rfc3339(&text)
                    .map(|t| t.with_timezone(&Utc))
                    .map_err(|_| EnvelopeError { header: name })
            })
        };
        Ok(Self {
            request_id: get(REQUEST_ID)?
                .parse()
                .map_err(|_| EnvelopeError { header: REQUEST_ID })?,
            conversation: get(CONVERSATION)?,
            deadline: time(DEADLINE)?,
            received_at: time(RECEIVED)?,
            trigger: get(TRIGGER).unwrap_or_default(),
            silent: get(SILENT).is_ok_and(|v| v == "1"),
            account_id: get(ACCOUNT).ok(),
            region: get(REGION).ok(),
        })
    }
}

/// A header value cannot hold CR or LF (the NATS client refuses them, by panicking): they are
/// replaced by spaces. Free-form values such as an unknown trigger type may contain them;
/// conversation ids cannot (events with such ids are refused as invalid).
fn header_safe(value: &str) -> std::borrow::Cow<'_, str> {
    if value.contains(['\r', '\n']) {
        value.replace(['\r', '\n'], " ").into()
    } else {
        value.into()
    }
}

fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_survives_a_round_trip_through_headers() {
        let now = DateTime::from_timestamp_micros(1_700_000_000_123_456).expect("time");
        let envelope = Envelope {
            request_id: Uuid::new_v4(),
            conversation: "conv-1".into(),
            deadline: now + chrono::TimeDelta::seconds(15),
            received_at: now,
            trigger: "MESSAGE".into(),
            silent: true,
            account_id: Some("acct".into()),
            region: Some("eu".into()),
        };
        let headers = envelope.to_headers();
        assert_eq!(Envelope::from_headers(Some(&headers)), Ok(envelope));
    }

    #[test]
    fn line_breaks_in_free_form_values_never_break_the_headers() {
        let envelope = Envelope {
            request_id: Uuid::new_v4(),
            conversation: "conv\r\n1".into(),
            deadline: Utc::now(),
            received_at: Utc::now(),
            trigger: "\r\nPUB x 1".into(),
            silent: false,
            account_id: Some("acct".into()),
            region: None,
        };
        let read = Envelope::from_headers(Some(&envelope.to_headers())).expect("readable");
        assert_eq!(read.trigger, "  PUB x 1");
        assert_eq!(read.conversation, "conv  1");
    }

    #[test]
    fn a_missing_header_is_named_in_the_error() {
        let err = Envelope::from_headers(None).expect_err("no headers");
        assert_eq!(err.header, REQUEST_ID);
    }
}
