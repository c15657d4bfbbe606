//! What the ingress reads of an event before storing it: the ids, the times and the trigger it
//! routes, times and labels the event by, without building the rest. The whole body must be
//! valid JSON (nested at most 128 levels deep, serde_json's limit); `turns` and `engagements`
//! are counted, not built, and bounded ([`MAX_TURNS`], [`MAX_ENGAGEMENTS`]) so that one small
//! request cannot make a worker build millions of objects.
//!
//! Other documented fields are not checked here: the format is documented as still changing,
//! and the worker reads an event whose optional fields have unexpected types without those
//! fields ([`crate::event::Event::from_json_lenient`]), so an accepted event is always
//! answered.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, SeqAccess, Visitor};
use uuid::Uuid;

use crate::event::{EventError, TriggerType, check_account, check_conversation};

/// Most turns an event may carry.
pub const MAX_TURNS: usize = 10_000;
/// Most engagements an event may carry.
pub const MAX_ENGAGEMENTS: usize = 1_000;
/// Deepest nesting of objects and lists anywhere in an event (Salted CX's events nest a few
/// levels; the limit keeps every later parse, including the logic's, far from any recursion
/// limit).
pub const MAX_DEPTH: usize = 64;

/// The facts of an event the ingress needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub request_id: Uuid,
    /// When Salted CX created the request (its clock); `None` when absent or unusable.
    pub time: Option<DateTime<Utc>>,
    pub expires: DateTime<Utc>,
    pub trigger: TriggerType,
    pub silent: bool,
    pub conversation: String,
    /// The event's `accountId`, or the deployment's default account when it has none.
    pub account_id: String,
    pub region: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    request_id: Uuid,
    #[serde(default)]
    time: LenientTime,
    expires: DateTime<Utc>,
    #[serde(borrow)]
    trigger: WireTrigger<'a>,
    #[serde(default, borrow)]
    account_id: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    region: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    conversation: Option<WireConversation<'a>>,
    // Parsed only to count the elements and refuse too many.
    #[serde(default)]
    #[allow(dead_code)]
    turns: Counted<MAX_TURNS>,
    #[serde(default)]
    #[allow(dead_code)]
    engagements: Counted<MAX_ENGAGEMENTS>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireTrigger<'a> {
    #[serde(rename = "type")]
    kind: TriggerType,
    #[serde(default)]
    silent: bool,
    #[serde(default, borrow)]
    conversation_pid: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct WireConversation<'a> {
    #[serde(default, borrow)]
    pid: Option<Cow<'a, str>>,
}

impl Admission {
    /// Reads and checks `body`. `default_account` is used when the event has no `accountId`
    /// (Salted CX's docs say it "should not be necessary"); without one such an event is
    /// refused.
    pub fn from_json(body: &[u8], default_account: Option<&str>) -> Result<Admission, EventError> {
        // Skipped fields are not decoded: check the text itself is valid UTF-8 (fast).
        if let Err(err) = std::str::from_utf8(body) {
            return Err(EventError::Malformed(format!(
                "body is not valid UTF-8 (at byte {})",
                err.valid_up_to()
            )));
        }
        if nesting_exceeds(body, MAX_DEPTH) {
            return Err(EventError::Malformed(format!(
                "body is nested deeper than {MAX_DEPTH} levels of objects and lists"
            )));
        }
        let wire: Wire<'_> = parse(body)?;
        let conversation = wire
            .conversation
            .as_ref()
            .and_then(|c| c.pid.as_deref())
            .filter(|pid| !pid.trim().is_empty())
            .or(wire.trigger.conversation_pid.as_deref());
        let conversation = check_conversation(conversation)?.to_string();
        let account_id = check_account(wire.account_id.as_deref(), default_account)?.to_string();
        let region = match wire.region.as_deref() {
            Some(region) => Some(check_region(region)?.to_string()),
            None => None,
        };
        Ok(Admission {
            request_id: wire.request_id,
            time: wire.time.0,
            expires: wire.expires,
            trigger: wire.trigger.kind,
            silent: wire.trigger.silent,
            conversation,
            account_id,
            region,
        })
    }
}

