//! The playbook's conversation state, kept in `conversation.custom` under one compact key.
//!
//! Salted CX stores `conversation.custom` (at most 1 kB serialised) and sends it back with every
//! later event, so workers stay stateless. The state lives under [`KEY`] with one-letter field
//! names; every other key of the object belongs to the user and is kept as it is. When the object
//! would not fit, the state gives up its least important fields first (request summary, request
//! details, URL, last answer), then itself; the user's keys are never dropped and nothing over
//! 1 kB is ever emitted.

use serde_json::{Map, Value, json};
use shared::custom::CustomData;

/// The key of the playbook state inside `conversation.custom`.
pub const KEY: &str = "yl";
/// Longest request summary kept (characters).
pub const REQUEST_CHARS: usize = 120;
/// Longest URL kept (characters); URL prefixes in the playbook must not be longer.
pub const URL_CHARS: usize = 200;
/// Longest value of a request detail kept (characters).
pub const DETAIL_CHARS: usize = 40;

/// Where the conversation is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Phase {
    /// No customer message handled yet.
    #[default]
    New,
    /// Greeted; waiting for the customer to state the request.
    Collecting,
    /// The bot is answering.
    Answering,
    /// Escalated: waiting for, or talking with, a human agent.
    Human,
    /// The agent left; the bot asked whether the issue is resolved.
    Closing,
    /// The bot asked for feedback.
    Feedback,
    /// Said goodbye.
    Done,
}

impl Phase {
    fn code(self) -> &'static str {
        match self {
            Phase::New => "n",
            Phase::Collecting => "c",
            Phase::Answering => "a",
            Phase::Human => "h",
            Phase::Closing => "x",
            Phase::Feedback => "f",
            Phase::Done => "d",
        }
    }

    fn from_code(code: &str) -> Phase {
        match code {
            "c" => Phase::Collecting,
            "a" => Phase::Answering,
            "h" => Phase::Human,
            "x" => Phase::Closing,
            "f" => Phase::Feedback,
            "d" => Phase::Done,
            _ => Phase::New,
        }
    }
}

/// What the bot's last message asked the customer, so that a short reply ("yes", "no") is
/// understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// Whether they want a colleague.
    Human,
    /// Whether there is anything else.
    AnythingElse,
    /// Which of two topics they mean.
    Which,
}

impl Asked {
    fn code(self) -> &'static str {
        match self {
            Asked::Human => "h",
            Asked::AnythingElse => "e",
            Asked::Which => "c",
        }
    }

    fn from_code(code: &str) -> Option<Asked> {
        match code {
            "h" => Some(Asked::Human),
            "e" => Some(Asked::AnythingElse),
            "c" => Some(Asked::Which),
            _ => None,
        }
    }
}

impl Phase {
    /// The phase's name, for explanations.
    pub fn name(self) -> &'static str {
        match self {
            Phase::New => "new",
            Phase::Collecting => "collecting",
            Phase::Answering => "answering",
            Phase::Human => "human",
            Phase::Closing => "closing",
            Phase::Feedback => "feedback",
            Phase::Done => "done",
        }
    }
}

/// The playbook's memory of one conversation.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct State {
    /// `p`: the lifecycle phase.
    pub phase: Phase,
    /// `m`: messages misunderstood in a row.
    pub misses: u8,
    /// `u`: the last URL the customer navigated to (truncated).
    pub url: Option<String>,
    /// `r`: the customer's request, for the agent's note (truncated).
    pub request: Option<String>,
    /// `k`: the id of the last knowledge-base answer given.
    pub last_answer: Option<String>,
    /// `w`: the knowledge entry waiting for request details the bot asked for.
    pub pending: Option<String>,
    /// `d`: request details captured so far (`[[details]]` id -> value).
    pub details: Vec<(String, String)>,
    /// `e`: how many times the bot asked for a human agent in this conversation.
    pub escalations: u8,
    /// `s`: the rating the customer gave at the closing.
    pub rating: Option<u8>,
    /// `n`: how many times in a row the customer asked again for the last answer (`k`).
    pub repeats: u8,
    /// `f`: frustrated, sarcastic or rude messages so far.
    pub upset: u8,
    /// `q`: what the bot's last message asked.
    pub asked: Option<Asked>,
    /// `o`: the customer waiting for an agent was reassured once.
    pub reassured: bool,
}

