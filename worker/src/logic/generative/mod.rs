//! The generative answer step (`LOGIC=generative`): the playbook runs the conversation
//! (greeting, escalation, agents, closing, buttons, files, hooks), and where it reaches its
//! auto-answer step for a customer message a language model answers instead, through any
//! OpenAI-compatible chat-completions server.
//!
//! For each such message:
//! 1. the playbook decides as usual; its reply is the **fallback**;
//! 2. the passages most relevant to the message are retrieved (BM25 over the knowledge entries
//!    and the `GENERATIVE_DOCUMENTS`), and the model gets the system prompt, the passages, the
//!    reply language and the conversation's last turns, with an `escalate_to_human` tool;
//! 3. the request's timeout is the time left before the event's deadline minus what the answer
//!    needs to travel (the worker's callback margin and the time it keeps for its own fallback),
//!    capped by `GENERATIVE_TIMEOUT`;
//! 4. a usable answer replaces the playbook's (trimmed to `GENERATIVE_MAX_REPLY_CHARS`); a tool
//!    call escalates like the playbook does; a slow, failing, malformed or empty answer leaves
//!    the playbook's reply, so the event is still answered in time.
//!
//! Logs carry the outcome, latency and token counts, never the conversation, the prompt or the
//! key. Metrics: `yourlogic_generative_*`.

pub mod client;
pub mod prompt;
pub mod retrieval;

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use shared::answer::Reply;
use shared::event::Event;
use shared::telemetry::names;

use super::playbook::{AnswerStep, Decision, Generated, Options, Playbook, StepKind, outcomes};
use super::{Context, Logic, LogicError};
use client::{ChatClient, ChatError, ChatRequest, Completion};
use retrieval::{Index, Passage};

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
}

/// Why the playbook's answer was used instead of the model's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// Too little time left before the deadline to ask.
    NoTime,
    Timeout,
    Unavailable,
    HttpError,
    Malformed,
    /// No text and no tool call.
    Empty,
}

impl Fallback {
    /// The `reason` label.
    pub fn label(self) -> &'static str {
        match self {
            Fallback::NoTime => "no_time",
            Fallback::Timeout => "timeout",
            Fallback::Unavailable => "unavailable",
            Fallback::HttpError => "http_error",
            Fallback::Malformed => "malformed",
            Fallback::Empty => "empty",
        }
    }
}

/// What the generative step did on one event (the studio shows it beside the answer).
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// The passages the model was given, best first (none when it was not asked).
    pub passages: Vec<Passage>,
    /// `answered`, `escalated` or `fallback` (the playbook's answer stays).
    pub outcome: &'static str,
    /// Why the playbook's answer stayed ([`Fallback::label`]), if it did.
    pub fallback: Option<&'static str>,
    /// Retrieval and the model's answer (or its failure).
    pub model_time: Duration,
}

impl Settings {
    /// The settings of `model` with the worker's defaults for everything else (the defaults of
    /// its `GENERATIVE_*` flags).
    pub fn with_defaults(model: String) -> Settings {
        Settings {
            model,
            system_prompt: prompt::DEFAULT_SYSTEM_PROMPT.to_string(),
            answers: AnswerScope::All,
            timeout: Duration::from_secs(8),
            max_tokens: 300,
            temperature: 0.2,
            max_reply_chars: 700,
            passages: 4,
            history: 12,
            escalation_tool: true,
        }
    }
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

    /// The passages most relevant to the event's message, best first.
    fn retrieve(&self, event: &Event) -> Vec<&Passage> {
        let query = event.trigger_texts().collect::<Vec<_>>().join("\n");
        self.index.search(&query, self.settings.passages)
    }

    /// Asks the model, grounded in `passages`; its answer, or why the playbook's answer stays.
    async fn ask(
        &self,
        event: &Event,
        step: &AnswerStep,
        passages: &[&Passage],
        budget: Duration,
    ) -> Result<Generated, Fallback> {
        let s = &self.settings;
        let mut messages = vec![prompt::system_message(
            &s.system_prompt,
            passages,
            step.language.as_deref(),
        )];
        messages.extend(prompt::conversation(event, s.history));
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
        let result = self.client.complete(&request, budget).await;
        metrics::histogram!(names::GENERATIVE_SECONDS).record(started.elapsed().as_secs_f64());
        let completion = result.map_err(|err| {
            tracing::warn!(error = %err, passages = passages.len(), "generative answer failed; the playbook answers");
            match err {
                ChatError::Timeout(_) => Fallback::Timeout,
                ChatError::Unavailable => Fallback::Unavailable,
                ChatError::Status(_) => Fallback::HttpError,
                ChatError::Malformed(_) => Fallback::Malformed,
            }
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
        self.interpret(completion)
    }

    /// The escalation tool call wins; otherwise the cleaned-up text.
    fn interpret(&self, completion: Completion) -> Result<Generated, Fallback> {
        if let Some(call) = completion
            .tool_calls
            .iter()
            .find(|c| c.name == prompt::ESCALATION_TOOL)
        {
            return Ok(Generated::Escalate(prompt::escalation_reason(
                &call.arguments,
            )));
        }
        completion
            .content
            .as_deref()
            .and_then(|text| prompt::clean_answer(text, self.settings.max_reply_chars))
            .map(Generated::Answer)
            .ok_or(Fallback::Empty)
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
            let passages = self.retrieve(event);
            (self.ask(event, &step, &passages, budget).await, passages)
        };
        let mut trace = Trace {
            passages: passages.into_iter().cloned().collect(),
            outcome: "fallback",
            fallback: None,
            model_time: started.elapsed(),
        };
        let decision = match generated {
            Ok(generated) => {
                trace.outcome = match generated {
                    Generated::Answer(_) => "answered",
                    Generated::Escalate(_) => "escalated",
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
                own
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
