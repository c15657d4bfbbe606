//! The model's text made fit for a chat message, before it is checked ([`super::verify`]):
//! - reasoning removed: `<think>…</think>` blocks, an unclosed `<think>` and everything after
//!   it, and everything before a `</think>` that has no opening tag (chat templates that put the
//!   opening tag in the prompt); chat-template tokens such as `<|im_end|>`;
//! - an echo of the prompt's reference list (a line starting `[2] (faq.md)` and all after it:
//!   small models continue the prompt's format instead of answering);
//! - terminal escape sequences, control characters (a line break stays, a tab becomes a space),
//!   bidirectional-text controls and invisible zero-width characters removed;
//! - markdown links written out as `text (url)`, so the link check sees every URL; bold and
//!   heading marks (`**`, `__`, `# `) removed: the chat shows plain text;
//! - at most `max_chars` characters, cut after the last whole sentence that fits (a point
//!   between digits, as in `12.50`, ends no sentence), else after the last whole word with `…`;
//!   an answer the token limit cut in the middle of a sentence ends at its last whole sentence.

use std::sync::LazyLock;

use regex::Regex;

const OPEN: &str = "<think>";
const CLOSE: &str = "</think>";

/// Markdown emphasis and heading marks.
static MARKDOWN_MARKS: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)\*\*|__|^\s{0,3}#{1,6}\s+").expect("valid marks pattern"));
/// A reference header as the prompt lists passages: `[2] (faq.md)`.
static PROMPT_ECHO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"(?m)^\s*\[\d{1,2}\]\s*\(").expect("valid echo pattern"));
static TEMPLATE_TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"<\|[^|<>]{1,40}\|>").expect("valid token pattern"));
/// ANSI/VT escape sequences: CSI (`ESC [ … final`), OSC (`ESC ] … BEL|ESC \`) and two-byte ones.
static ESCAPE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])")
        .expect("valid escape pattern")
});
static MARKDOWN_LINK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\[([^\]\n]{0,200})\]\(\s*<?([^)\s>]{1,500})>?(?:\s+[^)]*)?\)|<(https?://[^>\s]{1,500})>",
    )
    .expect("valid link pattern")
});

/// Compiles the patterns (they are otherwise compiled on first use).
pub fn prepare() {
    for pattern in [
        &PROMPT_ECHO,
        &TEMPLATE_TOKEN,
        &ESCAPE,
        &MARKDOWN_LINK,
        &MARKDOWN_MARKS,
    ] {
        LazyLock::force(pattern);
    }
}

/// The text as the customer may get it, or `None` when nothing is left.
pub fn clean(text: &str, max_chars: usize) -> Option<String> {
    let mut text = without_reasoning(text);
    if let Some(echo) = PROMPT_ECHO.find(&text) {
        text.truncate(echo.start());
    }
    let text = TEMPLATE_TOKEN.replace_all(&text, "");
    let text = ESCAPE.replace_all(&text, "");
    let text: String = text.chars().filter_map(printable).collect();
    let text = MARKDOWN_LINK.replace_all(&text, |c: &regex::Captures| match (c.get(1), c.get(2)) {
        (Some(label), Some(url)) if label.as_str().trim().is_empty() => url.as_str().to_string(),
        (Some(label), Some(url)) => format!("{} ({})", label.as_str().trim(), url.as_str()),
        _ => c
            .get(3)
            .map_or(String::new(), |url| url.as_str().to_string()),
    });
    let text = MARKDOWN_MARKS.replace_all(&text, "");
    let text = tidy_lines(&text);
    if text.is_empty() {
        return None;
    }
    Some(shorten(&whole_sentences(&text), max_chars))
}

/// `text` up to its last sentence end, when it stops in the middle of a later sentence (the
/// model ran out of tokens); unchanged when it has no sentence end at all.
fn whole_sentences(text: &str) -> String {
    let last = text.chars().last();
    if last.is_none_or(|c| matches!(c, '.' | '!' | '?' | '…' | '。' | '！' | '？' | ')' | '"'))
    {
        return text.to_string();
    }
    text.char_indices()
        .rev()
        .find(|&(i, c)| ends_sentence(text, i, c))
        .map_or_else(
            || text.to_string(),
            |(i, c)| text[..i + c.len_utf8()].to_string(),
        )
}

/// `text` without reasoning blocks.
fn without_reasoning(text: &str) -> String {
    // A closing tag without an opening one: the reasoning began in the prompt.
    let mut text = match (text.find(OPEN), text.rfind(CLOSE)) {
        (None, Some(close)) => text[close + CLOSE.len()..].to_string(),
        (Some(open), Some(close)) if close < open => text[close + CLOSE.len()..].to_string(),
        _ => text.to_string(),
    };
    while let Some(start) = text.find(OPEN) {
        let end = text[start..]
            .find(CLOSE)
            .map_or(text.len(), |e| start + e + CLOSE.len());
        text.replace_range(start..end, "");
    }
    if let Some(close) = text.rfind(CLOSE) {
        text.replace_range(..close + CLOSE.len(), "");
    }
    text
}

/// The character as sent: `None` for control, bidi and zero-width characters.
fn printable(c: char) -> Option<char> {
    match c {
        '\n' => Some('\n'),
        '\t' => Some(' '),
        c if c.is_control() => None,
        // Bidirectional-text controls (Trojan-source style reordering).
        '\u{061C}'
        | '\u{200E}'
        | '\u{200F}'
        | '\u{202A}'..='\u{202E}'
        | '\u{2066}'..='\u{2069}' => None,
        // Zero-width and invisible formatting characters.
        '\u{00AD}' | '\u{200B}'..='\u{200D}' | '\u{2060}'..='\u{2064}' | '\u{FEFF}' => None,
        c => Some(c),
    }
}

