//! Negations: words that negate what follows them in a clause ("no need for a human"), and
//! refusals, the narrower cues that say the customer does not want what follows ("I don't want
//! to return anything").

use super::Phrase;

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

    fn of<'a>(built_in: &[&'a str], extra: impl IntoIterator<Item = &'a str>) -> Self {
        let phrases = built_in
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
    pub(super) fn is_word(&self, word: &str) -> bool {
        self.0
            .iter()
            .any(|cue| cue.words.len() == 1 && cue.is(word, &cue.words[0]))
    }

    /// Whether a negation ends within [`NEGATION_REACH`] words before the end of `before`.
    pub(super) fn precede(&self, before: &[String]) -> bool {
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
