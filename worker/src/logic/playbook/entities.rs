//! Number-shaped request details (`shape = "number"`): an order number written as customers
//! write it — `12345678`, `123 456 789`, `1234-5678`, `#48213` — and never a phone number,
//! a year, a date, a price or a postcode.
//!
//! A number is a run of digit groups joined by single spaces, `-` or `/`. It is taken when it
//! has the declared number of digits, is not one of the shapes above, and either follows one
//! of the detail's context words within a few words ("order number", "pedido", "objednávka
//! č.", `#`) or comes right after the bot asked for the detail. Phone numbers are recognised
//! by a leading `+` or `00`, or by a phone word before them; prices by a currency next to
//! them or a price word before them; postcodes by their word or the `123 45` shape; dates by
//! their three parts; years as four digits from 1900 to 2099.

use super::matching::{Phrase, tokens};

/// How many words before a number its context word may stand.
const CONTEXT_REACH: usize = 4;
/// Words before a number that make it a phone number.
const PHONE_WORDS: &[&str] = &[
    "call",
    "phone",
    "tel",
    "mobile",
    "cell",
    "whatsapp",
    "ring",
    "telefon",
    "telefono",
    "llama",
    "llamame",
    "movil",
    "anrufen",
    "handy",
    "rufen",
    "telephone",
    "appelez",
    "appeler",
    "portable",
    "volejte",
    "zavolejte",
    "mobil",
    "telefonu",
    "cislo telefonu",
];
/// Words before a number that make it a price.
const PRICE_WORDS: &[&str] = &[
    "paid",
    "pay",
    "price",
    "cost",
    "costs",
    "charged",
    "pague",
    "pagado",
    "precio",
    "cuesta",
    "bezahlt",
    "preis",
    "kostet",
    "paye",
    "prix",
    "coute",
    "zaplatil",
    "zaplatila",
    "cena",
    "stoji",
];
/// Currencies written next to a price.
const CURRENCIES: &[&str] = &[
    "eur", "euro", "euros", "usd", "dollar", "dollars", "dolares", "czk", "kc", "korun", "koruna",
    "gbp", "pounds", "chf",
];
const CURRENCY_SIGNS: &[char] = &['€', '$', '£', '¥'];
/// Words before a number that make it a postcode.
const POSTCODE_WORDS: &[&str] = &[
    "zip",
    "postcode",
    "post code",
    "postal code",
    "psc",
    "plz",
    "postleitzahl",
    "cp",
    "codigo postal",
    "code postal",
];

/// One run of digits in a text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Run {
    /// Byte offsets in the text.
    start: usize,
    end: usize,
    /// The digits, without separators.
    digits: String,
    /// The size of each group.
    groups: Vec<usize>,
    /// The separators between groups.
    separators: Vec<char>,
}

/// The digit runs of `text`.
fn runs(text: &str) -> Vec<Run> {
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].1.is_ascii_digit() || (i > 0 && chars[i - 1].1.is_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = chars[i].0;
        let mut run = Run {
            start,
            end: start,
            digits: String::new(),
            groups: Vec::new(),
            separators: Vec::new(),
        };
        loop {
            let mut size = 0;
            while i < chars.len() && chars[i].1.is_ascii_digit() {
                run.digits.push(chars[i].1);
                size += 1;
                i += 1;
            }
            run.groups.push(size);
            run.end = chars.get(i).map_or(text.len(), |c| c.0);
            let joined = i + 1 < chars.len()
                && matches!(chars[i].1, ' ' | '-' | '/')
                && chars[i + 1].1.is_ascii_digit();
            if !joined {
                break;
            }
            run.separators.push(chars[i].1);
            i += 1;
        }
        // A number glued to letters ("A123B") is a code, not a number.
        if chars.get(i).is_some_and(|c| c.1.is_alphabetic()) {
            continue;
        }
        runs.push(run);
    }
    runs
}

/// Whether one of `phrases` ends among the last `reach` words of `words`.
fn ends_near(phrases: &[Phrase], words: &[String], reach: usize) -> bool {
    let from = words.len().saturating_sub(reach);
    phrases.iter().any(|p| {
        let n = p.len();
        (from..words.len()).any(|end| end + 1 >= n && p.matches_at(&words[end + 1 - n..=end]))
    })
}

fn list(words: &[&str]) -> Vec<Phrase> {
    words.iter().map(|w| Phrase::verbatim(w)).collect()
}

