//! The inbound Salted CX event: what Salted CX POSTs for every action in a conversation.
//!
//! Strict about what the pipeline needs (`requestId`, `expires`, a conversation id, `accountId`),
//! tolerant about everything else: unknown fields are ignored here (the raw JSON travels through
//! the queue untouched, so nothing is lost) and enum values use [`crate::tolerant_enum`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

crate::tolerant_enum! {
    /// What happened in the conversation.
    pub enum TriggerType {
        Message => "MESSAGE",
        File => "FILE",
        Navigation => "NAVIGATION",
        Action => "ACTION",
        MenuStep => "MENU_STEP",
        Answer => "ANSWER",
        Review => "REVIEW",
        ConversationUpdate => "CONVERSATION_UPDATE",
        EngagementCompleted => "ENGAGEMENT_COMPLETED",
        ConversationCompleted => "CONVERSATION_COMPLETED",
    }
}

crate::tolerant_enum! {
    /// Who acted: the customer, an agent, an external agent or a bot.
    pub enum ParticipantType {
        Customer => "CUSTOMER",
        Agent => "AGENT",
        ExternalAgent => "EXTERNAL_AGENT",
        Bot => "BOT",
    }
}

crate::tolerant_enum! {
    /// Status of a conversation or an engagement.
    pub enum Status {
        InProgress => "IN_PROGRESS",
        Completed => "COMPLETED",
    }
}

crate::tolerant_enum! {
    /// Kind of engagement (a queue, an agent, Your Logic, ...).
    pub enum EngagementType {
        Queue => "QUEUE",
        Agent => "AGENT",
        ExternalAgent => "EXTERNAL_AGENT",
        Bot => "BOT",
    }
}

/// One event as Salted CX sends it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// Unique id of this request; the answer must carry it.
    pub request_id: Uuid,
    /// When Salted CX created the request (by its clock).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    /// The time until which Your Logic may answer (by Salted CX's clock).
    pub expires: DateTime<Utc>,
    /// What happened.
    pub trigger: Trigger,
    /// The Salted CX account; part of the callback path.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub domain: Option<String>,
    /// Region of the account (`eu`, ...); selects the callback host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub region: Option<String>,
    /// The last known customer location in Universal Chat.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer: Option<Customer>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    #[serde(default)]
    pub engagements: Vec<Engagement>,
    #[serde(default)]
    pub turns: Vec<Turn>,
}

/// The event that caused the request. Type-specific fields are optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    #[serde(rename = "type")]
    pub kind: TriggerType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_type: Option<ParticipantType>,
    /// `true` for messages that must never escalate when Your Logic fails.
    #[serde(default, skip_serializing_if = "is_false")]
    pub silent: bool,
    /// Agent pid (messages and actions from agents).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Message content translated to the account language (may be absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    /// The verbatim content in the customer's language.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_agent: Option<String>,
    /// FILE: name, MIME type and (24 h) link of the media.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mime_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_link: Option<String>,
    /// NAVIGATION: the page the customer went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_visited_url: Option<String>,
    /// ACTION: the name of the button the agent pressed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action: Option<String>,
    /// MENU_STEP: the article's technical id.
    #[serde(
        default,
        rename = "technicalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub technical_id: Option<String>,
    /// ANSWER: the answered question's external id.
    #[serde(
        default,
        rename = "externalID",
        skip_serializing_if = "Option::is_none"
    )]
    pub external_id: Option<String>,
    /// REVIEW fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_type: Option<ParticipantType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turn: Option<String>,
    /// Conversation Update: the changed conversation attributes (free-form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Map<String, Value>>,
    /// ENGAGEMENT_COMPLETED: the engagement that completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement: Option<Engagement>,
    /// CONVERSATION_COMPLETED: the conversation that completed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_pid: Option<String>,
}

/// Structured information about the customer.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Customer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub contacts: Vec<Contact>,
    /// Free-form data Your Logic stored earlier (at most 1 kB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
}

/// A way to reach the customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Contact {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// Structured information about the conversation.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Conversation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_conversation_time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs_help: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_visited_url: Option<String>,
    /// Free-form data Your Logic stored earlier (at most 1 kB).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<Map<String, Value>>,
}

/// A participant's involvement in the conversation (queue, agent, bot, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Engagement {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<EngagementType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_type: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_category: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome_pid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

/// One turn of the conversation (a message, a file, ...), oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Turn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub engagement_pid: Option<String>,
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<TriggerType>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub participant_type: Option<ParticipantType>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub silent: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_customer: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language_agent: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<String>,
}

