//! Thousands of Salted CX connections opened at once: one HTTP connection per concurrent
//! conversation, as Salted CX holds them, all connecting in the same instant, posting, then
//! idling. Every event is accepted, without any connection waiting for another to time out; at
//! the connection cap, idle connections make room.
//!
//! Under such a burst on a busy machine NATS may confirm some publishes later than
//! `PUBLISH_TIMEOUT`: the ingress then rightly answers `503` with `Retry-After`, and Salted CX
//! posts the event again. The tests do what such a client does and check what it sees: every
//! event stored (`202`, or `202 duplicate` when the refused attempt was stored after all) on the
//! connection it holds, no connection closed by a time-out. How long the burst took is printed,
//! not asserted.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use saltedcx_sim::client::{IngressClient, Posted};
use saltedcx_sim::dedicated::{Dedicated, Target};
use testkit::stack::{self, Service, TOKEN};
use testkit::{EventBuilder, NatsServer};
use tokio::sync::Barrier;
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(15);

async fn target(ingress: &Service) -> Result<Target> {
    IngressClient::new(&format!("{}/v1/events", ingress.url()), TOKEN)?
        .dedicated_target()
        .await
}

fn event(conversation: &str, text: &str) -> Bytes {
    Bytes::from(
        EventBuilder::message(conversation, text)
            .build()
            .to_string(),
    )
}

/// Most attempts of one event before the test gives up on it.
const ATTEMPTS: usize = 30;
/// The ingress's `Retry-After` on a `503`.
const RETRY_AFTER: Duration = Duration::from_secs(1);

/// Posts `body` on `connection` as Salted CX does: again (same event, same connection) after
/// `Retry-After` while the ingress answers `503`. Returns the last outcome and the attempts.
async fn post_until_stored(connection: &mut Dedicated, body: Bytes) -> (Posted, usize) {
    let mut attempts = 0;
    loop {
        attempts += 1;
        let posted = connection.post(body.clone()).await;
        let unavailable = matches!(posted, Posted::Refused { status: 503, .. });
        if !unavailable || attempts >= ATTEMPTS {
            return (posted, attempts);
        }
        tokio::time::sleep(RETRY_AFTER).await;
    }
}

fn stored(posted: &Posted) -> bool {
    matches!(posted, Posted::Accepted | Posted::Duplicate)
}

/// What a burst's connections saw.
struct Burst {
    /// The connections, kept open.
    connections: Vec<Dedicated>,
    /// Each post's time until stored, retries included, sorted.
    latencies: Vec<Duration>,
    /// Events that needed more than one attempt (the first got `503`).
    retried: usize,
}

/// Opens `count` connections at the same instant (after a barrier); each posts one event until
/// it is stored.
async fn burst(target: &Target, prefix: &str, count: usize) -> Result<Burst> {
    let barrier = Arc::new(Barrier::new(count));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (target, barrier) = (target.clone(), barrier.clone());
        let conversation = format!("{prefix}-{i}");
        tasks.spawn(async move {
            let mut connection = Dedicated::new(target);
            barrier.wait().await;
            let started = Instant::now();
            let (posted, attempts) =
                post_until_stored(&mut connection, event(&conversation, "hello")).await;
            (connection, posted, attempts, started.elapsed())
        });
    }
    let mut result = Burst {
        connections: Vec::new(),
        latencies: Vec::new(),
        retried: 0,
    };
    while let Some(joined) = tasks.join_next().await {
        let (connection, posted, attempts, took) = joined.context("poster task")?;
        anyhow::ensure!(
            stored(&posted),
            "not stored after {attempts} attempts: {posted:?}"
        );
        result.connections.push(connection);
        result.latencies.push(took);
        result.retried += usize::from(attempts > 1);
    }
    result.latencies.sort_unstable();
    Ok(result)
}

/// Connections the ingress closed because a time-out ran out (none may, in a burst).
fn timed_out(page: &str) -> f64 {
    ["header_timeout", "idle_timeout"]
        .iter()
        .map(|reason| {
            saltedcx_sim::metrics::metric_value(
                page,
                "yourlogic_http_connections_closed_total",
                &[("listener", "events"), ("reason", reason)],
            )
        })
        .sum()
}

fn describe(latencies: &[Duration]) -> String {
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize];
    format!(
        "p50 {:?}, p99 {:?}, max {:?}",
        at(0.5),
        at(0.99),
        latencies.last().copied().unwrap_or_default()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_connections_opened_at_once_are_all_answered_promptly_and_stay_usable()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let target = target(&ingress).await?;

    let started = Instant::now();
    let Burst {
        mut connections,
        latencies,
        retried,
    } = burst(&target, "burst", 3000).await?;
    let took = started.elapsed();
    println!(
        "3000 connections opened at once, each posting one event: all stored in {took:?} ({}); \
         {retried} posted again after a 503",
        describe(&latencies)
    );
    // Nothing waited for a connection to time out (the idle timeout is a minute).
    let page = stack::scrape(&ingress).await?;
    assert_eq!(timed_out(&page), 0.0, "connections timed out in the burst");

    // Idle for a while, then every connection posts again on the connection it kept.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = stack::scrape(&ingress).await?;
    let open = saltedcx_sim::metrics::metric_value(
        &page,
        "yourlogic_http_connections",
        &[("listener", "events")],
    );
    assert!(open >= 3000.0, "only {open} connections open while idling");
    for (i, connection) in connections.iter_mut().enumerate() {
        let (posted, attempts) =
            post_until_stored(connection, event(&format!("burst-{i}"), "again")).await;
        assert!(
            stored(&posted),
            "second post of connection {i}, {attempts} attempts: {posted:?}"
        );
    }
    let page = stack::scrape(&ingress).await?;
    let evicted = saltedcx_sim::metrics::metric_value(
        &page,
        "yourlogic_http_connections_closed_total",
        &[("listener", "events"), ("reason", "evicted_idle")],
    );
    assert_eq!(evicted, 0.0, "below the cap no connection is closed");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_connection_cap_is_served_by_closing_idle_connections() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |c| {
        c.http.max_connections = 500;
        c.http.idle_timeout = Duration::from_secs(60);
    })
    .await?;
    stack::wait_ready(&ingress, READY).await?;
    let target = target(&ingress).await?;

    // 500 conversations post and idle: the cap is reached.
    let idle = burst(&target, "idle", 500).await?;
    // 1000 more arrive at once: each is served by closing an idle connection, not after the
    // 60 s idle timeout.
    let started = Instant::now();
    let late = burst(&target, "late", 1000).await?;
    println!(
        "1000 new connections at a cap of 500 held by idle ones: all stored in {:?} ({}); {} \
         posted again after a 503",
        started.elapsed(),
        describe(&late.latencies),
        late.retried
    );
    let page = stack::scrape(&ingress).await?;
    assert_eq!(timed_out(&page), 0.0, "connections waited for a time-out");
    let evicted = saltedcx_sim::metrics::metric_value(
        &page,
        "yourlogic_http_connections_closed_total",
        &[("listener", "events"), ("reason", "evicted_idle")],
    );
    assert!(evicted >= 500.0, "only {evicted} idle connections closed");
    drop(idle.connections);
    Ok(())
}