/// Lines trimmed, runs of spaces collapsed, at most one blank line in a row.
fn tidy_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank = false;
    for line in text.lines() {
        let line = line
            .split(' ')
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        if line.is_empty() {
            blank = !out.is_empty();
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank { "\n\n" } else { "\n" });
        }
        blank = false;
        out.push_str(&line);
    }
    out
}

/// At most `max_chars` characters: after the last whole sentence that fits (in its second
/// half), else after the last whole word, with `…`.
fn shorten(text: &str, max_chars: usize) -> String {
    let Some((cut, _)) = text.char_indices().nth(max_chars) else {
        return text.to_string();
    };
    let sentence_end = text[..cut]
        .char_indices()
        .rev()
        .find(|&(i, c)| ends_sentence(text, i, c))
        .map(|(i, c)| i + c.len_utf8())
        .filter(|end| *end >= cut / 2);
    match sentence_end {
        Some(end) => text[..end].to_string(),
        None => {
            // The cut falls inside a word unless the next character is a space.
            let whole = text[cut..].starts_with(char::is_whitespace);
            let end = if whole {
                cut
            } else {
                text[..cut].rfind(char::is_whitespace).unwrap_or(cut)
            };
            format!("{}…", text[..end].trim_end())
        }
    }
}

/// Whether `c` at byte `i` of `text` ends a sentence: a sentence mark followed by white space
/// or the end of the text (so not the point of `12.50`, `example.com` or `e.g.x`).
fn ends_sentence(text: &str, i: usize, c: char) -> bool {
    if !matches!(c, '.' | '!' | '?' | '。' | '！' | '？') {
        return false;
    }
    let next = text[i + c.len_utf8()..].chars().next();
    matches!(c, '。' | '！' | '？') || next.is_none_or(char::is_whitespace)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_cut_after_the_last_sentence_that_fits() {
        assert_eq!(clean("  Hello.  ", 100).as_deref(), Some("Hello."));
        let long = "First sentence here. Second sentence is a lot longer than the first one.";
        assert_eq!(clean(long, 40).as_deref(), Some("First sentence here."));
        assert_eq!(
            clean("one two three four five six", 12).as_deref(),
            Some("one two…")
        );
    }

    #[test]
    fn a_decimal_point_or_a_domain_never_ends_a_sentence_at_the_cut() {
        let text = "Shipping within the EU costs 12.50 EUR per parcel and takes three days.";
        assert_eq!(
            clean(text, 40).as_deref(),
            Some("Shipping within the EU costs 12.50 EUR…")
        );
        assert_eq!(
            clean("It costs 12.50 EUR. Shipping is free above 100 EUR.", 36).as_deref(),
            Some("It costs 12.50 EUR.")
        );
    }

    #[test]
    fn reasoning_is_removed_with_or_without_its_opening_tag() {
        assert_eq!(clean("<think>hmm</think>  ", 100), None);
        assert_eq!(
            clean("<think>plan</think>Sure, here it is.", 100).as_deref(),
            Some("Sure, here it is.")
        );
        assert_eq!(
            clean("The user wants X. I will say Y.</think>\n\nY.", 100).as_deref(),
            Some("Y.")
        );
        assert_eq!(
            clean("Answer.<think>unfinished", 100).as_deref(),
            Some("Answer.")
        );
        assert_eq!(clean("Hi!<|im_end|>", 100).as_deref(), Some("Hi!"));
    }

    #[test]
    fn an_answer_cut_by_the_token_limit_ends_at_its_last_whole_sentence() {
        assert_eq!(
            clean("It costs 12.50 EUR. There are other countries such as", 200).as_deref(),
            Some("It costs 12.50 EUR.")
        );
        assert_eq!(clean("Sure thing", 200).as_deref(), Some("Sure thing"));
    }

    #[test]
    fn an_echo_of_the_reference_list_is_cut_off() {
        assert_eq!(
            clean(
                "It costs 12.50 EUR.\n[3] (shipping.md) # Shipping\n\nMore.",
                200
            )
            .as_deref(),
            Some("It costs 12.50 EUR.")
        );
        assert_eq!(clean("[1] (faq.md) We ship.", 200), None);
        assert_eq!(
            clean("See point [2] (the second one).", 200).as_deref(),
            Some("See point [2] (the second one).")
        );
    }

    #[test]
    fn control_escape_bidi_and_invisible_characters_are_removed() {
        assert_eq!(
            clean(
                "Your parcel\u{7} is on\u{1b}[31m its way\u{202e}.\u{200b}",
                100
            )
            .as_deref(),
            Some("Your parcel is on its way.")
        );
        assert_eq!(
            clean("a\tb\r\n\n\n\nc\u{0}", 100).as_deref(),
            Some("a b\n\nc")
        );
        assert_eq!(clean("\u{1b}]0;title\u{7}\u{2066}\u{2069}", 100), None);
    }

    #[test]
    fn bold_and_heading_marks_are_removed() {
        assert_eq!(
            clean("## Returns\n**Free** returns within __30 days__.", 200).as_deref(),
            Some("Returns\nFree returns within 30 days.")
        );
    }

    #[test]
    fn markdown_links_are_written_out() {
        assert_eq!(
            clean(
                "See [our help](https://shop.example.com/help) or <https://x.example/a>.",
                200
            )
            .as_deref(),
            Some("See our help (https://shop.example.com/help) or https://x.example/a.")
        );
    }
}
