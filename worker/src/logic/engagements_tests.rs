use serde_json::{Value, json};

use super::*;

/// The engagements and turns of Salted CX's own example request ("Request Structure" in the
/// Your Logic Events document), with a customer message as the trigger.
fn seed_example() -> Value {
    json!({
        "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
        "accountId": "8d2b3a54-6f1e-4c2d-9a7b-1e5f0c3d2a61",
        "expires": "2025-07-31T05:10:28.263515641Z",
        "trigger": {"type": "MESSAGE", "participantType": "CUSTOMER", "content": "Order is still not delivered"},
        "conversation": {"pid": "005ea483-5151-479d-842e-f5ef0a1fa5cc", "needsHelp": false, "status": "IN_PROGRESS"},
        "engagements": [
            {"pid": "615ea483-5151-479d-842e-f5ef0a1fa5cc", "type": "QUEUE", "status": "COMPLETED"},
            {"pid": "a142fb87-c5b7-4e9f-b047-34ab7c480ae6", "agent": "732e8047-73ab-5ada-bd8e-b11b764f8b08",
             "type": "AGENT", "status": "IN_PROGRESS"}
        ],
        "turns": [
            {"engagementPid": "615ea483-5151-479d-842e-f5ef0a1fa5cc", "type": "MESSAGE", "participantType": "CUSTOMER", "content": "Parcel is gone"},
            {"engagementPid": "a142fb87-c5b7-4e9f-b047-34ab7c480ae6", "type": "MESSAGE", "participantType": "BOT",
             "content": "I'm not sure I understand. Can you rephrase or provide more details?"},
            {"engagementPid": "a142fb87-c5b7-4e9f-b047-34ab7c480ae6", "type": "MESSAGE", "participantType": "CUSTOMER",
             "content": "Order is still not delivered"}
        ]
    })
}

fn event(value: &Value) -> Event {
    Event::from_json(&serde_json::to_vec(value).expect("serialises")).expect("valid event")
}

fn human_engaged(value: &Value, identity: &Identity, help_requested: bool) -> bool {
    let event = event(value);
    Engagements::new(&event, identity, help_requested).human_engaged()
}

/// The seed example plus a second AGENT engagement in progress for agent `agent`, with `turns`
/// from that agent.
fn with_second_agent(agent: &str, turns: &[&str]) -> Value {
    let mut value = seed_example();
    value["engagements"]
        .as_array_mut()
        .expect("array")
        .push(json!({"pid": "e-human", "agent": agent, "type": "AGENT", "status": "IN_PROGRESS"}));
    for text in turns {
        value["turns"].as_array_mut().expect("array").push(
            json!({"engagementPid": "e-human", "type": "MESSAGE", "participantType": "AGENT", "content": text}),
        );
    }
    value
}

#[test]
fn in_the_seed_example_the_agent_engagement_holding_the_bots_turns_is_the_bots_own() {
    let value = seed_example();
    assert!(!human_engaged(&value, &Identity::default(), false));
    // Even after an escalation: the bot's turns decide.
    assert!(!human_engaged(&value, &Identity::default(), true));
}

#[test]
fn a_configured_identity_makes_an_engagement_the_bots_own_before_it_has_spoken() {
    let mut value = seed_example();
    value["turns"] = json!([]);
    let identity = Identity::new(["732E8047-73AB-5ADA-BD8E-B11B764F8B08 "]);
    assert!(identity.is_configured());
    assert!(!human_engaged(&value, &identity, true));
}

#[test]
fn with_a_configured_identity_any_other_agent_engagement_is_a_humans() {
    let value = with_second_agent("agent-maria", &[]);
    let identity = Identity::new(["732e8047-73ab-5ada-bd8e-b11b764f8b08"]);
    assert!(human_engaged(&value, &identity, false));
}

#[test]
fn an_agent_engagement_with_an_agents_turns_is_a_humans() {
    let value = with_second_agent("agent-maria", &["Hi, I'm Maria"]);
    assert!(human_engaged(&value, &Identity::default(), false));
}

