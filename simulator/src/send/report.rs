//! How `send` shows what became of each event: text (the event, its fate, the callback body) or
//! one JSON object per event.

use std::time::Duration;

use serde_json::{Value, json};

use super::{Fate, Sent, Source};
use crate::transcript::human;

/// A report as text: one line about the event and its fate, then the callback body.
pub fn report_text(report: &Sent, budget: Duration) -> String {
    let mut out = match &report.source {
        Source::File(path) => path.display().to_string(),
        // Quoted and escaped: what was typed, without control characters.
        Source::Text(text) => format!("{text:?}"),
    };
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

/// A report as one JSON object: `file` or `text` (what the event was made from), `trigger`,
/// `conversation`, `requestId`, `outcome` (answered, late, expired, refused, invalid),
/// `latencyMs`, `callback`, `error`.
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
    let (file, text) = match &report.source {
        Source::File(path) => (Some(path.display().to_string()), None),
        Source::Text(text) => (None, Some(text.as_str())),
    };
    json!({
        "file": file,
        "text": text,
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
