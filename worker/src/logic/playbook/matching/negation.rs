//! Negations: words that negate what follows them in a clause ("no need for a human"), and
//! refusals, the narrower cues that say the customer does not want what follows ("I don't want
//! to return anything").
//!
//! A negation's reach ends at a later request verb ("no quiero un bot quiero un humano": the
//! second "quiero" starts a new request even without a comma; "no I want a human"), and a
//! negation after a question word is rhetorical ("why is there no human I can talk to?").

use std::collections::HashMap;

use super::{Phrase, Words, key};

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
/// How many words after its object a refusal may follow ("operátora taky nepotřebuju").
const FOLLOW_REACH: usize = 3;

/// Words that negate what follows them in a clause.
#[derive(Debug, Clone, Default)]
pub struct Negations {
    cues: CueList,
    /// Request verbs: a negation does not reach past one that does not directly follow it.
    breakers: CueList,
    /// Question words: a negation after one in its clause is rhetorical.
    rhetorical: CueList,
}

/// Cue phrases indexed by the key of their first and of their last word: at a position of a
/// message only the cues that can start or end there are compared.
#[derive(Debug, Clone, Default)]
struct CueList {
    phrases: Vec<Phrase>,
    by_first: HashMap<u16, Vec<u32>>,
    by_last: HashMap<u16, Vec<u32>>,
}

impl CueList {
    fn new(phrases: Vec<Phrase>) -> Self {
        let mut by_first: HashMap<u16, Vec<u32>> = HashMap::new();
        let mut by_last: HashMap<u16, Vec<u32>> = HashMap::new();
        for (index, phrase) in phrases.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if let (Some(first), Some(last)) = (phrase.words.first(), phrase.words.last()) {
                by_first.entry(key(first)).or_default().push(index);
                by_last.entry(key(last)).or_default().push(index);
            }
        }
        Self {
            phrases,
            by_first,
            by_last,
        }
    }

    /// The cues indexed under `word`'s key in `index`.
    fn lookup<'a>(
        &'a self,
        index: &'a HashMap<u16, Vec<u32>>,
        word: &str,
    ) -> impl Iterator<Item = &'a Phrase> + 'a {
        index
            .get(&key(word))
            .into_iter()
            .flatten()
            .filter_map(|i| self.phrases.get(*i as usize))
    }

    /// The cue that ends at position `end` of `words`, if any.
    fn ending_at(&self, words: &[String], end: usize) -> Option<&Phrase> {
        let word = words.get(end)?;
        self.lookup(&self.by_last, word)
            .find(|cue| ends_at(cue, words, end))
    }

    /// Whether a cue starts at position `start` of `words`.
    fn starts_at(&self, words: &[String], start: usize) -> bool {
        let Some(word) = words.get(start) else {
            return false;
        };
        self.lookup(&self.by_first, word)
            .any(|cue| starts_at(cue, words, start))
    }

    /// Whether `word` is a one-word cue.
    fn single(&self, word: &str) -> bool {
        self.lookup(&self.by_last, word)
            .any(|cue| cue.words.len() == 1 && cue.is(word, &cue.words[0]))
    }
}

/// Built-in refusals (the playbook can add more: `matching.refusals`): a knowledge-base keyword
/// after one of these in its clause does not count. Plain negations would be too broad there
/// ("my parcel did not arrive" is still about the parcel).
const REFUSALS: &[&str] = &[
    "don't want",
    "do not want",
    "dont want",
    "don't need",
    "do not need",
    "dont need",
    "no need",
    "not interested",
    "no quiero",
    "no necesito",
    "no hace falta",
    "will kein",
    "will nicht",
    "möchte kein",
    "möchte nicht",
    "brauche kein",
    "brauche nicht",
    "nicht nötig",
    "veux pas",
    "pas besoin",
    "nechci",
    "nepotrebuji",
    "nepotrebuju",
];

