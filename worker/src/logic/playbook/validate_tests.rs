//! Tests of playbook validation: every error names the line, the column and what is wrong.

use super::*;
use crate::logic::playbook::state::URL_CHARS;

fn problems(source: &str) -> Vec<Problem> {
    match parse("test.toml", source) {
        Ok(_) => panic!("expected the playbook to be rejected"),
        Err(PlaybookError::Invalid { problems, .. }) => problems,
        Err(other) => panic!("unexpected error: {other}"),
    }
}

fn only_problem(source: &str) -> Problem {
    let mut found = problems(source);
    assert_eq!(found.len(), 1, "{found:#?}");
    found.remove(0)
}

#[test]
fn a_playbook_with_only_the_version_is_valid() {
    let playbook = parse("min.toml", "version = 1\n").expect("valid");
    assert!(playbook.knowledge.is_empty());
    assert_eq!(playbook.after_misunderstandings, 2);
    assert!((playbook.understanding.threshold - 0.5).abs() < f32::EPSILON);
}

#[test]
fn a_syntax_error_is_reported_with_line_and_column() {
    let p = only_problem("version = 1\n[matching]\nthreshold = = 0.5\n");
    assert_eq!(p.line, 3);
    assert!(p.column >= 11, "{p:?}");
    assert_eq!(p.source_line, "threshold = = 0.5");
}

#[test]
fn unknown_keys_are_rejected_with_their_line() {
    let p = only_problem("version = 1\n\n[escalation]\nphrase = [\"human\"]\n");
    assert_eq!((p.line, p.column), (4, 1));
    assert!(
        p.message.contains("unknown field `phrase`"),
        "{}",
        p.message
    );
    assert!(p.message.contains("`phrases`"), "{}", p.message);
}

#[test]
fn a_missing_version_is_reported() {
    let p = only_problem("[matching]\nthreshold = 0.5\n");
    assert!(p.message.contains("version"), "{}", p.message);
}

#[test]
fn a_threshold_out_of_range_is_rejected_at_its_value() {
    let p = only_problem("version = 1\n[matching]\nthreshold = 0.0\n");
    assert_eq!((p.line, p.column, p.width), (3, 13, 3));
    assert!(p.message.contains("greater than 0 and at most 1"));
}

#[test]
fn an_unknown_agent_mode_names_the_allowed_ones() {
    let p = only_problem("version = 1\n[conversation]\nduring_agent = \"loud\"\n");
    assert_eq!(p.line, 3);
    assert!(p.message.contains("silent"), "{}", p.message);
}

#[test]
fn empty_answers_and_texts_are_rejected() {
    let found = problems(
        "version = 1\n[conversation]\ngreeting = \" \"\n\
         [[knowledge]]\nid = \"x\"\nkeywords = [\"x\"]\nanswer = \"\"\n",
    );
    let lines: Vec<usize> = found.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 7]);
    assert!(found[1].message.contains("knowledge[0].answer"));
}

#[test]
fn unknown_placeholders_are_rejected_and_the_available_ones_listed() {
    let p = only_problem("version = 1\n[[files]]\nmime = \"*\"\nnote = \"got {file}\"\n");
    assert!(p.message.contains("`{file}`"), "{}", p.message);
    assert!(p.message.contains("{name}, {mime}"), "{}", p.message);
}

#[test]
fn duplicate_actions_are_rejected_whatever_their_spelling() {
    let p = only_problem(
        "version = 1\n[[actions]]\nname = \"Create Ticket\"\nnote = \"a\"\n\
         [[actions]]\nname = \"create-ticket\"\nnote = \"b\"\n",
    );
    assert_eq!(p.line, 6);
    assert!(p.message.contains("defined twice"));
}

