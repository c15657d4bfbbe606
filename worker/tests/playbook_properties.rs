//! Property tests of the playbook logic over arbitrary conversations:
//! - no sequence of events can push `conversation.custom` over 1 kB, whatever the user already
//!   stores there, and the user's keys are never changed or dropped;
//! - silent triggers never produce `NEEDS_HELP`;
//! - the knowledge base answers a question the same way whatever its case, punctuation and word
//!   order;
//! - a playbook capturing the most request details there can be still keeps `custom` within
//!   1 kB, however long the values.

use proptest::prelude::*;
use serde_json::{Map, Value, json};
use shared::answer::{Action, Reply};
use shared::event::Event;
use worker::logic::playbook::{DEFAULT_PLAYBOOK, Playbook};

const LIMIT: usize = 1024;

/// The built-in playbook, validated once per test process.
fn builtin() -> &'static Playbook {
    static PLAYBOOK: std::sync::OnceLock<Playbook> = std::sync::OnceLock::new();
    PLAYBOOK.get_or_init(|| Playbook::builtin().expect("built-in playbook"))
}

fn size(map: &Map<String, Value>) -> usize {
    serde_json::to_vec(map)
        .map(|v| v.len())
        .unwrap_or(usize::MAX)
}

/// Texts that exercise every branch: questions, keywords, escalation phrases, closing answers,
/// small talk, long and non-Latin text.
fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "Hi",
            "Where is my order?",
            "my parcel is lost",
            "I want a human",
            "operator",
            "yes",
            "no",
            "5",
            "thanks",
            "how do I return an item",
            "I forgot my password",
            "blah",
            "",
            "转人工",
            "Chci mluvit s člověkem",
            "My order 1234567890 arrived damaged",
            "the item is broken",
            "it's 99887766",
            "no problem, all good",
            "4 out of 5",
            "excellent",
            "how are you?",
            "can you recommend a film?",
            "no need for a human, where is my parcel?",
        ])
        .prop_map(str::to_string),
        ".{0,300}",
        "[a-z ]{500,3000}",
    ]
}

fn url() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("https://shop.example.com/business/x".to_string()),
        "https://[a-z]{1,10}\\.test/[a-z0-9/]{0,2048}",
    ]
}

/// One trigger, with whether a human agent is engaged and whether it is silent.
fn step() -> impl Strategy<Value = (Value, bool, bool)> {
    let trigger = prop_oneof![
        4 => text().prop_map(|t| json!({"type": "MESSAGE", "participantType": "CUSTOMER", "content": t, "contentCustomer": t})),
        1 => text().prop_map(|t| json!({"type": "MESSAGE", "participantType": "AGENT", "content": t})),
        1 => url().prop_map(|u| json!({"type": "NAVIGATION", "lastVisitedUrl": u})),
        1 => (".{0,600}", "[a-z]{1,8}/[a-z*]{1,8}").prop_map(|(n, m)| json!({"type": "FILE", "participantType": "CUSTOMER", "mediaName": n, "mimeType": m})),
        1 => ".{0,600}".prop_map(|a| json!({"type": "ACTION", "participantType": "AGENT", "action": a})),
        1 => prop::sample::select(vec!["Thumbs Down", "Thumbs Up", "bad"]).prop_map(|a| json!({"type": "REVIEW", "reviewType": "Customer", "answerName": a})),
        1 => Just(json!({"type": "ENGAGEMENT_COMPLETED", "engagement": {"pid": "e", "type": "AGENT"}})),
        1 => ".{0,300}".prop_map(|id| json!({"type": "MENU_STEP", "technicalID": id})),
        1 => prop::sample::select(vec!["talk-to-agent", "x"]).prop_map(|id| json!({"type": "ANSWER", "participantType": "CUSTOMER", "externalID": id})),
        1 => Just(json!({"type": "CONVERSATION_COMPLETED", "conversationPid": "conv"})),
        1 => Just(json!({"type": "SOMETHING_NEW"})),
    ];
    (trigger, any::<bool>(), prop::bool::weighted(0.2))
}

