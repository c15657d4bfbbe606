//! Poison events: logic that panics, fails, never answers, or crashes the worker again and again
//! for some events, and events the worker cannot read. Each such event goes to the dead-letter stream with its error and is counted;
//! Salted CX gets the fallback answer (a note for the agents and NEEDS_HELP; nothing for a silent
//! trigger) before the deadline; the conversation goes on with its next event.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use serde_json::{Value, json};
use shared::answer::{Action, Reply};
use shared::event::Event;
use testkit::faults::{self, DeadLetter};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};
use tokio::sync::mpsc;
use worker::logic::{Context, Logic, LogicError};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);

/// Decides by the customer's text: `panic`, `error`, `unavailable`, `hang` (never answers) and
/// `crash` (reports to the test, which kills the worker, and never answers) misbehave; anything
/// else is answered `ok: <text>`.
struct PoisonLogic {
    crashing: mpsc::UnboundedSender<String>,
}

#[async_trait]
impl Logic for PoisonLogic {
    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let text = event.trigger_texts().next().unwrap_or_default().to_string();
        match text.split_whitespace().next().unwrap_or_default() {
            "panic" => panic!("poisoned by {text}"),
            "error" => Err(LogicError::Failed(format!("cannot handle {text}"))),
            "unavailable" => Err(LogicError::Unavailable("knowledge base down".into())),
            "hang" => std::future::pending().await,
            "crash" => {
                let _ = self.crashing.send(event.request_id.to_string());
                std::future::pending().await
            }
            _ => Ok(Reply::with_actions(vec![Action::message(format!(
                "ok: {text}"
            ))])),
        }
    }
}

struct Setup {
    nats: NatsServer,
    fake: FakeSaltedCx,
    _ingress: Service,
    poster: Poster,
    logic: Arc<PoisonLogic>,
    crashing: mpsc::UnboundedReceiver<String>,
}

async fn setup() -> Result<Setup> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let poster = Poster::new(&ingress.url());
    let (tx, crashing) = mpsc::unbounded_channel();
    Ok(Setup {
        nats,
        fake,
        _ingress: ingress,
        poster,
        logic: Arc::new(PoisonLogic { crashing: tx }),
        crashing,
    })
}

async fn worker(setup: &Setup, tweak: impl FnOnce(&mut worker::Config)) -> Result<Service> {
    let worker = stack::start_worker(
        &setup.nats.url(),
        &setup.fake.base_url(),
        setup.logic.clone(),
        tweak,
    )
    .await?;
    stack::wait_ready(&worker, READY).await?;
    Ok(worker)
}

/// Posts `event` and fails unless it got 202; returns its request id.
async fn post(poster: &Poster, event: &Value) -> Result<String> {
    let (status, body) = poster.post(event).await?;
    anyhow::ensure!(status == 202, "got {status}: {body}");
    Ok(event["requestId"].as_str().unwrap_or_default().to_string())
}

fn letter<'a>(letters: &'a [DeadLetter], request_id: &str) -> Result<&'a DeadLetter> {
    letters
        .iter()
        .find(|d| d.request_id == request_id)
        .with_context(|| format!("no dead letter for {request_id}"))
}

