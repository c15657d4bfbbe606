//! Compiling what the playbook understands and says in several languages: customer texts with
//! their translations, small-talk and off-topic intents, request details and the closing
//! (yes/no answers and ratings).

use std::collections::HashSet;

use toml::Spanned;

use super::NONE;
use crate::logic::playbook::format::{Localized, Message, PlaybookFile, Text};
use crate::logic::playbook::language::{LocalText, normalise_code, valid_code};
use crate::logic::playbook::matching::Phrase;
use crate::logic::playbook::validate::Checker;
use crate::logic::playbook::{Closing, Detail, Intent};

/// Most request details a playbook may define (their values share the 1 kB state).
pub(super) const MAX_DETAILS: usize = 8;
/// Largest compiled size of a detail's regular expression.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

impl Checker<'_> {
    /// Checks `[languages]` and remembers the default language for the texts.
    pub(super) fn languages(&mut self, file: &PlaybookFile) {
        let default = &file.languages.default;
        if valid_code(default.get_ref()) {
            self.default_language = normalise_code(default.get_ref());
        } else {
            self.report(
                default.span(),
                format!(
                    "`languages.default` must be a language code such as `en` or `pt-BR`, got `{}`",
                    default.get_ref()
                ),
            );
        }
    }

    /// A customer text: one string, or translations that include the default language.
    pub(in crate::logic::playbook) fn message(
        &mut self,
        message: &Message,
        field: &str,
        allowed: &[&str],
    ) -> LocalText {
        match message.get_ref() {
            Localized::Plain(text) => {
                let spanned = Spanned::new(message.span(), text.clone());
                LocalText::plain(self.text(&spanned, field, allowed))
            }
            Localized::ByLanguage(texts) => {
                let mut default = None;
                let mut translations = Vec::new();
                let mut seen = HashSet::new();
                for (language, text) in texts {
                    let code = normalise_code(language);
                    let value = self.text(text, &format!("{field}.{language}"), allowed);
                    if !valid_code(&code) {
                        self.report(
                            text.span(),
                            format!("`{field}` has the key `{language}`, which is not a language code such as `en` or `pt-BR`"),
                        );
                    } else if !seen.insert(code.clone()) {
                        self.report(
                            text.span(),
                            format!("`{field}` has the language `{code}` twice"),
                        );
                    }
                    if code == self.default_language {
                        default = Some(value);
                    } else {
                        translations.push((code, value));
                    }
                }
                let default = default.unwrap_or_else(|| {
                    self.report(
                        message.span(),
                        format!(
                            "`{field}` has no text in the default language `{}` (add `{}` or change `languages.default`)",
                            self.default_language, self.default_language
                        ),
                    );
                    String::new()
                });
                LocalText::new(default, translations)
            }
        }
    }

    pub(in crate::logic::playbook) fn optional_message(
        &mut self,
        message: &Option<Message>,
        field: &str,
        allowed: &[&str],
    ) -> Option<LocalText> {
        message.as_ref().map(|m| self.message(m, field, allowed))
    }

    /// Phrases matched with all their words, filler words included.
    fn verbatim_phrases(&mut self, list: &[Text], field: &str) -> Vec<Phrase> {
        self.checked_phrases(list, field, Phrase::verbatim)
    }

    pub(super) fn closing(&mut self, file: &PlaybookFile) -> Option<Closing> {
        let cl = file.closing.as_ref()?;
        let scale = self.integer(&cl.rating_scale, "closing.rating_scale", 2..11);
        let scale = u8::try_from(scale).unwrap_or(5);
        let mut ratings = Vec::new();
        for (key, phrases) in &cl.ratings {
            let field = format!("closing.ratings.{key}");
            match key.trim().parse::<u8>() {
                Ok(rating) if (1..=scale).contains(&rating) => {
                    ratings.push((rating, self.verbatim_phrases(phrases.get_ref(), &field)));
                }
                _ => self.report(
                    phrases.span(),
                    format!("`{field}`: `{key}` is not a rating from 1 to {scale} (`closing.rating_scale`)"),
                ),
            }
        }
        Some(Closing {
            question: self.message(&cl.question, "closing.question", NONE),
            yes: self.verbatim_phrases(&cl.yes, "closing.yes"),
            no: self.verbatim_phrases(&cl.no, "closing.no"),
            feedback_question: self.optional_message(
                &cl.feedback_question,
                "closing.feedback_question",
                NONE,
            ),
            thanks: self.optional_message(&cl.thanks, "closing.thanks", NONE),
            goodbye: self.optional_message(&cl.goodbye, "closing.goodbye", NONE),
            rating_scale: scale,
            ratings,
        })
    }

    pub(super) fn intents(&mut self, file: &PlaybookFile) -> Vec<Intent> {
        let mut seen = HashSet::new();
        let mut intents = Vec::new();
        for (i, intent) in file.intents.iter().enumerate() {
            let path = format!("intents[{i}]");
            let id = self.text(&intent.id, &format!("{path}.id"), NONE);
            if !seen.insert(id.trim().to_string()) {
                self.report(intent.id.span(), format!("intent id `{id}` is used twice"));
            }
            if intent.phrases.is_empty() {
                self.report(
                    intent.id.span(),
                    format!("intent `{id}` has no `phrases`; it can never match"),
                );
            }
            intents.push(Intent {
                kind: *intent.kind.get_ref(),
                phrases: self.verbatim_phrases(&intent.phrases, &format!("{path}.phrases")),
                answer: self.message(&intent.answer, &format!("{path}.answer"), NONE),
                redirect: intent.redirect,
            });
        }
        intents
    }

    pub(super) fn details(&mut self, file: &PlaybookFile) -> Vec<Detail> {
        let mut seen = HashSet::new();
        let mut details = Vec::new();
        let matches_nothing = regex::Regex::new("a^").ok();
        for (i, detail) in file.details.iter().enumerate() {
            let path = format!("details[{i}]");
            if i == MAX_DETAILS {
                self.report(
                    detail.id.span(),
                    format!("at most {MAX_DETAILS} `[[details]]` fit in the conversation state"),
                );
            }
            let id = self.text(&detail.id, &format!("{path}.id"), NONE);
            let placeholder = !id.is_empty()
                && id.starts_with(|c: char| c.is_ascii_lowercase())
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if !placeholder {
                self.report(
                    detail.id.span(),
                    format!("detail id `{id}` must be lower-case letters, digits and `_` (it is used as the placeholder `{{{id}}}`)"),
                );
            }
            if !seen.insert(id.clone()) {
                self.report(detail.id.span(), format!("detail id `{id}` is used twice"));
            }
            let pattern = self.regex(&detail.pattern, &format!("{path}.pattern"));
            let reply_pattern = detail
                .reply_pattern
                .as_ref()
                .and_then(|p| self.regex(p, &format!("{path}.reply_pattern")));
            let ask = self.optional_message(&detail.ask, &format!("{path}.ask"), NONE);
            // An invalid pattern is reported above; the detail is kept (matching nothing) so
            // that the entries requiring it are not reported too.
            if let Some(pattern) = pattern.or_else(|| matches_nothing.clone()) {
                details.push(Detail {
                    id,
                    pattern,
                    reply_pattern,
                    ask,
                });
            }
        }
        details
    }

    fn regex(&mut self, text: &Text, field: &str) -> Option<regex::Regex> {
        let built = regex::RegexBuilder::new(text.get_ref())
            .size_limit(REGEX_SIZE_LIMIT)
            .build();
        match built {
            Ok(regex) if regex.is_match("") => {
                self.report(
                    text.span(),
                    format!("`{field}` matches an empty text, so it would capture nothing useful"),
                );
                None
            }
            Ok(regex) => Some(regex),
            Err(err) => {
                let reason = err.to_string();
                let reason = reason.lines().last().unwrap_or_default().trim().to_string();
                self.report(
                    text.span(),
                    format!("`{field}` is not a valid regular expression: {reason}"),
                );
                None
            }
        }
    }
}
