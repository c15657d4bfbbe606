//! Deciding one event in-process and explaining the decision, as JSON for the page.
//!
//! The explanation has the field names of the playbook's decision explanation (`language`,
//! `phase_before`/`phase_after`, `state_before`/`state_after`, `chosen`, `candidates`,
//! `details`, `notes`, ...), so the page renders whatever the playbook tells: named fields where
//! it knows them, any other field as plain JSON. Today it is derived from what a decision
//! already says (the reply, its signals, the auto-answer step) and from the playbook state in
//! `conversation.custom` before and after; recognition scores (`candidates`, confidences) appear
//! once the playbook reports them. With the generative step, `generative` tells its outcome,
//! the fallback reason and the passages the model was given.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use serde_json::{Map, Value, json};
use shared::event::Event;
use worker::logic::Context;
use worker::logic::generative::{GenerativeLogic, Trace};
use worker::logic::playbook::language::{self, ReplyLanguage};
use worker::logic::playbook::outcomes::intent_label;
use worker::logic::playbook::state::{self, State};
use worker::logic::playbook::{Decision, Options, Playbook, Signal, StepKind};

/// One event decided in-process.
#[derive(Debug, Clone)]
pub struct Decided {
    /// The answer body, as the worker would send it (`actions`, `conversation.custom`, ...).
    pub answer: Value,
    /// How long the decision took (the explanation is built afterwards, not counted).
    pub latency: Duration,
    /// Why it answered so.
    pub why: Value,
}

/// Decides the event `body` with `playbook`, or with `generative` (the playbook with the
/// model, given `budget` like the worker gives it the event's), as the worker would (a silent
/// trigger never asks for a human), and explains the decision.
pub async fn decide(
    playbook: &Playbook,
    options: &Options,
    generative: Option<&GenerativeLogic>,
    body: &[u8],
    budget: Duration,
) -> Result<Decided, String> {
    let event = Event::from_json(body).map_err(|e| format!("the event is not valid: {e}"))?;
    let started = Instant::now();
    let (mut decision, trace) = match generative {
        Some(logic) => {
            let now = Utc::now();
            let deadline =
                now + chrono::Duration::from_std(budget).unwrap_or(chrono::Duration::MAX);
            let context = Context::new(deadline, now, 1, Bytes::copy_from_slice(body));
            logic.decide_traced(&event, &context).await
        }
        None => (playbook.decide_with(options, &event, None), None),
    };
    if event.is_silent() {
        decision.reply = decision.reply.without_escalation();
    }
    let latency = started.elapsed();
    let answer = serde_json::to_value(&decision.reply)
        .map_err(|e| format!("the answer does not serialise: {e}"))?;
    let mut why = explain(playbook, options, &event, &decision, &answer);
    if let (Some(trace), Value::Object(why)) = (trace, &mut why) {
        if trace.fallback.is_none() {
            // The model's answer replaced the playbook's: say what the playbook had chosen.
            let own = playbook.decide_with(options, &event, None);
            if let Ok(own_answer) = serde_json::to_value(&own.reply) {
                let own_why = explain(playbook, options, &event, &own, &own_answer);
                why.insert("playbook_choice".into(), own_why["chosen"].clone());
            }
        }
        why.insert("generative".into(), generative_json(&trace));
    }
    Ok(Decided {
        answer,
        latency,
        why,
    })
}

/// What the generative step did: its outcome, the fallback reason, the passages it was given.
fn generative_json(trace: &Trace) -> Value {
    json!({
        "outcome": trace.outcome,
        "fallback": trace.fallback,
        "model_ms": trace.model_time.as_secs_f64() * 1000.0,
        "passages": trace.passages.iter()
            .map(|(source, text)| json!({"source": source, "text": text}))
            .collect::<Vec<_>>(),
    })
}

/// The explanation of `decision` on `event` (see the module docs).
fn explain(
    playbook: &Playbook,
    options: &Options,
    event: &Event,
    decision: &Decision,
    answer: &Value,
) -> Value {
    let custom_before = event.conversation_custom();
    let custom_after = answer
        .pointer("/conversation/custom")
        .and_then(Value::as_object)
        .or(custom_before);
    let before = State::read(custom_before);
    let after = State::read(custom_after);
    let yl = |custom: Option<&Map<String, Value>>| {
        custom
            .and_then(|c| c.get(state::KEY))
            .cloned()
            .unwrap_or(Value::Null)
    };
    let details: Map<String, Value> = after
        .details
        .iter()
        .map(|(k, v)| (k.clone(), json!(v)))
        .collect();
    json!({
        "language": reply_language(playbook, options, event),
        "phase_before": phase(&before),
        "phase_after": phase(&after),
        "chosen": chosen(decision, &before, &after, answer),
        "details": details,
        "signals": decision.signals.iter().map(signal).collect::<Vec<_>>(),
        "answer_step": decision.answer_step.as_ref().map(|step| json!({
            "kind": step_kind(step.kind),
            "language": step.language,
        })),
        "state_before": yl(custom_before),
        "state_after": yl(custom_after),
    })
}

