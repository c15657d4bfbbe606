//! Compiling the rules for other triggers: agent outcomes, agent buttons, files and hooks.

use std::collections::HashMap;

use shared::tolerant::normalise;

use super::NONE;
use crate::logic::playbook::format::{AfterAgent, PlaybookFile};
use crate::logic::playbook::validate::Checker;
use crate::logic::playbook::{AgentOutcome, FileRule, Hook, HookOn, MimePattern, Reaction};

pub(super) const ACTION: &[&str] = &["action"];
const FILE: &[&str] = &["name", "mime"];
const OUTCOME: &[&str] = &["outcome", "reason"];

impl Checker<'_> {
    pub(super) fn actions(&mut self, file: &PlaybookFile) -> HashMap<String, Reaction> {
        let mut actions = HashMap::new();
        for (i, a) in file.actions.iter().enumerate() {
            let path = format!("actions[{i}]");
            let name = self.text(&a.name, &format!("{path}.name"), NONE);
            let reaction = Reaction {
                note: self.optional(&a.note, &format!("{path}.note"), ACTION),
                message: self.optional_message(&a.message, &format!("{path}.message"), ACTION),
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

    pub(super) fn files(&mut self, file: &PlaybookFile) -> Vec<FileRule> {
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
            let message = self.optional_message(&f.message, &format!("{path}.message"), FILE);
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

    pub(super) fn agent_outcomes(&mut self, file: &PlaybookFile) -> HashMap<String, AgentOutcome> {
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
                message: self.optional_message(&rule.message, &format!("{path}.message"), NONE),
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

    pub(super) fn hooks(&mut self, file: &PlaybookFile) -> HashMap<(HookOn, String), Hook> {
        let mut hooks = HashMap::new();
        for (i, h) in file.hooks.iter().enumerate() {
            let path = format!("hooks[{i}]");
            let id = self.text(&h.id, &format!("{path}.id"), NONE);
            let hook = Hook {
                message: self.optional_message(&h.message, &format!("{path}.message"), NONE),
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
