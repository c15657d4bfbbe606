//! The playbook file format (TOML), exactly as users write it.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), so a typo is an error with its line
//! instead of a silently ignored setting. Texts and numbers keep their position in the file
//! ([`Spanned`]) so that the semantic checks in [`super::validate`] can point at the line too.
//! The commented reference is `worker/playbooks/default.toml`; `docs/logic.md` explains it.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use toml::Spanned;

/// A text from the file, with its position (ids, phrases, notes for agents).
pub type Text = Spanned<String>;

/// A text for the customer, with its position: one string (in the default language) or a
/// table of translations by language code (`greeting.es = "¡Hola!"`).
pub type Message = Spanned<Localized>;

/// A customer text in one or several languages.
#[derive(Debug, Clone)]
pub enum Localized {
    /// A string in the playbook's default language.
    Plain(String),
    /// Translations by language code, each with its position.
    ByLanguage(BTreeMap<String, Spanned<String>>),
}

impl<'de> Deserialize<'de> for Localized {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LocalizedVisitor;

        impl<'de> Visitor<'de> for LocalizedVisitor {
            type Value = Localized;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, or a table of strings by language code (en = \"...\")")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<Localized, E> {
                Ok(Localized::Plain(text.to_string()))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Localized, A::Error> {
                let mut texts = BTreeMap::new();
                while let Some(language) = map.next_key::<String>()? {
                    let text = map.next_value::<Spanned<String>>()?;
                    texts.insert(language, text);
                }
                Ok(Localized::ByLanguage(texts))
            }
        }

        deserializer.deserialize_any(LocalizedVisitor)
    }
}

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookFile {
    /// Format version; only `1` exists.
    pub version: Spanned<i64>,
    /// The language of plain texts and the fallback for other languages.
    #[serde(default)]
    pub languages: Languages,
    #[serde(default)]
    pub matching: Matching,
    #[serde(default)]
    pub conversation: ConversationTexts,
    #[serde(default)]
    pub escalation: Escalation,
    /// Without this table the bot takes over silently when an agent leaves.
    pub closing: Option<Closing>,
    /// What the bot does when an agent leaves with one of the listed outcomes (others: closing).
    #[serde(default)]
    pub agent_outcomes: Vec<AgentOutcome>,
    /// Small talk and off-topic requests, answered without escalating.
    #[serde(default)]
    pub intents: Vec<Intent>,
    /// Request details (order numbers, ...) captured into the state.
    #[serde(default)]
    pub details: Vec<Detail>,
    #[serde(default)]
    pub knowledge: Vec<Knowledge>,
    #[serde(default)]
    pub actions: Vec<ActionRule>,
    #[serde(default)]
    pub files: Vec<FileRule>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
}

/// `[languages]`: which language the texts are in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Languages {
    /// The language of plain texts; every translated text must have it (the fallback).
    #[serde(default = "default_language")]
    pub default: Text,
}

impl Default for Languages {
    fn default() -> Self {
        Self {
            default: default_language(),
        }
    }
}

fn default_language() -> Text {
    Spanned::new(0..0, "en".to_string())
}

/// `[matching]`: how customer text is compared with questions, keywords and phrases.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Matching {
    /// Share of a question's words that must be found in a message (0 < threshold <= 1).
    #[serde(default = "default_threshold")]
    pub threshold: Spanned<f64>,
    /// A message with fewer meaningful words than this, and no answer, is a vague request.
    #[serde(default = "default_vague_below")]
    pub vague_below: Spanned<i64>,
    /// Words ignored when matching, in addition to the built-in filler words.
    #[serde(default)]
    pub ignore_words: Vec<Text>,
    /// Words that negate what follows them in a clause, in addition to the built-in ones.
    #[serde(default)]
    pub negations: Vec<Text>,
    /// Cues after which a knowledge-base keyword does not count ("don't want"), in addition to
    /// the built-in ones.
    #[serde(default)]
    pub refusals: Vec<Text>,
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            vague_below: default_vague_below(),
            ignore_words: Vec::new(),
            negations: Vec::new(),
            refusals: Vec::new(),
        }
    }
}

fn default_threshold() -> Spanned<f64> {
    Spanned::new(0..0, 0.75)
}

