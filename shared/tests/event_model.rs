//! The event and answer model against the Salted CX documentation.
//!
//! Every JSON example in "Your Logic Events" has a corrected copy in `tests/fixtures/events/`
//! (see the README there); the callback body examples are in `tests/fixtures/answers/`.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};
use shared::answer::{Action, Answer, Reply};
use shared::custom::{CUSTOM_LIMIT_BYTES, CustomData};
use shared::event::{EngagementType, Event, EventError, ParticipantType, Status, TriggerType};
use uuid::Uuid;

const ACCOUNT_ID: &str = "8d2b3a54-6f1e-4c2d-9a7b-1e5f0c3d2a61";
const CONVERSATION_PID: &str = "005ea483-5151-479d-842e-f5ef0a1fa5cc";

/// Every documented example, by fixture name, with the trigger type it must parse to.
fn documented_examples() -> Vec<(&'static str, TriggerType)> {
    vec![
        ("full-request", TriggerType::Message),
        ("message-from-customer", TriggerType::Message),
        ("message-from-agent", TriggerType::Message),
        ("file", TriggerType::File),
        ("navigation", TriggerType::Navigation),
        ("action", TriggerType::Action),
        ("menu-step", TriggerType::MenuStep),
        ("answer", TriggerType::Answer),
        ("review", TriggerType::Review),
        ("conversation-update", TriggerType::ConversationUpdate),
        ("engagement-completed", TriggerType::EngagementCompleted),
        ("conversation-completed", TriggerType::ConversationCompleted),
    ]
}

fn fixtures_dir(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("fixtures")
        .join(kind)
}

fn event_bytes(name: &str) -> Vec<u8> {
    let path = fixtures_dir("events").join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("fixture {} readable: {err}", path.display()))
}

fn event_fixture(name: &str) -> Event {
    Event::from_json(&event_bytes(name))
        .unwrap_or_else(|err| panic!("fixture {name} should parse: {err}"))
}

fn event_value(name: &str) -> Value {
    serde_json::from_slice(&event_bytes(name)).expect("fixture is valid JSON")
}

fn answer_value(name: &str) -> Value {
    let path = fixtures_dir("answers").join(format!("{name}.json"));
    let bytes = std::fs::read(&path).expect("answer fixture readable");
    serde_json::from_slice(&bytes).expect("answer fixture is valid JSON")
}

fn parse_value(value: &Value) -> Result<Event, EventError> {
    Event::from_json(&serde_json::to_vec(value).expect("value serialises"))
}

fn object_mut<'a>(value: &'a mut Value, pointer: &str) -> &'a mut Map<String, Value> {
    value
        .pointer_mut(pointer)
        .and_then(Value::as_object_mut)
        .unwrap_or_else(|| panic!("`{pointer}` is an object in the fixture"))
}

fn invalid_message(result: Result<Event, EventError>) -> String {
    match result {
        Err(EventError::Invalid(message)) => message,
        other => panic!("expected EventError::Invalid, got {other:?}"),
    }
}

fn malformed_message(result: Result<Event, EventError>) -> String {
    match result {
        Err(EventError::Malformed(message)) => message,
        other => panic!("expected EventError::Malformed, got {other:?}"),
    }
}

fn time(text: &str) -> DateTime<Utc> {
    text.parse().expect("test timestamp parses")
}

// --- Every documented example -----------------------------------------------------------------

#[test]
fn every_documented_example_parses_into_an_event() {
    for (name, _) in documented_examples() {
        let event = event_fixture(name);
        assert_eq!(event.account_id.as_deref(), Some(ACCOUNT_ID), "{name}");
        assert_eq!(event.region.as_deref(), Some("eu"), "{name}");
        assert!(event.conversation_pid().is_some(), "{name}");
        assert!(
            event.expires > event.time.expect("fixtures carry a time"),
            "{name}"
        );
    }
}

#[test]
fn every_fixture_file_is_a_documented_example_and_parses() {
    let mut names: Vec<String> = std::fs::read_dir(fixtures_dir("events"))
        .expect("fixture directory readable")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .map(|path| {
            let bytes = std::fs::read(&path).expect("fixture readable");
            Event::from_json(&bytes)
                .unwrap_or_else(|err| panic!("{} should parse: {err}", path.display()));
            path.file_stem()
                .and_then(|stem| stem.to_str())
                .expect("utf-8 file name")
                .to_string()
        })
        .collect();
    names.sort();
    let mut documented: Vec<String> = documented_examples()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .collect();
    documented.sort();
    assert_eq!(names, documented);
}

#[test]
fn every_documented_example_has_its_documented_trigger_type() {
    for (name, expected) in documented_examples() {
        assert_eq!(event_fixture(name).trigger.kind, expected, "{name}");
    }
}

