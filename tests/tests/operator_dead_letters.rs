//! `worker dead-letters list|show|purge` and `worker decide`, run as the real binary against a
//! real NATS holding real dead letters: events dead-lettered by the pipeline because the logic
//! failed (an HTTP delegate answering 500) or because Salted CX refused the callback (400).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Json;
use axum::routing::post;
use serde_json::{Value, json};
use testkit::faults::binaries;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);
/// Longest any command may run (a NATS request times out after 5 s).
const COMMAND_LIMIT: Duration = Duration::from_secs(30);

/// A logic delegate that fails (500) for messages starting with `fail`, and answers `ok` to
/// anything else.
async fn start_delegate() -> Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/decide", listener.local_addr()?);
    let app = axum::Router::new().route(
        "/decide",
        post(|Json(event): Json<Value>| async move {
            let text = event
                .pointer("/trigger/contentCustomer")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if text.starts_with("fail") {
                (
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                    Json(json!({"error": "knowledge base down"})),
                )
            } else {
                (
                    axum::http::StatusCode::OK,
                    Json(json!({"actions": [{"type": "MESSAGE", "content": "ok"}]})),
                )
            }
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(url)
}

/// Runs the `worker` binary with `env` (on top of a cleared environment) and `args`.
async fn worker_cli(env: &[(&str, &str)], args: &[&str]) -> Result<Output> {
    binaries::run_command("worker", env, args, COMMAND_LIMIT).await
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The JSON a successful command printed.
fn json_of(output: &Output) -> Result<Value> {
    anyhow::ensure!(
        output.status.success(),
        "failed ({}): {}",
        output.status,
        stderr(output)
    );
    serde_json::from_slice(&output.stdout).with_context(|| stdout(output))
}

struct Pipeline {
    nats: NatsServer,
    _fake: FakeSaltedCx,
    _ingress: Service,
    _worker: Service,
    poster: Poster,
    delegate: String,
}

/// NATS, the fake Salted CX (refusing callbacks of conversation `conv-refused` with 400), the
/// ingress and a worker asking the delegate.
async fn pipeline() -> Result<Pipeline> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour_for("conv-refused", Behaviour::always(Reply::status(400)));
    let delegate = start_delegate().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    let with_delegate = |c: &mut worker::Config| {
        c.worker.logic = worker::config::LogicKind::Http;
        c.worker.logic_url = Some(delegate.clone());
    };
    let mut config =
        worker::Config::new(&nats.url(), TOKEN, &fake.base_url(), "127.0.0.1:0".parse()?)
            .map_err(anyhow::Error::msg)?;
    with_delegate(&mut config);
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic, with_delegate).await?;
    stack::wait_ready(&ingress, READY).await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(Pipeline {
        poster: Poster::new(&ingress.url()),
        nats,
        _fake: fake,
        _ingress: ingress,
        _worker: worker,
        delegate,
    })
}

/// Posts `event`, fails unless accepted; returns its requestId.
async fn post_event(poster: &Poster, event: &Value) -> Result<String> {
    let (status, body) = poster.post(event).await?;
    anyhow::ensure!(status == 202, "got {status}: {body}");
    Ok(event["requestId"].as_str().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_are_listed_shown_reproduced_with_decide_and_purged() -> Result<()> {
    let pipeline = pipeline().await?;
    let answered = post_event(
        &pipeline.poster,
        &EventBuilder::message("conv-ok", "hello").build(),
    )
    .await?;
    let failed = post_event(
        &pipeline.poster,
        &EventBuilder::message("conv-failing", "fail: where is my parcel?").build(),
    )
    .await?;
    let refused = post_event(
        &pipeline.poster,
        &EventBuilder::message("conv-refused", "hello").build(),
    )
    .await?;
    let js = pipeline.nats.jetstream().await?;
    let both_stored = testkit::poll::wait_until(WAIT, Duration::from_millis(50), || {
        let js = js.clone();
        async move {
            testkit::faults::dead_letters(&js)
                .await
                .is_ok_and(|letters| letters.len() == 2)
        }
    })
    .await;
    anyhow::ensure!(
        both_stored,
        "the two dead letters were not stored in {WAIT:?}"
    );
    let url = pipeline.nats.url();
    let env = [("NATS_URL", url.as_str())];

    // list --json: both, oldest first, with time, reason, conversation and requestId.
    let list = json_of(&worker_cli(&env, &["dead-letters", "list", "--json"]).await?)?;
    let letters = list.as_array().context("an array")?;
    assert_eq!(letters.len(), 2, "{list}");
    let by_request = |id: &str| letters.iter().find(|l| l["requestId"] == id).cloned();
    let logic_letter = by_request(&failed).context("the failed event is listed")?;
    let refused_letter = by_request(&refused).context("the refused event is listed")?;
    assert!(
        by_request(&answered).is_none(),
        "an answered event is listed"
    );
    assert_eq!(logic_letter["reason"], "logic_error");
    assert_eq!(logic_letter["conversation"], "conv-failing");
    assert_eq!(logic_letter["trigger"], "MESSAGE");
    assert!(
        logic_letter["error"]
            .as_str()
            .is_some_and(|e| e.contains("knowledge base down")),
        "{logic_letter}"
    );
    assert_eq!(refused_letter["reason"], "callback_rejected");
    assert_eq!(refused_letter["conversation"], "conv-refused");
    let time: chrono::DateTime<chrono::Utc> =
        logic_letter["time"].as_str().context("time")?.parse()?;
    assert!(
        (chrono::Utc::now() - time).num_seconds().abs() < 60,
        "{time}"
    );
    assert!(letters[0]["id"].as_u64() < letters[1]["id"].as_u64());

    // list as text: a header and one line each; --limit keeps the newest.
    let text = worker_cli(&env, &["dead-letters", "list"]).await?;
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    assert_eq!(text.lines().count(), 3, "{text}");
    assert!(text.starts_with("ID  TIME"), "{text}");
    assert!(text.contains(&failed) && text.contains(&refused) && text.contains("logic_error"));
    let newest =
        json_of(&worker_cli(&env, &["dead-letters", "list", "--limit", "1", "--json"]).await?)?;
    assert_eq!(newest.as_array().map(Vec::len), Some(1));
    assert_eq!(newest[0]["id"], letters[1]["id"]);

    // show by id (JSON) and by requestId (text): the error, every header, the event.
    let id = logic_letter["id"].to_string();
    let shown = json_of(&worker_cli(&env, &["dead-letters", "show", &id, "--json"]).await?)?;
    assert_eq!(shown["event"]["requestId"], failed.as_str());
    assert_eq!(
        shown["event"]["trigger"]["contentCustomer"],
        "fail: where is my parcel?"
    );
    assert_eq!(shown["headers"]["Yl-Error-Kind"], "logic_error");
    assert_eq!(shown["headers"]["Yl-Request-Id"], failed.as_str());
    assert_eq!(shown["headers"]["Yl-Conversation"], "conv-failing");
    assert!(shown["headers"]["Yl-Deadline"].is_string(), "{shown}");
    assert_eq!(shown["error"], logic_letter["error"]);
    let text = worker_cli(&env, &["dead-letters", "show", &refused]).await?;
    assert!(text.status.success(), "{}", stderr(&text));
    let text = stdout(&text);
    for expected in [
        "reason:       callback_rejected",
        "callback rejected with HTTP 400",
        "Yl-Request-Id: ",
        "event:",
        "\"conversation\": {",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let missing = worker_cli(&env, &["dead-letters", "show", "999999"]).await?;
    assert!(!missing.status.success());
    assert!(
        stderr(&missing).contains("no dead letter `999999`"),
        "{}",
        stderr(&missing)
    );

    // decide reproduces the dead letter from its event (saved with --event, byte for byte as
    // posted), with the same logic settings.
    let raw = worker_cli(&env, &["dead-letters", "show", &id, "--event"]).await?;
    assert!(raw.status.success(), "{}", stderr(&raw));
    let posted: Value = serde_json::from_slice(&raw.stdout)?;
    assert_eq!(posted, shown["event"]);
    let dir = tempfile::tempdir()?;
    let event_file = dir.path().join("dead-letter.json");
    std::fs::write(&event_file, &raw.stdout)?;
    let logic_env = [("LOGIC", "http"), ("LOGIC_URL", pipeline.delegate.as_str())];
    let decided = worker_cli(&logic_env, &["decide", path(&event_file)?]).await?;
    assert!(!decided.status.success(), "{}", stdout(&decided));
    let error = stderr(&decided);
    assert!(
        error.contains("logic dependency failed") && error.contains("knowledge base down"),
        "{error}"
    );
    assert!(error.contains("fallback"), "{error}");

    // purge asks for --yes, then deletes both.
    let unconfirmed = worker_cli(&env, &["dead-letters", "purge"]).await?;
    assert!(!unconfirmed.status.success());
    assert!(
        stderr(&unconfirmed).contains("2 dead letters would be deleted"),
        "{}",
        stderr(&unconfirmed)
    );
    let still = json_of(&worker_cli(&env, &["dead-letters", "list", "--json"]).await?)?;
    assert_eq!(still.as_array().map(Vec::len), Some(2));
    let purged = json_of(&worker_cli(&env, &["dead-letters", "purge", "--yes", "--json"]).await?)?;
    assert_eq!(purged, json!({"purged": 2}));
    let empty = worker_cli(&env, &["dead-letters", "list"]).await?;
    assert_eq!(stdout(&empty), "no dead letters\n");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letter_commands_explain_an_empty_nats_and_an_unreachable_one() -> Result<()> {
    let nats = NatsServer::start().await?;
    let url = nats.url();
    // No worker ever ran: the stream does not exist, so there are no dead letters.
    let list = worker_cli(&[("NATS_URL", &url)], &["dead-letters", "list", "--json"]).await?;
    assert_eq!(json_of(&list)?, json!([]));
    let show = worker_cli(&[("NATS_URL", &url)], &["dead-letters", "show", "1"]).await?;
    assert!(!show.status.success());
    assert!(
        stderr(&show).contains("no dead letter `1`"),
        "{}",
        stderr(&show)
    );

    let closed = format!("nats://127.0.0.1:{}", testkit::free_port()?);
    let unreachable = worker_cli(&[("NATS_URL", &closed)], &["dead-letters", "list"]).await?;
    assert!(!unreachable.status.success());
    let error = stderr(&unreachable);
    assert!(
        error.contains("no answer from NATS at") && error.contains(&closed),
        "{error}"
    );
    let bad_url = worker_cli(&[("NATS_URL", "http://[::1")], &["dead-letters", "list"]).await?;
    assert!(!bad_url.status.success());
    assert!(
        stderr(&bad_url).contains("NATS_URL"),
        "{}",
        stderr(&bad_url)
    );
    Ok(())
}

fn path(path: &Path) -> Result<&str> {
    path.to_str().context("a UTF-8 temp path")
}