/// The fallback: a note for the agents saying in general terms what went wrong (never the
/// error itself, which may name internal services), then NEEDS_HELP.
fn assert_fallback(actions: &[Value], cause: &str, raw_error: &str) {
    assert_eq!(actions.len(), 2, "{actions:?}");
    assert_eq!(actions[0]["type"], "NOTE");
    let note = actions[0]["content"].as_str().unwrap_or_default();
    assert!(note.contains(cause), "note {note:?} lacks {cause:?}");
    assert!(
        !note.contains(raw_error),
        "note {note:?} shows the internal error {raw_error:?}"
    );
    assert_eq!(actions[1], json!({"type": "NEEDS_HELP", "needsHelp": true}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panicking_and_failing_logic_dead_letters_the_event_sends_the_fallback_and_the_conversation_continues()
-> Result<()> {
    let setup = setup().await?;
    let worker = worker(&setup, |_| {}).await?;
    let before_letters = faults::metric_at(
        &worker.url(),
        "yourlogic_dead_letters_total",
        &[("reason", "logic_error")],
    )
    .await;
    let failed = |url: String| async move {
        faults::metric_at(
            &url,
            "yourlogic_events_processed_total",
            &[("trigger", "MESSAGE"), ("outcome", "failed")],
        )
        .await
    };
    let before_failed = failed(worker.url()).await;

    let texts = [
        "hello",
        "panic now",
        "still there?",
        "error please",
        "and now?",
        "unavailable kb",
        "panic quietly",
        "last one",
    ];
    let mut ids = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        // The 7th event is silent: its failure must not escalate.
        let event = EventBuilder::message("conv-poison", text)
            .silent(i == 6)
            .build();
        ids.push(post(&setup.poster, &event).await?);
    }
    let callbacks = setup
        .fake
        .wait_for_successful_callbacks(texts.len(), WAIT)
        .await?;

    // One callback per event, in conversation order.
    let order: Vec<&str> = callbacks
        .iter()
        .filter_map(|c| c.request_id.as_deref())
        .collect();
    assert_eq!(
        order,
        ids.iter().map(String::as_str).collect::<Vec<_>>(),
        "{}",
        setup.fake.summary()
    );
    for (i, callback) in callbacks.iter().enumerate() {
        let actions = callback.actions();
        match i {
            6 => assert_eq!(actions, Vec::<Value>::new(), "silent: no escalation"),
            1 => assert_fallback(&actions, "the automatic answer failed", "poisoned by"),
            3 => assert_fallback(&actions, "the automatic answer failed", "cannot handle"),
            5 => assert_fallback(&actions, "is unavailable", "knowledge base down"),
            _ => assert_eq!(
                actions,
                vec![json!({"type": "MESSAGE", "content": format!("ok: {}", texts[i])})]
            ),
        }
    }

    // The four poison events are in the dead-letter stream, with their error and body.
    let letters = faults::dead_letters(&setup.nats.jetstream().await?).await?;
    assert_eq!(letters.len(), 4, "{letters:?}");
    for (i, error_part) in [
        (1, "logic panicked: poisoned by panic now"),
        (3, "logic failed: cannot handle error please"),
        (5, "logic dependency failed: knowledge base down"),
        (6, "logic panicked: poisoned by panic quietly"),
    ] {
        let letter = letter(&letters, &ids[i])?;
        assert_eq!(letter.reason, "logic_error");
        assert!(letter.error.contains(error_part), "{letter:?}");
        let body: Value = serde_json::from_slice(&letter.payload)?;
        assert_eq!(body["requestId"], ids[i].as_str());
    }

    // And counted.
    let letters_counted = faults::metric_at(
        &worker.url(),
        "yourlogic_dead_letters_total",
        &[("reason", "logic_error")],
    )
    .await;
    assert_eq!(letters_counted - before_letters, 4.0);
    assert_eq!(failed(worker.url()).await - before_failed, 4.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logic_that_never_answers_is_dead_lettered_with_a_fallback_before_the_deadline_and_the_conversation_continues()
-> Result<()> {
    let setup = setup().await?;
    let _worker = worker(&setup, |_| {}).await?;
    let hung = EventBuilder::message("conv-hang", "hang forever")
        .expires_in(Duration::from_secs(3))
        .build();
    let hung_id = post(&setup.poster, &hung).await?;
    let next_id = post(
        &setup.poster,
        &EventBuilder::message("conv-hang", "are you there?").build(),
    )
    .await?;

    let answered = setup.fake.wait_for_request(&next_id, WAIT).await?;
    let expires: chrono::DateTime<chrono::Utc> =
        hung["expires"].as_str().unwrap_or_default().parse()?;
    let hung_calls = setup.fake.callbacks_for(&hung_id);
    assert_eq!(hung_calls.len(), 1, "{}", setup.fake.summary());
    assert!(
        hung_calls[0].received_at < expires,
        "fallback after expires"
    );
    assert_fallback(&hung_calls[0].actions(), "took too long", "did not answer");
    assert!(answered.received_at > hung_calls[0].received_at);
    let letters = faults::dead_letters(&setup.nats.jetstream().await?).await?;
    let letter = letter(&letters, &hung_id)?;
    assert_eq!(letter.reason, "logic_error");
    assert!(letter.error.contains("did not answer within"), "{letter:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_crashes_every_worker_is_dead_lettered_after_max_deliveries_and_the_conversation_continues()
-> Result<()> {
    let mut setup = setup().await?;
    let tweak = |c: &mut worker::Config| {
        c.worker.max_deliveries = 2;
        c.worker.ack_wait = Duration::from_secs(1);
    };
    let mut current = worker(&setup, tweak).await?;
    let crash = EventBuilder::message("conv-crash", "crash the worker")
        .expires_in(Duration::from_secs(20))
        .build();
    let crash_id = post(&setup.poster, &crash).await?;
    let next_id = post(
        &setup.poster,
        &EventBuilder::message("conv-crash", "hello again").build(),
    )
    .await?;

    // Each delivery "crashes" the worker processing it (kill -9), and a new one takes over.
    for delivery in 1..=2 {
        let started = tokio::time::timeout(WAIT, setup.crashing.recv())
            .await
            .with_context(|| format!("delivery {delivery} never reached the logic"))?;
        assert_eq!(started.as_deref(), Some(crash_id.as_str()));
        current.kill().await;
        current = worker(&setup, tweak).await?;
    }
    // The third delivery is not processed: dead-lettered, answered with the fallback.
    let answered = setup.fake.wait_for_request(&next_id, WAIT).await?;
    let crash_calls = setup.fake.callbacks_for(&crash_id);
    assert_eq!(crash_calls.len(), 1, "{}", setup.fake.summary());
    assert_fallback(
        &crash_calls[0].actions(),
        "tried several times",
        "delivered 3 times",
    );
    assert!(answered.received_at > crash_calls[0].received_at);
    let letters = faults::dead_letters(&setup.nats.jetstream().await?).await?;
    assert_eq!(letter(&letters, &crash_id)?.reason, "too_many_deliveries");
    let counted = faults::metric_at(
        &current.url(),
        "yourlogic_dead_letters_total",
        &[("reason", "too_many_deliveries")],
    )
    .await;
    assert_eq!(counted, 1.0);
    let failed = faults::metric_at(
        &current.url(),
        "yourlogic_events_processed_total",
        &[("trigger", "MESSAGE"), ("outcome", "failed")],
    )
    .await;
    assert_eq!(failed, 1.0);
    assert!(
        setup.crashing.try_recv().is_err(),
        "the logic ran a third time"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_field_of_an_unexpected_type_is_left_out_and_the_event_answered_as_usual() -> Result<()> {
    let setup = setup().await?;
    let _worker = worker(&setup, |_| {}).await?;
    // The ingress checks only what routing needs; the worker reads the rest leniently.
    let event = EventBuilder::message("conv-odd", "hello there")
        .set("/turns", json!("not a list"))
        .set("/conversation/needsHelp", json!("maybe"))
        .build();
    let id = post(&setup.poster, &event).await?;
    let answered = setup.fake.wait_for_request(&id, WAIT).await?;
    assert_eq!(
        answered.actions(),
        vec![json!({"type": "MESSAGE", "content": "ok: hello there"})]
    );
    let letters = faults::dead_letters(&setup.nats.jetstream().await?).await?;
    assert!(letters.is_empty(), "{letters:?}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_worker_cannot_read_is_dead_lettered_and_answered_with_the_fallback()
-> Result<()> {
    let setup = setup().await?;
    let _worker = worker(&setup, |_| {}).await?;
    // The ingress accepts only what the worker reads: an unreadable event can only have been
    // published around it (here: not JSON at all), with a valid envelope.
    let id = uuid::Uuid::new_v4();
    faults::publish_around_the_ingress(
        &setup.nats.jetstream().await?,
        "conv-unreadable",
        id,
        b"{\"requestId\": not json".to_vec(),
        chrono::Utc::now() + chrono::Duration::seconds(30),
    )
    .await?;
    let answered = setup.fake.wait_for_request(&id.to_string(), WAIT).await?;
    assert_fallback(&answered.actions(), "could not be read", "not valid JSON");
    let letters = faults::dead_letters(&setup.nats.jetstream().await?).await?;
    assert_eq!(letter(&letters, &id.to_string())?.reason, "invalid_event");
    Ok(())
}
