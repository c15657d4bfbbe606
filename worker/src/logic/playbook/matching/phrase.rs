//! Phrases from the playbook (questions, keywords, escalation phrases, closing answers,
//! intents) and where they occur in a customer's text.

use super::Filler;
use super::{Negations, Words, is_unspaced_script, key, same_word, tokens, within_one_edit};

/// A question, keyword or phrase from the playbook, ready for matching.
#[derive(Debug, Clone)]
pub struct Phrase {
    pub(super) words: Vec<String>,
    /// The [`key`] of each word.
    keys: Vec<u16>,
    joined: String,
    unspaced_script: bool,
    /// Verbatim phrases match a message's word only when it is the phrase's word, that word
    /// with an ending (`kein` / `keinen`) or with one typo: a shorter word never matches
    /// (`good` is not `goodbye`).
    verbatim: bool,
}

impl Phrase {
    /// The meaningful words of `text` (all its words if every one is a filler word).
    pub fn new(text: &str, filler: &Filler) -> Self {
        let all = tokens(text);
        let meaningful: Vec<String> = all
            .iter()
            .filter(|w| !filler.contains(w))
            .cloned()
            .collect();
        let words = if meaningful.is_empty() {
            all
        } else {
            meaningful
        };
        let joined = words.join(" ");
        let unspaced_script = joined.chars().any(is_unspaced_script);
        Self {
            keys: words.iter().map(|w| key(w)).collect(),
            words,
            joined,
            unspaced_script,
            verbatim: false,
        }
    }

    /// All words of `text`, filler words included (closing answers, intents, negations:
    /// there "no problem" must keep its "problem").
    pub fn verbatim(text: &str) -> Self {
        let words = tokens(text);
        let joined = words.join(" ");
        let unspaced_script = joined.chars().any(is_unspaced_script);
        Self {
            keys: words.iter().map(|w| key(w)).collect(),
            words,
            joined,
            unspaced_script,
            verbatim: true,
        }
    }

    /// Whether `token` (from a message) is the phrase's word `word`.
    pub(super) fn is(&self, token: &str, word: &str) -> bool {
        if !self.verbatim {
            return same_word(token, word);
        }
        if token == word
            || token
                .bytes()
                .chain(word.bytes())
                .any(|b| b.is_ascii_digit())
        {
            return token == word;
        }
        let (t, w) = if token.is_ascii() && word.is_ascii() {
            (token.len(), word.len())
        } else {
            (token.chars().count(), word.chars().count())
        };
        let with_ending = w >= 4 && t > w && t - w <= 3 && token.starts_with(word);
        with_ending || (w >= 6 && t.abs_diff(w) <= 1 && one_typo_apart(token, word))
    }

    /// Whether every word of the phrase could be in `text` (their [`key`]s are): a cheap test
    /// that rules out most phrases.
    pub(super) fn may_be_in(&self, text: &Words) -> bool {
        self.keys.iter().all(|k| text.has_key(*k))
    }

    /// Whether `words` are the phrase's words, in order.
    pub fn matches_at(&self, words: &[String]) -> bool {
        words.len() == self.words.len() && words.iter().zip(&self.words).all(|(t, w)| self.is(t, w))
    }

    /// Whether the phrase is in a script written without spaces (it also matches as a
    /// substring).
    pub fn unspaced_script(&self) -> bool {
        self.unspaced_script
    }

    /// Whether the phrase has no words at all (it could never match).
    pub fn is_empty(&self) -> bool {
        self.words.is_empty()
    }

    /// How many words the phrase has.
    pub fn len(&self) -> usize {
        self.words.len()
    }

    /// Where the phrase occurs inside single clauses of `text`: all its words in one clause,
    /// spread over at most `max_span` words (`None`: anywhere in the clause). Each occurrence
    /// says whether a negation precedes it.
    pub fn occurrences(
        &self,
        text: &Words,
        max_span: Option<usize>,
        negations: &Negations,
    ) -> Vec<Occurrence> {
        if self.is_empty() {
            return Vec::new();
        }
        // Most phrases miss a word entirely: find that out before looking clause by clause.
        let anywhere = self.may_be_in(text)
            && self
                .words
                .iter()
                .all(|w| text.all.iter().any(|t| self.is(t, w)));
        let mut found = Vec::new();
        if anywhere {
            for range in text.clause_ranges() {
                found.extend(self.in_clause(text, range, max_span, negations));
            }
        }
        if found.is_empty() && self.unspaced_script && text.joined.contains(&self.joined) {
            found.push(Occurrence {
                start: 0,
                end: 0,
                words: self.words.len(),
                negated: false,
            });
        }
        found
    }

