//! Why the playbook's answer was used instead of the model's (`reason` of
//! `yourlogic_generative_fallbacks_total`).

use super::client::ChatError;
use super::verify::Rejection;

/// Why the playbook's answer was used instead of the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Too little time left before the deadline to ask.
    NoTime,
    /// No passage is relevant to the message: the model is not asked to invent an answer.
    NoPassages,
    Timeout,
    Unavailable,
    /// The server refused the key (HTTP 401 or 403): a configuration error, alerted on.
    Unauthorized,
    HttpError,
    Malformed,
    /// No text and no tool call.
    Empty,
    /// The text only repeats the customer's question.
    Echo,
    /// The text looks like an action, a note for agents or an instruction.
    Unsafe,
    /// The text states contact data, a price or a link that the model was not given.
    Unverified,
}

impl Fallback {
    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Fallback::NoTime => "no_time",
            Fallback::NoPassages => "no_passages",
            Fallback::Timeout => "timeout",
            Fallback::Unavailable => "unavailable",
            Fallback::Unauthorized => "unauthorized",
            Fallback::HttpError => "http_error",
            Fallback::Malformed => "malformed",
            Fallback::Empty => "empty",
            Fallback::Echo => "echo",
            Fallback::Unsafe => "unsafe",
            Fallback::Unverified => "unverified",
        }
    }

    /// Whether the customer's message was understood as far as the model is concerned: only
    /// when no passage is relevant does the playbook's own view (perhaps a misunderstanding)
    /// stand; a slow, failing or refused model says nothing about the customer.
    pub fn says_nothing_about_the_message(self) -> bool {
        self != Fallback::NoPassages
    }
}

impl From<&ChatError> for Fallback {
    fn from(err: &ChatError) -> Self {
        match err {
            ChatError::Timeout(_) => Fallback::Timeout,
            ChatError::Unavailable => Fallback::Unavailable,
            ChatError::Status(401 | 403) => Fallback::Unauthorized,
            ChatError::Status(_) => Fallback::HttpError,
            ChatError::Malformed(_) => Fallback::Malformed,
        }
    }
}

impl From<Rejection> for Fallback {
    fn from(rejection: Rejection) -> Self {
        match rejection {
            Rejection::Unsafe(_) => Fallback::Unsafe,
            Rejection::Unverified(_) => Fallback::Unverified,
        }
    }
}
