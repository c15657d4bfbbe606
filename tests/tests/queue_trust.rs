//! The worker trusts nothing it reads from NATS: whoever may publish on `yourlogic.events.*`
//! (the ingress's credential, a misconfigured client) could put there what the ingress would
//! have refused. The worker applies the ingress's limits itself (an event of hundreds of
//! thousands of turns or contacts is refused before it is built, dead-lettered and answered
//! with the fallback, so its memory does not grow) and works on no event longer than
//! `MAX_BUDGET` from when NATS stored it, whatever deadline its header claims.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use chrono::Utc;
use serde_json::Value;
use testkit::faults::binaries::BinaryProcess;
use testkit::faults::publish_around_the_ingress;
use testkit::stack::TOKEN;
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(30);

/// Publishes `body` around the ingress with the given deadline; returns its requestId (the
/// body's, when it has one).
async fn publish_direct(
    js: &async_nats::jetstream::Context,
    conversation: &str,
    body: Vec<u8>,
    deadline: chrono::DateTime<Utc>,
) -> Result<String> {
    let request_id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|event| event["requestId"].as_str()?.parse().ok())
        .unwrap_or_else(uuid::Uuid::new_v4);
    publish_around_the_ingress(js, conversation, request_id, body, deadline).await?;
    Ok(request_id.to_string())
}

/// A customer message of `conversation` with `request_id`, whose `list_pointer` (e.g.
/// `/turns`) holds `n` empty objects: about 3 bytes each.
fn flooded(conversation: &str, request_id: &str, pointer: &str, n: usize) -> Vec<u8> {
    let event = EventBuilder::message(conversation, "hello")
        .request_id(request_id)
        .set(pointer, Value::String("__LIST__".into()))
        .build();
    let list = format!("[{}]", vec!["{}"; n].join(","));
    event
        .to_string()
        .replace("\"__LIST__\"", &list)
        .into_bytes()
}

/// Resident memory of process `pid` in KiB (0 when unreadable).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
        })
        .unwrap_or(0)
}

async fn worker_binary(
    nats: &NatsServer,
    fake: &FakeSaltedCx,
    extra: &[(&str, &str)],
) -> Result<BinaryProcess> {
    let url = nats.url();
    let api = fake.base_url();
    let mut env = vec![
        ("NATS_URL", url.as_str()),
        ("SALTEDCX_TOKEN", TOKEN),
        ("SALTEDCX_API_URL", api.as_str()),
        ("LOGIC", "echo"),
        ("RUST_LOG", "warn"),
    ];
    env.extend_from_slice(extra);
    let mut worker = BinaryProcess::spawn("worker", "WORKER_ADDR", &env)?;
    worker.wait_ready(READY).await?;
    Ok(worker)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_hundreds_of_thousands_of_turns_or_contacts_published_straight_to_nats_are_refused_without_growing_the_worker()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let js = nats.jetstream().await?;
    shared::topology::ensure_event_streams(
        &js,
        &shared::config::flag_defaults::<shared::config::TopologyArgs>()?,
    )
    .await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let worker = worker_binary(&nats, &fake, &[]).await?;
    // One ordinary event first, so the worker has warmed up before its memory is measured.
    let warm = EventBuilder::message("warm-up", "hello").build();
    let warm_id = publish_direct(
        &js,
        "warm-up",
        serde_json::to_vec(&warm)?,
        Utc::now() + chrono::Duration::seconds(30),
    )
    .await?;
    fake.wait_for_request(&warm_id, WAIT).await?;
    let before = worker.rss_kib().context("rss")?;

    // As in the review: 330,000 turns, or 346,000 contacts, in one MB each.
    let mut ids = Vec::new();
    for (i, (pointer, n)) in [("/turns", 330_000), ("/customer/contacts", 346_000)]
        .iter()
        .cycle()
        .take(8)
        .enumerate()
    {
        let conversation = format!("flood-{i}");
        let id = uuid::Uuid::new_v4().to_string();
        let body = flooded(&conversation, &id, pointer, *n);
        let deadline = Utc::now() + chrono::Duration::seconds(30);
        let published = publish_direct(&js, &conversation, body, deadline).await?;
        ids.push(published);
    }
    // The worker's memory, sampled while it works on them.
    let peak = Arc::new(AtomicU64::new(before));
    let sampler = {
        let (peak, pid) = (peak.clone(), worker.pid());
        tokio::spawn(async move {
            loop {
                peak.fetch_max(rss_kib(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let mut answers = Vec::new();
    for id in &ids {
        answers.push(fake.wait_for_request(id, WAIT).await?.actions());
    }
    sampler.abort();
    let peak = peak
        .load(Ordering::Relaxed)
        .max(worker.rss_kib().unwrap_or_default());
    println!(
        "8 events of 330k turns or 346k contacts published straight to NATS: worker RSS {} MB \
         before, {} MB at most",
        before / 1024,
        peak / 1024
    );
    // Before the fix one such event took a worker from 42 to 296 MB.
    assert!(
        peak.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} to {peak} kB"
    );
    // Refused, so answered with the fallback: agents take over.
    for actions in &answers {
        assert_eq!(actions.len(), 2, "{actions:?}");
        assert_eq!(actions[0]["type"], "NOTE", "{actions:?}");
        assert_eq!(actions[1]["type"], "NEEDS_HELP", "{actions:?}");
    }
    let letters = testkit::faults::dead_letters(&js).await?;
    for id in &ids {
        let letter = letters
            .iter()
            .find(|l| &l.request_id == id)
            .with_context(|| format!("no dead letter for {id}"))?;
        assert_eq!(letter.reason, "invalid_event");
        assert!(letter.error.contains("more than"), "{}", letter.error);
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_deadline_in_a_header_is_worked_on_for_at_most_max_budget() -> Result<()> {
    let nats = NatsServer::start().await?;
    let js = nats.jetstream().await?;
    shared::topology::ensure_event_streams(
        &js,
        &shared::config::flag_defaults::<shared::config::TopologyArgs>()?,
    )
    .await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour(Behaviour::always(Reply::status(503)));
    let worker = worker_binary(
        &nats,
        &fake,
        &[("MAX_BUDGET", "2s"), ("CALLBACK_MAX_ATTEMPTS", "1000")],
    )
    .await?;
    let event = EventBuilder::message("far-future", "hello")
        .set("/expires", serde_json::json!("2099-01-01T00:00:00Z"))
        .build();
    let far = chrono::DateTime::parse_from_rfc3339("2099-01-01T00:00:00Z")?.with_timezone(&Utc);
    let published = Utc::now();
    publish_direct(&js, "far-future", serde_json::to_vec(&event)?, far).await?;
    let expired = testkit::wait_until(WAIT, Duration::from_millis(100), || async {
        testkit::faults::metric_at(
            &worker.url(),
            "yourlogic_events_processed_total",
            &[("trigger", "MESSAGE"), ("outcome", "expired")],
        )
        .await
            >= 1.0
    })
    .await;
    assert!(
        expired,
        "the event was still being retried: {}",
        fake.summary()
    );
    let last_attempt = fake
        .callbacks()
        .iter()
        .map(|c| c.received_at)
        .max()
        .context("no callback attempt")?;
    println!(
        "deadline header 2099, MAX_BUDGET 2 s: last callback attempt {:?} after publishing",
        (last_attempt - published).to_std().unwrap_or_default()
    );
    assert!(last_attempt - published < chrono::Duration::seconds(3));
    Ok(())
}
