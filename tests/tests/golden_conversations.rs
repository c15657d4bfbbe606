//! Golden conversations through the playbook logic, called directly (fast): each scripted
//! conversation in `tests/golden/*.json` is played event by event, feeding the returned
//! `conversation.custom` back into the next event as Salted CX does, and every reply is compared
//! with the expected actions. `golden_pipeline.rs` plays the same scripts through
//! the real pipeline.

use std::path::PathBuf;

use bytes::Bytes;
use chrono::Utc;
use shared::event::Event;
use testkit::golden;
use worker::logic::playbook::{Playbook, PlaybookLogic};
use worker::logic::{Context, Logic};

fn dir() -> PathBuf {
    golden::golden_dir()
}

async fn play(name: &str) {
    let script = golden::load(&dir(), name);
    let logic = PlaybookLogic::new(Playbook::builtin().expect("built-in playbook"));
    let mut conversation = golden::Conversation::new(&format!("conv-{name}"), &script);
    for (index, step) in script.steps.iter().enumerate() {
        let event_json = conversation.event(step);
        let raw = serde_json::to_vec(&event_json).expect("serialises");
        let event = Event::from_json(&raw).expect("golden events are valid");
        let context = Context::new(event.expires, Utc::now(), 1, Bytes::from(raw));
        let mut reply = logic
            .decide(&event, &context)
            .await
            .expect("the playbook never fails");
        if event.is_silent() {
            reply = reply.without_escalation(); // as the worker does
        }
        let reply = serde_json::to_value(&reply).expect("serialises");
        let actions = reply["actions"].as_array().cloned().unwrap_or_default();
        let custom = reply.pointer("/conversation/custom").cloned();
        conversation.apply(&event_json, &actions, custom.as_ref());
        golden::check(name, index, step, &actions, &conversation.custom);
    }
}

macro_rules! golden_tests {
    ($($test:ident => $name:literal,)+) => {
        $(
            #[tokio::test]
            async fn $test() {
                play($name).await;
            }
        )+

        #[test]
        fn every_golden_file_is_played_by_a_test() {
            let played: Vec<String> = [$($name),+].iter().map(|n| n.to_string()).collect();
            let mut played = played;
            played.sort();
            assert_eq!(golden::names(&dir()), played);
        }
    };
}

golden_tests! {
    a_customer_gets_a_greeting_and_an_auto_answer_on_the_happy_path => "happy-path",
    a_customer_asking_for_a_human_in_german_is_escalated_once => "escalation-by-request",
    repeated_misunderstanding_escalates_with_a_note_summarising_the_request => "escalation-after-misunderstanding",
    the_bot_is_silent_during_an_agent_engagement_then_takes_over_and_closes => "agent-engagement-and-closing",
    agent_buttons_are_answered_per_playbook_and_unknown_ones_noted => "action-buttons",
    uploaded_files_are_acknowledged_by_mime_type => "file-upload",
    a_negative_review_escalates_to_a_human => "negative-review",
    silent_events_never_ask_for_help => "silent-events",
    answers_depend_on_the_page_the_customer_navigated_to => "navigation",
    a_customer_saying_the_issue_is_not_resolved_is_escalated_again => "closing-not-resolved",
    menu_steps_and_answers_run_their_hooks => "menu-hooks",
    the_users_own_custom_keys_are_kept_and_the_state_stays_within_one_kilobyte => "custom-data",
    in_the_seed_example_the_bot_answers_in_its_own_agent_engagement_and_keeps_quiet_for_a_real_agent => "seed-example-bot-engagement",
}

#[test]
fn golden_helpers_merge_objects_recursively() {
    let mut target = serde_json::json!({"a": {"b": 1, "c": 2}});
    golden::merge(&mut target, &serde_json::json!({"a": {"c": 3}}));
    assert_eq!(target, serde_json::json!({"a": {"b": 1, "c": 3}}));
}
