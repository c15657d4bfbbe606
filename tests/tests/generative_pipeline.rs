//! The generative step through the real pipeline (ingress, NATS JetStream, worker with
//! `LOGIC=generative`, fake Salted CX) against a fake OpenAI-compatible server: the model's
//! answer reaches the customer; when the model hangs, the playbook's answer is delivered before
//! every event's deadline, and no callback ever arrives after it.

use std::time::Duration;

use anyhow::{Result, ensure};
use clap::Parser;
use reqwest::StatusCode;
use testkit::fake_model::{Behaviour, FakeModel};
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer, wait_until};

const READY: Duration = Duration::from_secs(15);
const DELIVERY: &str = "Orders are delivered within 3-5 working days. You can follow yours with the tracking link in your confirmation e-mail.";

struct Running {
    _nats: NatsServer,
    fake: FakeSaltedCx,
    _ingress: Service,
    worker: Service,
    poster: Poster,
}

async fn start(model: &FakeModel) -> Result<Running> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let url = model.base_url();
    let config = worker::config::Cli::try_parse_from([
        "worker",
        "--saltedcx-token",
        TOKEN,
        "--logic",
        "generative",
        "--generative-url",
        &url,
        "--generative-model",
        "demo-model",
    ])?
    .config;
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic, |_| {}).await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    Ok(Running {
        _nats: nats,
        fake,
        _ingress: ingress,
        worker,
        poster,
    })
}

fn message_texts(body: &serde_json::Value) -> Vec<String> {
    body["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "MESSAGE")
        .filter_map(|a| a["content"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_models_answer_reaches_the_customer_through_the_pipeline() -> Result<()> {
    let model = FakeModel::start(Behaviour::Answer(
        "Your parcel left our depot today.".into(),
    ))
    .await;
    let running = start(&model).await?;
    let event = EventBuilder::message("gen-answer", "Where is my parcel?").build();
    let (status, _) = running.poster.post(&event).await?;
    ensure!(status == StatusCode::ACCEPTED);
    let id = event["requestId"].as_str().unwrap_or_default();
    let callback = running
        .fake
        .wait_for_request(id, Duration::from_secs(10))
        .await?;
    ensure!(
        message_texts(&callback.body).last().map(String::as_str)
            == Some("Your parcel left our depot today."),
        "unexpected answer: {}",
        callback.body
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_model_still_gets_every_event_the_playbooks_answer_before_its_deadline()
-> Result<()> {
    let model = FakeModel::start(Behaviour::Hang).await;
    let running = start(&model).await?;
    let budget = Duration::from_secs(2);
    let mut events = Vec::new();
    for n in 0..4 {
        let event = EventBuilder::message(&format!("gen-hang-{n}"), "Where is my parcel?")
            .expires_in(budget)
            .build();
        let (status, _) = running.poster.post(&event).await?;
        ensure!(status == StatusCode::ACCEPTED, "event {n} not accepted");
        events.push(event);
    }
    for event in &events {
        let id = event["requestId"].as_str().unwrap_or_default();
        let callback = running
            .fake
            .wait_for_request(id, Duration::from_secs(10))
            .await?;
        let expires: chrono::DateTime<chrono::Utc> =
            event["expires"].as_str().unwrap_or_default().parse()?;
        ensure!(
            callback.received_at < expires,
            "answered at {} after the deadline {expires}",
            callback.received_at
        );
        // The playbook's answer, not the worker's "please take over" fallback.
        ensure!(
            message_texts(&callback.body).contains(&DELIVERY.to_string()),
            "not the playbook's answer: {}",
            callback.body
        );
        ensure!(
            !callback.body.to_string().contains("NEEDS_HELP"),
            "escalated instead of answering: {}",
            callback.body
        );
    }
    ensure!(
        model.received().len() == 4,
        "the model was asked {} times",
        model.received().len()
    );
    // Past every deadline, still exactly one callback per event.
    let last: chrono::DateTime<chrono::Utc> = events
        .iter()
        .filter_map(|e| e["expires"].as_str()?.parse().ok())
        .max()
        .unwrap_or_else(chrono::Utc::now);
    let until_past =
        (last - chrono::Utc::now()).to_std().unwrap_or_default() + Duration::from_secs(1);
    let extra = wait_until(until_past, Duration::from_millis(50), || async {
        events.iter().any(|e| {
            running
                .fake
                .callbacks_for(e["requestId"].as_str().unwrap_or_default())
                .len()
                > 1
        })
    })
    .await;
    ensure!(
        !extra,
        "an event got a second callback: {}",
        running.fake.summary()
    );
    let page = stack::scrape(&running.worker).await?;
    let timeouts = saltedcx_sim::metrics::metric_value(
        &page,
        "yourlogic_generative_fallbacks_total",
        &[("reason", "timeout")],
    );
    ensure!(timeouts >= 4.0, "fallbacks by timeout: {timeouts}");
    Ok(())
}
