//! The generative answer step (`LOGIC=generative`): the playbook runs the conversation
//! (greeting, escalation, agents, closing, buttons, files, hooks), and where it reaches its
//! auto-answer step for a customer message a language model answers instead, through any
//! OpenAI-compatible chat-completions server.
//!
//! For each such message:
//! 1. the playbook decides as usual; its reply is the **fallback**;
//! 2. the passages most relevant to the message are retrieved (BM25 over the knowledge entries
//!    and the `GENERATIVE_DOCUMENTS`; templates rendered with the request details or left out);
//!    when none is relevant the model is not asked (the grounding rule);
//! 3. the model gets the system prompt, the passages, the reply language (the language of the
//!    playbook's own texts for this customer, so a greeting and the answer agree) and the
//!    conversation's last turns with personal data redacted, with an `escalate_to_human` tool;
//! 4. the request's timeout is the time left before the event's deadline minus what the answer
//!    needs to travel (the worker's callback margin and the time it keeps for its own fallback),
//!    capped by `GENERATIVE_TIMEOUT`;
//! 5. a usable answer replaces the playbook's: cleaned ([`output`]) and checked ([`verify`]);
//!    a tool call escalates like the playbook does, with a reason from a fixed list; a slow,
//!    failing, malformed, empty, unsafe or unverified answer leaves the playbook's reply, so the
//!    event is still answered in time, and a message nobody understood because the model could
//!    not answer is not counted as a misunderstanding.
//!
//! Logs carry the outcome, latency and token counts, never the conversation, the prompt or the
//! key. Metrics: `yourlogic_generative_*`.

pub mod client;
pub mod fallback;
pub mod output;
pub mod prompt;
pub mod redact;
pub mod retrieval;
pub mod verify;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shared::answer::Reply;
use shared::event::Event;
use shared::telemetry::names;

use super::playbook::state::State;
use super::playbook::{AnswerStep, Decision, Generated, Options, Playbook, StepKind, outcomes};
use super::{Context, Logic, LogicError};
use client::{ChatClient, ChatRequest, Completion};
pub use fallback::Fallback;
use prompt::TurnOptions;
use retrieval::{Index, Passage};
use verify::Sources;

/// Time kept to build the reply after the model's answer (or the fallback).
const FINISH_RESERVE: Duration = Duration::from_millis(50);
/// Below this much time the model is not asked at all.
const MIN_MODEL_TIME: Duration = Duration::from_millis(100);

/// Which customer messages the model answers (`GENERATIVE_ANSWERS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum AnswerScope {
    /// Every message that reaches the auto-answer step (knowledge matches, small talk and
    /// misunderstood messages).
    #[default]
    All,
    /// Only messages the playbook does not understand.
    Unmatched,
}

/// How the generative step behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The model name sent to the server.
    pub model: String,
    pub system_prompt: String,
    pub answers: AnswerScope,
    /// Longest wait for the model (always bounded by the deadline).
    pub timeout: Duration,
    pub max_tokens: u32,
    pub temperature: f32,
    /// Longest answer sent to the customer (characters).
    pub max_reply_chars: usize,
    /// Passages given to the model.
    pub passages: usize,
    /// Conversation turns given to the model.
    pub history: usize,
    /// Whether the model is offered the escalation tool.
    pub escalation_tool: bool,
    /// Whether personal data is redacted from the text sent to the model.
    pub redact_pii: bool,
    /// Hosts whose links an answer may contain (lower case; subdomains included).
    pub link_hosts: Vec<String>,
}

/// What the generative step did on one event (the studio shows it beside the answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The passages the model was given as `(source, text)`, best first (none when it was not
    /// asked).
    pub passages: Vec<(String, String)>,
    /// `answered`, `escalated` or `fallback` (the playbook's answer stays).
    pub outcome: &'static str,
    /// Why the playbook's answer stayed (the fallback's `reason` label), if it did.
    pub fallback: Option<&'static str>,
    /// Retrieval and the model's answer (or its failure).
    pub model_time: Duration,
}

/// The playbook with a language model answering at its auto-answer step.
#[derive(Debug, Clone)]
pub struct GenerativeLogic {
    playbook: Arc<Playbook>,
    options: Arc<Options>,
    client: ChatClient,
    index: Arc<Index>,
    settings: Arc<Settings>,
}

