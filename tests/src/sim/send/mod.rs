//! Send mode: posts event files to the ingress as Salted CX would and shows the callback each
//! one got. Every event gets a fresh `requestId`, `time` now and `expires` one budget later (so
//! the same file can be sent again and again); they go one after the other, the next once the
//! previous was answered or expired, like the events of a conversation.

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
use super::server::CallbackServer;
use super::transcript::human;

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

/// The report of one file.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The file sent.
    pub file: PathBuf,
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
    object.insert("time".into(), json!(crate::events::timestamp(now)));
    object.insert("expires".into(), json!(crate::events::timestamp(expires)));
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
                file: file.clone(),
                event: None,
                fate: Fate::Invalid { message },
            },
            Ok(event) => {
                let fate = send_one(&event, seq, client, server, budget).await;
                Sent {
                    file: file.clone(),
                    event: Some(event),
                    fate,
                }
            }
        };
        reports.push(report);
    }
    reports
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
    let reports = send_all(&args.files, &client, &server, args.target.budget).await;
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

/// A report as text: one line about the event and its fate, then the callback body.
pub fn report_text(report: &Sent, budget: Duration) -> String {
    let mut out = format!("{}", report.file.display());
    if let Some(event) = &report.event {
        out.push_str(&format!(
            ": {} in conversation {}, requestId {}\n",
            event.trigger, event.conversation, event.request_id
        ));
    } else {
        out.push('\n');
    }
    let callback = |callback: &Value| {
        serde_json::to_string_pretty(callback)
            .unwrap_or_default()
            .lines()
            .map(|line| format!("    {line}\n"))
            .collect::<String>()
    };
    match &report.fate {
        Fate::Answered {
            latency,
            callback: body,
        } => {
            out.push_str(&format!(
                "  answered in {} (budget {}); callback:\n",
                human(*latency),
                human(budget)
            ));
            out.push_str(&callback(body));
        }
        Fate::Late {
            latency,
            callback: body,
        } => {
            out.push_str(&format!(
                "  answered too late, after {} (budget {}); callback:\n",
                human(*latency),
                human(budget)
            ));
            out.push_str(&callback(body));
        }
        Fate::Expired => out.push_str(&format!(
            "  no callback within the {} budget (are the workers running, with \
             SALTEDCX_API_URL pointing at this simulator?)\n",
            human(budget)
        )),
        Fate::Refused { status, message } => match status {
            Some(status) => {
                out.push_str(&format!("  refused by the ingress: {status} {message}\n"))
            }
            None => out.push_str(&format!("  not delivered to the ingress: {message}\n")),
        },
        Fate::Invalid { message } => out.push_str(&format!("  not sent: {message}\n")),
    }
    out
}

/// A report as one JSON object: `file`, `trigger`, `conversation`, `requestId`, `outcome`
/// (answered, late, expired, refused, invalid), `latencyMs`, `callback`, `error`.
pub fn report_json(report: &Sent, budget: Duration) -> Value {
    let (outcome, latency, callback, error) = match &report.fate {
        Fate::Answered { latency, callback } => ("answered", Some(latency), Some(callback), None),
        Fate::Late { latency, callback } => ("late", Some(latency), Some(callback), None),
        Fate::Expired => ("expired", None, None, None),
        Fate::Refused { status, message } => (
            "refused",
            None,
            None,
            Some(match status {
                Some(status) => format!("{status} {message}"),
                None => message.clone(),
            }),
        ),
        Fate::Invalid { message } => ("invalid", None, None, Some(message.clone())),
    };
    json!({
        "file": report.file.display().to_string(),
        "trigger": report.event.as_ref().map(|e| e.trigger.clone()),
        "conversation": report.event.as_ref().map(|e| e.conversation.clone()),
        "requestId": report.event.as_ref().map(|e| e.request_id.to_string()),
        "outcome": outcome,
        "budgetMs": budget.as_secs_f64() * 1000.0,
        "latencyMs": latency.map(|l| l.as_secs_f64() * 1000.0),
        "callback": callback,
        "error": error,
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
