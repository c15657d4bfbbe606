//! Playing conversation tests and reporting the result: in-process against a playbook (the
//! default: no NATS, no network), or through a running pipeline (events POSTed to an ingress,
//! answers received on the simulator's callback API), with the same expectations.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use serde_json::{Map, Value};
use shared::event::Event;
use tokio::time::Instant;
use worker::logic::playbook::{Explanation, PlaybookLogic};

use super::check::{self, Answered};
use super::{Case, semantic};
use crate::conversation::Conversation;
use crate::driver::{self, Env, Gate, Outcome, Pacing, Record};
use crate::scenario::Step;

/// Where the answers come from.
pub enum Backend {
    /// The playbook called directly, as the worker would call it, explaining each decision
    /// (semantic expectations are checked).
    InProcess(Arc<PlaybookLogic>),
    /// A running pipeline: the ingress and the callback server in `Env`.
    Pipeline(Env),
}

/// The outcome of one case.
#[derive(Debug, Clone)]
pub struct CaseReport {
    pub name: String,
    pub file: String,
    pub category: Option<String>,
    /// The case's `languageCustomer`.
    pub language: String,
    /// Steps with expectations that were checked.
    pub checked: usize,
    /// The first failing step's description, if any.
    pub failure: Option<String>,
    /// Every checked step, whether it passed and whether it was a confident wrong answer
    /// (also after the first failure: for score reports).
    pub steps: Vec<StepOutcome>,
    /// Whether semantic expectations were skipped (no explanation: a pipeline run).
    pub semantic_skipped: bool,
}

/// One checked step.
#[derive(Debug, Clone, PartialEq)]
pub struct StepOutcome {
    pub passed: bool,
    pub confident_wrong: bool,
    /// The classifier's best candidate for the message and its confidence (customer messages
    /// checked in-process).
    pub top: Option<(String, f64)>,
    /// What the step's semantic expectation accepts (`topic`s, the `intent`, or `not_known`),
    /// when it names one.
    pub accepts: Vec<String>,
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
                        crate::transcript::count(case.checked, "check", "checks"),
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
        if self.cases.iter().any(|c| c.semantic_skipped) {
            out.push_str(
                "\nsemantic expectations (topic, intent, not_known, ...) are checked in-process only; skipped here\n",
            );
        }
        let _ = writeln!(
            out,
            "\n{}, {} checked: {} passed, {failed} failed",
            crate::transcript::count(self.cases.len(), "conversation test", "conversation tests"),
            crate::transcript::count(checks, "answer", "answers"),
            self.cases.len() - failed
        );
        out
    }
}

/// Plays every case (one after the other) and checks its answers.
pub async fn run(backend: &Backend, cases: &[Case], budget: Duration) -> RunReport {
    run_with(backend, cases, budget, false).await
}

/// [`run`], printing the explanation of every answer when `explain` is set (in-process).
pub async fn run_with(
    backend: &Backend,
    cases: &[Case],
    budget: Duration,
    explain: bool,
) -> RunReport {
    let mut report = RunReport::default();
    for case in cases {
        let (records, explanations) = match backend {
            Backend::InProcess(logic) => play_in_process(logic, case, budget, |_| {}).await,
            Backend::Pipeline(env) => {
                let pacing = Pacing::Immediate(Arc::new(Gate::new(None)));
                let mut poster = env.poster(0);
                let records = driver::play(env, &mut poster, &case.scenario, &pacing, true)
                    .await
                    .0;
                (records, Vec::new())
            }
        };
        if explain {
            print_explanations(case, &records, &explanations);
        }
        report.cases.push(check_case(case, &records, &explanations));
    }
    report
}

/// Plays `case` against the playbook the way the worker and Salted CX would: each event built
/// from the conversation so far, the answer applied before the next one; returns what happened
/// at each step and the explanation of each decision. `observe` sees every event body sent
/// (the logic benchmark replays them).
pub async fn play_in_process(
    logic: &PlaybookLogic,
    case: &Case,
    budget: Duration,
    mut observe: impl FnMut(&[u8]),
) -> (Vec<Record>, Vec<Option<Explanation>>) {
    let mut conversation = Conversation::new(&case.scenario);
    let mut records = Vec::new();
    let mut explanations = Vec::new();
    for step in &case.scenario.steps {
        let agent = conversation.agent_name().map(str::to_owned);
        let Some(built) = conversation.event(step, budget, 0) else {
            records.push(Record {
                step: step.clone(),
                agent,
                event: None,
            });
            explanations.push(None);
            continue;
        };
        observe(&built.body);
        let started = Instant::now();
        let (outcome, explanation) = match decide(logic, &built.body) {
            Ok((answer, explanation)) => (
                Outcome::Answered {
                    latency: started.elapsed(),
                    applied: conversation.apply(&answer),
                },
                Some(explanation),
            ),
            Err(why) => {
                conversation.fall_back();
                let outcome = Outcome::NotAccepted {
                    kind: "logic".into(),
                    message: why,
                };
                (outcome, None)
            }
        };
        records.push(Record {
            step: step.clone(),
            agent: conversation.agent_name().map(str::to_owned).or(agent),
            event: Some((built.request_id, outcome)),
        });
        explanations.push(explanation);
    }
    (records, explanations)
}

