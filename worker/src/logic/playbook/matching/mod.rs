//! Text matching that tolerates case, punctuation, accents, word order and small typos.
//!
//! Text is normalised (lower case, common Latin accents folded, everything but letters and digits
//! turned into spaces) and split into words. Two words are the same when they are equal, share a
//! long prefix (`deliver`/`delivered`/`deliveries`), or differ by one typo in words of six letters
//! or more; words with digits (order numbers) must be equal. Phrases match when all their words
//! appear in the message, in any order. Phrases in scripts without spaces between words (Chinese,
//! Japanese, ...) also match as substrings.
//!
//! Messages are also split into clauses (at `, . ; : ! ?` and similar marks, and before "but" in
//! several languages), so that a phrase can be looked for inside one clause and a negation
//! ("no need for a human, ...") only reaches the words after it in its own clause: see
//! [`Phrase::find`] and [`Occurrence`].

pub mod classifier;
pub mod features;
mod negation;
mod phrase;
mod phrase_set;

use std::collections::HashSet;

pub use negation::Negations;
pub use phrase::{Found, Occurrence, Phrase};
pub use phrase_set::PhraseSet;

/// English filler words ignored when matching (the playbook can add more: `ignore_words`).
const FILLER: &[&str] = &[
    "a", "an", "the", "is", "are", "am", "was", "were", "be", "been", "i", "im", "me", "my", "you",
    "your", "we", "us", "our", "it", "its", "to", "of", "in", "on", "at", "for", "with", "and",
    "or", "do", "does", "did", "can", "could", "would", "will", "should", "please", "this", "that",
    "have", "has", "had", "there", "some", "any", "just", "so", "get", "got",
];

/// Words that do not count when matching.
#[derive(Debug, Clone)]
pub struct Filler(HashSet<String>);

impl Filler {
    /// The built-in filler words plus `extra` (normalised).
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let mut words: HashSet<String> = FILLER.iter().map(|w| (*w).to_string()).collect();
        for text in extra {
            words.extend(tokens(text));
        }
        Self(words)
    }

    /// Whether `word` (normalised) is a filler word.
    pub fn contains(&self, word: &str) -> bool {
        self.0.contains(word)
    }
}

/// Lower case, with common Latin accents removed and everything but letters and digits turned
/// into spaces.
pub fn normalise(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(folded) => out.push_str(folded),
            None if c.is_alphanumeric() => out.push(c),
            None => out.push(' '),
        }
    }
    out
}

/// The normalised words of `text`.
pub fn tokens(text: &str) -> Vec<String> {
    normalise(text)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn fold(c: char) -> Option<&'static str> {
    Some(match c {
        'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ą' | 'ā' => "a",
        'æ' => "ae",
        'ç' | 'č' | 'ć' => "c",
        'ď' => "d",
        'è' | 'é' | 'ê' | 'ë' | 'ě' | 'ę' | 'ē' => "e",
        'ì' | 'í' | 'î' | 'ï' | 'ī' => "i",
        'ł' | 'ľ' | 'ĺ' => "l",
        'ñ' | 'ň' | 'ń' => "n",
        'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ő' | 'ō' => "o",
        'œ' => "oe",
        'ř' | 'ŕ' => "r",
        'š' | 'ś' => "s",
        'ß' => "ss",
        'ť' => "t",
        'ù' | 'ú' | 'û' | 'ü' | 'ů' | 'ű' | 'ū' => "u",
        'ý' | 'ÿ' => "y",
        'ž' | 'ź' | 'ż' => "z",
        _ => return None,
    })
}

/// A word's first two bytes: a word matches another only when they share them (an ending,
/// a shared stem), so most phrases are ruled out without comparing a single word. (A typo in
/// the first two letters is therefore not tolerated.)
pub(crate) fn key(word: &str) -> u16 {
    let mut bytes = word.bytes();
    let first = u16::from(bytes.next().unwrap_or(0));
    let second = u16::from(bytes.next().unwrap_or(0));
    (first << 8) | second
}

/// Whether two normalised words count as the same word.
pub fn same_word(a: &str, b: &str) -> bool {
    if a == b {
        return true;
    }
    if a.bytes().chain(b.bytes()).any(|c| c.is_ascii_digit()) {
        return false;
    }
    // Compared letter by letter: bytes are letters for ASCII words (most of them), which saves
    // an allocation per comparison on the hot path.
    if a.is_ascii() && b.is_ascii() {
        similar(a.as_bytes(), b.as_bytes())
    } else {
        let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
        similar(&a, &b)
    }
}

/// [`same_word`] on letters: a long enough shared stem, or one typo in a long enough word.
fn similar<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if short.len() < 4 || long.len() - short.len() > 3 {
        return false;
    }
    let prefix = short
        .iter()
        .zip(long.iter())
        .take_while(|(x, y)| x == y)
        .count();
    if prefix >= 4 && prefix * 4 >= short.len() * 3 {
        return true;
    }
    short.len() >= 6 && within_one_edit(short, long)
}

/// Optimal string alignment distance <= 1 (one insertion, deletion, substitution or swap).
fn within_one_edit<T: PartialEq>(short: &[T], long: &[T]) -> bool {
    if long.len() - short.len() > 1 {
        return false;
    }
    let Some(first) = short.iter().zip(long.iter()).position(|(x, y)| x != y) else {
        return true; // `long` is `short` plus one trailing letter
    };
    if short.len() == long.len() {
        let swapped = first + 1 < short.len()
            && short[first] == long[first + 1]
            && short[first + 1] == long[first]
            && short[first + 2..] == long[first + 2..];
        swapped || short[first + 1..] == long[first + 1..]
    } else {
        short[first..] == long[first + 1..]
    }
}