#[test]
fn the_full_request_example_keeps_the_whole_conversation_context() {
    let event = event_fixture("full-request");
    assert_eq!(
        event.request_id,
        Uuid::parse_str("3c99280a-9871-4656-a472-5da68d30c01f").expect("uuid")
    );
    assert_eq!(event.time, Some(time("2025-07-31T05:10:08.263515641Z")));
    assert_eq!(event.expires, time("2025-07-31T05:10:28.263515641Z"));
    assert_eq!(event.domain.as_deref(), Some("demo-development"));
    assert_eq!(
        event.trigger.participant_type,
        Some(ParticipantType::Customer)
    );
    assert_eq!(
        event.trigger_texts().next(),
        Some("Order is still not delivered")
    );

    let customer = event.customer.as_ref().expect("customer");
    assert_eq!(customer.display_name.as_deref(), Some("Adam Novak"));
    assert_eq!(customer.contacts.len(), 1);
    assert_eq!(customer.contacts[0].kind.as_deref(), Some("Phone"));

    let conversation = event.conversation.as_ref().expect("conversation");
    assert_eq!(conversation.pid.as_deref(), Some(CONVERSATION_PID));
    assert_eq!(conversation.status, Some(Status::InProgress));
    assert_eq!(conversation.needs_help, Some(false));
    assert_eq!(conversation.platform.as_deref(), Some("WHATSAPP"));
    assert_eq!(
        conversation.url.as_deref(),
        Some("https://help.demoadventures.com/article/12345")
    );
    assert_eq!(event.conversation_pid(), Some(CONVERSATION_PID));

    assert_eq!(event.engagements.len(), 2);
    assert_eq!(event.engagements[0].kind, Some(EngagementType::Queue));
    assert_eq!(event.engagements[0].status, Some(Status::Completed));
    assert_eq!(event.engagements[1].kind, Some(EngagementType::Agent));
    assert_eq!(
        event.engagements[1].agent.as_deref(),
        Some("732e8047-73ab-5ada-bd8e-b11b764f8b08")
    );

    assert_eq!(event.turns.len(), 3);
    assert_eq!(event.turns[1].participant_type, Some(ParticipantType::Bot));
    assert_eq!(event.turns[2].kind, Some(TriggerType::Message));
    assert_eq!(
        event.turns[2].status.as_deref(),
        Some("WAITING_FOR_ENRICHMENTS")
    );
    assert!(event.turns.iter().all(|turn| !turn.silent));
    assert!(!event.is_silent());
}

#[test]
fn message_from_customer_keeps_translated_and_verbatim_content() {
    let event = event_fixture("message-from-customer");
    let trigger = &event.trigger;
    assert_eq!(trigger.kind, TriggerType::Message);
    assert_eq!(trigger.participant_type, Some(ParticipantType::Customer));
    assert_eq!(trigger.content.as_deref(), Some("Hello, how are you?"));
    assert_eq!(trigger.language.as_deref(), Some("en"));
    assert_eq!(trigger.content_customer.as_deref(), Some("Hola, qué tal?"));
    assert_eq!(trigger.language_customer.as_deref(), Some("es"));
    let texts: Vec<&str> = event.trigger_texts().collect();
    assert_eq!(texts, vec!["Hola, qué tal?", "Hello, how are you?"]);
}

#[test]
fn message_from_agent_names_the_agent() {
    let event = event_fixture("message-from-agent");
    assert_eq!(event.trigger.kind, TriggerType::Message);
    assert_eq!(event.trigger.participant_type, Some(ParticipantType::Agent));
    assert_eq!(
        event.trigger.agent.as_deref(),
        Some("a7ac10b-58cc-4372-a567-0e02b2c3d472")
    );
    assert_eq!(
        event.trigger.content.as_deref(),
        Some("How can I help you?")
    );
}

#[test]
fn file_event_carries_media_name_mime_type_and_link() {
    let event = event_fixture("file");
    let trigger = &event.trigger;
    assert_eq!(trigger.kind, TriggerType::File);
    assert_eq!(trigger.participant_type, Some(ParticipantType::Customer));
    assert_eq!(trigger.media_name.as_deref(), Some("theLastNameOfThe.pdf"));
    assert_eq!(trigger.mime_type.as_deref(), Some("application/pdf"));
    assert_eq!(
        trigger.media_link.as_deref(),
        Some("https://storage.aws.com/theLastNameOfThe.pdf")
    );
}

#[test]
fn navigation_event_carries_the_last_visited_url_in_trigger_and_conversation() {
    let event = event_fixture("navigation");
    let url = Some("https://help.demoadventures.com/article/12345");
    assert_eq!(event.trigger.kind, TriggerType::Navigation);
    assert_eq!(event.trigger.participant_type, None);
    assert_eq!(event.trigger.last_visited_url.as_deref(), url);
    assert_eq!(
        event
            .conversation
            .as_ref()
            .and_then(|c| c.last_visited_url.as_deref()),
        url
    );
}

#[test]
fn action_event_names_the_action_and_the_agent_who_pressed_it() {
    let event = event_fixture("action");
    assert_eq!(event.trigger.kind, TriggerType::Action);
    assert_eq!(event.trigger.participant_type, Some(ParticipantType::Agent));
    assert_eq!(
        event.trigger.action.as_deref(),
        Some("schedule-followup-code")
    );
    assert_eq!(
        event.trigger.agent.as_deref(),
        Some("dac1c10b-58cc-4372-a567-0e02b2c3d479")
    );
}

