//! The real pipeline (nats-server, ingress, worker with `LOGIC=generative`, fake Salted CX)
//! against the fake OpenAI-compatible model server, for the generative pipeline tests; and the
//! way Salted CX carries a conversation from one event to the next (the turns so far and the
//! `conversation.custom` the previous answer stored).

#![allow(dead_code)] // each test binary uses a different part

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Result, ensure};
use clap::Parser;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::fake_model::FakeModel;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
/// How long a test waits for one callback.
pub const CALLBACK_WAIT: Duration = Duration::from_secs(15);

/// The running pipeline.
pub struct Running {
    _nats: NatsServer,
    pub fake: FakeSaltedCx,
    _ingress: Service,
    pub worker: Service,
    pub poster: Poster,
    /// Reference documents written for this run (removed on drop).
    _documents: Option<tempfile::TempDir>,
}

/// Starts the pipeline with the worker asking `model`; `documents` (file name, text) become
/// `GENERATIVE_DOCUMENTS`; `extra` are more worker arguments.
pub async fn start(
    model: &FakeModel,
    documents: &[(&str, &str)],
    extra: &[&str],
) -> Result<Running> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let url = model.base_url();
    let mut args: Vec<String> = [
        "worker",
        "--saltedcx-token",
        TOKEN,
        "--logic",
        "generative",
        "--generative-url",
        &url,
        "--generative-model",
        "demo-model",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let dir = if documents.is_empty() {
        None
    } else {
        let dir = tempfile::tempdir()?;
        for (name, text) in documents {
            std::fs::write(dir.path().join(name), text)?;
        }
        args.push("--generative-documents".into());
        args.push(path_text(dir.path().to_path_buf()));
        Some(dir)
    };
    args.extend(extra.iter().map(|s| s.to_string()));
    let config = worker::config::Cli::try_parse_from(args)?.config;
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
        _documents: dir,
    })
}

fn path_text(path: PathBuf) -> String {
    path.to_string_lossy().to_string()
}

impl Running {
    /// Posts `event` and returns the body of its callback.
    pub async fn answer(&self, event: &Value) -> Result<Value> {
        let (status, body) = self.poster.post(event).await?;
        ensure!(
            status == StatusCode::ACCEPTED,
            "not accepted: {status} {body}"
        );
        let id = event["requestId"].as_str().unwrap_or_default();
        let callback = self.fake.wait_for_request(id, CALLBACK_WAIT).await?;
        Ok(callback.body)
    }

    /// A worker metric's value.
    pub async fn metric(&self, name: &str, labels: &[(&str, &str)]) -> Result<f64> {
        let page = stack::scrape(&self.worker).await?;
        Ok(saltedcx_sim::metrics::metric_value(&page, name, labels))
    }
}

/// The texts of the `MESSAGE` actions of a callback body.
pub fn message_texts(body: &Value) -> Vec<String> {
    body["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "MESSAGE")
        .filter_map(|a| a["content"].as_str().map(str::to_string))
        .collect()
}

/// The texts of the `NOTE` actions of a callback body.
pub fn note_texts(body: &Value) -> Vec<String> {
    body["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["type"] == "NOTE")
        .filter_map(|a| a["content"].as_str().map(str::to_string))
        .collect()
}

/// Whether a callback body asks for a human agent.
pub fn needs_help(body: &Value) -> bool {
    body["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["type"] == "NEEDS_HELP")
}

/// One conversation as Salted CX carries it: every event has the turns so far, the
/// `conversation.custom` the last answer stored, and `needsHelp` once an answer asked for help.
pub struct Conversation {
    pid: String,
    language: String,
    turns: Vec<Value>,
    custom: Value,
    needs_help: bool,
}

impl Conversation {
    /// A new conversation of a customer writing in `language`.
    pub fn new(pid: &str, language: &str) -> Self {
        Self {
            pid: pid.into(),
            language: language.into(),
            turns: Vec::new(),
            custom: json!({}),
            needs_help: false,
        }
    }

    /// Adds a turn that is not a customer message (a SYSTEM turn, an agent's message).
    pub fn add_turn(&mut self, turn: Value) {
        self.turns.push(turn);
    }

    /// The next customer message event, answered within `budget`.
    pub fn message(&mut self, text: &str, budget: Duration) -> Value {
        let customer_turn = json!({"type": "MESSAGE", "participantType": "CUSTOMER",
            "content": text, "contentCustomer": text, "languageCustomer": self.language});
        self.turns.push(customer_turn);
        let mut builder = EventBuilder::message(&self.pid, text)
            .set("/trigger/languageCustomer", json!(self.language))
            .custom(self.custom.clone())
            .needs_help(self.needs_help)
            .expires_in(budget);
        for turn in &self.turns {
            builder = builder.turn(turn.clone());
        }
        builder.build()
    }

    /// Takes in what the answer to the last event did, as Salted CX does.
    pub fn answered(&mut self, body: &Value) {
        for text in message_texts(body) {
            self.turns
                .push(json!({"type": "MESSAGE", "participantType": "BOT", "content": text}));
        }
        if let Some(custom) = body["conversation"]["custom"].as_object() {
            self.custom = Value::Object(custom.clone());
        }
        self.needs_help |= needs_help(body);
    }

    /// The conversation's custom data as the last answer left it.
    pub fn custom(&self) -> &Value {
        &self.custom
    }
}
