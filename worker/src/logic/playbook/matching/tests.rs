//! Tests of tolerant matching.

use super::*;
use proptest::prelude::*;

fn filler() -> Filler {
    Filler::new(["hello"])
}

fn words(text: &str) -> Words {
    Words::new(text, &filler())
}

#[test]
fn normalising_ignores_case_punctuation_and_accents() {
    assert_eq!(
        tokens("Où est MA commande?!"),
        ["ou", "est", "ma", "commande"]
    );
    assert_eq!(
        tokens("Chci mluvit s člověkem."),
        ["chci", "mluvit", "s", "clovekem"]
    );
}

#[test]
fn words_with_a_shared_stem_or_one_typo_are_the_same_word() {
    assert!(same_word("delivered", "delivery"));
    assert!(same_word("deliveries", "deliver"));
    assert!(same_word("recieve", "receive"));
    assert!(same_word("delivred", "delivered"));
    assert!(!same_word("human", "humanitarian"));
    assert!(!same_word("refund", "return"));
    assert!(!same_word("order", "older"));
    assert!(!same_word("123456", "123457"));
}

#[test]
fn a_phrase_matches_its_words_in_any_order() {
    let phrase = Phrase::new("talk to a real person", &filler());
    assert!(phrase.found_in(&words("Person! A REAL one, I want to talk")));
    assert!(!phrase.found_in(&words("I want to talk about my order")));
}

#[test]
fn phrases_in_scripts_without_spaces_match_as_substrings() {
    let phrase = Phrase::new("人工客服", &filler());
    assert!(phrase.found_in(&words("我要人工客服谢谢")));
}

#[test]
fn filler_words_do_not_count_as_meaningful() {
    assert_eq!(words("Hello, can you help me?").meaningful(), 1);
}

