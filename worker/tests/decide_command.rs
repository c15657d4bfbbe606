//! `worker decide EVENT.json`: the answer the configured logic gives to an event file, printed
//! as the callback body, and a clear error for a bad file, bad settings or a failing logic.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use shared::answer::{Action, Answer};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/events")
}

/// Runs `worker decide FILE` with `env` on top of a cleared environment.
fn decide(file: &Path, env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_worker"))
        .env_clear()
        .envs(env.iter().copied())
        .arg("decide")
        .arg(file)
        .output()
        .expect("the worker binary runs")
}

fn answer_of(output: &Output) -> Answer {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("the answer is a callback body")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn request_id(file: &Path) -> String {
    let event: Value = serde_json::from_slice(&std::fs::read(file).expect("readable example"))
        .expect("JSON example");
    event["requestId"]
        .as_str()
        .expect("a requestId")
        .to_string()
}

#[test]
fn the_built_in_playbook_answers_every_example_event() {
    let mut decided = 0;
    for entry in std::fs::read_dir(examples()).expect("examples/events exists") {
        let file = entry.expect("a directory entry").path();
        if file.extension().is_none_or(|ext| ext != "json") {
            continue;
        }
        let answer = answer_of(&decide(&file, &[]));
        assert_eq!(
            answer.request_id.to_string(),
            request_id(&file),
            "{}",
            file.display()
        );
        if file.ends_with("02-message-silent.json") {
            assert!(
                !answer
                    .reply
                    .actions
                    .iter()
                    .any(|a| matches!(a, Action::NeedsHelp { .. })),
                "a silent trigger escalated: {answer:?}"
            );
        }
        decided += 1;
    }
    assert!(decided >= 10, "only {decided} examples");
}

#[test]
fn the_configured_logic_decides_and_the_output_is_the_callback_body() {
    let file = examples().join("01-message.json");
    let output = decide(&file, &[("LOGIC", "echo")]);
    let body: Value = serde_json::from_slice(&output.stdout).expect("JSON on stdout");
    assert_eq!(
        body,
        serde_json::json!({
            "requestId": request_id(&file),
            "actions": [{"type": "MESSAGE", "content": "You said: Where is my order?"}]
        })
    );
}

#[test]
fn a_bad_event_file_is_refused_with_what_is_wrong() {
    let dir = tempfile::tempdir().expect("temp dir");
    let missing = dir.path().join("missing.json");
    let output = decide(&missing, &[]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains(&format!("cannot read {}", missing.display())),
        "{}",
        stderr(&output)
    );

    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\n  \"requestId\": \n").expect("write");
    let output = decide(&broken, &[]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("broken.json") && error.contains("not valid JSON") && error.contains("line"),
        "{error}"
    );

    let no_id = dir.path().join("no-id.json");
    let mut event: Value =
        serde_json::from_slice(&std::fs::read(examples().join("03-file.json")).expect("example"))
            .expect("JSON");
    event.as_object_mut().expect("object").remove("requestId");
    std::fs::write(&no_id, event.to_string()).expect("write");
    let output = decide(&no_id, &[]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("requestId"), "{}", stderr(&output));
}

#[test]
fn bad_logic_settings_and_a_failing_logic_are_reported() {
    let file = examples().join("01-message.json");
    let output = decide(&file, &[("PLAYBOOK", "/nonexistent/playbook.toml")]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("cannot set up the logic") && error.contains("/nonexistent/playbook.toml"),
        "{error}"
    );

    let output = decide(&file, &[("LOGIC", "http")]);
    assert!(!output.status.success());
    assert!(stderr(&output).contains("LOGIC_URL"), "{}", stderr(&output));

    // A delegate nobody listens to: what the worker would dead-letter.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}/decide");
    let output = decide(&file, &[("LOGIC", "http"), ("LOGIC_URL", &url)]);
    assert!(!output.status.success());
    let error = stderr(&output);
    assert!(
        error.contains("logic dependency failed") && error.contains("fallback"),
        "{error}"
    );
    assert!(output.stdout.is_empty());
}