/// What the user already keeps in `conversation.custom` (at most 1 kB, maybe with a broken
/// playbook state).
fn user_custom() -> impl Strategy<Value = Map<String, Value>> {
    let value = prop_oneof![
        ".{0,400}".prop_map(Value::String),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-z]{0,900}".prop_map(|s| json!({"nested": s})),
    ];
    let broken_state = prop_oneof![
        Just(None),
        Just(Some(json!("garbage"))),
        Just(Some(json!({"p": 3, "m": -1})))
    ];
    (
        prop::collection::btree_map("[a-z]{1,6}", value, 0..4),
        broken_state,
    )
        .prop_map(|(map, state)| {
            let mut map: Map<String, Value> = map.into_iter().filter(|(k, _)| k != "yl").collect();
            if let Some(state) = state {
                map.insert("yl".into(), state);
            }
            map
        })
        .prop_filter("fits in 1 kB", |map| size(map) <= LIMIT)
}

fn event(trigger: &Value, agent: bool, silent: bool, custom: &Map<String, Value>) -> Event {
    let mut trigger = trigger.clone();
    if silent {
        trigger["silent"] = json!(true);
    }
    let engagements = if agent {
        json!([{"pid": "a", "type": "AGENT", "status": "IN_PROGRESS"}])
    } else {
        json!([])
    };
    let mut event = json!({
        "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
        "accountId": "acc",
        "expires": "2030-01-01T00:00:00Z",
        "trigger": trigger,
        "conversation": {"pid": "conv", "custom": custom, "needsHelp": false},
        "engagements": engagements,
    });
    if trigger["type"] == "CONVERSATION_COMPLETED"
        && let Some(object) = event.as_object_mut()
    {
        object.remove("conversation");
    }
    let body = serde_json::to_vec(&event).expect("serialises");
    Event::from_json(&body).expect("generated events are valid")
}

fn reply_custom(reply: &Reply) -> Option<Map<String, Value>> {
    let custom = reply.conversation.as_ref()?.custom.as_ref()?;
    Some(custom.as_map().clone())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_sequence_of_events_pushes_custom_data_over_one_kilobyte_or_touches_the_users_keys(
        initial in user_custom(),
        steps in prop::collection::vec(step(), 1..25),
    ) {
        let playbook = builtin();
        let mut custom = initial.clone();
        for (trigger, agent, silent) in &steps {
            let reply = playbook.decide(&event(trigger, *agent, *silent, &custom));
            if *silent {
                let escalates = reply.actions.iter().any(|a| matches!(a, Action::NeedsHelp { .. }));
                prop_assert!(!escalates, "a silent trigger asked for help: {:?}", reply.actions);
            }
            if let Some(next) = reply_custom(&reply) {
                prop_assert!(size(&next) <= LIMIT, "{} bytes", size(&next));
                for (key, value) in initial.iter().filter(|(k, _)| *k != "yl") {
                    prop_assert_eq!(next.get(key), Some(value), "user key `{}` changed", key);
                }
                let others = next.iter().filter(|(k, _)| *k != "yl").count();
                prop_assert_eq!(others, initial.keys().filter(|k| *k != "yl").count());
                let mut without_state = next.clone();
                without_state.remove("yl");
                if size(&without_state) <= LIMIT - 64 {
                    prop_assert!(next.contains_key("yl"), "state dropped although there was room");
                }
                custom = next;
            }
        }
    }
}

/// The knowledge-base questions of the default playbook.
fn default_questions() -> Vec<String> {
    let parsed: toml::Value = toml::from_str(DEFAULT_PLAYBOOK).expect("default playbook parses");
    parsed["knowledge"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|entry| entry["questions"].as_array().cloned().unwrap_or_default())
        .filter_map(|q| q.as_str().map(str::to_string))
        .collect()
}