fn default_vague_below() -> Spanned<i64> {
    Spanned::new(0..0, 3)
}

/// What the bot does while a human agent's engagement is in progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuringAgent {
    /// No message to the customer (notes for agent buttons still work).
    #[default]
    Silent,
    /// No message to the customer, but knowledge-base matches are suggested to the agent as notes.
    Assist,
    /// Keep answering as if no agent were there.
    Active,
}

/// `[conversation]`: the texts of the main flow. A missing text skips that message.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConversationTexts {
    /// Sent before the first answer of a conversation.
    pub greeting: Option<Message>,
    /// Sent after the greeting when the first message does not state a request.
    pub ask_request: Option<Message>,
    /// Sent when a later message is still too vague.
    pub ask_details: Option<Message>,
    /// Sent when no answer matches (until the escalation limit).
    pub not_understood: Option<Message>,
    /// Sent after an off-topic answer, and after small talk before any request: what the bot
    /// can help with.
    pub redirect: Option<Message>,
    #[serde(default = "default_during_agent")]
    pub during_agent: Spanned<DuringAgent>,
    /// The note suggesting an answer to the agent (`during_agent = "assist"`); `{id}`, `{answer}`.
    pub assist_note: Option<Text>,
    /// The note for an agent button the playbook does not know; `{action}`.
    pub unknown_action_note: Option<Text>,
}

impl Default for ConversationTexts {
    fn default() -> Self {
        Self {
            greeting: None,
            ask_request: None,
            ask_details: None,
            not_understood: None,
            redirect: None,
            during_agent: default_during_agent(),
            assist_note: None,
            unknown_action_note: None,
        }
    }
}

fn default_during_agent() -> Spanned<DuringAgent> {
    Spanned::new(0..0, DuringAgent::default())
}

/// `[escalation]`: when and how the bot asks for a human agent.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Escalation {
    /// Phrases with which a customer asks for a human (any language, any word order).
    #[serde(default)]
    pub phrases: Vec<Text>,
    /// Escalate after this many misunderstood messages in a row (0: never).
    #[serde(default = "default_after_misunderstandings")]
    pub after_misunderstandings: Spanned<i64>,
    /// Review answers or reasons that count as negative (`Thumbs Down`, ...).
    #[serde(default)]
    pub negative_reviews: Vec<Text>,
    /// The message to the customer when escalating.
    pub message: Option<Message>,
    /// The message when the customer asks again while waiting for an agent.
    pub waiting_message: Option<Message>,
    /// The note for the agent; `{reason}`, `{request}`, `{last}`, `{url}`.
    pub note: Option<Text>,
}

impl Default for Escalation {
    fn default() -> Self {
        Self {
            phrases: Vec::new(),
            after_misunderstandings: default_after_misunderstandings(),
            negative_reviews: Vec::new(),
            message: None,
            waiting_message: None,
            note: None,
        }
    }
}

fn default_after_misunderstandings() -> Spanned<i64> {
    Spanned::new(0..0, 2)
}

/// `[closing]`: taking over when the agent leaves, and closing the conversation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Closing {
    /// Asked when the agent's engagement completes.
    pub question: Message,
    /// Answers meaning "resolved" (a negated one, "not solved", means "not resolved").
    #[serde(default)]
    pub yes: Vec<Text>,
    /// Answers meaning "not resolved" (the bot escalates again). The earliest answer in the
    /// message wins; a longer phrase covering a shorter one wins over it ("no problem").
    #[serde(default)]
    pub no: Vec<Text>,
    /// Asked after a "yes"; without it the bot says thanks and goodbye right away.
    pub feedback_question: Option<Message>,
    /// Sent when feedback (a message, an ANSWER or a positive REVIEW) arrives.
    pub thanks: Option<Message>,
    /// The last message.
    pub goodbye: Option<Message>,
    /// The highest rating of the feedback question's scale (ratings are 1..=scale).
    #[serde(default = "default_rating_scale")]
    pub rating_scale: Spanned<i64>,
    /// Words meaning a rating, by rating (`ratings.5 = ["excellent", "five"]`); numbers are
    /// understood without being listed.
    #[serde(default)]
    pub ratings: BTreeMap<String, Spanned<Vec<Text>>>,
}

