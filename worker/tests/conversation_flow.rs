//! The built-in playbook over several messages: order numbers by shape and context (never a
//! phone number, year, price or postcode) and a guest without one, a stuck customer (a human
//! offered, then called), a presence check while waiting, "never mind", and the closing
//! (mixed answers, thanks, a question at the rating step) — each decision fed the state of the
//! one before, as Salted CX does.

use serde_json::{Map, Value, json};
use shared::answer::{Action, Reply};
use shared::event::Event;

mod support;
use support::{builtin, escalates, messages};

/// A conversation: the state and needs-help flag carried from answer to answer.
struct Chat {
    language: &'static str,
    state: Value,
    needs_help: bool,
}

impl Chat {
    fn new(language: &'static str) -> Self {
        Self::at(language, json!({"p": "a"}), false)
    }

    fn at(language: &'static str, state: Value, needs_help: bool) -> Self {
        Self {
            language,
            state,
            needs_help,
        }
    }

    fn say(&mut self, text: &str) -> Reply {
        let event = json!({
            "requestId": "3c99280a-9871-4656-a472-5da68d30c01f",
            "accountId": "acc",
            "expires": "2030-01-01T00:00:00Z",
            "trigger": {"type": "MESSAGE", "participantType": "CUSTOMER", "content": text,
                        "contentCustomer": text, "languageCustomer": self.language},
            "conversation": {"pid": "conv", "needsHelp": self.needs_help,
                             "custom": {"yl": self.state}},
            "engagements": [],
            "turns": [{"type": "MESSAGE", "participantType": "BOT", "content": "Hello!"}]
        });
        let event = Event::from_json(&serde_json::to_vec(&event).expect("json")).expect("event");
        let reply = builtin().decide(&event);
        if let Some(yl) = reply
            .conversation
            .as_ref()
            .and_then(|c| c.custom.as_ref())
            .and_then(|c| c.as_map().get("yl"))
        {
            self.state = yl.clone();
        }
        for action in &reply.actions {
            if let Action::NeedsHelp { needs_help } = action {
                self.needs_help = *needs_help;
            }
        }
        reply
    }

    fn detail(&self, id: &str) -> Option<&str> {
        self.state
            .get("d")
            .and_then(|d| d.get(id))
            .and_then(Value::as_str)
    }
}

#[test]
fn an_order_number_with_spaces_is_taken_when_asked_and_a_phone_number_never() {
    let mut chat = Chat::new("en");
    let asked = chat.say("Damaged order, please call +420777123456");
    assert!(
        messages(&asked)[0].contains("What is your order number?"),
        "{asked:?}"
    );
    assert_eq!(chat.detail("order"), None);
    let given = chat.say("123 456 789");
    assert!(
        messages(&given)[0].contains("I have noted order 123456789"),
        "{given:?}"
    );
    assert_eq!(chat.detail("order"), Some("123456789"));
}

#[test]
fn years_prices_and_postcodes_are_not_order_numbers() {
    let mut chat = Chat::new("en");
    let reply = chat.say("my order from March 2024 arrived broken, it cost 1299 CZK, zip 10115");
    assert!(
        messages(&reply)[0].contains("What is your order number?"),
        "{reply:?}"
    );
    assert_eq!(chat.detail("order"), None);
    let mut czech = Chat::new("cs");
    czech.say("objednávka č. 55 123 987, hrnek přišel prasklý, volejte na 603 111 222");
    assert_eq!(czech.detail("order"), Some("55123987"));
}

#[test]
fn a_guest_without_an_order_number_is_offered_another_way_and_a_colleague() {
    let mut chat = Chat::new("en");
    chat.say("the lamp I got is broken");
    let reply = chat.say("I bought it as a guest, I don't have an order number");
    assert!(
        messages(&reply)[0].contains("a colleague can find your order by the e-mail address"),
        "{reply:?}"
    );
    assert!(escalates(&reply));
    assert!(chat.needs_help);
}

#[test]
fn the_same_question_again_offers_a_human_and_the_third_time_hands_over() {
    let mut chat = Chat::new("en");
    let first = chat.say("where is my parcel?");
    assert!(messages(&first)[0].starts_with("Orders are delivered"));
    let second = chat.say("where is my parcel");
    assert!(
        messages(&second)[0].contains("Would you like me to connect you with a colleague?"),
        "{second:?}"
    );
    let third = chat.say("WHERE IS MY PARCEL");
    assert!(escalates(&third), "{third:?}");
}

#[test]
fn yes_to_the_offer_of_a_colleague_calls_one() {
    let mut chat = Chat::new("en");
    chat.say("when will my order arrive?");
    chat.say("when will my order arrive??");
    let reply = chat.say("yes please");
    assert!(escalates(&reply), "{reply:?}");
}

#[test]
fn waiting_for_an_agent_a_presence_check_gets_one_reassurance_and_never_mind_ends() {
    let mut chat = Chat::at("en", json!({"p": "h", "e": 1}), true);
    let first = chat.say("hello? anybody there?");
    assert_eq!(
        messages(&first),
        ["A colleague will be with you shortly, thank you for your patience."]
    );
    let again = chat.say("hello??");
    assert!(messages(&again).is_empty(), "{again:?}");
    let done = chat.say("never mind, I found it");
    assert!(!messages(&done).is_empty());
    assert!(!escalates(&done));
    assert!(!chat.needs_help, "no agent is needed any more");
    assert_eq!(chat.state["p"], "d");
}

#[test]
fn at_the_closing_mixed_answers_are_not_resolved_and_thanks_are_yes() {
    let mut mixed = Chat::at("en", json!({"p": "x"}), true);
    let reply = mixed.say("The agent was great but my parcel is still missing");
    assert!(escalates(&reply), "{reply:?}");
    let mut thanks = Chat::at("en", json!({"p": "x"}), true);
    let reply = thanks.say("thanks a lot!");
    assert!(!escalates(&reply));
    assert_eq!(thanks.state["p"], "f");
    assert!(!thanks.needs_help);
}

#[test]
fn a_question_at_the_rating_step_is_answered_and_the_rating_still_taken_after_it() {
    let mut chat = Chat::at("en", json!({"p": "f"}), false);
    let reply = chat.say("one more question: when do you open on Monday?");
    assert_eq!(
        messages(&reply),
        ["Our support is available Monday to Friday, 8:00-18:00 CET."]
    );
    assert_eq!(chat.state.get("s"), None);
    assert_eq!(chat.state["p"], "f");
    chat.say("4 stars");
    assert_eq!(chat.state["s"], 4);
    assert_eq!(chat.state["p"], "d");
}

#[test]
fn the_state_keeps_its_keys_within_one_kilobyte() {
    let mut chat = Chat::new("de");
    for text in [
        "Bestellung 1234 5678 kam kaputt an",
        "wo bleibt mein Paket??",
        "wo bleibt mein Paket??",
        "das ist lächerlich",
    ] {
        chat.say(text);
        let size = serde_json::to_vec(&Map::from_iter([("yl".to_string(), chat.state.clone())]))
            .expect("json")
            .len();
        assert!(size <= 1024, "{size}");
    }
    for key in ["p", "d", "k"] {
        assert!(chat.state.get(key).is_some(), "{key} in {}", chat.state);
    }
}
