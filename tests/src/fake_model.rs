//! A fake OpenAI-compatible chat-completions server on loopback, for the generative step's
//! tests: it answers `POST /v1/chat/completions` the way it is told (a text, a tool call, an
//! error status, a malformed or empty answer, after a delay, or never) and records every request.
//! Used by the generative step's tests (in-process and through the pipeline), the studio's
//! generative mode tests and `bench-logic`.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};

/// How the fake model answers.
#[derive(Debug, Clone, PartialEq)]
pub enum Behaviour {
    /// A completion with this text.
    Answer(String),
    /// A call of the `escalate_to_human` tool with this reason.
    Escalate(String),
    /// This HTTP status with an error body.
    Status(u16),
    /// A 200 whose body is not a chat completion.
    Malformed,
    /// A completion without text or tool calls.
    Empty,
    /// The answer after this delay.
    Slow(Duration, String),
    /// Never answers (the connection stays open).
    Hang,
}

/// One request the fake model received.
#[derive(Debug, Clone)]
pub struct Received {
    pub body: Value,
    pub authorization: Option<String>,
    pub api_key: Option<String>,
}

#[derive(Clone)]
struct Shared {
    behaviour: Arc<Mutex<Behaviour>>,
    received: Arc<Mutex<Vec<Received>>>,
}

/// The running fake server; stops when dropped.
pub struct FakeModel {
    addr: SocketAddr,
    shared: Shared,
    task: tokio::task::JoinHandle<()>,
}

impl FakeModel {
    /// Starts the server on a free loopback port.
    pub async fn start(behaviour: Behaviour) -> FakeModel {
        let shared = Shared {
            behaviour: Arc::new(Mutex::new(behaviour)),
            received: Arc::new(Mutex::new(Vec::new())),
        };
        let app = Router::new()
            .route("/v1/chat/completions", post(complete))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the fake model");
        let addr = listener.local_addr().expect("local address");
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeModel { addr, shared, task }
    }

    /// The base URL to configure (`GENERATIVE_URL`).
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// Changes how the next requests are answered.
    pub fn set(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().expect("lock") = behaviour;
    }

    /// The requests received so far.
    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("lock").clone()
    }
}

impl Drop for FakeModel {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn completion(message: Value) -> Response {
    axum::Json(json!({
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "model": "fake",
        "choices": [{"index": 0, "finish_reason": "stop", "message": message}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 30, "total_tokens": 150}
    }))
    .into_response()
}

async fn complete(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    shared.received.lock().expect("lock").push(Received {
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
        authorization: header("authorization"),
        api_key: header("api-key"),
    });
    let behaviour = shared.behaviour.lock().expect("lock").clone();
    match behaviour {
        Behaviour::Answer(text) => completion(json!({"role": "assistant", "content": text})),
        Behaviour::Escalate(reason) => completion(json!({
            "role": "assistant", "content": null,
            "tool_calls": [{"id": "call_1", "type": "function", "function": {
                "name": "escalate_to_human", "arguments": json!({"reason": reason}).to_string()
            }}]
        })),
        Behaviour::Status(code) => (
            StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "{\"error\":{\"message\":\"fake failure\"}}",
        )
            .into_response(),
        Behaviour::Malformed => "<html>surprise</html>".into_response(),
        Behaviour::Empty => completion(json!({"role": "assistant", "content": "   "})),
        Behaviour::Slow(delay, text) => {
            tokio::time::sleep(delay).await;
            completion(json!({"role": "assistant", "content": text}))
        }
        Behaviour::Hang => std::future::pending().await,
    }
}
