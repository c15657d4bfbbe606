//! What the worker's playbook tests share: the built-in playbook (loaded once per test binary),
//! a customer message as Salted CX sends it, and what a reply says. Each test file uses some of
//! these.
#![allow(dead_code)]

use serde_json::{Value, json};
use shared::answer::{Action, Reply};
use shared::event::Event;
use worker::logic::playbook::Playbook;

/// The built-in playbook, loaded (and its classifier trained) once.
pub fn builtin() -> &'static Playbook {
    static PLAYBOOK: std::sync::OnceLock<Playbook> = std::sync::OnceLock::new();
    PLAYBOOK.get_or_init(|| Playbook::builtin().expect("built-in playbook"))
}

/// A customer message in `language` in a conversation whose playbook state is `state`.
pub fn message(text: &str, language: &str, state: Value, needs_help: bool) -> Event {
    let event = json!({
        "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
        "accountId": "acc",
        "expires": "2030-01-01T00:00:00Z",
        "trigger": {"type": "MESSAGE", "participantType": "CUSTOMER", "content": text,
                    "contentCustomer": text, "languageCustomer": language},
        "conversation": {"pid": "conv", "needsHelp": needs_help, "custom": {"yl": state}},
        "engagements": [],
        "turns": [{"type": "MESSAGE", "participantType": "BOT", "content": "Hello!"}]
    });
    Event::from_json(&serde_json::to_vec(&event).expect("json")).expect("valid event")
}

/// The texts of the reply's MESSAGE actions.
pub fn messages(reply: &Reply) -> Vec<&str> {
    reply
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Message { content } => Some(content.as_str()),
            _ => None,
        })
        .collect()
}

/// Whether the reply asks for a human (`NEEDS_HELP` true).
pub fn escalates(reply: &Reply) -> bool {
    reply
        .actions
        .iter()
        .any(|a| matches!(a, Action::NeedsHelp { needs_help: true }))
}
