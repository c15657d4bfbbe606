//! Unit tests of single decisions; whole conversations are in `tests/golden`.

use serde_json::{Value, json};
use shared::answer::{Action, Reply};
use shared::event::Event;

use super::super::Playbook;
use super::super::state::KEY;

fn builtin() -> Playbook {
    Playbook::builtin().expect("the built-in playbook is valid")
}

fn with(extra: &str) -> Playbook {
    let source = format!("{}\n{extra}", super::super::DEFAULT_PLAYBOOK);
    Playbook::from_toml("test.toml", &source).expect("valid playbook")
}

fn event(trigger: Value) -> Value {
    json!({
        "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
        "accountId": "acc",
        "expires": "2030-01-01T00:00:00Z",
        "region": "eu",
        "trigger": trigger,
        "conversation": {"pid": "conv", "status": "IN_PROGRESS", "custom": {}},
        "engagements": [],
        "turns": []
    })
}

fn customer(text: &str) -> Value {
    event(
        json!({"type": "MESSAGE", "participantType": "CUSTOMER", "content": text, "contentCustomer": text}),
    )
}

/// Sets the field at `pointer`, creating it in its (existing) parent object.
fn set(mut event: Value, pointer: &str, value: Value) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
    let object = event
        .pointer_mut(parent)
        .and_then(Value::as_object_mut)
        .expect("the parent object exists");
    object.insert(key.to_string(), value);
    event
}

/// A human agent's engagement in progress: the agent has written in it.
fn with_agent(event: Value) -> Value {
    let event = set(
        event,
        "/engagements",
        json!([{"pid": "e1", "type": "AGENT", "status": "IN_PROGRESS", "agent": "maria"}]),
    );
    set(
        event,
        "/turns",
        json!([{"engagementPid": "e1", "type": "MESSAGE", "participantType": "AGENT", "content": "Hi, I'm Maria"}]),
    )
}

fn decide(playbook: &Playbook, event: Value) -> Reply {
    let body = serde_json::to_vec(&event).expect("serialises");
    playbook.decide(&Event::from_json(&body).expect("valid event"))
}

fn custom(reply: &Reply) -> Value {
    reply
        .conversation
        .as_ref()
        .and_then(|c| c.custom.as_ref())
        .map(|c| Value::Object(c.as_map().clone()))
        .unwrap_or(Value::Null)
}

fn kinds(reply: &Reply) -> Vec<&'static str> {
    reply.actions.iter().map(Action::kind).collect()
}

#[test]
fn messages_from_agents_and_bots_get_no_answer() {
    let pb = builtin();
    for participant in ["AGENT", "BOT", "EXTERNAL_AGENT"] {
        let e = set(
            customer("where is my order"),
            "/trigger/participantType",
            json!(participant),
        );
        assert_eq!(decide(&pb, e), Reply::nothing(), "{participant}");
    }
}

#[test]
fn the_first_customer_message_is_greeted_and_answered() {
    let reply = decide(&builtin(), customer("Where is my order?"));
    assert_eq!(kinds(&reply), ["MESSAGE", "MESSAGE"]);
    assert_eq!(custom(&reply)[KEY]["p"], "a");
    assert_eq!(custom(&reply)[KEY]["k"], "delivery");
}

#[test]
fn conversation_completed_and_unknown_triggers_change_nothing() {
    let pb = builtin();
    let mut completed = event(json!({"type": "CONVERSATION_COMPLETED", "conversationPid": "conv"}));
    if let Some(object) = completed.as_object_mut() {
        object.remove("conversation");
    }
    assert_eq!(decide(&pb, completed), Reply::nothing());
    let update = event(
        json!({"type": "Conversation Update", "conversation": {"state": "Customer Resolved"}}),
    );
    assert_eq!(decide(&pb, update), Reply::nothing());
    assert_eq!(
        decide(&pb, event(json!({"type": "TELEPATHY"}))),
        Reply::nothing()
    );
}

#[test]
fn a_silent_request_for_a_human_becomes_a_note_without_needs_help() {
    let e = set(customer("I want a human"), "/trigger/silent", json!(true));
    let reply = decide(&builtin(), e);
    assert_eq!(kinds(&reply), ["NOTE"]);
    assert!(
        matches!(&reply.actions[0], Action::Note { content } if content.starts_with("Not escalated"))
    );
    assert_ne!(custom(&reply)[KEY]["p"], "h");
}