impl State {
    /// Reads the state from a conversation's custom data. Anything missing or malformed (the
    /// user may edit the object too) reads as the default, field by field.
    pub fn read(custom: Option<&Map<String, Value>>) -> State {
        let Some(Value::Object(state)) = custom.and_then(|c| c.get(KEY)) else {
            return State::default();
        };
        let text = |key: &str| state.get(key).and_then(Value::as_str).map(str::to_string);
        let small = |key: &str| {
            state
                .get(key)
                .and_then(Value::as_u64)
                .map(|n| u8::try_from(n).unwrap_or(u8::MAX))
        };
        let details = match state.get("d") {
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect(),
            _ => Vec::new(),
        };
        State {
            phase: Phase::from_code(state.get("p").and_then(Value::as_str).unwrap_or("n")),
            misses: small("m").unwrap_or(0),
            url: text("u"),
            request: text("r"),
            last_answer: text("k"),
            pending: text("w"),
            details,
            escalations: small("e").unwrap_or(0),
            rating: small("s"),
            repeats: small("n").unwrap_or(0),
            upset: small("f").unwrap_or(0),
            asked: state
                .get("q")
                .and_then(Value::as_str)
                .and_then(Asked::from_code),
            reassured: small("o").is_some_and(|o| o > 0),
        }
    }

    /// The whole state as stored (for explanations).
    pub fn to_json(&self) -> Value {
        self.to_value(OPTIONAL_FIELDS)
    }

    /// The captured value of detail `id`.
    pub fn detail(&self, id: &str) -> Option<&str> {
        self.details
            .iter()
            .find(|(k, _)| k == id)
            .map(|(_, v)| v.as_str())
    }

    /// Stores the value of detail `id` (truncated to [`DETAIL_CHARS`]), replacing an older one.
    pub fn remember_detail(&mut self, id: &str, value: &str) {
        let value = truncate(value.trim(), DETAIL_CHARS);
        match self.details.iter_mut().find(|(k, _)| k == id) {
            Some((_, old)) => *old = value,
            None => self.details.push((id.to_string(), value)),
        }
    }

    /// Sets the request summary, truncated to [`REQUEST_CHARS`].
    pub fn remember_request(&mut self, text: &str) {
        self.request = Some(truncate(text.trim(), REQUEST_CHARS));
    }

    /// Sets the last URL, truncated to [`URL_CHARS`].
    pub fn remember_url(&mut self, url: &str) {
        self.url = Some(truncate(url.trim(), URL_CHARS));
    }

    /// Counts one more misunderstood message (saturating).
    pub fn add_miss(&mut self) {
        self.misses = self.misses.saturating_add(1);
    }

    /// The compact JSON form, keeping the first `keep_optional` optional fields.
    fn to_value(&self, keep_optional: usize) -> Value {
        let mut state = Map::new();
        state.insert("p".into(), json!(self.phase.code()));
        let reassured = u8::from(self.reassured);
        for (key, value) in [
            ("m", self.misses),
            ("e", self.escalations),
            ("n", self.repeats),
            ("f", self.upset),
            ("o", reassured),
        ] {
            if value > 0 {
                state.insert(key.into(), json!(value));
            }
        }
        if let Some(rating) = self.rating {
            state.insert("s".into(), json!(rating));
        }
        if let Some(pending) = &self.pending {
            state.insert("w".into(), json!(pending));
        }
        if let Some(asked) = self.asked {
            state.insert("q".into(), json!(asked.code()));
        }
        let details = (!self.details.is_empty()).then(|| {
            let map: Map<String, Value> = self
                .details
                .iter()
                .map(|(k, v)| (k.clone(), json!(v)))
                .collect();
            Value::Object(map)
        });
        // Least important last: these are dropped first when space is short.
        let optional = [
            ("k", self.last_answer.as_ref().map(|v| json!(v))),
            ("u", self.url.as_ref().map(|v| json!(v))),
            ("d", details),
            ("r", self.request.as_ref().map(|v| json!(v))),
        ];
        for (key, value) in optional.into_iter().take(keep_optional) {
            if let Some(value) = value {
                state.insert(key.into(), value);
            }
        }
        Value::Object(state)
    }
}

/// How many optional fields [`State`] has (see `to_value`).
const OPTIONAL_FIELDS: usize = 4;

