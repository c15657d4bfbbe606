//! Language packs (`[packs.<code>]`): reading them, merging their texts into the playbook's
//! translations and their word lists into what every message is matched with, and checking
//! that each pack is complete — every customer text, answer and question of the playbook in
//! its language, examples for every knowledge entry and intent, and the words the
//! conversation relies on (negations, requests for a human, closing answers, ratings).

use std::collections::HashSet;

use toml::Spanned;

use crate::logic::playbook::format::{Pack, PlaybookFile, Text};
use crate::logic::playbook::language::{normalise_code, valid_code};
use crate::logic::playbook::validate::Checker;
use crate::logic::playbook::{Closing, Detail, Entry, Intent, Texts};

/// The names of the main flow's texts in a pack's `texts`, and the field each translates.
pub(super) const PACK_TEXTS: &[(&str, &str)] = &[
    ("greeting", "conversation.greeting"),
    ("ask_request", "conversation.ask_request"),
    ("ask_details", "conversation.ask_details"),
    ("not_understood", "conversation.not_understood"),
    ("not_known", "conversation.not_known"),
    ("clarify", "conversation.clarify"),
    ("which_first", "conversation.which_first"),
    ("redirect", "conversation.redirect"),
    ("offer_human", "conversation.offer_human"),
    ("apology", "conversation.apology"),
    ("escalation", "escalation.message"),
    ("waiting", "escalation.waiting_message"),
    ("closing_question", "closing.question"),
    ("feedback_question", "closing.feedback_question"),
    ("thanks", "closing.thanks"),
    ("goodbye", "closing.goodbye"),
];

/// The packs of a playbook file, by normalised language code (file order).
pub(super) struct Packs<'f> {
    pub packs: Vec<(String, &'f Spanned<Pack>)>,
}

/// A translation given by a pack: its language and text.
pub(super) type Extra<'f> = (String, &'f Text);

impl<'f> Packs<'f> {
    /// The translations the packs give for the pack text `name`.
    pub fn text(&self, name: &str) -> Vec<Extra<'f>> {
        self.packs
            .iter()
            .filter_map(|(code, pack)| Some((code.clone(), pack.get_ref().texts.get(name)?)))
            .collect()
    }

    /// The translations the packs give for a knowledge entry's field.
    pub fn knowledge(
        &self,
        id: &str,
        field: fn(&'f Pack, &str) -> Option<&'f Text>,
    ) -> Vec<Extra<'f>> {
        self.packs
            .iter()
            .filter_map(|(code, pack)| Some((code.clone(), field(pack.get_ref(), id)?)))
            .collect()
    }

    /// Every entry of one list of every pack.
    pub fn list(
        &self,
        select: fn(&'f Pack) -> &'f Vec<Text>,
    ) -> impl Iterator<Item = &'f Text> + '_ {
        self.packs
            .iter()
            .flat_map(move |(_, pack)| select(pack.get_ref()))
    }
}

/// A pack's knowledge entry answer.
pub(super) fn knowledge_answer<'f>(pack: &'f Pack, id: &str) -> Option<&'f Text> {
    pack.knowledge.get(id)?.answer.as_ref()
}

/// A pack's knowledge entry topic.
pub(super) fn knowledge_topic<'f>(pack: &'f Pack, id: &str) -> Option<&'f Text> {
    pack.knowledge.get(id)?.topic.as_ref()
}

/// A pack's intent answer.
pub(super) fn intent_answer<'f>(pack: &'f Pack, id: &str) -> Option<&'f Text> {
    pack.intents.get(id)?.answer.as_ref()
}

/// A pack's question for a request detail.
pub(super) fn detail_ask<'f>(pack: &'f Pack, id: &str) -> Option<&'f Text> {
    pack.details.get(id)?.ask.as_ref()
}

/// A pack's answer for a customer without a request detail.
pub(super) fn detail_without_answer<'f>(pack: &'f Pack, id: &str) -> Option<&'f Text> {
    pack.details.get(id)?.without_answer.as_ref()
}

impl Checker<'_> {
    /// Reads the packs: valid, distinct language codes and known text names.
    pub(super) fn packs<'f>(&mut self, file: &'f PlaybookFile) -> Packs<'f> {
        let mut seen = HashSet::new();
        let mut packs = Vec::new();
        for (key, pack) in &file.packs {
            let code = normalise_code(key);
            if !valid_code(&code) {
                self.report(
                    pack.span(),
                    format!(
                        "`packs.{key}`: `{key}` is not a language code such as `en` or `pt-BR`"
                    ),
                );
                continue;
            }
            if !seen.insert(code.clone()) {
                self.report(pack.span(), format!("the language `{code}` has two packs"));
                continue;
            }
            for (name, text) in &pack.get_ref().texts {
                if !PACK_TEXTS.iter().any(|(n, _)| n == name) {
                    let names: Vec<&str> = PACK_TEXTS.iter().map(|(n, _)| *n).collect();
                    self.report(
                        text.span(),
                        format!(
                            "`packs.{key}.texts.{name}` is not a text of the playbook (one of {})",
                            names.join(", ")
                        ),
                    );
                }
            }
            packs.push((code, pack));
        }
        Packs { packs }
    }

    /// Checks that the packs name only entries, intents and details the playbook has.
    pub(super) fn pack_ids(&mut self, packs: &Packs, file: &PlaybookFile) {
        let knowledge: HashSet<&str> = file
            .knowledge
            .iter()
            .map(|k| k.id.get_ref().trim())
            .collect();
        let intents: HashSet<&str> = file.intents.iter().map(|i| i.id.get_ref().trim()).collect();
        let details: HashSet<&str> = file.details.iter().map(|d| d.id.get_ref().trim()).collect();
        for (code, pack) in &packs.packs {
            let p = pack.get_ref();
            let unknown = |ids: Vec<&String>, known: &HashSet<&str>| -> Vec<String> {
                ids.into_iter()
                    .filter(|id| !known.contains(id.as_str()))
                    .cloned()
                    .collect()
            };
            for (what, missing) in [
                (
                    "knowledge entry",
                    unknown(p.knowledge.keys().collect(), &knowledge),
                ),
                ("intent", unknown(p.intents.keys().collect(), &intents)),
                (
                    "request detail",
                    unknown(p.details.keys().collect(), &details),
                ),
            ] {
                for id in missing {
                    self.report(
                        pack.span(),
                        format!("`packs.{code}` names the {what} `{id}`, which the playbook does not have"),
                    );
                }
            }
        }
    }

    /// Reports every pack that lacks something the playbook needs in its language.
    pub(super) fn complete_packs(&mut self, packs: &Packs, playbook: &Compiled) {
        for (code, pack) in &packs.packs {
            let missing = missing_in(code, pack.get_ref(), playbook);
            if !missing.is_empty() {
                self.report(
                    pack.span(),
                    format!(
                        "the language pack `{code}` is incomplete: {} (a pack holds every customer text, answer and question of the playbook in its language, examples for every knowledge entry and intent, negations, ways of asking for a human and, with a closing, the yes and no answers and rating words)",
                        missing.join("; ")
                    ),
                );
            }
        }
    }
}

