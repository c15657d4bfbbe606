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
    /// Language packs by language code: everything one language needs (texts, examples,
    /// words), see [`Pack`].
    #[serde(default)]
    pub packs: BTreeMap<String, Spanned<Pack>>,
}

/// `[packs.<code>]`: one language, self-contained: the customer texts in it, examples of what
/// customers write for each knowledge entry and intent, and the words that carry meaning
/// (negations, refusals, requests for a human, closing answers, ratings, tone cues). The lists
/// of every pack are used for every message (customers mix languages); the texts answer
/// customers whose language is the pack's. `check-playbook` reports an incomplete pack.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pack {
    /// The main flow's texts in this language, by name (`greeting`, `not_known`, ...: see
    /// docs/logic.md).
    #[serde(default)]
    pub texts: BTreeMap<String, Text>,
    /// Knowledge entries in this language, by id.
    #[serde(default)]
    pub knowledge: BTreeMap<String, PackKnowledge>,
    /// Intents in this language, by id.
    #[serde(default)]
    pub intents: BTreeMap<String, PackIntent>,
    /// Request details in this language, by id.
    #[serde(default)]
    pub details: BTreeMap<String, PackDetail>,
    /// Examples of requests the playbook cannot answer (they teach the classifier what is
    /// outside the knowledge base).
    #[serde(default)]
    pub not_known: Vec<Text>,
    /// Words that never count (articles, fillers).
    #[serde(default)]
    pub ignore_words: Vec<Text>,
    /// Words that negate what follows them in a clause.
    #[serde(default)]
    pub negations: Vec<Text>,
    /// Cues after which a knowledge-base request does not count ("don't want").
    #[serde(default)]
    pub refusals: Vec<Text>,
    /// Verbs that start a request ("want", "need"): a negation before an earlier one does not
    /// reach past them ("no quiero un bot, quiero un humano" without the comma).
    #[serde(default)]
    pub requests: Vec<Text>,
    /// Question words: a negation after one is rhetorical ("why is there no human?").
    #[serde(default)]
    pub question_words: Vec<Text>,
    /// Words that start another request in the same message ("and also", "another question").
    #[serde(default)]
    pub clause_words: Vec<Text>,
    /// Ways of asking for a human.
    #[serde(default)]
    pub human: Vec<Text>,
    /// Questions about what the bot is ("are you", "am I talking to"): a person named after
    /// one is asked about, not asked for ("are you a real person or a bot?").
    #[serde(default)]
    pub about_bot: Vec<Text>,
    /// Checking whether anybody is there ("hello? anybody there?").
    #[serde(default)]
    pub presence: Vec<Text>,
    /// Answers to the closing question meaning "resolved" / "not resolved".
    #[serde(default)]
    pub yes: Vec<Text>,
    #[serde(default)]
    pub no: Vec<Text>,
    /// Words meaning a rating, by rating.
    #[serde(default)]
    pub ratings: BTreeMap<String, Spanned<Vec<Text>>>,
    /// Tone cues: sarcasm ("thanks for nothing"), frustration ("this is ridiculous"), insults.
    #[serde(default)]
    pub sarcasm: Vec<Text>,
    #[serde(default)]
    pub frustration: Vec<Text>,
    #[serde(default)]
    pub insults: Vec<Text>,
}

/// `[packs.<code>.knowledge.<id>]`: a knowledge entry in one language.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackKnowledge {
    pub answer: Option<Text>,
    /// A short name of the entry for clarifying questions ("returns").
    pub topic: Option<Text>,
    #[serde(default)]
    pub examples: Vec<Text>,
}

/// `[packs.<code>.intents.<id>]`: an intent in one language.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackIntent {
    pub answer: Option<Text>,
    #[serde(default)]
    pub examples: Vec<Text>,
}

/// `[packs.<code>.details.<id>]`: a request detail in one language.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackDetail {
    pub ask: Option<Text>,
    /// Words announcing the value ("order number").
    #[serde(default)]
    pub context: Vec<Text>,
    /// Ways of saying the customer does not have it ("I ordered as a guest").
    #[serde(default)]
    pub without: Vec<Text>,
    pub without_answer: Option<Text>,
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
    /// The confidence (0 < threshold <= 1) a knowledge entry or intent needs to be answered;
    /// below it the message takes the not-known path.
    #[serde(default = "default_threshold")]
    pub threshold: Spanned<f64>,
    /// Close candidates: when the second knowledge entry has at least this confidence and the
    /// first is not confident enough alone, the bot asks which one is meant (0: never).
    #[serde(default = "default_clarify")]
    pub clarify: Spanned<f64>,
    /// Most requests of one message answered (1: one per message).
    #[serde(default = "default_max_requests")]
    pub max_requests: Spanned<i64>,
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
            clarify: default_clarify(),
            max_requests: default_max_requests(),
            vague_below: default_vague_below(),
            ignore_words: Vec::new(),
            negations: Vec::new(),
            refusals: Vec::new(),
        }
    }
}

