//! Builders of valid Salted CX events (as `serde_json::Value`) for tests.
//!
//! Every builder starts from a complete, valid event (fresh `requestId`, `time` now, `expires`
//! [`DEFAULT_BUDGET`] from now, fixed [`ACCOUNT_ID`], `region` `eu`, a customer, an
//! `IN_PROGRESS` conversation, no engagements or turns) with the trigger of its kind. Setters
//! adjust the common fields; [`EventBuilder::set`] and [`EventBuilder::remove`] reach any field
//! by JSON pointer, so tests can craft any event, including invalid ones.

use std::time::Duration;

use chrono::{DateTime, Utc};
use saltedcx_sim::conversation::timestamp;
use serde_json::{Map, Value, json};
use uuid::Uuid;

/// The account id of every built event.
pub const ACCOUNT_ID: &str = "5f0c6a8e-2d41-4b7a-9c3e-7a1d2b3c4e5f";
/// The domain of every built event.
pub const DOMAIN: &str = "testkit";
/// The region of every built event.
pub const REGION: &str = "eu";
/// Time between `time` and `expires` unless set otherwise.
pub const DEFAULT_BUDGET: Duration = Duration::from_secs(15);

/// A builder of one event.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    event: Value,
}

impl EventBuilder {
    /// An event of conversation `conversation_pid` with this `trigger` object (its `time` is
    /// added when missing).
    pub fn new(conversation_pid: &str, mut trigger: Value) -> EventBuilder {
        let now = Utc::now();
        if let Some(object) = trigger.as_object_mut() {
            object
                .entry("time")
                .or_insert_with(|| json!(timestamp(now)));
        }
        let event = json!({
            "requestId": Uuid::new_v4().to_string(),
            "accountId": ACCOUNT_ID,
            "time": timestamp(now),
            "expires": timestamp(now + DEFAULT_BUDGET),
            "trigger": trigger,
            "domain": DOMAIN,
            "region": REGION,
            "customer": {
                "pid": Uuid::new_v4().to_string(),
                "displayName": "Test Customer",
                "contacts": [],
                "custom": {}
            },
            "conversation": {
                "pid": conversation_pid,
                "startConversationTime": timestamp(now),
                "status": "IN_PROGRESS",
                "needsHelp": false,
                "platform": "WEB",
                "direction": "INBOUND",
                "custom": {}
            },
            "engagements": [],
            "turns": []
        });
        EventBuilder { event }
    }

