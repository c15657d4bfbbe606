//! The wire form of a conversation's next event: the trigger of each scenario step and the
//! event around it (the whole context, as Salted CX sends it), serialised without building
//! intermediate JSON trees for the large parts.

use chrono::Utc;
use serde::Serialize;
use serde_json::{Map, Value, json};
use uuid::Uuid;

use super::{ACCOUNT_ID, Agent, BuiltEvent, Conversation, DOMAIN, Engagement, REGION};
use crate::scenario::Step;

impl Conversation {
    /// Applies `step`; returns the event to send, or `None` for a step that only changes the
    /// context (`agent_joins`). `size` > 0 pads (or trims the oldest turns of) the event to
    /// about that many bytes.
    pub fn event(
        &mut self,
        step: &Step,
        budget: std::time::Duration,
        size: usize,
    ) -> Option<BuiltEvent> {
        let now = Utc::now();
        let time = super::timestamp(now);
        let trigger = self.step(step, &time)?;
        Some(self.build(trigger, now, budget, size))
    }

    /// The event with `trigger` created at `now` (see [`Conversation::event`] for `size`).
    fn build(
        &self,
        trigger: Value,
        now: chrono::DateTime<Utc>,
        budget: std::time::Duration,
        size: usize,
    ) -> BuiltEvent {
        let time = super::timestamp(now);
        let request_id = Uuid::new_v4();
        let expires = now + chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::MAX);
        let head = Head {
            request_id: request_id.to_string(),
            account_id: ACCOUNT_ID,
            time: &time,
            expires: super::timestamp(expires),
            trigger,
            domain: DOMAIN,
            region: REGION,
            url: self.url.as_deref(),
            customer: CustomerOut {
                pid: &self.customer_pid,
                display_name: &self.customer,
                contacts: self.phone.as_deref().map(|contact| Contact {
                    contact,
                    kind: "Phone",
                }),
                custom: &self.customer_custom,
            },
            conversation: ConversationOut {
                pid: &self.pid,
                start_conversation_time: &self.started,
                needs_help: self.needs_help,
                status: if self.completed {
                    "COMPLETED"
                } else {
                    "IN_PROGRESS"
                },
                platform: &self.platform,
                direction: "INBOUND",
                language_customer: &self.language,
                engage_your_logic: true,
                fallback_to_agent: self.fallback_to_agent,
                last_visited_url: self.url.as_deref(),
                custom: &self.custom,
            },
            engagements: &self.engagements,
        };
        let body = crate::body::assemble(&head, &self.turns, size);
        BuiltEvent {
            request_id,
            expires,
            body,
        }
    }

    /// The event of the customer writing `text` (a step that always sends one).
    pub fn message(&mut self, text: &str, budget: std::time::Duration) -> BuiltEvent {
        let now = Utc::now();
        let time = super::timestamp(now);
        let trigger = self.customer_message(text, false, &time);
        self.build(trigger, now, budget, 0)
    }

    /// Adds the customer's message `text` to the turns and returns its trigger.
    fn customer_message(&mut self, text: &str, silent: bool, time: &str) -> Value {
        let talking = self
            .agent
            .as_ref()
            .map_or(self.bot_engagement, |a| a.engagement);
        self.push_message("CUSTOMER", talking, text, "RECEIVED");
        let mut trigger = json!({
            "time": time, "type": "MESSAGE", "participantType": "CUSTOMER",
            "content": text, "contentCustomer": text, "languageCustomer": self.language,
            "contentAgent": text, "languageAgent": "en",
        });
        if silent {
            trigger["silent"] = json!(true);
        }
        trigger
    }

    /// Updates the context for `step` and returns its trigger (`None`: no event).
    fn step(&mut self, step: &Step, time: &str) -> Option<Value> {
        let agent_pid = self.agent.as_ref().map(|a| a.pid.clone());
        let talking = self
            .agent
            .as_ref()
            .map_or(self.bot_engagement, |a| a.engagement);
        Some(match step {
            Step::Customer(text) => self.customer_message(text, false, time),
            Step::CustomerSilent(text) => self.customer_message(text, true, time),
            Step::AgentJoins(name) => {
                let pid = Uuid::new_v4().to_string();
                self.engagements.push(Engagement {
                    pid: Uuid::new_v4().to_string(),
                    time: time.to_string(),
                    agent: Some(pid.clone()),
                    kind: "AGENT",
                    status: "IN_PROGRESS",
                    name: Some(name.clone()),
                    reason: None,
                    outcome_type: None,
                });
                let engagement = self.engagements.len() - 1;
                self.agent = Some(Agent {
                    name: name.clone(),
                    pid,
                    engagement,
                });
                return None;
            }
            Step::Agent(text) => {
                self.push_message("AGENT", talking, text, "DELIVERED");
                json!({"time": time, "type": "MESSAGE", "participantType": "AGENT",
                       "agent": agent_pid.unwrap_or_else(supervisor), "content": text, "language": "en"})
            }
            Step::Action(action) => json!({
                "time": time, "type": "ACTION", "participantType": "AGENT",
                "agent": agent_pid.unwrap_or_else(supervisor), "action": action,
            }),
            Step::AgentLeaves(leave) => {
                let mut completed = Value::Null;
                if let Some(agent) = self.agent.take()
                    && let Some(engagement) = self.engagements.get_mut(agent.engagement)
                {
                    engagement.status = "COMPLETED";
                    engagement.reason = Some(leave.reason.clone());
                    engagement.outcome_type = Some(leave.outcome.clone());
                    completed = serde_json::to_value(&*engagement).unwrap_or_default();
                }
                json!({"time": time, "type": "ENGAGEMENT_COMPLETED", "participantType": "AGENT",
                       "engagement": completed})
            }
            Step::File(file) => {
                let link = format!("https://files.example.com/{}/{}", self.pid, file.name);
                let turn = json!({
                    "time": time, "engagementPid": self.engagements.get(talking).map(|e| &e.pid), "type": "FILE",
                    "participantType": "CUSTOMER", "mediaName": file.name, "mimeType": file.mime,
                    "mediaLink": link, "status": "RECEIVED", "id": Uuid::new_v4().to_string(),
                    "pid": Uuid::new_v4().to_string(),
                });
                self.turns
                    .push(serde_json::to_vec(&turn).unwrap_or_default());
                json!({"time": time, "type": "FILE", "participantType": "CUSTOMER",
                       "mediaName": file.name, "mimeType": file.mime, "mediaLink": link})
            }
            Step::Navigation(url) => {
                self.url = Some(url.clone());
                json!({"time": time, "type": "NAVIGATION", "participantType": "CUSTOMER",
                       "lastVisitedUrl": url})
            }
            Step::Review(review) => json!({
                "time": time, "type": "REVIEW", "reviewType": "Customer",
                "questionPid": Uuid::new_v4().to_string(), "questionName": review.question,
                "answerPid": Uuid::new_v4().to_string(), "answerName": review.answer,
                "reviewReason": review.reason, "turn": self.last_bot_turn,
            }),
            Step::MenuStep(id) => json!({"time": time, "type": "MENU_STEP",
                "participantType": "CUSTOMER", "technicalID": id}),
            Step::Answer(id) => json!({"time": time, "type": "ANSWER",
                "participantType": "CUSTOMER", "externalID": id}),
            Step::ConversationUpdate(state) => json!({"time": time, "type": "Conversation Update",
                "conversation": {"state": state}}),
            Step::Completed => {
                self.completed = true;
                for engagement in &mut self.engagements {
                    engagement.status = "COMPLETED";
                }
                json!({"time": time, "type": "CONVERSATION_COMPLETED", "conversationPid": self.pid})
            }
        })
    }
}

