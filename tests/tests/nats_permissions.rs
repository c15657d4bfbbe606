//! The production NATS permissions, proven against a real nats-server that requires TLS from
//! every client, as production does. The permissions are the committed file
//! `deploy/k8s/overlays/production/nats-auth.conf`, loaded as it is (the production overlay and
//! the compose stack include the same file): the pipeline works end to end with its restricted
//! users (the ingress alone in its own account, the workers in the pipeline's) without a single
//! permission violation, and an ingress credential can store events but cannot read them, delete,
//! purge or reconfigure streams, write answers or dead letters, or pose as a worker.

mod secured_nats;

use std::time::Duration;

use anyhow::{Result, ensure};
use futures::{FutureExt, StreamExt};
use secured_nats::{
    EVENT_STREAM, INGRESS_PASSWORD, READY, WAIT, WORKER_PASSWORD, connect_as, jetstream_of, login,
    ready, refused_for, request_id, secured_nats, start_ingress, start_worker, stays_unready,
    tls_url, violations,
};
use shared::config::NatsArgs;
use testkit::stack::{self, Accepted, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};
use worker::admin::dead_letters::DeadLetters;

/// Posts `events_each` events in each of 8 conversations and waits until every one was
/// answered, in order per conversation.
async fn round_is_answered(poster: &Poster, fake: &FakeSaltedCx, prefix: &str) -> Result<()> {
    let accepted: Accepted =
        stack::post_conversations(poster, prefix, 8, 3, Duration::from_secs(15)).await?;
    for (_, ids) in &accepted {
        for id in ids {
            fake.wait_for_request(id, WAIT).await?;
        }
    }
    let verdict = stack::verdict(&accepted, &fake.callbacks());
    ensure!(
        verdict.lost == 0 && verdict.order_violations == 0,
        "round {prefix}: {verdict:?}"
    );
    Ok(())
}