    /// A message from the customer.
    pub fn message(conversation_pid: &str, text: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "MESSAGE",
                "participantType": "CUSTOMER",
                "content": text,
                "contentCustomer": text,
                "languageCustomer": "en"
            }),
        )
    }

    /// A message from an agent.
    pub fn agent_message(conversation_pid: &str, text: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "MESSAGE",
                "participantType": "AGENT",
                "agent": Uuid::new_v4().to_string(),
                "content": text,
                "language": "en"
            }),
        )
    }

    /// A file sent by the customer.
    pub fn file(conversation_pid: &str, media_name: &str, mime_type: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "FILE",
                "participantType": "CUSTOMER",
                "mediaName": media_name,
                "mimeType": mime_type,
                "mediaLink": format!("https://files.example.com/{media_name}")
            }),
        )
    }

    /// The customer navigated to `url`.
    pub fn navigation(conversation_pid: &str, url: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({ "type": "NAVIGATION", "participantType": "CUSTOMER", "lastVisitedUrl": url }),
        )
        .set("/url", json!(url))
        .set("/conversation/lastVisitedUrl", json!(url))
    }

    /// An agent pressed the action button `action`.
    pub fn action(conversation_pid: &str, action: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "ACTION",
                "participantType": "AGENT",
                "agent": Uuid::new_v4().to_string(),
                "action": action
            }),
        )
    }

    /// The customer reached a menu step with this technical id.
    pub fn menu_step(conversation_pid: &str, technical_id: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({ "type": "MENU_STEP", "participantType": "CUSTOMER", "technicalID": technical_id }),
        )
    }

    /// The customer answered a question with this external id.
    pub fn answer(conversation_pid: &str, external_id: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({ "type": "ANSWER", "participantType": "CUSTOMER", "externalID": external_id }),
        )
    }

    /// The customer reviewed a turn, e.g. `review(pid, "Thumbs Down", "Confusing")`.
    pub fn review(conversation_pid: &str, answer_name: &str, reason: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "REVIEW",
                "reviewType": "Customer",
                "questionPid": Uuid::new_v4().to_string(),
                "questionName": "Was this helpful?",
                "answerPid": Uuid::new_v4().to_string(),
                "answerName": answer_name,
                "reviewReason": reason,
                "turn": Uuid::new_v4().to_string()
            }),
        )
    }

    /// A conversation attribute changed (`state` e.g. "Customer Resolved").
    pub fn conversation_update(conversation_pid: &str, state: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({ "type": "Conversation Update", "conversation": { "state": state } }),
        )
    }

    /// An agent's engagement completed: Your Logic may take over again.
    pub fn engagement_completed(conversation_pid: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({
                "type": "ENGAGEMENT_COMPLETED",
                "engagement": {
                    "pid": Uuid::new_v4().to_string(),
                    "time": timestamp(Utc::now()),
                    "agent": Uuid::new_v4().to_string(),
                    "type": "AGENT",
                    "status": "COMPLETED",
                    "outcomeType": "ACCEPTED"
                }
            }),
        )
    }

    /// The conversation completed. As in the documentation, the id is only in
    /// `trigger.conversationPid`: there is no `conversation` object.
    pub fn conversation_completed(conversation_pid: &str) -> EventBuilder {
        Self::new(
            conversation_pid,
            json!({ "type": "CONVERSATION_COMPLETED", "conversationPid": conversation_pid }),
        )
        .remove("/conversation")
    }

    /// Sets `requestId`.
    pub fn request_id(self, request_id: &str) -> EventBuilder {
        self.set("/requestId", json!(request_id))
    }

    /// Sets `time`.
    pub fn time(self, time: DateTime<Utc>) -> EventBuilder {
        self.set("/time", json!(timestamp(time)))
    }

    /// Sets `expires` to this instant.
    pub fn expires_at(self, expires: DateTime<Utc>) -> EventBuilder {
        self.set("/expires", json!(timestamp(expires)))
    }

    /// Sets `expires` to `budget` from now.
    pub fn expires_in(self, budget: Duration) -> EventBuilder {
        let budget = chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::MAX);
        self.expires_at(Utc::now() + budget)
    }

    /// Sets `expires` to `ago` in the past (an already expired event).
    pub fn expired_since(self, ago: Duration) -> EventBuilder {
        let ago = chrono::Duration::from_std(ago).unwrap_or(chrono::Duration::MAX);
        self.expires_at(Utc::now() - ago)
    }

    /// Sets `trigger.type` (any spelling, e.g. `"Message"`).
    pub fn trigger_type(self, trigger_type: &str) -> EventBuilder {
        self.set("/trigger/type", json!(trigger_type))
    }

    /// Sets `trigger.participantType`.
    pub fn participant_type(self, participant_type: &str) -> EventBuilder {
        self.set("/trigger/participantType", json!(participant_type))
    }

    /// Sets `trigger.silent`.
    pub fn silent(self, silent: bool) -> EventBuilder {
        self.set("/trigger/silent", json!(silent))
    }

    /// Sets `conversation.custom` (the logic's stored state).
    pub fn custom(self, custom: Value) -> EventBuilder {
        self.set("/conversation/custom", custom)
    }

    /// Sets `customer.custom`.
    pub fn customer_custom(self, custom: Value) -> EventBuilder {
        self.set("/customer/custom", custom)
    }

    /// Sets `conversation.status` (e.g. `"COMPLETED"`).
    pub fn status(self, status: &str) -> EventBuilder {
        self.set("/conversation/status", json!(status))
    }

    /// Sets `conversation.needsHelp`.
    pub fn needs_help(self, needs_help: bool) -> EventBuilder {
        self.set("/conversation/needsHelp", json!(needs_help))
    }

    /// Sets `accountId`.
    pub fn account_id(self, account_id: &str) -> EventBuilder {
        self.set("/accountId", json!(account_id))
    }

    /// Sets `region`.
    pub fn region(self, region: &str) -> EventBuilder {
        self.set("/region", json!(region))
    }

    /// Appends an engagement object to `engagements`.
    pub fn engagement(mut self, engagement: Value) -> EventBuilder {
        push(&mut self.event, "engagements", engagement);
        self
    }

    /// Appends a turn object to `turns`.
    pub fn turn(mut self, turn: Value) -> EventBuilder {
        push(&mut self.event, "turns", turn);
        self
    }

    /// Sets the field at JSON pointer `pointer` (e.g. `"/trigger/silent"`), creating missing
    /// objects on the way. A pointer through a non-object value replaces it with an object.
    pub fn set(mut self, pointer: &str, value: Value) -> EventBuilder {
        let mut target = &mut self.event;
        let keys: Vec<String> = pointer_keys(pointer);
        let Some((last, parents)) = keys.split_last() else {
            self.event = value;
            return self;
        };
        for key in parents {
            target = as_object(target)
                .entry(key.clone())
                .or_insert_with(|| json!({}));
        }
        as_object(target).insert(last.clone(), value);
        self
    }

    /// Removes the field at JSON pointer `pointer`, if present.
    pub fn remove(mut self, pointer: &str) -> EventBuilder {
        let keys = pointer_keys(pointer);
        if let Some((last, parents)) = keys.split_last() {
            let parent = format!(
                "/{}",
                parents
                    .iter()
                    .map(|k| escape(k))
                    .collect::<Vec<_>>()
                    .join("/")
            );
            let parent = if parents.is_empty() {
                Some(&mut self.event)
            } else {
                self.event.pointer_mut(&parent)
            };
            if let Some(Value::Object(object)) = parent {
                object.remove(last);
            }
        }
        self
    }

    /// The event's `requestId`.
    pub fn request_id_str(&self) -> String {
        self.event["requestId"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The finished event.
    pub fn build(self) -> Value {
        self.event
    }

    /// The finished event as a JSON body.
    pub fn to_body(&self) -> Vec<u8> {
        // Serializing a Value cannot fail.
        serde_json::to_vec(&self.event).unwrap_or_default()
    }
}

fn pointer_keys(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|k| k.replace("~1", "/").replace("~0", "~"))
        .collect()
}

fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}

fn as_object(value: &mut Value) -> &mut Map<String, Value> {
    if !value.is_object() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(object) => object,
        _ => unreachable!("just made an object"),
    }
}

fn push(event: &mut Value, key: &str, item: Value) {
    let list = as_object(event).entry(key).or_insert_with(|| json!([]));
    if !list.is_array() {
        *list = json!([]);
    }
    if let Value::Array(items) = list {
        items.push(item);
    }
}
