//! Language packs: a language is one self-contained `[packs.<code>]` table that users add or
//! change without code; `check-playbook` reports what an incomplete pack lacks. The built-in
//! packs (en, es, de, fr, cs) understand requests for a human, refusals and ratings in every
//! language.

use serde_json::json;
use worker::logic::playbook::{DEFAULT_PLAYBOOK, Playbook, PlaybookError};

mod support;
use support::{builtin, escalates, message, messages};

fn problems(source: &str) -> Vec<String> {
    match Playbook::from_toml("pack.toml", source) {
        Ok(_) => panic!("expected the playbook to be rejected"),
        Err(PlaybookError::Invalid { problems, .. }) => {
            problems.into_iter().map(|p| p.message).collect()
        }
        Err(other) => panic!("unexpected error: {other}"),
    }
}

const SMALL: &str = r#"
version = 1
[conversation]
greeting = "Hello!"
not_known = "Sorry, I can't help with that."
[closing]
question = "Resolved?"
[[knowledge]]
id = "delivery"
questions = ["Where is my parcel?"]
answer = "Soon."
[packs.en]
negations = ["not"]
human = ["human"]
yes = ["yes"]
no = ["no"]
ratings.5 = ["great"]
"#;

#[test]
fn a_complete_pack_adds_a_language_without_code() {
    let source = format!(
        "{SMALL}
[packs.pl]
negations = [\"nie\"]
human = [\"człowiek\"]
yes = [\"tak\"]
no = [\"nie\"]
ratings.5 = [\"świetnie\"]
texts.greeting = \"Dzień dobry!\"
texts.not_known = \"Przepraszam, w tym nie pomogę.\"
texts.closing_question = \"Czy sprawa rozwiązana?\"
knowledge.delivery.answer = \"Wkrótce.\"
knowledge.delivery.examples = [\"Gdzie jest moja paczka?\", \"paczka nie dotarła\"]
"
    );
    let playbook = Playbook::from_toml("pack.toml", &source).expect("valid playbook");
    assert!(playbook.speaks("pl"));
    let reply = playbook.decide(&message(
        "Gdzie jest moja paczka?",
        "pl",
        json!({"p": "a"}),
        false,
    ));
    assert_eq!(messages(&reply), ["Wkrótce."]);
    let human = playbook.decide(&message(
        "chcę rozmawiać z człowiekiem",
        "pl",
        json!({"p": "a"}),
        false,
    ));
    assert!(escalates(&human), "{human:?}");
}

#[test]
fn check_playbook_names_everything_an_incomplete_pack_lacks() {
    let source = format!(
        "{SMALL}
[packs.pl]
texts.greeting = \"Dzień dobry!\"
"
    );
    let found = problems(&source);
    assert_eq!(found.len(), 1, "{found:#?}");
    let problem = &found[0];
    for missing in [
        "the language pack `pl` is incomplete",
        "texts not_known, closing_question",
        "knowledge `delivery`: answer, examples",
        "word lists negations, human, yes, no, ratings",
    ] {
        assert!(problem.contains(missing), "{missing} not in: {problem}");
    }
}

#[test]
fn packs_are_checked_for_codes_text_names_and_the_ids_they_name() {
    let source = format!(
        "{SMALL}
[packs.polish]
negations = [\"nie\"]
[packs.en.texts]
welcome = \"Hi\"
[packs.en.knowledge.parcels]
examples = [\"where is it\"]
"
    );
    let found = problems(&source).join("\n");
    assert!(
        found.contains("`packs.polish`: `polish` is not a language code"),
        "{found}"
    );
    assert!(
        found.contains("`packs.en.texts.welcome` is not a text of the playbook"),
        "{found}"
    );
    assert!(
        found.contains("names the knowledge entry `parcels`, which the playbook does not have"),
        "{found}"
    );
}

#[test]
fn a_text_given_both_in_the_file_and_in_a_pack_is_an_error() {
    let source = SMALL.replace(
        "greeting = \"Hello!\"",
        "greeting.en = \"Hello!\"\ngreeting.pl = \"Cześć\"",
    ) + "\n[packs.pl]\ntexts.greeting = \"Dzień dobry!\"\n";
    let found = problems(&source).join("\n");
    assert!(
        found.contains("given in the language `pl` twice"),
        "{found}"
    );
}

#[test]
fn czech_customers_are_understood_and_answered_in_czech() {
    for (text, answer) in [
        (
            "Kde je můj balík?",
            "Objednávky doručujeme do 3–5 pracovních dnů",
        ),
        ("Zapomněl jsem heslo", "Heslo si můžete obnovit"),
        ("kdy mate otevreno", "Naše podpora je k dispozici"),
        (
            "Jak vrátím boty, které mi nesedí?",
            "Jakékoli zboží můžete vrátit do 30 dnů",
        ),
    ] {
        let reply = builtin().decide(&message(text, "cs", json!({"p": "a"}), false));
        assert!(
            messages(&reply).iter().any(|m| m.starts_with(answer)),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn requests_for_a_human_without_punctuation_or_indirect_escalate_in_every_language() {
    for (text, language) in [
        ("no i want a human", "en"),
        ("why is there no human I can talk to??", "en"),
        ("is there anyone I can talk to about this", "en"),
        ("no quiero un bot quiero un humano", "es"),
        ("nein ich will mit einem Mitarbeiter sprechen", "de"),
        ("non je veux parler à un conseiller", "fr"),
        ("nechci robota chci mluvit s člověkem", "cs"),
    ] {
        let reply = builtin().decide(&message(text, language, json!({"p": "a"}), false));
        assert!(escalates(&reply), "{text}: {reply:?}");
    }
    for (text, language) in [
        ("are you a real person or a bot?", "en"),
        ("a operátora nepotřebuju, máte zítra otevřeno?", "cs"),
        ("Einen Mitarbeiter brauche ich dafür nicht", "de"),
    ] {
        let reply = builtin().decide(&message(text, language, json!({"p": "a"}), false));
        assert!(!escalates(&reply), "{text}: {reply:?}");
    }
}

#[test]
fn ratings_in_words_stars_and_emoji_are_understood_in_every_language() {
    for (text, language, rating) in [
        ("pět hvězdiček", "cs", 5),
        ("tak tři", "cs", 3),
        ("⭐⭐⭐⭐", "en", 4),
        ("★★★★★", "fr", 5),
        ("👍", "en", 5),
        ("cuatro estrellas", "es", 4),
        ("vier von fünf", "de", 4),
        ("quatre étoiles", "fr", 4),
    ] {
        let reply = builtin().decide(&message(text, language, json!({"p": "f"}), false));
        let stored = reply
            .conversation
            .as_ref()
            .and_then(|c| c.custom.as_ref())
            .and_then(|c| c.as_map().get("yl").cloned())
            .and_then(|yl| yl.get("s").cloned());
        assert_eq!(stored, Some(json!(rating)), "{text}: {reply:?}");
    }
}

#[test]
fn the_small_example_of_the_documentation_is_a_valid_playbook() {
    let docs = include_str!("../../docs/logic.md");
    let example = docs
        .split("### A small example")
        .nth(1)
        .and_then(|rest| rest.split("```toml\n").nth(1))
        .and_then(|rest| rest.split("```").next())
        .expect("the small example in docs/logic.md");
    let playbook = Playbook::from_toml("example.toml", example).expect("a valid example");
    assert!(playbook.speaks("es"));
    let reply = playbook.decide(&message(
        "¿Dónde está mi pedido?",
        "es",
        json!({"p": "a"}),
        false,
    ));
    assert_eq!(
        messages(&reply),
        ["Los pedidos se entregan en 3-5 días laborables."]
    );
}

#[test]
fn the_default_playbook_declares_five_complete_packs() {
    for code in ["en", "es", "de", "fr", "cs"] {
        assert!(
            DEFAULT_PLAYBOOK.contains(&format!("[packs.{code}]")),
            "{code}"
        );
        assert!(builtin().speaks(code), "{code}");
    }
}
