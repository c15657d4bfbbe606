//! Checking one answer against a step's expectations, and describing what differs.

use serde_json::{Map, Value};

use super::Expect;

/// What one step produced.
#[derive(Debug, Clone)]
pub enum Answered {
    /// The answer's actions, and the conversation's needs-help flag after it.
    Yes {
        actions: Vec<Value>,
        needs_help: bool,
    },
    /// No answer in time (or the logic failed): why.
    No(String),
}

/// The contents of the answer's actions of type `kind` (`MESSAGE`, `NOTE`), in order.
pub fn texts_of<'a>(actions: &'a [Value], kind: &str) -> Vec<&'a str> {
    actions
        .iter()
        .filter(|a| {
            a["type"]
                .as_str()
                .is_some_and(|t| t.eq_ignore_ascii_case(kind))
        })
        .filter_map(|a| a["content"].as_str())
        .collect()
}

fn asks_for_help(actions: &[Value]) -> bool {
    actions.iter().any(|a| {
        a["type"]
            .as_str()
            .is_some_and(|t| t.eq_ignore_ascii_case("NEEDS_HELP"))
            && a["needsHelp"].as_bool().unwrap_or(true)
    })
}

/// What differs between the answer (with `custom`, the conversation's custom data after it)
/// and `expect`; empty when everything matches.
pub fn problems(expect: &Expect, answered: &Answered, custom: &Map<String, Value>) -> Vec<String> {
    let (actions, needs_help) = match answered {
        Answered::Yes {
            actions,
            needs_help,
        } => (actions, *needs_help),
        Answered::No(why) => return vec![format!("no answer: {why}")],
    };
    let mut problems = Vec::new();
    let messages = texts_of(actions, "MESSAGE");
    let notes = texts_of(actions, "NOTE");
    for text in &expect.message {
        if !messages.contains(&text.as_str()) {
            problems.push(format!("expected the message {text:?}"));
        }
    }
    for text in &expect.message_contains {
        if !messages.iter().any(|m| m.contains(text.as_str())) {
            problems.push(format!("expected a message containing {text:?}"));
        }
    }
    for pattern in &expect.message_matches {
        if !messages.iter().any(|m| pattern.is_match(m)) {
            problems.push(format!(
                "expected a message matching /{}/",
                pattern.as_str()
            ));
        }
    }
    for text in &expect.note_contains {
        if !notes.iter().any(|n| n.contains(text.as_str())) {
            problems.push(format!("expected a note containing {text:?}"));
        }
    }
    // (expected, actual, what `true` means, what `false` means)
    let flags = [
        (
            expect.no_message,
            messages.is_empty(),
            "no message to the customer",
            "a message to the customer",
        ),
        (
            expect.no_note,
            notes.is_empty(),
            "no note for the agents",
            "a note for the agents",
        ),
        (
            expect.nothing,
            actions.is_empty(),
            "no action at all",
            "some action",
        ),
        (
            expect.escalates,
            asks_for_help(actions),
            "an escalation (NEEDS_HELP)",
            "no escalation",
        ),
        (
            expect.needs_help,
            needs_help,
            "the conversation to need help afterwards",
            "the conversation not to need help afterwards",
        ),
    ];
    for (wanted, actual, if_true, if_false) in flags {
        if let Some(wanted) = wanted
            && wanted != actual
        {
            problems.push(format!(
                "expected {}",
                if wanted { if_true } else { if_false }
            ));
        }
    }
    if let Some(subset) = &expect.custom {
        differences(
            &Value::Object(subset.clone()),
            &Value::Object(custom.clone()),
            "custom",
            &mut problems,
        );
    }
    problems
}

/// Where `actual` does not hold `expected` (objects key by key, anything else equal).
fn differences(expected: &Value, actual: &Value, path: &str, problems: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(expected), Value::Object(actual)) => {
            for (key, value) in expected {
                let at = format!("{path}.{key}");
                match actual.get(key) {
                    Some(found) => differences(value, found, &at, problems),
                    None => problems.push(format!("expected {at} = {value}, but it is not set")),
                }
            }
        }
        (expected, actual) if !same_value(expected, actual) => {
            problems.push(format!("expected {path} = {expected}, found {actual}"));
        }
        _ => {}
    }
}

/// Equal, with numbers compared by value (TOML integers against JSON numbers).
fn same_value(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() < f64::EPSILON,
        _ => a == b,
    }
}

/// The answer, one action per line, for failure reports.
pub fn describe(answered: &Answered, custom: &Map<String, Value>) -> Vec<String> {
    let mut lines = Vec::new();
    match answered {
        Answered::No(why) => lines.push(format!("no answer ({why})")),
        Answered::Yes {
            actions,
            needs_help,
        } => {
            if actions.is_empty() {
                lines.push("(no actions)".into());
            }
            for action in actions {
                let kind = action["type"].as_str().unwrap_or("?");
                let detail = match action["content"].as_str() {
                    Some(text) => format!("{text:?}"),
                    None => action["needsHelp"].to_string(),
                };
                lines.push(format!("{kind:<10} {detail}"));
            }
            lines.push(format!("needs help afterwards: {needs_help}"));
        }
    }
    lines.push(format!(
        "conversation.custom: {}",
        serde_json::to_string(custom).unwrap_or_default()
    ));
    lines
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn answered(actions: Value, needs_help: bool) -> Answered {
        Answered::Yes {
            actions: actions.as_array().cloned().unwrap_or_default(),
            needs_help,
        }
    }

    #[test]
    fn matching_answers_have_no_problems_and_each_difference_is_named() {
        let answer = answered(
            json!([{"type": "MESSAGE", "content": "Hello there"}, {"type": "NEEDS_HELP", "needsHelp": true}]),
            true,
        );
        let custom = json!({"yl": {"p": "h", "e": 1}, "crm": 7});
        let custom = custom.as_object().cloned().unwrap_or_default();
        let ok = Expect {
            message_contains: vec!["Hello".into()],
            escalates: Some(true),
            needs_help: Some(true),
            custom: json!({"yl": {"p": "h"}}).as_object().cloned(),
            ..Expect::default()
        };
        assert!(problems(&ok, &answer, &custom).is_empty());
        let wrong = Expect {
            message: vec!["Hello".into()],
            no_note: Some(false),
            escalates: Some(false),
            custom: json!({"yl": {"p": "a", "k": "x"}}).as_object().cloned(),
            ..Expect::default()
        };
        assert_eq!(
            problems(&wrong, &answer, &custom),
            [
                "expected the message \"Hello\"",
                "expected a note for the agents",
                "expected no escalation",
                "expected custom.yl.k = \"x\", but it is not set",
                "expected custom.yl.p = \"a\", found \"h\"",
            ]
        );
    }
}