#[test]
fn the_users_own_custom_keys_survive_every_update() {
    let e = set(
        customer("Where is my order?"),
        "/conversation/custom",
        json!({"crm": {"ticket": 7}}),
    );
    let reply = decide(&builtin(), e);
    assert_eq!(custom(&reply)["crm"], json!({"ticket": 7}));
}

#[test]
fn while_an_agent_is_engaged_the_bot_stays_silent() {
    let reply = decide(&builtin(), with_agent(customer("Where is my order?")));
    assert!(reply.actions.is_empty());
}

#[test]
fn in_assist_mode_matches_are_suggested_to_the_agent_as_notes() {
    let pb = with("").clone();
    let source = super::super::DEFAULT_PLAYBOOK
        .replace("during_agent = \"silent\"", "during_agent = \"assist\"");
    let pb_assist = Playbook::from_toml("assist.toml", &source).expect("valid");
    let reply = decide(&pb_assist, with_agent(customer("Where is my order?")));
    assert_eq!(kinds(&reply), ["NOTE"]);
    assert!(
        matches!(&reply.actions[0], Action::Note { content } if content.starts_with("Suggested answer (delivery)"))
    );
    assert!(
        decide(&pb, with_agent(customer("Where is my order?")))
            .actions
            .is_empty()
    );
}

#[test]
fn in_active_mode_the_bot_keeps_answering_during_an_agent_engagement() {
    let source = super::super::DEFAULT_PLAYBOOK
        .replace("during_agent = \"silent\"", "during_agent = \"active\"");
    let pb = Playbook::from_toml("active.toml", &source).expect("valid");
    let reply = decide(&pb, with_agent(customer("Where is my order?")));
    assert!(kinds(&reply).contains(&"MESSAGE"));
}

#[test]
fn answers_depend_on_the_url_prefix_of_the_customers_page() {
    let pb = builtin();
    let business = set(
        customer("how do I return an item"),
        "/url",
        json!("https://shop.example.com/business/desk"),
    );
    let reply = decide(&pb, business);
    assert!(
        matches!(reply.actions.last(), Some(Action::Message { content }) if content.starts_with("Business customers"))
    );
    let reply = decide(&pb, customer("how do I return an item"));
    assert!(
        matches!(reply.actions.last(), Some(Action::Message { content }) if content.starts_with("You can return"))
    );
}

#[test]
fn navigation_is_remembered_and_later_answers_use_it() {
    let pb = builtin();
    let nav = event(
        json!({"type": "NAVIGATION", "lastVisitedUrl": "https://shop.example.com/business/x"}),
    );
    let reply = decide(&pb, nav);
    assert!(reply.actions.is_empty());
    let state = custom(&reply);
    assert_eq!(state[KEY]["u"], "https://shop.example.com/business/x");
    let next = set(customer("I want a refund"), "/conversation/custom", state);
    let reply = decide(&pb, next);
    assert!(
        matches!(reply.actions.last(), Some(Action::Message { content }) if content.starts_with("Business customers"))
    );
}

#[test]
fn an_unknown_agent_action_gets_a_note_saying_so() {
    let e = event(json!({"type": "ACTION", "participantType": "AGENT", "action": "launch-rocket"}));
    let reply = decide(&builtin(), e);
    assert_eq!(
        reply.actions,
        [Action::note(
            "Your Logic does not know the action \"launch-rocket\"; nothing was done."
        )]
    );
}

#[test]
fn agent_actions_match_ignoring_case_and_separators() {
    let e = event(json!({"type": "ACTION", "participantType": "AGENT", "action": "Create Ticket"}));
    assert_eq!(
        kinds(&decide(&builtin(), with_agent(e))),
        ["NOTE", "MESSAGE"]
    );
}

#[test]
fn files_are_acknowledged_by_mime_type() {
    let pb = builtin();
    let file = |mime: &str| {
        event(
            json!({"type": "FILE", "participantType": "CUSTOMER", "mediaName": "x", "mimeType": mime}),
        )
    };
    let reply = decide(&pb, file("application/pdf"));
    assert_eq!(
        reply.actions[0],
        Action::message("Thank you, I received your document \"x\".")
    );
    let reply = decide(&pb, file("image/jpeg"));
    assert_eq!(reply.actions[1], Action::note("Customer sent an image: x"));
    assert!(
        decide(&pb, with_agent(file("image/jpeg")))
            .actions
            .is_empty()
    );
}

