//! Compiling a parsed playbook file into a [`Playbook`], checking what the file format cannot
//! express: ranges, empty texts, placeholders, languages, duplicate names, regular expressions,
//! rules that would do nothing. Every problem is reported (through the [`Checker`]) with its
//! position in the file.
//!
//! - this module: the top level, the main texts and the knowledge base;
//! - `packs`: language packs, merged into the texts and word lists, checked for completeness;
//! - `understanding`: languages of customer texts, intents, request details and the closing;
//! - `training`: the classifier, trained on the examples of every language;
//! - `rules`: agent outcomes, agent buttons, files and hooks.

mod packs;
mod rules;
mod training;
mod understanding;

use std::collections::HashSet;

use super::format::{Knowledge, Pack, PlaybookFile, Text};
use super::language::LocalText;
use super::matching::{Filler, Negations, PhraseSet};
use super::state::URL_CHARS;
use super::understand::Cues;
use super::validate::Checker;
use super::{Entry, Playbook, Texts};
use packs::Packs;

/// Placeholders each kind of text may use.
pub(super) const NONE: &[&str] = &[];
const NOTE: &[&str] = &["reason", "request", "last", "url", "details"];
const ASSIST: &[&str] = &["id", "answer"];
const CLARIFY: &[&str] = &["first", "second"];
const TOPICS: &[&str] = &["topics"];

