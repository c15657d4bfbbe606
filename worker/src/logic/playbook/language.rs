//! Reply languages: customer texts in several languages, and which one a reply uses.
//!
//! Every text the playbook sends to customers may be a plain string (in the playbook's default
//! language, `[languages] default`) or a table of translations by language code. A reply uses the
//! customer's language (`languageCustomer` of the trigger, else of the conversation, else of the
//! customer's last turn) when the text has it, matching `es-MX` to `es` and the other way round,
//! and the default language otherwise. With `REPLY_LANGUAGE=account` (Salted CX translates the
//! bot's messages itself) every reply uses the default language.

use shared::event::{Event, ParticipantType};

/// Which language replies use (the worker's `REPLY_LANGUAGE` setting).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ReplyLanguage {
    /// The customer's language when the playbook has the text in it, else the default language.
    #[default]
    Customer,
    /// Always the playbook's default language: Salted CX translates the bot's replies for the
    /// customer (use the account's content language as the default language).
    Account,
}

/// A customer text in the default language and any translations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalText {
    default: String,
    /// `(normalised language code, text)`.
    translations: Vec<(String, String)>,
}

impl LocalText {
    /// A text in the default language only.
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            default: text.into(),
            translations: Vec::new(),
        }
    }

    /// A text with translations (`language` codes are normalised here).
    pub fn new(default: String, translations: Vec<(String, String)>) -> Self {
        let translations = translations
            .into_iter()
            .map(|(language, text)| (normalise_code(&language), text))
            .collect();
        Self {
            default,
            translations,
        }
    }

    /// The text in the default language.
    pub fn default_text(&self) -> &str {
        &self.default
    }

    /// The text for `language` (a normalised code): the exact language, else the same primary
    /// language (`es-mx` for `es`, `es` for `es-mx`), else the default.
    pub fn pick(&self, language: Option<&str>) -> &str {
        let Some(language) = language else {
            return &self.default;
        };
        let wanted = primary(language);
        self.translations
            .iter()
            .find(|(code, _)| code == language)
            .or_else(|| {
                self.translations
                    .iter()
                    .find(|(code, _)| primary(code) == wanted)
            })
            .map_or(&self.default, |(_, text)| text)
    }

    /// Whether the text has a version for `language` (a normalised code; the default text
    /// counts for `default`, the playbook's default language).
    pub fn has_in(&self, language: &str, default: &str) -> bool {
        language == default || self.has(language)
    }

    /// Whether a translation for `language` (a normalised code, same primary language) exists.
    pub fn has(&self, language: &str) -> bool {
        let wanted = primary(language);
        self.translations
            .iter()
            .any(|(code, _)| code == language || primary(code) == wanted)
    }

    /// The codes of its translations (normalised; the default language is not among them).
    pub fn languages(&self) -> impl Iterator<Item = &str> {
        self.translations.iter().map(|(code, _)| code.as_str())
    }

    /// Every language version (default first), for checks.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.default.as_str())
            .chain(self.translations.iter().map(|(_, t)| t.as_str()))
    }
}

/// Lower case, `_` as `-`, trimmed: `es_MX` -> `es-mx`.
pub fn normalise_code(code: &str) -> String {
    code.trim().to_ascii_lowercase().replace('_', "-")
}

/// Whether `code` looks like a language code (`en`, `es-mx`, `zh-hant`).
pub fn valid_code(code: &str) -> bool {
    let code = normalise_code(code);
    let mut parts = code.split('-');
    let first_ok = parts
        .next()
        .is_some_and(|p| (2..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_lowercase()));
    first_ok
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

fn primary(code: &str) -> &str {
    code.split('-').next().unwrap_or(code)
}

/// The customer's language for this event (normalised), if Salted CX tells it.
pub fn customer_language(event: &Event) -> Option<String> {
    let from_trigger = event.trigger.language_customer.as_deref();
    let from_conversation = event
        .conversation
        .as_ref()
        .and_then(|c| c.language_customer.as_deref());
    let from_turns = event
        .turns
        .iter()
        .rev()
        .filter(|t| t.participant_type == Some(ParticipantType::Customer))
        .find_map(|t| t.language_customer.as_deref());
    [from_trigger, from_conversation, from_turns]
        .into_iter()
        .flatten()
        .map(normalise_code)
        .find(|code| valid_code(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text() -> LocalText {
        LocalText::new(
            "Hello".into(),
            vec![("es".into(), "Hola".into()), ("pt-BR".into(), "Olá".into())],
        )
    }

    #[test]
    fn the_customers_language_is_picked_with_the_default_as_fallback() {
        let text = text();
        assert_eq!(text.pick(Some("es")), "Hola");
        assert_eq!(text.pick(Some("es-mx")), "Hola");
        assert_eq!(text.pick(Some("pt")), "Olá");
        assert_eq!(text.pick(Some("de")), "Hello");
        assert_eq!(text.pick(None), "Hello");
    }

    #[test]
    fn language_codes_are_checked_and_normalised() {
        assert!(valid_code("en"));
        assert!(valid_code("es_MX"));
        assert!(valid_code("zh-Hant"));
        assert!(!valid_code("english"));
        assert!(!valid_code(""));
        assert!(!valid_code("e1"));
        assert_eq!(normalise_code(" PT_br "), "pt-br");
    }
}
