//! The default conversation logic: a declarative playbook (TOML) driving the whole conversation
//! lifecycle of a Salted CX conversation.
//!
//! - [`format`](mod@format): the file format as users write it (serde, unknown keys rejected);
//! - [`validate`] and `compile`: parsing and semantic checks with file/line/column errors,
//!   compiling the file into a [`Playbook`];
//! - [`matching`]: text matching tolerant to case, punctuation, accents, word order and typos,
//!   aware of clauses and negations;
//! - [`language`]: texts in several languages and the choice of the reply language;
//! - [`state`]: the conversation state kept in `conversation.custom` (at most 1 kB);
//! - [`engine`], [`dialogue`], `closing`, `details` and `escalation`: the decisions, trigger by
//!   trigger; [`Decision`] says what was decided besides the reply (for metrics and the
//!   generative step).
//!
//! The built-in playbook is `worker/playbooks/default.toml`, compiled into the binary.

mod closing;
mod compile;
mod decision;
mod details;
pub mod dialogue;
pub mod engine;
mod entities;
mod escalation;
mod explain;
mod followups;
pub mod format;
pub mod language;
pub mod matching;
pub mod outcomes;
pub mod state;
pub mod understand;
pub mod validate;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use shared::answer::Reply;
use shared::event::Event;

use super::{Context, Logic, LogicError};
pub use decision::{AnswerStep, Decision, Generated, Signal, StepKind};
use details::Capture;
pub use explain::{Candidate, Chosen, ClauseMatch, Explanation, LanguageChoice};
pub use format::{AfterAgent, DuringAgent, HookOn, IntentKind};
pub use language::{LocalText, ReplyLanguage};
use matching::{Filler, Negations, Phrase, PhraseSet};
use understand::{Cues, Understanding};

use super::engagements::Identity;
pub use validate::{PlaybookError, Problem};

/// The playbook that ships with the worker (used when `PLAYBOOK` is not set).
pub const DEFAULT_PLAYBOOK: &str = include_str!("../../../playbooks/default.toml");

/// A validated playbook, ready to answer events.
#[derive(Debug, Clone)]
pub struct Playbook {
    /// The language of plain texts (normalised code).
    pub(crate) default_language: String,
    /// Every language the playbook has texts in (normalised codes).
    pub(crate) languages: Vec<String>,
    /// The words of each language pack (ignore words, negations, requests, question words),
    /// for recognising a customer's language.
    pub(crate) language_words: Vec<(String, std::collections::HashSet<String>)>,
    pub(crate) filler: Filler,
    pub(crate) negations: Negations,
    /// Cues after which a knowledge-base keyword does not count.
    pub(crate) refusals: Negations,
    /// Recognising requests: the classifier and its thresholds.
    pub(crate) understanding: Understanding,
    /// Cues read in every message (tone, presence checks, negation scope).
    pub(crate) cues: Cues,
    pub(crate) vague_below: usize,
    pub(crate) texts: Texts,
    pub(crate) during_agent: DuringAgent,
    pub(crate) escalation_phrases: PhraseSet,
    /// 0: never escalate for misunderstanding.
    pub(crate) after_misunderstandings: u8,
    /// The same request this many times in a row hands over (0: never).
    pub(crate) after_repeats: u8,
    /// Frustrated messages before handing over (0: never).
    pub(crate) after_frustration: u8,
    pub(crate) negative_reviews: Vec<Phrase>,
    pub(crate) closing: Option<Closing>,
    /// By normalised `outcomeType`.
    pub(crate) agent_outcomes: HashMap<String, AgentOutcome>,
    pub(crate) intents: Vec<Intent>,
    pub(crate) details: Vec<Detail>,
    pub(crate) knowledge: Vec<Entry>,
    /// The questions, keywords and examples of each entry as written (same index), for
    /// retrieval.
    pub(crate) sources: Vec<String>,
    /// By normalised action name.
    pub(crate) actions: HashMap<String, Reaction>,
    pub(crate) files: Vec<FileRule>,
    /// By trigger kind and normalised id.
    pub(crate) hooks: HashMap<(HookOn, String), Hook>,
}