impl GenerativeLogic {
    /// The step for `playbook`, grounded in its knowledge entries and `documents`.
    pub fn new(
        playbook: Playbook,
        options: Options,
        client: ChatClient,
        documents: Vec<Passage>,
        settings: Settings,
    ) -> Self {
        let mut passages = retrieval::knowledge_passages(&playbook);
        passages.extend(documents);
        // Compiled now, not while the first customer waits.
        redact::prepare();
        verify::prepare();
        Self {
            playbook: Arc::new(playbook),
            options: Arc::new(options),
            client,
            index: Arc::new(Index::new(passages)),
            settings: Arc::new(settings),
        }
    }

    /// How long the model may take for this event: the time until the logic must have
    /// returned (the worker keeps the rest for sending the answer), minus what building the
    /// reply needs, capped by the configured timeout.
    pub fn model_budget(&self, context: &Context) -> Duration {
        context
            .time_to_answer()
            .saturating_sub(FINISH_RESERVE)
            .min(self.settings.timeout)
    }

    /// Whether the model answers at this step.
    fn wanted(&self, step: &AnswerStep) -> bool {
        match self.settings.answers {
            AnswerScope::All => true,
            AnswerScope::Unmatched => step.kind == StepKind::NotUnderstood,
        }
    }

    /// The language the model answers in: the customer's (a checked short tag) when the
    /// playbook's own texts are in it too, else the playbook's default language, so the
    /// greeting and the answer agree.
    fn reply_language(&self, customer: Option<&str>) -> String {
        let default = self.playbook.default_language();
        let Some(code) = customer.and_then(prompt::language_tag) else {
            return default.to_string();
        };
        let primary = |c: &str| c.split(['-', '_']).next().unwrap_or(c).to_ascii_lowercase();
        let texts = &self.playbook.texts;
        let sample = texts
            .greeting
            .as_ref()
            .or(texts.not_understood.as_ref())
            .or(texts.redirect.as_ref());
        let normalised = code.to_ascii_lowercase().replace('_', "-");
        match sample {
            Some(text)
                if primary(code) != primary(default)
                    && text.pick(Some(&normalised)) == text.default_text() =>
            {
                default.to_string()
            }
            _ => code.to_string(),
        }
    }

    /// The relevant passages for `event`, templates rendered with its request details.
    fn passages(&self, event: &Event) -> Vec<(&str, String)> {
        let query = event.trigger_texts().collect::<Vec<_>>().join("\n");
        let details = State::read(event.conversation_custom()).details;
        let wanted = self.settings.passages;
        self.index
            .search(&query, wanted.saturating_mul(2))
            .into_iter()
            .filter_map(|p| Some((p.source.as_str(), p.rendered(&details)?)))
            .take(wanted)
            .collect()
    }

    /// Asks the model, grounded in `passages`; its answer, or why the playbook's answer stays.
    async fn ask(
        &self,
        event: &Event,
        step: &AnswerStep,
        passages: &[(&str, String)],
        budget: Duration,
    ) -> Result<Generated, Fallback> {
        // Preparing the request takes time too: the model gets what is left of the budget.
        let answer_by = Instant::now() + budget;
        let s = &self.settings;
        if passages.is_empty() {
            return Err(Fallback::NoPassages);
        }
        let language = self.reply_language(step.language.as_deref());
        let mut messages = vec![prompt::system_message(
            &s.system_prompt,
            passages,
            &language,
        )];
        let turns = TurnOptions {
            max_turns: s.history,
            redact: s.redact_pii,
        };
        messages.extend(prompt::conversation(event, turns));
        let request = ChatRequest {
            model: s.model.clone(),
            messages,
            max_tokens: s.max_tokens,
            temperature: s.temperature,
            tools: if s.escalation_tool {
                vec![prompt::escalation_tool()]
            } else {
                Vec::new()
            },
            stream: false,
        };
        let started = Instant::now();
        let budget = answer_by.saturating_duration_since(started);
        let result = self.client.complete(&request, budget).await;
        metrics::histogram!(names::GENERATIVE_SECONDS).record(started.elapsed().as_secs_f64());
        let completion = result.map_err(|err| {
            tracing::warn!(error = %err, passages = passages.len(), "generative answer failed; the playbook answers");
            Fallback::from(&err)
        })?;
        count_tokens(&completion);
        tracing::debug!(
            latency_ms = started.elapsed().as_millis() as u64,
            passages = passages.len(),
            prompt_tokens = completion.usage.map(|u| u.prompt_tokens),
            completion_tokens = completion.usage.map(|u| u.completion_tokens),
            tool_calls = completion.tool_calls.len(),
            "generative answer received"
        );
        let sources = Sources::new(request.messages.iter().map(|m| m.content.as_str()));
        self.interpret(event, completion, &sources)
    }

