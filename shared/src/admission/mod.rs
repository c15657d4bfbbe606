//! What the pipeline reads of an event before anything else: the ids, the times and the
//! trigger it routes, times and labels the event by, without building the rest. The ingress
//! reads every event so before storing it, and the worker again before parsing it, since
//! whatever may publish on the event subjects could have skipped the ingress; both apply the
//! same limits with the same code, so that what one accepts the other reads.
//!
//! - The whole body is valid UTF-8 and valid JSON, and one pass over its bytes ([`scan`])
//!   bounds nesting, every list (`turns`, `engagements`, `customer.contacts`, any other) and
//!   numbers, and finds lone surrogate escapes, which both services read as U+FFFD
//!   ([`Admission::readable`]).
//! - The ids, the deadline, the trigger and the region are read and checked.
//!
//! Other documented fields are not checked here: the format is documented as still changing,
//! and the worker reads an event whose optional fields have unexpected types without those
//! fields ([`crate::event::Event::from_json_lenient`]), so an accepted event is always
//! answered.

mod lenient;
pub mod scan;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use serde::Deserialize;
use uuid::Uuid;

use crate::event::{EventError, TriggerType, check_account, check_conversation};
use lenient::{Counted, LenientCustomer, LenientTime};
pub use scan::{MAX_CONTACTS, MAX_DEPTH, MAX_ENGAGEMENTS, MAX_LIST, MAX_TURNS};

/// The facts of an event the pipeline needs.
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
    /// Where the body has lone surrogate escapes (see [`Admission::readable`]).
    lone_surrogates: Vec<usize>,
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
    // Parsed only to count the elements and refuse too many (again: the scan matches these
    // lists by their names as written, this by their decoded names).
    #[serde(default)]
    #[allow(dead_code)]
    turns: Counted<MAX_TURNS>,
    #[serde(default)]
    #[allow(dead_code)]
    engagements: Counted<MAX_ENGAGEMENTS>,
    #[serde(default)]
    #[allow(dead_code)]
    customer: LenientCustomer,
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

/// `body` with the limits of the [`scan`] enforced, as the event model can read it (lone
/// surrogate escapes replaced): for reading an event without admitting it (`worker decide`).
pub fn readable_body(body: &[u8]) -> Result<Cow<'_, [u8]>, EventError> {
    let found = scan::scan(body)?;
    Ok(scan::replace_lone_surrogates(body, &found.lone_surrogates))
}

impl Admission {
    /// Reads and checks `body`. `default_account` is used when the event has no `accountId`
    /// (Salted CX's docs say it "should not be necessary"); without one such an event is
    /// refused.
    pub fn from_json(body: &[u8], default_account: Option<&str>) -> Result<Admission, EventError> {
        Self::from_text(utf8(body)?, default_account)
    }

    /// [`Admission::from_json`] of a body already known to be UTF-8 ([`utf8`]).
    pub fn from_text(body: &str, default_account: Option<&str>) -> Result<Admission, EventError> {
        let found = scan::scan(body.as_bytes())?;
        let readable = readable_text(body, &found.lone_surrogates);
        let wire: Wire<'_> = parse(&readable)?;
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
            lone_surrogates: found.lone_surrogates,
        })
    }

    /// `body` (the one admitted) as the event model can read it: each lone surrogate escape
    /// replaced by `\ufffd`, as browsers and most JSON libraries decode one. Borrowed when
    /// there is none (almost always).
    pub fn readable<'a>(&self, body: &'a [u8]) -> Cow<'a, [u8]> {
        scan::replace_lone_surrogates(body, &self.lone_surrogates)
    }

    /// [`Admission::readable`] of a body that is text.
    pub fn readable_text<'a>(&self, body: &'a str) -> Cow<'a, str> {
        readable_text(body, &self.lone_surrogates)
    }

    /// Whether the body has lone surrogate escapes (read as U+FFFD).
    pub fn has_lone_surrogates(&self) -> bool {
        !self.lone_surrogates.is_empty()
    }
}

/// `body` as text, or why it is not UTF-8. Checked once: the text is then parsed with serde_json's
/// string reader, which does not check every string again (a measurable part of the workers'
/// CPU per event when each parse did).
pub fn utf8(body: &[u8]) -> Result<&str, EventError> {
    std::str::from_utf8(body).map_err(|err| {
        EventError::Malformed(format!(
            "body is not valid UTF-8 (at byte {})",
            err.valid_up_to()
        ))
    })
}

/// `body` with its lone surrogate escapes (at `positions`) read as U+FFFD.
fn readable_text<'a>(body: &'a str, positions: &[usize]) -> Cow<'a, str> {
    match scan::replace_lone_surrogates(body.as_bytes(), positions) {
        Cow::Borrowed(_) => Cow::Borrowed(body),
        // An escape replaced by another escape or by U+FFFD's bytes: still UTF-8.
        Cow::Owned(bytes) => Cow::Owned(String::from_utf8_lossy(&bytes).into_owned()),
    }
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
fn parse(body: &str) -> Result<Wire<'_>, EventError> {
    match serde_json::from_str::<Wire<'_>>(body) {
        Ok(wire) => Ok(wire),
        Err(_) => match crate::parse::explained::<OwnedWire>(body.as_bytes()) {
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
    #[serde(default)]
    customer: LenientCustomer,
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

#[cfg(test)]
mod tests;