    /// The occurrence of the phrase in the clause `range` of `text`, if all its words are
    /// there within `max_span` words.
    fn in_clause(
        &self,
        text: &Words,
        range: std::ops::Range<usize>,
        max_span: Option<usize>,
        negations: &Negations,
    ) -> Option<Occurrence> {
        let clause = &text.all[range.clone()];
        let positions: Vec<usize> = self
            .words
            .iter()
            .map(|w| clause.iter().position(|t| self.is(t, w)))
            .collect::<Option<_>>()?;
        let start = positions.iter().copied().min().unwrap_or(0);
        let end = positions.iter().copied().max().unwrap_or(0);
        if max_span.is_some_and(|max| end - start + 1 > max) {
            return None;
        }
        let own = |word: &String| self.words.iter().any(|w| self.is(word, w));
        let negated = negations.precede(&clause[..start])
            || clause[start..=end]
                .iter()
                .any(|w| !own(w) && negations.is_word(w));
        Some(Occurrence {
            start: range.start + start,
            end: range.start + end,
            words: self.words.len(),
            negated,
        })
    }

    /// Whether the phrase is in `text` and whether only negated: all its words in a clause
    /// without a negation before them is [`Found::Yes`]; found only after negations is
    /// [`Found::Negated`]; words spread over several clauses count as found (as
    /// [`Phrase::found_in`]).
    pub fn find(&self, text: &Words, negations: &Negations) -> Found {
        if !self.found_in(text) {
            return Found::No;
        }
        let occurrences = self.occurrences(text, None, negations);
        if !occurrences.is_empty() && occurrences.iter().all(|o| o.negated) {
            Found::Negated
        } else {
            Found::Yes
        }
    }

    /// Whether every word of the phrase appears in `text`.
    pub fn found_in(&self, text: &Words) -> bool {
        if self.is_empty() {
            return false;
        }
        if self.may_be_in(text) && self.words.iter().all(|w| text.has(w)) {
            return true;
        }
        self.unspaced_script && text.joined.contains(&self.joined)
    }

    /// The share of the phrase's words found in `text` (0..=1), and how many were found.
    pub fn coverage(&self, text: &Words) -> (f64, usize) {
        if self.is_empty() {
            return (0.0, 0);
        }
        if self.unspaced_script && text.joined.contains(&self.joined) {
            return (1.0, self.words.len());
        }
        let found = self.words.iter().filter(|w| text.has(w)).count();
        (found as f64 / self.words.len() as f64, found)
    }
}

/// Whether a phrase was found in a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Found {
    No,
    Yes,
    /// Only after a negation ("no need for a human").
    Negated,
}

/// One place where a phrase occurs inside a clause.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Occurrence {
    /// Position of its first and last word in the message.
    pub start: usize,
    pub end: usize,
    /// How many words the phrase has.
    pub words: usize,
    /// Whether a negation precedes it in its clause.
    pub negated: bool,
}

impl Occurrence {
    /// Whether a longer occurrence covers this one ("no" inside "no problem").
    pub fn covered_by(&self, other: &Occurrence) -> bool {
        other.words > self.words && other.start <= self.start && self.end <= other.end
    }
}

/// Whether two words of about the same length differ by one typo (letters compared as bytes
/// for ASCII words, which saves allocating on the hot path).
fn one_typo_apart(a: &str, b: &str) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.is_ascii() && long.is_ascii() {
        within_one_edit(short.as_bytes(), long.as_bytes())
    } else {
        let (short, long): (Vec<char>, Vec<char>) =
            (short.chars().collect(), long.chars().collect());
        let (short, long) = if short.len() <= long.len() {
            (short, long)
        } else {
            (long, short)
        };
        within_one_edit(&short, &long)
    }
}
