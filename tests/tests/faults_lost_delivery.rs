//! A delivery lost on its way to the worker that owns its partition, as when the NATS node the
//! worker is connected to dies while passing it on: NATS counts the event as delivered, the
//! worker never sees it, reconnects and goes on pulling, and NATS redelivers the lost event only
//! after the ack wait. The conversation's next event, delivered meanwhile, must wait for it.
//!
//! The loss is made exactly: a relay between the worker and its nats-server cuts the worker's
//! connection the moment the event's bytes come through, without passing them on.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use testkit::faults::cutter::DeliveryCutter;
use testkit::faults::{self, NonceLogic};
use testkit::stack::{self, Poster, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(30);
const ANSWERED: Duration = Duration::from_secs(30);
const ACK_WAIT: Duration = Duration::from_secs(2);

async fn post(poster: &Poster, event: &Value) -> Result<String> {
    let (status, body) = poster.post(event).await?;
    anyhow::ensure!(status.as_u16() == 202, "posting got {status}: {body}");
    Ok(event["requestId"]
        .as_str()
        .context("event without requestId")?
        .to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_lost_on_the_way_to_its_worker_holds_back_the_conversations_next_event_until_it_is_redelivered()
-> Result<()> {
    faults::init_test_logging();
    let nats = NatsServer::start().await?;
    let cutter = DeliveryCutter::start(nats.port()).await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(
        &cutter.url(),
        &fake.base_url(),
        Arc::new(NonceLogic::default()),
        |c| c.worker.ack_wait = ACK_WAIT,
    )
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    let conversation = "lost-delivery-1";

    // The conversation runs normally first.
    let first = post(
        &poster,
        &EventBuilder::message(conversation, "hello").build(),
    )
    .await?;
    fake.wait_for_request(&first, ANSWERED).await?;

    // Its next event is lost on the way to the worker ...
    cutter.arm(b"LOST-ON-THE-WAY");
    let lost = post(
        &poster,
        &EventBuilder::message(conversation, "LOST-ON-THE-WAY").build(),
    )
    .await?;
    let cut = testkit::poll::wait_until(Duration::from_secs(20), Duration::from_millis(10), || {
        let cuts = cutter.cuts();
        async move { cuts == 1 }
    })
    .await;
    anyhow::ensure!(cut, "the event never came through the relay");
    // ... and the one after it is delivered while the lost one waits for the ack wait.
    let next = post(
        &poster,
        &EventBuilder::message(conversation, "and then").build(),
    )
    .await?;

    let lost_answer = fake.wait_for_request(&lost, ANSWERED).await?;
    let next_answer = fake.wait_for_request(&next, ANSWERED).await?;
    let takeovers =
        faults::metric_at(&worker.url(), "yourlogic_partition_takeovers_total", &[]).await;
    println!(
        "lost event answered at {}, the next one at {} ({} ms later); partition takeovers {takeovers}",
        lost_answer.received_at,
        next_answer.received_at,
        (next_answer.received_at - lost_answer.received_at).num_milliseconds()
    );
    assert!(
        lost_answer.received_at < next_answer.received_at,
        "the next event was answered before the lost one: {} >= {}",
        lost_answer.received_at,
        next_answer.received_at
    );
    assert_eq!(fake.callbacks_for(&lost).len(), 1, "{}", fake.summary());
    assert_eq!(fake.callbacks_for(&next).len(), 1, "{}", fake.summary());
    Ok(())
}