#[test]
fn menu_step_event_carries_the_technical_id() {
    let event = event_fixture("menu-step");
    assert_eq!(event.trigger.kind, TriggerType::MenuStep);
    assert_eq!(
        event.trigger.technical_id.as_deref(),
        Some("refund-credits")
    );
}

#[test]
fn answer_event_carries_the_external_id() {
    let event = event_fixture("answer");
    assert_eq!(event.trigger.kind, TriggerType::Answer);
    assert_eq!(
        event.trigger.participant_type,
        Some(ParticipantType::Customer)
    );
    assert_eq!(event.trigger.external_id.as_deref(), Some("refund-credits"));
}

#[test]
fn review_event_carries_every_review_field() {
    let event = event_fixture("review");
    let trigger = &event.trigger;
    let pid = Some("f47ac10b-58cc-4372-a567-0e02b2c3d479");
    assert_eq!(trigger.kind, TriggerType::Review);
    assert_eq!(trigger.review_type, Some(ParticipantType::Customer));
    assert_eq!(trigger.question_pid.as_deref(), pid);
    assert_eq!(trigger.question_name.as_deref(), Some("Thumbs Down"));
    assert_eq!(trigger.answer_pid.as_deref(), pid);
    assert_eq!(trigger.answer_name.as_deref(), Some("Thumbs Down"));
    assert_eq!(trigger.review_reason.as_deref(), Some("Confusing"));
    assert_eq!(trigger.turn.as_deref(), pid);
}

#[test]
fn conversation_update_event_keeps_the_changed_attributes() {
    let event = event_fixture("conversation-update");
    assert_eq!(event.trigger.kind, TriggerType::ConversationUpdate);
    let changed = event
        .trigger
        .conversation
        .as_ref()
        .expect("changed attributes");
    assert_eq!(changed.get("state"), Some(&json!("Customer Resolved")));
    assert_eq!(event.conversation_pid(), Some(CONVERSATION_PID));
}

#[test]
fn engagement_completed_event_carries_the_completed_engagement() {
    let event = event_fixture("engagement-completed");
    assert_eq!(event.trigger.kind, TriggerType::EngagementCompleted);
    assert_eq!(event.trigger.time, None);
    let engagement = event.trigger.engagement.as_ref().expect("engagement");
    assert_eq!(
        engagement.pid.as_deref(),
        Some("61ab68f3-9e07-4d65-9bee-5bddfcb2d75a")
    );
    assert_eq!(engagement.time, Some(time("2025-06-23T16:42:24.405361Z")));
    assert_eq!(
        engagement.agent.as_deref(),
        Some("4644535e-5d63-4dd8-8018-528bf55fcbac")
    );
    assert_eq!(engagement.kind, Some(EngagementType::Agent));
    assert_eq!(engagement.status, Some(Status::InProgress));
    assert_eq!(engagement.name.as_deref(), Some(""));
    assert_eq!(
        engagement.reason_category.as_deref(),
        Some("Reason Category 1")
    );
    assert_eq!(engagement.reason.as_deref(), Some("Reason 1"));
    assert_eq!(engagement.outcome_type.as_deref(), Some("ACCEPTED"));
    assert_eq!(
        engagement.outcome_category.as_deref(),
        Some("Outcome Category 1")
    );
    assert_eq!(engagement.outcome_pid.as_deref(), Some("Outcome 1"));
    assert_eq!(engagement.cost, Some(3.9));
}

#[test]
fn conversation_completed_event_takes_its_conversation_id_from_the_trigger() {
    let event = event_fixture("conversation-completed");
    assert_eq!(event.trigger.kind, TriggerType::ConversationCompleted);
    assert!(event.conversation.is_none());
    assert_eq!(
        event.trigger.conversation_pid.as_deref(),
        Some("4644535e-5d63-4dd8-8018-528bf55fcbac")
    );
    assert_eq!(
        event.conversation_pid(),
        Some("4644535e-5d63-4dd8-8018-528bf55fcbac")
    );
}

#[test]
fn a_serialised_event_parses_back_to_the_same_event() {
    for (name, _) in documented_examples() {
        let event = event_fixture(name);
        let bytes = serde_json::to_vec(&event).expect("event serialises");
        let again = Event::from_json(&bytes)
            .unwrap_or_else(|err| panic!("{name} round trip should parse: {err}"));
        assert_eq!(again, event, "{name}");
    }
}

// --- Conversation id and silent flag ------------------------------------------------------------

#[test]
fn conversation_pid_prefers_the_conversation_object_over_the_trigger() {
    let mut value = event_value("full-request");
    object_mut(&mut value, "/trigger").insert("conversationPid".into(), json!("from-trigger"));
    let event = parse_value(&value).expect("valid event");
    assert_eq!(event.conversation_pid(), Some(CONVERSATION_PID));
}

