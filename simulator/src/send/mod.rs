//! Send mode: posts event files, or customer messages typed on the command line, to the ingress
//! as Salted CX would and shows the callback each one got ([`report`]). Every event gets a fresh
//! `requestId`, `time` now and `expires` one budget later (so the same file can be sent again
//! and again); they go one after the other, the next once the previous was answered or expired,
//! like the events of a conversation. Messages (`--text`) make one new conversation whose events
//! carry everything before them, the bot's answers and the custom data it stored included, as
//! the demo's conversations do.

mod report;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use bytes::Bytes;
use chrono::Utc;
use serde_json::{Value, json};
use tokio::time::Instant;
use uuid::Uuid;

use super::client::{IngressClient, Posted};
use super::config::SendArgs;
use super::conversation::Conversation;
use super::scenario::Scenario;
use super::server::CallbackServer;
pub use report::{report_json, report_text};

/// An event file read and stamped, ready to post.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The JSON body to post.
    pub body: Bytes,
    /// Its fresh requestId.
    pub request_id: Uuid,
    /// The conversation the callback will name.
    pub conversation: String,
    /// The trigger type, for the report.
    pub trigger: String,
}

/// What became of one file.
#[derive(Debug, Clone, PartialEq)]
pub enum Fate {
    /// The callback came before `expires`.
    Answered { latency: Duration, callback: Value },
    /// The callback came after `expires` (Salted CX would have fallen back to an agent).
    Late { latency: Duration, callback: Value },
    /// No callback before `expires`.
    Expired,
    /// The ingress did not accept the event.
    Refused {
        status: Option<u16>,
        message: String,
    },
    /// The file is not a usable event; nothing was sent.
    Invalid { message: String },
}

/// What one event was made from.
#[derive(Debug, Clone, PartialEq)]
pub enum Source {
    /// An event file.
    File(PathBuf),
    /// A customer message given with `--text`.
    Text(String),
}

/// The report of one event.
#[derive(Debug, Clone)]
pub struct Sent {
    /// What it was made from.
    pub source: Source,
    /// The event, when the file was usable.
    pub event: Option<Prepared>,
    /// What happened.
    pub fate: Fate,
}

/// Reads `path` and stamps it: fresh `requestId`, `time` now, `expires` now + `budget`.
pub fn prepare(path: &Path, budget: Duration) -> std::result::Result<Prepared, String> {
    let text = std::fs::read(path).map_err(|err| format!("cannot read it: {err}"))?;
    let mut value: Value =
        serde_json::from_slice(&text).map_err(|err| format!("not valid JSON: {err}"))?;
    let object = value
        .as_object_mut()
        .ok_or("not a JSON object (an event is an object)")?;
    let request_id = Uuid::new_v4();
    let now = Utc::now();
    let expires = now
        + chrono::Duration::from_std(budget).map_err(|_| format!("budget {budget:?} too long"))?;
    object.insert("requestId".into(), json!(request_id.to_string()));
    object.insert("time".into(), json!(crate::conversation::timestamp(now)));
    object.insert(
        "expires".into(),
        json!(crate::conversation::timestamp(expires)),
    );
    let body = Bytes::from(serde_json::to_vec(&value).map_err(|err| err.to_string())?);
    let event = shared::event::Event::from_json(&body).map_err(|err| err.to_string())?;
    let conversation = event
        .conversation_pid()
        .map(str::to_string)
        .unwrap_or_default();
    Ok(Prepared {
        body,
        request_id,
        conversation,
        trigger: event.trigger.kind.to_string(),
    })
}

/// Sends every file in order through `client`, the callbacks arriving at `server`, each
/// event given `budget`.
pub async fn send_all(
    files: &[PathBuf],
    client: &IngressClient,
    server: &CallbackServer,
    budget: Duration,
) -> Vec<Sent> {
    let mut reports = Vec::with_capacity(files.len());
    for (seq, file) in (1u64..).zip(files) {
        let report = match prepare(file, budget) {
            Err(message) => Sent {
                source: Source::File(file.clone()),
                event: None,
                fate: Fate::Invalid { message },
            },
            Ok(event) => {
                let fate = send_one(&event, seq, client, server, budget).await;
                Sent {
                    source: Source::File(file.clone()),
                    event: Some(event),
                    fate,
                }
            }
        };
        reports.push(report);
    }
    reports
}

