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

use std::collections::HashSet;

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

    fn contains(&self, word: &str) -> bool {
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
const CLAUSE_WORDS: &[&str] = &[
    "but", "aber", "sondern", "pero", "sino", "mais", "ale", "ma",
];

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
    joined: String,
    meaningful: usize,
}

impl Words {
    /// Normalises `text`.
    pub fn new(text: &str, filler: &Filler) -> Self {
        let (all, clauses) = clause_tokens(text);
        let meaningful = all.iter().filter(|w| !filler.contains(w)).count();
        let joined = all.join(" ");
        Self {
            all,
            clauses,
            joined,
            meaningful,
        }
    }

    /// The words, in order.
    pub fn all(&self) -> &[String] {
        &self.all
    }

    /// The words of each clause, with their positions in [`Words::all`].
    fn clause_ranges(&self) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
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

    /// How many words are not filler words.
    pub fn meaningful(&self) -> usize {
        self.meaningful
    }

    fn has(&self, word: &str) -> bool {
        self.all.iter().any(|w| same_word(w, word))
    }
}

/// A question, keyword or phrase from the playbook, ready for matching.
#[derive(Debug, Clone)]
pub struct Phrase {
    words: Vec<String>,
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
            words,
            joined,
            unspaced_script,
            verbatim: true,
        }
    }

    /// Whether `token` (from a message) is the phrase's word `word`.
    fn is(&self, token: &str, word: &str) -> bool {
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
        let (t, w): (Vec<char>, Vec<char>) = (token.chars().collect(), word.chars().collect());
        let with_ending =
            w.len() >= 4 && t.len() > w.len() && t.len() - w.len() <= 3 && t.starts_with(&w);
        let typo = w.len() >= 6 && t.len().abs_diff(w.len()) <= 1 && {
            let (short, long) = if t.len() <= w.len() {
                (&t, &w)
            } else {
                (&w, &t)
            };
            within_one_edit(short, long)
        };
        with_ending || typo
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
        let mut found = Vec::new();
        for range in text.clause_ranges() {
            let clause = &text.all[range.clone()];
            let positions: Option<Vec<usize>> = self
                .words
                .iter()
                .map(|w| clause.iter().position(|t| self.is(t, w)))
                .collect();
            let Some(positions) = positions else {
                continue;
            };
            let start = positions.iter().copied().min().unwrap_or(0);
            let end = positions.iter().copied().max().unwrap_or(0);
            if max_span.is_some_and(|max| end - start + 1 > max) {
                continue;
            }
            let inside = &clause[start..=end];
            let own = |word: &String| self.words.iter().any(|w| self.is(word, w));
            let negated = negations.precede(&clause[..start])
                || inside.iter().any(|w| !own(w) && negations.is_word(w));
            found.push(Occurrence {
                start: range.start + start,
                end: range.start + end,
                words: self.words.len(),
                negated,
            });
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
        if self.words.iter().all(|w| text.has(w)) {
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

/// Built-in negation words (the playbook can add more: `matching.negations`).
const NEGATIONS: &[&str] = &[
    // "don't" is split into "don" and "t" like every word with an apostrophe.
    "no",
    "not",
    "don",
    "doesn",
    "didn",
    "isn",
    "wasn",
    "never",
    "without",
    "nobody",
    "nothing",
    "nicht",
    "kein",
    "ohne",
    "nie",
    "niemals",
    "niemand", // German
    "sin",
    "nunca",
    "ni",
    "tampoco",
    "nadie", // Spanish
    "non",
    "pas",
    "sans",
    "jamais", // French
    "ne",
    "bez",
    "nechci",
    "nepotrebuji",
    "nepotrebuju",
    "nikdy", // Czech
];
/// How many words before a phrase a negation still reaches.
const NEGATION_REACH: usize = 6;

/// Words that negate what follows them in a clause.
#[derive(Debug, Clone)]
pub struct Negations(Vec<Phrase>);

impl Negations {
    /// The built-in negation words plus `extra`.
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        let phrases = NEGATIONS
            .iter()
            .copied()
            .chain(extra)
            .map(Phrase::verbatim)
            .filter(|p| !p.is_empty())
            .collect();
        Self(phrases)
    }

    /// Whether `word` is a one-word negation ("it doesn't work": the `doesn` between "it" and
    /// "work").
    fn is_word(&self, word: &str) -> bool {
        self.0
            .iter()
            .any(|cue| cue.words.len() == 1 && cue.is(word, &cue.words[0]))
    }

    /// Whether a negation ends within [`NEGATION_REACH`] words before the end of `before`.
    fn precede(&self, before: &[String]) -> bool {
        let from = before.len().saturating_sub(NEGATION_REACH);
        (from..before.len()).any(|end| {
            self.0.iter().any(|cue| {
                let n = cue.words.len();
                end + 1 >= n
                    && before[end + 1 - n..=end]
                        .iter()
                        .zip(&cue.words)
                        .all(|(t, w)| cue.is(t, w))
            })
        })
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

/// The patterns of one knowledge-base entry.
#[derive(Debug, Clone)]
pub struct EntryPatterns {
    pub questions: Vec<Phrase>,
    pub keywords: Vec<Phrase>,
}

/// The best knowledge-base entry for a message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Index of the entry.
    pub index: usize,
    /// Its score: 1 for a keyword, the question coverage otherwise.
    pub score: f64,
}

/// Finds the entry that best matches any of `texts` with at least `threshold`. Ties go to the
/// entry with more matched words, then to the earlier entry.
pub fn best_match(entries: &[EntryPatterns], texts: &[Words], threshold: f64) -> Option<Match> {
    let mut best: Option<(Match, usize)> = None;
    for (index, entry) in entries.iter().enumerate() {
        for text in texts {
            let keyword = entry
                .keywords
                .iter()
                .filter(|k| k.found_in(text))
                .map(|k| (1.0, k.words.len()));
            let questions = entry.questions.iter().map(|q| q.coverage(text));
            for (score, found) in keyword.chain(questions) {
                if score + f64::EPSILON < threshold {
                    continue;
                }
                let better = best.is_none_or(|(b, b_found)| {
                    score > b.score + f64::EPSILON
                        || ((score - b.score).abs() <= f64::EPSILON && found > b_found)
                });
                if better {
                    best = Some((Match { index, score }, found));
                }
            }
        }
    }
    best.map(|(m, _)| m)
}

#[cfg(test)]
#[path = "matching_tests.rs"]
mod tests;
