//! The studio's conversation: the steps played so far and what each got, on the simulator's own
//! conversation context ([`Conversation`]: growing turns, engagements, `custom` echoed back,
//! `needsHelp`), so every event is built exactly as `demo`, `load` and `test` build it.
//!
//! A step is answered in-process by the studio's playbook (with the generative step when the
//! studio has a model), or through the running pipeline ([`super::pipeline`]); a replay plays every step again on a new conversation and marks the
//! answers that differ from the ones before.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;
use worker::logic::generative::GenerativeLogic;
use worker::logic::playbook::{Options, Playbook};

use super::explain;
use super::pipeline::{Pipeline, Posted};
use crate::conversation::Conversation;
use crate::scenario::{Scenario, Step};

/// Where answers come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The studio's playbook, called directly.
    InProcess,
    /// The studio's playbook with the generative step (a model server), in-process.
    Generative,
    /// Ingress -> NATS -> worker -> callback to the studio.
    Pipeline,
}

/// What answers a step: the mode's backend and the studio's own playbook (which also explains
/// the pipeline's answers).
pub struct Backend<'a> {
    pub mode: Mode,
    pub playbook: &'a Playbook,
    pub version: u64,
    pub options: &'a Options,
    /// The generative step of this playbook version, when the studio has a model.
    pub generative: Option<&'a GenerativeLogic>,
    pub pipeline: Option<&'a Pipeline>,
    pub budget: Duration,
}

/// One step and its answer.
#[derive(Debug, Clone, Serialize)]
pub struct Exchange {
    /// The step, in the case-file form (`{"customer": "Hi"}`, `"completed"`).
    pub step: Value,
    /// The engaged agent's name at the step, if any.
    pub agent: Option<String>,
    /// `None` for a step without an event (`agent_joins`).
    pub answer: Option<Answer>,
    /// Set by a replay when the answer differs from the one before: the earlier actions.
    pub changed_from: Option<Vec<Value>>,
}

/// What an event got.
#[derive(Debug, Clone, Serialize)]
pub struct Answer {
    pub request_id: Uuid,
    /// The event as sent (the whole context, as Salted CX sends it).
    pub event: Value,
    pub mode: Mode,
    /// `answered`, `late` (after the deadline), `expired` (none), `refused` (by the ingress)
    /// or `failed` (the logic failed).
    pub outcome: &'static str,
    /// The answer's actions as sent (MESSAGE, NOTE, NEEDS_HELP).
    pub actions: Vec<Value>,
    /// `conversation.custom` after the answer (when the answer replaced it).
    pub custom: Option<Map<String, Value>>,
    /// The conversation's needs-help flag afterwards.
    pub needs_help: bool,
    /// In-process: the decision's time; pipeline: from the post to the callback.
    pub latency_ms: f64,
    /// The event's budget (`expires - time`).
    pub deadline_ms: f64,
    /// What went wrong, for the outcomes other than `answered`.
    pub problem: Option<String>,
    /// The playbook version that explained it.
    pub playbook_version: u64,
    /// Why it answered so (see [`explain`]); in pipeline mode the studio's own playbook's
    /// reading of the same event, with `explained_in_process` and `same_as_pipeline`.
    pub why: Value,
}

/// The conversation being tried.
pub struct Session {
    /// The conversation's set-up (language, customer, custom); its steps are `exchanges`.
    pub scenario: Scenario,
    conversation: Conversation,
    pub exchanges: Vec<Exchange>,
}

impl Session {
    /// A new conversation of a customer writing in `language`.
    pub fn new(language: &str) -> Session {
        let scenario = Scenario {
            name: "studio".into(),
            title: "studio".into(),
            customer: "Studio Customer".into(),
            phone: None,
            language: language.to_string(),
            platform: "WEB".into(),
            url: None,
            custom: Map::new(),
            steps: Vec::new(),
        };
        Session {
            conversation: Conversation::new(&scenario),
            scenario,
            exchanges: Vec::new(),
        }
    }

    /// The conversation's `pid`.
    pub fn pid(&self) -> &str {
        self.conversation.pid()
    }

    /// The steps played so far.
    pub fn steps(&self) -> Vec<Step> {
        self.scenario.steps.clone()
    }