/// The reply language and why: the customer's when the playbook speaks it, else the default.
fn reply_language(playbook: &Playbook, options: &Options, event: &Event) -> Value {
    let default = playbook.default_language();
    if options.reply_language == ReplyLanguage::Account {
        return json!({"code": default, "reason": "default", "note": "REPLY_LANGUAGE=account"});
    }
    let Some(customer) = language::customer_language(event) else {
        return json!({"code": default, "reason": "default", "note": "the event names no language"});
    };
    let primary = |code: &str| code.split('-').next().unwrap_or(code).to_string();
    let spoken = playbook
        .languages()
        .iter()
        .any(|l| *l == customer || primary(l) == primary(&customer));
    if spoken {
        json!({"code": customer, "reason": "customer"})
    } else {
        json!({"code": default, "reason": "default",
               "note": format!("the playbook has no texts in {customer}")})
    }
}

fn phase(state: &State) -> String {
    format!("{:?}", state.phase).to_lowercase()
}

fn step_kind(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Knowledge => "knowledge",
        StepKind::Intent => "intent",
        StepKind::NotUnderstood => "not_known",
    }
}

fn signal(signal: &Signal) -> Value {
    match signal {
        Signal::Escalated(reason) => json!({"escalated": reason.label()}),
        Signal::Resolution { resolved } => json!({"resolved": resolved}),
        Signal::Rating { rating, scale } => json!({"rating": rating, "scale": scale}),
        Signal::Intent(kind) => json!({"intent": intent_label(*kind)}),
        Signal::Completed(containment) => json!({"completed": containment.label()}),
    }
}

/// What the decision did, in the explanation's terms (`kind`, `id`, `reason`), read from its
/// signals, its auto-answer step and the state it left.
fn chosen(decision: &Decision, before: &State, after: &State, answer: &Value) -> Vec<Value> {
    let mut chosen = Vec::new();
    if before.phase == state::Phase::New && after.phase != state::Phase::New {
        chosen.push(json!({"kind": "greeting", "reason": "the first customer message"}));
    }
    let asking = after.pending.is_some() && after.pending != before.pending;
    if asking {
        chosen.push(json!({"kind": "ask_detail", "id": after.pending,
                           "reason": "the entry needs a detail first"}));
    }
    // The state names the entry last answered; a new name is this decision's answer.
    let newly_answered = after.last_answer.is_some() && after.last_answer != before.last_answer;
    match decision.answer_step.as_ref().map(|s| s.kind) {
        Some(StepKind::Knowledge) if !asking || newly_answered => chosen.push(json!({
            "kind": "knowledge", "id": after.last_answer,
            "reason": "matched the knowledge entry"})),
        Some(StepKind::Knowledge) => {}
        Some(StepKind::Intent) => chosen.push(json!({"kind": "intent",
            "reason": "matched a small-talk or off-topic intent"})),
        Some(StepKind::NotUnderstood) => chosen.push(json!({"kind": "not_known",
            "reason": "nothing matched"})),
        None if newly_answered => chosen.push(json!({"kind": "knowledge",
            "id": after.last_answer, "reason": "the detail it asked for arrived"})),
        None => {}
    }
    for signal in &decision.signals {
        match signal {
            Signal::Escalated(reason) => {
                chosen.push(json!({"kind": "escalate", "reason": reason.label()}));
            }
            Signal::Resolution { resolved } => chosen.push(json!({"kind": "closing",
                "reason": if *resolved { "resolved" } else { "not resolved" }})),
            Signal::Rating { rating, scale } => chosen.push(json!({"kind": "rating",
                "reason": format!("{rating} of {scale}")})),
            Signal::Intent(kind) => {
                if let Some(intent) = chosen.iter_mut().find(|c| c["kind"] == "intent") {
                    intent["id"] = json!(intent_label(*kind));
                }
            }
            Signal::Completed(containment) => chosen.push(json!({"kind": "completed",
                "reason": containment.label()})),
        }
    }
    if after.phase == state::Phase::Closing && before.phase != state::Phase::Closing {
        chosen.push(json!({"kind": "closing", "reason": "asks whether the issue is resolved"}));
    }
    if chosen.is_empty() {
        let acted = answer
            .get("actions")
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        chosen.push(if acted {
            json!({"kind": "ack", "reason": "a playbook rule for this trigger"})
        } else if after.phase == state::Phase::Human {
            json!({"kind": "silent", "reason": "a human agent has the conversation"})
        } else {
            json!({"kind": "silent", "reason": "nothing to say at this point"})
        });
    }
    chosen
}