impl Negations {
    /// The built-in negation words plus `extra`.
    pub fn new<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        Self::of(NEGATIONS, extra)
    }

    /// The built-in refusals plus `extra`.
    pub fn refusals<'a>(extra: impl IntoIterator<Item = &'a str>) -> Self {
        Self::of(REFUSALS, extra)
    }

    /// No negation at all.
    pub fn none() -> Self {
        Self::default()
    }

    fn of<'a>(built_in: &[&'a str], extra: impl IntoIterator<Item = &'a str>) -> Self {
        Self {
            cues: CueList::new(phrases(built_in.iter().copied().chain(extra))),
            ..Self::default()
        }
    }

    /// The same cues, with the request verbs and question words that limit their reach.
    pub fn with_scope<'a>(
        mut self,
        breakers: impl IntoIterator<Item = &'a str>,
        rhetorical: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        self.breakers = CueList::new(phrases(breakers));
        self.rhetorical = CueList::new(phrases(rhetorical));
        self
    }

    /// Whether `word` is a one-word negation ("it doesn't work": the `doesn` between "it" and
    /// "work").
    pub(super) fn is_word(&self, word: &str) -> bool {
        self.cues.single(word)
    }

    /// Whether a negation within [`NEGATION_REACH`] words before the end of `before` (the
    /// start of a clause) reaches its end.
    pub(super) fn precede(&self, before: &[String]) -> bool {
        let from = before.len().saturating_sub(NEGATION_REACH);
        (from..before.len())
            .rev()
            .find_map(|end| {
                let cue = self.cues.ending_at(before, end)?;
                let start = end + 1 - cue.words.len();
                Some(self.reaches(before, start, end))
            })
            .unwrap_or(false)
    }

    /// Whether the negation at `start..=end` of `clause` reaches the clause's end: no later
    /// request verb (other than right after it) cuts it off, and no question word before it
    /// makes it rhetorical.
    fn reaches(&self, clause: &[String], start: usize, end: usize) -> bool {
        let rhetorical = (0..start).any(|e| self.rhetorical.ending_at(clause, e).is_some());
        if rhetorical {
            return false;
        }
        // "don't want": the verb right after the negation (past the "t" of an apostrophe) is
        // what it negates; a later one starts a new request.
        let mut next = end + 1;
        if clause.get(next).is_some_and(|w| w == "t") {
            next += 1;
        }
        !(next + 1..clause.len()).any(|e| self.breakers.ending_at(clause, e).is_some())
    }

    /// Whether `words` start with a cue ("no thanks").
    pub fn starts(&self, words: &[String]) -> bool {
        self.cues.starts_at(words, 0)
    }

    /// Whether what ends at position `end` of `text` is refused by what follows it in its
    /// clause: a cue within [`FOLLOW_REACH`] words ("operátora nepotřebuju"), or a request
    /// verb and then one of `negations` ("einen Mitarbeiter brauche ich dafür nicht").
    pub fn follows(&self, text: &Words, end: usize, negations: &Negations) -> bool {
        let all = text.all();
        let Some(clause) = text.clause_ranges().find(|r| r.contains(&end)) else {
            return false;
        };
        let clause_words = &all[clause.clone()];
        let from = end + 1 - clause.start;
        let to = (from + FOLLOW_REACH).min(clause_words.len());
        if (from..to).any(|i| self.cues.starts_at(clause_words, i)) {
            return true;
        }
        let Some(verb) = (from..to).find(|&i| self.breakers.starts_at(clause_words, i)) else {
            return false;
        };
        let to = (verb + 1 + FOLLOW_REACH).min(clause_words.len());
        (verb + 1..to).any(|i| negations.cues.starts_at(clause_words, i))
    }

    /// Which words of `text` a cue covers: the words after it in its clause, up to the
    /// reach or a later request verb.
    pub fn covered(&self, text: &Words) -> Vec<bool> {
        let all = text.all();
        let mut covered = vec![false; all.len()];
        for range in text.clause_ranges() {
            let clause = &all[range.clone()];
            for end in 0..clause.len() {
                let Some(cue) = self.cues.ending_at(clause, end) else {
                    continue;
                };
                let start = end + 1 - cue.words.len();
                if (0..start).any(|e| self.rhetorical.ending_at(clause, e).is_some()) {
                    continue;
                }
                let mut next = end + 1;
                if clause.get(next).is_some_and(|w| w == "t") {
                    next += 1;
                }
                let limit = (end + 1 + NEGATION_REACH).min(clause.len());
                for i in end + 1..limit {
                    let breaks = i > next && self.breakers.starts_at(clause, i);
                    if breaks {
                        break;
                    }
                    covered[range.start + i] = true;
                }
            }
        }
        covered
    }
}

/// Phrases made of the words of `texts` (blank ones left out).
fn phrases<'a>(texts: impl IntoIterator<Item = &'a str>) -> Vec<Phrase> {
    texts
        .into_iter()
        .map(Phrase::verbatim)
        .filter(|p| !p.is_empty())
        .collect()
}

/// Whether `cue` occurs in `words` ending at `end`.
fn ends_at(cue: &Phrase, words: &[String], end: usize) -> bool {
    let n = cue.words.len();
    end + 1 >= n
        && end < words.len()
        && words[end + 1 - n..=end]
            .iter()
            .zip(&cue.words)
            .all(|(t, w)| cue.is(t, w))
}

/// Whether `cue` occurs in `words` starting at `start`.
fn starts_at(cue: &Phrase, words: &[String], start: usize) -> bool {
    start + cue.words.len() <= words.len() && ends_at(cue, words, start + cue.words.len() - 1)
}