/// The optional texts of the main flow (`None`: that message is not sent).
#[derive(Debug, Clone, Default)]
pub(crate) struct Texts {
    pub greeting: Option<LocalText>,
    pub ask_request: Option<LocalText>,
    pub ask_details: Option<LocalText>,
    pub not_understood: Option<LocalText>,
    pub not_known: Option<LocalText>,
    pub clarify: Option<LocalText>,
    pub which_first: Option<LocalText>,
    pub offer_human: Option<LocalText>,
    pub apology: Option<LocalText>,
    pub redirect: Option<LocalText>,
    pub assist_note: Option<String>,
    pub unknown_action_note: Option<String>,
    pub escalation_message: Option<LocalText>,
    pub waiting_message: Option<LocalText>,
    pub escalation_note: Option<String>,
}

/// The closing flow.
#[derive(Debug, Clone)]
pub(crate) struct Closing {
    pub question: LocalText,
    pub yes: Vec<Phrase>,
    pub no: Vec<Phrase>,
    pub feedback_question: Option<LocalText>,
    pub thanks: Option<LocalText>,
    pub goodbye: Option<LocalText>,
    /// Ratings are 1..=scale.
    pub rating_scale: u8,
    /// Words meaning a rating.
    pub ratings: Vec<(u8, Vec<Phrase>)>,
    /// Emoji and other marks meaning a rating, looked for as written.
    pub symbols: Vec<(u8, String)>,
}

/// What the bot does when an agent leaves with a given outcome.
#[derive(Debug, Clone)]
pub(crate) struct AgentOutcome {
    pub then: AfterAgent,
    pub message: Option<LocalText>,
    pub note: Option<String>,
}

/// A small-talk or off-topic intent.
#[derive(Debug, Clone)]
pub(crate) struct Intent {
    pub id: String,
    pub kind: IntentKind,
    pub answer: LocalText,
    /// Whether the redirect follows the answer; `None`: as the kind says.
    pub redirect: Option<bool>,
    /// The answer asks whether there is anything else.
    pub anything_else: bool,
    /// The intent ends the conversation.
    pub ends: bool,
}

/// A request detail captured into the state.
#[derive(Debug, Clone)]
pub(crate) struct Detail {
    pub id: String,
    pub capture: Capture,
    /// Words announcing the value.
    pub context: Vec<Phrase>,
    /// Ways of saying the customer does not have it.
    pub without: PhraseSet,
    pub without_answer: Option<LocalText>,
    pub ask: Option<LocalText>,
}

/// One knowledge-base entry (its patterns are in [`Playbook::patterns`], same index).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    pub id: String,
    pub answer: LocalText,
    /// A short name for clarifying questions (the id when unset).
    pub topic: Option<LocalText>,
    /// Indexes into [`Playbook::details`] of the details asked for before answering.
    pub requires: Vec<usize>,
    /// `(url_prefix, answer)`, longest prefix first.
    pub variants: Vec<(String, LocalText)>,
}

/// A note and/or a message (agent buttons).
#[derive(Debug, Clone)]
pub(crate) struct Reaction {
    pub note: Option<String>,
    pub message: Option<LocalText>,
}

/// A file acknowledgement rule.
#[derive(Debug, Clone)]
pub(crate) struct FileRule {
    pub mime: MimePattern,
    pub message: Option<LocalText>,
    pub note: Option<String>,
}

/// A MIME type pattern: `*`, `image/*` or `application/pdf`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum MimePattern {
    Any,
    Prefix(String),
    Exact(String),
}

impl MimePattern {
    /// Whether `mime` (any case, parameters ignored) fits the pattern.
    pub fn matches(&self, mime: &str) -> bool {
        let mime = mime
            .split(';')
            .next()
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        match self {
            MimePattern::Any => true,
            MimePattern::Prefix(prefix) => mime.starts_with(prefix.as_str()),
            MimePattern::Exact(exact) => &mime == exact,
        }
    }
}

/// A menu-step or answer hook.
#[derive(Debug, Clone)]
pub(crate) struct Hook {
    pub message: Option<LocalText>,
    pub note: Option<String>,
    pub escalate: bool,
}

