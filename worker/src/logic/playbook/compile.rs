//! Compiling a parsed playbook file into a [`Playbook`], checking what the file format cannot
//! express: ranges, empty texts, placeholders, duplicate names, rules that would do nothing.
//! Every problem is reported (through the [`Checker`]) with its position in the file.

use std::collections::{HashMap, HashSet};

use shared::tolerant::normalise;

use super::format::{AfterAgent, PlaybookFile};
use super::matching::{EntryPatterns, Filler};
use super::state::URL_CHARS;
use super::validate::Checker;
use super::{
    AgentOutcome, Closing, Entry, FileRule, Hook, HookOn, MimePattern, Playbook, Reaction, Texts,
};

/// Placeholders each kind of text may use.
const NONE: &[&str] = &[];
const NOTE: &[&str] = &["reason", "request", "last", "url"];
const ASSIST: &[&str] = &["id", "answer"];
const ACTION: &[&str] = &["action"];
const FILE: &[&str] = &["name", "mime"];
const OUTCOME: &[&str] = &["outcome", "reason"];

impl Checker<'_> {
    /// Checks `file` and builds the playbook; problems are collected in the checker (the
    /// playbook is only used when there are none).
    pub(super) fn compile(&mut self, file: PlaybookFile) -> Playbook {
        if *file.version.get_ref() != 1 {
            self.report(
                file.version.span(),
                format!(
                    "unsupported playbook version {} (this worker reads version 1)",
                    file.version.get_ref()
                ),
            );
        }
        let m = &file.matching;
        for word in &m.ignore_words {
            if matching_is_blank(word.get_ref()) {
                self.report(
                    word.span(),
                    "`matching.ignore_words` contains an entry without any word",
                );
            }
        }
        let filler = Filler::new(m.ignore_words.iter().map(|w| w.get_ref().as_str()));
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
            greeting: self.optional(&c.greeting, "conversation.greeting", NONE),
            ask_request: self.optional(&c.ask_request, "conversation.ask_request", NONE),
            ask_details: self.optional(&c.ask_details, "conversation.ask_details", NONE),
            not_understood: self.optional(&c.not_understood, "conversation.not_understood", NONE),
            assist_note: self.optional(&c.assist_note, "conversation.assist_note", ASSIST),
            unknown_action_note: self.optional(
                &c.unknown_action_note,
                "conversation.unknown_action_note",
                ACTION,
            ),
            escalation_message: self.optional(&e.message, "escalation.message", NONE),
            waiting_message: self.optional(&e.waiting_message, "escalation.waiting_message", NONE),
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

        let closing = file.closing.as_ref().map(|cl| Closing {
            question: self.text(&cl.question, "closing.question", NONE),
            yes: self.phrases(&cl.yes, "closing.yes", &filler),
            no: self.phrases(&cl.no, "closing.no", &filler),
            feedback_question: self.optional(
                &cl.feedback_question,
                "closing.feedback_question",
                NONE,
            ),
            thanks: self.optional(&cl.thanks, "closing.thanks", NONE),
            goodbye: self.optional(&cl.goodbye, "closing.goodbye", NONE),
        });

        let agent_outcomes = self.agent_outcomes(&file);
        let (knowledge, patterns) = self.knowledge(&file, &filler);
        let actions = self.actions(&file);
        let files = self.files(&file);
        let hooks = self.hooks(&file);
        Playbook {
            filler,
            threshold,
            vague_below: usize::try_from(vague_below).unwrap_or(0),
            texts,
            during_agent: *c.during_agent.get_ref(),
            escalation_phrases,
            after_misunderstandings: u8::try_from(after).unwrap_or(0),
            negative_reviews,
            closing,
            agent_outcomes,
            knowledge,
            patterns,
            actions,
            files,
            hooks,
        }
    }

    fn knowledge(
        &mut self,
        file: &PlaybookFile,
        filler: &Filler,
    ) -> (Vec<Entry>, Vec<EntryPatterns>) {
        let mut seen = HashSet::new();
        let mut entries = Vec::new();
        let mut patterns = Vec::new();
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
            let answer = self.text(&k.answer, &format!("{path}.answer"), NONE);
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
                let answer = self.text(&v.answer, &format!("{field}.answer"), NONE);
                variants.push((prefix, answer));
            }
            variants.sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
            entries.push(Entry {
                id,
                answer,
                variants,
            });
            patterns.push(EntryPatterns {
                questions,
                keywords,
            });
        }
        (entries, patterns)
    }

    fn actions(&mut self, file: &PlaybookFile) -> HashMap<String, Reaction> {
        let mut actions = HashMap::new();
        for (i, a) in file.actions.iter().enumerate() {
            let path = format!("actions[{i}]");
            let name = self.text(&a.name, &format!("{path}.name"), NONE);
            let reaction = Reaction {
                note: self.optional(&a.note, &format!("{path}.note"), ACTION),
                message: self.optional(&a.message, &format!("{path}.message"), ACTION),
            };
            if reaction.note.is_none() && reaction.message.is_none() {
                self.report(
                    a.name.span(),
                    format!("action `{name}` has neither `note` nor `message`"),
                );
            }
            if actions.insert(normalise(&name), reaction).is_some() {
                self.report(a.name.span(), format!("action `{name}` is defined twice"));
            }
        }
        actions
    }

    fn files(&mut self, file: &PlaybookFile) -> Vec<FileRule> {
        let mut rules = Vec::new();
        for (i, f) in file.files.iter().enumerate() {
            let path = format!("files[{i}]");
            let pattern = self.text(&f.mime, &format!("{path}.mime"), NONE);
            let mime = match mime_pattern(&pattern) {
                Some(mime) => mime,
                None => {
                    self.report(
                        f.mime.span(),
                        format!(
                            "`{path}.mime` must be `*`, `type/*` or `type/subtype`, got `{pattern}`"
                        ),
                    );
                    MimePattern::Any
                }
            };
            let message = self.optional(&f.message, &format!("{path}.message"), FILE);
            let note = self.optional(&f.note, &format!("{path}.note"), FILE);
            if message.is_none() && note.is_none() {
                self.report(
                    f.mime.span(),
                    format!("file rule `{pattern}` has neither `message` nor `note`"),
                );
            }
            rules.push(FileRule {
                mime,
                message,
                note,
            });
        }
        rules
    }

    fn agent_outcomes(&mut self, file: &PlaybookFile) -> HashMap<String, AgentOutcome> {
        let mut rules = HashMap::new();
        for (i, rule) in file.agent_outcomes.iter().enumerate() {
            let path = format!("agent_outcomes[{i}]");
            let then = *rule.then.get_ref();
            if then == AfterAgent::Closing && file.closing.is_none() {
                self.report(
                    rule.then.span(),
                    format!("`{path}.then = \"closing\"` needs a `[closing]` table"),
                );
            }
            let compiled = AgentOutcome {
                then,
                message: self.optional(&rule.message, &format!("{path}.message"), NONE),
                note: self.optional(&rule.note, &format!("{path}.note"), OUTCOME),
            };
            if rule.outcomes.get_ref().is_empty() {
                self.report(
                    rule.outcomes.span(),
                    format!("`{path}.outcomes` is empty; list the `outcomeType` values it is for"),
                );
            }
            for outcome in rule.outcomes.get_ref() {
                let name = self.text(outcome, &format!("{path}.outcomes"), NONE);
                if rules.insert(normalise(&name), compiled.clone()).is_some() {
                    self.report(
                        outcome.span(),
                        format!(
                            "outcome `{}` is listed twice in `agent_outcomes`",
                            name.trim()
                        ),
                    );
                }
            }
        }
        rules
    }

    fn hooks(&mut self, file: &PlaybookFile) -> HashMap<(HookOn, String), Hook> {
        let mut hooks = HashMap::new();
        for (i, h) in file.hooks.iter().enumerate() {
            let path = format!("hooks[{i}]");
            let id = self.text(&h.id, &format!("{path}.id"), NONE);
            let hook = Hook {
                message: self.optional(&h.message, &format!("{path}.message"), NONE),
                note: self.optional(&h.note, &format!("{path}.note"), NONE),
                escalate: h.escalate,
            };
            if hook.message.is_none() && hook.note.is_none() && !hook.escalate {
                self.report(
                    h.id.span(),
                    format!("hook `{id}` does nothing (no `message`, `note` or `escalate = true`)"),
                );
            }
            if hooks
                .insert((*h.on.get_ref(), normalise(&id)), hook)
                .is_some()
            {
                self.report(
                    h.id.span(),
                    format!("hook `{id}` is defined twice for the same trigger"),
                );
            }
        }
        hooks
    }
}

fn matching_is_blank(text: &str) -> bool {
    super::matching::tokens(text).is_empty()
}

fn mime_pattern(text: &str) -> Option<MimePattern> {
    let text = text.trim().to_ascii_lowercase();
    if text == "*" || text == "*/*" {
        return Some(MimePattern::Any);
    }
    let (kind, sub) = text.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&^_.+-".contains(c))
    };
    if !token(kind) {
        return None;
    }
    if sub == "*" {
        Some(MimePattern::Prefix(format!("{kind}/")))
    } else if token(sub) {
        Some(MimePattern::Exact(text))
    } else {
        None
    }
}
