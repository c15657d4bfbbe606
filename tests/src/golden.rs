//! Golden conversations: scripted multi-event conversations with the expected replies, kept as
//! JSON files in `tests/golden/`. This module reads them, builds each step's event the way
//! Salted CX would (with the custom data, `needsHelp` flag and turns that earlier replies
//! produced), and compares replies with the expectations. It is shared by the fast golden tests
//! (`golden_conversations`: the logic called directly) and the pipeline ones (`golden_pipeline`:
//! events through ingress, NATS and the worker), so both prove the same conversations.
//!
//! File format: `{"description": "...", "custom": {...initial conversation.custom...},
//! "steps": [{"trigger": {...}, "event": {...fields merged into the event...},
//! "omit": ["conversation"], "expect": [...actions...], "state": {...subset of "yl"...}}]}`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{SecondsFormat, Utc};
use serde::Deserialize;
use serde_json::{Map, Value, json};

/// The account id of every golden event.
pub const ACCOUNT_ID: &str = "9b2f4c1e-0d3a-4f5b-8c6d-7e8f9a0b1c2d";
/// Time between an event's `time` and its `expires`.
pub const BUDGET: Duration = Duration::from_secs(15);

/// One scripted conversation.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Script {
    /// What the conversation proves.
    pub description: String,
    /// `conversation.custom` before the first event (the user's own keys).
    #[serde(default)]
    pub custom: Map<String, Value>,
    pub steps: Vec<Step>,
}

/// One event and the expected reply.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub trigger: Value,
    /// Merged into the generated event (objects merged recursively).
    #[serde(default)]
    pub event: Map<String, Value>,
    /// Top-level keys removed from the generated event.
    #[serde(default)]
    pub omit: Vec<String>,
    /// The expected actions, exactly and in order.
    pub expect: Vec<Value>,
    /// Expected fields of the playbook state (`conversation.custom.yl`); `null`: absent.
    #[serde(default)]
    pub state: Map<String, Value>,
    /// Expected other keys of `conversation.custom` after this step.
    #[serde(default)]
    pub custom: Map<String, Value>,
}

/// The golden files directory (`tests/golden/`).
pub fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("golden")
}

/// Reads the script `name` (`<dir>/<name>.json`).
pub fn load(dir: &Path, name: &str) -> Script {
    let path = dir.join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is invalid: {e}", path.display()))
}

/// The names of all scripts in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok())
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().to_string();
            name.strip_suffix(".json").map(str::to_string)
        })
        .collect();
    names.sort();
    names
}

/// What Salted CX remembers between the events of one conversation.
#[derive(Debug, Clone)]
pub struct Conversation {
    pub pid: String,
    pub custom: Map<String, Value>,
    pub needs_help: bool,
    pub turns: Vec<Value>,
}

impl Conversation {
    /// A new conversation with the script's initial custom data.
    pub fn new(pid: &str, script: &Script) -> Self {
        Self {
            pid: pid.to_string(),
            custom: script.custom.clone(),
            needs_help: false,
            turns: Vec::new(),
        }
    }

    /// The full event of `step`, as Salted CX would send it now.
    pub fn event(&self, step: &Step) -> Value {
        let now = Utc::now();
        let stamp = |t: chrono::DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Micros, true);
        let expires = now + chrono::Duration::from_std(BUDGET).unwrap_or_default();
        let mut trigger = step.trigger.clone();
        if let Some(object) = trigger.as_object_mut() {
            object.entry("time").or_insert_with(|| json!(stamp(now)));
            // CONVERSATION_COMPLETED names the conversation in the trigger.
            if let Some(pid) = object.get_mut("conversationPid") {
                *pid = json!(self.pid);
            }
        }
        let mut event = json!({
            "requestId": uuid::Uuid::new_v4().to_string(),
            "accountId": ACCOUNT_ID,
            "time": stamp(now),
            "expires": stamp(expires),
            "trigger": trigger,
            "domain": "golden",
            "region": "eu",
            "customer": {"pid": "c0ffee00-0000-4000-8000-000000000001", "displayName": "Ada", "contacts": []},
            "conversation": {
                "pid": self.pid,
                "status": "IN_PROGRESS",
                "needsHelp": self.needs_help,
                "platform": "WEB",
                "direction": "INBOUND",
                "custom": self.custom,
            },
            "engagements": [],
            "turns": self.turns,
        });
        merge(&mut event, &Value::Object(step.event.clone()));
        if let Some(object) = event.as_object_mut() {
            for key in &step.omit {
                object.remove(key);
            }
        }
        event
    }

    /// Takes in the reply to `event` as Salted CX would: stores the custom data, raises the
    /// needs-help flag, records the turns.
    pub fn apply(&mut self, event: &Value, actions: &[Value], custom: Option<&Value>) {
        if let Some(flag) = event
            .pointer("/conversation/needsHelp")
            .and_then(Value::as_bool)
        {
            self.needs_help = flag;
        }
        if let Some(Value::Object(custom)) = custom {
            self.custom = custom.clone();
        }
        let trigger = &event["trigger"];
        if trigger["type"] == "MESSAGE" {
            self.turns.push(json!({
                "type": "MESSAGE",
                "participantType": trigger["participantType"],
                "content": trigger["content"],
                "contentCustomer": trigger.get("contentCustomer").cloned().unwrap_or(Value::Null),
            }));
        }
        for action in actions {
            match action["type"].as_str() {
                Some("MESSAGE") => self.turns.push(json!({
                    "type": "MESSAGE", "participantType": "BOT", "content": action["content"]
                })),
                Some("NEEDS_HELP") => {
                    self.needs_help = action["needsHelp"].as_bool().unwrap_or(true);
                }
                _ => {}
            }
        }
    }
}

/// Compares the reply to step `index` of `name` with the script; panics with both sides.
pub fn check(
    name: &str,
    index: usize,
    step: &Step,
    actions: &[Value],
    custom: &Map<String, Value>,
) {
    let context = format!("golden `{name}`, step {index} (trigger {})", step.trigger);
    assert_eq!(
        actions,
        step.expect.as_slice(),
        "{context}: actions differ\nexpected: {}\n  actual: {}",
        pretty(&step.expect),
        pretty(actions),
    );
    let state = custom.get("yl").cloned().unwrap_or(Value::Null);
    for (key, expected) in &step.state {
        let actual = state.get(key).cloned().unwrap_or(Value::Null);
        assert_eq!(
            &actual, expected,
            "{context}: state field `{key}` differs (state {state})"
        );
    }
    for (key, expected) in &step.custom {
        assert_eq!(
            custom.get(key),
            Some(expected),
            "{context}: custom key `{key}` differs"
        );
    }
    let size = serde_json::to_vec(custom)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    assert!(
        size <= 1024,
        "{context}: conversation.custom is {size} bytes"
    );
}

fn pretty(actions: &[Value]) -> String {
    serde_json::to_string_pretty(actions).unwrap_or_default()
}

/// Merges `patch` into `target`: objects recursively, anything else replaced.
pub fn merge(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(target), Value::Object(patch)) => {
            for (key, value) in patch {
                merge(target.entry(key.clone()).or_insert(Value::Null), value);
            }
        }
        (target, patch) => *target = patch.clone(),
    }
}
