//! The conversation logic of a campaign's worker processes: an HTTP delegate (`LOGIC=http`) on
//! a loopback port that answers every event with one message `"{requestId} {nonce}"`, the
//! nonce fresh on every call. A redelivered event decided a second time instead of re-sending
//! its recorded answer would reach Salted CX with a different body: the audit counts it as
//! conflicting.

use anyhow::{Context, Result};
use axum::Router;
use axum::http::HeaderMap;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A running delegate; stops when dropped.
pub struct NonceDelegate {
    url: String,
    serving: JoinHandle<()>,
}

impl NonceDelegate {
    /// Starts it on a free loopback port.
    pub async fn start() -> Result<NonceDelegate> {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the logic delegate")?;
        let url = format!(
            "http://{}/decide",
            listener.local_addr().context("delegate address")?
        );
        let app = Router::new().route("/decide", post(decide));
        let serving = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(NonceDelegate { url, serving })
    }

    /// The worker's `LOGIC_URL`.
    pub fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for NonceDelegate {
    fn drop(&mut self) {
        self.serving.abort();
    }
}

async fn decide(headers: HeaderMap) -> axum::Json<Value> {
    let request_id = headers
        .get(worker::logic::http::REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    let nonce = uuid::Uuid::new_v4().simple();
    axum::Json(
        json!({"actions": [{"type": "MESSAGE", "content": format!("{request_id} {nonce}")}]}),
    )
}
