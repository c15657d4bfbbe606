//! What the model is asked: the system prompt with the retrieved passages, the conversation's
//! turns, and the escalation tool; and how its answer is cleaned up before it reaches the
//! customer (reasoning blocks removed, length limited at a sentence end).

use serde_json::{Value, json};
use shared::event::{Event, ParticipantType, TriggerType};

use super::client::ChatMessage;
use super::retrieval::Passage;

/// The system prompt when `GENERATIVE_SYSTEM_PROMPT` is not set.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are the customer-support assistant in a live chat. \
Answer the customer's last message briefly (at most three sentences), politely and in plain text \
without markdown. Use only the reference passages below and the conversation for facts; never \
invent prices, dates, order data or policies. If the passages do not answer the question, say so \
and offer to connect the customer with a colleague. If the customer wants a human, is upset, or \
the request needs someone to act on an account or an order, call the tool escalate_to_human.";

/// The name of the escalation tool offered to the model.
pub const ESCALATION_TOOL: &str = "escalate_to_human";
/// Longest text of one turn given to the model (characters).
const TURN_CHARS: usize = 1000;
/// Longest escalation reason kept (characters).
const REASON_CHARS: usize = 200;

/// The tool with which the model asks for a human agent.
pub fn escalation_tool() -> Value {
    json!({
        "type": "function",
        "function": {
            "name": ESCALATION_TOOL,
            "description": "Hand the conversation to a human agent of the support team.",
            "parameters": {
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "description": "Why a human is needed, in one sentence."}
                },
                "required": ["reason"]
            }
        }
    })
}

/// The system message: the configured prompt, the reference passages and the reply language.
pub fn system_message(prompt: &str, passages: &[&Passage], language: Option<&str>) -> ChatMessage {
    let mut text = prompt.trim().to_string();
    text.push_str("\n\nReference passages:");
    if passages.is_empty() {
        text.push_str("\n(none match this message)");
    }
    for (i, passage) in passages.iter().enumerate() {
        text.push_str(&format!(
            "\n[{}] ({}) {}",
            i + 1,
            passage.source,
            passage.text.trim()
        ));
    }
    if let Some(language) = language {
        text.push_str(&format!(
            "\n\nReply in the customer's language (language code `{language}`)."
        ));
    }
    ChatMessage::system(text)
}

/// The conversation so far as chat messages (the last `max_turns` message turns: the customer
/// as `user`, bots and agents as `assistant`), ending with the customer's current message.
pub fn conversation(event: &Event, max_turns: usize) -> Vec<ChatMessage> {
    let mut messages: Vec<ChatMessage> = event
        .turns
        .iter()
        .filter(|t| t.kind.is_none() || t.kind == Some(TriggerType::Message))
        .filter_map(|t| {
            let customer = t.participant_type == Some(ParticipantType::Customer);
            let text = if customer {
                t.content_customer.as_deref().or(t.content.as_deref())
            } else {
                t.content.as_deref().or(t.content_customer.as_deref())
            }?;
            let text = limit(text.trim(), TURN_CHARS);
            if text.is_empty() {
                return None;
            }
            Some(match t.participant_type {
                Some(ParticipantType::Customer) => ChatMessage::user(text),
                Some(ParticipantType::Agent | ParticipantType::ExternalAgent) => {
                    ChatMessage::assistant(format!("(agent) {text}"))
                }
                _ => ChatMessage::assistant(text),
            })
        })
        .collect();
    let current = event
        .trigger_texts()
        .map(str::trim)
        .find(|t| !t.is_empty())
        .map(|t| limit(t, TURN_CHARS));
    if let Some(current) = current {
        let already_last = messages
            .last()
            .is_some_and(|m| m.role == "user" && m.content == current);
        if !already_last {
            messages.push(ChatMessage::user(current));
        }
    }
    let skip = messages.len().saturating_sub(max_turns.max(1));
    messages.split_off(skip)
}

/// The reason given in the escalation tool's arguments (`{"reason": "..."}`), if any.
pub fn escalation_reason(arguments: &str) -> String {
    let reason = serde_json::from_str::<Value>(arguments)
        .ok()
        .and_then(|v| v.get("reason").and_then(Value::as_str).map(str::to_string))
        .unwrap_or_default();
    let reason = limit(reason.trim(), REASON_CHARS);
    if reason.is_empty() {
        "no reason given".into()
    } else {
        reason
    }
}

/// The model's answer as the customer gets it: `<think>` blocks removed, trimmed, at most
/// `max_chars` characters (cut after the last sentence that fits, else at a word); `None` when
/// nothing is left.
pub fn clean_answer(text: &str, max_chars: usize) -> Option<String> {
    let mut text = text.to_string();
    while let Some(start) = text.find("<think>") {
        let end = text[start..]
            .find("</think>")
            .map_or(text.len(), |e| start + e + "</think>".len());
        text.replace_range(start..end, "");
    }
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    if text.chars().count() <= max_chars {
        return Some(text.to_string());
    }
    let cut = limit(text, max_chars);
    let sentence_end = cut
        .char_indices()
        .rev()
        .find(|(_, c)| matches!(c, '.' | '!' | '?' | '。'))
        .map(|(i, c)| i + c.len_utf8())
        .filter(|end| *end >= cut.len() / 2);
    Some(match sentence_end {
        Some(end) => cut[..end].to_string(),
        None => {
            let word_end = cut.rfind(char::is_whitespace).unwrap_or(cut.len());
            format!("{}…", cut[..word_end].trim_end())
        }
    })
}

/// The first `chars` characters of `text`.
fn limit(text: &str, chars: usize) -> String {
    match text.char_indices().nth(chars) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_after_the_last_sentence_that_fits() {
        assert_eq!(clean_answer("  Hello.  ", 100).as_deref(), Some("Hello."));
        let long = "First sentence here. Second sentence is a lot longer than the first one.";
        assert_eq!(
            clean_answer(long, 40).as_deref(),
            Some("First sentence here.")
        );
        assert_eq!(
            clean_answer("one two three four five six", 12).as_deref(),
            Some("one two…")
        );
        assert_eq!(clean_answer("<think>hmm</think>  ", 100), None);
        assert_eq!(
            clean_answer("<think>plan</think>Sure, here it is.", 100).as_deref(),
            Some("Sure, here it is.")
        );
    }

    #[test]
    fn the_escalation_reason_is_read_from_the_arguments() {
        assert_eq!(escalation_reason(r#"{"reason":" angry "}"#), "angry");
        assert_eq!(escalation_reason("not json"), "no reason given");
    }

    #[test]
    fn the_system_message_lists_the_passages_and_the_language() {
        let passage = Passage {
            source: "faq.md".into(),
            text: "We ship to Norway.".into(),
        };
        let message = system_message("Be nice.", &[&passage], Some("de"));
        assert!(
            message
                .content
                .starts_with("Be nice.\n\nReference passages:\n[1] (faq.md) We ship")
        );
        assert!(message.content.ends_with("(language code `de`)."));
    }
}