/// The conversation custom data to send with the reply: `previous` with the state stored under
/// [`KEY`], or `None` when nothing would change (or nothing fits).
///
/// Other keys are never removed or changed. When the whole state does not fit within 1 kB, its
/// optional fields are dropped one by one; if even the bare phase does not fit, an old state is
/// removed (so it cannot mislead later events) and the logic works without memory.
pub fn merge(previous: Option<&Map<String, Value>>, state: &State) -> Option<CustomData> {
    let base = previous.cloned().unwrap_or_default();
    let candidates = (0..=OPTIONAL_FIELDS).rev().map(|keep| {
        let mut map = base.clone();
        map.insert(KEY.into(), state.to_value(keep));
        map
    });
    let without_state = {
        let mut map = base.clone();
        map.remove(KEY);
        map
    };
    let chosen = candidates
        .chain(std::iter::once(without_state))
        .find_map(|map| CustomData::new(map).ok())?;
    (chosen.as_map() != &base).then_some(chosen)
}

/// The first `chars` characters of `text`.
fn truncate(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::custom::CUSTOM_LIMIT_BYTES;

    fn object(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }

    #[test]
    fn state_round_trips_through_custom_data_under_one_short_key() {
        let state = State {
            phase: Phase::Human,
            misses: 2,
            url: Some("https://shop.example.com/a".into()),
            request: Some("parcel lost".into()),
            last_answer: Some("delivery".into()),
            pending: Some("returns".into()),
            details: vec![("order".into(), "12345".into())],
            escalations: 1,
            rating: Some(5),
            repeats: 1,
            upset: 2,
            asked: Some(Asked::Human),
            reassured: true,
        };
        let custom = merge(None, &state).expect("changed");
        assert_eq!(
            custom.as_map().get(KEY),
            Some(&json!({
                "p": "h", "m": 2, "e": 1, "n": 1, "f": 2, "o": 1, "s": 5, "w": "returns",
                "q": "h", "d": {"order": "12345"},
                "u": "https://shop.example.com/a", "r": "parcel lost", "k": "delivery"
            }))
        );
        assert_eq!(State::read(Some(custom.as_map())), state);
    }

    #[test]
    fn other_keys_of_the_user_are_kept() {
        let previous = object(json!({"crm": {"id": 42}, "yl": {"p": "n"}}));
        let state = State {
            phase: Phase::Answering,
            ..State::default()
        };
        let custom = merge(Some(&previous), &state).expect("changed");
        assert_eq!(custom.as_map().get("crm"), Some(&json!({"id": 42})));
        assert_eq!(custom.as_map().get(KEY), Some(&json!({"p": "a"})));
    }

    #[test]
    fn an_unchanged_state_needs_no_update() {
        let previous = object(json!({"yl": {"p": "a"}}));
        let state = State::read(Some(&previous));
        assert_eq!(merge(Some(&previous), &state), None);
    }

    #[test]
    fn malformed_state_reads_as_the_default() {
        let previous = object(json!({"yl": {"p": 7, "m": "x", "u": []}}));
        assert_eq!(State::read(Some(&previous)), State::default());
        assert_eq!(
            State::read(Some(&object(json!({"yl": "?"})))),
            State::default()
        );
    }

    #[test]
    fn the_state_trims_itself_when_other_keys_use_the_space() {
        let previous = object(json!({"big": "x".repeat(900)}));
        let mut state = State {
            phase: Phase::Answering,
            ..State::default()
        };
        state.remember_request(&"r".repeat(500));
        state.remember_url(&format!("https://e.com/{}", "u".repeat(500)));
        let custom = merge(Some(&previous), &state).expect("changed");
        assert!(custom.size() <= CUSTOM_LIMIT_BYTES);
        assert_eq!(custom.as_map().get("big"), previous.get("big"));
        assert_eq!(State::read(Some(custom.as_map())).phase, Phase::Answering);
    }

    #[test]
    fn without_room_even_for_the_phase_an_old_state_is_removed_and_user_keys_stay() {
        let previous = object(json!({"big": "x".repeat(1005), "yl": {"p": "a"}}));
        let state = State {
            phase: Phase::Human,
            ..State::default()
        };
        let custom = merge(Some(&previous), &state).expect("state removed");
        assert_eq!(custom.as_map().get(KEY), None);
        assert_eq!(custom.as_map().get("big"), previous.get("big"));
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let mut state = State::default();
        state.remember_request(&"č".repeat(300));
        assert_eq!(
            state.request.map(|r| r.chars().count()),
            Some(REQUEST_CHARS)
        );
    }
}