#[test]
fn an_empty_or_blank_conversation_pid_falls_back_to_the_trigger_conversation_pid() {
    for blank in ["", "   "] {
        let mut value = event_value("conversation-completed");
        value["conversation"] = json!({ "pid": blank });
        let event = parse_value(&value).expect("valid event");
        assert_eq!(
            event.conversation_pid(),
            Some("4644535e-5d63-4dd8-8018-528bf55fcbac"),
            "{blank:?}"
        );
    }
}

#[test]
fn conversation_pid_is_returned_without_surrounding_whitespace() {
    let mut value = event_value("action");
    value["conversation"]["pid"] = json!(format!("  {CONVERSATION_PID}\t"));
    let event = parse_value(&value).expect("valid event");
    assert_eq!(event.conversation_pid(), Some(CONVERSATION_PID));
}

#[test]
fn a_silent_trigger_marks_the_event_silent_and_silent_turns_are_kept() {
    let mut value = event_value("full-request");
    value["trigger"]["silent"] = json!(true);
    value["turns"][2]["silent"] = json!(true);
    let event = parse_value(&value).expect("valid event");
    assert!(event.is_silent());
    assert!(event.trigger.silent);
    assert!(event.turns[2].silent);
    assert!(!event.turns[0].silent);

    value["trigger"]["silent"] = json!(false);
    assert!(!parse_value(&value).expect("valid event").is_silent());
}

#[test]
fn an_event_without_a_silent_flag_is_not_silent() {
    for (name, _) in documented_examples() {
        assert!(!event_fixture(name).is_silent(), "{name}");
    }
}

// --- Tolerant enums -------------------------------------------------------------------------------

#[test]
fn case_space_underscore_and_dash_variants_of_trigger_types_map_to_the_same_variant() {
    let cases: &[(&[&str], TriggerType)] = &[
        (
            &["MESSAGE", "Message", "message", " mEsSaGe "],
            TriggerType::Message,
        ),
        (&["FILE", "File", "file"], TriggerType::File),
        (&["NAVIGATION", "Navigation"], TriggerType::Navigation),
        (&["ACTION", "Action"], TriggerType::Action),
        (
            &[
                "MENU_STEP",
                "Menu Step",
                "menu-step",
                "menu_step",
                "MENU STEP",
            ],
            TriggerType::MenuStep,
        ),
        (&["ANSWER", "answer"], TriggerType::Answer),
        (&["REVIEW", "Review"], TriggerType::Review),
        (
            &[
                "Conversation Update",
                "CONVERSATION_UPDATE",
                "conversation-update",
                "conversation_Update",
            ],
            TriggerType::ConversationUpdate,
        ),
        (
            &[
                "ENGAGEMENT_COMPLETED",
                "Engagement Completed",
                "engagement-completed",
            ],
            TriggerType::EngagementCompleted,
        ),
        (
            &[
                "CONVERSATION_COMPLETED",
                "Conversation Completed",
                "conversation-completed",
            ],
            TriggerType::ConversationCompleted,
        ),
    ];
    for (spellings, expected) in cases {
        for spelling in *spellings {
            assert_eq!(&TriggerType::parse(spelling), expected, "{spelling:?}");
            let mut value = event_value("action");
            value["trigger"]["type"] = json!(spelling);
            value["turns"] = json!([{ "type": spelling }]);
            let event = parse_value(&value).expect("valid event");
            assert_eq!(&event.trigger.kind, expected, "trigger.type {spelling:?}");
            assert_eq!(
                event.turns[0].kind.as_ref(),
                Some(expected),
                "turns {spelling:?}"
            );
        }
    }
}

#[test]
fn case_space_underscore_and_dash_variants_of_participant_types_map_to_the_same_variant() {
    let cases: &[(&[&str], ParticipantType)] = &[
        (
            &["CUSTOMER", "Customer", "customer"],
            ParticipantType::Customer,
        ),
        (&["AGENT", "Agent", "agent"], ParticipantType::Agent),
        (
            &[
                "External Agent",
                "EXTERNAL_AGENT",
                "external-agent",
                "external_agent",
                "External-Agent",
            ],
            ParticipantType::ExternalAgent,
        ),
        (&["BOT", "Bot", "bot"], ParticipantType::Bot),
    ];
    for (spellings, expected) in cases {
        for spelling in *spellings {
            assert_eq!(&ParticipantType::parse(spelling), expected, "{spelling:?}");
            let mut value = event_value("review");
            value["trigger"]["participantType"] = json!(spelling);
            value["trigger"]["reviewType"] = json!(spelling);
            value["turns"] = json!([{ "participantType": spelling }]);
            let event = parse_value(&value).expect("valid event");
            assert_eq!(event.trigger.participant_type.as_ref(), Some(expected));
            assert_eq!(event.trigger.review_type.as_ref(), Some(expected));
            assert_eq!(event.turns[0].participant_type.as_ref(), Some(expected));
        }
    }
}

