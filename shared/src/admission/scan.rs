//! One pass over an event's bytes before anything is parsed, bounding what any later parse can
//! be made to build or choke on:
//!
//! - **Nesting**: objects and lists nest at most [`MAX_DEPTH`] levels (`400`).
//! - **Every list is bounded**: `turns` by [`MAX_TURNS`], `engagements` by
//!   [`MAX_ENGAGEMENTS`], `customer.contacts` by [`MAX_CONTACTS`], any other list anywhere by
//!   [`MAX_LIST`] (`422`, naming the list): one small request cannot make a parse build
//!   hundreds of thousands of objects.
//! - **Numbers a double can hold**: `1e400` is valid JSON text, but no parser of the event
//!   model can read it (`400`).
//! - **Lone surrogate escapes** (`"\ud83d"` without its second half, as JavaScript writes a
//!   string cut in the middle of an emoji) are found, so that both services read them as
//!   U+FFFD ([`replace_lone_surrogates`]) instead of failing the event — and, since the turn
//!   stays in the conversation's history, every later event of it.
//!
//! The insides of strings (most of an event: the messages) are skipped with a vectorised
//! search. Whether the bytes are valid JSON is the parser's concern; this pass never panics on
//! broken input.

use crate::event::EventError;

/// Most turns an event may carry.
pub const MAX_TURNS: usize = 10_000;
/// Most engagements an event may carry.
pub const MAX_ENGAGEMENTS: usize = 1_000;
/// Most contacts (`customer.contacts`) an event may carry.
pub const MAX_CONTACTS: usize = 1_000;
/// Most elements of any other list, wherever it is (custom data included).
pub const MAX_LIST: usize = 10_000;
/// Deepest nesting of objects and lists anywhere in an event (Salted CX's events nest a few
/// levels; the limit keeps every later parse, including the logic's, far from any recursion
/// limit).
pub const MAX_DEPTH: usize = 64;

/// What the pass found that the parse must know.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scan {
    /// Offsets of the backslashes of lone surrogate escapes (`\uD800`–`\uDFFF` not part of a
    /// pair).
    pub lone_surrogates: Vec<usize>,
}

/// An object or a list being read.
struct Level {
    array: bool,
    /// Commas so far (a list's elements are one more, once it has any).
    commas: usize,
    /// For an object, the byte range of its current key (without quotes).
    key: Option<(usize, usize)>,
    /// For a list, its most elements.
    limit: usize,
}

/// Scans `body` (valid UTF-8) and enforces the bounds above.
pub fn scan(body: &[u8]) -> Result<Scan, EventError> {
    let mut levels: Vec<Level> = Vec::with_capacity(16);
    let mut found = Scan::default();
    let mut at = 0usize;
    while at < body.len() {
        match body[at] {
            b'"' => {
                let start = at + 1;
                let end = skip_string(body, start, &mut found.lone_surrogates);
                if let Some(top) = levels.last_mut().filter(|l| !l.array)
                    && next_byte(body, end + 1) == Some(b':')
                {
                    top.key = Some((start, end));
                }
                at = end + 1;
                continue;
            }
            open @ (b'{' | b'[') => {
                if levels.len() >= MAX_DEPTH {
                    return Err(EventError::Malformed(format!(
                        "body is nested deeper than {MAX_DEPTH} levels of objects and lists"
                    )));
                }
                let array = open == b'[';
                let limit = if array { list_limit(&levels, body) } else { 0 };
                levels.push(Level {
                    array,
                    commas: 0,
                    key: None,
                    limit,
                });
            }
            b'}' | b']' => {
                levels.pop();
            }
            b',' => {
                if let Some(top) = levels.last_mut().filter(|l| l.array) {
                    top.commas += 1;
                    if top.commas >= top.limit {
                        let limit = top.limit;
                        return Err(EventError::Invalid(format!(
                            "invalid event: `{}` has more than {limit} elements (the most an \
                             event may carry)",
                            path(&levels, body)
                        )));
                    }
                }
            }
            b'-' | b'0'..=b'9' => {
                let end = number_end(body, at);
                check_number(body, at, end)?;
                at = end;
                continue;
            }
            _ => {}
        }
        at += 1;
    }
    Ok(found)
}

/// `body` with each lone surrogate escape at `offsets` replaced by `\ufffd` (U+FFFD, the
/// replacement character; the same length, so nothing else moves). Borrowed when there is
/// none.
pub fn replace_lone_surrogates<'a>(
    body: &'a [u8],
    offsets: &[usize],
) -> std::borrow::Cow<'a, [u8]> {
    if offsets.is_empty() {
        return std::borrow::Cow::Borrowed(body);
    }
    let mut copy = body.to_vec();
    for &at in offsets {
        if let Some(escape) = copy.get_mut(at..at + 6) {
            escape.copy_from_slice(b"\\ufffd");
        }
    }
    std::borrow::Cow::Owned(copy)
}