#[test]
fn a_refusal_covers_the_words_after_it_in_its_clause_up_to_a_new_request() {
    let refusals = Negations::refusals(["rather not"]).with_scope(["want"], ["why"]);
    let covered = |text: &str| {
        let w = words(text);
        let flags = refusals.covered(&w);
        w.all()
            .iter()
            .zip(flags)
            .filter(|(_, c)| *c)
            .map(|(w, _)| w.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        covered("I don't want to return anything"),
        "to return anything"
    );
    assert_eq!(
        covered("no need for a refund, where is my parcel?"),
        "for a refund"
    );
    assert_eq!(covered("Ich will keinen Refund"), "refund");
    assert_eq!(covered("I'd rather not return it"), "return it");
    // A plain negation is no refusal; a later request ends the refused part.
    assert_eq!(covered("my parcel did not arrive"), "");
    assert_eq!(
        covered("I don't want a refund I want to return it"),
        "a refund i"
    );
}

#[test]
fn a_negation_stops_at_a_later_request_and_is_rhetorical_after_a_question_word() {
    let n = Negations::new([]).with_scope(["want", "quiero"], ["why"]);
    let negated = |phrase: &str, text: &str| {
        let found = Phrase::verbatim(phrase).occurrences(&words(text), None, &n);
        !found.is_empty() && found.iter().all(|o| o.negated)
    };
    assert!(!negated("human", "no i want a human"));
    assert!(!negated("humano", "no quiero un bot quiero un humano"));
    assert!(!negated("human", "why is there no human I can talk to"));
    assert!(negated("human", "I don't want a human"));
    assert!(negated("humano", "no quiero un humano"));
}

fn scrambled(words: Vec<String>) -> impl Strategy<Value = String> {
    let n = words.len();
    (
        Just(words).prop_shuffle(),
        proptest::collection::vec(any::<bool>(), n),
        proptest::collection::vec(
            prop::sample::select(vec![" ", ", ", "! ", "? ", " - ", "... "]),
            n,
        ),
    )
        .prop_map(|(words, upper, separators)| {
            let mut out = String::new();
            for ((word, upper), sep) in words.iter().zip(upper).zip(separators) {
                out.push_str(&if upper {
                    word.to_uppercase()
                } else {
                    word.clone()
                });
                out.push_str(sep);
            }
            out
        })
}

proptest! {
    #[test]
    fn a_question_matches_itself_whatever_the_case_punctuation_and_word_order(
        (question, message) in proptest::collection::vec("[a-z]{1,10}", 1..8)
            .prop_flat_map(|words| (Just(words.join(" ")), scrambled(words)))
    ) {
        let f = filler();
        let phrase = Phrase::new(&question, &f);
        let (score, _) = phrase.coverage(&Words::new(&message, &f));
        prop_assert!((score - 1.0).abs() < f64::EPSILON, "{question:?} vs {message:?}: {score}");
        prop_assert!(phrase.found_in(&Words::new(&message, &f)));
    }
}

fn negations() -> Negations {
    Negations::new(["no need"])
}

#[test]
fn a_negation_reaches_the_words_after_it_in_its_own_clause_only() {
    let human = Phrase::new("human", &filler());
    let n = negations();
    assert_eq!(human.find(&words("I want a human"), &n), Found::Yes);
    assert_eq!(
        human.find(&words("I don't want a human"), &n),
        Found::Negated
    );
    assert_eq!(
        human.find(&words("No need for a human, thanks"), &n),
        Found::Negated
    );
    assert_eq!(human.find(&words("no, I want a human"), &n), Found::Yes);
    assert_eq!(
        human.find(&words("not the bot but a human"), &n),
        Found::Yes
    );
    assert_eq!(human.find(&words("where is my parcel"), &n), Found::No);
    // Too far away to negate the phrase.
    assert_eq!(
        human.find(
            &words("I do not understand why it is so hard to reach a human"),
            &n
        ),
        Found::Yes
    );
}

#[test]
fn a_negation_inside_a_verbatim_phrase_negates_it() {
    let works = Phrase::verbatim("it work");
    let found = works.occurrences(&words("it doesn't work"), Some(4), &negations());
    assert_eq!(found.len(), 1);
    assert!(found[0].negated);
}

#[test]
fn verbatim_phrases_accept_endings_and_typos_but_never_a_shorter_word() {
    let n = negations();
    let goodbye = Phrase::verbatim("goodbye");
    assert!(
        goodbye
            .occurrences(&words("any good movie?"), None, &n)
            .is_empty()
    );
    assert_eq!(goodbye.occurrences(&words("goodbyee!"), None, &n).len(), 1);
    let kein = Phrase::verbatim("kein problem");
    assert_eq!(
        kein.occurrences(&words("keinen Problem"), None, &n).len(),
        1
    );
}

#[test]
fn a_longer_occurrence_covers_a_shorter_one_inside_it() {
    let n = negations();
    let text = words("no problem at all");
    let no = Phrase::verbatim("no").occurrences(&text, None, &n)[0];
    let no_problem = Phrase::verbatim("no problem").occurrences(&text, None, &n)[0];
    assert!(no.covered_by(&no_problem));
    assert!(!no_problem.covered_by(&no));
}

#[test]
fn a_message_is_cut_into_requests_at_clause_marks_and_request_words() {
    let starts = PhraseSet::new(vec![
        Phrase::verbatim("and also"),
        Phrase::verbatim("y también"),
    ]);
    let pieces = |text: &str| {
        let w = words(text);
        w.pieces(&starts)
            .into_iter()
            .map(|r| w.all()[r].join(" "))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        pieces("where is my order and also I want a refund"),
        ["where is my order", "and also i want a refund"]
    );
    assert_eq!(
        pieces("¿Dónde está mi pedido? y también el horario"),
        ["donde esta mi pedido", "y tambien el horario"]
    );
    assert_eq!(
        pieces("Váza dorazila rozbitá, ale druhý balík nepřišel"),
        ["vaza dorazila rozbita", "ale druhy balik neprisel"]
    );
    assert_eq!(pieces("where is my order"), ["where is my order"]);
}