/// Waits until `worker` owns at least one partition.
async fn owns_partitions(worker: &Service) -> bool {
    testkit::wait_until(READY, Duration::from_millis(100), || async {
        stack::scrape(worker).await.is_ok_and(|page| {
            saltedcx_sim::metrics::metric_value(&page, "yourlogic_worker_partitions", &[]) > 0.0
        })
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_pipeline_works_end_to_end_under_the_production_nats_permissions_over_tls() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let nats = secured_nats(&dir).await?;
    let outcome = run_the_pipeline(&nats).await;
    // A refused subject explains most failures above, so it is reported first. The only refusals
    // expected: the ingress, started first, trying to create the missing event stream.
    let refused: Vec<String> = violations(&nats)?
        .into_iter()
        .filter(|line| !refused_for(line, "INGRESS/user:ingress", STREAM_SET_UP))
        .collect();
    assert!(refused.is_empty(), "permission violations: {refused:#?}");
    outcome
}

/// What the ingress's stream set-up sends first (an update, then a create if the stream is
/// missing); refused, since only the workers set the stream up.
const STREAM_SET_UP: &str = "$JS.API.STREAM.UPDATE.YOURLOGIC_EVENTS";

/// Everything the services do with NATS: the ingress checks the stream and stores events;
/// workers set up their streams, consumers and bucket, share the partitions, take them over,
/// answer (claims in the answers bucket), dead-letter; the operator commands read and purge
/// dead letters.
async fn run_the_pipeline(nats: &NatsServer) -> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;

    // The ingress first: it may not create the event stream, so it waits for a worker to.
    let ingress = start_ingress(nats).await?;
    ensure!(
        stays_unready(&ingress, Duration::from_secs(2)).await,
        "the ingress became ready without an event stream"
    );
    let first = start_worker(nats, &fake).await?;
    ready(nats, &ingress).await?;
    let poster = Poster::new(&ingress.url());
    round_is_answered(&poster, &fake, "alone").await?;

    // A second worker: the partitions are shared out (membership, unpinning, takeovers).
    let second = start_worker(nats, &fake).await?;
    ensure!(
        owns_partitions(&second).await,
        "the second worker took no partition"
    );
    round_is_answered(&poster, &fake, "shared").await?;

    // The first stops: the second takes every partition.
    first.stop(Duration::from_secs(30)).await?;
    round_is_answered(&poster, &fake, "handed-over").await?;

    // A failing event is dead-lettered and answered with the fallback; the operator commands
    // (`worker dead-letters`) read and purge dead letters with the worker's credentials.
    let failing = EventBuilder::message("conv-dead", "fail now").build();
    let failing_id = request_id(&failing).to_string();
    assert_eq!(poster.post(&failing).await?.0, 202);
    fake.wait_for_request(&failing_id, WAIT).await?;
    let mut operator = NatsArgs::plain(tls_url(nats));
    login(&mut operator, &tls_url(nats), "worker", WORKER_PASSWORD);
    let letters = DeadLetters::open(&operator).await?;
    let listed = letters.list(None).await?;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(
        letters.find(&failing_id).await?.request_id,
        Some(failing_id)
    );
    assert_eq!(letters.purge().await?, 1);

    second.stop(Duration::from_secs(30)).await?;
    ingress.stop(Duration::from_secs(15)).await?;
    Ok(())
}

/// Every message `subscription` has received so far (it was flushed before).
fn received(subscription: &mut async_nats::Subscriber) -> Vec<async_nats::Message> {
    let mut all = Vec::new();
    while let Some(Some(message)) = subscription.next().now_or_never() {
        all.push(message);
    }
    all
}

/// Whether `message` is JetStream's acknowledgement of a publish to the event stream
/// (`{"stream":"YOURLOGIC_EVENTS","seq":…}`), not another reply that names the stream.
fn is_publish_acknowledgement(message: &async_nats::Message) -> bool {
    serde_json::from_slice::<serde_json::Value>(&message.payload).is_ok_and(|reply| {
        reply["stream"] == EVENT_STREAM && reply["seq"].is_u64() && reply.get("config").is_none()
    })
}

fn mentions(messages: &[async_nats::Message], text: &str) -> bool {
    messages
        .iter()
        .any(|m| String::from_utf8_lossy(&m.payload).contains(text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ingress_credential_cannot_read_events_delete_streams_write_answers_or_pose_as_a_worker()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let nats = secured_nats(&dir).await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = start_ingress(&nats).await?;
    let _worker = start_worker(&nats, &fake).await?;
    ready(&nats, &ingress).await?;
    let poster = Poster::new(&ingress.url());
    let admin = jetstream_of(nats.connect().await?);

    // Someone holding the ingress's credential listens wherever it is allowed to and tries to
    // listen where it is not; meanwhile an event goes through the pipeline.
    let spy = connect_as(&nats, "ingress", INGRESS_PASSWORD).await?;
    let spy_js = jetstream_of(spy.clone());
    let mut inbox = spy.subscribe("_INBOX.>").await?;
    let mut events = spy.subscribe("yourlogic.events.>").await?;
    let mut answers = spy.subscribe("$KV.>").await?;
    // The server has the subscriptions before the event is posted: it answers this request
    // only after them (the client's flush only writes them out; it confirms nothing).
    spy_js.get_stream(EVENT_STREAM).await?;
    let secret_text = "card 4111-secret";
    let event = EventBuilder::message("conv-spied", secret_text).build();
    assert_eq!(poster.post(&event).await?.0, 202);
    fake.wait_for_request(request_id(&event), WAIT).await?;
    // It does hear its account's replies, the ingress's publish acknowledgement among them
    // (waited for: it may still be on its way), only never the event: JetStream delivers that
    // to the worker's inbox, in the other account.
    let mut replies = Vec::new();
    let acknowledgement_heard = testkit::poll::wait_until(WAIT, Duration::from_millis(20), || {
        replies.extend(received(&mut inbox));
        let heard = replies.iter().any(is_publish_acknowledgement);
        async move { heard }
    })
    .await;
    assert!(
        acknowledgement_heard,
        "the inbox subscription heard no publish acknowledgement: {:?}",
        replies
            .iter()
            .map(|m| m.subject.to_string())
            .collect::<Vec<_>>()
    );
    assert!(
        !mentions(&replies, secret_text),
        "the event reached the ingress's inbox"
    );
    for (name, subscription) in [("yourlogic.events.>", &mut events), ("$KV.>", &mut answers)] {
        assert!(received(subscription).is_empty(), "{name} heard something");
    }

    // A message no partition consumer takes stays in the stream: what reading, deleting or
    // purging would reach.
    let kept = admin
        .publish("yourlogic.events.unowned", "kept".into())
        .await?
        .await?
        .sequence;
    // Whether that message is still stored. (Counting the stream's messages instead would race
    // with the worker: its acknowledgement of the spied event removes that one from the work
    // queue at a moment of its own.)
    let kept_is_stored = || async {
        let stream = admin.get_stream(EVENT_STREAM).await?;
        Ok::<_, anyhow::Error>(stream.get_raw_message(kept).await.is_ok())
    };
    assert!(kept_is_stored().await?, "the unowned message is not stored");

    // Reading events: no consumer, no reads of the stream.
    let mut stream = spy_js.get_stream(EVENT_STREAM).await?;
    let consumer = stream
        .create_consumer(async_nats::jetstream::consumer::pull::Config {
            durable_name: Some("spy".into()),
            ..Default::default()
        })
        .await;
    assert!(consumer.is_err(), "the ingress created a consumer");
    assert!(stream.get_raw_message(kept).await.is_err());
    let spy_consumer = admin
        .get_stream(EVENT_STREAM)
        .await?
        .consumer_info("spy")
        .await;
    assert!(spy_consumer.is_err(), "the spy's consumer exists");

    // Deleting or purging streams.
    assert!(spy_js.delete_stream(EVENT_STREAM).await.is_err());
    assert!(stream.purge().await.is_err());
    assert!(spy_js.delete_stream("KV_yourlogic_answers").await.is_err());
    assert!(kept_is_stored().await?, "events were deleted or purged");
    assert!(admin.get_stream("KV_yourlogic_answers").await.is_ok());

    // Writing answers or dead letters.
    assert!(spy_js.get_key_value("yourlogic_answers").await.is_err());
    for subject in ["$KV.yourlogic_answers.forged", "yourlogic.dead.0"] {
        assert!(
            stored(&spy_js, subject).await.is_err(),
            "{subject} was stored"
        );
    }
    let bucket = admin.get_key_value("yourlogic_answers").await?;
    assert!(
        bucket.get("forged").await?.is_none(),
        "an answer was forged"
    );
    let letters = admin
        .get_stream("YOURLOGIC_DEAD_LETTERS")
        .await?
        .info()
        .await?
        .state
        .messages;
    assert_eq!(letters, 0, "a dead letter was forged");

    // Posing as a worker (announcements decide who owns which partition).
    let mut announcements = admin.client().subscribe("yourlogic.workers").await?;
    // A round trip: the server has the subscription once it answers.
    admin.get_stream(EVENT_STREAM).await?;
    spy.publish("yourlogic.workers", r#"{"id":"forged"}"#.into())
        .await?;
    // Round trips in turn: the server has handled the publish once it answers the spy, and
    // whatever it passed on to the admin arrives before its answer to the admin.
    spy_js.get_stream(EVENT_STREAM).await?;
    admin.get_stream(EVENT_STREAM).await?;
    let heard = received(&mut announcements);
    assert!(
        !mentions(&heard, "forged"),
        "a forged worker announcement was heard"
    );

    // Reconfiguring the stream: a short max age would drop every queued event; a new stream
    // could capture subjects.
    let mut config = stream.info().await?.config.clone();
    let max_age = config.max_age;
    config.max_age = Duration::from_secs(1);
    assert!(spy_js.update_stream(&config).await.is_err());
    let spy_stream = async_nats::jetstream::stream::Config {
        name: "SPY".into(),
        subjects: vec!["spy.>".into()],
        ..Default::default()
    };
    assert!(spy_js.create_stream(spy_stream).await.is_err());
    let now = admin
        .get_stream(EVENT_STREAM)
        .await?
        .info()
        .await?
        .config
        .max_age;
    assert_eq!(now, max_age, "the stream was reconfigured");
    assert!(kept_is_stored().await?, "events were dropped");

    // The refusals are the permissions' doing: the server names the ingress user for each.
    let refused = violations(&nats)?.join("\n");
    for subject in [
        "yourlogic.events.>",
        "$KV.>",
        "$JS.API.CONSUMER.CREATE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.DELETE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.PURGE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.UPDATE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.CREATE.SPY",
        "$KV.yourlogic_answers.forged",
        "yourlogic.dead.0",
        "yourlogic.workers",
    ] {
        assert!(
            refused_for(&refused, "INGRESS/user:ingress", subject),
            "no violation logged for {subject}:\n{refused}"
        );
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_started_first_set_up_every_stream_and_a_worker_credential_cannot_delete_them()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let nats = secured_nats(&dir).await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // The worker first: it creates the event stream, the dead-letter stream and the bucket.
    let _worker = start_worker(&nats, &fake).await?;
    let ingress = start_ingress(&nats).await?;
    ready(&nats, &ingress).await?;
    let event = EventBuilder::message("conv-first", "hello").build();
    assert_eq!(Poster::new(&ingress.url()).post(&event).await?.0, 202);
    fake.wait_for_request(request_id(&event), WAIT).await?;
    let refused = violations(&nats)?;
    assert!(refused.is_empty(), "permission violations: {refused:#?}");

    let js = jetstream_of(connect_as(&nats, "worker", WORKER_PASSWORD).await?);
    assert!(js.delete_stream(EVENT_STREAM).await.is_err());
    assert!(js.get_stream(EVENT_STREAM).await?.purge().await.is_err());
    assert!(js.delete_key_value("yourlogic_answers").await.is_err());
    assert!(js.delete_stream("YOURLOGIC_DEAD_LETTERS").await.is_err());
    let admin = jetstream_of(nats.connect().await?);
    for stream in [
        EVENT_STREAM,
        "KV_yourlogic_answers",
        "YOURLOGIC_DEAD_LETTERS",
    ] {
        assert!(admin.get_stream(stream).await.is_ok(), "{stream} is gone");
    }
    let refused = violations(&nats)?.join("\n");
    for subject in [
        "$JS.API.STREAM.DELETE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.PURGE.YOURLOGIC_EVENTS",
        "$JS.API.STREAM.DELETE.KV_yourlogic_answers",
        "$JS.API.STREAM.DELETE.YOURLOGIC_DEAD_LETTERS",
    ] {
        assert!(
            refused_for(&refused, "YOURLOGIC/user:worker", subject),
            "{subject} not refused:\n{refused}"
        );
    }
    Ok(())
}

/// A JetStream publish and its acknowledgement.
async fn stored(js: &async_nats::jetstream::Context, subject: &'static str) -> Result<()> {
    js.publish(subject, "forged".into()).await?.await?;
    Ok(())
}