fn default_rating_scale() -> Spanned<i64> {
    Spanned::new(0..0, 5)
}

/// What the bot does after an agent's engagement completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AfterAgent {
    /// Ask the `[closing]` question (the default for outcomes not listed).
    Closing,
    /// Ask for another agent (the request was not resolved).
    Escalate,
    /// Take over and answer the customer's next messages.
    Answer,
}

/// `[[agent_outcomes]]`: what the bot does when an agent leaves with one of `outcomes`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentOutcome {
    /// The engagement's `outcomeType` values (compared ignoring case, spaces, `_` and `-`).
    pub outcomes: Spanned<Vec<Text>>,
    /// What follows: `closing`, `escalate` or `answer`.
    pub then: Spanned<AfterAgent>,
    /// Message to the customer, sent first.
    pub message: Option<Message>,
    /// Note for the agents; `{outcome}`, `{reason}` (the engagement's).
    pub note: Option<Text>,
}

/// `[[knowledge]]`: one entry of the knowledge base.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Knowledge {
    /// Unique name (shown to agents and remembered in the state).
    pub id: Text,
    /// Example questions: matched ignoring case, punctuation, accents and word order.
    #[serde(default)]
    pub questions: Vec<Text>,
    /// Words or phrases that select this entry whenever they all appear in a message.
    #[serde(default)]
    pub keywords: Vec<Text>,
    /// The answer; `{detail}` placeholders for the details it `requires`.
    pub answer: Message,
    /// Details (`[[details]]` ids) to ask for before answering.
    #[serde(default)]
    pub requires: Vec<Text>,
    /// Other answers for customers on pages under a URL prefix (the longest prefix wins).
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// `[[knowledge.variants]]`: an answer for one part of the website.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub url_prefix: Text,
    pub answer: Message,
}

/// What kind of conversation an intent is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentKind {
    /// Greetings, thanks, "how are you": answered, then back to the request.
    SmallTalk,
    /// Requests the business does not handle: a polite answer and what the bot can do.
    OffTopic,
}

/// `[[intents]]`: small talk or an off-topic request, answered and never escalated.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Intent {
    /// Unique name.
    pub id: Text,
    pub kind: Spanned<IntentKind>,
    /// Phrases that select the intent when all their words appear in one clause of a message.
    pub phrases: Vec<Text>,
    /// The answer.
    pub answer: Message,
    /// Whether the playbook's `conversation.redirect` follows the answer (unset: always after
    /// off-topic requests, after small talk only before the customer stated a request). `false`
    /// suits farewells.
    pub redirect: Option<bool>,
}

/// `[[details]]`: a detail of the request (an order number, ...) captured into the state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    /// Unique name, also the placeholder of answers that require it (`{order}`).
    pub id: Text,
    /// A regular expression searched in every customer message; the value is its first
    /// capture group (or the whole match).
    pub pattern: Text,
    /// Also accepted in the message right after the bot asked for the detail (a bare value).
    pub reply_pattern: Option<Text>,
    /// The question asking for the detail (required when a knowledge entry requires it).
    pub ask: Option<Message>,
}

/// `[[actions]]`: what an agent button does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionRule {
    /// The action name Salted CX sends (compared ignoring case).
    pub name: Text,
    /// Note for the agents; `{action}`.
    pub note: Option<Text>,
    /// Message to the customer; `{action}`.
    pub message: Option<Message>,
}

/// `[[files]]`: how a customer's file is acknowledged. The first matching rule applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// `image/png`, `image/*` or `*`.
    pub mime: Text,
    /// Message to the customer; `{name}`, `{mime}`.
    pub message: Option<Message>,
    /// Note for the agents; `{name}`, `{mime}`.
    pub note: Option<Text>,
}

/// Which trigger a hook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookOn {
    /// `MENU_STEP`, matched by `technicalID`.
    MenuStep,
    /// `ANSWER`, matched by `externalID`.
    Answer,
}

/// `[[hooks]]`: what a menu step or an answered question does.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hook {
    pub on: Spanned<HookOn>,
    /// The `technicalID` (menu step) or `externalID` (answer).
    pub id: Text,
    pub message: Option<Message>,
    pub note: Option<Text>,
    /// Ask for a human agent.
    #[serde(default)]
    pub escalate: bool,
}