/// The answer body the playbook gives to the event `body`, as the worker would send it, and
/// why.
fn decide(logic: &PlaybookLogic, body: &[u8]) -> Result<(Value, Explanation), String> {
    let event = Event::from_json(body).map_err(|e| e.to_string())?;
    let (decision, explanation) = logic
        .playbook()
        .decide_explained_with(logic.options(), &event);
    let mut reply = decision.reply;
    if event.is_silent() {
        reply = reply.without_escalation(); // as the worker does
    }
    let answer = serde_json::to_value(&reply).map_err(|e| e.to_string())?;
    Ok((answer, explanation))
}

/// Prints each customer step's explanation (candidates and what was chosen).
fn print_explanations(case: &Case, records: &[Record], explanations: &[Option<Explanation>]) {
    println!("--- {} ({})", case.name, case.file);
    for (index, (record, explanation)) in records.iter().zip(explanations).enumerate() {
        let Some(explanation) = explanation else {
            continue;
        };
        println!("  step {}: {}", index + 1, describe_step(&record.step));
        for line in explanation_lines(explanation) {
            println!("    {line}");
        }
    }
}

/// An explanation in a few lines.
pub fn explanation_lines(explanation: &Explanation) -> Vec<String> {
    let candidates: Vec<String> = explanation
        .candidates
        .iter()
        .map(|c| format!("{} {:.2}", c.id, c.score))
        .collect();
    let chosen: Vec<String> = explanation
        .chosen
        .iter()
        .map(|c| match &c.id {
            Some(id) => format!("{} {id}", c.kind),
            None => c.kind.clone(),
        })
        .collect();
    let mut lines = vec![
        format!(
            "language {} ({}), phase {} -> {}",
            explanation.language.code,
            explanation.language.reason,
            explanation.phase_before,
            explanation.phase_after
        ),
        format!("candidates: {}", candidates.join(", ")),
        format!("chosen: {}", chosen.join(", ")),
    ];
    for clause in &explanation.clauses {
        let matched = clause
            .matched
            .as_ref()
            .map_or("-".to_string(), |m| format!("{} {:.2}", m.id, m.score));
        lines.push(format!("request {:?}: {matched}", clause.text));
    }
    if !explanation.tone.is_empty() {
        lines.push(format!("tone: {}", explanation.tone.join(", ")));
    }
    lines.extend(explanation.notes.iter().map(|n| format!("note: {n}")));
    lines
}

/// Checks every answered step of `case`: the report names the first failure; every step's
/// outcome is kept for scores.
fn check_case(case: &Case, records: &[Record], explanations: &[Option<Explanation>]) -> CaseReport {
    let mut custom: Map<String, Value> = case.scenario.custom.clone();
    let mut checked = 0;
    let mut failure = None;
    let mut steps = Vec::new();
    let mut semantic_skipped = false;
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
        let explanation = explanations.get(index).and_then(Option::as_ref);
        let mut problems = check::problems(expect, &answered, &custom);
        match explanation {
            Some(explanation) => problems.extend(semantic::problems(&expect.semantic, explanation)),
            None => semantic_skipped |= expect.semantic.any(),
        }
        let confident_wrong =
            explanation.is_some_and(|e| semantic::confident_wrong(expect, e, !problems.is_empty()));
        steps.push(StepOutcome {
            passed: problems.is_empty(),
            confident_wrong,
            top: explanation
                .and_then(|e| e.candidates.first())
                .map(|c| (c.id.clone(), c.score)),
            accepts: semantic::accepts(&expect.semantic),
        });
        if !problems.is_empty() && failure.is_none() {
            failure = Some(render_failure(
                index,
                &record.step,
                &problems,
                &answered,
                &custom,
                explanation,
            ));
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
        category: case.category.clone(),
        language: case.scenario.language.clone(),
        checked,
        failure,
        steps,
        semantic_skipped,
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
    explanation: Option<&Explanation>,
) -> String {
    let mut out = format!("  step {}: {}\n", index + 1, describe_step(step));
    for problem in problems {
        let _ = writeln!(out, "    - {problem}");
    }
    out.push_str("    the answer was:\n");
    for line in check::describe(answered, custom) {
        let _ = writeln!(out, "      {line}");
    }
    if let Some(explanation) = explanation {
        out.push_str("    understood as:\n");
        for line in explanation_lines(explanation) {
            let _ = writeln!(out, "      {line}");
        }
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
