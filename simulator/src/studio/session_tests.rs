//! The studio's events are the simulator's: growing turns, the answers' custom data echoed
//! back, `needsHelp` after an escalation, an agent's engagement after it joins; a replay marks
//! exactly the answers that changed.

use serde_json::{Value, json};
use worker::logic::playbook::{DEFAULT_PLAYBOOK, Options, Playbook};

use super::*;

fn builtin() -> Playbook {
    Playbook::builtin().expect("the built-in playbook")
}

fn backend<'a>(playbook: &'a Playbook, options: &'a Options, version: u64) -> Backend<'a> {
    Backend {
        mode: Mode::InProcess,
        playbook,
        version,
        options,
        generative: None,
        pipeline: None,
        budget: Duration::from_secs(15),
    }
}

fn answer(session: &Session, index: usize) -> &Answer {
    session.exchanges[index]
        .answer
        .as_ref()
        .expect("the step sent an event")
}

fn messages(answer: &Answer) -> Vec<&str> {
    answer
        .actions
        .iter()
        .filter(|a| a["type"] == "MESSAGE")
        .filter_map(|a| a["content"].as_str())
        .collect()
}

fn turns(event: &Value) -> usize {
    event["turns"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn events_grow_like_salted_cx_builds_them_and_carry_each_answer_back() {
    let playbook = builtin();
    let options = Options::default();
    let backend = backend(&playbook, &options, 1);
    let mut session = Session::new("es");
    session
        .play(Step::Customer("¿Dónde está mi pedido?".into()), &backend)
        .await;
    session
        .play(
            Step::Customer("Quiero hablar con una persona".into()),
            &backend,
        )
        .await;
    session
        .play(Step::AgentJoins("Maria".into()), &backend)
        .await;
    session
        .play(Step::Agent("Hola, soy Maria".into()), &backend)
        .await;

    let first = answer(&session, 0);
    assert_eq!(first.event["trigger"]["type"], "MESSAGE");
    assert_eq!(first.event["trigger"]["languageCustomer"], "es");
    assert_eq!(first.event["conversation"]["pid"], json!(session.pid()));
    assert_eq!(turns(&first.event), 1, "the customer's first message");
    assert!(!messages(first).is_empty(), "{:?}", first.actions);
    assert_eq!(first.why["language"]["code"], "es", "answered in Spanish");

    // The second event holds every turn so far (the bot's messages included) and the custom
    // data the first answer stored.
    let second = answer(&session, 1);
    assert_eq!(turns(&second.event), 1 + messages(first).len() + 1);
    assert_eq!(
        second.event["conversation"]["custom"],
        json!(
            first
                .custom
                .clone()
                .expect("the first answer stores the state")
        )
    );
    assert_eq!(second.event["conversation"]["needsHelp"], false);
    assert!(second.needs_help, "asking for a person escalates");

    // Joining sends no event; the agent's message carries needsHelp and the agent's engagement.
    assert!(session.exchanges[2].answer.is_none());
    let agent = answer(&session, 3);
    assert_eq!(agent.event["conversation"]["needsHelp"], true);
    let engagements = agent.event["engagements"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        engagements
            .iter()
            .any(|e| e["name"] == "Maria" && e["status"] == "IN_PROGRESS"),
        "{engagements:?}"
    );
    assert_eq!(session.exchanges[3].agent.as_deref(), Some("Maria"));
    assert!(
        agent.actions.is_empty(),
        "the bot keeps quiet: {:?}",
        agent.actions
    );
}

#[tokio::test]
async fn a_replay_against_an_edited_playbook_marks_exactly_the_answers_that_changed() {
    let playbook = builtin();
    let options = Options::default();
    let mut session = Session::new("en");
    for text in ["Where is my order?", "What are your opening hours?"] {
        session
            .play(
                Step::Customer(text.into()),
                &backend(&playbook, &options, 1),
            )
            .await;
    }
    let old = playbook
        .knowledge_texts()
        .find(|(id, _, _)| *id == "delivery")
        .map(|(_, _, answer)| answer.default_text().to_string())
        .expect("a delivery entry");
    assert!(DEFAULT_PLAYBOOK.contains(&old));
    let edited = Playbook::from_toml(
        "edited.toml",
        &DEFAULT_PLAYBOOK.replace(&old, "Parcels arrive within 2 working days."),
    )
    .expect("the edited playbook is valid");
    session.replay(&backend(&edited, &options, 2)).await;

    let first = &session.exchanges[0];
    let before = first
        .changed_from
        .as_ref()
        .expect("the delivery answer changed");
    assert!(
        before
            .iter()
            .any(|a| a["content"].as_str().is_some_and(|c| c.contains(&old)))
    );
    assert!(
        messages(answer(&session, 0))
            .iter()
            .any(|m| m.contains("2 working days"))
    );
    assert_eq!(answer(&session, 0).playbook_version, 2);
    assert!(
        session.exchanges[1].changed_from.is_none(),
        "opening hours did not change"
    );
    assert_eq!(session.steps().len(), 2);
}