    /// Plays `step` and records its answer.
    pub async fn play(&mut self, step: Step, backend: &Backend<'_>) {
        let exchange = play_on(&mut self.conversation, &step, backend).await;
        self.scenario.steps.push(step);
        self.exchanges.push(exchange);
    }

    /// Plays every step again on a new conversation (same set-up) and marks the answers that
    /// changed.
    pub async fn replay(&mut self, backend: &Backend<'_>) {
        let mut conversation = Conversation::new(&self.scenario);
        let mut exchanges = Vec::with_capacity(self.exchanges.len());
        for (step, old) in self.scenario.steps.iter().zip(&self.exchanges) {
            let mut exchange = play_on(&mut conversation, step, backend).await;
            let before = old.answer.as_ref().map(|a| &a.actions);
            let now = exchange.answer.as_ref().map(|a| &a.actions);
            if before != now {
                exchange.changed_from = Some(before.cloned().unwrap_or_default());
            }
            exchanges.push(exchange);
        }
        self.conversation = conversation;
        self.exchanges = exchanges;
    }
}

/// Plays `step` on `conversation` (built, answered, the answer applied).
async fn play_on(conversation: &mut Conversation, step: &Step, backend: &Backend<'_>) -> Exchange {
    let agent_before = conversation.agent_name().map(str::to_owned);
    let built = conversation.event(step, backend.budget, 0);
    let answer = match built {
        None => None,
        Some(built) => {
            // The pipeline's answers are explained by the playbook alone: the model is not
            // asked twice.
            let generative = backend
                .generative
                .filter(|_| backend.mode == Mode::Generative);
            let local = explain::decide(
                backend.playbook,
                backend.options,
                generative,
                &built.body,
                backend.budget,
            )
            .await;
            let (outcome, body, latency, problem) = match (backend.mode, backend.pipeline) {
                (Mode::Pipeline, Some(pipeline)) => {
                    match pipeline.send(conversation.pid(), &built).await {
                        Posted::Answered { body, latency } => ("answered", body, latency, None),
                        Posted::Late { latency } => {
                            let why = "the answer came after the deadline: Salted CX fell back to an agent";
                            ("late", Value::Null, latency, Some(why.to_string()))
                        }
                        Posted::Expired => (
                            "expired",
                            Value::Null,
                            backend.budget,
                            Some(
                                "no answer before the deadline: Salted CX fell back to an agent"
                                    .into(),
                            ),
                        ),
                        Posted::Refused(why) => ("refused", Value::Null, Duration::ZERO, Some(why)),
                    }
                }
                _ => match &local {
                    Ok(decided) => ("answered", decided.answer.clone(), decided.latency, None),
                    Err(why) => ("failed", Value::Null, Duration::ZERO, Some(why.clone())),
                },
            };
            let (local_actions, mut why) = match local {
                Ok(decided) => (decided.answer.get("actions").cloned(), decided.why),
                Err(_) => (None, Value::Null),
            };
            let applied = if outcome == "answered" {
                if backend.mode == Mode::Pipeline
                    && let Value::Object(why) = &mut why
                {
                    let same = local_actions.as_ref() == body.get("actions");
                    why.insert("explained_in_process".into(), Value::Bool(true));
                    why.insert("same_as_pipeline".into(), Value::Bool(same));
                }
                Some(conversation.apply(&body))
            } else {
                conversation.fall_back();
                None
            };
            Some(Answer {
                request_id: built.request_id,
                event: serde_json::from_slice(&built.body).unwrap_or(Value::Null),
                mode: backend.mode,
                outcome,
                actions: applied
                    .as_ref()
                    .map(|a| a.actions.clone())
                    .unwrap_or_default(),
                custom: applied.as_ref().and_then(|a| a.custom.clone()),
                needs_help: conversation.needs_help(),
                latency_ms: latency.as_secs_f64() * 1000.0,
                deadline_ms: backend.budget.as_secs_f64() * 1000.0,
                problem,
                playbook_version: backend.version,
                why,
            })
        }
    };
    Exchange {
        step: step_value(step),
        agent: conversation
            .agent_name()
            .map(str::to_owned)
            .or(agent_before),
        answer,
        changed_from: None,
    }
}

/// A step in the case-file form, as JSON (`{"customer": "Hi"}`, `"completed"`).
pub fn step_value(step: &Step) -> Value {
    super::export::step_toml(step)
        .and_then(|t| serde_json::to_value(t).ok())
        .unwrap_or(Value::Null)
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