fn default_threshold() -> Spanned<f64> {
    Spanned::new(0..0, DEFAULT_THRESHOLD)
}

/// The default confidence needed to answer.
pub const DEFAULT_THRESHOLD: f64 = 0.5;
/// The default confidence of a second candidate that makes the bot ask which is meant.
pub const DEFAULT_CLARIFY: f64 = 0.25;

fn default_clarify() -> Spanned<f64> {
    Spanned::new(0..0, DEFAULT_CLARIFY)
}

fn default_max_requests() -> Spanned<i64> {
    Spanned::new(0..0, 3)
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
    /// Sent when no answer matches (until the escalation limit) and `not_known` is not set.
    pub not_understood: Option<Message>,
    /// The not-known path: the bot cannot help with the request (says so, offers a colleague
    /// or lists what it can do).
    pub not_known: Option<Message>,
    /// The clarifying question between two close candidates; `{first}`, `{second}` (their
    /// topics).
    pub clarify: Option<Message>,
    /// Asked when a message holds more requests than `matching.max_requests`; `{topics}`.
    pub which_first: Option<Message>,
    /// Offered when the customer seems stuck (the same question again after its answer).
    pub offer_human: Option<Message>,
    /// Said first when the customer is frustrated, sarcastic or rude.
    pub apology: Option<Message>,
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
            not_known: None,
            clarify: None,
            which_first: None,
            offer_human: None,
            apology: None,
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
    /// The same request this many times in a row hands over to a human; the time before, a
    /// human is offered (0: never).
    #[serde(default = "default_after_repeats")]
    pub after_repeats: Spanned<i64>,
    /// Escalate at this many frustrated, sarcastic or rude messages (0: never).
    #[serde(default = "default_after_frustration")]
    pub after_frustration: Spanned<i64>,
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
            after_repeats: default_after_repeats(),
            after_frustration: default_after_frustration(),
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

fn default_after_repeats() -> Spanned<i64> {
    Spanned::new(0..0, 3)
}

fn default_after_frustration() -> Spanned<i64> {
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
    /// Words or phrases typical of the entry (short examples).
    #[serde(default)]
    pub keywords: Vec<Text>,
    /// A short name of the entry for clarifying questions ("returns").
    pub topic: Option<Message>,
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
    /// Example phrases (more in the language packs).
    #[serde(default)]
    pub phrases: Vec<Text>,
    /// The answer.
    pub answer: Message,
    /// Whether the playbook's `conversation.redirect` follows the answer (unset: always after
    /// off-topic requests, after small talk only before the customer stated a request). `false`
    /// suits farewells.
    pub redirect: Option<bool>,
    /// The answer asks whether there is anything else: a "no" to it closes the conversation.
    #[serde(default)]
    pub anything_else: bool,
    /// The intent ends the conversation ("never mind, I found it"): no agent is needed any
    /// more.
    #[serde(default)]
    pub ends: bool,
}

/// `[[details]]`: a detail of the request (an order number, ...) captured into the state.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Detail {
    /// Unique name, also the placeholder of answers that require it (`{order}`).
    pub id: Text,
    /// A regular expression searched in every customer message; the value is its first
    /// capture group (or the whole match). Either this or `shape`.
    pub pattern: Option<Text>,
    /// The value's shape instead of a pattern: `"number"` (digits, possibly grouped by spaces
    /// or separators; never a phone number, year, date, price or postcode).
    pub shape: Option<Spanned<Shape>>,
    /// For `shape = "number"`: the fewest and most digits (default 4 to 12).
    pub digits: Option<Spanned<[i64; 2]>>,
    /// Words announcing the value ("order number", "#"); a number elsewhere is only taken
    /// right after the bot asked for it.
    #[serde(default)]
    pub context: Vec<Text>,
    /// Ways of saying the customer does not have it ("I ordered as a guest").
    #[serde(default)]
    pub without: Vec<Text>,
    /// The answer to a customer without it: another way forward. The bot then asks for a
    /// colleague.
    pub without_answer: Option<Message>,
    /// Also accepted in the message right after the bot asked for the detail (a bare value).
    pub reply_pattern: Option<Text>,
    /// The question asking for the detail (required when a knowledge entry requires it).
    pub ask: Option<Message>,
}

/// The shape of a request detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// A number of digits, possibly grouped (`123 456 789`, `DA-2024-118`'s digits are not one).
    Number,
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