#[test]
fn agent_outcome_rules_are_checked() {
    // Listed twice (any spelling), an unknown `then`, and a closing without `[closing]`.
    let found = problems(
        "version = 1\n[[agent_outcomes]]\noutcomes = [\"REJECTED\", \"missed\"]\nthen = \"escalate\"\n\
         [[agent_outcomes]]\noutcomes = [\"Missed\"]\nthen = \"answer\"\n",
    );
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].line, 6);
    assert!(
        found[0].message.contains("`Missed` is listed twice"),
        "{}",
        found[0].message
    );

    let p = only_problem("version = 1\n[[agent_outcomes]]\noutcomes = [\"X\"]\nthen = \"leave\"\n");
    assert_eq!(p.line, 4);
    assert!(p.message.contains("escalate"), "{}", p.message);

    let p =
        only_problem("version = 1\n[[agent_outcomes]]\noutcomes = [\"X\"]\nthen = \"closing\"\n");
    assert_eq!(p.line, 4);
    assert!(
        p.message.contains("needs a `[closing]` table"),
        "{}",
        p.message
    );

    let found = problems(
        "version = 1\n[[agent_outcomes]]\noutcomes = []\nthen = \"answer\"\n\
         note = \"left: {outcome} {reason} {agent}\"\n",
    );
    let lines: Vec<usize> = found.iter().map(|p| p.line).collect();
    assert_eq!(lines, [3, 5], "{found:#?}");
    assert!(
        found[0]
            .message
            .contains("`agent_outcomes[0].outcomes` is empty")
    );
    assert!(
        found[1].message.contains("{outcome}, {reason}"),
        "{}",
        found[1].message
    );
}

#[test]
fn rules_that_can_do_nothing_are_rejected() {
    let found = problems(
        "version = 1\n[[hooks]]\non = \"menu_step\"\nid = \"x\"\n\
         [[knowledge]]\nid = \"k\"\nanswer = \"a\"\n",
    );
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].message.contains("does nothing"));
    assert!(
        found[1]
            .message
            .contains("has no `questions`, `keywords` or examples in a language pack")
    );
}

#[test]
fn every_problem_is_reported_in_file_order() {
    let found = problems(
        "version = 3\n[matching]\nvague_below = 99\nthreshold = 2.0\n\
         [escalation]\nafter_misunderstandings = -1\n",
    );
    let lines: Vec<usize> = found.iter().map(|p| p.line).collect();
    assert_eq!(lines, [1, 3, 4, 6]);
}

#[test]
fn the_error_message_shows_file_line_column_and_the_offending_line() {
    let err = parse("mine.toml", "version = 1\n[matching]\nthreshold = 7\n").expect_err("invalid");
    let text = err.to_string();
    assert!(
        text.contains("mine.toml:3:13: `matching.threshold`"),
        "{text}"
    );
    assert!(text.contains("3 | threshold = 7"), "{text}");
}

#[test]
fn url_prefixes_longer_than_the_remembered_url_are_rejected() {
    let long = format!("https://e.com/{}", "a".repeat(URL_CHARS));
    let p = only_problem(&format!(
        "version = 1\n[[knowledge]]\nid = \"k\"\nkeywords = [\"k\"]\nanswer = \"a\"\n\
         [[knowledge.variants]]\nurl_prefix = \"{long}\"\nanswer = \"b\"\n"
    ));
    assert_eq!(p.line, 7);
}

#[test]
fn filling_a_template_does_not_expand_placeholders_inside_values() {
    let text = fill("{reason} at {url}", &[("reason", "{url}"), ("url", "/x")]);
    assert_eq!(text, "{url} at /x");
    assert_eq!(fill("{ not a placeholder }", &[]), "{ not a placeholder }");
}

#[test]
fn translated_texts_need_the_default_language_and_valid_language_codes() {
    let p = only_problem("version = 1\n[conversation]\ngreeting.es = \"¡Hola!\"\n");
    assert_eq!(p.line, 3);
    assert!(
        p.message
            .contains("`conversation.greeting` has no text in the default language `en`"),
        "{}",
        p.message
    );
    let p = only_problem(
        "version = 1\n[conversation]\ngreeting.en = \"Hi\"\ngreeting.spanish = \"¡Hola!\"\n",
    );
    assert!(
        p.message
            .contains("`spanish`, which is not a language code"),
        "{}",
        p.message
    );
    let p = only_problem("version = 1\n[languages]\ndefault = \"english\"\n");
    assert!(
        p.message
            .contains("`languages.default` must be a language code"),
        "{}",
        p.message
    );
    let playbook = parse(
        "de.toml",
        "version = 1\n[languages]\ndefault = \"de\"\n[conversation]\ngreeting.de = \"Hallo\"\ngreeting.en = \"Hello\"\n",
    )
    .expect("valid");
    assert_eq!(playbook.default_language, "de");
}

