//! Reading a delivered event, trusting nothing NATS delivers: whatever may publish on the event
//! subjects (the ingress's credential, a misconfigured client) could have skipped the ingress.
//! So the worker applies the ingress's own checks again, with the same code, before it builds
//! anything:
//!
//! - the body is at most `MAX_BODY_BYTES`;
//! - [`Admission::from_json`]: valid JSON, bounded nesting, every list bounded (`turns`,
//!   `engagements`, `customer.contacts`, any other), numbers a double holds, the ids and the
//!   deadline readable;
//! - the body is the envelope's event (same requestId, conversation and account);
//! - lone surrogate escapes are read as U+FFFD, as the ingress read them.
//!
//! An event that fails is dead-lettered and answered with the fallback (see [`super::plan`]).

use shared::admission::Admission;
use shared::envelope::Envelope;
use shared::event::{Event, EventError};

/// The limits the worker holds queued events to (the ingress's).
#[derive(Debug, Clone, Copy)]
pub struct EventLimits {
    /// Largest body read (`MAX_BODY_BYTES`).
    pub max_body_bytes: usize,
    /// Longest time an event is worked on from when NATS stored it (`MAX_BUDGET`).
    pub max_budget: std::time::Duration,
}

/// The event of `payload`, read as the ingress admitted it, with the paths of fields of
/// unexpected types that were left out.
pub fn read_event(
    payload: &[u8],
    envelope: &Envelope,
    limits: &EventLimits,
) -> Result<(Event, Vec<String>), EventError> {
    if payload.len() > limits.max_body_bytes {
        return Err(EventError::Invalid(format!(
            "invalid event: the body has {} bytes, more than MAX_BODY_BYTES ({})",
            payload.len(),
            limits.max_body_bytes
        )));
    }
    // UTF-8 is checked once; both parses then read the text without checking it again.
    let text = shared::admission::utf8(payload)?;
    let admission = Admission::from_text(text, envelope.account_id.as_deref())?;
    matches_envelope(&admission, envelope)?;
    if admission.has_lone_surrogates() {
        tracing::info!("lone surrogate escapes in the event are read as U+FFFD");
    }
    Event::from_text_lenient(&admission.readable_text(text))
}

/// The body must be the event its envelope (the headers the worker routes and answers by)
/// describes.
fn matches_envelope(admission: &Admission, envelope: &Envelope) -> Result<(), EventError> {
    let differs = |what: &str| {
        Err(EventError::Invalid(format!(
            "invalid event: its {what} differs from the one in its queue headers"
        )))
    };
    if admission.request_id != envelope.request_id {
        return differs("requestId");
    }
    if admission.conversation != envelope.conversation {
        return differs("conversation id");
    }
    if envelope
        .account_id
        .as_deref()
        .is_some_and(|account| account != admission.account_id)
    {
        return differs("accountId");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use serde_json::json;

    fn event(conversation: &str) -> serde_json::Value {
        json!({
            "requestId": "005ea483-5151-479d-842e-f5ef0a1fa5cc",
            "expires": "2026-01-01T10:00:15Z",
            "trigger": {"type": "MESSAGE", "contentCustomer": "__TEXT__"},
            "accountId": "acct",
            "conversation": {"pid": conversation},
        })
    }

    /// The limits of the worker's defaults (`MAX_BODY_BYTES`, `MAX_BUDGET`).
    fn limits() -> EventLimits {
        EventLimits {
            max_body_bytes: 1 << 20,
            max_budget: std::time::Duration::from_secs(60),
        }
    }

    fn envelope(conversation: &str) -> Envelope {
        Envelope {
            request_id: "005ea483-5151-479d-842e-f5ef0a1fa5cc"
                .parse()
                .expect("uuid"),
            conversation: conversation.into(),
            deadline: Utc::now(),
            received_at: Utc::now(),
            trigger: "MESSAGE".into(),
            silent: false,
            account_id: Some("acct".into()),
            region: None,
        }
    }

    #[test]
    fn a_lone_surrogate_is_read_as_a_replacement_character() {
        let body = event("c").to_string().replace("__TEXT__", "a\\ud800b");
        let (event, dropped) =
            read_event(body.as_bytes(), &envelope("c"), &limits()).expect("readable");
        assert_eq!(
            event.trigger.content_customer.as_deref(),
            Some("a\u{fffd}b")
        );
        assert!(dropped.is_empty());
    }

    #[test]
    fn the_ingress_limits_hold_and_the_body_must_be_the_envelopes_event() {
        let small = EventLimits {
            max_body_bytes: 200,
            ..limits()
        };
        let body = event("c").to_string().replace("__TEXT__", &"x".repeat(300));
        let err = read_event(body.as_bytes(), &envelope("c"), &small).expect_err("too large");
        assert!(err.to_string().contains("MAX_BODY_BYTES"), "{err}");
        let body = event("c").to_string();
        let err = read_event(body.as_bytes(), &envelope("other"), &limits())
            .expect_err("another conversation");
        assert!(err.to_string().contains("conversation id differs"), "{err}");
        let mut flooded = event("c");
        flooded["turns"] = json!(vec![json!({}); 10_001]);
        let err = read_event(flooded.to_string().as_bytes(), &envelope("c"), &limits())
            .expect_err("too many turns");
        assert!(
            err.to_string().contains("`turns` has more than 10000"),
            "{err}"
        );
    }
}