impl Playbook {
    /// The built-in default playbook (compiled and trained once per process).
    pub fn builtin() -> Result<Playbook, PlaybookError> {
        static BUILTIN: std::sync::OnceLock<Result<Playbook, (String, Vec<Problem>)>> =
            std::sync::OnceLock::new();
        let built = BUILTIN.get_or_init(|| {
            match validate::parse("default.toml (built in)", DEFAULT_PLAYBOOK) {
                Ok(playbook) => Ok(playbook),
                Err(PlaybookError::Invalid { file, problems }) => Err((file, problems)),
                Err(other) => Err((other.to_string(), Vec::new())),
            }
        });
        match built {
            Ok(playbook) => Ok(playbook.clone()),
            Err((file, problems)) => Err(PlaybookError::Invalid {
                file: file.clone(),
                problems: problems.clone(),
            }),
        }
    }

    /// Reads and validates the playbook file at `path`.
    pub fn load(path: &Path) -> Result<Playbook, PlaybookError> {
        let source = std::fs::read_to_string(path).map_err(|source| PlaybookError::Read {
            path: path.display().to_string(),
            source,
        })?;
        validate::parse(&path.display().to_string(), &source)
    }

    /// Validates a playbook given as text; `name` is used in error messages.
    pub fn from_toml(name: &str, source: &str) -> Result<Playbook, PlaybookError> {
        validate::parse(name, source)
    }

    /// The reply to `event` with the default options (pure: the state comes from the event
    /// and goes into the reply).
    pub fn decide(&self, event: &Event) -> Reply {
        engine::decide(self, &Options::default(), event, None, false)
            .0
            .reply
    }

    /// The decision on `event` with the default options, and why it was taken (built only
    /// here: [`Playbook::decide`] and [`Playbook::decide_with`] pay nothing for it).
    pub fn decide_explained(&self, event: &Event) -> (Decision, Explanation) {
        self.decide_explained_with(&Options::default(), event)
    }

    /// [`Playbook::decide_explained`] with deployment options.
    pub fn decide_explained_with(
        &self,
        options: &Options,
        event: &Event,
    ) -> (Decision, Explanation) {
        let (decision, explanation) = engine::decide(self, options, event, None, true);
        (decision, explanation.map(|e| *e).unwrap_or_default())
    }

    /// The decision on `event`: the reply and what it did. `generated` (from the generative
    /// step) replaces the playbook's own answer where [`Decision::answer_step`] allows one.
    pub fn decide_with(
        &self,
        options: &Options,
        event: &Event,
        generated: Option<&Generated>,
    ) -> Decision {
        engine::decide(self, options, event, generated, false).0
    }

    /// Whether the playbook has texts in `language` (a normalised code): its default
    /// language, a language pack, or translations of its main texts.
    pub fn speaks(&self, language: &str) -> bool {
        let primary = language.split('-').next().unwrap_or(language);
        self.languages
            .iter()
            .any(|l| l == language || l.split('-').next() == Some(primary))
    }

    /// The language pack whose words `text` uses most (at least two of them), if any.
    pub fn detect_language(&self, text: &str) -> Option<String> {
        let words = matching::tokens(text);
        let mut best: Option<(usize, &str, bool)> = None;
        for (code, known) in &self.language_words {
            let hits = words.iter().filter(|w| known.contains(w.as_str())).count();
            match best {
                Some((b, _, _)) if hits < b => {}
                Some((b, _, _)) if hits == b => best = Some((b, code, true)),
                _ => best = Some((hits, code, false)),
            }
        }
        best.filter(|(hits, _, tie)| *hits >= 2 && !tie)
            .map(|(_, code, _)| code.to_string())
    }

    /// The playbook's default language (normalised code).
    pub fn default_language(&self) -> &str {
        &self.default_language
    }

    /// The languages the playbook speaks: the default language first, then every language some
    /// text is translated into (normalised codes, sorted).
    pub fn languages(&self) -> Vec<String> {
        let t = &self.texts;
        let texts = [&t.greeting, &t.ask_request, &t.not_understood, &t.redirect]
            .into_iter()
            .flatten()
            .chain(self.knowledge.iter().map(|e| &e.answer))
            .chain(self.intents.iter().map(|i| &i.answer));
        let mut others: Vec<String> = texts
            .flat_map(LocalText::languages)
            .filter(|code| *code != self.default_language)
            .map(str::to_string)
            .collect();
        others.sort();
        others.dedup();
        std::iter::once(self.default_language.clone())
            .chain(others)
            .collect()
    }

