//! A list of phrases indexed by the key of their first word, so that a message is compared only
//! with the phrases that can occur in it: a playbook lists hundreds of cue phrases (requests
//! for a human, tone, presence checks, request words in five languages), a message has a dozen
//! words.

use std::collections::HashMap;

use super::{Phrase, Words, key};

/// Phrases, indexed for matching.
#[derive(Debug, Clone, Default)]
pub struct PhraseSet {
    phrases: Vec<Phrase>,
    /// Phrases by the key of their first word.
    by_key: HashMap<u16, Vec<u32>>,
    /// Phrases in scripts without spaces, which match as substrings: always candidates.
    always: Vec<u32>,
}

impl PhraseSet {
    /// Indexes `phrases` (empty ones are left out: they never match).
    pub fn new(phrases: Vec<Phrase>) -> Self {
        let phrases: Vec<Phrase> = phrases.into_iter().filter(|p| !p.is_empty()).collect();
        let mut by_key: HashMap<u16, Vec<u32>> = HashMap::new();
        let mut always = Vec::new();
        for (index, phrase) in phrases.iter().enumerate() {
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            if phrase.unspaced_script() {
                always.push(index);
            } else if let Some(first) = phrase.words.first() {
                by_key.entry(key(first)).or_default().push(index);
            }
        }
        Self {
            phrases,
            by_key,
            always,
        }
    }

    /// Every phrase.
    pub fn all(&self) -> &[Phrase] {
        &self.phrases
    }

    /// How many phrases there are.
    pub fn len(&self) -> usize {
        self.phrases.len()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.phrases.is_empty()
    }

    /// The phrases that may occur in `text`: those whose first word's key is one of the text's.
    pub fn candidates<'a>(&'a self, text: &'a Words) -> impl Iterator<Item = &'a Phrase> + 'a {
        text.keys()
            .iter()
            .filter_map(|k| self.by_key.get(k))
            .flatten()
            .chain(&self.always)
            .filter_map(|i| self.phrases.get(*i as usize))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logic::playbook::matching::Filler;

    #[test]
    fn only_phrases_whose_first_word_can_be_in_the_text_are_candidates() {
        let set = PhraseSet::new(
            ["talk to someone", "human", "人工客服", "operator", ""]
                .iter()
                .map(|p| Phrase::verbatim(p))
                .collect(),
        );
        assert_eq!(set.len(), 4);
        let text = Words::new("can I talk to a human please", &Filler::new([]));
        let found: Vec<String> = set.candidates(&text).map(|p| p.words.join(" ")).collect();
        assert!(found.contains(&"talk to someone".to_string()), "{found:?}");
        assert!(found.contains(&"human".to_string()), "{found:?}");
        assert!(
            found.contains(&"人工客服".to_string()),
            "unspaced phrases always"
        );
        assert!(!found.contains(&"operator".to_string()), "{found:?}");
    }
}
