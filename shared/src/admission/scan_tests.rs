use super::*;

fn list(n: usize, element: &str) -> String {
    format!("[{}]", vec![element; n].join(","))
}

#[test]
fn every_list_is_bounded_and_named_where_it_is() {
    let turns = format!(r#"{{"turns":{}}}"#, list(MAX_TURNS, "{}"));
    assert!(scan(turns.as_bytes()).is_ok());
    let turns = format!(r#"{{"turns":{}}}"#, list(MAX_TURNS + 1, "{}"));
    let err = scan(turns.as_bytes()).expect_err("too many turns");
    assert_eq!(
        err.to_string(),
        "invalid event: `turns` has more than 10000 elements (the most an event may carry)"
    );
    let contacts = format!(
        r#"{{"customer":{{"pid":"p","contacts":{}}}}}"#,
        list(MAX_CONTACTS + 1, "{}")
    );
    let err = scan(contacts.as_bytes()).expect_err("too many contacts");
    assert!(
        err.to_string()
            .contains("`customer.contacts` has more than 1000"),
        "{err}"
    );
    let engagements = format!(r#"{{"engagements":{}}}"#, list(MAX_ENGAGEMENTS + 1, "null"));
    assert!(scan(engagements.as_bytes()).is_err());
    let nested = format!(
        r#"{{"turns":[{{}},{{"content":{}}}]}}"#,
        list(MAX_LIST + 1, "0")
    );
    let err = scan(nested.as_bytes()).expect_err("too long anywhere");
    assert!(err.to_string().contains("`turns[1].content`"), "{err}");
    // Commas inside strings are text, not elements.
    let text = format!(r#"{{"turns":["{}"]}}"#, ",".repeat(MAX_TURNS * 2));
    assert!(scan(text.as_bytes()).is_ok());
}

#[test]
fn nesting_is_bounded_anywhere_and_brackets_in_strings_do_not_count() {
    let deep = |n: usize| "[".repeat(n) + &"]".repeat(n);
    assert!(scan(deep(MAX_DEPTH).as_bytes()).is_ok());
    let err = scan(deep(MAX_DEPTH + 1).as_bytes()).expect_err("too deep");
    assert!(matches!(err, EventError::Malformed(m) if m.contains("nested")));
    assert!(scan(br#"{"a":"\"[[[[","b":"x\\"}"#).is_ok());
    let quoted = format!(r#"{{"a":"{}"}}"#, "[".repeat(100));
    assert!(scan(quoted.as_bytes()).is_ok());
    assert!(
        scan(b"{\"a\":\"unfinished \\").is_ok(),
        "no panic at the end"
    );
}

#[test]
fn numbers_beyond_a_double_are_refused_with_their_position() {
    for number in ["1e400", "-1E+309", "2e308", &"9".repeat(400)] {
        let body = format!("{{\"a\":\n [1, {number}]}}");
        let err = scan(body.as_bytes()).expect_err(number);
        assert_eq!(
            err.to_string(),
            "body is not valid JSON: a number beyond the range of a double (±1.8e308) at line 2 \
             column 6"
        );
    }
    for number in [
        "1.7e308",
        "1e-400",
        "-0",
        "18446744073709551615",
        "123456789012345678901234",
    ] {
        let body = format!(r#"{{"a":{number}}}"#);
        assert!(scan(body.as_bytes()).is_ok(), "{number}");
    }
    assert!(scan(br#"{"a":"1e400"}"#).is_ok(), "text, not a number");
}

#[test]
fn lone_surrogates_are_found_and_replaced_pairs_and_other_escapes_are_kept() {
    let body = br#"{"a":"x\ud83d y","b":"\ud83d\ude00","c":"\ude00\\ud800","d":"\u00e9\uDBFF"}"#;
    let found = scan(body).expect("scanned");
    let replaced = replace_lone_surrogates(body, &found.lone_surrogates);
    assert_eq!(
        std::str::from_utf8(&replaced).expect("utf-8"),
        r#"{"a":"x\ufffd y","b":"\ud83d\ude00","c":"\ufffd\\ud800","d":"\u00e9\ufffd"}"#
    );
    let value: serde_json::Value = serde_json::from_slice(&replaced).expect("now readable");
    assert_eq!(value["a"], "x\u{fffd} y");
    assert_eq!(value["b"], "😀");
    assert!(matches!(
        replace_lone_surrogates(b"{}", &[]),
        std::borrow::Cow::Borrowed(_)
    ));
    // A truncated escape at the end is the parser's problem, not a panic.
    assert!(scan(br#"{"a":"\ud83d\u"#).is_ok());
}