    /// The knowledge base as `(id, questions and keywords, answer in the default language)`,
    /// for retrieval by the generative step.
    pub fn knowledge_texts(&self) -> impl Iterator<Item = (&str, String, &LocalText)> {
        self.knowledge
            .iter()
            .zip(&self.sources)
            .map(|(entry, source)| (entry.id.as_str(), source.clone(), &entry.answer))
    }

    /// A one-paragraph description of what the playbook contains (for `check-playbook`).
    pub fn summary(&self) -> String {
        let escalation = match self.after_misunderstandings {
            0 => "never after misunderstandings".to_string(),
            n => format!("after {n} misunderstood messages in a row"),
        };
        let small_talk = self
            .intents
            .iter()
            .filter(|i| i.kind == IntentKind::SmallTalk)
            .count();
        let u = &self.understanding;
        format!(
            "default language {}; languages {}; {} knowledge entries, {small_talk} small-talk and \
             {} off-topic intents, recognised from {} examples (answer threshold {}, clarify \
             from {}, up to {} requests per message); {} request details; {} escalation \
             phrases, {} negative review markers, escalation {escalation}; {} agent actions, {} \
             file rules, {} hooks; closing {}; {} agent outcomes with their own follow-up; \
             while an agent is engaged: {}",
            self.default_language,
            self.languages.join(", "),
            self.knowledge.len(),
            self.intents.len() - small_talk,
            u.examples,
            u.threshold,
            u.clarify,
            u.max_requests,
            self.details.len(),
            self.escalation_phrases.len(),
            self.negative_reviews.len(),
            self.actions.len(),
            self.files.len(),
            self.hooks.len(),
            if self.closing.is_some() {
                "enabled"
            } else {
                "disabled"
            },
            self.agent_outcomes.len(),
            match self.during_agent {
                DuringAgent::Silent => "silent",
                DuringAgent::Assist => "assist (notes)",
                DuringAgent::Active => "active",
            },
        )
    }
}

/// Deployment settings the playbook uses besides its file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Your Logic's own agent ids (`BOT_AGENT_IDS`), to tell its engagements from humans'.
    pub identity: Identity,
    /// Which language replies use (`REPLY_LANGUAGE`).
    pub reply_language: ReplyLanguage,
}

/// The playbook as a [`Logic`]: decides synchronously, never fails.
#[derive(Debug, Clone)]
pub struct PlaybookLogic {
    playbook: Arc<Playbook>,
    options: Arc<Options>,
}

impl PlaybookLogic {
    /// Wraps a validated playbook (default options).
    pub fn new(playbook: Playbook) -> Self {
        Self::with_options(playbook, Options::default())
    }

    /// Wraps a validated playbook with deployment options.
    pub fn with_options(playbook: Playbook, options: Options) -> Self {
        Self {
            playbook: Arc::new(playbook),
            options: Arc::new(options),
        }
    }

    /// The playbook.
    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    /// The options.
    pub fn options(&self) -> &Options {
        &self.options
    }
}

#[async_trait]
impl Logic for PlaybookLogic {
    /// The reply is a pure function of the event (state travels in `conversation.custom`).
    fn deterministic(&self) -> bool {
        true
    }

    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let decision = self.playbook.decide_with(&self.options, event, None);
        outcomes::record(&decision.signals);
        Ok(decision.reply)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_playbook_is_valid() {
        let playbook = Playbook::builtin().expect("default playbook is valid");
        assert!(!playbook.knowledge.is_empty());
        assert!(playbook.summary().contains("knowledge entries"));
        let languages = playbook.languages();
        assert_eq!(languages.first().map(String::as_str), Some("en"));
        assert!(languages.iter().any(|l| l == "es"), "{languages:?}");
    }

    #[test]
    fn mime_patterns_match_exactly_by_prefix_or_anything() {
        assert!(MimePattern::Prefix("image/".into()).matches("IMAGE/PNG"));
        assert!(MimePattern::Exact("application/pdf".into()).matches("application/pdf; x=1"));
        assert!(!MimePattern::Exact("application/pdf".into()).matches("application/zip"));
        assert!(MimePattern::Any.matches(""));
    }
}
