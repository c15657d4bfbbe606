//! The playbook file format (TOML), exactly as users write it.
//!
//! Every table rejects unknown keys (`deny_unknown_fields`), so a typo is an error with its line
//! instead of a silently ignored setting. Texts and numbers keep their position in the file
//! ([`Spanned`]) so that the semantic checks in [`super::validate`] can point at the line too.
//! The commented reference is `worker/playbooks/default.toml`; `docs/logic.md` explains it.

use serde::Deserialize;
use toml::Spanned;

/// A text from the file, with its position.
pub type Text = Spanned<String>;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookFile {
    /// Format version; only `1` exists.
    pub version: Spanned<i64>,
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
    #[serde(default)]
    pub knowledge: Vec<Knowledge>,
    #[serde(default)]
    pub actions: Vec<ActionRule>,
    #[serde(default)]
    pub files: Vec<FileRule>,
    #[serde(default)]
    pub hooks: Vec<Hook>,
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
}

impl Default for Matching {
    fn default() -> Self {
        Self {
            threshold: default_threshold(),
            vague_below: default_vague_below(),
            ignore_words: Vec::new(),
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
    pub greeting: Option<Text>,
    /// Sent after the greeting when the first message does not state a request.
    pub ask_request: Option<Text>,
    /// Sent when a later message is still too vague.
    pub ask_details: Option<Text>,
    /// Sent when no answer matches (until the escalation limit).
    pub not_understood: Option<Text>,
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
    pub message: Option<Text>,
    /// The message when the customer asks again while waiting for an agent.
    pub waiting_message: Option<Text>,
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
    pub question: Text,
    /// Answers meaning "resolved".
    #[serde(default)]
    pub yes: Vec<Text>,
    /// Answers meaning "not resolved" (checked first; the bot escalates again).
    #[serde(default)]
    pub no: Vec<Text>,
    /// Asked after a "yes"; without it the bot says thanks and goodbye right away.
    pub feedback_question: Option<Text>,
    /// Sent when feedback (a message, an ANSWER or a positive REVIEW) arrives.
    pub thanks: Option<Text>,
    /// The last message.
    pub goodbye: Option<Text>,
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
    pub message: Option<Text>,
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
    /// The answer.
    pub answer: Text,
    /// Other answers for customers on pages under a URL prefix (the longest prefix wins).
    #[serde(default)]
    pub variants: Vec<Variant>,
}

/// `[[knowledge.variants]]`: an answer for one part of the website.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Variant {
    pub url_prefix: Text,
    pub answer: Text,
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
    pub message: Option<Text>,
}

/// `[[files]]`: how a customer's file is acknowledged. The first matching rule applies.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileRule {
    /// `image/png`, `image/*` or `*`.
    pub mime: Text,
    /// Message to the customer; `{name}`, `{mime}`.
    pub message: Option<Text>,
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
    pub message: Option<Text>,
    pub note: Option<Text>,
    /// Ask for a human agent.
    #[serde(default)]
    pub escalate: bool,
}
