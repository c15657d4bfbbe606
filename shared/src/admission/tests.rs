use super::*;
use serde_json::json;

fn event() -> serde_json::Value {
    json!({
        "requestId": "005ea483-5151-479d-842e-f5ef0a1fa5cc",
        "time": "2026-01-01T10:00:00Z",
        "expires": "2026-01-01T10:00:15Z",
        "trigger": {"type": "Message", "silent": true},
        "accountId": "acct",
        "region": "eu",
        "conversation": {"pid": "conv-1"},
        "turns": [{"time": 17, "content": ["anything"]}],
    })
}

fn admit(value: &serde_json::Value) -> Result<Admission, EventError> {
    Admission::from_json(value.to_string().as_bytes(), None)
}

#[test]
fn the_routing_facts_are_read_and_the_rest_is_only_checked_to_be_json() {
    let admitted = admit(&event()).expect("admitted");
    assert_eq!(admitted.trigger, TriggerType::Message);
    assert!(admitted.silent);
    assert_eq!(admitted.conversation, "conv-1");
    assert_eq!(admitted.account_id, "acct");
    assert_eq!(admitted.region.as_deref(), Some("eu"));
    assert!(admitted.time.is_some());
}

#[test]
fn an_unusable_time_counts_as_absent_and_an_unusable_region_is_refused() {
    let mut value = event();
    value["time"] = json!({"not": "a time"});
    assert_eq!(admit(&value).expect("admitted").time, None);
    value["region"] = json!("evil.com/x");
    let err = admit(&value).expect_err("region");
    assert!(err.to_string().contains("region"), "{err}");
}

#[test]
fn the_conversation_id_falls_back_to_the_trigger() {
    let mut value = event();
    value["conversation"] = json!({"pid": "  "});
    value["trigger"]["conversationPid"] = json!("from-trigger");
    assert_eq!(
        admit(&value).expect("admitted").conversation,
        "from-trigger"
    );
}

#[test]
fn what_the_pipeline_needs_is_required_and_named() {
    for (pointer, bad, named) in [
        ("/requestId", json!("nope"), "requestId"),
        ("/expires", json!("soon"), "expires"),
        ("/trigger/type", json!(3), "trigger.type"),
        ("/trigger/silent", json!("yes"), "trigger.silent"),
        ("/accountId", json!("acct\n"), "accountId"),
        ("/accountId", json!(" acct"), "accountId"),
        (
            "/conversation/pid",
            json!("x".repeat(300)),
            "conversation id",
        ),
    ] {
        let mut value = event();
        *value.pointer_mut(pointer).expect("pointer") = bad;
        let err = admit(&value).expect_err(pointer);
        assert!(err.to_string().contains(named), "{pointer}: {err}");
    }
}

#[test]
fn a_missing_account_is_refused_unless_the_deployment_has_one() {
    let mut value = event();
    value.as_object_mut().map(|o| o.remove("accountId"));
    let err = admit(&value).expect_err("no account");
    assert!(err.to_string().contains("SALTEDCX_ACCOUNT_ID"), "{err}");
    let body = value.to_string();
    let admitted = Admission::from_json(body.as_bytes(), Some("configured")).expect("default");
    assert_eq!(admitted.account_id, "configured");
}

#[test]
fn lists_beyond_their_bound_are_refused_without_being_built() {
    let mut value = event();
    value["turns"] = json!(vec![json!({}); MAX_TURNS + 1]);
    let err = admit(&value).expect_err("too many turns");
    assert!(err.to_string().contains("turns"), "{err}");
    value["turns"] = json!(vec![json!({}); MAX_TURNS]);
    assert!(admit(&value).is_ok());
    value["engagements"] = json!(vec![json!(null); MAX_ENGAGEMENTS + 1]);
    assert!(admit(&value).is_err());
    value["engagements"] = json!([]);
    value["customer"] = json!({"contacts": vec![json!({}); MAX_CONTACTS + 1]});
    let err = admit(&value).expect_err("too many contacts");
    assert!(err.to_string().contains("customer.contacts"), "{err}");
    // Spelt with escapes, the names still mean the same lists to the parsers that follow.
    let body = value
        .to_string()
        .replace("\"contacts\"", "\"contact\\u0073\"");
    let err = Admission::from_json(body.as_bytes(), None).expect_err("escaped name");
    assert!(err.to_string().contains("more than 1000"), "{err}");
}

#[test]
fn a_customer_of_an_unexpected_shape_is_left_to_the_worker() {
    for customer in [json!("someone"), json!([1, 2]), json!({"contacts": "none"})] {
        let mut value = event();
        value["customer"] = customer;
        assert!(admit(&value).is_ok(), "{value}");
    }
}

#[test]
fn a_lone_surrogate_is_admitted_and_read_as_a_replacement_character() {
    let body = event()
        .to_string()
        .replace("\"anything\"", "\"broken \\ud83d emoji\"");
    let admitted = Admission::from_json(body.as_bytes(), None).expect("admitted");
    assert!(admitted.has_lone_surrogates());
    let readable = admitted.readable(body.as_bytes());
    let value: serde_json::Value = serde_json::from_slice(&readable).expect("readable");
    assert_eq!(value["turns"][0]["content"][0], "broken \u{fffd} emoji");
    // Ids are read the same way, so both services see the same conversation.
    let body = event()
        .to_string()
        .replace("\"conv-1\"", "\"conv-\\udc00\"");
    let admitted = Admission::from_json(body.as_bytes(), None).expect("admitted");
    assert_eq!(admitted.conversation, "conv-\u{fffd}");
}

#[test]
fn nesting_is_bounded_anywhere_and_brackets_in_strings_do_not_count() {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    let mut value = event();
    value["anything"] =
        json!("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[");
    assert!(admit(&value).is_ok());
    let body = value.to_string().replacen(
        "\"anything\"",
        &format!("\"x\":{},\"anything\"", deep(MAX_DEPTH - 1)),
        1,
    );
    assert!(Admission::from_json(body.as_bytes(), None).is_ok());
    let body = value.to_string().replacen(
        "\"anything\"",
        &format!("\"x\":{},\"anything\"", deep(MAX_DEPTH)),
        1,
    );
    let err = Admission::from_json(body.as_bytes(), None).expect_err("too deep");
    assert!(matches!(err, EventError::Malformed(m) if m.contains("nested")));
}

#[test]
fn broken_json_anywhere_is_malformed() {
    let body = br#"{"requestId": "005ea483-5151-479d-842e-f5ef0a1fa5cc", "turns": [1,,2]}"#;
    assert!(matches!(
        Admission::from_json(body, None),
        Err(EventError::Malformed(_))
    ));
}