#[test]
fn an_external_agent_engagement_with_turns_is_a_humans() {
    let mut value = seed_example();
    value["engagements"].as_array_mut().expect("array").push(
        json!({"pid": "e-ext", "agent": "partner", "type": "EXTERNAL_AGENT", "status": "IN_PROGRESS"}),
    );
    value["turns"].as_array_mut().expect("array").push(
        json!({"engagementPid": "e-ext", "type": "MESSAGE", "participantType": "EXTERNAL_AGENT", "content": "Hello"}),
    );
    assert!(human_engaged(&value, &Identity::default(), false));
}

#[test]
fn a_silent_new_agent_engagement_is_a_humans_once_help_was_asked_for() {
    let value = with_second_agent("agent-maria", &[]);
    assert!(human_engaged(&value, &Identity::default(), true));
    // Nobody asked for help: an engagement nobody spoke in is taken for Your Logic's new one.
    assert!(!human_engaged(&value, &Identity::default(), false));
}

#[test]
fn an_agent_whose_message_is_the_trigger_is_a_human_even_unasked() {
    let mut value = with_second_agent("agent-maria", &[]);
    value["trigger"] = json!({"type": "MESSAGE", "participantType": "AGENT", "agent": "agent-maria", "content": "Hi"});
    assert!(human_engaged(&value, &Identity::default(), false));
}

#[test]
fn a_new_engagement_of_the_agent_id_that_holds_bot_turns_is_the_bots_own() {
    let mut value = seed_example();
    value["engagements"].as_array_mut().expect("array").push(json!({
        "pid": "e-bot-2", "agent": "732e8047-73ab-5ada-bd8e-b11b764f8b08", "type": "AGENT", "status": "IN_PROGRESS"
    }));
    assert!(!human_engaged(&value, &Identity::default(), true));
}

#[test]
fn completed_or_queue_engagements_never_count_as_an_agent_at_work() {
    let mut value = with_second_agent("agent-maria", &["Hi"]);
    value["engagements"][2]["status"] = json!("COMPLETED");
    assert!(!human_engaged(&value, &Identity::default(), true));
    let mut queue = seed_example();
    queue["engagements"][0]["status"] = json!("IN_PROGRESS");
    assert!(!human_engaged(&queue, &Identity::default(), true));
}

#[test]
fn the_engagement_an_engagement_completed_trigger_reports_no_longer_counts() {
    let mut value = with_second_agent("agent-maria", &["Bye"]);
    value["trigger"] = json!({"type": "ENGAGEMENT_COMPLETED",
        "engagement": {"pid": "e-human", "agent": "agent-maria", "type": "AGENT", "status": "IN_PROGRESS"}});
    let event = event(&value);
    let identity = Identity::default();
    let engagements = Engagements::new(&event, &identity, true);
    assert!(!engagements.human_engaged());
    assert_eq!(engagements.completed_owner(), Owner::Human);
}

#[test]
fn the_bots_own_engagement_completing_is_not_an_agent_leaving() {
    let mut value = seed_example();
    value["trigger"] = json!({"type": "ENGAGEMENT_COMPLETED",
        "engagement": {"pid": "a142fb87-c5b7-4e9f-b047-34ab7c480ae6", "type": "AGENT", "status": "COMPLETED"}});
    let event = event(&value);
    let identity = Identity::default();
    let engagements = Engagements::new(&event, &identity, false);
    assert_eq!(engagements.completed_owner(), Owner::Bot);
}

#[test]
fn a_completed_engagement_without_a_type_counts_as_an_agents() {
    let mut value = seed_example();
    value["trigger"] = json!({"type": "ENGAGEMENT_COMPLETED", "engagement": {"pid": "unknown"}});
    let event = event(&value);
    let identity = Identity::default();
    let engagements = Engagements::new(&event, &identity, false);
    assert_eq!(engagements.completed_owner(), Owner::Human);
}

#[test]
fn blank_identities_are_ignored() {
    let identity = Identity::new(["", "  "]);
    assert!(!identity.is_configured());
}