#[test]
fn a_translated_text_is_checked_in_every_language() {
    let problems =
        problems("version = 1\n[conversation]\ngreeting.en = \"Hi {name}\"\ngreeting.es = \" \"\n");
    assert_eq!(problems.len(), 2, "{problems:#?}");
    assert!(problems[0].message.contains("unknown placeholder `{name}`"));
    assert!(
        problems[1]
            .message
            .contains("`conversation.greeting.es` is empty")
    );
}

const DETAIL: &str =
    "[[details]]\nid = \"order\"\npattern = 'order (\\d+)'\nask = \"Your order number?\"\n";

#[test]
fn request_details_are_checked_and_their_placeholders_allowed_where_required() {
    let ok = format!(
        "version = 1\n{DETAIL}[[knowledge]]\nid = \"d\"\nkeywords = [\"damaged\"]\nrequires = [\"order\"]\nanswer = \"Noted {{order}}\"\n"
    );
    parse("ok.toml", &ok).expect("valid");
    let unrequired = format!(
        "version = 1\n{DETAIL}[[knowledge]]\nid = \"d\"\nkeywords = [\"damaged\"]\nanswer = \"Noted {{order}}\"\n"
    );
    assert!(
        only_problem(&unrequired)
            .message
            .contains("unknown placeholder `{order}`")
    );
    let unknown = "version = 1\n[[knowledge]]\nid = \"d\"\nkeywords = [\"x\"]\nrequires = [\"order\"]\nanswer = \"a\"\n";
    assert!(
        only_problem(unknown)
            .message
            .contains("`knowledge[0].requires` names `order`, which is not a `[[details]]` id")
    );
    let bad_regex = "version = 1\n[[details]]\nid = \"order\"\npattern = 'order (\\d+'\n";
    let p = only_problem(bad_regex);
    assert_eq!(p.line, 4);
    assert!(
        p.message
            .contains("`details[0].pattern` is not a valid regular expression"),
        "{}",
        p.message
    );
    let empty = "version = 1\n[[details]]\nid = \"order\"\npattern = '\\d*'\n";
    assert!(
        only_problem(empty)
            .message
            .contains("matches an empty text")
    );
    let bad_id = "version = 1\n[[details]]\nid = \"Order-No\"\npattern = '\\d+'\n";
    assert!(
        only_problem(bad_id)
            .message
            .contains("must be lower-case letters")
    );
    let no_ask = "version = 1\n[[details]]\nid = \"order\"\npattern = '\\d+'\n[[knowledge]]\nid = \"d\"\nkeywords = [\"x\"]\nrequires = [\"order\"]\nanswer = \"a\"\n";
    assert!(
        only_problem(no_ask)
            .message
            .contains("which has no `ask` question")
    );
}

#[test]
fn intents_need_phrases_and_a_known_kind() {
    let p = only_problem(
        "version = 1\n[[intents]]\nid = \"hi\"\nkind = \"small_talk\"\nphrases = []\nanswer = \"Hi\"\n",
    );
    assert!(
        p.message.contains("intent `hi` has no `phrases`"),
        "{}",
        p.message
    );
    let p = only_problem(
        "version = 1\n[[intents]]\nid = \"hi\"\nkind = \"chit_chat\"\nphrases = [\"hi\"]\nanswer = \"Hi\"\n",
    );
    assert!(
        p.message.contains("unknown variant `chit_chat`"),
        "{}",
        p.message
    );
}

#[test]
fn ratings_must_lie_on_the_scale() {
    let p = only_problem(
        "version = 1\n[closing]\nquestion = \"Resolved?\"\nrating_scale = 5\nratings.7 = [\"wow\"]\n",
    );
    assert!(
        p.message
            .contains("`closing.ratings.7`: `7` is not a rating from 1 to 5"),
        "{}",
        p.message
    );
    let p = only_problem("version = 1\n[closing]\nquestion = \"Resolved?\"\nrating_scale = 1\n");
    assert!(
        p.message
            .contains("`closing.rating_scale` must be between 2 and 10"),
        "{}",
        p.message
    );
}
