//! Scenario files: scripted conversations the simulator plays (`simulator/scenarios/*.toml`).
//!
//! A scenario names its customer and lists its steps in order, one small table (or a bare
//! string) per step. Every step except `agent_joins` becomes one event sent to Your Logic:
//!
//! ```toml
//! name = "delivery-bot"                 # short id (file name by convention)
//! title = "Where is my parcel?"         # shown in transcripts
//! customer = "Adam Novak"               # display name
//! phone = "+420123456789"               # optional contact
//! language = "en"                       # languageCustomer
//! platform = "WHATSAPP"                 # conversation.platform
//! url = "https://help.example.com/a/1"  # optional starting page
//! custom = { crm = 42 }                 # optional conversation.custom before the first event
//! steps = [
//!   { customer = "Hi" },                                   # MESSAGE from the customer
//!   { customer_silent = "typing..." },                     # a silent customer MESSAGE
//!   { agent_joins = "Petra" },                             # AGENT engagement IN_PROGRESS (no event)
//!   { agent = "Hello, I'm Petra" },                        # MESSAGE from that agent
//!   { action = "create-ticket" },                          # ACTION button pressed by the agent
//!   { agent_leaves = { outcome = "ACCEPTED", reason = "Done" } },  # ENGAGEMENT_COMPLETED
//!   { file = { name = "a.pdf", mime = "application/pdf" } },       # FILE from the customer
//!   { navigation = "https://shop.example.com/x" },         # NAVIGATION
//!   { review = { question = "Helpful?", answer = "Thumbs Down", reason = "Confusing" } },
//!   { menu_step = "refund-credits" },                      # MENU_STEP (technicalID)
//!   { answer = "talk-to-agent" },                          # ANSWER (externalID)
//!   { conversation_update = "Customer Resolved" },         # Conversation Update
//!   "completed",                                           # CONVERSATION_COMPLETED
//! ]
//! ```
//!
//! The scenarios in `simulator/scenarios/` are compiled into the binary, so the demo needs no files
//! at run time; `--scenarios DIR` plays the `*.toml` files of another directory instead.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The scenarios shipped with the simulator (`simulator/scenarios/`).
pub const BUILTIN: [(&str, &str); 4] = [
    (
        "delivery-bot.toml",
        include_str!("../scenarios/delivery-bot.toml"),
    ),
    (
        "agent-escalation.toml",
        include_str!("../scenarios/agent-escalation.toml"),
    ),
    (
        "negative-review.toml",
        include_str!("../scenarios/negative-review.toml"),
    ),
    (
        "human-request.toml",
        include_str!("../scenarios/human-request.toml"),
    ),
];

/// One scripted conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short identifier.
    pub name: String,
    /// Human-readable title for transcripts.
    pub title: String,
    /// The customer's display name.
    pub customer: String,
    /// The customer's phone contact, if any.
    #[serde(default)]
    pub phone: Option<String>,
    /// The customer's language (`languageCustomer`).
    #[serde(default = "default_language")]
    pub language: String,
    /// `conversation.platform` (WEB, WHATSAPP, ...).
    #[serde(default = "default_platform")]
    pub platform: String,
    /// The page the customer starts on, if known.
    #[serde(default)]
    pub url: Option<String>,
    /// `conversation.custom` before the first event (what the account already keeps there).
    #[serde(default)]
    pub custom: serde_json::Map<String, serde_json::Value>,
    /// What happens, in order.
    pub steps: Vec<Step>,
}

fn default_language() -> String {
    "en".into()
}

fn default_platform() -> String {
    "WEB".into()
}

/// One thing that happens in a conversation.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Step {
    /// The customer writes a message.
    Customer(String),
    /// The customer writes a silent message (it must never cause an escalation).
    CustomerSilent(String),
    /// An agent (by name) joins: a new AGENT engagement IN_PROGRESS. Sends no event.
    AgentJoins(String),
    /// The engaged agent writes a message.
    Agent(String),
    /// The engaged agent (or a supervisor) presses an action button.
    Action(String),
    /// The engaged agent completes their engagement (`ENGAGEMENT_COMPLETED`).
    AgentLeaves(Leave),
    /// The customer sends a file.
    File(File),
    /// The customer navigates to a page.
    Navigation(String),
    /// The customer reviews the last bot message.
    Review(Review),
    /// The customer reaches a menu step (technical id).
    MenuStep(String),
    /// The customer answers a question (external id).
    Answer(String),
    /// A conversation attribute changes (`state`).
    ConversationUpdate(String),
    /// The conversation is completed.
    Completed,
}

impl Step {
    /// Whether the step sends an event to Your Logic (only `agent_joins` does not).
    pub fn sends_event(&self) -> bool {
        !matches!(self, Step::AgentJoins(_))
    }
}

/// How an agent's engagement ended.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Leave {
    /// `outcomeType` (e.g. ACCEPTED).
    pub outcome: String,
    /// `reason`.
    pub reason: String,
}

/// A file sent by the customer.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct File {
    /// `mediaName`.
    pub name: String,
    /// `mimeType`.
    pub mime: String,
}

/// A customer review.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `questionName`.
    pub question: String,
    /// `answerName` (e.g. "Thumbs Down").
    pub answer: String,
    /// `reviewReason`.
    pub reason: String,
}

impl Scenario {
    /// Parses a scenario; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<Scenario> {
        let scenario: Scenario =
            toml::from_str(text).with_context(|| format!("scenario {origin} is invalid"))?;
        if scenario.events() == 0 {
            bail!("scenario {origin} sends no event: add at least one step");
        }
        Ok(scenario)
    }

    /// The number of events the scenario sends.
    pub fn events(&self) -> usize {
        self.steps.iter().filter(|s| s.sends_event()).count()
    }
}

/// The built-in scenarios.
pub fn builtin() -> Result<Vec<Scenario>> {
    BUILTIN
        .iter()
        .map(|(name, text)| Scenario::parse(name, text))
        .collect()
}

/// The `*.toml` scenarios of `dir`, by file name; the built-in ones when `dir` is `None`.
pub fn load(dir: Option<&Path>) -> Result<Vec<Scenario>> {
    let Some(dir) = dir else {
        return builtin();
    };
    let mut paths = std::fs::read_dir(dir)
        .with_context(|| format!("reading scenario directory {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect::<Vec<_>>();
    paths.sort();
    if paths.is_empty() {
        bail!("no *.toml scenario in {}", dir.display());
    }
    paths
        .iter()
        .map(|path| {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            Scenario::parse(&path.display().to_string(), &text)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_scenarios_parse_and_send_twenty_to_thirty_events() {
        let scenarios = builtin().expect("built-in scenarios parse");
        assert_eq!(scenarios.len(), BUILTIN.len());
        for scenario in scenarios {
            let events = scenario.events();
            assert!((20..=30).contains(&events), "{}: {events}", scenario.name);
            assert_eq!(scenario.steps.last(), Some(&Step::Completed));
        }
    }

    #[test]
    fn an_unknown_step_is_refused_with_the_file_name() {
        let text = "name='x'\ntitle='x'\ncustomer='c'\nsteps=[{shout='hi'}]";
        let err = Scenario::parse("bad.toml", text).expect_err("unknown step");
        assert!(format!("{err:#}").contains("bad.toml"));
    }

    #[test]
    fn a_scenario_without_events_is_refused() {
        let text = "name='x'\ntitle='x'\ncustomer='c'\nsteps=[{agent_joins='A'}]";
        assert!(Scenario::parse("empty.toml", text).is_err());
    }
}
