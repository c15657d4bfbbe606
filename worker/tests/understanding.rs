//! What the built-in playbook understands, message by message, in several languages and
//! phrasings: requests for a human with and without negation, small talk and off-topic
//! requests, answers to the closing question, ratings, request details and reply languages.
//! Whole conversations are in `tests/conversations/` (run by `saltedcx-sim test`).

use serde_json::{Map, Value, json};
use shared::answer::{Action, Reply};
use worker::logic::engagements::Identity;
use worker::logic::playbook::{Options, ReplyLanguage, Signal};

mod support;
use support::{builtin, escalates, message, messages};

fn answering(text: &str, language: &str) -> Reply {
    builtin().decide(&message(text, language, json!({"p": "a"}), false))
}

fn state(reply: &Reply) -> Map<String, Value> {
    reply
        .conversation
        .as_ref()
        .and_then(|c| c.custom.as_ref())
        .and_then(|c| c.as_map().get("yl"))
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default()
}

#[test]
fn requests_for_a_human_escalate_in_several_languages_and_phrasings() {
    for (text, language) in [
        ("I want to talk to a human", "en"),
        ("can I speak to someone real? a real person please", "en"),
        ("Not the bot, but a human please", "en"),
        ("Quiero hablar con un agente, por favor", "es"),
        ("Ich möchte mit einem Mitarbeiter sprechen", "de"),
        ("Je voudrais parler à un conseiller", "fr"),
    ] {
        assert!(escalates(&answering(text, language)), "{text}");
    }
}

