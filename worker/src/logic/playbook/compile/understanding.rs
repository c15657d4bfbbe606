//! Compiling what the playbook understands and says in several languages: customer texts with
//! their translations, small-talk and off-topic intents, request details and the closing
//! (yes/no answers and ratings).

use std::collections::HashSet;

use toml::Spanned;

use super::NONE;
use super::packs::{self, Extra, Packs};
use crate::logic::playbook::details::Capture;
use crate::logic::playbook::format::{Localized, Message, PlaybookFile, Shape, Text};
use crate::logic::playbook::language::{LocalText, normalise_code, valid_code};
use crate::logic::playbook::matching::{Phrase, PhraseSet, tokens as matching_tokens};
use crate::logic::playbook::validate::Checker;
use crate::logic::playbook::{Closing, Detail, Intent};

/// The fewest and most digits of a number-shaped detail by default.
const DIGITS: [i64; 2] = [4, 12];

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
        self.message_with(Some(message), field, allowed, &[])
            .unwrap_or_else(|| LocalText::plain(String::new()))
    }

    /// A customer text from the file (if any) and the translations language packs give for
    /// it; `None` when neither has it.
    pub(in crate::logic::playbook) fn message_with(
        &mut self,
        message: Option<&Message>,
        field: &str,
        allowed: &[&str],
        extras: &[Extra],
    ) -> Option<LocalText> {
        if message.is_none() && extras.is_empty() {
            return None;
        }
        let mut default = None;
        let mut translations = Vec::new();
        let mut seen = HashSet::new();
        match message.map(|m| (m, m.get_ref())) {
            None => {}
            Some((message, Localized::Plain(text))) => {
                let spanned = Spanned::new(message.span(), text.clone());
                default = Some(self.text(&spanned, field, allowed));
                seen.insert(self.default_language.clone());
            }
            Some((_, Localized::ByLanguage(texts))) => {
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
            }
        }
        for (code, text) in extras {
            let value = self.text(text, &format!("{field} (pack `{code}`)"), allowed);
            if !seen.insert(code.clone()) {
                self.report(
                    text.span(),
                    format!("`{field}` is given in the language `{code}` twice: in the file and in `packs.{code}`"),
                );
                continue;
            }
            if *code == self.default_language {
                default = Some(value);
            } else {
                translations.push((code.clone(), value));
            }
        }
        let default = default.unwrap_or_else(|| {
            let span = message
                .map(|m| m.span())
                .or_else(|| extras.first().map(|(_, t)| t.span()))
                .unwrap_or(0..0);
            self.report(
                span,
                format!(
                    "`{field}` has no text in the default language `{}` (add `{}` or change `languages.default`)",
                    self.default_language, self.default_language
                ),
            );
            String::new()
        });
        Some(LocalText::new(default, translations))
    }

    pub(in crate::logic::playbook) fn optional_message(
        &mut self,
        message: &Option<Message>,
        field: &str,
        allowed: &[&str],
    ) -> Option<LocalText> {
        self.message_with(message.as_ref(), field, allowed, &[])
    }

    /// Phrases matched with all their words, filler words included.
    pub(super) fn verbatim_phrases(&mut self, list: &[Text], field: &str) -> Vec<Phrase> {
        self.checked_phrases(list, field, Phrase::verbatim)
    }

    /// Verbatim phrases from the file's `list` and every pack's list `select`.
    pub(super) fn verbatim_with_packs<'f>(
        &mut self,
        list: &[Text],
        field: &str,
        packs: &Packs<'f>,
        select: fn(&'f crate::logic::playbook::format::Pack) -> &'f Vec<Text>,
    ) -> Vec<Phrase> {
        let mut phrases = self.verbatim_phrases(list, field);
        let from_packs: Vec<Text> = packs.list(select).cloned().collect();
        let name = field.rsplit('.').next().unwrap_or(field);
        phrases.extend(self.verbatim_phrases(&from_packs, &format!("packs.*.{name}")));
        phrases
    }

    pub(super) fn closing(&mut self, file: &PlaybookFile, packs: &Packs) -> Option<Closing> {
        let cl = file.closing.as_ref()?;
        let scale = self.integer(&cl.rating_scale, "closing.rating_scale", 2..11);
        let scale = u8::try_from(scale).unwrap_or(5);
        let mut ratings = Vec::new();
        let mut symbols = Vec::new();
        let pack_ratings = packs.packs.iter().flat_map(|(code, pack)| {
            pack.get_ref()
                .ratings
                .iter()
                .map(move |(key, list)| (format!("packs.{code}.ratings.{key}"), key, list))
        });
        let file_ratings = cl
            .ratings
            .iter()
            .map(|(key, list)| (format!("closing.ratings.{key}"), key, list));
        for (field, key, list) in file_ratings.chain(pack_ratings) {
            let Some(rating) = key
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|r| (1..=scale).contains(r))
            else {
                self.report(
                    list.span(),
                    format!("`{field}`: `{key}` is not a rating from 1 to {scale} (`closing.rating_scale`)"),
                );
                continue;
            };
            // Emoji and stars have no words: they are looked for as written.
            let (words, marks): (Vec<Text>, Vec<Text>) =
                list.get_ref().iter().cloned().partition(|t| {
                    !matching_tokens(t.get_ref()).is_empty() || t.get_ref().trim().is_empty()
                });
            ratings.push((rating, self.verbatim_phrases(&words, &field)));
            symbols.extend(
                marks
                    .iter()
                    .map(|m| (rating, m.get_ref().trim().to_string())),
            );
        }
        Some(Closing {
            question: self
                .message_with(
                    Some(&cl.question),
                    "closing.question",
                    NONE,
                    &packs.text("closing_question"),
                )
                .unwrap_or_else(|| LocalText::plain(String::new())),
            yes: self.verbatim_with_packs(&cl.yes, "closing.yes", packs, |p| &p.yes),
            no: self.verbatim_with_packs(&cl.no, "closing.no", packs, |p| &p.no),
            feedback_question: self.message_with(
                cl.feedback_question.as_ref(),
                "closing.feedback_question",
                NONE,
                &packs.text("feedback_question"),
            ),
            thanks: self.message_with(
                cl.thanks.as_ref(),
                "closing.thanks",
                NONE,
                &packs.text("thanks"),
            ),
            goodbye: self.message_with(
                cl.goodbye.as_ref(),
                "closing.goodbye",
                NONE,
                &packs.text("goodbye"),
            ),
            rating_scale: scale,
            ratings,
            symbols,
        })
    }

    /// The intents, each with whether it has phrases of its own (examples in the default
    /// language).
    pub(super) fn intents(
        &mut self,
        file: &PlaybookFile,
        packs: &Packs,
    ) -> Vec<(String, Intent, bool)> {
        let mut seen = HashSet::new();
        let mut intents = Vec::new();
        for (i, intent) in file.intents.iter().enumerate() {
            let path = format!("intents[{i}]");
            let id = self.text(&intent.id, &format!("{path}.id"), NONE);
            if !seen.insert(id.trim().to_string()) {
                self.report(intent.id.span(), format!("intent id `{id}` is used twice"));
            }
            let in_packs = packs.packs.iter().any(|(_, p)| {
                p.get_ref()
                    .intents
                    .get(id.trim())
                    .is_some_and(|i| !i.examples.is_empty())
            });
            if intent.phrases.is_empty() && !in_packs {
                self.report(
                    intent.id.span(),
                    format!("intent `{id}` has no `phrases` and no examples in a language pack; it can never match"),
                );
            }
            let answer = self
                .message_with(
                    Some(&intent.answer),
                    &format!("{path}.answer"),
                    NONE,
                    &packs.knowledge(id.trim(), packs::intent_answer),
                )
                .unwrap_or_else(|| LocalText::plain(String::new()));
            self.verbatim_phrases(&intent.phrases, &format!("{path}.phrases"));
            let compiled = Intent {
                id: id.trim().to_string(),
                kind: *intent.kind.get_ref(),
                answer,
                redirect: intent.redirect,
                anything_else: intent.anything_else,
                ends: intent.ends,
            };
            intents.push((id.trim().to_string(), compiled, !intent.phrases.is_empty()));
        }
        intents
    }

    pub(super) fn details(&mut self, file: &PlaybookFile, packs: &Packs) -> Vec<Detail> {
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
            let capture = self.capture(detail, &path, &id, matches_nothing.as_ref());
            let ask = self.message_with(
                detail.ask.as_ref(),
                &format!("{path}.ask"),
                NONE,
                &packs.knowledge(&id, packs::detail_ask),
            );
            let without_answer = self.message_with(
                detail.without_answer.as_ref(),
                &format!("{path}.without_answer"),
                NONE,
                &packs.knowledge(&id, packs::detail_without_answer),
            );
            let pack_words =
                |select: fn(&crate::logic::playbook::format::PackDetail) -> &Vec<Text>| {
                    packs
                        .packs
                        .iter()
                        .filter_map(|(_, p)| p.get_ref().details.get(&id))
                        .flat_map(select)
                        .cloned()
                        .collect::<Vec<Text>>()
                };
            let mut context = self.verbatim_phrases(&detail.context, &format!("{path}.context"));
            context.extend(
                self.verbatim_phrases(&pack_words(|d| &d.context), "packs.*.details.context"),
            );
            let mut without = self.verbatim_phrases(&detail.without, &format!("{path}.without"));
            without.extend(
                self.verbatim_phrases(&pack_words(|d| &d.without), "packs.*.details.without"),
            );
            if !without.is_empty() && without_answer.is_none() {
                self.report(
                    detail.id.span(),
                    format!(
                        "detail `{id}` lists `without` phrases but has no `without_answer` to give"
                    ),
                );
            }
            if let Some(capture) = capture {
                details.push(Detail {
                    id,
                    capture,
                    context,
                    without: PhraseSet::new(without),
                    without_answer,
                    ask,
                });
            }
        }
        details
    }

    /// How a detail's value is found: a regular expression or a shape (exactly one). An
    /// invalid one is reported; the detail is then kept matching nothing, so that the entries
    /// requiring it are not reported too.
    fn capture(
        &mut self,
        detail: &crate::logic::playbook::format::Detail,
        path: &str,
        id: &str,
        matches_nothing: Option<&regex::Regex>,
    ) -> Option<Capture> {
        let nothing = || {
            matches_nothing.map(|r| Capture::Pattern {
                pattern: r.clone(),
                reply_pattern: None,
            })
        };
        match (&detail.pattern, &detail.shape) {
            (Some(_), Some(shape)) => {
                self.report(
                    shape.span(),
                    format!("detail `{id}` has both `pattern` and `shape`; keep one"),
                );
                nothing()
            }
            (None, None) => {
                self.report(
                    detail.id.span(),
                    format!("detail `{id}` needs a `pattern` or a `shape`"),
                );
                nothing()
            }
            (Some(pattern), None) => {
                if detail.digits.is_some() {
                    self.report(
                        detail.id.span(),
                        format!("`{path}.digits` only applies to `shape = \"number\"`"),
                    );
                }
                let pattern = self.regex(pattern, &format!("{path}.pattern"));
                let reply_pattern = detail
                    .reply_pattern
                    .as_ref()
                    .and_then(|p| self.regex(p, &format!("{path}.reply_pattern")));
                match pattern {
                    Some(pattern) => Some(Capture::Pattern {
                        pattern,
                        reply_pattern,
                    }),
                    None => nothing(),
                }
            }
            (None, Some(shape)) => {
                if let Some(reply) = &detail.reply_pattern {
                    self.report(
                        reply.span(),
                        format!("`{path}.reply_pattern` only applies to a `pattern`"),
                    );
                }
                match shape.get_ref() {
                    Shape::Number => {
                        let [min, max] = detail.digits.as_ref().map_or(DIGITS, |d| *d.get_ref());
                        if !(1..=20).contains(&min) || !(min..=20).contains(&max) {
                            let span = detail.digits.as_ref().map_or(shape.span(), |d| d.span());
                            self.report(
                                span,
                                format!("`{path}.digits` must be [fewest, most] with 1 <= fewest <= most <= 20, got [{min}, {max}]"),
                            );
                        }
                        Some(Capture::Number {
                            min: usize::try_from(min.clamp(1, 20)).unwrap_or(1),
                            max: usize::try_from(max.clamp(1, 20)).unwrap_or(20),
                        })
                    }
                }
            }
        }
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