/// The offset of the closing quote of the string whose text starts at `start` (or the end of
/// `body`), noting lone surrogate escapes on the way.
fn skip_string(body: &[u8], start: usize, lone: &mut Vec<usize>) -> usize {
    let mut at = start;
    loop {
        let rest = body.get(at..).unwrap_or_default();
        let Some(found) = memchr::memchr2(b'"', b'\\', rest) else {
            return body.len();
        };
        at += found;
        if body[at] == b'"' {
            return at;
        }
        // A backslash: an escape of two bytes, or six for `\uXXXX`.
        if body.get(at + 1) != Some(&b'u') {
            at += 2;
            continue;
        }
        match hex_unit(body, at + 2) {
            Some(0xD800..=0xDBFF)
                if body.get(at + 6..at + 8) == Some(b"\\u")
                    && matches!(hex_unit(body, at + 8), Some(0xDC00..=0xDFFF)) =>
            {
                at += 12;
            }
            Some(0xD800..=0xDFFF) => {
                lone.push(at);
                at += 6;
            }
            Some(_) => at += 6,
            None => at += 2,
        }
    }
}

/// The UTF-16 code unit of the four hex digits at `at`, if there are four.
fn hex_unit(body: &[u8], at: usize) -> Option<u16> {
    let digits = std::str::from_utf8(body.get(at..at + 4)?).ok()?;
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u16::from_str_radix(digits, 16).ok()
}

/// The first byte at or after `at` that is not JSON whitespace.
fn next_byte(body: &[u8], at: usize) -> Option<u8> {
    body.get(at..)?
        .iter()
        .copied()
        .find(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
}

fn number_end(body: &[u8], start: usize) -> usize {
    let length = body[start..]
        .iter()
        .take_while(|b| matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
        .count();
    start + length
}

/// Refuses a number no double can hold (an exponent or hundreds of digits taking it past
/// ±1.8e308): JSON allows it, the parsers of the event model do not.
fn check_number(body: &[u8], start: usize, end: usize) -> Result<(), EventError> {
    let token = &body[start..end];
    let may_overflow = token.len() > 20 || token.iter().any(|b| matches!(b, b'e' | b'E'));
    let infinite = may_overflow
        && std::str::from_utf8(token)
            .ok()
            .and_then(|text| text.parse::<f64>().ok())
            .is_some_and(|number| number.is_infinite());
    if infinite {
        let (line, column) = position(body, start);
        return Err(EventError::Malformed(format!(
            "body is not valid JSON: a number beyond the range of a double (±1.8e308) at line \
             {line} column {column}"
        )));
    }
    Ok(())
}

/// Line and column (1-based, in bytes) of `offset`.
fn position(body: &[u8], offset: usize) -> (usize, usize) {
    let before = &body[..offset.min(body.len())];
    let line = memchr::memchr_iter(b'\n', before).count() + 1;
    let line_start = memchr::memrchr(b'\n', before).map_or(0, |at| at + 1);
    (line, offset - line_start + 1)
}

/// The most elements of a list opened inside `levels`: the documented lists by their place
/// (keys as written; the typed parse bounds them again by their decoded names).
fn list_limit(levels: &[Level], body: &[u8]) -> usize {
    let key = |level: &Level| level.key.map(|(start, end)| &body[start..end]);
    match levels {
        [root] if !root.array => match key(root) {
            Some(b"turns") => MAX_TURNS,
            Some(b"engagements") => MAX_ENGAGEMENTS,
            _ => MAX_LIST,
        },
        [root, customer]
            if !root.array
                && !customer.array
                && key(root) == Some(b"customer")
                && key(customer) == Some(b"contacts") =>
        {
            MAX_CONTACTS
        }
        _ => MAX_LIST,
    }
}

/// The path of the innermost list (`customer.contacts`, `turns[3].content`), for messages.
fn path(levels: &[Level], body: &[u8]) -> String {
    let mut path = String::new();
    for level in &levels[..levels.len().saturating_sub(1)] {
        if level.array {
            path.push_str(&format!("[{}]", level.commas));
        } else if let Some((start, end)) = level.key {
            if !path.is_empty() {
                path.push('.');
            }
            let key = String::from_utf8_lossy(&body[start..end.min(start + 64)]);
            path.extend(key.chars().filter(|c| !c.is_control()));
        }
    }
    if path.is_empty() {
        "a list".to_string()
    } else {
        path
    }
}

#[cfg(test)]
#[path = "scan_tests.rs"]
mod tests;
