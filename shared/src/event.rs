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

/// The longest id accepted (conversation, account): Salted CX's ids are UUIDs; a limit keeps
/// them usable as NATS header values and URL path segments.
pub const MAX_ID_BYTES: usize = 256;

/// Ids travel as NATS header values and become callback URL path segments: control characters
/// (which cannot be put in a header), surrounding spaces (the id would not be the one used),
/// `.` or `..` (which would move the callback to another path, even percent-encoded) and very
/// long ids are refused.
pub fn check_id(what: &str, id: &str) -> Result<(), EventError> {
    let problem = if id.chars().any(char::is_control) {
        Some("contains control characters".to_string())
    } else if id.trim() != id {
        Some("has leading or trailing spaces".to_string())
    } else if id == "." || id == ".." {
        Some(format!("`{id}` is not a usable id"))
    } else if id.len() > MAX_ID_BYTES {
        Some(format!("is longer than {MAX_ID_BYTES} bytes"))
    } else {
        None
    };
    match problem {
        Some(problem) => Err(EventError::Invalid(format!(
            "invalid event: {what} {problem}"
        ))),
        None => Ok(()),
    }
}

/// The conversation id the pipeline routes by: present, not blank, and usable ([`check_id`]).
pub fn check_conversation(conversation: Option<&str>) -> Result<&str, EventError> {
    let Some(conversation) = conversation.filter(|c| !c.trim().is_empty()) else {
        return Err(EventError::Invalid(
            "invalid event: no conversation id (`conversation.pid`, or \
             `trigger.conversationPid` for CONVERSATION_COMPLETED)"
                .into(),
        ));
    };
    check_id("the conversation id", conversation)?;
    Ok(conversation)
}

/// The account the answer goes to: the event's `accountId`, or else the deployment's
/// `default_account` (SALTEDCX_ACCOUNT_ID); usable ([`check_id`]).
pub fn check_account<'a>(
    account: Option<&'a str>,
    default_account: Option<&'a str>,
) -> Result<&'a str, EventError> {
    match account.filter(|a| !a.trim().is_empty()) {
        Some(account) => check_id("`accountId`", account).map(|()| account),
        None => default_account.ok_or_else(|| {
            EventError::Invalid(
                "invalid event: `accountId` is missing; it is needed to answer the event (or \
                 set SALTEDCX_ACCOUNT_ID when Salted CX does not send it)"
                    .into(),
            )
        }),
    }
}

/// Fields the lenient parse never drops (paths as in error messages).
const NEEDED_FIELDS: &[&str] = &["requestId", "expires", "trigger", "trigger.type"];

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
    /// Parses and validates an event from its raw JSON body, strictly: every documented field
    /// must have its documented type.
    ///
    /// Errors name the offending field path (`trigger.type`, `turns[2].time`, ...) or the line
    /// and column of a JSON syntax error.
    pub fn from_json(body: &[u8]) -> Result<Event, EventError> {
        let event: Event = crate::parse::explained(body)?;
        event.validate()?;
        Ok(event)
    }

    /// Parses an event as the worker must, to answer every event the ingress accepted: a
    /// documented field of an unexpected type (the format is documented as still changing) is
    /// left out, and its path returned, instead of failing the whole event. The fields the
    /// pipeline needs (`requestId`, `expires`, `trigger.type`, the ids) must still be valid.
    pub fn from_json_lenient(body: &[u8]) -> Result<(Event, Vec<String>), EventError> {
        let (event, dropped): (Event, _) = crate::parse::repaired(body, NEEDED_FIELDS)?;
        event.validate()?;
        Ok((event, dropped))
    }

    /// [`Event::from_json_lenient`] of a body already known to be UTF-8 (faster: no string is
    /// checked again).
    pub fn from_text_lenient(body: &str) -> Result<(Event, Vec<String>), EventError> {
        let (event, dropped): (Event, _) = crate::parse::repaired_text(body, NEEDED_FIELDS)?;
        event.validate()?;
        Ok((event, dropped))
    }

    /// Checks what the pipeline needs beyond the JSON shape. An absent `accountId` is the
    /// ingress's concern (refused there unless the deployment configures one).
    fn validate(&self) -> Result<(), EventError> {
        check_conversation(self.conversation_pid())?;
        if let Some(account) = self.account_id.as_deref().filter(|a| !a.trim().is_empty()) {
            check_id("`accountId`", account)?;
        }
        Ok(())
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
