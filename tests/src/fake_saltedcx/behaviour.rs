//! What the fake Salted CX answers, and what it recorded.

use std::collections::VecDeque;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::{Value, json};

/// How the fake answers one authorized, well-formed callback.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// Answer with this HTTP status and JSON body.
    Respond {
        /// HTTP status code.
        status: u16,
        /// JSON response body.
        body: Value,
    },
    /// Cut the TCP connection without any response (the client sees a connection reset).
    Reset,
    /// Never answer: hold the request open until the client gives up or the fake goes offline
    /// (then the connection is reset). Emulates a server that hangs past the client timeout.
    Hang,
}

impl Reply {
    /// `200 {}`: the request is resolved (what Salted CX answers normally).
    pub fn ok() -> Reply {
        Reply::Respond {
            status: 200,
            body: json!({}),
        }
    }

    /// This status with a small JSON error body, e.g. `Reply::status(500)` or `(429)`.
    pub fn status(status: u16) -> Reply {
        let body = if (200..300).contains(&status) {
            json!({})
        } else {
            json!({ "error": { "status": status, "message": "scripted failure" } })
        };
        Reply::Respond { status, body }
    }

    /// This status with this JSON body.
    pub fn json(status: u16, body: Value) -> Reply {
        Reply::Respond { status, body }
    }
}

/// The fake's behaviour; change it any time with
/// [`FakeSaltedCx::set_behaviour`](super::FakeSaltedCx::set_behaviour) and friends.
///
/// Only authorized calls with a parseable body and a request id consume the script or wait for
/// the delay: a wrong token always gets `401`, a bad body `400`, immediately.
#[derive(Debug, Clone, PartialEq)]
pub struct Behaviour {
    /// Replies for the next calls, one per call in arrival order.
    pub script: VecDeque<Reply>,
    /// The reply once the script is used up.
    pub default: Reply,
    /// Wait this long before answering each call (scripted or default).
    pub delay: Duration,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour::always(Reply::ok())
    }
}

impl Behaviour {
    /// Always `reply`, without delay.
    pub fn always(reply: Reply) -> Behaviour {
        Behaviour {
            script: VecDeque::new(),
            default: reply,
            delay: Duration::ZERO,
        }
    }

    /// `replies` for the first calls, `200 {}` afterwards.
    pub fn script(replies: impl IntoIterator<Item = Reply>) -> Behaviour {
        Behaviour {
            script: replies.into_iter().collect(),
            ..Behaviour::default()
        }
    }

    /// The first `n` calls get `status` (e.g. 500 or 429), the following ones `200 {}`.
    pub fn fail_first(n: usize, status: u16) -> Behaviour {
        Behaviour::script(std::iter::repeat_n(Reply::status(status), n))
    }

    /// The same behaviour with a delay before every answer.
    pub fn with_delay(mut self, delay: Duration) -> Behaviour {
        self.delay = delay;
        self
    }

    /// The same behaviour with another reply once the script is used up.
    pub fn then(mut self, default: Reply) -> Behaviour {
        self.default = default;
        self
    }

    /// Takes the reply for the next call.
    pub(super) fn next_reply(&mut self) -> Reply {
        self.script
            .pop_front()
            .unwrap_or_else(|| self.default.clone())
    }
}

/// How a recorded call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Still being handled (waiting for the configured delay).
    Pending,
    /// An HTTP response with this status was sent (`status_returned` holds it too).
    Responded(u16),
    /// The connection was cut without a response.
    Reset,
    /// The fake is holding the request without answering ([`Reply::Hang`]).
    Hung,
}

/// One call to the callback endpoint, as the fake saw it.
#[derive(Debug, Clone, PartialEq)]
pub struct Callback {
    /// `{accountId}` from the path (percent-decoded).
    pub account_id: String,
    /// `{conversationPid}` from the path (percent-decoded).
    pub conversation_pid: String,
    /// `requestId` (or its documented alias `request`) from the body.
    pub request_id: Option<String>,
    /// The body as JSON; a body that is not JSON is kept as a JSON string of its text.
    pub body: Value,
    /// The raw `Authorization` header.
    pub authorization: Option<String>,
    /// When the request arrived.
    pub received_at: DateTime<Utc>,
    /// HTTP status sent back; 0 while pending and when no response was sent (reset, hang).
    pub status_returned: u16,
    /// How the call ended (or that it has not yet).
    pub outcome: Outcome,
}

impl Callback {
    /// Whether the fake answered 2xx, i.e. Salted CX would consider the request resolved.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status_returned)
    }

    /// Whether the fake has finished deciding this call (anything but [`Outcome::Pending`]).
    pub fn is_complete(&self) -> bool {
        self.outcome != Outcome::Pending
    }

    /// The `actions` array of the body (empty if absent).
    pub fn actions(&self) -> Vec<Value> {
        self.body
            .get("actions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
    }
}
