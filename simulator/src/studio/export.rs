//! Keeping a conversation: the studio's conversation as a conversation-test case (the format
//! `saltedcx-sim test` runs, see [`crate::cases`]), with its current answers as the
//! expectations, ready to paste into `tests/conversations/`.
//!
//! Each answered step expects exactly its messages (`message`), or `no_message`/`nothing` when
//! it had none (a message the generative step's model wrote only `no_message = false`: its
//! words vary); its notes (`note_contains`), whether it escalated and whether the conversation
//! needs help afterwards, and the playbook's phase when the answer changed it. The text is
//! written with TOML's own escaping, so any message survives the round trip.

use std::fmt::Write as _;

use serde_json::Value;
use toml::Value as Toml;

use super::session::{Exchange, Session};
use crate::cases::check::texts_of;
use crate::scenario::Step;
use worker::logic::playbook::state;

/// The step as a case-file table (without `expect`); `None` never happens today, kept so a
/// new step kind cannot be written wrongly.
pub fn step_toml(step: &Step) -> Option<toml::Table> {
    let text = |s: &str| Toml::String(s.to_string());
    let table = |pairs: &[(&str, &str)]| {
        Toml::Table(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), text(v)))
                .collect(),
        )
    };
    let (key, value) = match step {
        Step::Customer(t) => ("customer", text(t)),
        Step::CustomerSilent(t) => ("customer_silent", text(t)),
        Step::AgentJoins(t) => ("agent_joins", text(t)),
        Step::Agent(t) => ("agent", text(t)),
        Step::Action(t) => ("action", text(t)),
        Step::AgentLeaves(l) => (
            "agent_leaves",
            table(&[("outcome", &l.outcome), ("reason", &l.reason)]),
        ),
        Step::File(f) => ("file", table(&[("name", &f.name), ("mime", &f.mime)])),
        Step::Navigation(t) => ("navigation", text(t)),
        Step::Review(r) => (
            "review",
            table(&[
                ("question", &r.question),
                ("answer", &r.answer),
                ("reason", &r.reason),
            ]),
        ),
        Step::MenuStep(t) => ("menu_step", text(t)),
        Step::Answer(t) => ("answer", text(t)),
        Step::ConversationUpdate(t) => ("conversation_update", text(t)),
        Step::Completed => ("completed", Toml::Boolean(true)),
    };
    Some(toml::Table::from_iter([(key.to_string(), value)]))
}

/// The conversation as one `[[case]]` named `name`.
pub fn case(session: &Session, name: &str) -> String {
    let scenario = &session.scenario;
    let mut out = String::from("[[case]]\n");
    line(&mut out, "name", &Toml::String(name.to_string()));
    line(
        &mut out,
        "language",
        &Toml::String(scenario.language.clone()),
    );
    if !scenario.custom.is_empty()
        && let Ok(custom) = Toml::try_from(&scenario.custom)
    {
        line(&mut out, "custom", &custom);
    }
    for (step, exchange) in scenario.steps.iter().zip(&session.exchanges) {
        out.push_str("\n[[case.step]]\n");
        for (key, value) in step_toml(step).unwrap_or_default() {
            line(&mut out, &key, &value);
        }
        if by_the_model(exchange) {
            out.push_str(
                "# answered by the model: its words vary, so only a message is expected\n",
            );
        }
        for (key, value) in expectations(exchange) {
            line(&mut out, &format!("expect.{key}"), &value);
        }
    }
    out
}

/// `key = value`, the value in TOML's inline form.
fn line(out: &mut String, key: &str, value: &Toml) {
    let _ = writeln!(out, "{key} = {}", inline(value));
}

fn inline(value: &Toml) -> String {
    match value {
        Toml::Table(table) => {
            let pairs: Vec<String> = table
                .iter()
                .map(|(k, v)| format!("{} = {}", key(k), inline(v)))
                .collect();
            format!("{{ {} }}", pairs.join(", "))
        }
        Toml::Array(items) => {
            let items: Vec<String> = items.iter().map(inline).collect();
            format!("[{}]", items.join(", "))
        }
        other => other.to_string(),
    }
}

/// A bare key when it can be one, else quoted.
fn key(k: &str) -> String {
    let bare = !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if bare {
        k.to_string()
    } else {
        Toml::String(k.to_string()).to_string()
    }
}

/// Whether the generative step's model wrote the step's answer.
fn by_the_model(exchange: &Exchange) -> bool {
    exchange
        .answer
        .as_ref()
        .and_then(|a| a.why.pointer("/generative/outcome"))
        .is_some_and(|outcome| outcome == "answered")
}

