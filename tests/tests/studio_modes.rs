//! The studio's modes besides the playbook in-process. The pipeline mode: the conversation goes
//! through a real ingress, NATS JetStream and a worker, whose callbacks come back to the
//! studio's own port; each answer carries its time against the event's budget and the studio's
//! in-process reading of the same event. The generative mode: the playbook with the worker's
//! generative step against a (fake) model server, sent no key; the why shows the model's
//! outcome, the fallback reason and the passages, and the export expects only that the model
//! writes something. Without a pipeline or a model those modes are refused with what to do.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, ensure};
use saltedcx_sim::cases::{self, run};
use saltedcx_sim::studio::generative::GenerativeOptions;
use saltedcx_sim::studio::{StudioOptions, StudioServer};
use serde_json::{Value, json};
use testkit::NatsServer;
use testkit::fake_model::{Behaviour, FakeModel};
use testkit::stack::{self, TOKEN};
use worker::logic::playbook::ReplyLanguage;

const BUDGET: Duration = Duration::from_secs(15);

fn options(ingress_url: Option<String>, generative: Option<GenerativeOptions>) -> StudioOptions {
    StudioOptions {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        playbook: None,
        ingress_url,
        token: TOKEN.into(),
        bot_agent_ids: Vec::new(),
        reply_language: ReplyLanguage::Customer,
        budget: BUDGET,
        generative,
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
        StudioServer::start(&options(Some(format!("{}/v1/events", ingress.url())), None)).await?;
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
    // A replay goes through the pipeline again, as a new conversation, and nothing changed.
    let (status, replayed) = post(&client, &studio, "replay", json!({})).await?;
    ensure!(
        status == 200 && replayed["pid"] != conversation["pid"],
        "{replayed}"
    );
    for exchange in replayed["exchanges"]
        .as_array()
        .cloned()
        .unwrap_or_default()
    {
        ensure!(exchange["answer"]["outcome"] == "answered", "{exchange}");
        ensure!(exchange["changed_from"].is_null(), "{exchange}");
    }
    Ok(())
}

#[tokio::test]
async fn without_a_pipeline_or_a_model_those_modes_are_refused_with_what_to_do() -> Result<()> {
    let studio = StudioServer::start(&options(None, None)).await?;
    let client = reqwest::Client::new();
    for (mode, flag) in [
        ("pipeline", "--ingress-url"),
        ("generative", "--generative-url"),
    ] {
        let (status, body) = post(&client, &studio, "mode", json!({"mode": mode})).await?;
        ensure!(status == 409, "{status} {body}");
        let message = body["error"]["message"].as_str().unwrap_or_default();
        ensure!(message.contains(flag), "{message}");
    }
    let (status, body) = post(&client, &studio, "step", json!({"step": {"shout": "hi"}})).await?;
    ensure!(
        status == 400 && body["error"]["code"] == "bad_step",
        "{status} {body}"
    );
    Ok(())
}

#[tokio::test]
async fn the_generative_mode_shows_the_models_outcome_its_passages_and_the_fallback_reason()
-> Result<()> {
    let said = "Your parcel is on its way and arrives within 3-5 working days.";
    let model = FakeModel::start(Behaviour::Answer(said.into())).await;
    let generative = GenerativeOptions {
        url: model.base_url(),
        model: "demo-model".into(),
        documents: Vec::new(),
    };
    let studio = StudioServer::start(&options(None, Some(generative))).await?;
    let client = reqwest::Client::new();
    let (status, body) = post(&client, &studio, "mode", json!({"mode": "generative"})).await?;
    ensure!(
        status == 200 && body["mode"] == "generative",
        "{status} {body}"
    );
    post(
        &client,
        &studio,
        "step",
        json!({"step": {"customer": "Where is my parcel?"}}),
    )
    .await?;
    model.set(Behaviour::Status(500));
    let (_, conversation) = post(
        &client,
        &studio,
        "step",
        json!({"step": {"customer": "When are you open on Monday?"}}),
    )
    .await?;

    let answered = &conversation["exchanges"][0]["answer"];
    ensure!(answered["actions"].to_string().contains(said), "{answered}");
    let step = &answered["why"]["generative"];
    ensure!(
        step["outcome"] == "answered" && step["fallback"].is_null(),
        "{step}"
    );
    ensure!(
        answered["why"]["playbook_choice"]
            .to_string()
            .contains("delivery"),
        "what the playbook had chosen: {answered}"
    );
    let passages = step["passages"].as_array().cloned().unwrap_or_default();
    ensure!(
        passages
            .iter()
            .any(|p| p["source"].to_string().contains("delivery")),
        "the delivery entry was retrieved: {step}"
    );
    // Another topic (the same one again would be a customer still stuck: offered a human).
    let fell_back = &conversation["exchanges"][1]["answer"];
    let hours = worker::logic::playbook::Playbook::builtin()
        .map_err(anyhow::Error::msg)?
        .knowledge_texts()
        .find(|(id, _, _)| *id == "opening-hours")
        .map(|(_, _, answer)| answer.default_text().to_string())
        .unwrap_or_default();
    ensure!(
        !hours.is_empty() && fell_back["actions"].to_string().contains(&hours),
        "the playbook's answer stayed: {fell_back}"
    );
    ensure!(
        fell_back["why"]["generative"]["fallback"] == "http_error",
        "{fell_back}"
    );
    let received = model.received();
    ensure!(received.len() == 2, "{} requests", received.len());
    ensure!(
        received
            .iter()
            .all(|r| r.authorization.is_none() && r.api_key.is_none()),
        "the studio sends no key"
    );

    // The export expects only a message where the model wrote it; the playbook alone passes it.
    let exported: Value = client
        .get(format!("{}api/export", studio.url()))
        .send()
        .await?
        .json()
        .await?;
    let text = exported["toml"].as_str().unwrap_or_default();
    ensure!(
        text.contains("# answered by the model") && text.contains("expect.no_message = false"),
        "{text}"
    );
    let parsed = cases::parse("exported.toml", text)?;
    let logic = std::sync::Arc::new(worker::logic::playbook::PlaybookLogic::new(
        worker::logic::playbook::Playbook::builtin().map_err(anyhow::Error::msg)?,
    ));
    let report = run::run(&run::Backend::InProcess(logic), &parsed, BUDGET).await;
    ensure!(report.passed(), "{}\n{text}", report.render());
    Ok(())
}
