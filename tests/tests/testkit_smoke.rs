//! Proves the test toolkit itself works: real NATS servers and clusters, the fake Salted CX
//! callback API, and the event builders.

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, consumer::pull, stream};
use futures::StreamExt;
use serde_json::json;
use testkit::events::{ACCOUNT_ID, EventBuilder};
use testkit::poll::{port_is_open, retry_until_ok};
use testkit::{Behaviour, FakeSaltedCx, NatsCluster, NatsOptions, NatsServer, Outcome, Reply};

const TOKEN: &str = "smoke-secret";

fn stream_config(name: &str, subject: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: name.to_string(),
        subjects: vec![subject.to_string()],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    }
}

async fn message_count(js: &jetstream::Context, name: &str) -> Result<u64> {
    let mut stream = js.get_stream(name).await.context("getting the stream")?;
    Ok(stream.info().await.context("stream info")?.state.messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_server_starts_with_jetstream_and_delivers_a_published_message() -> Result<()> {
    let server = NatsServer::start_with(NatsOptions {
        monitoring: true,
        ..Default::default()
    })
    .await?;
    assert!(server.is_running());
    assert_eq!(server.url(), format!("nats://127.0.0.1:{}", server.port()));
    assert!(server.monitor_url().is_some());

    let js = server.jetstream().await?;
    let stream = js
        .create_stream(stream_config("SMOKE", "smoke.>", 1))
        .await?;
    js.publish("smoke.one", "hello".into()).await?.await?;

    let consumer = stream
        .create_consumer(pull::Config {
            durable_name: Some("reader".into()),
            ..Default::default()
        })
        .await?;
    let mut batch = consumer
        .fetch()
        .max_messages(1)
        .expires(Duration::from_secs(5))
        .messages()
        .await?;
    let message = batch
        .next()
        .await
        .context("no message")?
        .map_err(anyhow::Error::msg)?;
    assert_eq!(message.payload.as_ref(), b"hello");
    message.ack().await.map_err(anyhow::Error::msg)?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_nats_server_keeps_its_persisted_stream_and_port() -> Result<()> {
    let server = NatsServer::start().await?;
    let port = server.port();
    let js = server.jetstream().await?;
    js.create_stream(stream_config("DURABLE", "durable.>", 1))
        .await?;
    for i in 0..3 {
        js.publish("durable.x", format!("m{i}").into())
            .await?
            .await?;
    }

    server.stop().await?;
    assert!(!server.is_running());
    assert!(
        !port_is_open(port).await,
        "a stopped server must refuse connections"
    );
    server.restart().await?;
    assert_eq!(server.port(), port);
    assert_eq!(
        message_count(&server.jetstream().await?, "DURABLE").await?,
        3
    );

    // A crash (SIGKILL) loses nothing acknowledged either.
    server.kill();
    assert!(!server.is_running());
    server.restart().await?;
    assert_eq!(
        message_count(&server.jetstream().await?, "DURABLE").await?,
        3
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_keeps_an_r3_stream_when_one_node_dies() -> Result<()> {
    let cluster = NatsCluster::start(3).await?;
    assert_eq!(cluster.urls().split(',').count(), 3);
    let mut js = jetstream::new(cluster.connect().await?);
    // Short ack timeout: a publish lost in the failover is retried quickly.
    js.set_timeout(Duration::from_secs(2));
    js.create_stream(stream_config("REPLICATED", "replicated.>", 3))
        .await?;
    for i in 0..5 {
        js.publish("replicated.x", format!("m{i}").into())
            .await?
            .await?;
    }

    cluster.kill(0);
    assert!(!cluster.is_running(0));
    // The client fails over and the stream (maybe after electing a new leader) accepts writes.
    retry_until_ok(
        Duration::from_secs(15),
        Duration::from_millis(200),
        "publish after node loss",
        || {
            let js = js.clone();
            async move {
                js.publish("replicated.x", "after".into()).await?.await?;
                Ok(())
            }
        },
    )
    .await?;
    let count = message_count(&js, "REPLICATED").await?;
    assert!(
        count >= 6,
        "expected the 5 earlier messages and at least one more, got {count}"
    );

    cluster.restart(0).await?;
    assert!(cluster.is_running(0));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_saltedcx_records_a_callback_with_its_path_and_token() -> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let request_id = uuid::Uuid::new_v4().to_string();
    let body =
        json!({ "requestId": request_id, "actions": [{ "type": "MESSAGE", "content": "hi" }] });
    let response = reqwest::Client::new()
        .post(fake.callback_url(ACCOUNT_ID, "conv-1"))
        .bearer_auth(TOKEN)
        .json(&body)
        .send()
        .await?;
    assert_eq!(response.status(), 200);

    let callback = fake
        .wait_for_request(&request_id, Duration::from_secs(5))
        .await?;
    assert_eq!(callback.account_id, ACCOUNT_ID);
    assert_eq!(callback.conversation_pid, "conv-1");
    assert_eq!(
        callback.authorization.as_deref(),
        Some("Bearer smoke-secret")
    );
    assert_eq!(callback.body, body);
    assert_eq!(callback.actions().len(), 1);
    assert_eq!(fake.successful_callbacks().len(), 1);

    // The documented alias `request` is accepted too.
    let response = reqwest::Client::new()
        .post(fake.callback_url(ACCOUNT_ID, "conv-1"))
        .bearer_auth(TOKEN)
        .json(&json!({ "request": "alias-id", "actions": [] }))
        .send()
        .await?;
    assert_eq!(response.status(), 200);
    assert_eq!(fake.callbacks_for("alias-id").len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_saltedcx_rejects_a_wrong_or_missing_token_with_401() -> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let client = reqwest::Client::new();
    let url = fake.callback_url(ACCOUNT_ID, "conv-2");
    let body = json!({ "requestId": "r1", "actions": [] });
    let wrong = client
        .post(&url)
        .bearer_auth("nope")
        .json(&body)
        .send()
        .await?;
    assert_eq!(wrong.status(), 401);
    let missing = client.post(&url).json(&body).send().await?;
    assert_eq!(missing.status(), 401);

    let calls = fake.wait_for_callbacks(2, Duration::from_secs(5)).await?;
    assert!(calls.iter().all(|c| c.status_returned == 401));
    assert!(fake.successful_callbacks().is_empty());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_saltedcx_follows_a_scripted_failure_sequence() -> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour(Behaviour::script([
        Reply::status(500),
        Reply::status(429),
        Reply::Reset,
        Reply::status(400),
    ]));
    let client = reqwest::Client::new();
    let url = fake.callback_url(ACCOUNT_ID, "conv-3");
    let mut seen = Vec::new();
    for i in 0..5 {
        let body = json!({ "requestId": format!("r{i}"), "actions": [] });
        let result = client
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await;
        seen.push(result.map(|r| r.status().as_u16()).unwrap_or(0));
    }
    assert_eq!(seen, [500, 429, 0, 400, 200], "0 marks a connection error");

    let calls = fake.wait_for_callbacks(5, Duration::from_secs(5)).await?;
    let outcomes: Vec<Outcome> = calls.iter().map(|c| c.outcome).collect();
    assert_eq!(
        outcomes,
        [
            Outcome::Responded(500),
            Outcome::Responded(429),
            Outcome::Reset,
            Outcome::Responded(400),
            Outcome::Responded(200)
        ]
    );
    assert_eq!(fake.successful_callbacks().len(), 1);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_saltedcx_delays_and_hangs_past_a_client_timeout() -> Result<()> {
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(300))
        .build()?;
    let url = fake.callback_url(ACCOUNT_ID, "conv-4");

    fake.set_behaviour(Behaviour::always(Reply::ok()).with_delay(Duration::from_secs(2)));
    let slow = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "requestId": "slow" }))
        .send()
        .await;
    assert!(slow.is_err_and(|e| e.is_timeout()));

    fake.set_behaviour(Behaviour::always(Reply::Hang));
    let hung = client
        .post(&url)
        .bearer_auth(TOKEN)
        .json(&json!({ "requestId": "hung" }))
        .send()
        .await;
    assert!(hung.is_err_and(|e| e.is_timeout()));
    let hung = fake
        .callbacks()
        .into_iter()
        .find(|c| c.request_id.as_deref() == Some("hung"));
    assert_eq!(hung.map(|c| c.outcome), Some(Outcome::Hung));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fake_saltedcx_refuses_connections_while_paused_and_answers_after_resume() -> Result<()>
{
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // A fresh connection per request: a pooled one cut by the pause may not yet be known dead
    // to the client when it is reused (the write then fails with a reset, not a refusal).
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()?;
    let url = fake.callback_url(ACCOUNT_ID, "conv-5");
    let send = |id: &'static str| {
        client
            .post(&url)
            .bearer_auth(TOKEN)
            .json(&json!({ "requestId": id }))
            .send()
    };
    assert_eq!(send("before").await?.status(), 200);

    fake.pause().await;
    assert!(!port_is_open(fake.port()).await);
    let refused = send("during").await;
    assert!(
        refused.is_err_and(|e| e.is_connect()),
        "expected connection refused"
    );

    fake.resume().await?;
    assert_eq!(send("after").await?.status(), 200);
    assert_eq!(fake.successful_callbacks().len(), 2);

    // A new fake can take over the port of one that was shut down.
    let port = fake.port();
    fake.shutdown().await;
    let replacement = FakeSaltedCx::start_on(port, TOKEN).await?;
    assert_eq!(send("replacement").await?.status(), 200);
    assert_eq!(replacement.callbacks_for("replacement").len(), 1);
    Ok(())
}

#[test]
fn event_builders_produce_events_the_shared_model_accepts() {
    let pid = "0a7c3b9e-1d2f-4e5a-8b6c-9d0e1f2a3b4c";
    let builders = [
        EventBuilder::message(pid, "Where is my order?"),
        EventBuilder::agent_message(pid, "Let me check"),
        EventBuilder::file(pid, "invoice.pdf", "application/pdf"),
        EventBuilder::navigation(pid, "https://help.example.com/a/1"),
        EventBuilder::action(pid, "create-ticket"),
        EventBuilder::menu_step(pid, "refund-credits"),
        EventBuilder::answer(pid, "refund-credits"),
        EventBuilder::review(pid, "Thumbs Down", "Confusing"),
        EventBuilder::conversation_update(pid, "Customer Resolved"),
        EventBuilder::engagement_completed(pid),
        EventBuilder::conversation_completed(pid),
    ];
    for builder in builders {
        let builder = builder
            .silent(true)
            .custom(json!({ "stage": "greeting" }))
            .expires_in(Duration::from_secs(5));
        let request_id = builder.request_id_str();
        let body = builder.to_body();
        let event = shared::event::Event::from_json(&body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&body)));
        assert_eq!(event.request_id.to_string(), request_id);
        assert_eq!(event.conversation_pid(), Some(pid));
        assert!(event.is_silent());
    }

    let fixed = EventBuilder::message(pid, "hi").request_id("11111111-2222-4333-8444-555555555555");
    assert_eq!(
        fixed.build()["requestId"],
        "11111111-2222-4333-8444-555555555555"
    );
    let completed = EventBuilder::conversation_completed(pid).build();
    assert!(completed.get("conversation").is_none());
    assert_eq!(completed["trigger"]["conversationPid"], pid);
}