#[test]
fn an_engagement_completed_by_a_queue_or_with_another_agent_left_is_ignored() {
    let pb = builtin();
    let queue =
        event(json!({"type": "ENGAGEMENT_COMPLETED", "engagement": {"pid": "q", "type": "QUEUE"}}));
    assert_eq!(decide(&pb, queue), Reply::nothing());
    let agent = event(
        json!({"type": "ENGAGEMENT_COMPLETED", "engagement": {"pid": "e0", "type": "AGENT"}}),
    );
    let agent_turn = json!([{"engagementPid": "e0", "type": "MESSAGE", "participantType": "AGENT", "content": "Bye"}]);
    let mut both = with_agent(agent.clone());
    both["turns"]
        .as_array_mut()
        .expect("turns")
        .push(agent_turn[0].clone());
    assert_eq!(decide(&pb, both), Reply::nothing());
    assert_eq!(
        kinds(&decide(&pb, set(agent, "/turns", agent_turn))),
        ["MESSAGE"]
    );
}

#[test]
fn the_bots_own_engagement_completing_asks_nothing() {
    let pb = builtin();
    let own = event(
        json!({"type": "ENGAGEMENT_COMPLETED", "engagement": {"pid": "bot", "type": "AGENT", "status": "COMPLETED"}}),
    );
    let own = set(
        own,
        "/turns",
        json!([{"engagementPid": "bot", "type": "MESSAGE", "participantType": "BOT", "content": "Hello!"}]),
    );
    assert_eq!(decide(&pb, own), Reply::nothing());
}

/// An agent's engagement completing with `outcome`, listed as completed or (as some senders
/// do) still in progress.
fn agent_left(outcome: Option<&str>, listed_status: &str) -> Value {
    let mut engagement =
        json!({"pid": "e1", "type": "AGENT", "status": "COMPLETED", "reason": "Customer left"});
    if let Some(outcome) = outcome {
        engagement["outcomeType"] = json!(outcome);
    }
    let e = event(
        json!({"type": "ENGAGEMENT_COMPLETED", "participantType": "AGENT", "engagement": engagement}),
    );
    let e = set(
        e,
        "/engagements",
        json!([{"pid": "e1", "type": "AGENT", "status": listed_status}]),
    );
    set(e, "/conversation/custom", json!({"yl": {"p": "h"}}))
}

const OUTCOME_RULES: &str = r#"
[[agent_outcomes]]
outcomes = ["GAVE_UP", "no answer"]
then = "escalate"
message = "Sorry, let me find another colleague for you."
note = "Agent left: {outcome} ({reason})"

[[agent_outcomes]]
outcomes = ["TRANSFERRED_TO_BOT"]
then = "answer"
message = "I'm back. How else can I help?"
"#;

#[test]
fn an_agent_leaving_without_resolving_leads_to_another_escalation() {
    let pb = with(OUTCOME_RULES);
    for (outcome, listed) in [("GAVE_UP", "COMPLETED"), ("No-Answer", "IN_PROGRESS")] {
        let reply = decide(&pb, agent_left(Some(outcome), listed));
        assert_eq!(
            kinds(&reply),
            ["MESSAGE", "NOTE", "MESSAGE", "NOTE", "NEEDS_HELP"],
            "{outcome}: {reply:?}"
        );
        assert_eq!(
            reply.actions[0],
            Action::message("Sorry, let me find another colleague for you.")
        );
        assert_eq!(
            reply.actions[1],
            Action::note(format!("Agent left: {outcome} (Customer left)"))
        );
        let Action::Note { content: text } = &reply.actions[3] else {
            panic!("expected the escalation note: {reply:?}");
        };
        assert!(text.contains(&format!("outcome {outcome}")), "{text}");
        // Waiting for an agent again, as before the agent came, with one more escalation.
        assert_eq!(custom(&reply)["yl"], json!({"p": "h", "e": 1}));
    }
}

#[test]
fn an_agent_outcome_can_hand_the_conversation_back_to_the_bot() {
    let reply = decide(
        &with(OUTCOME_RULES),
        agent_left(Some("transferred to bot"), "COMPLETED"),
    );
    assert_eq!(
        reply.actions,
        [Action::message("I'm back. How else can I help?")]
    );
    assert_eq!(custom(&reply)["yl"]["p"], "a", "answering");
}