#[test]
fn case_space_underscore_and_dash_variants_of_statuses_and_engagement_types_map_to_the_same_variant()
 {
    for spelling in ["IN_PROGRESS", "In Progress", "in-progress", "in_progress"] {
        assert_eq!(Status::parse(spelling), Status::InProgress, "{spelling:?}");
        let mut value = event_value("full-request");
        value["conversation"]["status"] = json!(spelling);
        value["engagements"][0]["status"] = json!(spelling);
        let event = parse_value(&value).expect("valid event");
        assert_eq!(
            event.conversation.as_ref().and_then(|c| c.status.clone()),
            Some(Status::InProgress)
        );
        assert_eq!(event.engagements[0].status, Some(Status::InProgress));
    }
    for spelling in ["EXTERNAL_AGENT", "External Agent", "external-agent"] {
        assert_eq!(
            EngagementType::parse(spelling),
            EngagementType::ExternalAgent
        );
        let mut value = event_value("engagement-completed");
        value["trigger"]["engagement"]["type"] = json!(spelling);
        let event = parse_value(&value).expect("valid event");
        assert_eq!(
            event.trigger.engagement.and_then(|e| e.kind),
            Some(EngagementType::ExternalAgent)
        );
    }
}

#[test]
fn unknown_enum_values_become_other_with_the_original_spelling() {
    let mut value = event_value("full-request");
    value["trigger"]["type"] = json!("Typing Started");
    value["trigger"]["participantType"] = json!("Supervisor");
    value["conversation"]["status"] = json!("On Hold");
    value["engagements"][0]["type"] = json!("YOUR_LOGIC");
    value["turns"][0]["type"] = json!("reaction");
    let event = parse_value(&value).expect("unknown enum values are not rejected");

    assert_eq!(
        event.trigger.kind,
        TriggerType::Other("Typing Started".into())
    );
    assert_eq!(
        event.trigger.participant_type,
        Some(ParticipantType::Other("Supervisor".into()))
    );
    assert_eq!(
        event.conversation.as_ref().and_then(|c| c.status.clone()),
        Some(Status::Other("On Hold".into()))
    );
    assert_eq!(
        event.engagements[0].kind,
        Some(EngagementType::Other("YOUR_LOGIC".into()))
    );
    assert_eq!(
        event.turns[0].kind,
        Some(TriggerType::Other("reaction".into()))
    );

    // The original spelling survives display and re-serialisation.
    assert_eq!(event.trigger.kind.to_string(), "Typing Started");
    let again = serde_json::to_value(&event).expect("serialises");
    assert_eq!(again["trigger"]["type"], json!("Typing Started"));
    assert_eq!(again["trigger"]["participantType"], json!("Supervisor"));
}

#[test]
fn known_enum_values_serialise_with_their_canonical_wire_spelling() {
    let event = event_fixture("conversation-update");
    let value = serde_json::to_value(&event).expect("serialises");
    assert_eq!(value["trigger"]["type"], json!("CONVERSATION_UPDATE"));
    let event = event_fixture("message-from-customer");
    let value = serde_json::to_value(&event).expect("serialises");
    assert_eq!(value["trigger"]["type"], json!("MESSAGE"));
    assert_eq!(value["trigger"]["participantType"], json!("CUSTOMER"));
}

// --- Unknown fields -------------------------------------------------------------------------------

#[test]
fn unknown_fields_anywhere_are_accepted_and_ignored() {
    let plain = event_fixture("full-request");
    let mut value = event_value("full-request");
    let extra = json!({ "nested": [1, "two", { "three": null }], "flag": true });
    for pointer in [
        "",
        "/trigger",
        "/customer",
        "/customer/contacts/0",
        "/conversation",
        "/engagements/0",
        "/engagements/1",
        "/turns/0",
        "/turns/2",
    ] {
        let object = object_mut(&mut value, pointer);
        object.insert("futureField".into(), extra.clone());
        object.insert("yetAnotherField".into(), json!(42.5));
    }
    let event = parse_value(&value).expect("unknown fields are accepted");
    assert_eq!(event, plain);

    let plain = event_fixture("engagement-completed");
    let mut value = event_value("engagement-completed");
    object_mut(&mut value, "/trigger/engagement").insert("slaBreached".into(), json!(false));
    assert_eq!(parse_value(&value).expect("accepted"), plain);
}

#[test]
fn custom_objects_of_any_shape_are_kept() {
    let mut value = event_value("full-request");
    let custom =
        json!({ "phase": "collect", "count": 3, "tags": ["a", "b"], "deep": { "x": null } });
    value["conversation"]["custom"] = custom.clone();
    value["customer"]["custom"] = json!({ "vip": true });
    let event = parse_value(&value).expect("valid event");
    assert_eq!(event.conversation_custom().map(|c| json!(c)), Some(custom));
    assert_eq!(
        event.customer.and_then(|c| c.custom).map(Value::Object),
        Some(json!({ "vip": true }))
    );
}

#[test]
fn an_expires_time_with_an_offset_is_read_as_the_same_instant() {
    let mut value = event_value("action");
    value["expires"] = json!("2025-04-11T12:57:57+02:00");
    let event = parse_value(&value).expect("valid event");
    assert_eq!(event.expires, time("2025-04-11T10:57:57Z"));
}

// --- Errors ---------------------------------------------------------------------------------------

