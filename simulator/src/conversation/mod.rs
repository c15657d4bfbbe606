//! One emulated conversation's context, as Salted CX keeps it: the customer, the conversation
//! flags, the engagements and the growing list of turns. [`Conversation::event`] turns the next
//! scenario step into the full event JSON (the whole context, as Salted CX sends it);
//! [`Conversation::apply`] records what Your Logic answered (bot messages become turns, custom
//! data is stored and sent back with the next events, `NEEDS_HELP` sets `needsHelp`);
//! [`Conversation::fall_back`] is what Salted CX does when no answer came in time.
//!
//! Turns are kept serialised, so building an event is one small serialisation plus copies.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::scenario::Scenario;

mod wire;

/// The Salted CX account every simulated conversation belongs to.
pub const ACCOUNT_ID: &str = "8a1f5c2e-6b7d-4e3a-9f10-2c4d6e8f0a1b";
/// The domain of the simulated account.
pub const DOMAIN: &str = "demo-adventures";
/// The region of the simulated account.
pub const REGION: &str = "eu";
/// Top-level field that pads an event to the requested size; unknown to the event model.
pub const PADDING_FIELD: &str = "simPadding";
/// The agent id of Your Logic's own engagement (Salted CX lists it as an `AGENT` engagement,
/// as in its example request; a worker may be told this id with `BOT_AGENT_IDS`).
pub const BOT_AGENT_ID: &str = "5b0d7c1a-2f3e-4a5b-9c6d-7e8f90a1b2c3";

/// An engagement as it appears in `engagements[]`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct Engagement {
    pid: String,
    time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    agent: Option<String>,
    #[serde(rename = "type")]
    kind: &'static str,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome_type: Option<String>,
}

/// The engaged agent.
#[derive(Debug, Clone)]
struct Agent {
    name: String,
    pid: String,
    engagement: usize,
}

/// An event ready to send.
#[derive(Debug, Clone)]
pub struct BuiltEvent {
    /// Its `requestId`.
    pub request_id: Uuid,
    /// Its `expires`.
    pub expires: DateTime<Utc>,
    /// The JSON body.
    pub body: Vec<u8>,
}

/// The emulated context of one conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pid: String,
    customer_pid: String,
    customer: String,
    phone: Option<String>,
    language: String,
    platform: String,
    started: String,
    completed: bool,
    needs_help: bool,
    fallback_to_agent: bool,
    url: Option<String>,
    custom: Map<String, Value>,
    customer_custom: Map<String, Value>,
    engagements: Vec<Engagement>,
    /// Serialised turns, oldest first.
    turns: Vec<Vec<u8>>,
    bot_engagement: usize,
    agent: Option<Agent>,
    last_bot_turn: Option<String>,
}

/// What an answer changed, for transcripts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Applied {
    /// The `actions` array as sent.
    pub actions: Vec<Value>,
    /// Whether `conversation.custom` was replaced, and its new size in bytes.
    pub custom_bytes: Option<usize>,
    /// The new `conversation.custom`, when the answer replaced it.
    pub custom: Option<Map<String, Value>>,
    /// The conversation's needs-help flag after the answer.
    pub needs_help: bool,
}

fn now_text() -> String {
    timestamp(Utc::now())
}

/// Formats a time as Salted CX does (RFC 3339, UTC, microseconds, `Z`).
pub fn timestamp(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

impl Conversation {
    /// A new conversation of `scenario`'s customer, with a completed QUEUE engagement and Your
    /// Logic's own engagement in progress: of type `AGENT`, with agent id [`BOT_AGENT_ID`], as
    /// Salted CX's example request shows it.
    pub fn new(scenario: &Scenario) -> Conversation {
        let started = now_text();
        let engagement = |kind, status, agent: Option<&str>| Engagement {
            pid: Uuid::new_v4().to_string(),
            time: started.clone(),
            agent: agent.map(str::to_string),
            kind,
            status,
            name: None,
            reason: None,
            outcome_type: None,
        };
        Conversation {
            pid: Uuid::new_v4().to_string(),
            customer_pid: Uuid::new_v4().to_string(),
            customer: scenario.customer.clone(),
            phone: scenario.phone.clone(),
            language: scenario.language.clone(),
            platform: scenario.platform.clone(),
            started: started.clone(),
            completed: false,
            needs_help: false,
            fallback_to_agent: false,
            url: scenario.url.clone(),
            custom: scenario.custom.clone(),
            customer_custom: Map::new(),
            engagements: vec![
                engagement("QUEUE", "COMPLETED", None),
                engagement("AGENT", "IN_PROGRESS", Some(BOT_AGENT_ID)),
            ],
            turns: Vec::new(),
            bot_engagement: 1,
            agent: None,
            last_bot_turn: None,
        }
    }

    /// The conversation's `pid`.
    pub fn pid(&self) -> &str {
        &self.pid
    }

    /// Whether the conversation is flagged as needing help.
    pub fn needs_help(&self) -> bool {
        self.needs_help
    }

    /// Whether Salted CX had to fall back to an agent at least once.
    pub fn fell_back(&self) -> bool {
        self.fallback_to_agent
    }

    /// The name of the engaged agent, if any.
    pub fn agent_name(&self) -> Option<&str> {
        self.agent.as_ref().map(|a| a.name.as_str())
    }

    /// The conversation's stored custom data.
    pub fn custom(&self) -> &Map<String, Value> {
        &self.custom
    }

    /// Records an answer's effects (see the module docs).
    pub fn apply(&mut self, answer: &Value) -> Applied {
        let actions = answer
            .get("actions")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for action in &actions {
            match action.get("type").and_then(Value::as_str) {
                Some(kind) if kind.eq_ignore_ascii_case("MESSAGE") => {
                    let text = action
                        .get("content")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let pid = self.push_message("BOT", self.bot_engagement, text, "DELIVERED");
                    self.last_bot_turn = Some(pid);
                }
                Some(kind) if kind.eq_ignore_ascii_case("NEEDS_HELP") => {
                    self.needs_help = action
                        .get("needsHelp")
                        .and_then(Value::as_bool)
                        .unwrap_or(true);
                }
                _ => {}
            }
        }
        let mut applied = Applied {
            actions,
            custom_bytes: None,
            custom: None,
            needs_help: self.needs_help,
        };
        if let Some(Value::Object(custom)) = answer.pointer("/conversation/custom") {
            applied.custom_bytes = serde_json::to_vec(custom).ok().map(|v| v.len());
            applied.custom = Some(custom.clone());
            self.custom = custom.clone();
        }
        if let Some(Value::Object(custom)) = answer.pointer("/customer/custom") {
            self.customer_custom = custom.clone();
        }
        applied
    }

    /// No answer came before `expires`: Salted CX hands the conversation to an agent.
    pub fn fall_back(&mut self) {
        self.needs_help = true;
        self.fallback_to_agent = true;
    }

    /// Appends a message turn; returns its pid.
    fn push_message(&mut self, who: &str, engagement: usize, text: &str, status: &str) -> String {
        let pid = Uuid::new_v4().to_string();
        let engagement_pid = self.engagements.get(engagement).map(|e| e.pid.as_str());
        let turn = json!({
            "time": now_text(), "engagementPid": engagement_pid, "type": "MESSAGE",
            "participantType": who, "content": text, "contentCustomer": text,
            "languageCustomer": self.language, "contentAgent": text, "languageAgent": "en",
            "status": status, "id": Uuid::new_v4().to_string(), "pid": pid,
        });
        self.turns
            .push(serde_json::to_vec(&turn).unwrap_or_default());
        pid
    }
}
