//! Understanding with calibrated confidence, through the built-in playbook: ranked candidates
//! with a confidence in 0..1, the not-known path below the threshold (never another entry's
//! answer), several requests in one message, refusals, tone, and the decision explanation
//! that says all of it.

use serde_json::json;
use shared::answer::{Action, Reply};
use worker::logic::playbook::Explanation;

mod support;
use support::{builtin, message, messages};

fn explain(text: &str, language: &str) -> (Reply, Explanation) {
    let (decision, explanation) =
        builtin().decide_explained(&message(text, language, json!({"p": "a"}), false));
    (decision.reply, explanation)
}

fn chosen(explanation: &Explanation) -> Vec<(String, Option<String>)> {
    explanation
        .chosen
        .iter()
        .map(|c| (c.kind.clone(), c.id.clone()))
        .collect()
}

fn answered(explanation: &Explanation) -> Vec<&str> {
    explanation
        .chosen
        .iter()
        .filter(|c| matches!(c.kind.as_str(), "knowledge" | "ask_detail"))
        .filter_map(|c| c.id.as_deref())
        .collect()
}

#[test]
fn candidates_are_ranked_with_a_confidence_between_0_and_1() {
    let (_, explanation) = explain("Where is my parcel?", "en");
    let scores: Vec<f64> = explanation.candidates.iter().map(|c| c.score).collect();
    assert!(!scores.is_empty() && scores.len() <= 5, "{scores:?}");
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "ranked: {scores:?}"
    );
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)), "{scores:?}");
    assert_eq!(explanation.candidates[0].id, "delivery");
    assert_eq!(explanation.candidates[0].kind, "knowledge");
    assert!(explanation.candidates[0].score >= 0.5);
}