#[test]
fn the_full_example_with_its_documented_trailing_comma_is_malformed_with_line_and_column() {
    let text = String::from_utf8(event_bytes("full-request")).expect("utf-8");
    let url_line = "    \"url\": \"https://help.demoadventures.com/article/12345\"\n";
    assert!(text.contains(url_line));
    let broken = text.replacen(
        url_line,
        "    \"url\": \"https://help.demoadventures.com/article/12345\",\n",
        1,
    );
    let message = malformed_message(Event::from_json(broken.as_bytes()));
    // The comma ends line 36; serde_json reports the `}` after it, on line 37.
    assert!(message.contains("line 37 column 3"), "{message}");
}

#[test]
fn the_documented_file_example_missing_a_comma_is_malformed_with_line_and_column() {
    let verbatim = r#"{
	"requestId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
	"time": "2025-04-11T10:57:42Z",
	"expires": "2025-04-11T10:57:57Z",
	
	"domain": "company",
	"region": "eu",
	
	"trigger": {
		"time": "2025-04-11T10:57:42Z",
		"type": "File",
		"participantType": "Customer",
		"mediaName": "theLastNameOfThe.pdf",
		"mimeType": "application/pdf"
		"mediaLink": "https://storage.aws.com/theLastNameOfThe.pdf"
	}
}"#;
    let message = malformed_message(Event::from_json(verbatim.as_bytes()));
    assert!(message.contains("line 15 column 3"), "{message}");
}

#[test]
fn a_documented_example_with_its_rest_of_the_event_comment_is_malformed() {
    let verbatim = r#"{
	"requestId": "f47ac10b-58cc-4372-a567-0e02b2c3d479",
	"trigger": {
		"type": "MENU_STEP",
		"technicalID": "refund-credits"
	}
	
	/* rest of the event */
}"#;
    let message = malformed_message(Event::from_json(verbatim.as_bytes()));
    assert!(message.contains("line 8 column"), "{message}");
}

#[test]
fn bad_json_is_malformed_and_the_message_names_line_and_column() {
    for body in [
        &b""[..],
        b"{",
        b"{\"requestId\": }",
        b"not json",
        b"{\"requestId\": \"3c99280a-9871-4656-a472-5da68d30c01f\",}",
        b"\xff\xfe{}",
    ] {
        let message = malformed_message(Event::from_json(body));
        assert!(
            message.contains("line") && message.contains("column"),
            "{:?}: {message}",
            String::from_utf8_lossy(body)
        );
    }
}

/// `value` as JSON text with `null` at `field` replaced by `depth` levels of nesting.
fn with_nested(
    mut value: Value,
    pointer: &str,
    field: &str,
    depth: usize,
    open: &str,
    close: &str,
) -> String {
    object_mut(&mut value, pointer).insert(field.into(), json!("NESTED"));
    let nested = format!("{}null{}", open.repeat(depth), close.repeat(depth));
    serde_json::to_string(&value)
        .expect("serialises")
        .replacen("\"NESTED\"", &nested, 1)
}

#[test]
fn deeply_nested_json_never_crashes_the_parser() {
    let plain = event_fixture("action");
    for depth in [200, 100_000] {
        for (open, close) in [("[", "]"), ("{\"a\":", "}")] {
            // Not an event at all.
            let body = format!("{}1{}", open.repeat(depth), close.repeat(depth));
            assert!(Event::from_json(body.as_bytes()).is_err(), "depth {depth}");

            // Inside free-form custom data: refused (too deep), but no stack overflow.
            let body = with_nested(
                event_value("action"),
                "/conversation",
                "custom",
                depth,
                open,
                close,
            );
            assert!(Event::from_json(body.as_bytes()).is_err(), "custom {depth}");

            // Inside an unknown field: skipped without recursion, so the event stands.
            let body = with_nested(
                event_value("action"),
                "/trigger",
                "futureField",
                depth,
                open,
                close,
            );
            match Event::from_json(body.as_bytes()) {
                Ok(event) => assert_eq!(event, plain),
                Err(err) => assert!(!err.to_string().is_empty()),
            }
        }
    }
}

#[test]
fn trailing_data_after_the_event_is_malformed() {
    let mut body = event_bytes("action");
    body.extend_from_slice(b"\n{}");
    let message = malformed_message(Event::from_json(&body));
    assert!(message.contains("trailing characters"), "{message}");
    assert!(
        message.contains("line") && message.contains("column"),
        "{message}"
    );
}

#[test]
fn trailing_whitespace_after_the_event_is_accepted() {
    let mut body = event_bytes("action");
    body.extend_from_slice(b" \r\n\t\n");
    Event::from_json(&body).expect("whitespace after the object is fine");
}

#[test]
fn json_that_is_not_an_object_is_an_invalid_event() {
    for body in ["[]", "42", "null", "\"event\"", "{}"] {
        invalid_message(Event::from_json(body.as_bytes()));
    }
}

#[test]
fn a_missing_request_id_is_invalid_and_named() {
    let mut value = event_value("action");
    object_mut(&mut value, "").remove("requestId");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("`requestId`"), "{message}");
}