/// What the completeness check looks at, once the playbook is compiled.
pub(super) struct Compiled<'a> {
    pub default_language: &'a str,
    pub texts: &'a Texts,
    pub closing: Option<&'a Closing>,
    pub knowledge: &'a [Entry],
    /// Whether each entry has questions or keywords of its own (examples in the default
    /// language).
    pub knowledge_examples: &'a [bool],
    pub intents: &'a [(String, &'a Intent, bool)],
    pub details: &'a [Detail],
}

/// What `pack` (language `code`) lacks.
fn missing_in(code: &str, pack: &Pack, playbook: &Compiled) -> Vec<String> {
    let mut missing = Vec::new();
    let default = code == playbook.default_language;
    let t = playbook.texts;
    let closing = playbook.closing;
    let texts = [
        ("greeting", t.greeting.as_ref()),
        ("ask_request", t.ask_request.as_ref()),
        ("ask_details", t.ask_details.as_ref()),
        ("not_understood", t.not_understood.as_ref()),
        ("not_known", t.not_known.as_ref()),
        ("clarify", t.clarify.as_ref()),
        ("which_first", t.which_first.as_ref()),
        ("redirect", t.redirect.as_ref()),
        ("offer_human", t.offer_human.as_ref()),
        ("apology", t.apology.as_ref()),
        ("escalation", t.escalation_message.as_ref()),
        ("waiting", t.waiting_message.as_ref()),
        ("closing_question", closing.map(|c| &c.question)),
        (
            "feedback_question",
            closing.and_then(|c| c.feedback_question.as_ref()),
        ),
        ("thanks", closing.and_then(|c| c.thanks.as_ref())),
        ("goodbye", closing.and_then(|c| c.goodbye.as_ref())),
    ];
    let untranslated: Vec<&str> = texts
        .iter()
        .filter(|(_, text)| text.is_some_and(|text| !text.has_in(code, playbook.default_language)))
        .map(|(name, _)| *name)
        .collect();
    if !untranslated.is_empty() {
        missing.push(format!("texts {}", untranslated.join(", ")));
    }
    for (entry, own) in playbook.knowledge.iter().zip(playbook.knowledge_examples) {
        let in_pack = pack.knowledge.get(&entry.id);
        let mut lacks = Vec::new();
        if !entry.answer.has_in(code, playbook.default_language) {
            lacks.push("answer");
        }
        if entry
            .topic
            .as_ref()
            .is_some_and(|t| !t.has_in(code, playbook.default_language))
        {
            lacks.push("topic");
        }
        if in_pack.is_none_or(|k| k.examples.is_empty()) && !(default && *own) {
            lacks.push("examples");
        }
        if !lacks.is_empty() {
            missing.push(format!("knowledge `{}`: {}", entry.id, lacks.join(", ")));
        }
    }
    for (id, intent, own) in playbook.intents {
        let in_pack = pack.intents.get(id);
        let mut lacks = Vec::new();
        if !intent.answer.has_in(code, playbook.default_language) {
            lacks.push("answer");
        }
        if in_pack.is_none_or(|i| i.examples.is_empty()) && !(default && *own) {
            lacks.push("examples");
        }
        if !lacks.is_empty() {
            missing.push(format!("intent `{id}`: {}", lacks.join(", ")));
        }
    }
    for detail in playbook.details {
        if detail
            .ask
            .as_ref()
            .is_some_and(|a| !a.has_in(code, playbook.default_language))
        {
            missing.push(format!("detail `{}`: ask", detail.id));
        }
        if detail
            .without_answer
            .as_ref()
            .is_some_and(|a| !a.has_in(code, playbook.default_language))
        {
            missing.push(format!("detail `{}`: without_answer", detail.id));
        }
    }
    let mut lists = Vec::new();
    if pack.negations.is_empty() {
        lists.push("negations");
    }
    if pack.human.is_empty() {
        lists.push("human");
    }
    if closing.is_some() {
        if pack.yes.is_empty() {
            lists.push("yes");
        }
        if pack.no.is_empty() {
            lists.push("no");
        }
        if pack.ratings.is_empty() {
            lists.push("ratings");
        }
    }
    if !lists.is_empty() {
        missing.push(format!("word lists {}", lists.join(", ")));
    }
    missing
}
