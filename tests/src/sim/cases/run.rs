//! Playing conversation tests and reporting the result: in-process against a playbook (the
//! default: no NATS, no network), or through a running pipeline (events POSTed to an ingress,
//! answers received on the simulator's callback API), with the same expectations.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Map, Value};
use shared::event::Event;
use tokio::time::Instant;
use worker::logic::{Context, Logic};

use super::Case;
use super::check::{self, Answered};
use crate::sim::conversation::Conversation;
use crate::sim::driver::{self, Env, Gate, Outcome, Pacing, Record};
use crate::sim::scenario::Step;

/// Where the answers come from.
pub enum Backend {
    /// The logic called directly, as the worker would call it.
    InProcess(Arc<dyn Logic>),
    /// A running pipeline: the ingress and the callback server in `Env`.
    Pipeline(Env),
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub name: String,
    pub file: String,
    /// Steps with expectations that were checked.
    pub checked: usize,
    /// The first failing step's description, if any.
    pub failure: Option<String>,
}

/// The outcome of a run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    pub cases: Vec<CaseReport>,
}

impl RunReport {
    /// Whether every case passed.
    pub fn passed(&self) -> bool {
        self.cases.iter().all(|c| c.failure.is_none())
    }

    /// The report as printed: one line per case, the differences of failing cases, a summary.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for case in &self.cases {
            match &case.failure {
                None => {
                    let _ = writeln!(
                        out,
                        "ok    {} ({}, {})",
                        case.name,
                        crate::sim::transcript::count(case.checked, "check", "checks"),
                        case.file
                    );
                }
                Some(failure) => {
                    let _ = writeln!(out, "FAIL  {} ({})", case.name, case.file);
                    out.push_str(failure);
                }
            }
        }
        let failed = self.cases.iter().filter(|c| c.failure.is_some()).count();
        let checks: usize = self.cases.iter().map(|c| c.checked).sum();
        let _ = writeln!(
            out,
            "\n{}, {} checked: {} passed, {failed} failed",
            crate::sim::transcript::count(
                self.cases.len(),
                "conversation test",
                "conversation tests"
            ),
            crate::sim::transcript::count(checks, "answer", "answers"),
            self.cases.len() - failed
        );
        out
    }
}

/// Plays every case (one after the other) and checks its answers.
pub async fn run(backend: &Backend, cases: &[Case], budget: Duration) -> RunReport {
    let mut report = RunReport::default();
    for case in cases {
        let records = match backend {
            Backend::InProcess(logic) => play_in_process(logic, case, budget, |_| {}).await,
            Backend::Pipeline(env) => {
                let pacing = Pacing::Immediate(Arc::new(Gate::new(None)));
                let mut poster = env.poster(0);
                driver::play(env, &mut poster, &case.scenario, &pacing, true)
                    .await
                    .0
            }
        };
        report.cases.push(check_case(case, &records));
    }
    report
}

/// Plays `case` against `logic` the way the worker and Salted CX would: each event built from
/// the conversation so far, the answer applied before the next one. `observe` sees every event
/// body sent (the logic benchmark replays them).
pub async fn play_in_process(
    logic: &Arc<dyn Logic>,
    case: &Case,
    budget: Duration,
    mut observe: impl FnMut(&[u8]),
) -> Vec<Record> {
    let mut conversation = Conversation::new(&case.scenario);
    let mut records = Vec::new();
    for step in &case.scenario.steps {
        let agent = conversation.agent_name().map(str::to_owned);
        let Some(built) = conversation.event(step, budget, 0) else {
            records.push(Record {
                step: step.clone(),
                agent,
                event: None,
            });
            continue;
        };
        observe(&built.body);
        let started = Instant::now();
        let outcome = match decide(logic, &built.body, built.expires).await {
            Ok(answer) => Outcome::Answered {
                latency: started.elapsed(),
                applied: conversation.apply(&answer),
            },
            Err(why) => {
                conversation.fall_back();
                Outcome::NotAccepted {
                    kind: "logic".into(),
                    message: why,
                }
            }
        };
        records.push(Record {
            step: step.clone(),
            agent: conversation.agent_name().map(str::to_owned).or(agent),
            event: Some((built.request_id, outcome)),
        });
    }
    records
}