impl Checker<'_> {
    /// Checks `file` and builds the playbook; problems are collected in the checker (the
    /// playbook is only used when there are none).
    pub(in crate::logic::playbook) fn compile(&mut self, file: PlaybookFile) -> Playbook {
        if *file.version.get_ref() != 1 {
            self.report(
                file.version.span(),
                format!(
                    "unsupported playbook version {} (this worker reads version 1)",
                    file.version.get_ref()
                ),
            );
        }
        self.languages(&file);
        let packs = self.packs(&file);
        self.pack_ids(&packs, &file);
        let m = &file.matching;
        let pack_words: Vec<&Text> = packs
            .list(|p| &p.ignore_words)
            .chain(packs.list(|p| &p.negations))
            .chain(packs.list(|p| &p.refusals))
            .chain(packs.list(|p| &p.requests))
            .chain(packs.list(|p| &p.question_words))
            .chain(packs.list(|p| &p.about_bot))
            .collect();
        for word in m
            .ignore_words
            .iter()
            .chain(&m.negations)
            .chain(&m.refusals)
            .chain(pack_words)
        {
            if matching_is_blank(word.get_ref()) {
                self.report(word.span(), "a word list lists an entry without any word");
            }
        }
        fn words(list: &[Text]) -> Vec<&str> {
            list.iter().map(|w| w.get_ref().as_str()).collect()
        }
        let pack_list = |select: fn(&Pack) -> &Vec<Text>| {
            packs
                .list(select)
                .map(|w| w.get_ref().as_str())
                .collect::<Vec<_>>()
        };
        let filler = Filler::new(
            words(&m.ignore_words)
                .into_iter()
                .chain(pack_list(|p| &p.ignore_words)),
        );
        let breakers = pack_list(|p| &p.requests);
        let rhetorical = pack_list(|p| &p.question_words);
        let negations = Negations::new(
            words(&m.negations)
                .into_iter()
                .chain(pack_list(|p| &p.negations)),
        )
        .with_scope(breakers.iter().copied(), rhetorical.iter().copied());
        let refusals = Negations::refusals(
            words(&m.refusals)
                .into_iter()
                .chain(pack_list(|p| &p.refusals)),
        )
        .with_scope(breakers.iter().copied(), rhetorical.iter().copied());
        let threshold = self.share(&m.threshold, "matching.threshold", false);
        let clarify = self.share(&m.clarify, "matching.clarify", true);
        let max_requests = self.integer(&m.max_requests, "matching.max_requests", 1..11);
        let vague_below = self.integer(&m.vague_below, "matching.vague_below", 0..21);

        let c = &file.conversation;
        let e = &file.escalation;
        let texts = Texts {
            greeting: self.pack_message(&c.greeting, "conversation.greeting", &packs, "greeting"),
            ask_request: self.pack_message(
                &c.ask_request,
                "conversation.ask_request",
                &packs,
                "ask_request",
            ),
            ask_details: self.pack_message(
                &c.ask_details,
                "conversation.ask_details",
                &packs,
                "ask_details",
            ),
            not_understood: self.pack_message(
                &c.not_understood,
                "conversation.not_understood",
                &packs,
                "not_understood",
            ),
            not_known: self.pack_message(
                &c.not_known,
                "conversation.not_known",
                &packs,
                "not_known",
            ),
            clarify: self.message_with(
                c.clarify.as_ref(),
                "conversation.clarify",
                CLARIFY,
                &packs.text("clarify"),
            ),
            which_first: self.message_with(
                c.which_first.as_ref(),
                "conversation.which_first",
                TOPICS,
                &packs.text("which_first"),
            ),
            redirect: self.pack_message(&c.redirect, "conversation.redirect", &packs, "redirect"),
            offer_human: self.pack_message(
                &c.offer_human,
                "conversation.offer_human",
                &packs,
                "offer_human",
            ),
            apology: self.pack_message(&c.apology, "conversation.apology", &packs, "apology"),
            assist_note: self.optional(&c.assist_note, "conversation.assist_note", ASSIST),
            unknown_action_note: self.optional(
                &c.unknown_action_note,
                "conversation.unknown_action_note",
                rules::ACTION,
            ),
            escalation_message: self.pack_message(
                &e.message,
                "escalation.message",
                &packs,
                "escalation",
            ),
            waiting_message: self.pack_message(
                &e.waiting_message,
                "escalation.waiting_message",
                &packs,
                "waiting",
            ),
            escalation_note: self.optional(&e.note, "escalation.note", NOTE),
        };
        let escalation_phrases = PhraseSet::new(self.verbatim_with_packs(
            &e.phrases,
            "escalation.phrases",
            &packs,
            |p| &p.human,
        ));
        let negative_reviews =
            self.phrases(&e.negative_reviews, "escalation.negative_reviews", &filler);
        let after = self.integer(
            &e.after_misunderstandings,
            "escalation.after_misunderstandings",
            0..21,
        );
        let after_repeats = self.integer(&e.after_repeats, "escalation.after_repeats", 0..21);
        let after_frustration =
            self.integer(&e.after_frustration, "escalation.after_frustration", 0..21);
        let cues = Cues {
            presence: self.pack_set("presence", &packs, |p| &p.presence),
            sarcasm: self.pack_set("sarcasm", &packs, |p| &p.sarcasm),
            frustration: self.pack_set("frustration", &packs, |p| &p.frustration),
            insults: self.pack_set("insults", &packs, |p| &p.insults),
            clause_words: self.pack_set("clause_words", &packs, |p| &p.clause_words),
            about_bot: self.pack_set("about_bot", &packs, |p| &p.about_bot),
        };

        let closing = self.closing(&file, &packs);
        let intents = self.intents(&file, &packs);
        let details = self.details(&file, &packs);
        let agent_outcomes = self.agent_outcomes(&file);
        let (knowledge, own_examples, sources) = self.knowledge(&file, &details, &packs);
        let actions = self.actions(&file);
        let files = self.files(&file);
        let hooks = self.hooks(&file);
        let intent_refs: Vec<(String, &super::Intent, bool)> = intents
            .iter()
            .map(|(id, i, own)| (id.clone(), i, *own))
            .collect();
        self.complete_packs(
            &packs,
            &packs::Compiled {
                default_language: &self.default_language.clone(),
                texts: &texts,
                closing: closing.as_ref(),
                knowledge: &knowledge,
                knowledge_examples: &own_examples,
                intents: &intent_refs,
                details: &details,
            },
        );
        let understanding = training::understanding(
            &file,
            &packs,
            &filler,
            threshold,
            clarify,
            usize::try_from(max_requests).unwrap_or(1),
        );
        let mut languages = vec![self.default_language.clone()];
        let main = [
            texts.greeting.as_ref(),
            texts.not_known.as_ref(),
            texts.not_understood.as_ref(),
            texts.escalation_message.as_ref(),
        ];
        let codes = main
            .into_iter()
            .flatten()
            .flat_map(|t| t.languages().map(str::to_string))
            .chain(packs.packs.iter().map(|(code, _)| code.clone()))
            .collect::<Vec<_>>();
        for code in codes {
            if !languages.contains(&code) {
                languages.push(code);
            }
        }
        let language_words = packs
            .packs
            .iter()
            .map(|(code, pack)| {
                let p = pack.get_ref();
                let words = p
                    .ignore_words
                    .iter()
                    .chain(&p.negations)
                    .chain(&p.requests)
                    .chain(&p.question_words)
                    .flat_map(|t| super::matching::tokens(t.get_ref()))
                    .collect();
                (code.clone(), words)
            })
            .collect();
        Playbook {
            default_language: self.default_language.clone(),
            languages,
            language_words,
            filler,
            negations,
            refusals,
            understanding,
            cues,
            vague_below: usize::try_from(vague_below).unwrap_or(0),
            texts,
            during_agent: *c.during_agent.get_ref(),
            escalation_phrases,
            after_misunderstandings: u8::try_from(after).unwrap_or(0),
            after_repeats: u8::try_from(after_repeats).unwrap_or(0),
            after_frustration: u8::try_from(after_frustration).unwrap_or(0),
            negative_reviews,
            closing,
            agent_outcomes,
            intents: intents.into_iter().map(|(_, i, _)| i).collect(),
            details,
            knowledge,
            sources,
            actions,
            files,
            hooks,
        }
    }

    /// A main-flow text with the translations the packs give for it under `name`.
    fn pack_message(
        &mut self,
        message: &Option<super::format::Message>,
        field: &str,
        packs: &Packs,
        name: &str,
    ) -> Option<LocalText> {
        self.message_with(message.as_ref(), field, NONE, &packs.text(name))
    }

    /// One word list of every pack, as an indexed set of verbatim phrases.
    fn pack_set<'f>(
        &mut self,
        name: &str,
        packs: &Packs<'f>,
        select: fn(&'f Pack) -> &'f Vec<Text>,
    ) -> PhraseSet {
        PhraseSet::new(self.verbatim_with_packs(&[], name, packs, select))
    }

    /// A share between 0 and 1 (0 allowed only when `zero` is).
    fn share(&mut self, value: &toml::Spanned<f64>, field: &str, zero: bool) -> f32 {
        let v = *value.get_ref();
        let ok = if zero {
            (0.0..=1.0).contains(&v)
        } else {
            v > 0.0 && v <= 1.0
        };
        if !ok {
            let lower = if zero { "at least 0" } else { "greater than 0" };
            self.report(
                value.span(),
                format!("`{field}` must be {lower} and at most 1, got {v}"),
            );
        }
        v.clamp(0.0, 1.0) as f32
    }

    /// The knowledge entries, whether each has questions or keywords of its own, and the
    /// text of each for retrieval.
    fn knowledge(
        &mut self,
        file: &PlaybookFile,
        details: &[super::Detail],
        packs: &Packs,
    ) -> (Vec<Entry>, Vec<bool>, Vec<String>) {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut own = Vec::new();
        let mut sources = Vec::new();
        for (i, k) in file.knowledge.iter().enumerate() {
            let path = format!("knowledge[{i}]");
            let id = self.text(&k.id, &format!("{path}.id"), NONE);
            let id = id.trim().to_string();
            if !seen.insert(id.clone()) {
                self.report(k.id.span(), format!("knowledge id `{id}` is used twice"));
            }
            let examples: Vec<&Text> = packs
                .packs
                .iter()
                .filter_map(|(_, p)| p.get_ref().knowledge.get(&id))
                .flat_map(|k| &k.examples)
                .collect();
            if k.questions.is_empty() && k.keywords.is_empty() && examples.is_empty() {
                self.report(
                    k.id.span(),
                    format!("knowledge entry `{id}` has no `questions`, `keywords` or examples in a language pack; it can never match"),
                );
            }
            for (list, field) in [(&k.questions, "questions"), (&k.keywords, "keywords")] {
                self.verbatim_phrases(list, &format!("{path}.{field}"));
            }
            let requires = self.requires(k, &path, details);
            let placeholders: Vec<&str> = requires
                .iter()
                .filter_map(|d| details.get(*d))
                .map(|d| d.id.as_str())
                .collect();
            let answer = self
                .message_with(
                    Some(&k.answer),
                    &format!("{path}.answer"),
                    &placeholders,
                    &packs.knowledge(&id, packs::knowledge_answer),
                )
                .unwrap_or_else(|| LocalText::plain(String::new()));
            let topic = self.message_with(
                k.topic.as_ref(),
                &format!("{path}.topic"),
                NONE,
                &packs.knowledge(&id, packs::knowledge_topic),
            );
            let variants = self.variants(k, &path, &id, &placeholders);
            sources.push(
                k.questions
                    .iter()
                    .chain(&k.keywords)
                    .chain(examples)
                    .map(|t| t.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            own.push(!k.questions.is_empty() || !k.keywords.is_empty());
            entries.push(Entry {
                id,
                answer,
                topic,
                requires,
                variants,
            });
        }
        (entries, own, sources)
    }

    /// The `[[details]]` an entry requires, as indexes.
    fn requires(&mut self, k: &Knowledge, path: &str, details: &[super::Detail]) -> Vec<usize> {
        let mut found = Vec::new();
        for name in &k.requires {
            let wanted = name.get_ref().trim();
            match details.iter().position(|d| d.id == wanted) {
                Some(index) if details[index].ask.is_none() => self.report(
                    name.span(),
                    format!(
                        "`{path}.requires` names the detail `{wanted}`, which has no `ask` question"
                    ),
                ),
                Some(index) if !found.contains(&index) => found.push(index),
                Some(_) => self.report(
                    name.span(),
                    format!("`{path}.requires` lists `{wanted}` twice"),
                ),
                None => self.report(
                    name.span(),
                    format!("`{path}.requires` names `{wanted}`, which is not a `[[details]]` id"),
                ),
            }
        }
        found
    }

    fn variants(
        &mut self,
        k: &Knowledge,
        path: &str,
        id: &str,
        placeholders: &[&str],
    ) -> Vec<(String, LocalText)> {
        let mut variants = Vec::new();
        let mut prefixes = HashSet::new();
        for (j, v) in k.variants.iter().enumerate() {
            let field = format!("{path}.variants[{j}]");
            let prefix = self.text(&v.url_prefix, &format!("{field}.url_prefix"), NONE);
            if prefix.chars().count() > URL_CHARS {
                self.report(
                    v.url_prefix.span(),
                    format!("`{field}.url_prefix` is longer than the {URL_CHARS} characters of a URL the playbook remembers"),
                );
            }
            if !prefixes.insert(prefix.clone()) {
                self.report(
                    v.url_prefix.span(),
                    format!("URL prefix `{prefix}` appears twice in knowledge entry `{id}`"),
                );
            }
            let answer = self.message(&v.answer, &format!("{field}.answer"), placeholders);
            variants.push((prefix, answer));
        }
        variants.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        variants
    }
}

fn matching_is_blank(text: &str) -> bool {
    super::matching::tokens(text).is_empty()
}
