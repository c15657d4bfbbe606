//! Deciding one event in-process and explaining the decision, as JSON for the page.
//!
//! The explanation is the playbook's own ([`Playbook::decide_explained_with`]: the reply
//! language and why, the phase and state before and after, the ranked candidates with their
//! confidence, what was chosen for each request, the message's clauses, the captured details,
//! the tone and trace notes), with the decision's signals and auto-answer step added. With the
//! generative step, `generative` tells its outcome, the fallback reason and the passages the
//! model was given, and `playbook_choice` what the playbook had chosen when the model's answer
//! replaced it.

use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::Utc;
use serde_json::{Map, Value, json};
use shared::event::Event;
use worker::logic::Context;
use worker::logic::generative::{GenerativeLogic, Trace};
use worker::logic::playbook::outcomes::intent_label;
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
    let mut why = explain(playbook, options, &event, &decision);
    if let (Some(trace), Value::Object(why)) = (trace, &mut why) {
        if trace.fallback.is_none() {
            // The model's answer replaced the playbook's: say what the playbook had chosen.
            let own = why.remove("chosen").unwrap_or(Value::Null);
            why.insert("playbook_choice".into(), own);
            why.insert(
                "chosen".into(),
                json!([{"kind": "generated", "reason": "the generative step answered"}]),
            );
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

/// The explanation of `decision` on `event` (see the module docs): the playbook explains its
/// own decision on the event; the signals and the auto-answer step are `decision`'s.
fn explain(playbook: &Playbook, options: &Options, event: &Event, decision: &Decision) -> Value {
    let (_, explanation) = playbook.decide_explained_with(options, event);
    let mut why = match serde_json::to_value(&explanation) {
        Ok(Value::Object(why)) => why,
        Ok(other) => Map::from_iter([("explanation".to_string(), other)]),
        Err(err) => Map::from_iter([(
            "notes".to_string(),
            json!([format!("the explanation does not serialise: {err}")]),
        )]),
    };
    why.insert(
        "signals".into(),
        decision
            .signals
            .iter()
            .map(signal)
            .collect::<Vec<_>>()
            .into(),
    );
    why.insert(
        "answer_step".into(),
        decision.answer_step.as_ref().map_or(
            Value::Null,
            |step| json!({"kind": step_kind(step.kind), "language": step.language}),
        ),
    );
    Value::Object(why)
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