/// Whether `run` in `text` is something else than a request detail.
fn excluded(text: &str, run: &Run, before: &[String]) -> bool {
    let prefix = text[..run.start].trim_end();
    let suffix = text[run.end..].trim_start();
    let phone = prefix.ends_with('+')
        || (run.digits.starts_with("00") && run.digits.len() >= 10)
        || ends_near(&list(PHONE_WORDS), before, CONTEXT_REACH);
    let after = tokens(suffix.split_whitespace().next().unwrap_or_default());
    let price = prefix.ends_with(CURRENCY_SIGNS)
        || suffix.starts_with(CURRENCY_SIGNS)
        || after
            .first()
            .is_some_and(|w| CURRENCIES.contains(&w.as_str()))
        || ends_near(&list(PRICE_WORDS), before, 2);
    let postcode = ends_near(&list(POSTCODE_WORDS), before, 2) || run.groups == [3, 2];
    let g = &run.groups;
    let date = run.separators.len() == 2
        && run.separators.iter().all(|s| matches!(s, '/' | '-'))
        && ((g[0] <= 2 && g[1] <= 2 && (g[2] == 2 || g[2] == 4))
            || (g[0] == 4 && g[1] <= 2 && g[2] <= 2));
    let year = run.digits.len() == 4
        && run.groups.len() == 1
        && run
            .digits
            .parse::<u32>()
            .is_ok_and(|y| (1900..=2099).contains(&y));
    phone || price || postcode || date || year
}

/// The first number in `text` with `min..=max` digits that is a request detail: announced by
/// one of `context` (or `#`), or anywhere when the bot just asked for it (`asked`). The value
/// is its digits without separators.
pub fn find_number(
    text: &str,
    min: usize,
    max: usize,
    context: &[Phrase],
    asked: bool,
) -> Option<String> {
    runs(text).into_iter().find_map(|run| {
        if !(min..=max).contains(&run.digits.len()) {
            return None;
        }
        let before = tokens(&text[..run.start]);
        if excluded(text, &run, &before) {
            return None;
        }
        let hash = text[..run.start].trim_end().ends_with('#');
        let announced = hash || ends_near(context, &before, CONTEXT_REACH);
        (announced || asked).then_some(run.digits)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context() -> Vec<Phrase> {
        list(&[
            "order",
            "order number",
            "pedido",
            "objednavka",
            "bestellnummer",
        ])
    }

    fn found(text: &str, asked: bool) -> Option<String> {
        find_number(text, 4, 12, &context(), asked)
    }

    #[test]
    fn an_order_number_is_taken_after_its_context_word_without_separators() {
        assert_eq!(
            found("my order 12345 arrived broken", false).as_deref(),
            Some("12345")
        );
        assert_eq!(
            found("order number: 1234-5678", false).as_deref(),
            Some("12345678")
        );
        assert_eq!(
            found("Objednávka č. 123 456 789", false).as_deref(),
            Some("123456789")
        );
        assert_eq!(found("it's #48213", false).as_deref(), Some("48213"));
        assert_eq!(
            found("Bestellnummer 88 77 66", false).as_deref(),
            Some("887766")
        );
    }

    #[test]
    fn a_bare_number_counts_only_right_after_the_bot_asked_for_it() {
        assert_eq!(found("123 456 789", true).as_deref(), Some("123456789"));
        assert_eq!(found("it's 48213", true).as_deref(), Some("48213"));
        assert_eq!(found("I live at 48213", false), None);
    }

    #[test]
    fn phone_numbers_years_dates_prices_and_postcodes_are_never_taken() {
        for text in [
            "Damaged order, please call +420777123456",
            "order broken, call me on 777 123 456",
            "order: ring 0042077712345",
            "my order from March 2024 arrived broken",
            "order placed on 12/03/2024",
            "order of 2024-03-12",
            "order 49.99 €",
            "the order cost 1299",
            "order total 1500 CZK",
            "order to zip 10115",
            "order to 110 00 Praha",
        ] {
            assert_eq!(found(text, false), None, "{text}");
            assert_eq!(found(text, true), None, "{text} (asked)");
        }
    }

    #[test]
    fn too_short_or_too_long_numbers_and_codes_glued_to_letters_are_not_taken() {
        assert_eq!(found("order 123", false), None);
        assert_eq!(found("order 1234567890123", false), None);
        assert_eq!(found("order AB12345X", false), None);
    }
}
