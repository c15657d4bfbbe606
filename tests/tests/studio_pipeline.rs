//! The studio's pipeline mode: the page's conversation goes through a real ingress, NATS
//! JetStream and a worker, whose callbacks come back to the studio's own port; each answer
//! carries its time against the event's budget and the studio's in-process reading of the same
//! event. Without a pipeline the mode is refused with what to do.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, ensure};
use serde_json::{Value, json};
use testkit::NatsServer;
use testkit::sim::studio::{StudioOptions, StudioServer};
use testkit::stack::{self, TOKEN};
use worker::logic::playbook::ReplyLanguage;

const BUDGET: Duration = Duration::from_secs(15);

fn options(ingress_url: Option<String>) -> StudioOptions {
    StudioOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        playbook: None,
        ingress_url,
        token: TOKEN.into(),
        bot_agent_ids: Vec::new(),
        reply_language: ReplyLanguage::Customer,
        budget: BUDGET,
    }
}

async fn post(
    client: &reqwest::Client,
    studio: &StudioServer,
    path: &str,
    body: Value,
) -> Result<(u16, Value)> {
    let response = client
        .post(format!("{}api/{path}", studio.url()))
        .json(&body)
        .send()
        .await?;
    Ok((response.status().as_u16(), response.json().await?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_studio_plays_its_conversation_through_a_running_pipeline_with_each_answers_time()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, Duration::from_secs(15)).await?;
    let studio =
        StudioServer::start(&options(Some(format!("{}/v1/events", ingress.url())))).await?;
    let api_url = format!("http://{}", studio.addr());
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let config =
        worker::Config::new(&nats.url(), TOKEN, &api_url, loopback).map_err(anyhow::Error::msg)?;
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &api_url, logic, |_| {}).await?;
    stack::wait_ready(&worker, Duration::from_secs(15)).await?;

    let client = reqwest::Client::new();
    let (status, conversation) =
        post(&client, &studio, "mode", json!({"mode": "pipeline"})).await?;
    ensure!(
        status == 200 && conversation["mode"] == "pipeline",
        "{status} {conversation}"
    );
    for text in ["Where is my order?", "What are your opening hours?"] {
        let (status, _) = post(
            &client,
            &studio,
            "step",
            json!({"step": {"customer": text}}),
        )
        .await?;
        ensure!(status == 200, "step {text:?}: {status}");
    }
    let conversation: Value = client
        .get(format!("{}api/conversation", studio.url()))
        .send()
        .await?
        .json()
        .await?;
    let exchanges = conversation["exchanges"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    ensure!(exchanges.len() == 2, "{conversation}");
    for exchange in &exchanges {
        let answer = &exchange["answer"];
        ensure!(
            answer["outcome"] == "answered" && answer["mode"] == "pipeline",
            "{answer}"
        );
        let latency = answer["latency_ms"].as_f64().unwrap_or(f64::MAX);
        ensure!(
            latency > 0.0 && latency < answer["deadline_ms"].as_f64().unwrap_or(0.0),
            "{answer}"
        );
        ensure!(answer["why"]["explained_in_process"] == true, "{answer}");
        ensure!(answer["why"]["same_as_pipeline"] == true, "{answer}");
    }
    let first = &exchanges[0]["answer"];
    ensure!(
        first["why"]["chosen"].to_string().contains("delivery"),
        "{first}"
    );
    // The worker's answer was applied: the second event carried the state it stored.
    let second = &exchanges[1]["answer"];
    ensure!(
        second["event"]["conversation"]["custom"] == first["custom"],
        "the state was not echoed back: {second}"
    );
    Ok(())
}

#[tokio::test]
async fn without_a_pipeline_the_pipeline_mode_is_refused_with_what_to_do() -> Result<()> {
    let studio = StudioServer::start(&options(None)).await?;
    let client = reqwest::Client::new();
    let (status, body) = post(&client, &studio, "mode", json!({"mode": "pipeline"})).await?;
    ensure!(status == 409, "{status} {body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    ensure!(message.contains("--ingress-url"), "{message}");
    let (status, body) = post(&client, &studio, "step", json!({"step": {"shout": "hi"}})).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "bad_step",
        "{status} {body}"
    );
    Ok(())
}
