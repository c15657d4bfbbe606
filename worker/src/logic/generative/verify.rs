//! Checks on the model's cleaned text before it may reach the customer. Model output is
//! untrusted: an answer that fails a check is not sent, and the playbook answers instead.
//!
//! - **Action-like or instruction-like** (`unsafe`): JSON or the answer format's words
//!   (`NEEDS_HELP`, `requestId`, tool names), role labels (`SYSTEM:`, `NOTE to agent:`),
//!   instructions about the conversation ("close it", "mark it as resolved") or about the
//!   rules ("ignore previous instructions").
//! - **Unverified facts** (`unverified`): every phone number, e-mail address, price, percentage and link in
//!   the answer must appear in what the model was given (the passages and the conversation),
//!   and so must every other number ("within 24 hours", "in over 100 countries": a small model
//!   invents such figures; list markers like `1.` at the start of a line are not figures),
//!   a link's host must be on the allow-list (`GENERATIVE_LINK_HOSTS`; none by default), and
//!   the redaction markers (`[phone]`, ...) and placeholders like them (`[phone_number]`) must
//!   not appear.

use std::sync::LazyLock;

use regex::Regex;

use crate::logic::playbook::matching::tokens;

/// Why an answer is not sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The answer looks like an action, a note for agents or an instruction.
    #[error("the answer looks like an action or an instruction ({0})")]
    Unsafe(&'static str),
    /// The answer states contact data, a price or a link that nothing the model was given holds.
    #[error("the answer states an unverified {0}")]
    Unverified(&'static str),
}

static JSON_LIKE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r#"[{\[]\s*"[^"\n]{1,40}"\s*:"#).expect("valid json pattern"));
static FORMAT_WORDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)needs_?help|request_?id|conversation\.custom|escalate_to_human|tool_calls?\b|function_call")
        .expect("valid format pattern")
});
/// A role or recipient label: at the start of a line, or anywhere when it names staff.
static ROLE_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?im)^\s*(?:system|assistant|user|developer|agent|operator|bot|instruction|internal)\s*:|\b(?:system|developer)\s*:|\bnote\s+(?:to|for)\s+(?:the\s+)?(?:agents?|staff|team|operators?|supervisors?|colleagues?)\b|\binternal\s+note\b",
    )
    .expect("valid role pattern")
});
static INSTRUCTION: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:close|resolve|end|archive|escalate)\s+(?:it|this|the)(?:\s+(?:conversation|chat|ticket|case))?\s*(?:now|immediately)?\s*[.!]|\b(?:close|resolve|end|archive)\s+(?:this|the)\s+(?:conversation|chat|ticket|case)\b|\bmark\b.{0,40}\b(?:resolved|closed|solved)\b|\b(?:conversation|ticket|case)\s+(?:is\s+|was\s+|has\s+been\s+)?(?:resolved|closed)\b|\bignore\s+(?:all\s+)?(?:the\s+)?(?:previous|prior|above|earlier)\b|\b(?:disregard|override)\s+(?:all\s+|the\s+|your\s+)?(?:previous|prior|above|rules|instructions)\b",
    )
    .expect("valid instruction pattern")
});
static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("valid e-mail pattern")
});
/// A URL with a scheme, a `www.` host, or a domain followed by a path.
static LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\bhttps?://[^\s<>()]+|\bwww\.[^\s<>()]+|\b(?:[a-z0-9\-]+\.)+[a-z]{2,24}/[^\s<>()]*",
    )
    .expect("valid link pattern")
});
/// Seven or more digits with separators, optionally after `+`: phone-like numbers.
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\+?\(?\d(?:[\s().\-/]{0,2}\d){6,}").expect("valid phone pattern")
});
/// A percentage (discounts, fees).
static PERCENT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(\d+(?:[.,]\d{1,2})?)\s?(?:%|percent\b|per cent\b|prozent\b|por ciento\b|procent)")
        .expect("valid percent pattern")
});
/// An amount next to a currency sign, code or word.
static PRICE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:[$€£¥]|\b(?:eur|usd|gbp|czk|chf|kč|kc)\b)\s?(\d[\d.,\u{a0} ]*\d|\d)|(\d[\d.,\u{a0} ]*\d|\d)\s?(?:[$€£¥]|,-|\b(?:eur|euros?|usd|dollars?|gbp|pounds?|czk|kč|kc|korun[ay]?|chf|francs?)\b)",
    )
    .expect("valid price pattern")
});
/// The redaction markers, and placeholders like them (`[phone_number]`, `[Email address]`).
static MARKER: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)\[\s*(?:phone|e-?mail|card|account|iban|number|address)[^\]]{0,30}\]")
        .expect("valid marker pattern")
});
static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d[\d.,]*\d|\d").expect("valid number pattern"));
/// A list marker at the start of a line (`1.`, `2)`): a position, not a figure.
static LIST_MARKER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*\d{1,2}[.)]\s").expect("valid list marker pattern"));

/// What the model was given, for checking the facts of its answer.
#[derive(Debug)]
pub struct Sources {
    /// Lower-cased text.
    text: String,
    /// Digit runs with their separators removed (phone numbers as digits).
    digit_runs: Vec<String>,
    /// Every number, as an amount in hundredths.
    amounts: Vec<u128>,
}

