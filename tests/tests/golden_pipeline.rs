//! The golden conversations of `tests/golden` through the real pipeline: events are
//! POSTed to an in-process ingress, stored in a real NATS JetStream, processed by an in-process
//! worker running the built-in playbook, and answered to a fake Salted CX. Like Salted CX, each
//! conversation sends its next event only after the previous one was answered, with the custom
//! data the answer stored. The replies must equal the same expectations as the fast golden
//! tests in `golden_conversations.rs`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use reqwest::StatusCode;
use testkit::golden;
use testkit::stack::{self, Poster, TOKEN};
use testkit::{FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
const ANSWERED: Duration = Duration::from_secs(15);

fn dir() -> PathBuf {
    golden::golden_dir()
}

/// Plays script `name` as conversation `pid`, one event after the other.
async fn play(poster: &Poster, fake: &FakeSaltedCx, name: &str) -> Result<()> {
    let script = golden::load(&dir(), name);
    let pid = format!("golden-{name}-{}", uuid::Uuid::new_v4());
    let mut conversation = golden::Conversation::new(&pid, &script);
    for (index, step) in script.steps.iter().enumerate() {
        let event = conversation.event(step);
        let request_id = event["requestId"].as_str().unwrap_or_default().to_string();
        let (status, body) = poster.post(&event).await?;
        ensure!(
            status == StatusCode::ACCEPTED,
            "golden `{name}` step {index}: ingress answered {status}: {body}"
        );
        let callback = fake
            .wait_for_request(&request_id, ANSWERED)
            .await
            .with_context(|| format!("golden `{name}` step {index}: no answer"))?;
        ensure!(
            callback.conversation_pid == pid,
            "golden `{name}` step {index}: answered for conversation {}",
            callback.conversation_pid
        );
        let actions = callback.actions();
        let custom = callback.body.pointer("/conversation/custom").cloned();
        conversation.apply(&event, &actions, custom.as_ref());
        golden::check(name, index, step, &actions, &conversation.custom);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_golden_conversation_gets_the_same_replies_through_the_real_pipeline() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;

    // The worker's own configuration path: the default logic is the built-in playbook.
    let config = worker::Config::new(&nats.url(), TOKEN, &fake.base_url(), "127.0.0.1:0".parse()?)
        .map_err(anyhow::Error::msg)?;
    ensure!(config.worker.logic == worker::config::LogicKind::Playbook);
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic, |_| {}).await?;
    stack::wait_ready(&worker, READY).await?;

    let poster = Poster::new(&ingress.url());
    let names = golden::names(&dir());
    ensure!(
        names.len() >= 8,
        "expected the golden conversations, found {names:?}"
    );
    // Conversations run concurrently, each one in order, as Salted CX sends them.
    let results =
        futures::future::join_all(names.iter().map(|name| play(&poster, &fake, name))).await;
    for result in results {
        result?;
    }

    // Exactly one callback per event.
    let steps: usize = names
        .iter()
        .map(|n| golden::load(&dir(), n).steps.len())
        .sum();
    assert_eq!(
        fake.successful_callbacks().len(),
        steps,
        "{}",
        fake.summary()
    );
    worker.stop(Duration::from_secs(10)).await?;
    ingress.stop(Duration::from_secs(10)).await?;
    Ok(())
}
