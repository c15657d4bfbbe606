//! Making what senders control safe to print on an operator's terminal. A dead letter holds
//! text anyone who can send an event chose (the conversation id, the body, an error quoting
//! them); printed raw, an escape sequence in it could recolour or clear the screen, set the
//! window title, hide text or forge a hyperlink. Every character a terminal acts on is shown as
//! an escape instead: C0 controls (ESC, BEL, ...), DEL, C1 controls (CSI is U+009B) and the
//! bidirectional overrides that reorder what is shown.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a terminal acts on `c` rather than showing it.
fn acts_on(c: char) -> bool {
    c.is_control() || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `text` with every such character shown as `\u{…}`, line breaks and tabs included: for
/// values printed on one line (ids, reasons, errors, header values).
pub fn line(text: &str) -> Cow<'_, str> {
    escaped(text, acts_on, |out, c| {
        let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
    })
}

/// `text` with every such character shown as `\u{…}`, except line breaks and tabs: for text
/// printed as a block (an event that is not JSON).
pub fn block(text: &str) -> Cow<'_, str> {
    escaped(
        text,
        |c| acts_on(c) && c != '\n' && c != '\t',
        |out, c| {
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        },
    )
}

/// JSON text (as serde_json writes it) with the characters it leaves raw inside strings (DEL,
/// C1 controls, bidirectional overrides) written as `\uXXXX` escapes: still the same JSON.
pub fn json(text: &str) -> Cow<'_, str> {
    // serde_json already escapes C0 controls; anything else a terminal acts on can only be
    // inside a string, where a `\u` escape means the same character.
    escaped(
        text,
        |c| acts_on(c) && !matches!(c, '\n' | '\t' | '\r'),
        |out, c| {
            let _ = write!(out, "\\u{:04x}", u32::from(c));
        },
    )
}

fn escaped(
    text: &str,
    escape: impl Fn(char) -> bool,
    write: impl Fn(&mut String, char),
) -> Cow<'_, str> {
    if !text.chars().any(&escape) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if escape(c) {
            write(&mut out, c);
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_sequences_are_shown_not_acted_on() {
        assert_eq!(line("conv-\u{1b}[2J\u{7}"), "conv-\\u{1b}[2J\\u{7}");
        assert_eq!(line("a\nb\u{9b}c\u{202e}d"), "a\\u{a}b\\u{9b}c\\u{202e}d");
        assert_eq!(block("a\nb\u{1b}c\u{7f}"), "a\nb\\u{1b}c\\u{7f}");
        assert!(matches!(line("plain ünïcödé 😀"), Cow::Borrowed(_)));
    }

    #[test]
    fn json_stays_the_same_json() {
        let value = serde_json::json!({"a": "x\u{9b}y\u{7f}z\u{202e}w\u{1b}", "b": [1, "\n"]});
        let text = serde_json::to_string_pretty(&value).expect("serialises");
        let safe = json(&text);
        assert!(!safe.chars().any(|c| acts_on(c) && c != '\n'), "{safe}");
        let back: serde_json::Value = serde_json::from_str(&safe).expect("still JSON");
        assert_eq!(back, value);
    }
}