    /// The escalation tool call wins; otherwise the cleaned-up, checked text.
    fn interpret(
        &self,
        event: &Event,
        completion: Completion,
        sources: &Sources,
    ) -> Result<Generated, Fallback> {
        if let Some(call) = completion
            .tool_calls
            .iter()
            .find(|c| c.name == prompt::ESCALATION_TOOL)
        {
            let reason = prompt::escalation_reason(&call.arguments);
            return Ok(Generated::Escalate(format!("reason: {reason}")));
        }
        let text = completion
            .content
            .as_deref()
            .and_then(|text| output::clean(text, self.settings.max_reply_chars))
            .ok_or(Fallback::Empty)?;
        let message = event.trigger_texts().find(|t| !t.trim().is_empty());
        if message.is_some_and(|message| verify::echoes(&text, message)) {
            return Err(Fallback::Echo);
        }
        verify::check(&text, sources, &self.settings.link_hosts).map_err(|rejection| {
            tracing::warn!(%rejection, "generative answer not sent; the playbook answers");
            Fallback::from(rejection)
        })?;
        Ok(Generated::Answer(text))
    }

    /// The playbook's decision with the model's answer in it, or its own; and what the step
    /// did (`None` when the message did not reach it). The trace costs a copy of the few
    /// passages; the worker drops it.
    pub async fn decide_traced(
        &self,
        event: &Event,
        context: &Context,
    ) -> (Decision, Option<Trace>) {
        let own = self.playbook.decide_with(&self.options, event, None);
        let Some(step) = own.answer_step.clone().filter(|step| self.wanted(step)) else {
            return (own, None);
        };
        let budget = self.model_budget(context);
        let started = Instant::now();
        let (generated, passages) = if budget < MIN_MODEL_TIME {
            (Err(Fallback::NoTime), Vec::new())
        } else {
            let passages = self.passages(event);
            (self.ask(event, &step, &passages, budget).await, passages)
        };
        let mut trace = Trace {
            passages: passages
                .into_iter()
                .map(|(source, text)| (source.to_string(), text))
                .collect(),
            outcome: "fallback",
            fallback: None,
            model_time: started.elapsed(),
        };
        let decision = match generated {
            Ok(generated) => {
                trace.outcome = match generated {
                    Generated::Answer(_) => "answered",
                    Generated::Escalate(_) => "escalated",
                    Generated::Unanswered => "fallback",
                };
                metrics::counter!(names::GENERATIVE_REQUESTS, "outcome" => trace.outcome)
                    .increment(1);
                self.playbook
                    .decide_with(&self.options, event, Some(&generated))
            }
            Err(reason) => {
                trace.fallback = Some(reason.label());
                metrics::counter!(names::GENERATIVE_REQUESTS, "outcome" => "fallback").increment(1);
                metrics::counter!(names::GENERATIVE_FALLBACKS, "reason" => reason.label())
                    .increment(1);
                // The customer was not misunderstood when the model could not answer.
                if step.kind == StepKind::NotUnderstood && reason.says_nothing_about_the_message() {
                    self.playbook
                        .decide_with(&self.options, event, Some(&Generated::Unanswered))
                } else {
                    own
                }
            }
        };
        (decision, Some(trace))
    }
}

fn count_tokens(completion: &Completion) {
    if let Some(usage) = completion.usage {
        metrics::counter!(names::GENERATIVE_TOKENS, "kind" => "prompt")
            .increment(usage.prompt_tokens);
        metrics::counter!(names::GENERATIVE_TOKENS, "kind" => "completion")
            .increment(usage.completion_tokens);
    }
}

#[async_trait]
impl Logic for GenerativeLogic {
    async fn decide(&self, event: &Event, context: &Context) -> Result<Reply, LogicError> {
        let (decision, _) = self.decide_traced(event, context).await;
        outcomes::record(&decision.signals);
        Ok(decision.reply)
    }
}
