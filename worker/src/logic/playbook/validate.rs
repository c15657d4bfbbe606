//! Parsing and checking a playbook file, and compiling it into a [`Playbook`].
//!
//! Syntax and shape errors come from the `toml` crate (with the span of the offending text);
//! semantic checks (empty texts, thresholds out of range, unknown placeholders, duplicate ids,
//! rules that do nothing, ...) are all collected, so one run reports every problem, each with
//! its file, line and column.

use std::ops::Range;

use super::Playbook;
use super::format::{PlaybookFile, Text};
use super::matching::{Filler, Phrase};

/// One thing wrong with a playbook, located in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// What is wrong.
    pub message: String,
    /// The text of the offending line.
    pub source_line: String,
    /// How many characters of the line are marked (at least 1).
    pub width: usize,
}

/// Why a playbook cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PlaybookError {
    /// The file could not be read.
    #[error("cannot read playbook {path}: {source}")]
    Read {
        path: String,
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid playbook; every problem found is listed.
    #[error("{}", render(file, problems))]
    Invalid {
        file: String,
        problems: Vec<Problem>,
    },
}

fn render(file: &str, problems: &[Problem]) -> String {
    let count = problems.len();
    let mut out = format!(
        "playbook {file} is invalid ({count} problem{}):",
        if count == 1 { "" } else { "s" }
    );
    for p in problems {
        let number = p.line.to_string();
        let pad = " ".repeat(number.len());
        out.push_str(&format!(
            "\n{file}:{}:{}: {}\n{pad} |\n{number} | {}\n{pad} | {}{}",
            p.line,
            p.column,
            p.message,
            p.source_line,
            " ".repeat(p.column.saturating_sub(1)),
            "^".repeat(p.width.max(1)),
        ));
    }
    out
}

/// Parses and checks `source`; `file` names it in errors.
pub fn parse(file: &str, source: &str) -> Result<Playbook, PlaybookError> {
    let mut checker = Checker {
        source,
        problems: Vec::new(),
        default_language: "en".to_string(),
    };
    let parsed = match toml::from_str::<PlaybookFile>(source) {
        Ok(parsed) => Some(parsed),
        Err(err) => {
            let span = err.span().unwrap_or(0..0);
            checker.report(span, err.message().trim().to_string());
            None
        }
    };
    let playbook = parsed.map(|parsed| checker.compile(parsed));
    checker.problems.sort_by_key(|p| (p.line, p.column));
    match playbook {
        Some(playbook) if checker.problems.is_empty() => Ok(playbook),
        _ => Err(PlaybookError::Invalid {
            file: file.to_string(),
            problems: checker.problems,
        }),
    }
}

/// Collects the problems of one playbook file, located by the spans of the parsed values.
pub(super) struct Checker<'a> {
    pub(super) source: &'a str,
    pub(super) problems: Vec<Problem>,
    /// `[languages] default` (normalised), once read.
    pub(super) default_language: String,
}

impl Checker<'_> {
    pub(super) fn report(&mut self, span: Range<usize>, message: impl Into<String>) {
        let start = floor_char_boundary(self.source, span.start);
        let line_start = self.source[..start].rfind('\n').map_or(0, |i| i + 1);
        let line_end = self.source[start..]
            .find('\n')
            .map_or(self.source.len(), |i| start + i);
        let source_line = self.source[line_start..line_end].trim_end_matches('\r');
        let end = floor_char_boundary(self.source, span.end.clamp(start, line_end));
        self.problems.push(Problem {
            line: self.source[..start].matches('\n').count() + 1,
            column: self.source[line_start..start].chars().count() + 1,
            message: message.into(),
            source_line: source_line.to_string(),
            width: self.source[start..end].chars().count().max(1),
        });
    }

    /// A required text: not blank, only `allowed` placeholders.
    pub(super) fn text(&mut self, text: &Text, field: &str, allowed: &[&str]) -> String {
        let value = text.get_ref();
        if value.trim().is_empty() {
            self.report(
                text.span(),
                format!("`{field}` is empty (remove the key to send nothing)"),
            );
        }
        for name in placeholders(value) {
            if !allowed.contains(&name) {
                let hint = if allowed.is_empty() {
                    "no placeholders are available here".to_string()
                } else {
                    let list: Vec<String> = allowed.iter().map(|a| format!("{{{a}}}")).collect();
                    format!("available: {}", list.join(", "))
                };
                self.report(
                    text.span(),
                    format!("`{field}` uses the unknown placeholder `{{{name}}}` ({hint})"),
                );
            }
        }
        value.clone()
    }

    pub(super) fn optional(
        &mut self,
        text: &Option<Text>,
        field: &str,
        allowed: &[&str],
    ) -> Option<String> {
        text.as_ref().map(|t| self.text(t, field, allowed))
    }

    /// Phrases that must each contain at least one word.
    pub(super) fn phrases(&mut self, list: &[Text], field: &str, filler: &Filler) -> Vec<Phrase> {
        self.checked_phrases(list, field, |text| Phrase::new(text, filler))
    }

    /// `list` made into phrases by `build`; an entry without any word is reported.
    pub(super) fn checked_phrases(
        &mut self,
        list: &[Text],
        field: &str,
        build: impl Fn(&str) -> Phrase,
    ) -> Vec<Phrase> {
        list.iter()
            .map(|text| {
                let phrase = build(text.get_ref());
                if phrase.is_empty() {
                    self.report(
                        text.span(),
                        format!("`{field}` contains an entry without any word; it can never match"),
                    );
                }
                phrase
            })
            .collect()
    }

    pub(super) fn integer(
        &mut self,
        value: &toml::Spanned<i64>,
        field: &str,
        range: Range<i64>,
    ) -> i64 {
        let n = *value.get_ref();
        if !range.contains(&n) {
            self.report(
                value.span(),
                format!(
                    "`{field}` must be between {} and {}, got {n}",
                    range.start,
                    range.end - 1
                ),
            );
        }
        n.clamp(range.start, range.end - 1)
    }
}

/// The `{name}` placeholders in `text`.
fn placeholders(text: &str) -> Vec<&str> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        rest = &rest[open + 1..];
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        if end > 0 && rest[end..].starts_with('}') {
            found.push(&rest[..end]);
        }
    }
    found
}

fn floor_char_boundary(text: &str, index: usize) -> usize {
    let mut index = index.min(text.len());
    while !text.is_char_boundary(index) {
        index -= 1;
    }
    index
}

/// Fills the `{name}` placeholders of a checked template in one pass (values are inserted
/// verbatim, so a value containing `{url}` is not expanded again).
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| (*v, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
#[path = "validate_tests.rs"]
mod tests;