#[test]
fn a_request_id_that_is_not_a_uuid_is_invalid_and_named() {
    for bad in [json!("not-a-uuid"), json!(""), json!(12345), json!(null)] {
        let mut value = event_value("action");
        value["requestId"] = bad.clone();
        let message = invalid_message(parse_value(&value));
        assert!(message.contains("`requestId`"), "{bad}: {message}");
    }
}

#[test]
fn a_missing_expires_is_invalid_and_named() {
    let mut value = event_value("action");
    object_mut(&mut value, "").remove("expires");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("`expires`"), "{message}");
}

#[test]
fn an_unparseable_expires_is_invalid_and_named() {
    for bad in [
        json!("tomorrow"),
        json!("2025-04-11"),
        json!("2025-13-11T10:57:57Z"),
        json!(1744369077),
        json!(null),
    ] {
        let mut value = event_value("action");
        value["expires"] = bad.clone();
        let message = invalid_message(parse_value(&value));
        assert!(message.contains("`expires`"), "{bad}: {message}");
    }
}

#[test]
fn a_missing_conversation_id_is_invalid_and_named() {
    let mut value = event_value("action");
    object_mut(&mut value, "").remove("conversation");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("conversation.pid"), "{message}");
    assert!(message.contains("trigger.conversationPid"), "{message}");

    let mut value = event_value("conversation-completed");
    object_mut(&mut value, "/trigger").remove("conversationPid");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("conversation.pid"), "{message}");

    let mut value = event_value("action");
    value["conversation"]["pid"] = json!(" ");
    invalid_message(parse_value(&value));
}

#[test]
fn a_missing_or_blank_account_id_is_refused_at_admission_and_named() {
    let admit =
        |value: &Value| shared::admission::Admission::from_json(value.to_string().as_bytes(), None);
    let mut value = event_value("action");
    object_mut(&mut value, "").remove("accountId");
    let message = invalid_message(admit(&value).map(|_| event_fixture("action")));
    assert!(message.contains("`accountId`"), "{message}");
    // The worker's model reads such an event (the account then comes with the envelope).
    assert!(parse_value(&value).is_ok());

    for blank in ["", "  "] {
        let mut value = event_value("action");
        value["accountId"] = json!(blank);
        let message = invalid_message(admit(&value).map(|_| event_fixture("action")));
        assert!(message.contains("`accountId`"), "{blank:?}: {message}");
    }
}

#[test]
fn the_lenient_parse_leaves_out_fields_of_unexpected_types_and_names_them() {
    let mut value = event_value("full-request");
    object_mut(&mut value, "/turns/0").insert("time".into(), json!(17));
    object_mut(&mut value, "/conversation").insert("needsHelp".into(), json!("no"));
    let body = value.to_string();
    assert!(Event::from_json(body.as_bytes()).is_err(), "strict");
    let (event, dropped) = Event::from_json_lenient(body.as_bytes()).expect("lenient");
    assert_eq!(dropped, vec!["conversation.needsHelp", "turns[0].time"]);
    assert_eq!(event.turns[0].time, None);
    assert_eq!(event.conversation.and_then(|c| c.needs_help), None);
    // What the pipeline needs is never left out.
    object_mut(&mut value, "/trigger").insert("type".into(), json!(3));
    assert!(Event::from_json_lenient(value.to_string().as_bytes()).is_err());
}

#[test]
fn a_missing_trigger_or_trigger_type_is_invalid_and_named() {
    let mut value = event_value("action");
    object_mut(&mut value, "").remove("trigger");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("`trigger`"), "{message}");

    let mut value = event_value("action");
    object_mut(&mut value, "/trigger").remove("type");
    let message = invalid_message(parse_value(&value));
    assert!(message.contains("`type`"), "{message}");
    assert!(message.contains("trigger"), "{message}");
}

#[test]
fn nested_fields_of_the_wrong_type_are_invalid_and_named_by_their_path() {
    let cases: &[(&str, &str, Value)] = &[
        ("/turns/0", "time", json!(17)),
        ("/turns/0", "time", json!("yesterday")),
        ("/trigger", "type", json!(3)),
        ("/trigger", "silent", json!("yes")),
        ("/engagements/1", "cost", json!("cheap")),
        ("/conversation", "needsHelp", json!("no")),
        ("/customer/contacts/0", "contact", json!(420123456789_u64)),
        ("", "engagements", json!({})),
    ];
    let paths = [
        "turns[0].time",
        "turns[0].time",
        "trigger.type",
        "trigger.silent",
        "engagements[1].cost",
        "conversation.needsHelp",
        "customer.contacts[0].contact",
        "engagements",
    ];
    for ((pointer, field, bad), path) in cases.iter().zip(paths) {
        let mut value = event_value("full-request");
        object_mut(&mut value, pointer).insert((*field).to_string(), bad.clone());
        let message = invalid_message(parse_value(&value));
        assert!(message.contains(&format!("`{path}`")), "{path}: {message}");
    }
}

// --- Answers --------------------------------------------------------------------------------------