/// Sends `texts` as the customer's messages of one new conversation (in `language`), in order:
/// each event carries the conversation so far, and each answer is applied to it (the bot's
/// messages become turns, its custom data is sent back) before the next message.
pub async fn send_messages(
    texts: &[String],
    language: &str,
    client: &IngressClient,
    server: &CallbackServer,
    budget: Duration,
) -> Vec<Sent> {
    let mut conversation = typed_conversation(language);
    let mut reports = Vec::with_capacity(texts.len());
    for (seq, text) in (1u64..).zip(texts) {
        let event = message_event(&mut conversation, text, budget);
        let fate = send_one(&event, seq, client, server, budget).await;
        match &fate {
            Fate::Answered { callback, .. } | Fate::Late { callback, .. } => {
                conversation.apply(callback);
            }
            Fate::Expired => conversation.fall_back(),
            Fate::Refused { .. } | Fate::Invalid { .. } => {}
        }
        reports.push(Sent {
            source: Source::Text(text.clone()),
            event: Some(event),
            fate,
        });
    }
    reports
}

/// A new conversation on the web chat of a customer writing in `language`.
fn typed_conversation(language: &str) -> Conversation {
    let customer = Scenario {
        name: "send".into(),
        title: "saltedcx-sim send --text".into(),
        customer: "Customer".into(),
        phone: None,
        language: language.to_string(),
        platform: "WEB".into(),
        url: None,
        custom: serde_json::Map::new(),
        steps: Vec::new(),
    };
    Conversation::new(&customer)
}

/// The next event of `conversation`: the customer writes `text`.
fn message_event(conversation: &mut Conversation, text: &str, budget: Duration) -> Prepared {
    let built = conversation.message(text, budget);
    Prepared {
        body: Bytes::from(built.body),
        request_id: built.request_id,
        conversation: conversation.pid().to_string(),
        trigger: "MESSAGE".into(),
    }
}

/// Posts one event and waits for its callback until its `expires`.
async fn send_one(
    event: &Prepared,
    seq: u64,
    client: &IngressClient,
    server: &CallbackServer,
    budget: Duration,
) -> Fate {
    let sent_at = Instant::now();
    let deadline = sent_at + budget;
    let registry = server.registry();
    let arrival = registry.expect(&event.conversation, event.request_id, seq, deadline);
    match client.post(event.body.clone()).await {
        Posted::Accepted | Posted::Duplicate => {}
        refused => {
            registry.withdraw(&event.conversation, event.request_id);
            let (status, message) = match refused {
                Posted::Refused {
                    status, message, ..
                } => (Some(status), message),
                Posted::Failed { message, .. } => (None, message),
                Posted::Accepted | Posted::Duplicate => (None, String::new()),
            };
            return Fate::Refused { status, message };
        }
    }
    match tokio::time::timeout_at(deadline, arrival).await {
        Ok(Ok(arrival)) => {
            let latency = arrival.at.saturating_duration_since(sent_at);
            if arrival.at <= deadline {
                Fate::Answered {
                    latency,
                    callback: arrival.body,
                }
            } else {
                Fate::Late {
                    latency,
                    callback: arrival.body,
                }
            }
        }
        // Timed out (or the server stopped): no answer in time.
        _ => {
            registry.expire(&event.conversation, event.request_id);
            Fate::Expired
        }
    }
}