fn first_answer(playbook: &Playbook, text: &str) -> Vec<Action> {
    let trigger = json!({"type": "MESSAGE", "participantType": "CUSTOMER", "content": text, "contentCustomer": text});
    playbook
        .decide(&event(&trigger, false, false, &Map::new()))
        .actions
}

/// `question` with each word in capitals or not (`upper`, cycled), the words separated by
/// `spacing` (cycled) and ended by `end`. The word order stays: negation and clauses depend on it
/// ("not damaged, just late" is not "damaged, not just late").
fn vary(question: &str, upper: &[bool], spacing: &[&str], end: &str) -> String {
    let words: Vec<&str> = question
        .split(|c: char| !c.is_alphanumeric() && c != '\'')
        .filter(|w| !w.is_empty())
        .collect();
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i > 0 {
            out.push_str(spacing[i % spacing.len()]);
        }
        if upper[i % upper.len()] {
            out.push_str(&word.to_uppercase());
        } else {
            out.push_str(&word.to_lowercase());
        }
    }
    out.push_str(end);
    out
}

proptest! {
    #[test]
    fn a_knowledge_base_question_gets_the_same_answer_whatever_its_case_spacing_and_end(
        question in prop::sample::select(default_questions()),
        upper in prop::collection::vec(any::<bool>(), 1..8),
        spacing in prop::collection::vec(prop::sample::select(vec![" ", "  ", "\t", " \n"]), 1..4),
        end in prop::sample::select(vec!["", "?", "??", "!", "!!", "...", " ?", "."]),
    ) {
        let playbook = builtin();
        let expected = first_answer(playbook, &question);
        prop_assert_eq!(expected.len(), 2, "greeting and answer for {:?}", question);
        let varied = vary(&question, &upper, &spacing, end);
        // A message in capitals reads as shouting and is apologised to first; the answer itself
        // stays the same.
        let apology = Action::Message { content: "I'm sorry about the trouble.".into() };
        let answer: Vec<Action> = first_answer(playbook, &varied)
            .into_iter()
            .filter(|action| *action != apology)
            .collect();
        prop_assert_eq!(answer, expected, "{:?} vs {:?}", question, varied);
    }
}

/// A playbook with the most `[[details]]` allowed, each capturing up to 200 characters.
fn detail_heavy() -> &'static Playbook {
    static PLAYBOOK: std::sync::OnceLock<Playbook> = std::sync::OnceLock::new();
    PLAYBOOK.get_or_init(|| {
        let mut source = String::from("version = 1\n");
        for i in 0..8 {
            source.push_str(&format!(
                "[[details]]\nid = \"detail_{i}\"\npattern = 'd{i}=(\\S{{1,200}})'\nask = \"Detail {i}?\"\n"
            ));
        }
        Playbook::from_toml("details.toml", &source).expect("valid playbook")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn captured_request_details_never_push_custom_data_over_one_kilobyte(
        initial in user_custom(),
        values in prop::collection::vec((0..8usize, "[a-zA-Z0-9čř]{1,200}"), 1..20),
        url in url(),
    ) {
        let playbook = detail_heavy();
        let mut custom = initial.clone();
        let navigation = json!({"type": "NAVIGATION", "lastVisitedUrl": url});
        if let Some(next) = reply_custom(&playbook.decide(&event(&navigation, false, false, &custom))) {
            custom = next;
        }
        for (detail, value) in &values {
            let text = format!("my d{detail}={value} and a long request {}", "x".repeat(150));
            let trigger = json!({"type": "MESSAGE", "participantType": "CUSTOMER", "content": text, "contentCustomer": text});
            let reply = playbook.decide(&event(&trigger, false, false, &custom));
            if let Some(next) = reply_custom(&reply) {
                prop_assert!(size(&next) <= LIMIT, "{} bytes", size(&next));
                for (key, value) in initial.iter().filter(|(k, _)| *k != "yl") {
                    prop_assert_eq!(next.get(key), Some(value), "user key `{}` changed", key);
                }
                custom = next;
            }
        }
    }
}
