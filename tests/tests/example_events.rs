//! The example events in `examples/events/`: one per trigger type, each documented in the
//! folder's README, and each answered when `saltedcx-sim send` posts it through the real
//! pipeline (nats-server, the ingress and a worker with the built-in playbook).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use anyhow::{Context as _, Result};
use serde_json::Value;
use testkit::faults::binaries::binary;
use testkit::stack::{self, TOKEN};
use testkit::{NatsServer, free_port};

const READY: Duration = Duration::from_secs(15);
/// Longest `send` may take for all the examples (each answered within milliseconds).
const SEND_LIMIT: Duration = Duration::from_secs(120);

/// Every trigger type of the Salted CX documentation, as the worker names them.
const TRIGGERS: [&str; 10] = [
    "MESSAGE",
    "FILE",
    "NAVIGATION",
    "ACTION",
    "MENU_STEP",
    "ANSWER",
    "REVIEW",
    "CONVERSATION_UPDATE",
    "ENGAGEMENT_COMPLETED",
    "CONVERSATION_COMPLETED",
];

fn examples_dir() -> PathBuf {
    testkit::workspace_root().join("examples/events")
}

/// The example files, sorted.
fn example_files() -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    files.sort();
    Ok(files)
}

/// Runs `saltedcx-sim send` with `args` (token and ingress given), bounded in time.
async fn send(ingress_url: &str, listen: &str, args: &[&str]) -> Result<Output> {
    let mut command = tokio::process::Command::new(binary("saltedcx-sim")?);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SALTEDCX_TOKEN", TOKEN)
        .arg("send")
        .args([
            "--ingress-url",
            ingress_url,
            "--listen",
            listen,
            "--budget",
            "10s",
        ])
        .args(args)
        .kill_on_drop(true);
    tokio::time::timeout(SEND_LIMIT, command.output())
        .await
        .context("saltedcx-sim send did not finish in time")?
        .context("running saltedcx-sim send")
}

#[test]
fn there_is_a_documented_example_of_every_trigger_type() -> Result<()> {
    let readme = std::fs::read_to_string(examples_dir().join("README.md"))?;
    let mut triggers = BTreeSet::new();
    for file in example_files()? {
        let text = std::fs::read(&file)?;
        let event = shared::event::Event::from_json(&text)
            .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?;
        triggers.insert(event.trigger.kind.as_str().to_string());
        let name = file
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        assert!(
            readme.contains(&format!("[`{name}`]({name})")),
            "examples/events/README.md does not document {name}"
        );
    }
    let expected: BTreeSet<String> = TRIGGERS.iter().map(|t| t.to_string()).collect();
    assert_eq!(triggers, expected);
    Ok(())
}