/// The `send` command: serves callbacks, sends the files, prints the reports.
pub async fn run(args: &SendArgs) -> Result<ExitCode> {
    let token = args.endpoint.token();
    let server = Arc::new(CallbackServer::start(args.endpoint.listen, &token, None, false).await?);
    let client = IngressClient::new(&args.target.ingress_url, &token)?;
    client.check_reachable().await?;
    let budget = args.target.budget;
    let reports = if args.texts.is_empty() {
        send_all(&args.files, &client, &server, budget).await
    } else {
        send_messages(&args.texts, &args.language, &client, &server, budget).await
    };
    for report in &reports {
        if args.json {
            println!("{}", report_json(report, args.target.budget));
        } else {
            print!("{}", report_text(report, args.target.budget));
        }
    }
    let all_answered = reports
        .iter()
        .all(|r| matches!(r.fate, Fate::Answered { .. }));
    Ok(if all_answered {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> tempfile::NamedTempFile {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        std::fs::write(file.path(), text).expect("write");
        file
    }

    #[test]
    fn a_file_gets_a_fresh_request_id_time_and_expires() {
        let event = file(
            r#"{"requestId":"old","accountId":"a","expires":"2020-01-01T00:00:00Z",
                "trigger":{"type":"Message","contentCustomer":"hi"},"conversation":{"pid":"c-1"}}"#,
        );
        let first = prepare(event.path(), Duration::from_secs(10)).expect("valid");
        let second = prepare(event.path(), Duration::from_secs(10)).expect("valid");
        assert_ne!(first.request_id, second.request_id);
        assert_eq!(first.conversation, "c-1");
        assert_eq!(first.trigger, "MESSAGE");
        let body: Value = serde_json::from_slice(&first.body).expect("json");
        assert_eq!(body["requestId"], first.request_id.to_string());
        let time: chrono::DateTime<Utc> = body["time"].as_str().expect("time").parse().expect("t");
        let expires: chrono::DateTime<Utc> = body["expires"]
            .as_str()
            .expect("expires")
            .parse()
            .expect("e");
        assert_eq!((expires - time).num_seconds(), 10);
        assert!((Utc::now() - time).num_seconds().abs() < 5);
    }

    #[test]
    fn a_typed_message_is_an_event_shaped_like_the_example_message() {
        let example: Value = serde_json::from_slice(
            &std::fs::read(
                std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                    .join("../examples/events/01-message.json"),
            )
            .expect("the example message"),
        )
        .expect("JSON");
        let mut conversation = typed_conversation("es");
        let event = message_event(
            &mut conversation,
            "¿Dónde está mi pedido?",
            Duration::from_secs(9),
        );
        let body: Value = serde_json::from_slice(&event.body).expect("JSON");
        let keys = |value: &Value| -> Vec<String> {
            let mut keys: Vec<String> = value
                .as_object()
                .map(|o| o.keys().cloned().collect())
                .unwrap_or_default();
            keys.retain(|key| key != "url");
            keys.sort();
            keys
        };
        assert_eq!(keys(&body), keys(&example));
        let parsed = shared::event::Event::from_json(&event.body).expect("a valid event");
        assert_eq!(parsed.request_id, event.request_id);
        assert_eq!(event.trigger, "MESSAGE");
        assert_eq!(body["trigger"]["contentCustomer"], "¿Dónde está mi pedido?");
        assert_eq!(body["trigger"]["languageCustomer"], "es");
        assert_eq!(body["conversation"]["pid"], event.conversation.as_str());
        // The next message carries the first one, and the bot's answer, as turns.
        conversation.apply(&json!({"actions": [{"type": "MESSAGE", "content": "Hola"}]}));
        let next = message_event(&mut conversation, "gracias", Duration::from_secs(9));
        let next: Value = serde_json::from_slice(&next.body).expect("JSON");
        let turns = next["turns"].as_array().expect("turns");
        assert_eq!(turns.len(), 3, "{next}");
        assert_eq!(turns[1]["participantType"], "BOT");
    }

    #[test]
    fn unusable_files_are_refused_with_the_reason() {
        let missing = prepare(Path::new("/nonexistent/event.json"), Duration::from_secs(1));
        assert!(missing.is_err_and(|e| e.contains("cannot read")));
        let broken = file("{\"trigger\": ");
        let err = prepare(broken.path(), Duration::from_secs(1)).expect_err("broken");
        assert!(
            err.contains("not valid JSON") && err.contains("line 1"),
            "{err}"
        );
        let array = file("[]");
        let err = prepare(array.path(), Duration::from_secs(1)).expect_err("array");
        assert!(err.contains("not a JSON object"), "{err}");
        let no_conversation = file(r#"{"accountId":"a","trigger":{"type":"MESSAGE"}}"#);
        let err = prepare(no_conversation.path(), Duration::from_secs(1)).expect_err("no pid");
        assert!(err.contains("conversation"), "{err}");
    }
}
