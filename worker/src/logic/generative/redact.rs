//! Personal data removed from the customer's text before it leaves for the model
//! (`GENERATIVE_REDACT_PII`, on by default): e-mail addresses, IBANs and account numbers, payment
//! card numbers (13-19 digits passing the Luhn check) and phone numbers are replaced by
//! `[email]`, `[account]`, `[card]` and `[phone]`.
//!
//! Phone numbers are recognised by their shape, not by any digit run, so order numbers
//! (`12345678`) stay: an international prefix (`+420 601 234 567`, `0049 30 1234567`), digit
//! groups with separators (`601 234 567`, `(030) 1234-5678`), or digits after a word such as
//! "phone", "tel" or "call". A model answer that repeats one of the markers is not sent (see
//! [`super::verify`]).

use std::sync::LazyLock;

use regex::{Captures, Regex};

static EMAIL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)*\.[A-Za-z]{2,}")
        .expect("valid e-mail pattern")
});
/// An IBAN (two letters, two check digits, 11-30 letters and digits, in groups or not), or
/// digits after a word naming an account.
static ACCOUNT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,3})?\b|(?P<label>(?i:\b(?:account|acct|konto|cuenta|compte|účet|ucet|iban)\b(?:\s*(?:number|no\.?|nr\.?|nummer|número|numéro|číslo|cislo))?)\s*[:#]?\s*)\d[\d\- /]{4,}\d",
    )
    .expect("valid account pattern")
});
/// 13-19 digits, optionally in groups separated by spaces or dashes.
static CARD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b\d(?:[ \-]?\d){12,18}\b").expect("valid card pattern"));
/// Dates, which have the shape of grouped digits but are no phone numbers.
static DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}[\-/.]\d{1,2}[\-/.]\d{1,2}$|^\d{1,2}[\-/.]\d{1,2}[\-/.]\d{2,4}$")
        .expect("valid date pattern")
});
/// A phone number's shapes (see the module header).
static PHONE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)(?:\+|\b00)\d{1,3}(?:[\s.\-/]?\(?\d{1,5}\)?){2,6}|\(?\b\d{2,5}\)?(?:[\s.\-/]\d{2,5}){2,4}\b|(?P<label>\b(?:phone|tel|telephone|call|mobile|cell|whatsapp|telefon|teléfono|téléphone|portable|handy|číslo|cislo)\b\D{0,12})\d{6,15}\b",
    )
    .expect("valid phone pattern")
});

/// Compiles the patterns (they are otherwise compiled on first use).
pub fn prepare() {
    for pattern in [&EMAIL, &ACCOUNT, &DATE, &PHONE, &CARD] {
        LazyLock::force(pattern);
    }
}

/// `text` with personal data replaced by the markers.
pub fn redact(text: &str) -> String {
    // Phones before cards: an international number can pass the Luhn check by chance.
    let text = EMAIL.replace_all(text, "[email]");
    let text = ACCOUNT.replace_all(&text, |c: &Captures| labelled(c, "[account]"));
    let text = PHONE.replace_all(&text, |c: &Captures| {
        let digits = c[0].chars().filter(char::is_ascii_digit).count();
        let shaped = (7..=15).contains(&digits) && !DATE.is_match(c[0].trim());
        if shaped || c.name("label").is_some() {
            labelled(c, "[phone]")
        } else {
            c[0].to_string()
        }
    });
    let text = CARD.replace_all(&text, |c: &Captures| {
        let digits: Vec<u32> = c[0].chars().filter_map(|ch| ch.to_digit(10)).collect();
        if luhn(&digits) {
            "[card]".to_string()
        } else {
            c[0].to_string()
        }
    });
    text.into_owned()
}

/// The marker, after the label word the pattern matched with, if any.
fn labelled(captures: &Captures, marker: &str) -> String {
    match captures.name("label") {
        Some(label) => format!("{}{marker}", label.as_str()),
        None => marker.to_string(),
    }
}

/// The Luhn checksum of card numbers.
fn luhn(digits: &[u32]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_e_mails_cards_and_accounts_are_replaced() {
        assert_eq!(
            redact("Call me on +420 601 234 567 or 0049 30 1234567, or at (030) 1234-5678."),
            "Call me on [phone] or [phone], or at [phone]."
        );
        assert_eq!(redact("my number is 601 234 567"), "my number is [phone]");
        assert_eq!(redact("phone: 601234567"), "phone: [phone]");
        assert_eq!(
            redact("Write to Jana.Novak+shop@mail.example.co.uk please"),
            "Write to [email] please"
        );
        assert_eq!(redact("card 4111 1111 1111 1111"), "card [card]");
        assert_eq!(redact("card 4111-1111-1111-1111!"), "card [card]!");
        assert_eq!(
            redact("IBAN CZ65 0800 0000 1920 0014 5399 and DE89370400440532013000"),
            "IBAN [account] and [account]"
        );
        assert_eq!(
            redact("account number 1920001453"),
            "account number [account]"
        );
    }

    #[test]
    fn order_numbers_dates_prices_and_times_stay() {
        for text in [
            "It is order 12345678",
            "order #1234-5678",
            "I paid 12.50 EUR on 2024-05-01 at 18:30",
            "delivered within 3-5 working days",
            "the 16-digit number 1234 5678 9012 3456 fails the check",
        ] {
            assert_eq!(redact(text), text);
        }
    }
}
