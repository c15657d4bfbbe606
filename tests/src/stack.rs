//! The pipeline in-process for tests: an ingress and any number of workers, each a tokio task
//! that can be stopped gracefully (SIGTERM-like) or aborted (like `kill -9`: every task of the
//! service is dropped and its NATS connection closes), against a NATS URL and a fake Salted CX.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use worker::logic::Logic;

/// The token every test service and the fake Salted CX share.
pub const TOKEN: &str = "test-token";

/// A running service (ingress or worker).
pub struct Service {
    addr: SocketAddr,
    /// Where `/healthz`, `/readyz` and `/metrics` are (the ingress's admin listener; a worker's
    /// only listener).
    admin: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<()>>,
}

impl Service {
    /// The address it listens on (events for the ingress; health/metrics for a worker).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://addr`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Where its health and metrics endpoints are (the ingress's admin listener).
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin
    }

    /// `http://admin-addr`: where its health and metrics endpoints are.
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin)
    }

    /// Asks it to stop gracefully and waits until it has (at most `timeout`).
    pub async fn stop(mut self, timeout: Duration) -> Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(timeout, &mut self.task)
            .await
            .context("service did not stop in time")?
            .context("service task failed")?
            .context("service returned an error")
    }

    /// Drops it at once, like `kill -9`: nothing is finished or handed back.
    pub async fn kill(self) {
        self.task.abort();
        let _ = self.task.await;
    }
}

/// Starts an ingress on a free loopback port; `tweak` adjusts its configuration.
pub async fn start_ingress(
    nats_url: &str,
    tweak: impl FnOnce(&mut ingress::Config),
) -> Result<Service> {
    let mut config =
        ingress::Config::new(nats_url, TOKEN, loopback()).map_err(anyhow::Error::msg)?;
    tweak(&mut config);
    let service = ingress::Ingress::build(config).await?;
    let addr = service.local_addr()?;
    let admin = service.admin_addr()?;
    Ok(spawn(addr, admin, |stopped| service.run(stopped)))
}

/// Starts a worker answering to `api_url` with `logic`; `tweak` adjusts its configuration.
pub async fn start_worker(
    nats_url: &str,
    api_url: &str,
    logic: Arc<dyn Logic>,
    tweak: impl FnOnce(&mut worker::Config),
) -> Result<Service> {
    crate::faults::init_test_logging();
    let mut config =
        worker::Config::new(nats_url, TOKEN, api_url, loopback()).map_err(anyhow::Error::msg)?;
    tweak(&mut config);
    let service = worker::Worker::build(config, logic).await?;
    let addr = service.local_addr()?;
    Ok(spawn(addr, addr, |stopped| service.run(stopped)))
}

/// Runs a built service as a task; `run` gets the signal that resolves when the service is
/// asked to stop (or its `Service` is dropped).
fn spawn<F, E>(addr: SocketAddr, admin: SocketAddr, run: impl FnOnce(StopSignal) -> F) -> Service
where
    F: Future<Output = std::result::Result<(), E>> + Send + 'static,
    E: std::error::Error + Send + Sync + 'static,
{
    let (stop, stopped) = oneshot::channel::<()>();
    let signal: StopSignal = Box::pin(async move {
        let _ = stopped.await;
    });
    Service {
        addr,
        admin,
        stop: Some(stop),
        task: {
            let running = run(signal);
            tokio::spawn(async move { Ok(running.await?) })
        },
    }
}

type StopSignal = std::pin::Pin<Box<dyn Future<Output = ()> + Send>>;

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// Waits until its `GET /readyz` answers 200, or fails after `timeout`.
pub async fn wait_ready(service: &Service, timeout: Duration) -> Result<()> {
    let client = reqwest::Client::new();
    let url = format!("{}/readyz", service.admin_url());
    let ready = crate::poll::wait_until(timeout, Duration::from_millis(50), || {
        let request = client.get(&url).send();
        async move { request.await.is_ok_and(|r| r.status() == StatusCode::OK) }
    })
    .await;
    anyhow::ensure!(ready, "{url} not ready within {timeout:?}");
    Ok(())
}

