//! The pipeline end to end (ingress → NATS JetStream → workers → fake Salted CX): one answer per
//! event, before its deadline, in conversation order across workers, through duplicates, expiry,
//! failing callbacks, killed workers and a NATS restart.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Result;
use chrono::Utc;
use reqwest::StatusCode;
use serde_json::json;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};
use worker::logic::echo::EchoLogic;

const READY: Duration = Duration::from_secs(15);

/// Every call (successful or not) the fake received for `request_id`.
fn calls_for(fake: &FakeSaltedCx, request_id: &str) -> Vec<testkit::Callback> {
    fake.callbacks()
        .into_iter()
        .filter(|c| c.request_id.as_deref() == Some(request_id))
        .collect()
}

async fn worker(nats: &str, fake: &FakeSaltedCx) -> Result<Service> {
    worker_with(nats, fake, |_| {}).await
}

async fn worker_with(
    nats: &str,
    fake: &FakeSaltedCx,
    tweak: impl FnOnce(&mut worker::Config),
) -> Result<Service> {
    let service = stack::start_worker(nats, &fake.base_url(), Arc::new(EchoLogic), tweak).await?;
    stack::wait_ready(&service, READY).await?;
    Ok(service)
}

/// Posts `event` until the ingress accepts it (after a NATS restart), for at most `timeout`.
async fn accepted_within(poster: &Poster, event: &serde_json::Value, timeout: Duration) -> bool {
    testkit::wait_until(timeout, Duration::from_millis(100), || async {
        poster
            .post(event)
            .await
            .is_ok_and(|(status, _)| status == StatusCode::ACCEPTED)
    })
    .await
}

/// A NATS server, a fake Salted CX and a ready ingress with a poster for it.
async fn nats_fake_and_ingress() -> Result<(NatsServer, FakeSaltedCx, Service, Poster)> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let poster = Poster::new(&ingress.url());
    Ok((nats, fake, ingress, poster))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_gets_exactly_one_callback_with_the_right_path_token_and_actions_before_it_expires()
-> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let _worker = worker(&nats.url(), &fake).await?;

    let event = EventBuilder::message("conv-e2e", "hello there").build();
    let (status, _) = poster.post(&event).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    let request_id = event["requestId"].as_str().unwrap_or_default();
    let callback = fake
        .wait_for_request(request_id, Duration::from_secs(10))
        .await?;

    assert_eq!(callback.account_id, event["accountId"]);
    assert_eq!(callback.conversation_pid, "conv-e2e");
    assert_eq!(
        callback.authorization.as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    assert_eq!(
        callback.body,
        json!({"requestId": request_id, "actions": [{"type": "MESSAGE", "content": "You said: hello there"}]})
    );
    let expires: chrono::DateTime<Utc> = event["expires"].as_str().unwrap_or_default().parse()?;
    assert!(callback.received_at < expires);

    // A non-message event is still answered, with no actions.
    let file = EventBuilder::file("conv-e2e", "a.pdf", "application/pdf").build();
    poster.post(&file).await?;
    let callback = fake
        .wait_for_request(
            file["requestId"].as_str().unwrap_or_default(),
            Duration::from_secs(10),
        )
        .await?;
    assert_eq!(callback.body["actions"], json!([]));

    // Exactly one callback each, even after a while.
    let settled = testkit::wait_until(
        Duration::from_millis(500),
        Duration::from_millis(50),
        || async { fake.callbacks().len() > 2 },
    )
    .await;
    assert!(!settled, "unexpected extra callbacks: {}", fake.summary());
    assert_eq!(fake.callbacks().len(), 2);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_keep_every_conversations_callbacks_in_acceptance_order() -> Result<()> {
    const CONVERSATIONS: usize = 200;
    const EVENTS: usize = 10;
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(worker(&nats.url(), &fake).await?);
    }

    let started = Instant::now();
    let accepted = stack::post_conversations(
        &poster,
        "order",
        CONVERSATIONS,
        EVENTS,
        Duration::from_secs(60),
    )
    .await?;
    let posted_in = started.elapsed();
    fake.wait_for_successful_callbacks(CONVERSATIONS * EVENTS, Duration::from_secs(90))
        .await?;
    let answered_in = started.elapsed();
    let verdict = stack::verdict(&accepted, &fake.callbacks());
    let page = stack::scrape(&workers[0]).await?;
    let e2e_sum =
        saltedcx_sim::metrics::metric_value(&page, "yourlogic_end_to_end_seconds_sum", &[]);
    let e2e_count =
        saltedcx_sim::metrics::metric_value(&page, "yourlogic_end_to_end_seconds_count", &[]);
    println!(
        "ordering run: {} events posted in {posted_in:?}, all answered in {answered_in:?} \
         ({:.0} events/s), mean end-to-end {:.1} ms, {verdict:?}",
        CONVERSATIONS * EVENTS,
        (CONVERSATIONS * EVENTS) as f64 / answered_in.as_secs_f64(),
        1000.0 * e2e_sum / e2e_count.max(1.0),
    );
    assert_eq!(verdict.lost, 0);
    assert_eq!(verdict.order_violations, 0);
    assert_eq!(verdict.repeated, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_request_id_gets_one_callback() -> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let _worker = worker(&nats.url(), &fake).await?;

    let event = EventBuilder::message("conv-dup", "once").build();
    let (_, first) = poster.post(&event).await?;
    let (_, second) = poster.post(&event).await?;
    assert_eq!(first["status"], "accepted");
    assert_eq!(second["status"], "duplicate");
    let marker = EventBuilder::message("conv-dup", "after").build();
    poster.post(&marker).await?;
    fake.wait_for_request(
        marker["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;
    let request_id = event["requestId"].as_str().unwrap_or_default();
    assert_eq!(calls_for(&fake, request_id).len(), 1);
    Ok(())
}

/// With events already waiting in the queue: posts one more event of `conversation`, starts a
/// worker, waits until that event is answered (so everything of `conversation` queued before it
/// was handled; other conversations' events may not be) and returns the worker and its metrics
/// page.
async fn worker_once_answered(
    nats: &NatsServer,
    fake: &FakeSaltedCx,
    poster: &Poster,
    conversation: &str,
) -> Result<(Service, String)> {
    let next = EventBuilder::message(conversation, "in time").build();
    assert_eq!(poster.post(&next).await?.0, StatusCode::ACCEPTED);
    let worker = worker(&nats.url(), fake).await?;
    fake.wait_for_request(
        next["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;
    let page = stack::scrape(&worker).await?;
    Ok((worker, page))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_that_expires_in_the_queue_gets_no_callback_and_is_counted() -> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;

    // No worker yet: the event waits in the queue past its deadline.
    let doomed = EventBuilder::message("conv-expire", "too late")
        .expires_in(Duration::from_millis(800))
        .build();
    assert_eq!(poster.post(&doomed).await?.0, StatusCode::ACCEPTED);
    let expires: chrono::DateTime<Utc> = doomed["expires"].as_str().unwrap_or_default().parse()?;
    let passed = testkit::wait_until(
        Duration::from_secs(5),
        Duration::from_millis(50),
        || async { Utc::now() > expires },
    )
    .await;
    assert!(passed);
    let (_worker, page) = worker_once_answered(&nats, &fake, &poster, "conv-expire").await?;
    assert!(calls_for(&fake, doomed["requestId"].as_str().unwrap_or_default()).is_empty());
    let expired = saltedcx_sim::metrics::metric_value(
        &page,
        "yourlogic_events_processed_total",
        &[("outcome", "expired")],
    );
    assert_eq!(expired, 1.0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_event_redelivered_after_its_deadline_is_not_counted_expired() -> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;

    // Two events wait in the queue past their deadline; the first was answered before (its
    // record says delivered, as after a worker crash between callback and acknowledgement).
    let store = shared::topology::ensure_answers_bucket(
        &nats.jetstream().await?,
        &shared::config::flag_defaults::<shared::config::AnswersArgs>()?,
        1,
    )
    .await?;
    let answered = EventBuilder::message("conv-redelivered", "answered before")
        .expires_in(Duration::from_millis(800))
        .build();
    let unanswered = EventBuilder::message("conv-unanswered", "never answered")
        .expires_in(Duration::from_millis(800))
        .build();
    for event in [&answered, &unanswered] {
        assert_eq!(poster.post(event).await?.0, StatusCode::ACCEPTED);
    }
    let record = serde_json::to_vec(&worker::answers::Record::Delivered { status: 200 })?;
    store
        .put(
            answered["requestId"].as_str().unwrap_or_default(),
            record.into(),
        )
        .await?;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    // The worker connects after they were queued, so it treats them as possible redeliveries.
    let (worker, _) = worker_once_answered(&nats, &fake, &poster, "conv-unanswered").await?;
    // The answered event is another conversation's: it may be handled after the marker.
    let counts = || async {
        let page = stack::scrape(&worker).await.unwrap_or_default();
        let expired = saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_events_processed_total",
            &[("outcome", "expired")],
        );
        let already =
            saltedcx_sim::metrics::metric_value(&page, "yourlogic_already_answered_total", &[]);
        (expired, already)
    };
    let both = testkit::wait_until(Duration::from_secs(20), Duration::from_millis(50), || {
        let counts = counts();
        async move { counts.await == (1.0, 1.0) }
    })
    .await;
    assert!(both, "expired and already answered: {:?}", counts().await);
    assert_eq!(
        fake.callbacks().len(),
        1,
        "only the event in time is answered"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_slow_and_refused_callbacks_are_retried_until_success_within_the_deadline()
-> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let _worker = worker_with(&nats.url(), &fake, |c| {
        c.worker.callback_timeout = Duration::from_millis(300);
    })
    .await?;

    // 500, 503, 429, a reset and a hang past the attempt timeout, then success.
    fake.set_behaviour(Behaviour {
        script: [
            Reply::status(500),
            Reply::status(503),
            Reply::status(429),
            Reply::Reset,
            Reply::Hang,
        ]
        .into_iter()
        .collect(),
        default: Reply::ok(),
        delay: Duration::ZERO,
    });
    let event = EventBuilder::message("conv-retry", "please").build();
    poster.post(&event).await?;
    let id = event["requestId"].as_str().unwrap_or_default().to_string();
    let answered = testkit::wait_until(
        Duration::from_secs(10),
        Duration::from_millis(20),
        || async { calls_for(&fake, &id).iter().any(|c| c.is_success()) },
    )
    .await;
    assert!(answered, "{}", fake.summary());
    let calls = calls_for(&fake, &id);
    assert_eq!(calls.len(), 6, "{}", fake.summary());
    assert_eq!(calls.iter().filter(|c| c.is_success()).count(), 1);

    // Connection refused for a while, then back.
    fake.pause().await;
    let event = EventBuilder::message("conv-retry", "again").build();
    poster.post(&event).await?;
    let id = event["requestId"].as_str().unwrap_or_default().to_string();
    tokio::time::sleep(Duration::from_millis(700)).await;
    fake.resume().await?;
    let callback = fake.wait_for_request(&id, Duration::from_secs(10)).await?;
    assert!(callback.is_success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_that_keeps_failing_is_never_sent_after_the_deadline() -> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let worker = worker(&nats.url(), &fake).await?;
    fake.set_behaviour(Behaviour::always(Reply::status(500)));

    // A budget long enough for several attempts however late a busy machine starts the first.
    let event = EventBuilder::message("conv-late", "doomed")
        .expires_in(Duration::from_secs(4))
        .build();
    poster.post(&event).await?;
    let expires: chrono::DateTime<Utc> = event["expires"].as_str().unwrap_or_default().parse()?;
    let counted = testkit::wait_until(
        Duration::from_secs(10),
        Duration::from_millis(50),
        || async {
            let page = stack::scrape(&worker).await.unwrap_or_default();
            saltedcx_sim::metrics::metric_value(
                &page,
                "yourlogic_events_processed_total",
                &[("outcome", "expired")],
            ) >= 1.0
        },
    )
    .await;
    assert!(counted, "expiry not counted: {}", fake.summary());
    let attempts = fake.callbacks();
    assert!(attempts.len() >= 3, "retried only {} times", attempts.len());
    assert!(
        attempts.iter().all(|c| c.received_at < expires),
        "{}",
        fake.summary()
    );
    // Nothing more arrives later.
    let more = testkit::wait_until(
        Duration::from_millis(700),
        Duration::from_millis(50),
        || async { fake.callbacks().len() > attempts.len() },
    )
    .await;
    assert!(!more);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_rejected_with_a_client_error_is_not_retried_and_is_dead_lettered() -> Result<()>
{
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let worker = worker(&nats.url(), &fake).await?;
    fake.set_behaviour(Behaviour {
        script: [Reply::status(400)].into_iter().collect(),
        default: Reply::ok(),
        delay: Duration::ZERO,
    });
    let rejected = EventBuilder::message("conv-400", "bad").build();
    poster.post(&rejected).await?;
    let next = EventBuilder::message("conv-400", "good").build();
    poster.post(&next).await?;
    fake.wait_for_request(
        next["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;
    assert_eq!(
        calls_for(&fake, rejected["requestId"].as_str().unwrap_or_default()).len(),
        1
    );
    let page = stack::scrape(&worker).await?;
    assert_eq!(
        saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_dead_letters_total",
            &[("reason", "callback_rejected")]
        ),
        1.0
    );
    let js = nats.jetstream().await?;
    let dead = js
        .get_stream(shared::topology::DEAD_LETTER_STREAM)
        .await?
        .get_info()
        .await?;
    assert_eq!(dead.state.messages, 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_worker_loses_nothing_keeps_order_and_survivors_take_over() -> Result<()> {
    const CONVERSATIONS: usize = 100;
    const EVENTS: usize = 10;
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    // Slow answers so the kill lands mid-run with events in flight.
    fake.set_delay(Duration::from_millis(20));
    let mut workers = Vec::new();
    for _ in 0..3 {
        workers.push(worker(&nats.url(), &fake).await?);
    }
    let posting = {
        let poster = poster.clone();
        tokio::spawn(async move {
            stack::post_conversations(
                &poster,
                "kill",
                CONVERSATIONS,
                EVENTS,
                Duration::from_secs(60),
            )
            .await
        })
    };
    let total = CONVERSATIONS * EVENTS;
    let third = testkit::wait_until(
        Duration::from_secs(30),
        Duration::from_millis(10),
        || async { fake.successful_callbacks().len() >= total / 3 },
    )
    .await;
    assert!(third);
    let victim = workers.remove(0);
    let killed_at = Instant::now();
    victim.kill().await;
    let accepted = posting.await??;
    // Every accepted event answered (a repeated identical answer does not count twice).
    let all_answered = testkit::wait_until(
        Duration::from_secs(60),
        Duration::from_millis(50),
        || async { stack::verdict(&accepted, &fake.callbacks()).lost == 0 },
    )
    .await;
    let recovered_in = killed_at.elapsed();
    assert!(all_answered, "{}", fake.summary());
    let verdict = stack::verdict(&accepted, &fake.callbacks());
    println!("kill run: all {total} answered {recovered_in:?} after the kill; {verdict:?}");
    assert_eq!(verdict.lost, 0);
    assert_eq!(verdict.order_violations, 0);
    assert_eq!(verdict.conflicting, 0);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_nats_restart_the_pipeline_recovers_by_itself() -> Result<()> {
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let _worker = worker(&nats.url(), &fake).await?;
    let before = EventBuilder::message("conv-restart", "before").build();
    poster.post(&before).await?;
    fake.wait_for_request(
        before["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;

    nats.stop().await?;
    nats.restart().await?;

    // Posting succeeds again once the ingress has reconnected; the answer follows.
    let after = EventBuilder::message("conv-restart", "after").build();
    let accepted = accepted_within(&poster, &after, Duration::from_secs(20)).await;
    assert!(accepted);
    fake.wait_for_request(
        after["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(20),
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_redelivered_after_nats_forgot_its_consumer_gets_the_same_answer_and_order_holds()
-> Result<()> {
    // Consumers keep their progress in memory: a single server that crashes forgets that the
    // event was delivered (and its acknowledgement goes nowhere), and re-delivers it as if for
    // the first time to the consumer the worker re-creates.
    let (nats, fake, _ingress, poster) = nats_fake_and_ingress().await?;
    let _worker = worker(&nats.url(), &fake).await?;
    // Salted CX takes its time to accept the answer; meanwhile NATS crashes and restarts.
    fake.set_delay(Duration::from_secs(3));
    let event = EventBuilder::message("conv-lost-ack", "hello").build();
    let request_id = event["requestId"].as_str().unwrap_or_default().to_string();
    poster.post(&event).await?;
    fake.wait_for_request(&request_id, Duration::from_secs(10))
        .await?;
    nats.kill();
    nats.restart().await?;
    fake.set_delay(Duration::ZERO);

    // The conversation goes on; its next event is answered after the redelivered one (same
    // partition, in order).
    let next = EventBuilder::message("conv-lost-ack", "next").build();
    let next_id = next["requestId"].as_str().unwrap_or_default().to_string();
    let accepted = accepted_within(&poster, &next, Duration::from_secs(20)).await;
    assert!(
        accepted,
        "the ingress did not accept events after the restart"
    );
    fake.wait_for_request(&next_id, Duration::from_secs(20))
        .await?;

    let all = fake.callbacks();
    let first = calls_for(&fake, &request_id);
    assert!(
        !first.is_empty() && first.len() <= 2,
        "the first event must be answered, at most once more after the crash: {first:?}"
    );
    assert!(
        first.iter().all(|c| c.body == first[0].body),
        "a redelivery must send the same answer, never another one: {first:?}"
    );
    let last_first = all
        .iter()
        .rposition(|c| c.request_id.as_deref() == Some(request_id.as_str()));
    let next_at = all
        .iter()
        .position(|c| c.request_id.as_deref() == Some(next_id.as_str()));
    assert!(
        last_first < next_at,
        "the next event was answered before the redelivered one: {all:?}"
    );
    Ok(())
}
