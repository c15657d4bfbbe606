//! The answer to an event: the body of the callback to Salted CX.
//!
//! The callback format is documented as still in development, so its wire format lives only in
//! this module. Logic produces a [`Reply`]; the worker adds the `requestId` to make an [`Answer`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::custom::CustomData;

/// One action Salted CX executes, in order; a failing action stops the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    /// A message to the customer.
    Message { content: String },
    /// A note visible to agents only.
    Note { content: String },
    /// Ask for (or stop asking for) a human agent.
    NeedsHelp {
        #[serde(rename = "needsHelp")]
        needs_help: bool,
    },
}

impl Action {
    /// A message to the customer.
    pub fn message(content: impl Into<String>) -> Self {
        Action::Message {
            content: content.into(),
        }
    }

    /// A note to agents.
    pub fn note(content: impl Into<String>) -> Self {
        Action::Note {
            content: content.into(),
        }
    }

    /// Ask for a human agent.
    pub fn needs_help() -> Self {
        Action::NeedsHelp { needs_help: true }
    }

    /// The wire name of the action type (`MESSAGE`, `NOTE`, `NEEDS_HELP`).
    pub fn kind(&self) -> &'static str {
        match self {
            Action::Message { .. } => "MESSAGE",
            Action::Note { .. } => "NOTE",
            Action::NeedsHelp { .. } => "NEEDS_HELP",
        }
    }
}

/// Flow control for the conversation's queued events.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Control {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_to_time: Option<chrono::DateTime<chrono::Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip_to_latest: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_on_customer_action: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ignore_on_agent_action: Option<bool>,
}

/// Customer attribute updates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomerUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomData>,
}

/// Conversation updates.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ConversationUpdate {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<CustomData>,
}

/// What the logic decided for one event; the worker turns it into an [`Answer`].
/// An empty reply is valid: it still resolves the request.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reply {
    #[serde(default)]
    pub actions: Vec<Action>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Control>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<CustomerUpdate>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<ConversationUpdate>,
}

impl Reply {
    /// A reply with no actions: resolves the request and changes nothing.
    pub fn nothing() -> Self {
        Self::default()
    }

    /// A reply with no actions telling Salted CX to skip the conversation's queued events and
    /// send its latest one (for events superseded by later ones of the same conversation).
    pub fn skip_to_latest() -> Self {
        Self {
            control: Some(Control {
                skip_to_latest: Some(true),
                ..Control::default()
            }),
            ..Self::default()
        }
    }

    /// A reply with the given actions.
    pub fn with_actions(actions: Vec<Action>) -> Self {
        Self {
            actions,
            ..Self::default()
        }
    }

    /// Sets the conversation's custom data.
    pub fn with_conversation_custom(mut self, custom: CustomData) -> Self {
        self.conversation = Some(ConversationUpdate {
            custom: Some(custom),
        });
        self
    }

    /// Makes the reply safe for a silent trigger: drops every `NEEDS_HELP` action.
    pub fn without_escalation(mut self) -> Self {
        self.actions
            .retain(|action| !matches!(action, Action::NeedsHelp { .. }));
        self
    }
}

/// The callback body: `POST {api}/api/v1/live/your-logic/accounts/{accountId}/conversations/{pid}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Answer {
    /// Marks the event as resolved. Some documentation examples call it `request`.
    #[serde(alias = "request")]
    pub request_id: Uuid,
    #[serde(flatten)]
    pub reply: Reply,
}

impl Answer {
    /// The answer to request `request_id`.
    pub fn new(request_id: Uuid, reply: Reply) -> Self {
        Self { request_id, reply }
    }
}

/// The callback path for an answer, below the API base URL.
pub fn callback_path(account_id: &str, conversation_pid: &str) -> String {
    format!(
        "/api/v1/live/your-logic/accounts/{}/conversations/{}",
        encode_segment(account_id),
        encode_segment(conversation_pid)
    )
}

/// Percent-encodes everything but unreserved characters, so ids cannot change the path.
fn encode_segment(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for byte in segment.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn answer_serialises_to_the_documented_wire_format() {
        let id = Uuid::parse_str("3c99280a-9871-4656-a472-5da68d30c01f").expect("uuid");
        let reply = Reply::with_actions(vec![
            Action::message("Hi"),
            Action::note("for agents"),
            Action::needs_help(),
        ]);
        let value = serde_json::to_value(Answer::new(id, reply)).expect("serialises");
        assert_eq!(
            value,
            json!({
                "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
                "actions": [
                    {"type": "MESSAGE", "content": "Hi"},
                    {"type": "NOTE", "content": "for agents"},
                    {"type": "NEEDS_HELP", "needsHelp": true}
                ]
            })
        );
    }

    #[test]
    fn answer_accepts_the_request_alias_used_in_some_examples() {
        let answer: Answer = serde_json::from_value(json!({
            "request": "3c99280a-9871-4656-a472-5da68d30c01f",
            "actions": []
        }))
        .expect("parses");
        assert!(answer.reply.actions.is_empty());
    }

    #[test]
    fn silent_replies_lose_their_escalations() {
        let reply = Reply::with_actions(vec![Action::needs_help(), Action::note("n")]);
        assert_eq!(reply.without_escalation().actions, vec![Action::note("n")]);
    }

    #[test]
    fn callback_path_encodes_ids_so_they_cannot_escape_the_path() {
        assert_eq!(
            callback_path("acc/../x", "c 1"),
            "/api/v1/live/your-logic/accounts/acc%2F..%2Fx/conversations/c%201"
        );
    }
}
