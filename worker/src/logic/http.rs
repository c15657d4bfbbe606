//! The HTTP delegate (`LOGIC=http`): forwards every event to your own service and relays its
//! answer, so the conversation logic can be written in any language.
//!
//! **Request** — `POST {LOGIC_URL}` with the event exactly as Salted CX sent it (the raw JSON
//! body, byte for byte) and these headers:
//! - `Content-Type: application/json`;
//! - `Yl-Deadline`: RFC 3339 instant after which the worker stops waiting for you (the event's
//!   deadline minus the time kept for the callback, and at most `LOGIC_TIMEOUT` from now);
//! - `Yl-Event-Deadline`: the event's own deadline (RFC 3339), for information;
//! - `Yl-Request-Id`: the event's `requestId`;
//! - `Yl-Delivery`: 1, or more when the event is redelivered (answer it the same way).
//!
//! **Response** — `2xx` with a JSON reply, the same shape the worker sends to Salted CX minus the
//! `requestId`: `{"actions":[{"type":"MESSAGE","content":"..."}, {"type":"NOTE",...},
//! {"type":"NEEDS_HELP","needsHelp":true}], "conversation":{"custom":{...}},
//! "customer":{"custom":{...}}, "control":{...}}`; every key is optional, and `204` or an empty
//! body means "no actions". The reply is validated: unknown action types, empty message or note
//! contents, and `custom` objects over 1 kB are errors.
//!
//! **Failures** — a timeout, a connection error, `408`, `429` or `5xx` is
//! [`LogicError::Unavailable`]; any other status or an invalid reply is [`LogicError::Failed`].
//! Either way the worker dead-letters the event and sends its fallback answer (ask for a human,
//! never for a silent trigger).

use std::time::Duration;

use async_trait::async_trait;
use chrono::{SecondsFormat, Utc};
use reqwest::header::CONTENT_TYPE;
use shared::answer::{Action, Reply};
use shared::event::Event;

use super::body::{BodyError, read_capped};
use super::{Context, Logic, LogicError};

/// Header: when the worker stops waiting for the delegate (RFC 3339).
pub const DEADLINE_HEADER: &str = "yl-deadline";
/// Header: the event's deadline (RFC 3339).
pub const EVENT_DEADLINE_HEADER: &str = "yl-event-deadline";
/// Header: the event's `requestId`.
pub const REQUEST_ID_HEADER: &str = "yl-request-id";
/// Header: the delivery count (1 the first time).
pub const DELIVERY_HEADER: &str = "yl-delivery";
/// Time kept in hand after the delegate's deadline, for the callback to Salted CX.
pub const DEFAULT_MARGIN: Duration = Duration::from_millis(350);
/// Largest reply body read from the delegate.
pub const MAX_REPLY_BYTES: usize = 256 * 1024;

/// The delegate could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum HttpLogicError {
    /// `LOGIC_URL` does not parse or is not http(s).
    #[error("LOGIC_URL `{url}` is not a valid http(s) URL: {reason}")]
    BadUrl { url: String, reason: String },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot create the HTTP client for the logic delegate: {0}")]
    Client(String),
}

/// Forwards events to an HTTP service (see the module documentation for the protocol).
#[derive(Debug, Clone)]
pub struct HttpLogic {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    margin: Duration,
}

impl HttpLogic {
    /// A delegate POSTing to `url`, waiting at most `timeout` per event (less when the event's
    /// deadline is nearer). Connections are pooled and reused.
    pub fn new(url: &str, timeout: Duration) -> Result<Self, HttpLogicError> {
        let bad = |reason: String| HttpLogicError::BadUrl {
            url: shared::secret::redact_url(url),
            reason,
        };
        let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(bad(format!("the scheme is `{}`", parsed.scheme())));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("yourlogic-worker/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(2)))
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(64)
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| HttpLogicError::Client(e.to_string()))?;
        Ok(Self {
            client,
            url: parsed,
            timeout,
            margin: DEFAULT_MARGIN,
        })
    }

    /// Keeps `margin` between the delegate's deadline and the event's (time for the callback).
    pub fn with_margin(mut self, margin: Duration) -> Self {
        self.margin = margin;
        self
    }

    /// How long to wait for the delegate now.
    fn budget(&self, context: &Context) -> Duration {
        context
            .remaining()
            .saturating_sub(self.margin)
            .min(self.timeout)
    }
}

#[async_trait]
impl Logic for HttpLogic {
    async fn decide(&self, event: &Event, context: &Context) -> Result<Reply, LogicError> {
        let budget = self.budget(context);
        if budget.is_zero() {
            return Err(LogicError::Unavailable(
                "no time left before the deadline to ask the logic delegate".into(),
            ));
        }
        let until = Utc::now() + chrono::Duration::from_std(budget).unwrap_or_default();
        let rfc3339 = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Millis, true);
        let sent = self
            .client
            .post(self.url.clone())
            .timeout(budget)
            .header(CONTENT_TYPE, "application/json")
            .header(DEADLINE_HEADER, rfc3339(until))
            .header(EVENT_DEADLINE_HEADER, rfc3339(context.deadline))
            .header(REQUEST_ID_HEADER, event.request_id.to_string())
            .header(DELIVERY_HEADER, context.delivery.to_string())
            .body(context.raw.clone())
            .send()
            .await;
        let response = sent.map_err(|e| unavailable(e, budget))?;
        let status = response.status();
        let body = match read_capped(response, MAX_REPLY_BYTES).await {
            Ok(body) => body,
            Err(BodyError::Read(e)) => return Err(unavailable(e, budget)),
            Err(BodyError::TooLarge(max)) => {
                return Err(LogicError::Failed(format!(
                    "the logic delegate's reply is larger than {max} bytes"
                )));
            }
        };
        let code = status.as_u16();
        if status.is_server_error() || code == 408 || code == 429 {
            return Err(LogicError::Unavailable(format!(
                "the logic delegate answered {status}: {}",
                excerpt(&body)
            )));
        }
        if !status.is_success() {
            return Err(LogicError::Failed(format!(
                "the logic delegate answered {status}: {}",
                excerpt(&body)
            )));
        }
        parse_reply(&body)
    }
}

/// Parses and validates the delegate's reply body.
pub fn parse_reply(body: &[u8]) -> Result<Reply, LogicError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Reply::nothing());
    }
    let reply: Reply = serde_json::from_slice(body)
        .map_err(|e| LogicError::Failed(format!("the logic delegate's reply is invalid: {e}")))?;
    for (i, action) in reply.actions.iter().enumerate() {
        if let Action::Message { content } | Action::Note { content } = action
            && content.trim().is_empty()
        {
            return Err(LogicError::Failed(format!(
                "the logic delegate's reply is invalid: actions[{i}] ({}) has no content",
                action.kind()
            )));
        }
    }
    Ok(reply)
}

/// The delegate could not be reached. The error text leaves the URL out: it may carry a key in
/// its query, and the text ends up in dead letters and logs.
fn unavailable(err: reqwest::Error, budget: Duration) -> LogicError {
    if err.is_timeout() {
        LogicError::Unavailable(format!(
            "the logic delegate did not answer within {budget:?}"
        ))
    } else {
        let err = err.without_url();
        LogicError::Unavailable(format!("the logic delegate is unreachable: {err}"))
    }
}

/// The start of a response body, for error messages.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    match text.char_indices().nth(200) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None if text.is_empty() => "(empty body)".into(),
        None => text.to_string(),
    }
}

#[cfg(test)]
#[path = "http_tests.rs"]
mod tests;
