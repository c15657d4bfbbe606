//! Properties of the event parser: tolerant about spelling and unknown fields, and total (it never
//! panics, whatever the body).

use std::path::Path;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::{Map, Number, Value};
use shared::event::{EngagementType, Event, EventError, ParticipantType, Status, TriggerType};
use shared::tolerant::normalise;

const FIXTURES: &[&str] = &[
    "full-request",
    "message-from-customer",
    "message-from-agent",
    "file",
    "navigation",
    "action",
    "menu-step",
    "answer",
    "review",
    "conversation-update",
    "engagement-completed",
    "conversation-completed",
];

/// Every field name the event model knows, anywhere; injected "unknown" fields avoid these.
const KNOWN_FIELDS: &[&str] = &[
    "requestId",
    "time",
    "expires",
    "trigger",
    "accountId",
    "domain",
    "region",
    "url",
    "customer",
    "conversation",
    "engagements",
    "turns",
    "type",
    "participantType",
    "silent",
    "agent",
    "content",
    "language",
    "contentCustomer",
    "languageCustomer",
    "contentAgent",
    "languageAgent",
    "mediaName",
    "mimeType",
    "mediaLink",
    "lastVisitedUrl",
    "action",
    "technicalID",
    "externalID",
    "reviewType",
    "questionPid",
    "questionName",
    "answerPid",
    "answerName",
    "reviewReason",
    "turn",
    "engagement",
    "conversationPid",
    "pid",
    "displayName",
    "contacts",
    "contact",
    "custom",
    "startConversationTime",
    "needsHelp",
    "status",
    "platform",
    "direction",
    "name",
    "reasonCategory",
    "reason",
    "outcomeType",
    "outcomeCategory",
    "outcomePid",
    "cost",
    "engagementPid",
    "id",
];

const TRIGGER_TYPES: &[TriggerType] = &[
    TriggerType::Message,
    TriggerType::File,
    TriggerType::Navigation,
    TriggerType::Action,
    TriggerType::MenuStep,
    TriggerType::Answer,
    TriggerType::Review,
    TriggerType::ConversationUpdate,
    TriggerType::EngagementCompleted,
    TriggerType::ConversationCompleted,
];

const PARTICIPANT_TYPES: &[ParticipantType] = &[
    ParticipantType::Customer,
    ParticipantType::Agent,
    ParticipantType::ExternalAgent,
    ParticipantType::Bot,
];

const STATUSES: &[Status] = &[Status::InProgress, Status::Completed];

const ENGAGEMENT_TYPES: &[EngagementType] = &[
    EngagementType::Queue,
    EngagementType::Agent,
    EngagementType::ExternalAgent,
    EngagementType::Bot,
];

fn fixture_bytes(name: &str) -> Vec<u8> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/events")
        .join(format!("{name}.json"));
    std::fs::read(&path).unwrap_or_else(|err| panic!("fixture {} readable: {err}", path.display()))
}

fn fixture_value(name: &str) -> Value {
    serde_json::from_slice(&fixture_bytes(name)).expect("fixture is valid JSON")
}

fn parse_value(value: &Value) -> Result<Event, EventError> {
    Event::from_json(&serde_json::to_vec(value).expect("value serialises"))
}

/// A random spelling of a canonical `SNAKE_CASE` wire value: each letter in random case, words
/// joined by a random mix of spaces, `_` and `-`, maybe with surrounding spaces.
fn spelling_of(wire: String) -> impl Strategy<Value = String> {
    let words = wire.split('_').count();
    (
        proptest::collection::vec(any::<bool>(), wire.len()),
        proptest::collection::vec(select(vec![' ', '_', '-']), words - 1),
        0usize..3,
        0usize..3,
    )
        .prop_map(move |(upper, separators, lead, trail)| {
            let mut separators = separators.into_iter();
            let mut out = " ".repeat(lead);
            for (c, upper) in wire.chars().zip(upper) {
                if c == '_' {
                    out.push(separators.next().unwrap_or('_'));
                } else if upper {
                    out.push(c.to_ascii_uppercase());
                } else {
                    out.push(c.to_ascii_lowercase());
                }
            }
            out.push_str(&" ".repeat(trail));
            out
        })
}

/// A known variant together with a random spelling of it.
fn spelled<T: Clone + std::fmt::Debug + 'static>(
    variants: &'static [T],
    wire: fn(&T) -> String,
) -> impl Strategy<Value = (T, String)> {
    select(variants).prop_flat_map(move |variant| {
        let text = wire(&variant);
        (Just(variant), spelling_of(text))
    })
}

/// Arbitrary JSON values of bounded size and depth.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
        ".{0,24}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            proptest::collection::btree_map(".{0,12}", inner, 0..6)
                .prop_map(|map| Value::Object(map.into_iter().collect::<Map<String, Value>>())),
        ]
    })
}