/// Marks that end a clause.
const CLAUSE_MARKS: &[char] = &[
    ',', '.', ';', ':', '!', '?', '¿', '¡', '…', '(', ')', '\n', '–', '—', '،', '。', '，', '！',
    '？',
];
/// Words that start a new clause ("no bot, but a human": the negation stays in its clause).
const CLAUSE_WORDS: &[&str] = &["but", "aber", "sondern", "pero", "sino", "mais", "ale"];

/// The normalised words of `text` with the clause each one belongs to.
fn clause_tokens(text: &str) -> (Vec<String>, Vec<u16>) {
    let mut words = Vec::new();
    let mut clauses = Vec::new();
    let mut clause: u16 = 0;
    let mut word = String::new();
    let mut end_word = |word: &mut String, clause: &mut u16, words: &mut Vec<String>| {
        if word.is_empty() {
            return;
        }
        if CLAUSE_WORDS.contains(&word.as_str()) && !words.is_empty() {
            *clause = clause.saturating_add(1);
        }
        words.push(std::mem::take(word));
        clauses.push(*clause);
    };
    for c in text.chars() {
        if CLAUSE_MARKS.contains(&c) {
            end_word(&mut word, &mut clause, &mut words);
            clause = clause.saturating_add(1);
            continue;
        }
        for c in c.to_lowercase() {
            match fold(c) {
                Some(folded) => word.push_str(folded),
                None if c.is_alphanumeric() => word.push(c),
                None => end_word(&mut word, &mut clause, &mut words),
            }
        }
    }
    end_word(&mut word, &mut clause, &mut words);
    (words, clauses)
}

/// A customer's text, ready for matching.
#[derive(Debug, Clone)]
pub struct Words {
    all: Vec<String>,
    /// The clause of each word (same length as `all`).
    clauses: Vec<u16>,
    /// Whether each word is a filler word (same length as `all`).
    filler: Vec<bool>,
    /// The [`key`] of each word, sorted: a phrase word whose key is missing cannot match.
    keys: Vec<u16>,
    joined: String,
    meaningful: usize,
}

impl Words {
    /// Normalises `text`.
    pub fn new(text: &str, filler: &Filler) -> Self {
        let (all, clauses) = clause_tokens(text);
        let flags: Vec<bool> = all.iter().map(|w| filler.contains(w)).collect();
        let meaningful = flags.iter().filter(|f| !**f).count();
        let joined = all.join(" ");
        let mut keys: Vec<u16> = all.iter().map(|w| key(w)).collect();
        keys.sort_unstable();
        keys.dedup();
        Self {
            all,
            clauses,
            filler: flags,
            keys,
            joined,
            meaningful,
        }
    }

    /// The distinct [`key`]s of the words, sorted.
    pub(crate) fn keys(&self) -> &[u16] {
        &self.keys
    }

    /// Whether a word with this [`key`] is in the text.
    pub(crate) fn has_key(&self, key: u16) -> bool {
        self.keys.binary_search(&key).is_ok()
    }

    /// The words, in order.
    pub fn all(&self) -> &[String] {
        &self.all
    }

    /// The words of each clause, with their positions in [`Words::all`].
    pub(crate) fn clause_ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let mut start = 0;
        std::iter::from_fn(move || {
            let clause = *self.clauses.get(start)?;
            let len = self.clauses[start..]
                .iter()
                .take_while(|c| **c == clause)
                .count();
            let range = start..start + len;
            start += len;
            Some(range)
        })
    }

    /// The pieces of the text that may each be a request of their own: its clauses, cut
    /// again before every occurrence of one of `starts` ("and also", "another question").
    pub fn pieces(&self, starts: &PhraseSet) -> Vec<std::ops::Range<usize>> {
        let none = Negations::none();
        let mut cuts: Vec<usize> = starts
            .candidates(self)
            .flat_map(|p| p.occurrences(self, Some(p.len()), &none))
            .map(|o| o.start)
            .collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        for range in self.clause_ranges() {
            let mut from = range.start;
            for &cut in cuts
                .iter()
                .filter(|c| range.contains(c) && **c > range.start)
            {
                if cut > from {
                    pieces.push(from..cut);
                    from = cut;
                }
            }
            pieces.push(from..range.end);
        }
        pieces
    }

    /// How many words are not filler words.
    pub fn meaningful(&self) -> usize {
        self.meaningful
    }

    /// Whether each word of `range` is a filler word.
    pub fn filler_flags(&self, range: std::ops::Range<usize>) -> &[bool] {
        self.filler.get(range).unwrap_or_default()
    }

    /// How many words of `range` are neither filler words nor numbers.
    pub fn meaningful_in(&self, range: std::ops::Range<usize>) -> usize {
        let (Some(flags), Some(words)) = (self.filler.get(range.clone()), self.all.get(range))
        else {
            return 0;
        };
        flags
            .iter()
            .zip(words)
            .filter(|(filler, word)| !**filler && !word.bytes().any(|b| b.is_ascii_digit()))
            .count()
    }

    fn has(&self, word: &str) -> bool {
        self.all.iter().any(|w| same_word(w, word))
    }
}

/// Scripts written without spaces between words, where word matching cannot work.
fn is_unspaced_script(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF   // Hiragana, Katakana
        | 0x3400..=0x4DBF // CJK extension A
        | 0x4E00..=0x9FFF // CJK unified ideographs
        | 0xAC00..=0xD7AF // Hangul
        | 0x0E00..=0x0E7F // Thai
    )
}

#[cfg(test)]
mod tests;