#[test]
fn in_the_order_a_shell_glob_gives_the_examples_play_a_conversation_that_completes_last()
-> Result<()> {
    let kinds: Vec<String> = example_files()?
        .iter()
        .map(|file| {
            let text = std::fs::read(file)?;
            let event = shared::event::Event::from_json(&text)
                .map_err(|err| anyhow::anyhow!("{}: {err}", file.display()))?;
            Ok(event.trigger.kind.as_str().to_string())
        })
        .collect::<Result<_>>()?;
    assert_eq!(
        kinds.first().map(String::as_str),
        Some("MESSAGE"),
        "{kinds:?}"
    );
    assert_eq!(
        kinds
            .iter()
            .rposition(|kind| kind == "CONVERSATION_COMPLETED"),
        Some(kinds.len() - 1),
        "{kinds:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_example_event_and_typed_messages_sent_with_saltedcx_sim_are_answered() -> Result<()>
{
    let nats = NatsServer::start().await?;
    let sim_addr = format!("127.0.0.1:{}", free_port()?);
    let api_url = format!("http://{sim_addr}");
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    let config = worker::Config::new(&nats.url(), TOKEN, &api_url, "127.0.0.1:0".parse()?)
        .map_err(anyhow::Error::msg)?;
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &api_url, logic, |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    stack::wait_ready(&worker, READY).await?;
    let ingress_url = format!("{}/v1/events", ingress.url());

    let files = example_files()?;
    let paths: Vec<&str> = files.iter().filter_map(|f| f.to_str()).collect();
    let mut args = vec!["--json"];
    args.extend(&paths);
    let output = send(&ingress_url, &sim_addr, &args).await?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{}\n{printed}",
        String::from_utf8_lossy(&output.stderr)
    );
    let reports: Vec<Value> = printed
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| printed.to_string())?;
    assert_eq!(reports.len(), files.len(), "{printed}");
    let mut triggers = BTreeSet::new();
    for (report, file) in reports.iter().zip(&files) {
        assert_eq!(report["file"], file.display().to_string());
        assert_eq!(report["outcome"], "answered", "{report}");
        assert_eq!(
            report["callback"]["requestId"], report["requestId"],
            "{report}"
        );
        assert!(report["callback"]["actions"].is_array(), "{report}");
        let latency = report["latencyMs"].as_f64().context("latency")?;
        assert!(latency < 10_000.0, "{report}");
        triggers.insert(report["trigger"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(triggers.len(), TRIGGERS.len(), "{triggers:?}");
    // The silent example never escalates.
    let silent = reports
        .iter()
        .find(|r| {
            r["file"]
                .as_str()
                .is_some_and(|f| f.ends_with("02-message-silent.json"))
        })
        .context("the silent example was sent")?;
    let escalates = silent["callback"]["actions"]
        .as_array()
        .is_some_and(|actions| actions.iter().any(|a| a["type"] == "NEEDS_HELP"));
    assert!(!escalates, "{silent}");

    // As text: the event, the outcome and the callback body.
    let message = examples_dir().join("01-message.json");
    let output = send(
        &ingress_url,
        &sim_addr,
        &[message.to_str().unwrap_or_default()],
    )
    .await?;
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{text}");
    assert!(
        text.contains("01-message.json: MESSAGE in conversation 005ea483"),
        "{text}"
    );
    assert!(
        text.contains("answered in ") && text.contains("\"requestId\": "),
        "{text}"
    );

    // Typed messages: one new conversation, every message answered, the bot's words in the
    // callbacks.
    let output = send(
        &ingress_url,
        &sim_addr,
        &[
            "--json",
            "--text",
            "Where is my order?",
            "--text",
            "I need a human now",
        ],
    )
    .await?;
    let printed = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{printed}");
    let reports: Vec<Value> = printed
        .lines()
        .map(serde_json::from_str)
        .collect::<Result<_, _>>()
        .with_context(|| printed.to_string())?;
    assert_eq!(reports.len(), 2, "{printed}");
    assert_eq!(reports[0]["text"], "Where is my order?");
    assert_eq!(reports[0]["conversation"], reports[1]["conversation"]);
    for report in &reports {
        assert_eq!(report["outcome"], "answered", "{report}");
        assert_eq!(report["trigger"], "MESSAGE", "{report}");
    }
    let said = |report: &Value| {
        report["callback"]["actions"]
            .as_array()
            .is_some_and(|actions| actions.iter().any(|a| a["type"] == "MESSAGE"))
    };
    assert!(said(&reports[0]), "{printed}");
    let escalated = reports[1]["callback"]["actions"]
        .as_array()
        .is_some_and(|actions| actions.iter().any(|a| a["type"] == "NEEDS_HELP"));
    assert!(escalated, "{printed}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_reports_an_unusable_file_and_an_unreachable_ingress() -> Result<()> {
    let dir = tempfile::tempdir()?;
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, "{\"trigger\": {")?;
    let closed = format!("http://127.0.0.1:{}/v1/events", free_port()?);
    let listen = format!("127.0.0.1:{}", free_port()?);
    let output = send(&closed, &listen, &[broken.to_str().unwrap_or_default()]).await?;
    assert!(!output.status.success());
    let error = String::from_utf8_lossy(&output.stderr);
    assert!(error.contains("does not answer"), "{error}");

    // With an ingress that answers (nothing needs to process the event), the broken file is
    // reported with the reason and nothing is sent.
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let url = format!("{}/v1/events", ingress.url());
    let output = send(
        &url,
        &listen,
        &["--json", broken.to_str().unwrap_or_default()],
    )
    .await?;
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(report["outcome"], "invalid");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("not valid JSON")),
        "{report}"
    );
    Ok(())
}
