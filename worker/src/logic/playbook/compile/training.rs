//! Training the classifier when the playbook loads: one class per knowledge entry and per
//! intent, and one for what the playbook cannot answer, each with the examples of the file
//! (questions, keywords, phrases) and of every language pack.

use super::packs::Packs;
use crate::logic::playbook::format::{PlaybookFile, Text};
use crate::logic::playbook::matching::classifier::{Classifier, Example};
use crate::logic::playbook::matching::{Filler, tokens};
use crate::logic::playbook::understand::{Class, Understanding, content_words};

/// The classifier trained on `file`'s examples, with the thresholds. Examples are read like
/// messages: without their filler words when enough others remain.
pub(super) fn understanding(
    file: &PlaybookFile,
    packs: &Packs,
    filler: &Filler,
    threshold: f32,
    clarify: f32,
    max_requests: usize,
) -> Understanding {
    let mut classes = Vec::new();
    let mut examples = Vec::new();
    let mut add = |class: Class, texts: &mut dyn Iterator<Item = &Text>| {
        let index = classes.len();
        classes.push(class);
        examples.extend(texts.map(|t| {
            let all = tokens(t.get_ref());
            let flagged: Vec<(&str, bool)> = all
                .iter()
                .map(|w| (w.as_str(), filler.contains(w)))
                .collect();
            Example {
                words: content_words(&flagged)
                    .into_iter()
                    .map(str::to_string)
                    .collect(),
                class: index,
            }
        }));
    };
    for (i, k) in file.knowledge.iter().enumerate() {
        let id = k.id.get_ref().trim();
        let from_packs = packs
            .packs
            .iter()
            .filter_map(|(_, p)| p.get_ref().knowledge.get(id))
            .flat_map(|k| &k.examples);
        add(
            Class::Knowledge(i),
            &mut k.questions.iter().chain(&k.keywords).chain(from_packs),
        );
    }
    for (i, intent) in file.intents.iter().enumerate() {
        let id = intent.id.get_ref().trim();
        let from_packs = packs
            .packs
            .iter()
            .filter_map(|(_, p)| p.get_ref().intents.get(id))
            .flat_map(|i| &i.examples);
        add(
            Class::Intent(i),
            &mut intent.phrases.iter().chain(from_packs),
        );
    }
    let not_known: Vec<&Text> = packs.list(|p| &p.not_known).collect();
    if !not_known.is_empty() {
        add(Class::NotKnown, &mut not_known.into_iter());
    }
    examples.retain(|e| !e.words.is_empty());
    Understanding {
        examples: examples.len(),
        classifier: Classifier::train(classes.len(), &examples),
        classes,
        threshold,
        clarify,
        max_requests: max_requests.max(1),
    }
}