/// Unknown field names: any text (including near-misses like `RequestId` or `request_id`) that
/// is not a field name of the model.
fn unknown_name() -> impl Strategy<Value = String> {
    prop_oneof![
        ".{0,16}",
        "[a-zA-Z][a-zA-Z0-9_]{0,15}",
        select(KNOWN_FIELDS).prop_map(|name| name.to_uppercase()),
        select(KNOWN_FIELDS).prop_map(|name| format!("{name}_")),
    ]
    .prop_filter("must be unknown to the model", |name| {
        !KNOWN_FIELDS.contains(&name.as_str())
    })
}

fn unknown_fields() -> impl Strategy<Value = Vec<(String, Value)>> {
    proptest::collection::vec((unknown_name(), json_value()), 1..4)
}

/// Adds `fields` to the object at `pointer` (if the fixture has one), never overwriting.
fn inject(value: &mut Value, pointer: &str, fields: &[(String, Value)]) {
    if let Some(object) = value.pointer_mut(pointer).and_then(Value::as_object_mut) {
        for (name, extra) in fields {
            object.entry(name.clone()).or_insert_with(|| extra.clone());
        }
    }
}

/// What must hold for every accepted event.
fn check_accepted(event: &Event) -> Result<(), TestCaseError> {
    let pid = event.conversation_pid();
    prop_assert!(pid.is_some_and(|pid| !pid.is_empty() && pid.trim() == pid));
    // An account, when present, is usable (a missing one is the ingress's concern).
    if let Some(account) = event.account_id.as_deref().filter(|a| !a.trim().is_empty()) {
        prop_assert!(shared::event::check_id("accountId", account).is_ok());
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// (a) Any spelling of a known trigger type parses to that variant, alone and in an event.
    #[test]
    fn any_spelling_variant_of_a_known_trigger_type_parses_to_it(
        (variant, spelling) in spelled(TRIGGER_TYPES, |v| v.as_str().to_string()),
        fixture in select(FIXTURES),
    ) {
        prop_assert_eq!(&TriggerType::parse(&spelling), &variant);
        let mut value = fixture_value(fixture);
        value["trigger"]["type"] = Value::from(spelling.clone());
        if let Some(turns) = value.get_mut("turns").and_then(Value::as_array_mut) {
            for turn in turns {
                turn["type"] = Value::from(spelling.clone());
            }
        }
        let event = parse_value(&value).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(&event.trigger.kind, &variant);
        for turn in &event.turns {
            prop_assert_eq!(turn.kind.as_ref(), Some(&variant));
        }
    }

    /// (a) Any spelling of a known participant type parses to that variant, wherever it appears.
    #[test]
    fn any_spelling_variant_of_a_known_participant_type_parses_to_it(
        (variant, spelling) in spelled(PARTICIPANT_TYPES, |v| v.as_str().to_string()),
    ) {
        prop_assert_eq!(&ParticipantType::parse(&spelling), &variant);
        let mut value = fixture_value("full-request");
        value["trigger"]["participantType"] = Value::from(spelling.clone());
        value["trigger"]["reviewType"] = Value::from(spelling.clone());
        value["turns"][1]["participantType"] = Value::from(spelling.clone());
        let event = parse_value(&value).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(event.trigger.participant_type.as_ref(), Some(&variant));
        prop_assert_eq!(event.trigger.review_type.as_ref(), Some(&variant));
        prop_assert_eq!(event.turns[1].participant_type.as_ref(), Some(&variant));
    }

    /// (a) Any spelling of a known status or engagement type parses to that variant.
    #[test]
    fn any_spelling_variant_of_a_known_status_or_engagement_type_parses_to_it(
        (status, status_spelling) in spelled(STATUSES, |v| v.as_str().to_string()),
        (kind, kind_spelling) in spelled(ENGAGEMENT_TYPES, |v| v.as_str().to_string()),
    ) {
        prop_assert_eq!(&Status::parse(&status_spelling), &status);
        prop_assert_eq!(&EngagementType::parse(&kind_spelling), &kind);
        let mut value = fixture_value("full-request");
        value["conversation"]["status"] = Value::from(status_spelling.clone());
        value["engagements"][0]["status"] = Value::from(status_spelling);
        value["engagements"][0]["type"] = Value::from(kind_spelling);
        let event = parse_value(&value).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(
            event.conversation.as_ref().and_then(|c| c.status.as_ref()),
            Some(&status)
        );
        prop_assert_eq!(event.engagements[0].status.as_ref(), Some(&status));
        prop_assert_eq!(event.engagements[0].kind.as_ref(), Some(&kind));
    }

    /// Any text is either a spelling of a known value or kept verbatim as `Other`.
    #[test]
    fn any_text_parses_to_a_matching_known_variant_or_to_other_with_the_original(
        text in prop_oneof![".{0,24}", "[a-zA-Z _-]{0,24}"],
    ) {
        match TriggerType::parse(&text) {
            TriggerType::Other(kept) => {
                prop_assert_eq!(&kept, &text);
                prop_assert!(TRIGGER_TYPES.iter().all(|known| normalise(known.as_str()) != normalise(&text)));
            }
            known => prop_assert_eq!(normalise(known.as_str()), normalise(&text)),
        }
        match ParticipantType::parse(&text) {
            ParticipantType::Other(kept) => prop_assert_eq!(&kept, &text),
            known => prop_assert_eq!(normalise(known.as_str()), normalise(&text)),
        }
        let mut value = fixture_value("action");
        value["trigger"]["type"] = Value::from(text.clone());
        let event = parse_value(&value).map_err(|err| TestCaseError::fail(err.to_string()))?;
        prop_assert_eq!(event.trigger.kind, TriggerType::parse(&text));
    }

    /// (b) Unknown fields with any names and values, at any level, never reject a valid event
    /// and change nothing in what is parsed.
    #[test]
    fn unknown_fields_anywhere_never_cause_rejection_of_a_valid_event(
        fixture in select(FIXTURES),
        top in unknown_fields(),
        trigger in unknown_fields(),
        conversation in unknown_fields(),
        customer in unknown_fields(),
        engagement in unknown_fields(),
        turn in unknown_fields(),
    ) {
        let plain = Event::from_json(&fixture_bytes(fixture))
            .map_err(|err| TestCaseError::fail(err.to_string()))?;
        let mut value = fixture_value(fixture);
        inject(&mut value, "", &top);
        inject(&mut value, "/trigger", &trigger);
        inject(&mut value, "/trigger/conversation", &conversation);
        inject(&mut value, "/trigger/engagement", &engagement);
        inject(&mut value, "/conversation", &conversation);
        inject(&mut value, "/customer", &customer);
        inject(&mut value, "/customer/contacts/0", &customer);
        for index in 0..3 {
            inject(&mut value, &format!("/engagements/{index}"), &engagement);
            inject(&mut value, &format!("/turns/{index}"), &turn);
        }
        let event = parse_value(&value).map_err(|err| {
            TestCaseError::fail(format!("{err}\nin {value}"))
        })?;
        // Unknown fields are ignored, except inside the free-form trigger.conversation object.
        let mut comparable = event.clone();
        comparable.trigger.conversation.clone_from(&plain.trigger.conversation);
        prop_assert_eq!(&comparable, &plain);
        check_accepted(&event)?;
    }

    /// (c) Arbitrary bytes never panic the parser.
    #[test]
    fn arbitrary_bytes_never_panic_the_parser(
        body in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        if let Ok(event) = Event::from_json(&body) {
            check_accepted(&event)?;
        }
    }

    /// (c) Random corruptions of a valid event never panic the parser.
    #[test]
    fn corrupted_fixtures_never_panic_the_parser(
        fixture in select(FIXTURES),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..8),
    ) {
        let mut body = fixture_bytes(fixture);
        for (index, byte, op) in edits {
            if body.is_empty() {
                body.push(byte);
                continue;
            }
            let at = index.index(body.len());
            match op {
                0 => body[at] = byte,
                1 => body.insert(at, byte),
                _ => {
                    body.remove(at);
                }
            }
        }
        if let Ok(event) = Event::from_json(&body) {
            check_accepted(&event)?;
        }
    }

    /// (d) Arbitrary JSON values never panic the parser, and valid JSON is never "malformed".
    #[test]
    fn arbitrary_json_values_never_panic_and_are_never_malformed(value in json_value()) {
        let body = serde_json::to_vec(&value).expect("value serialises");
        match Event::from_json(&body) {
            Ok(event) => check_accepted(&event)?,
            Err(EventError::Invalid(_)) => {}
            Err(EventError::Malformed(message)) => {
                return Err(TestCaseError::fail(format!("valid JSON called malformed: {message}")));
            }
        }
    }

    /// (d) Arbitrary JSON values in place of any field of a valid event never panic the parser;
    /// rejections are `Invalid` and name a field.
    #[test]
    fn arbitrary_json_in_any_field_never_panics_and_rejections_name_a_field(
        fixture in select(FIXTURES),
        pick in any::<prop::sample::Index>(),
        replacement in json_value(),
    ) {
        let mut value = fixture_value(fixture);
        let mut pointers = Vec::new();
        collect_pointers(&value, String::new(), &mut pointers);
        let pointer = pick.get(&pointers).clone();
        if let Some(slot) = value.pointer_mut(&pointer) {
            *slot = replacement;
        }
        match parse_value(&value) {
            Ok(event) => check_accepted(&event)?,
            Err(EventError::Invalid(message)) => prop_assert!(!message.is_empty()),
            Err(EventError::Malformed(message)) => {
                return Err(TestCaseError::fail(format!("valid JSON called malformed: {message}")));
            }
        }
    }
}

/// JSON pointers to every value in `value` (the root excluded).
fn collect_pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                let pointer = format!("{prefix}/{}", key.replace('~', "~0").replace('/', "~1"));
                out.push(pointer.clone());
                collect_pointers(child, pointer, out);
            }
        }
        Value::Array(items) => {
            for (index, child) in items.iter().enumerate() {
                let pointer = format!("{prefix}/{index}");
                out.push(pointer.clone());
                collect_pointers(child, pointer, out);
            }
        }
        _ => {}
    }
}