#[test]
fn outcomes_without_a_rule_get_the_closing_question() {
    let pb = with(OUTCOME_RULES);
    for outcome in [Some("ACCEPTED"), Some(""), None] {
        let reply = decide(&pb, agent_left(outcome, "COMPLETED"));
        assert_eq!(
            reply.actions,
            [Action::message(
                "Has your issue been resolved? Please answer yes or no."
            )],
            "{outcome:?}"
        );
        assert_eq!(custom(&reply)["yl"]["p"], "x", "closing");
    }
}

#[test]
fn asking_again_while_waiting_for_an_agent_gets_the_waiting_message_only() {
    let e = set(
        customer("operator please"),
        "/conversation/custom",
        json!({"yl": {"p": "h"}}),
    );
    let e = set(e, "/conversation/needsHelp", json!(true));
    let reply = decide(&builtin(), e);
    assert_eq!(
        reply.actions,
        [Action::message(
            "A colleague will be with you shortly, thank you for your patience."
        )]
    );
}

#[test]
fn hooks_answer_menu_steps_and_can_escalate_answers() {
    let pb = builtin();
    let menu = event(
        json!({"type": "MENU_STEP", "participantType": "Customer", "technicalID": "refund-credits"}),
    );
    assert_eq!(kinds(&decide(&pb, menu)), ["MESSAGE"]);
    let answer = event(
        json!({"type": "ANSWER", "participantType": "Customer", "externalID": "talk-to-agent"}),
    );
    assert_eq!(
        kinds(&decide(&pb, answer)),
        ["NOTE", "MESSAGE", "NOTE", "NEEDS_HELP"]
    );
    let unknown = event(json!({"type": "MENU_STEP", "technicalID": "nothing-here"}));
    assert_eq!(decide(&pb, unknown), Reply::nothing());
}

#[test]
fn a_negative_review_during_an_agent_engagement_only_notes_it() {
    let review = event(
        json!({"type": "REVIEW", "reviewType": "Customer", "answerName": "Thumbs Down", "reviewReason": "Confusing"}),
    );
    let reply = decide(&builtin(), with_agent(review));
    assert_eq!(kinds(&reply), ["NOTE"]);
}

#[test]
fn a_lost_state_with_bot_turns_in_the_history_is_not_greeted_again() {
    let e = set(
        customer("Where is my order?"),
        "/turns",
        json!([{"type": "MESSAGE", "participantType": "BOT", "content": "Hello"}]),
    );
    assert_eq!(kinds(&decide(&builtin(), e)), ["MESSAGE"]);
}

#[test]
fn an_escalation_note_summarises_the_request_last_message_and_page() {
    let pb = builtin();
    let first = decide(&pb, customer("My washing machine makes noise"));
    let next = set(
        customer("it rattles loudly"),
        "/conversation/custom",
        custom(&first),
    );
    let next = set(next, "/url", json!("https://x.test/p"));
    let reply = decide(&pb, next);
    assert_eq!(kinds(&reply), ["MESSAGE", "NOTE", "NEEDS_HELP"]);
    let Action::Note { content } = &reply.actions[1] else {
        panic!("no note")
    };
    assert!(
        content.contains("did not understand 2 messages in a row"),
        "{content}"
    );
    assert!(
        content.contains("Request: \"My washing machine makes noise\""),
        "{content}"
    );
    assert!(
        content.contains("Last message: \"it rattles loudly\""),
        "{content}"
    );
    assert!(content.contains("Page: https://x.test/p"), "{content}");
}

#[test]
fn in_active_mode_an_unknown_message_during_an_agent_engagement_is_handled_as_usual() {
    let source = super::super::DEFAULT_PLAYBOOK
        .replace("during_agent = \"silent\"", "during_agent = \"active\"");
    let pb = Playbook::from_toml("active.toml", &source).expect("valid");
    let reply = decide(&pb, with_agent(customer("My washing machine is noisy")));
    assert_eq!(kinds(&reply), ["MESSAGE", "MESSAGE"]);
    assert_eq!(custom(&reply)[KEY]["p"], "a");
}

#[test]
fn a_negative_review_while_already_waiting_for_an_agent_only_adds_a_note() {
    let review =
        event(json!({"type": "REVIEW", "reviewType": "Customer", "answerName": "Thumbs Down"}));
    let review = set(review, "/conversation/custom", json!({"yl": {"p": "h"}}));
    let review = set(review, "/conversation/needsHelp", json!(true));
    assert_eq!(kinds(&decide(&builtin(), review)), ["NOTE"]);
}
