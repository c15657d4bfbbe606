//! Parsing Salted CX's JSON with useful errors, and tolerating fields of unexpected types.
//!
//! - [`explained`]: the fast parse for valid input; when it fails, a slower parse that tracks
//!   the path works out the error: the line and column of a syntax error, or the path of the
//!   offending field (`turns[2].time`).
//! - [`repaired`]: for the worker, which must answer every event the ingress accepted: the
//!   format is documented as still changing, so a field whose type is not what the model
//!   expects (an optional field only the logic reads) is dropped, and the event is read without
//!   it. The fields the pipeline needs are checked by the ingress before an event is accepted.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::event::EventError;

/// Parses `body` as a `T`, explaining a failure with a line and column or a field path.
pub fn explained<T: DeserializeOwned>(body: &[u8]) -> Result<T, EventError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        // Not an object: broken JSON, or valid JSON of the wrong kind.
        return Err(
            match serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                Err(err) => EventError::Malformed(format!("body is not valid JSON: {err}")),
                Ok(_) => {
                    EventError::Invalid("invalid event: the body must be a JSON object".into())
                }
            },
        );
    }
    if let Ok(value) = serde_json::from_slice::<T>(body) {
        return Ok(value);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let parsed: Result<T, _> = serde_path_to_error::deserialize(&mut deserializer);
    match parsed {
        Ok(value) => {
            deserializer
                .end()
                .map_err(|err| EventError::Malformed(format!("body is not valid JSON: {err}")))?;
            Ok(value)
        }
        Err(err) => {
            let path = err.path().to_string();
            let inner = err.into_inner();
            if inner.is_syntax() || inner.is_eof() || inner.is_io() {
                return Err(EventError::Malformed(format!(
                    "body is not valid JSON: {inner}"
                )));
            }
            // A type error can come before a syntax error further on: broken JSON is reported
            // as such, so check the syntax before blaming a field (error path only).
            if let Err(syntax) = serde_json::from_slice::<serde::de::IgnoredAny>(body) {
                return Err(EventError::Malformed(format!(
                    "body is not valid JSON: {syntax}"
                )));
            }
            Err(invalid_at(&path, &inner))
        }
    }
}

/// [`explained`] of a body already known to be UTF-8: the fast parse reads it as text, without
/// checking every string again.
pub fn explained_text<T: DeserializeOwned>(body: &str) -> Result<T, EventError> {
    match serde_json::from_str::<T>(body) {
        Ok(value) => Ok(value),
        Err(_) => explained(body.as_bytes()),
    }
}

fn invalid_at(path: &str, inner: &dyn std::fmt::Display) -> EventError {
    if path.is_empty() || path == "." {
        EventError::Invalid(format!("invalid event: {inner}"))
    } else {
        EventError::Invalid(format!("invalid event at `{path}`: {inner}"))
    }
}

/// Most fields dropped from one event before giving up.
const MAX_REPAIRS: usize = 64;

/// Parses `body` as a `T` like [`explained`], but drops fields of unexpected types (and list
/// elements that cannot be read) until the rest parses. Returns the value and the paths of the
/// dropped fields. A field named in `needed` (by its path, e.g. `requestId`, `trigger.type`)
/// is never dropped: its error is returned instead.
pub fn repaired<T: DeserializeOwned>(
    body: &[u8],
    needed: &[&str],
) -> Result<(T, Vec<String>), EventError> {
    repair_after(explained::<T>(body), body, needed)
}

/// [`repaired`] of a body already known to be UTF-8 (see [`explained_text`]).
pub fn repaired_text<T: DeserializeOwned>(
    body: &str,
    needed: &[&str],
) -> Result<(T, Vec<String>), EventError> {
    repair_after(explained_text::<T>(body), body.as_bytes(), needed)
}

