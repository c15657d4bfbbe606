//! What the binaries print for operators: no secret from a URL setting in any error (start-up
//! errors, `worker dead-letters` when NATS is unreachable), and no control character from a
//! dead letter (which anyone who can publish an event fills) reaching the terminal raw.

use std::process::Output;
use std::time::Duration;

use anyhow::Result;
use async_nats::HeaderMap;
use testkit::NatsServer;
use testkit::faults::binaries::{self, BinaryProcess};
use testkit::stack::TOKEN;

/// Longest any command may run (a NATS request times out after 5 s).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

async fn worker_cli(env: &[(&str, &str)], args: &[&str]) -> Result<Output> {
    binaries::run_command("worker", env, args, COMMAND_LIMIT).await
}

fn all_output(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Characters a terminal acts on: C0 controls (ESC, BEL, ...), DEL, C1 controls (CSI) and the
/// bidirectional overrides that reorder what is shown.
fn terminal_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_and_keys_in_url_settings_never_appear_in_errors() -> Result<()> {
    // `worker dead-letters` with NATS unreachable: the error names the server, not its password.
    let closed = format!(
        "nats://admin:nats-pa55word@127.0.0.1:{}",
        testkit::free_port()?
    );
    let unreachable = worker_cli(&[("NATS_URL", &closed)], &["dead-letters", "list"]).await?;
    assert!(!unreachable.status.success());
    let error = all_output(&unreachable);
    assert!(error.contains("no answer from NATS at"), "{error}");
    assert!(error.contains("127.0.0.1"), "the server is named: {error}");
    assert!(!error.contains("nats-pa55word"), "{error}");

    // A NATS_URL that does not parse, with a token in it.
    let bad_nats = worker_cli(
        &[("NATS_URL", "nats://nats-t0ken@[::1")],
        &["dead-letters", "list"],
    )
    .await?;
    let error = all_output(&bad_nats);
    assert!(!bad_nats.status.success());
    assert!(error.contains("NATS_URL"), "{error}");
    assert!(!error.contains("nats-t0ken"), "{error}");

    // The worker's start-up error for a GENERATIVE_URL it cannot use: user, password and the
    // query's key stay out of it.
    let nats = NatsServer::start().await?;
    let mut worker = BinaryProcess::spawn(
        "worker",
        "WORKER_ADDR",
        &[
            ("NATS_URL", &nats.url()),
            ("SALTEDCX_TOKEN", TOKEN),
            ("LOGIC", "generative"),
            ("GENERATIVE_MODEL", "any"),
            (
                "GENERATIVE_URL",
                "ftp://model-user:model-pa55word@llm.internal/v1?key=query-s3cret&api-version=1",
            ),
        ],
    )?;
    let status = worker.wait_exit(Duration::from_secs(20)).await?;
    let output = worker.output();
    assert!(!status.success(), "{output}");
    assert!(output.contains("GENERATIVE_URL"), "{output}");
    assert!(
        output.contains("llm.internal"),
        "the host is named: {output}"
    );
    for secret in ["model-pa55word", "query-s3cret"] {
        assert!(!output.contains(secret), "{secret} printed: {output}");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn control_characters_of_a_dead_letter_never_reach_the_terminal_raw() -> Result<()> {
    let nats = NatsServer::start().await?;
    let js = nats.jetstream().await?;
    shared::topology::ensure_dead_letter_stream(&js, 1).await?;
    // What a sender controls: the conversation id (a header), the error text quoting the event,
    // and the body, here once as text that is not JSON and once as JSON whose strings hold a
    // CSI (U+009B), DEL and a right-to-left override, all valid JSON.
    let letters: [(&str, Vec<u8>); 2] = [
        (
            "conv-\u{1b}[2J\u{1b}]0;owned\u{7}",
            b"not json \x1b[31m red \x1b]8;;http://evil\x07link".to_vec(),
        ),
        (
            "conv-\u{9b}31m",
            "{\"trigger\":{\"content\":\"a\u{9b}2Jb\u{7f}c\u{202e}d\"}}"
                .as_bytes()
                .to_vec(),
        ),
    ];
    for (conversation, payload) in letters {
        let mut headers = HeaderMap::new();
        headers.insert("Yl-Conversation", conversation);
        headers.insert("Yl-Request-Id", uuid::Uuid::new_v4().to_string().as_str());
        headers.insert("Yl-Error-Kind", "invalid_event");
        headers.insert("Yl-Error", format!("cannot read {conversation}").as_str());
        js.publish_with_headers(
            shared::topology::dead_letter_subject(0),
            headers,
            payload.into(),
        )
        .await?
        .await?;
    }
    let env = [("NATS_URL", nats.url())];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    for args in [
        vec!["dead-letters", "list"],
        vec!["dead-letters", "list", "--json"],
        vec!["dead-letters", "show", "1"],
        vec!["dead-letters", "show", "2"],
        vec!["dead-letters", "show", "1", "--json"],
        vec!["dead-letters", "show", "2", "--json"],
    ] {
        let output = worker_cli(&env, &args).await?;
        let printed = all_output(&output);
        assert!(output.status.success(), "{args:?}: {printed}");
        let controls = terminal_controls(&printed);
        assert!(
            controls.is_empty(),
            "{args:?} printed {controls:?} raw:\n{printed}"
        );
        // Escaped, not dropped: the operator still sees what the sender sent.
        assert!(
            printed.contains("conv-"),
            "{args:?} lost the conversation: {printed}"
        );
    }
    // `--event` is for saving the event byte for byte (its output is not a terminal here).
    let event = worker_cli(&env, &["dead-letters", "show", "1", "--event"]).await?;
    assert_eq!(
        event.stdout,
        b"not json \x1b[31m red \x1b]8;;http://evil\x07link"
    );
    Ok(())
}