impl Sources {
    /// The sources made of `texts` (the passages and the conversation as sent).
    pub fn new<'a>(texts: impl IntoIterator<Item = &'a str>) -> Self {
        let text = texts.into_iter().collect::<Vec<_>>().join("\n");
        let digit_runs = PHONE.find_iter(&text).map(|m| digits(m.as_str())).collect();
        let amounts = NUMBER
            .find_iter(&text)
            .filter_map(|m| amount(m.as_str()))
            .collect();
        Self {
            text: text.to_lowercase(),
            digit_runs,
            amounts,
        }
    }
}

/// Whether `answer` only repeats the customer's `message` (small models echo what they cannot
/// answer: "Kdy mi přijde zásilka?" for "Kdy mi přijde zásilka?"): its first line is the message
/// again, or it ends with a question mark and at least 60 % of its words start like words of the
/// message.
pub fn echoes(answer: &str, message: &str) -> bool {
    let stem = |w: &String| w.chars().take(4).collect::<String>();
    let asked: Vec<String> = tokens(message).iter().map(stem).collect();
    let first_line = answer.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    if !asked.is_empty()
        && tokens(first_line)
            .iter()
            .map(stem)
            .eq(asked.iter().cloned())
    {
        return true;
    }
    let said: Vec<String> = tokens(answer).iter().map(stem).collect();
    if !answer.trim_end().ends_with(['?', '？']) || said.is_empty() {
        return false;
    }
    let repeated = said.iter().filter(|w| asked.contains(w)).count();
    repeated * 10 >= said.len() * 6
}

/// Compiles the patterns (they are otherwise compiled on first use).
pub fn prepare() {
    for pattern in [
        &JSON_LIKE,
        &FORMAT_WORDS,
        &ROLE_LABEL,
        &INSTRUCTION,
        &EMAIL,
        &LINK,
        &PHONE,
        &PRICE,
        &PERCENT,
        &MARKER,
        &NUMBER,
        &LIST_MARKER,
    ] {
        LazyLock::force(pattern);
    }
    super::output::prepare();
}

/// Checks `answer` (already cleaned); `link_hosts` are the allowed hosts (lower case).
pub fn check(answer: &str, sources: &Sources, link_hosts: &[String]) -> Result<(), Rejection> {
    if JSON_LIKE.is_match(answer) || FORMAT_WORDS.is_match(answer) {
        return Err(Rejection::Unsafe("action"));
    }
    if ROLE_LABEL.is_match(answer) || INSTRUCTION.is_match(answer) {
        return Err(Rejection::Unsafe("instruction"));
    }
    if MARKER.is_match(answer) {
        return Err(Rejection::Unverified("redacted value"));
    }
    for email in EMAIL.find_iter(answer) {
        if !sources.text.contains(&email.as_str().to_lowercase()) {
            return Err(Rejection::Unverified("e-mail address"));
        }
    }
    let without_emails = EMAIL.replace_all(answer, " ");
    for link in LINK.find_iter(&without_emails) {
        let link = link
            .as_str()
            .trim_end_matches(['.', ',', '!', '?', ';', ':']);
        if !host_allowed(link, link_hosts) || !sources.text.contains(&link.to_lowercase()) {
            return Err(Rejection::Unverified("link"));
        }
    }
    for phone in PHONE.find_iter(answer) {
        let wanted = digits(phone.as_str());
        if !sources.digit_runs.iter().any(|run| run.contains(&wanted)) {
            return Err(Rejection::Unverified("phone number"));
        }
    }
    for price in PRICE.captures_iter(answer) {
        let value = price
            .get(1)
            .or_else(|| price.get(2))
            .and_then(|m| amount(m.as_str()));
        if value.is_none_or(|v| !sources.amounts.contains(&v)) {
            return Err(Rejection::Unverified("price"));
        }
    }
    for percent in PERCENT.captures_iter(answer) {
        let value = percent.get(1).and_then(|m| amount(m.as_str()));
        if value.is_none_or(|v| !sources.amounts.contains(&v)) {
            return Err(Rejection::Unverified("percentage"));
        }
    }
    // Any other figure (days, hours, counts): links were checked whole above.
    let plain = LINK.replace_all(&without_emails, " ");
    let plain = LIST_MARKER.replace_all(&plain, " ");
    for number in NUMBER.find_iter(&plain) {
        if amount(number.as_str()).is_none_or(|v| !sources.amounts.contains(&v)) {
            return Err(Rejection::Unverified("number"));
        }
    }
    Ok(())
}

/// Whether the link's host is `host` or one of its subdomains, for a host of `allowed`.
fn host_allowed(link: &str, allowed: &[String]) -> bool {
    let rest = link.split_once("://").map_or(link, |(_, rest)| rest);
    let host = rest
        .split(['/', '?', '#', ':'])
        .next()
        .unwrap_or_default()
        .to_lowercase();
    allowed
        .iter()
        .any(|a| host == *a || host.ends_with(&format!(".{a}")))
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A number as hundredths: `12.50`, `12,50` and `12.5` are 1250; `1,000` and `1 000` are 100000.
fn amount(text: &str) -> Option<u128> {
    let text: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    let text = text.trim_end_matches(['.', ',']);
    let (whole, cents) = match text.rfind(['.', ',']) {
        Some(i) if (1..=2).contains(&(text.len() - i - 1)) => {
            let cents = &text[i + 1..];
            let cents = if cents.len() == 1 {
                format!("{cents}0")
            } else {
                cents.to_string()
            };
            (&text[..i], cents)
        }
        _ => (text, "00".to_string()),
    };
    let whole = digits(whole);
    format!("{whole}{cents}").parse().ok()
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