/// The answer body `logic` gives to the event `body`, as the worker would send it.
async fn decide(
    logic: &Arc<dyn Logic>,
    body: &[u8],
    expires: chrono::DateTime<Utc>,
) -> Result<Value, String> {
    let event = Event::from_json(body).map_err(|e| e.to_string())?;
    let context = Context::new(expires, Utc::now(), 1, Bytes::copy_from_slice(body));
    let mut reply = logic
        .decide(&event, &context)
        .await
        .map_err(|e| e.to_string())?;
    if event.is_silent() {
        reply = reply.without_escalation(); // as the worker does
    }
    serde_json::to_value(&reply).map_err(|e| e.to_string())
}

/// Checks every answered step of `case` until the first failure.
fn check_case(case: &Case, records: &[Record]) -> CaseReport {
    let mut custom: Map<String, Value> = case.scenario.custom.clone();
    let mut checked = 0;
    let mut failure = None;
    for (index, (record, expect)) in records.iter().zip(&case.expects).enumerate() {
        let answered = match &record.event {
            None => continue,
            Some((_, Outcome::Answered { applied, .. })) => {
                if let Some(new) = &applied.custom {
                    custom = new.clone();
                }
                Answered::Yes {
                    actions: applied.actions.clone(),
                    needs_help: applied.needs_help,
                }
            }
            Some((_, other)) => Answered::No(describe_outcome(other)),
        };
        let Some(expect) = expect else { continue };
        checked += 1;
        let problems = check::problems(expect, &answered, &custom);
        if !problems.is_empty() {
            failure = Some(render_failure(
                index,
                &record.step,
                &problems,
                &answered,
                &custom,
            ));
            break;
        }
    }
    if records.len() < case.expects.len() && failure.is_none() {
        failure = Some(format!(
            "  the conversation stopped after {} of {} steps\n",
            records.len(),
            case.expects.len()
        ));
    }
    CaseReport {
        name: case.name.clone(),
        file: case.file.clone(),
        checked,
        failure,
    }
}

fn describe_outcome(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Answered { .. } => "answered".into(),
        Outcome::Late { latency } => format!("answered after the deadline ({latency:?})"),
        Outcome::Expired => "no answer before the deadline".into(),
        Outcome::NotAccepted { kind, message } => format!("{kind}: {message}"),
    }
}

fn render_failure(
    index: usize,
    step: &Step,
    problems: &[String],
    answered: &Answered,
    custom: &Map<String, Value>,
) -> String {
    let mut out = format!("  step {}: {}\n", index + 1, describe_step(step));
    for problem in problems {
        let _ = writeln!(out, "    - {problem}");
    }
    out.push_str("    the answer was:\n");
    for line in check::describe(answered, custom) {
        let _ = writeln!(out, "      {line}");
    }
    out
}

/// A step as written in the file, shortly.
fn describe_step(step: &Step) -> String {
    match step {
        Step::Customer(text) => format!("customer {text:?}"),
        Step::CustomerSilent(text) => format!("customer (silent) {text:?}"),
        Step::Agent(text) => format!("agent {text:?}"),
        Step::AgentJoins(name) => format!("agent {name} joins"),
        Step::Action(name) => format!("action {name:?}"),
        Step::AgentLeaves(leave) => format!("agent leaves ({})", leave.outcome),
        Step::File(file) => format!("file {} ({})", file.name, file.mime),
        Step::Navigation(url) => format!("navigation to {url}"),
        Step::Review(review) => format!("review {:?}", review.answer),
        Step::MenuStep(id) => format!("menu step {id}"),
        Step::Answer(id) => format!("answer {id}"),
        Step::ConversationUpdate(state) => format!("conversation update {state:?}"),
        Step::Completed => "conversation completed".into(),
    }
}