/// Ids travel as NATS header values and become callback URL path segments: control characters
/// (which cannot be put in a header) and `.` or `..` (which would move the callback to another
/// path, even percent-encoded) are refused.
fn check_id(what: &str, id: &str) -> Result<(), EventError> {
    if id.chars().any(char::is_control) {
        return Err(EventError::Invalid(format!(
            "invalid event: {what} contains control characters"
        )));
    }
    if id == "." || id == ".." {
        return Err(EventError::Invalid(format!(
            "invalid event: {what} `{id}` is not a usable id"
        )));
    }
    Ok(())
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// Why an event cannot be accepted: the message names the field and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// The body is not JSON at all (with line and column).
    #[error("{0}")]
    Malformed(String),
    /// The JSON is valid but a field the pipeline needs is missing or wrong.
    #[error("{0}")]
    Invalid(String),
}

impl Event {
    /// Parses and validates an event from its raw JSON body.
    ///
    /// Errors name the offending field path (`trigger.type`, `turns[2].time`, ...) or the line
    /// and column of a JSON syntax error.
    pub fn from_json(body: &[u8]) -> Result<Event, EventError> {
        if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
            // Not an object: broken JSON, or valid JSON of the wrong kind.
            return Err(
                match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    Err(err) => EventError::Malformed(format!("body is not valid JSON: {err}")),
                    Ok(_) => {
                        EventError::Invalid("invalid event: the body must be a JSON object".into())
                    }
                },
            );
        }
        // The fast path for valid events; the error is then worked out by the slower parse
        // that tracks the path of the offending field.
        if let Ok(event) = serde_json::from_slice::<Event>(body) {
            event.validate()?;
            return Ok(event);
        }
        let mut deserializer = serde_json::Deserializer::from_slice(body);
        let parsed: Result<Event, _> = serde_path_to_error::deserialize(&mut deserializer);
        let event = match parsed {
            Ok(event) => {
                deserializer.end().map_err(|err| {
                    EventError::Malformed(format!("body is not valid JSON: {err}"))
                })?;
                event
            }
            Err(err) => {
                let path = err.path().to_string();
                let inner = err.into_inner();
                if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                    return Err(EventError::Malformed(format!(
                        "body is not valid JSON: {inner}"
                    )));
                }
                // A type error can come before a syntax error further on: broken JSON is
                // reported as such, so check the syntax before blaming a field (error path
                // only; valid events are parsed once).
                if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                    return Err(EventError::Malformed(format!(
                        "body is not valid JSON: {syntax}"
                    )));
                }
                return Err(if path.is_empty() || path == "." {
                    EventError::Invalid(format!("invalid event: {inner}"))
                } else {
                    EventError::Invalid(format!("invalid event at `{path}`: {inner}"))
                });
            }
        };
        event.validate()?;
        Ok(event)
    }

    /// Checks what the pipeline needs beyond the JSON shape.
    fn validate(&self) -> Result<(), EventError> {
        let Some(conversation) = self.conversation_pid() else {
            return Err(EventError::Invalid(
                "invalid event: no conversation id (`conversation.pid`, or \
                 `trigger.conversationPid` for CONVERSATION_COMPLETED)"
                    .into(),
            ));
        };
        check_id("the conversation id", conversation)?;
        match self.account_id.as_deref().map(str::trim) {
            None | Some("") => Err(EventError::Invalid(
                "invalid event: `accountId` is missing; it is needed to answer the event".into(),
            )),
            Some(account) => check_id("`accountId`", account),
        }
    }

    /// The conversation this event belongs to: `conversation.pid`, or
    /// `trigger.conversationPid` (CONVERSATION_COMPLETED). Empty strings do not count.
    pub fn conversation_pid(&self) -> Option<&str> {
        let from_conversation = self.conversation.as_ref().and_then(|c| c.pid.as_deref());
        from_conversation
            .into_iter()
            .chain(self.trigger.conversation_pid.as_deref())
            .map(str::trim)
            .find(|pid| !pid.is_empty())
    }

    /// Whether the event must never cause an escalation (silent message).
    pub fn is_silent(&self) -> bool {
        self.trigger.silent
    }

    /// The conversation's stored custom data, if any.
    pub fn conversation_custom(&self) -> Option<&Map<String, Value>> {
        self.conversation.as_ref().and_then(|c| c.custom.as_ref())
    }

    /// Text of the trigger for matching: the customer's verbatim content first, then the
    /// translated content.
    pub fn trigger_texts(&self) -> impl Iterator<Item = &str> {
        [
            self.trigger.content_customer.as_deref(),
            self.trigger.content.as_deref(),
            self.trigger.content_agent.as_deref(),
        ]
        .into_iter()
        .flatten()
    }
}
