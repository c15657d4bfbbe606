//! Readable transcripts: who said what, which actions Your Logic sent back, and how long each
//! answer took against its budget.

use std::fmt::Write as _;
use std::time::Duration;

use serde_json::Value;

use super::driver::{Outcome, Record};
use super::scenario::{Scenario, Step};

/// Formats a duration for people: `850 µs`, `12.3 ms`, `2.10 s`.
pub fn human(duration: Duration) -> String {
    let micros = duration.as_micros();
    if micros < 1000 {
        format!("{micros} µs")
    } else if micros < 1_000_000 {
        format!("{:.1} ms", micros as f64 / 1000.0)
    } else if duration.subsec_nanos() == 0 {
        format!("{} s", duration.as_secs())
    } else {
        format!("{:.2} s", duration.as_secs_f64())
    }
}

/// `n` and the noun for it: `1 check`, `3 checks` (`one` and `many` are the two forms).
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// What happened in a step, from the participants' point of view.
fn describe(step: &Step, agent: Option<&str>) -> String {
    let agent = agent.unwrap_or("agent");
    match step {
        Step::Customer(text) => format!("customer: {text}"),
        Step::CustomerSilent(text) => format!("customer (silent): {text}"),
        Step::AgentJoins(name) => format!("── agent {name} joins the conversation"),
        Step::Agent(text) => format!("agent {agent}: {text}"),
        Step::Action(action) => format!("agent {agent} presses the action button \"{action}\""),
        Step::AgentLeaves(leave) => {
            format!(
                "── agent {agent} completes the engagement ({}: {})",
                leave.outcome, leave.reason
            )
        }
        Step::File(file) => format!("customer sends a file: {} ({})", file.name, file.mime),
        Step::Navigation(url) => format!("customer opens {url}"),
        Step::Review(review) => format!(
            "customer reviews \"{}\": {} ({})",
            review.question, review.answer, review.reason
        ),
        Step::MenuStep(id) => format!("customer reaches the menu step {id}"),
        Step::Answer(id) => format!("customer answers {id}"),
        Step::ConversationUpdate(state) => format!("conversation state: {state}"),
        Step::Completed => "── conversation completed".into(),
    }
}

/// One action as a transcript line.
fn action_line(action: &Value) -> String {
    let kind = action.get("type").and_then(Value::as_str).unwrap_or("?");
    let content = action
        .get("content")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match kind.to_ascii_uppercase().as_str() {
        "MESSAGE" => format!("bot → customer: {content}"),
        "NOTE" => format!("note → agents: {content}"),
        "NEEDS_HELP" => {
            let on = action
                .get("needsHelp")
                .and_then(Value::as_bool)
                .unwrap_or(true);
            if on {
                "⚑ needs help: asks for a human agent".into()
            } else {
                "needs help cleared".into()
            }
        }
        other => format!("{other}: {action}"),
    }
}

/// The transcript of one played conversation.
pub fn render(
    number: usize,
    of: usize,
    scenario: &Scenario,
    records: &[Record],
    budget: Duration,
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n━━ Conversation {number} of {of}: {} [{}] ━━  customer {}, {}",
        scenario.title, scenario.name, scenario.customer, scenario.platform
    );
    for record in records {
        let _ = writeln!(out, "  {}", describe(&record.step, record.agent.as_deref()));
        let Some((_, outcome)) = &record.event else {
            continue;
        };
        match outcome {
            Outcome::Answered { latency, applied } => {
                for action in &applied.actions {
                    let _ = writeln!(out, "      {}", action_line(action));
                }
                let mut timing = format!(
                    "      ✓ answered in {} of its {} budget",
                    human(*latency),
                    human(budget)
                );
                if applied.actions.is_empty() {
                    timing.push_str(" (no actions)");
                }
                if let Some(bytes) = applied.custom_bytes {
                    let _ = write!(timing, ", custom data {bytes} B");
                }
                let _ = writeln!(out, "{timing}");
            }
            Outcome::Late { latency } => {
                let _ = writeln!(
                    out,
                    "      ✗ answered too late, after {} (budget {}): Salted CX fell back to an agent",
                    human(*latency),
                    human(budget)
                );
            }
            Outcome::Expired => {
                let _ = writeln!(
                    out,
                    "      ✗ no answer within the {} budget: Salted CX fell back to an agent",
                    human(budget)
                );
            }
            Outcome::NotAccepted { kind, message } => {
                let _ = writeln!(
                    out,
                    "      ✗ the ingress did not accept the event ({kind}: {message})"
                );
            }
        }
    }
    out
}

/// Prints a callback received in `serve` mode.
pub fn print_callback(account_id: &str, conversation_pid: &str, body: &Value) {
    let request = body
        .get("requestId")
        .or_else(|| body.get("request"))
        .and_then(Value::as_str)
        .unwrap_or("?");
    let mut out = format!(
        "{}  callback for conversation {conversation_pid} (account {account_id}), request {request}\n",
        chrono::Utc::now().format("%H:%M:%S%.3f")
    );
    let actions = body
        .get("actions")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if actions.is_empty() {
        out.push_str("      (no actions)\n");
    }
    for action in &actions {
        let _ = writeln!(out, "      {}", action_line(action));
    }
    if let Some(custom) = body.pointer("/conversation/custom") {
        let _ = writeln!(out, "      conversation.custom = {custom}");
    }
    print!("{out}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(human(Duration::from_micros(850)), "850 µs");
        assert_eq!(human(Duration::from_micros(12_345)), "12.3 ms");
        assert_eq!(human(Duration::from_millis(2100)), "2.10 s");
        assert_eq!(human(Duration::from_secs(15)), "15 s");
    }

    #[test]
    fn counts_agree_with_their_number() {
        assert_eq!(count(1, "check", "checks"), "1 check");
        assert_eq!(count(0, "check", "checks"), "0 checks");
        assert_eq!(count(2, "answer", "answers"), "2 answers");
    }

    #[test]
    fn actions_are_shown_by_who_sees_them() {
        assert_eq!(
            action_line(&json!({"type": "MESSAGE", "content": "Hi"})),
            "bot → customer: Hi"
        );
        assert_eq!(
            action_line(&json!({"type": "NOTE", "content": "n"})),
            "note → agents: n"
        );
        assert!(
            action_line(&json!({"type": "NEEDS_HELP", "needsHelp": true})).contains("needs help")
        );
    }
}