#[test]
fn a_negated_request_for_a_human_does_not_escalate_and_the_rest_is_answered() {
    for (text, language, answer) in [
        (
            "No need to talk to an agent, just tell me where my parcel is",
            "en",
            "Orders are delivered within 3-5 working days",
        ),
        (
            "I don't want a human, just your opening hours",
            "en",
            "Our support is available Monday to Friday",
        ),
        (
            "No quiero hablar con un humano, solo dime el horario",
            "es",
            "Nuestro soporte está disponible",
        ),
        (
            "Ich brauche keinen Mitarbeiter, sagen Sie mir nur die Öffnungszeiten",
            "de",
            "Unser Support ist Montag bis Freitag",
        ),
        (
            "Pas besoin d'un conseiller, comment retourner un article ? retour",
            "fr",
            "Vous pouvez retourner tout article",
        ),
    ] {
        let reply = answering(text, language);
        assert!(!escalates(&reply), "{text}: {reply:?}");
        assert!(
            messages(&reply).iter().any(|m| m.starts_with(answer)),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn small_talk_is_answered_with_a_redirect_before_any_request_and_never_escalates() {
    let first = builtin().decide(&message(
        "hello, nice day isn't it",
        "en",
        json!({"p": "n"}),
        false,
    ));
    assert_eq!(
        messages(&first),
        [
            "It is indeed! I hope you get to enjoy it.",
            "I can help you with orders, deliveries, returns, opening hours and your account. What can I do for you?"
        ]
    );
    assert!(!escalates(&first));
    for (text, language, answer) in [
        ("how are you doing?", "en", "I'm doing well"),
        ("¿Qué tal estás?", "es", "¡Muy bien"),
        ("Hallo, wie geht's?", "de", "Mir geht es gut"),
        ("thanks a lot!", "en", "You're welcome!"),
        ("are you a bot?", "en", "I'm the virtual assistant"),
    ] {
        let reply = answering(text, language);
        assert!(!escalates(&reply), "{text}");
        assert!(
            messages(&reply)
                .first()
                .is_some_and(|m| m.starts_with(answer)),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn off_topic_requests_get_a_polite_answer_and_the_redirect_and_do_not_count_as_misunderstood() {
    for (text, language) in [
        ("can you recommend a film?", "en"),
        ("Any good movie for tonight?", "en"),
        ("tell me a joke", "en"),
        ("¿Me recomiendas una película?", "es"),
        ("Wie wird das Wetter morgen?", "de"),
    ] {
        // Already one misunderstanding: another one would escalate.
        let reply = builtin().decide(&message(text, language, json!({"p": "a", "m": 1}), false));
        assert!(!escalates(&reply), "{text}: {reply:?}");
        assert_eq!(messages(&reply).len(), 2, "{text}: {reply:?}");
        // The state is unchanged: the misunderstanding counter stays at 1.
        assert!(reply.conversation.is_none(), "{text}: {reply:?}");
    }
}

fn closing(text: &str, language: &str, needs_help: bool) -> Reply {
    builtin().decide(&message(text, language, json!({"p": "x"}), needs_help))
}

#[test]
fn happy_answers_at_the_closing_question_mean_resolved_whatever_their_no() {
    for (text, language) in [
        ("yes", "en"),
        ("Yes, thanks!", "en"),
        ("no problem, all good now", "en"),
        ("No worries, it works", "en"),
        ("nothing else, thank you", "en"),
        ("sí, todo bien", "es"),
        ("Ja, alles gut", "de"),
        ("kein Problem, danke", "de"),
        ("oui, c'est bon", "fr"),
        ("ano, díky", "cs"),
    ] {
        let reply = closing(text, language, false);
        assert!(!escalates(&reply), "{text}: {reply:?}");
        assert_eq!(
            state(&reply).get("p"),
            Some(&json!("f")),
            "{text}: {reply:?}"
        );
    }
}

#[test]
fn unhappy_answers_at_the_closing_question_escalate_again() {
    for (text, language) in [
        ("no", "en"),
        ("No, it still doesn't work", "en"),
        ("not really", "en"),
        ("it's not resolved", "en"),
        ("it doesn't work", "en"),
        ("nope, the parcel is still missing", "en"),
        ("no, todavía no", "es"),
        ("Nein, es funktioniert nicht", "de"),
        ("es funktioniert nicht", "de"),
        ("non, pas encore", "fr"),
    ] {
        let reply = closing(text, language, false);
        assert!(escalates(&reply), "{text}: {reply:?}");
    }
}

#[test]
fn saying_resolved_clears_needs_help_and_asks_for_a_rating_in_the_customers_language() {
    let reply = closing("sí, resuelto", "es", true);
    assert_eq!(reply.actions[0], Action::NeedsHelp { needs_help: false });
    assert_eq!(
        messages(&reply),
        ["¡Genial! ¿Cómo valorarías nuestra ayuda del 1 (mala) al 5 (excelente)?"]
    );
    let decision = builtin().decide_with(
        &Options::default(),
        &message("yes", "en", json!({"p": "x"}), true),
        None,
    );
    assert!(
        decision
            .signals
            .contains(&Signal::Resolution { resolved: true })
    );
}

#[test]
fn ratings_are_understood_as_numbers_or_words_and_stored() {
    for (text, language, rating) in [
        ("5", "en", 5),
        ("I'd give you 4 out of 5", "en", 4),
        ("4/5, quick and friendly", "en", 4),
        ("excellent!", "en", 5),
        ("pretty bad to be honest", "en", 2),
        ("cinco", "es", 5),
        ("sehr gut", "de", 5),
        ("très bien", "fr", 5),
        ("10/10", "en", 5),
    ] {
        let decision = builtin().decide_with(
            &Options::default(),
            &message(text, language, json!({"p": "f"}), false),
            None,
        );
        if text == "10/10" {
            // Beyond the scale: no number, but "10" is no rating word either.
            assert_eq!(state(&decision.reply).get("s"), None, "{text}");
            continue;
        }
        assert_eq!(
            state(&decision.reply).get("s"),
            Some(&json!(rating)),
            "{text}"
        );
        assert!(
            decision
                .signals
                .contains(&Signal::Rating { rating, scale: 5 }),
            "{text}"
        );
        assert_eq!(state(&decision.reply).get("p"), Some(&json!("d")), "{text}");
    }
}

#[test]
fn an_order_number_is_captured_and_asked_for_when_an_answer_needs_it() {
    let asked = answering("My parcel arrived damaged", "en");
    assert_eq!(
        messages(&asked),
        [
            "I'm sorry to hear that. What is your order number? You can find it in your confirmation e-mail."
        ]
    );
    assert_eq!(state(&asked).get("w"), Some(&json!("damaged")));
    let given = builtin().decide(&message(
        "it's 40012345",
        "en",
        Value::Object(state(&asked)),
        false,
    ));
    assert!(
        messages(&given)[0].contains("I have noted order 40012345"),
        "{given:?}"
    );
    assert_eq!(state(&given).get("d"), Some(&json!({"order": "40012345"})));
    assert_eq!(state(&given).get("w"), None);
    // Given at once, the number is used without asking.
    let at_once = answering("Bestellung 778899 ist kaputt angekommen", "de");
    assert!(
        messages(&at_once)[0].contains("Bestellung 778899 notiert"),
        "{at_once:?}"
    );
}

#[test]
fn replies_use_the_customers_language_unless_salted_cx_translates_them() {
    let event = message("¿Cuál es vuestro horario?", "es", json!({"p": "a"}), false);
    let own = builtin().decide(&event);
    assert!(messages(&own)[0].starts_with("Nuestro soporte"), "{own:?}");
    let options = Options {
        identity: Identity::default(),
        reply_language: ReplyLanguage::Account,
    };
    let translated = builtin().decide_with(&options, &event, None).reply;
    assert!(
        messages(&translated)[0].starts_with("Our support"),
        "{translated:?}"
    );
    // A language the playbook does not have falls back to the default language.
    let italian = answering("Quali sono i vostri orari? horario", "it");
    assert!(
        messages(&italian)[0].starts_with("Our support"),
        "{italian:?}"
    );
}
