//! Baseline: a trivial axum endpoint (reads the body, answers `202` with a small JSON body)
//! under the same HTTP load as the ingress: the simulator's HTTP client posting the same event
//! bodies from the same number of concurrent senders, each sending its next request as soon as
//! the previous one is answered.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use serde::Serialize;
use tokio::time::Instant;

use saltedcx_sim::client::{IngressClient, Posted};
use saltedcx_sim::stats::{Percentiles, Stats};

/// Serves the trivial endpoint `POST /v1/events` on `addr` until Ctrl-C or SIGTERM.
pub async fn serve(addr: SocketAddr) -> Result<()> {
    let app = Router::new().route(
        "/v1/events",
        post(|body: Bytes| async move {
            let _ = body.len();
            (
                StatusCode::ACCEPTED,
                [("content-type", "application/json")],
                r#"{"status":"accepted"}"#,
            )
        }),
    );
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    println!(
        "trivial endpoint on http://{}/v1/events",
        listener.local_addr()?
    );
    axum::serve(listener, app)
        .with_graceful_shutdown(shared::shutdown::signal())
        .await
        .context("serving")
}

/// What the HTTP load does.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// The endpoint.
    pub url: String,
    /// Bearer token sent along.
    pub token: String,
    /// Closed-loop senders.
    pub concurrency: usize,
    /// How long to send.
    pub duration: Duration,
    /// Event body size in bytes.
    pub event_size: usize,
}

/// What it measured.
#[derive(Debug, Clone, Serialize)]
pub struct HttpReport {
    /// The endpoint.
    pub url: String,
    /// Closed-loop senders.
    pub concurrency: usize,
    /// Event body size in bytes.
    pub event_size: usize,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Requests answered 202 in the window.
    pub requests: u64,
    /// Requests that failed.
    pub errors: u64,
    /// Requests per second.
    pub requests_per_s: f64,
    /// Request latency.
    pub latency: Percentiles,
}

/// Posts event bodies to `url` from `concurrency` closed-loop senders for `duration`.
pub async fn load(options: &HttpOptions) -> Result<HttpReport> {
    let client = IngressClient::new(&options.url, &options.token)?;
    let payloads = Arc::new(super::payloads(1000, options.event_size)?);
    let stats = Arc::new(Stats::default());
    let (requests, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..options.concurrency {
        let (client, payloads, stats) = (client.clone(), payloads.clone(), stats.clone());
        let (requests, errors, stop) = (requests.clone(), errors.clone(), stop.clone());
        tasks.spawn(async move {
            let mut n = i;
            while !stop.load(Ordering::Relaxed) {
                let sent = Instant::now();
                match client.post(payloads[n % payloads.len()].clone()).await {
                    Posted::Accepted | Posted::Duplicate => {
                        stats.record_answer(sent.elapsed(), sent.elapsed());
                        requests.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
                n += 7;
            }
        });
    }
    tokio::time::sleep(options.duration).await;
    let window = start.elapsed();
    let done = requests.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let finish = tokio::time::timeout(Duration::from_secs(15), async {
        while tasks.join_next().await.is_some() {}
    });
    if finish.await.is_err() {
        tasks.abort_all();
    }
    let seconds = window.as_secs_f64().max(1e-9);
    Ok(HttpReport {
        url: options.url.clone(),
        concurrency: options.concurrency,
        event_size: options.event_size,
        duration_s: seconds,
        requests: done,
        errors: errors.load(Ordering::Relaxed),
        requests_per_s: done as f64 / seconds,
        latency: stats.latency(),
    })
}