/// Repairs `body` if its first parse (`first`) found a field of an unexpected type.
fn repair_after<T: DeserializeOwned>(
    first: Result<T, EventError>,
    body: &[u8],
    needed: &[&str],
) -> Result<(T, Vec<String>), EventError> {
    match first {
        Ok(value) => return Ok((value, Vec::new())),
        Err(err @ EventError::Malformed(_)) => return Err(err),
        Err(EventError::Invalid(_)) => {}
    }
    let mut tree: Value = serde_json::from_slice(body)
        .map_err(|err| EventError::Malformed(format!("body is not valid JSON: {err}")))?;
    let mut dropped = Vec::new();
    loop {
        let error = match serde_path_to_error::deserialize::<_, T>(&tree) {
            Ok(value) => return Ok((value, dropped)),
            Err(error) => error,
        };
        let path = error.path().to_string();
        let segments: Vec<Segment> = error.path().iter().filter_map(Segment::of).collect();
        let is_needed = needed.iter().any(|n| *n == path);
        if is_needed || dropped.len() >= MAX_REPAIRS || !remove(&mut tree, &segments) {
            return Err(invalid_at(&path, error.inner()));
        }
        dropped.push(path);
    }
}

/// One step of a path into a JSON tree.
enum Segment {
    Key(String),
    Index(usize),
}

impl Segment {
    fn of(segment: &serde_path_to_error::Segment) -> Option<Self> {
        match segment {
            serde_path_to_error::Segment::Map { key } => Some(Segment::Key(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Segment::Index(*index)),
            _ => None,
        }
    }
}

/// Removes the value at `path` from `tree` (a key from its object, an element from its list);
/// `false` when there is nothing to remove (the root, or a path that does not exist).
fn remove(tree: &mut Value, path: &[Segment]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut node = tree;
    for segment in parents {
        let next = match (segment, node) {
            (Segment::Key(key), Value::Object(map)) => map.get_mut(key),
            (Segment::Index(index), Value::Array(list)) => list.get_mut(*index),
            _ => None,
        };
        let Some(next) = next else { return false };
        node = next;
    }
    match (last, node) {
        (Segment::Key(key), Value::Object(map)) => map.remove(key).is_some(),
        (Segment::Index(index), Value::Array(list)) if *index < list.len() => {
            list.remove(*index);
            true
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Debug, Deserialize, PartialEq)]
    struct Item {
        name: String,
        #[serde(default)]
        size: Option<u32>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Doc {
        id: u32,
        #[serde(default)]
        note: Option<String>,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[test]
    fn errors_name_the_field_path_or_the_position() {
        let err = explained::<Doc>(br#"{"id": 1, "items": [{"name": "a", "size": "big"}]}"#)
            .expect_err("wrong type");
        assert!(err.to_string().contains("`items[0].size`"), "{err}");
        let err = explained::<Doc>(br#"{"id": 1,, }"#).expect_err("syntax");
        assert!(matches!(err, EventError::Malformed(m) if m.contains("column")));
        let err = explained::<Doc>(b"[1]").expect_err("not an object");
        assert!(matches!(err, EventError::Invalid(_)));
    }

    #[test]
    fn fields_of_unexpected_types_are_dropped_and_named() {
        let body = br#"{"id": 7, "note": 12, "items": [{"name": "a", "size": "big"}, {"size": 3}, {"name": "c"}]}"#;
        let (doc, dropped) = repaired::<Doc>(body, &["id"]).expect("repaired");
        assert_eq!(doc.id, 7);
        assert_eq!(doc.note, None);
        assert_eq!(
            doc.items,
            vec![
                Item {
                    name: "a".into(),
                    size: None
                },
                Item {
                    name: "c".into(),
                    size: None
                }
            ]
        );
        assert_eq!(dropped, vec!["items[0].size", "items[1]", "note"]);
    }

    #[test]
    fn needed_fields_are_never_dropped() {
        let err = repaired::<Doc>(br#"{"id": "seven"}"#, &["id"]).expect_err("needed");
        assert!(err.to_string().contains("`id`"), "{err}");
        let err = repaired::<Doc>(br#"{"note": "x"}"#, &["id"]).expect_err("missing");
        assert!(err.to_string().contains("id"), "{err}");
    }
}
