//! Compiling a parsed playbook file into a [`Playbook`], checking what the file format cannot
//! express: ranges, empty texts, placeholders, languages, duplicate names, regular expressions,
//! rules that would do nothing. Every problem is reported (through the [`Checker`]) with its
//! position in the file.
//!
//! - this module: the top level, the main texts and the knowledge base;
//! - `understanding`: languages of customer texts, intents, request details and the closing;
//! - `rules`: agent outcomes, agent buttons, files and hooks.

mod rules;
mod understanding;

use std::collections::HashSet;

use super::format::{Knowledge, PlaybookFile};
use super::language::LocalText;
use super::matching::{EntryPatterns, Filler, Negations};
use super::state::URL_CHARS;
use super::validate::Checker;
use super::{Entry, Playbook, Texts};

/// Placeholders each kind of text may use.
pub(super) const NONE: &[&str] = &[];
const NOTE: &[&str] = &["reason", "request", "last", "url", "details"];
const ASSIST: &[&str] = &["id", "answer"];

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
        let m = &file.matching;
        for word in m.ignore_words.iter().chain(&m.negations).chain(&m.refusals) {
            if matching_is_blank(word.get_ref()) {
                self.report(word.span(), "`matching` lists an entry without any word");
            }
        }
        let filler = Filler::new(m.ignore_words.iter().map(|w| w.get_ref().as_str()));
        let negations = Negations::new(m.negations.iter().map(|w| w.get_ref().as_str()));
        let refusals = Negations::refusals(m.refusals.iter().map(|w| w.get_ref().as_str()));
        let threshold = *m.threshold.get_ref();
        if !(threshold > 0.0 && threshold <= 1.0) {
            self.report(
                m.threshold.span(),
                format!(
                    "`matching.threshold` must be greater than 0 and at most 1, got {threshold}"
                ),
            );
        }
        let vague_below = self.integer(&m.vague_below, "matching.vague_below", 0..21);

        let c = &file.conversation;
        let e = &file.escalation;
        let texts = Texts {
            greeting: self.optional_message(&c.greeting, "conversation.greeting", NONE),
            ask_request: self.optional_message(&c.ask_request, "conversation.ask_request", NONE),
            ask_details: self.optional_message(&c.ask_details, "conversation.ask_details", NONE),
            not_understood: self.optional_message(
                &c.not_understood,
                "conversation.not_understood",
                NONE,
            ),
            redirect: self.optional_message(&c.redirect, "conversation.redirect", NONE),
            assist_note: self.optional(&c.assist_note, "conversation.assist_note", ASSIST),
            unknown_action_note: self.optional(
                &c.unknown_action_note,
                "conversation.unknown_action_note",
                rules::ACTION,
            ),
            escalation_message: self.optional_message(&e.message, "escalation.message", NONE),
            waiting_message: self.optional_message(
                &e.waiting_message,
                "escalation.waiting_message",
                NONE,
            ),
            escalation_note: self.optional(&e.note, "escalation.note", NOTE),
        };
        let escalation_phrases = self.phrases(&e.phrases, "escalation.phrases", &filler);
        let negative_reviews =
            self.phrases(&e.negative_reviews, "escalation.negative_reviews", &filler);
        let after = self.integer(
            &e.after_misunderstandings,
            "escalation.after_misunderstandings",
            0..21,
        );

        let closing = self.closing(&file);
        let intents = self.intents(&file);
        let details = self.details(&file);
        let agent_outcomes = self.agent_outcomes(&file);
        let (knowledge, patterns, sources) = self.knowledge(&file, &filler, &details);
        let actions = self.actions(&file);
        let files = self.files(&file);
        let hooks = self.hooks(&file);
        Playbook {
            default_language: self.default_language.clone(),
            filler,
            negations,
            refusals,
            threshold,
            vague_below: usize::try_from(vague_below).unwrap_or(0),
            texts,
            during_agent: *c.during_agent.get_ref(),
            escalation_phrases,
            after_misunderstandings: u8::try_from(after).unwrap_or(0),
            negative_reviews,
            closing,
            agent_outcomes,
            intents,
            details,
            knowledge,
            patterns,
            sources,
            actions,
            files,
            hooks,
        }
    }

    fn knowledge(
        &mut self,
        file: &PlaybookFile,
        filler: &Filler,
        details: &[super::Detail],
    ) -> (Vec<Entry>, Vec<EntryPatterns>, Vec<String>) {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut patterns = Vec::new();
        let mut sources = Vec::new();
        for (i, k) in file.knowledge.iter().enumerate() {
            let path = format!("knowledge[{i}]");
            let id = self.text(&k.id, &format!("{path}.id"), NONE);
            if !seen.insert(id.trim().to_string()) {
                self.report(k.id.span(), format!("knowledge id `{id}` is used twice"));
            }
            if k.questions.is_empty() && k.keywords.is_empty() {
                self.report(
                    k.id.span(),
                    format!("knowledge entry `{id}` has neither `questions` nor `keywords`; it can never match"),
                );
            }
            let questions = self.phrases(&k.questions, &format!("{path}.questions"), filler);
            let keywords = self.phrases(&k.keywords, &format!("{path}.keywords"), filler);
            let requires = self.requires(k, &path, details);
            let placeholders: Vec<&str> = requires
                .iter()
                .filter_map(|d| details.get(*d))
                .map(|d| d.id.as_str())
                .collect();
            let answer = self.message(&k.answer, &format!("{path}.answer"), &placeholders);
            let variants = self.variants(k, &path, &id, &placeholders);
            sources.push(
                k.questions
                    .iter()
                    .chain(&k.keywords)
                    .map(|t| t.get_ref().as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            );
            entries.push(Entry {
                id,
                answer,
                requires,
                variants,
            });
            patterns.push(EntryPatterns {
                questions,
                keywords,
            });
        }
        (entries, patterns, sources)
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