/// The expectations that describe the step's current answer (none for a step without one, or
/// one that got no answer: the case would only fail there).
fn expectations(exchange: &Exchange) -> Vec<(String, Toml)> {
    let Some(answer) = exchange.answer.as_ref().filter(|a| a.outcome == "answered") else {
        return Vec::new();
    };
    let texts = |kind: &str| -> Vec<Toml> {
        texts_of(&answer.actions, kind)
            .into_iter()
            .map(|t| Toml::String(t.to_string()))
            .collect()
    };
    let mut expect = Vec::new();
    if answer.actions.is_empty() {
        expect.push(("nothing".into(), Toml::Boolean(true)));
    } else {
        let messages = texts("MESSAGE");
        if by_the_model(exchange) {
            expect.push(("no_message".into(), Toml::Boolean(false)));
        } else if messages.is_empty() {
            expect.push(("no_message".into(), Toml::Boolean(true)));
        } else {
            expect.push(("message".into(), Toml::Array(messages)));
        }
        let notes = texts("NOTE");
        if notes.is_empty() {
            expect.push(("no_note".into(), Toml::Boolean(true)));
        } else {
            expect.push(("note_contains".into(), Toml::Array(notes)));
        }
    }
    let escalates = answer.actions.iter().any(|a| {
        a["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("NEEDS_HELP"))
            && a["needsHelp"].as_bool().unwrap_or(true)
    });
    expect.push(("escalates".into(), Toml::Boolean(escalates)));
    expect.push(("needs_help".into(), Toml::Boolean(answer.needs_help)));
    let phase = answer
        .custom
        .as_ref()
        .and_then(|c| c.get(state::KEY))
        .and_then(|yl| yl.get("p"))
        .and_then(Value::as_str);
    if let Some(phase) = phase {
        let yl = toml::Table::from_iter([("p".to_string(), Toml::String(phase.to_string()))]);
        let custom = toml::Table::from_iter([(state::KEY.to_string(), Toml::Table(yl))]);
        expect.push(("custom".into(), Toml::Table(custom)));
    }
    expect
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use worker::logic::playbook::{Options, Playbook, PlaybookLogic};

    use super::*;
    use crate::cases::{self, run};
    use crate::scenario::{File, Leave, Review};
    use crate::studio::session::{Backend, Mode};

    const BUDGET: Duration = Duration::from_secs(15);

    /// A conversation of every step kind, with texts that need escaping in TOML.
    fn every_kind() -> Vec<Step> {
        vec![
            Step::Customer("Hi! My \"parcel\" is late \\ [[case]] = 'x'\nsecond line".into()),
            Step::CustomerSilent("typing…".into()),
            Step::Navigation("https://shop.example.com/orders?id=7&x=\"y\"".into()),
            Step::File(File {
                name: "photo of the box.jpg".into(),
                mime: "image/jpeg".into(),
            }),
            Step::MenuStep("talk-to-agent".into()),
            Step::Answer("yes".into()),
            Step::AgentJoins("Maria".into()),
            Step::Agent("Hello, Maria here".into()),
            Step::Action("create-ticket".into()),
            Step::AgentLeaves(Leave {
                outcome: "ACCEPTED".into(),
                reason: "Done".into(),
            }),
            Step::Customer("yes, thanks".into()),
            Step::Customer("5".into()),
            Step::Review(Review {
                question: "Was this helpful?".into(),
                answer: "Thumbs Down".into(),
                reason: "Too slow".into(),
            }),
            Step::ConversationUpdate("Customer Resolved".into()),
            Step::Completed,
        ]
    }

    #[tokio::test]
    async fn an_exported_conversation_of_every_step_kind_parses_back_and_passes_its_test() {
        let playbook = Playbook::builtin().expect("the built-in playbook");
        let options = Options::default();
        let backend = Backend {
            mode: Mode::InProcess,
            playbook: &playbook,
            version: 1,
            options: &options,
            generative: None,
            pipeline: None,
            budget: BUDGET,
        };
        let mut session = Session::new("de");
        for step in every_kind() {
            session.play(step, &backend).await;
        }
        let text = case(&session, "every \"kind\" of step");

        let parsed = cases::parse("exported.toml", &text).expect("the export parses");
        assert_eq!(parsed.len(), 1);
        let exported = &parsed[0];
        assert_eq!(exported.name, "every \"kind\" of step");
        assert_eq!(exported.scenario.language, "de");
        assert_eq!(exported.scenario.steps, every_kind(), "{text}");
        // Every step with an event has expectations; joining has none.
        for (step, expect) in exported.scenario.steps.iter().zip(&exported.expects) {
            assert_eq!(step.sends_event(), expect.is_some(), "{step:?}");
        }
        assert!(text.contains("expect.escalates = true"), "{text}");
        assert!(text.contains("expect.nothing = true"), "{text}");

        let logic = Arc::new(PlaybookLogic::new(playbook.clone()));
        let report = run::run(&run::Backend::InProcess(logic), &parsed, BUDGET).await;
        assert!(report.passed(), "{}\n{text}", report.render());
        assert_eq!(report.cases[0].checked, every_kind().len() - 1);
    }

    #[test]
    fn each_step_kind_has_its_case_file_key() {
        let keys: Vec<String> = every_kind()
            .iter()
            .filter_map(step_toml)
            .filter_map(|t| t.keys().next().cloned())
            .collect();
        assert_eq!(
            keys,
            [
                "customer",
                "customer_silent",
                "navigation",
                "file",
                "menu_step",
                "answer",
                "agent_joins",
                "agent",
                "action",
                "agent_leaves",
                "customer",
                "customer",
                "review",
                "conversation_update",
                "completed"
            ]
        );
    }
}