/// Whether objects and lists nest deeper than `limit` anywhere in `body` (brackets inside
/// strings do not count). One pass over the bytes, stopping at the first level too deep; the
/// insides of strings (most of an event: the messages) are skipped with a vectorised search.
fn nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let mut depth = 0usize;
    let mut at = 0usize;
    while at < body.len() {
        match body[at] {
            b'"' => {
                // Skip to the closing quote, stepping over escaped characters.
                at += 1;
                loop {
                    let rest = body.get(at..).unwrap_or_default();
                    match memchr::memchr2(b'"', b'\\', rest) {
                        None => return false,
                        Some(found) if body[at + found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                    }
                }
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    false
}

/// A region becomes part of the callback host (`api.{region}.salted.cx`): a DNS label.
fn check_region(region: &str) -> Result<&str, EventError> {
    let label = !region.is_empty()
        && region.len() <= 63
        && region
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-');
    if label {
        Ok(region)
    } else {
        Err(EventError::Invalid(format!(
            "invalid event: `region` `{}` is not a region name (letters, digits and `-`)",
            region.chars().take(64).collect::<String>()
        )))
    }
}

/// The borrowed parse needs the body to outlive the result, which [`crate::parse::explained`]
/// (for owned types) cannot offer: the fast path here, its error explained by the owned twin.
fn parse(body: &[u8]) -> Result<Wire<'_>, EventError> {
    match serde_json::from_slice::<Wire<'_>>(body) {
        Ok(wire) => Ok(wire),
        Err(_) => match crate::parse::explained::<OwnedWire>(body) {
            Err(err) => Err(err),
            // Parses owned but not borrowed: cannot happen (`Cow` borrows or owns); say so.
            Ok(_) => Err(EventError::Invalid("invalid event".into())),
        },
    }
}

/// [`Wire`] without borrowing, only to explain why a body does not parse.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OwnedWire {
    request_id: Uuid,
    #[serde(default)]
    time: LenientTime,
    expires: DateTime<Utc>,
    trigger: OwnedTrigger,
    #[serde(default)]
    account_id: Option<String>,
    #[serde(default)]
    region: Option<String>,
    #[serde(default)]
    conversation: Option<OwnedConversation>,
    #[serde(default)]
    turns: Counted<MAX_TURNS>,
    #[serde(default)]
    engagements: Counted<MAX_ENGAGEMENTS>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
#[allow(dead_code)]
struct OwnedTrigger {
    #[serde(rename = "type")]
    kind: TriggerType,
    #[serde(default)]
    silent: bool,
    #[serde(default)]
    conversation_pid: Option<String>,
}

#[derive(Deserialize)]
#[allow(dead_code)]
struct OwnedConversation {
    #[serde(default)]
    pid: Option<String>,
}

/// A time read if it is one; any other value counts as absent.
#[derive(Default)]
struct LenientTime(Option<DateTime<Utc>>);

impl<'de> Deserialize<'de> for LenientTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = deserializer.deserialize_any(AnyText)?;
        Ok(LenientTime(text.and_then(|t| {
            DateTime::parse_from_rfc3339(&t)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        })))
    }
}

/// Accepts any JSON value: a string as `Some`, anything else (consumed) as `None`.
struct AnyText;

impl<'de> Visitor<'de> for AnyText {
    type Value = Option<String>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Self::Value, E> {
        Ok(Some(text.to_string()))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(None)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(None)
    }
}

/// A list counted while it is skipped, refused beyond `MAX` elements; any other value counts
/// as absent (the worker reads the event without it).
#[derive(Default)]
struct Counted<const MAX: usize>;

impl<'de, const MAX: usize> Deserialize<'de> for Counted<MAX> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(CountVisitor::<MAX>)
    }
}

struct CountVisitor<const MAX: usize>;

impl<'de, const MAX: usize> Visitor<'de> for CountVisitor<MAX> {
    type Value = Counted<MAX>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a list of at most {MAX} elements")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut count = 0usize;
        while seq.next_element::<IgnoredAny>()?.is_some() {
            count += 1;
            if count > MAX {
                return Err(de::Error::custom(format_args!(
                    "more than {MAX} elements (the most an event may carry)"
                )));
            }
        }
        Ok(Counted)
    }

    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Counted)
    }

    fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Counted)
    }
}

#[cfg(test)]
mod tests {
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
    fn escaped_quotes_and_backslashes_keep_strings_apart_from_structure() {
        assert!(!nesting_exceeds(br#"{"a":"\"[[[[","b":"x\\"}"#, 1));
        assert!(nesting_exceeds(br#"{"a":"\\","b":[[1]]}"#, 2));
        assert!(
            !nesting_exceeds(b"{\"a\":\"unfinished \\", 1),
            "no panic at the end"
        );
    }

    #[test]
    fn broken_json_anywhere_is_malformed() {
        let body = br#"{"requestId": "005ea483-5151-479d-842e-f5ef0a1fa5cc", "turns": [1,,2]}"#;
        assert!(matches!(
            Admission::from_json(body, None),
            Err(EventError::Malformed(_))
        ));
    }
}