/// A whole HTTP/1.1 request posting a customer message of `conversation` with the shared
/// token, for tests that speak HTTP on raw sockets (keep-alive connections of a real client).
pub fn raw_event_request(conversation: &str) -> Vec<u8> {
    let body = crate::EventBuilder::message(conversation, "hello")
        .expires_in(Duration::from_secs(60))
        .build()
        .to_string();
    format!(
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

/// Posts events to an ingress like Salted CX does.
#[derive(Clone)]
pub struct Poster {
    client: reqwest::Client,
    url: String,
}

impl Poster {
    /// A poster for the ingress at `ingress_url`.
    pub fn new(ingress_url: &str) -> Self {
        Self {
            client: reqwest::Client::builder()
                .pool_max_idle_per_host(64)
                .build()
                .unwrap_or_else(|_| reqwest::Client::new()),
            url: format!("{ingress_url}/v1/events"),
        }
    }

    /// Posts `event` with the shared token; returns the status and the JSON body.
    pub async fn post(&self, event: &Value) -> Result<(StatusCode, Value)> {
        self.post_raw(
            serde_json::to_vec(event)?,
            Some(&format!("Bearer {TOKEN}")),
            "application/json",
        )
        .await
    }

    /// Posts raw bytes with the given authorization and content type.
    pub async fn post_raw(
        &self,
        body: Vec<u8>,
        authorization: Option<&str>,
        content_type: &str,
    ) -> Result<(StatusCode, Value)> {
        let mut request = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .timeout(Duration::from_secs(10))
            .body(body);
        if let Some(authorization) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, authorization);
        }
        let response = request.send().await?;
        let status = response.status();
        let text = response.text().await?;
        let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, body))
    }
}

/// Fetches a service's `/metrics` page.
pub async fn scrape(service: &Service) -> Result<String> {
    Ok(reqwest::get(format!("{}/metrics", service.admin_url()))
        .await?
        .text()
        .await?)
}

/// The request ids each conversation got accepted, in acceptance order.
pub type Accepted = Vec<(String, Vec<String>)>;

/// Posts `events_each` customer messages in each of `conversations` conversations named
/// `{prefix}-{i}`, conversations concurrently, each conversation's events one after the other
/// without waiting for answers (so they queue up together). Returns the accepted request ids.
pub async fn post_conversations(
    poster: &Poster,
    prefix: &str,
    conversations: usize,
    events_each: usize,
    budget: Duration,
) -> Result<Accepted> {
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..conversations {
        let poster = poster.clone();
        let conversation = format!("{prefix}-{i}");
        tasks.spawn(async move {
            let mut accepted = Vec::with_capacity(events_each);
            for n in 0..events_each {
                let event = crate::EventBuilder::message(&conversation, &format!("message {n}"))
                    .expires_in(budget)
                    .build();
                let (status, body) = poster.post(&event).await?;
                anyhow::ensure!(
                    status == StatusCode::ACCEPTED,
                    "event {n} of {conversation} got {status}: {body}"
                );
                accepted.push(event["requestId"].as_str().unwrap_or_default().to_string());
            }
            Ok::<_, anyhow::Error>((conversation, accepted))
        });
    }
    let mut all = Vec::with_capacity(conversations);
    while let Some(result) = tasks.join_next().await {
        all.push(result??);
    }
    Ok(all)
}

/// What the callbacks show about the accepted events.
#[derive(Debug, Default)]
pub struct Verdict {
    /// Accepted events with no successful callback.
    pub lost: usize,
    /// Conversations whose first successful callbacks came in another order than acceptance.
    pub order_violations: usize,
    /// Events with more than one successful callback.
    pub repeated: usize,
    /// Events whose callbacks carried different bodies.
    pub conflicting: usize,
    /// Successful callbacks in all.
    pub callbacks: usize,
}

/// Checks the fake's successful callbacks against what was accepted.
pub fn verdict(accepted: &Accepted, callbacks: &[crate::Callback]) -> Verdict {
    use std::collections::HashMap;
    let mut by_request: HashMap<&str, Vec<&crate::Callback>> = HashMap::new();
    for callback in callbacks.iter().filter(|c| c.is_success()) {
        if let Some(id) = callback.request_id.as_deref() {
            by_request.entry(id).or_default().push(callback);
        }
    }
    let mut verdict = Verdict {
        callbacks: callbacks.iter().filter(|c| c.is_success()).count(),
        ..Verdict::default()
    };
    for (_, ids) in accepted {
        let mut firsts = Vec::new();
        for id in ids {
            match by_request.get(id.as_str()) {
                None => verdict.lost += 1,
                Some(calls) => {
                    if calls.len() > 1 {
                        verdict.repeated += 1;
                        if calls.iter().any(|c| c.body != calls[0].body) {
                            verdict.conflicting += 1;
                        }
                    }
                    firsts.push(calls[0].received_at);
                }
            }
        }
        if firsts.windows(2).any(|pair| pair[0] > pair[1]) {
            verdict.order_violations += 1;
        }
    }
    verdict
}
