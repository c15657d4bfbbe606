//! How `worker dead-letters` prints: aligned text for people, JSON for scripts. What a sender
//! controls is escaped ([`super::terminal`]) so it cannot act on the operator's terminal.

use std::fmt::Write as _;

use chrono::SecondsFormat;
use serde_json::{Map, Value, json};

use super::dead_letters::DeadLetter;
use super::terminal;

/// Shown for a header the dead letter lacks.
const MISSING: &str = "-";

/// `list` as text: a header line, then one line per dead letter.
pub fn list_text(letters: &[DeadLetter]) -> String {
    if letters.is_empty() {
        return "no dead letters\n".into();
    }
    let rows: Vec<[String; 5]> = letters
        .iter()
        .map(|letter| {
            [
                letter.id.to_string(),
                time(letter),
                terminal::line(&letter.reason).into_owned(),
                terminal::line(letter.conversation.as_deref().unwrap_or(MISSING)).into_owned(),
                terminal::line(letter.request_id.as_deref().unwrap_or(MISSING)).into_owned(),
            ]
        })
        .collect();
    let width = |column: usize, title: &str| {
        rows.iter()
            .map(|row| row[column].chars().count())
            .max()
            .unwrap_or(0)
            .max(title.len())
    };
    let (id_w, reason_w, conv_w) = (width(0, "ID"), width(2, "REASON"), width(3, "CONVERSATION"));
    let mut out = format!(
        "{:>id_w$}  {:<24}  {:<reason_w$}  {:<conv_w$}  REQUEST ID\n",
        "ID", "TIME", "REASON", "CONVERSATION"
    );
    for [id, time, reason, conversation, request_id] in &rows {
        let _ = writeln!(
            out,
            "{id:>id_w$}  {time:<24}  {reason:<reason_w$}  {conversation:<conv_w$}  {request_id}"
        );
    }
    out
}

/// `list --json`: an array of summaries.
pub fn list_json(letters: &[DeadLetter]) -> Value {
    Value::Array(letters.iter().map(summary).collect())
}

/// `show` as text: the facts, the headers, then the event (pretty-printed when it is JSON).
pub fn show_text(letter: &DeadLetter) -> String {
    let mut out = format!(
        "dead letter {} ({})\n",
        letter.id,
        terminal::line(&letter.subject)
    );
    for (label, value) in [
        ("time", time(letter)),
        ("reason", letter.reason.clone()),
        ("error", letter.error.clone()),
        ("conversation", or_missing(letter.conversation.as_deref())),
        ("requestId", or_missing(letter.request_id.as_deref())),
        ("trigger", or_missing(letter.trigger.as_deref())),
    ] {
        let _ = writeln!(
            out,
            "{:<13} {}",
            format!("{label}:"),
            terminal::line(&value)
        );
    }
    out.push_str("headers:\n");
    for (name, value) in &letter.headers {
        let _ = writeln!(out, "  {}: {}", terminal::line(name), terminal::line(value));
    }
    out.push_str("event:\n");
    let event = match serde_json::from_slice::<Value>(&letter.payload) {
        Ok(value) => {
            terminal::json(&serde_json::to_string_pretty(&value).unwrap_or_default()).into_owned()
        }
        Err(_) => terminal::block(&String::from_utf8_lossy(&letter.payload)).into_owned(),
    };
    out.push_str(&event);
    out.push('\n');
    out
}

/// `show --json`: the summary plus `subject`, `headers` (name to value, or to a list of values
/// when repeated) and `event` (the body as JSON, or as a string when it is not JSON).
pub fn show_json(letter: &DeadLetter) -> Value {
    let mut value = summary(letter);
    let mut headers = Map::new();
    for (name, header) in &letter.headers {
        match headers.get_mut(name) {
            None => {
                headers.insert(name.clone(), json!(header));
            }
            Some(Value::Array(values)) => values.push(json!(header)),
            Some(first) => *first = json!([first.clone(), header]),
        }
    }
    let event = serde_json::from_slice::<Value>(&letter.payload)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&letter.payload).into_owned()));
    if let Some(object) = value.as_object_mut() {
        object.insert("subject".into(), json!(letter.subject));
        object.insert("headers".into(), Value::Object(headers));
        object.insert("event".into(), event);
    }
    value
}

/// The fields `list` shows, plus the trigger and the error.
fn summary(letter: &DeadLetter) -> Value {
    json!({
        "id": letter.id,
        "time": time(letter),
        "reason": letter.reason,
        "conversation": letter.conversation,
        "requestId": letter.request_id,
        "trigger": letter.trigger,
        "error": letter.error,
    })
}

fn time(letter: &DeadLetter) -> String {
    letter
        .stored_at
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn or_missing(value: Option<&str>) -> String {
    value.unwrap_or(MISSING).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn letter() -> DeadLetter {
        DeadLetter {
            id: 7,
            stored_at: chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default(),
            subject: "yourlogic.dead.3".into(),
            reason: "logic_error".into(),
            error: "logic failed: boom".into(),
            request_id: Some("3c99280a-9871-4656-a472-5da68d30c01f".into()),
            conversation: Some("conv-1".into()),
            trigger: Some("MESSAGE".into()),
            headers: vec![
                ("Yl-Error-Kind".into(), "logic_error".into()),
                ("X-Twice".into(), "a".into()),
                ("X-Twice".into(), "b".into()),
            ],
            payload: bytes::Bytes::from_static(br#"{"requestId":"3c99280a"}"#),
        }
    }

    #[test]
    fn the_list_shows_one_aligned_line_per_dead_letter() {
        let text = list_text(&[letter()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("ID  TIME"), "{text}");
        assert!(
            lines[1].contains("2023-11-14T22:13:20.000Z  logic_error  conv-1"),
            "{text}"
        );
        assert!(lines[1].ends_with("3c99280a-9871-4656-a472-5da68d30c01f"));
        assert_eq!(list_text(&[]), "no dead letters\n");
    }

    #[test]
    fn show_json_keeps_repeated_headers_and_parses_the_event() {
        let value = show_json(&letter());
        assert_eq!(value["id"], 7);
        assert_eq!(value["headers"]["X-Twice"], json!(["a", "b"]));
        assert_eq!(value["headers"]["Yl-Error-Kind"], "logic_error");
        assert_eq!(value["event"]["requestId"], "3c99280a");
        let mut broken = letter();
        broken.payload = bytes::Bytes::from_static(b"not json");
        assert_eq!(show_json(&broken)["event"], "not json");
    }
}