/// A supervisor pressing a button while no agent is engaged.
fn supervisor() -> String {
    "00000000-0000-4000-8000-00000000a11d".into()
}

/// Everything of an event but its turns.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Head<'a> {
    request_id: String,
    account_id: &'a str,
    time: &'a str,
    expires: String,
    trigger: Value,
    domain: &'a str,
    region: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    url: Option<&'a str>,
    customer: CustomerOut<'a>,
    conversation: ConversationOut<'a>,
    engagements: &'a [Engagement],
}

/// `customer` of an event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct CustomerOut<'a> {
    pid: &'a str,
    display_name: &'a str,
    #[serde(serialize_with = "as_list")]
    contacts: Option<Contact<'a>>,
    custom: &'a Map<String, Value>,
}

#[derive(Serialize)]
struct Contact<'a> {
    contact: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
}

/// A contact as a list of zero or one.
fn as_list<S: serde::Serializer>(
    contact: &Option<Contact<'_>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(contact.iter())
}

/// `conversation` of an event.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ConversationOut<'a> {
    pid: &'a str,
    start_conversation_time: &'a str,
    needs_help: bool,
    status: &'a str,
    platform: &'a str,
    direction: &'a str,
    language_customer: &'a str,
    engage_your_logic: bool,
    fallback_to_agent: bool,
    last_visited_url: Option<&'a str>,
    custom: &'a Map<String, Value>,
}