#[test]
fn what_the_knowledge_base_does_not_cover_takes_the_not_known_path_in_every_language() {
    for (text, language, says) in [
        ("Do you deliver to Slovakia?", "en", "can't help with that"),
        (
            "How much does shipping cost to Austria?",
            "en",
            "can't help with that",
        ),
        (
            "What is today's exchange rate for the euro?",
            "en",
            "can't help with that",
        ),
        (
            "the delivery guy was rude to me",
            "en",
            "can't help with that",
        ),
        (
            "¿Puedo pagar con PayPal?",
            "es",
            "no puedo ayudarte con eso",
        ),
        (
            "Kann ich die Lieferadresse noch ändern?",
            "de",
            "dabei kann ich Ihnen nicht helfen",
        ),
        (
            "Quelle est la durée de la garantie ?",
            "fr",
            "je ne peux pas vous aider",
        ),
        (
            "Doručujete i na Slovensko?",
            "cs",
            "s tím vám pomoci nemohu",
        ),
    ] {
        let (reply, explanation) = explain(text, language);
        assert!(
            answered(&explanation).is_empty(),
            "{text}: {:?}",
            chosen(&explanation)
        );
        assert!(
            messages(&reply).iter().any(|m| m.contains(says)),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn a_weak_accidental_match_is_never_answered() {
    // The worst answers: each message shares a word with the wrong entry.
    for (text, wrong) in [
        (
            "I opened the parcel today and the vase inside was broken",
            "opening-hours",
        ),
        ("The courier never came, no sign of him all day", "password"),
        (
            "I'm the office manager at Acme, where is our order?",
            "escalation",
        ),
    ] {
        let (reply, explanation) = explain(text, "en");
        assert!(
            !answered(&explanation).contains(&wrong),
            "{text}: {:?}",
            chosen(&explanation)
        );
        let escalated = reply
            .actions
            .iter()
            .any(|a| matches!(a, Action::NeedsHelp { needs_help: true }));
        assert!(!escalated, "{text}: {reply:?}");
    }
    let (_, vase) = explain(
        "I opened the parcel today and the vase inside was broken",
        "en",
    );
    assert_eq!(answered(&vase), ["damaged"]);
    let (_, courier) = explain("The courier never came, no sign of him all day", "en");
    assert_eq!(answered(&courier), ["delivery"]);
}

#[test]
fn several_requests_in_one_message_are_each_answered() {
    for (text, language, expected) in [
        (
            "where is my order and also I want a refund for the shoes",
            "en",
            ["delivery", "returns"],
        ),
        (
            "¿Dónde está mi paquete? Y otra cosa: ¿a qué hora abrís mañana?",
            "es",
            ["delivery", "opening-hours"],
        ),
        (
            "Ich habe mein Passwort vergessen und wie kann ich die Jacke zurückgeben?",
            "de",
            ["password", "returns"],
        ),
    ] {
        let (reply, explanation) = explain(text, language);
        let mut found = answered(&explanation);
        found.sort_unstable();
        assert_eq!(found, expected, "{text}: {:?}", chosen(&explanation));
        assert_eq!(messages(&reply).len(), 2, "{text}: {reply:?}");
        assert!(explanation.clauses.len() >= 2, "{:?}", explanation.clauses);
    }
}

#[test]
fn what_the_customer_refuses_is_not_what_gets_answered() {
    let (_, explanation) = explain(
        "I don't want a refund, I just want to know where my parcel is",
        "en",
    );
    assert_eq!(answered(&explanation), ["delivery"]);
    let (_, explanation) = explain("refund? no thanks. where is my package?", "en");
    assert_eq!(answered(&explanation), ["delivery"]);
}

#[test]
fn sarcasm_gets_an_apology_never_youre_welcome_and_no_small_talk() {
    for (text, language) in [
        ("wow thanks for nothing", "en"),
        ("gracias por nada", "es"),
        ("danke für nichts", "de"),
        ("merci pour rien", "fr"),
        ("díky za nic", "cs"),
    ] {
        let (reply, explanation) = explain(text, language);
        assert!(explanation.tone.contains(&"sarcasm".to_string()), "{text}");
        assert!(
            !explanation.chosen.iter().any(|c| c.kind == "intent"),
            "{text}: {:?}",
            chosen(&explanation)
        );
        assert!(
            explanation.chosen.iter().any(|c| c.kind == "apology"),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn a_frustrated_customer_gets_a_human_on_the_second_complaint() {
    let first = builtin().decide(&message(
        "this is ridiculous, useless bot",
        "en",
        json!({"p": "a"}),
        false,
    ));
    let state = first
        .conversation
        .as_ref()
        .and_then(|c| c.custom.as_ref())
        .and_then(|c| c.as_map().get("yl").cloned())
        .unwrap_or_default();
    assert_eq!(state["f"], 1);
    let second = builtin().decide(&message(
        "are you serious?? absolutely useless",
        "en",
        state,
        false,
    ));
    assert!(
        second
            .actions
            .iter()
            .any(|a| matches!(a, Action::NeedsHelp { needs_help: true })),
        "{second:?}"
    );
}

#[test]
fn the_explanation_serialises_to_json_with_every_part() {
    let (_, explanation) = explain("Kde je můj balík?", "cs");
    let json = serde_json::to_value(&explanation).expect("serialises");
    for key in [
        "language",
        "phase_before",
        "phase_after",
        "state_before",
        "state_after",
        "candidates",
        "chosen",
        "clauses",
        "details",
        "tone",
        "notes",
    ] {
        assert!(json.get(key).is_some(), "{key} missing in {json}");
    }
    assert_eq!(
        json["language"],
        json!({"code": "cs", "reason": "customer"})
    );
    assert_eq!(json["chosen"][0]["kind"], "knowledge");
    assert_eq!(json["chosen"][0]["id"], "delivery");
    assert_eq!(json["phase_after"], "answering");
}

#[test]
fn a_message_without_a_language_is_answered_in_the_language_it_is_written_in() {
    let event = message(
        "Dobrý den, zapomněl jsem heslo a nemůžu se přihlásit",
        "",
        json!({"p": "a"}),
        false,
    );
    let (decision, explanation) = builtin().decide_explained(&event);
    assert_eq!(explanation.language.code, "cs");
    assert_eq!(explanation.language.reason, "detected");
    assert!(
        messages(&decision.reply)[0].starts_with("Heslo si můžete obnovit"),
        "{:?}",
        decision.reply
    );
}

#[test]
fn deciding_without_an_explanation_gives_the_same_reply() {
    for text in [
        "Where is my parcel?",
        "wow thanks for nothing",
        "where is my order and also I want a refund",
        "Do you deliver to Slovakia?",
    ] {
        let event = message(text, "en", json!({"p": "a"}), false);
        let (explained, _) = builtin().decide_explained(&event);
        assert_eq!(builtin().decide(&event), explained.reply, "{text}");
    }
}