#[test]
fn the_answer_fixture_deserialises_and_reserialises_to_the_documented_wire_shape() {
    let fixture = answer_value("actions-with-conversation-custom");
    let answer: Answer = serde_json::from_value(fixture.clone()).expect("answer parses");
    assert_eq!(
        answer.request_id,
        Uuid::parse_str("3c99280a-9871-4656-a472-5da68d30c01f").expect("uuid")
    );
    let kinds: Vec<&str> = answer.reply.actions.iter().map(Action::kind).collect();
    assert_eq!(kinds, ["MESSAGE", "NOTE", "NEEDS_HELP"]);
    assert_eq!(
        answer.reply.actions[2],
        Action::NeedsHelp { needs_help: true }
    );
    let custom = answer
        .reply
        .conversation
        .as_ref()
        .and_then(|c| c.custom.as_ref())
        .expect("conversation custom");
    assert_eq!(custom.as_map().get("phase"), Some(&json!("agent")));

    assert_eq!(serde_json::to_value(&answer).expect("serialises"), fixture);
}

#[test]
fn an_answer_built_in_code_serialises_exactly_like_the_answer_fixture() {
    let fixture = answer_value("actions-with-conversation-custom");
    let Value::Object(custom) = fixture["conversation"]["custom"].clone() else {
        panic!("custom is an object")
    };
    let reply = Reply::with_actions(vec![
        Action::message(
            "Sorry to hear your order has not arrived yet. Let me get a colleague to look at it.",
        ),
        Action::note("Customer reports an undelivered order; escalating to an agent."),
        Action::needs_help(),
    ])
    .with_conversation_custom(CustomData::new(custom).expect("fits in 1 kB"));
    let id = Uuid::parse_str("3c99280a-9871-4656-a472-5da68d30c01f").expect("uuid");
    assert_eq!(
        serde_json::to_value(Answer::new(id, reply)).expect("serialises"),
        fixture
    );
}

#[test]
fn an_answer_using_the_request_alias_reserialises_with_request_id() {
    let fixture = answer_value("request-alias");
    let answer: Answer = serde_json::from_value(fixture.clone()).expect("alias accepted");
    assert_eq!(
        answer.request_id,
        Uuid::parse_str("f47ac10b-58cc-4372-a567-0e02b2c3d479").expect("uuid")
    );
    assert_eq!(answer.reply.actions.len(), 2);
    assert_eq!(answer.reply.actions[0].kind(), "NOTE");

    let mut expected = fixture;
    let object = expected.as_object_mut().expect("object");
    let id = object.remove("request").expect("fixture uses `request`");
    object.insert("requestId".into(), id);
    assert_eq!(serde_json::to_value(&answer).expect("serialises"), expected);
}

#[test]
fn an_answer_with_no_actions_still_carries_the_request_id_and_an_empty_action_list() {
    let id = Uuid::parse_str("f47ac10b-58cc-4372-a567-0e02b2c3d479").expect("uuid");
    let value = serde_json::to_value(Answer::new(id, Reply::nothing())).expect("serialises");
    assert_eq!(
        value,
        json!({ "requestId": "f47ac10b-58cc-4372-a567-0e02b2c3d479", "actions": [] })
    );
}

#[test]
fn an_answer_without_a_request_id_is_refused() {
    let result = serde_json::from_value::<Answer>(json!({ "actions": [] }));
    assert!(result.is_err());
}

/// A `custom` object whose serialised form is exactly `size` bytes: `{"k":"xxx…"}`.
fn custom_of_size(size: usize) -> Map<String, Value> {
    let overhead = r#"{"k":""}"#.len();
    let mut map = Map::new();
    map.insert("k".into(), json!("x".repeat(size - overhead)));
    assert_eq!(serde_json::to_vec(&map).expect("serialises").len(), size);
    map
}

#[test]
fn custom_data_of_exactly_1024_bytes_is_accepted_and_1025_bytes_is_refused() {
    assert_eq!(CUSTOM_LIMIT_BYTES, 1024);
    let fits = CustomData::new(custom_of_size(1024)).expect("1024 bytes fit");
    assert_eq!(fits.size(), 1024);
    let err = CustomData::new(custom_of_size(1025)).expect_err("1025 bytes do not fit");
    assert_eq!(err.size, 1025);
    assert_eq!(err.limit, 1024);
}

#[test]
fn an_answer_carrying_custom_data_over_1024_bytes_is_refused() {
    let mut conversation_custom = answer_value("actions-with-conversation-custom");
    conversation_custom["conversation"]["custom"] = Value::Object(custom_of_size(1025));
    let err = serde_json::from_value::<Answer>(conversation_custom).expect_err("too large");
    assert!(err.to_string().contains("1024-byte limit"), "{err}");

    let mut customer_custom = answer_value("actions-with-conversation-custom");
    customer_custom["customer"] = json!({ "custom": Value::Object(custom_of_size(2048)) });
    assert!(serde_json::from_value::<Answer>(customer_custom).is_err());

    let mut at_limit = answer_value("actions-with-conversation-custom");
    at_limit["conversation"]["custom"] = Value::Object(custom_of_size(1024));
    serde_json::from_value::<Answer>(at_limit).expect("exactly 1 kB is accepted");
}
