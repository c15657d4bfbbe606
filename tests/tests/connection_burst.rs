//! Thousands of Salted CX connections opened at once: one HTTP connection per concurrent
//! conversation, as Salted CX holds them, all connecting in the same instant, posting, then
//! idling. Every event is accepted promptly, without any connection waiting for another to time
//! out; at the connection cap, idle connections make room.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use testkit::sim::client::{IngressClient, Posted};
use testkit::sim::dedicated::{Dedicated, Target};
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

/// Opens `count` connections at the same instant (after a barrier); each posts one event;
/// returns the connections (kept open) and every post's latency.
async fn burst(
    target: &Target,
    prefix: &str,
    count: usize,
) -> Result<(Vec<Dedicated>, Vec<Duration>)> {
    let barrier = Arc::new(Barrier::new(count));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..count {
        let (target, barrier) = (target.clone(), barrier.clone());
        let conversation = format!("{prefix}-{i}");
        tasks.spawn(async move {
            let mut connection = Dedicated::new(target);
            barrier.wait().await;
            let started = Instant::now();
            let posted = connection.post(event(&conversation, "hello")).await;
            (connection, posted, started.elapsed())
        });
    }
    let mut connections = Vec::new();
    let mut latencies = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (connection, posted, took) = joined.context("poster task")?;
        anyhow::ensure!(posted == Posted::Accepted, "not accepted: {posted:?}");
        connections.push(connection);
        latencies.push(took);
    }
    latencies.sort_unstable();
    Ok((connections, latencies))
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
    let (mut connections, latencies) = burst(&target, "burst", 3000).await?;
    let took = started.elapsed();
    println!(
        "3000 connections opened at once, each posting one event: all accepted in {took:?} ({})",
        describe(&latencies)
    );
    // Nothing waited for an idle connection to time out (the idle timeout is a minute).
    assert!(
        latencies.last().copied().unwrap_or_default() < Duration::from_secs(20),
        "{}",
        describe(&latencies)
    );

    // Idle for a while, then every connection posts again on the connection it kept.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let page = stack::scrape(&ingress).await?;
    let open = stack::metric_value(
        &page,
        "yourlogic_http_connections",
        &[("listener", "events")],
    );
    assert!(open >= 3000.0, "only {open} connections open while idling");
    for (i, connection) in connections.iter_mut().enumerate() {
        let posted = connection.post(event(&format!("burst-{i}"), "again")).await;
        assert_eq!(posted, Posted::Accepted, "second post of connection {i}");
    }
    let page = stack::scrape(&ingress).await?;
    let evicted = stack::metric_value(
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
    let (idle, _) = burst(&target, "idle", 500).await?;
    // 1000 more arrive at once: each is served by closing an idle connection, not after the
    // 60 s idle timeout.
    let started = Instant::now();
    let (_, latencies) = burst(&target, "late", 1000).await?;
    println!(
        "1000 new connections at a cap of 500 held by idle ones: all accepted in {:?} ({})",
        started.elapsed(),
        describe(&latencies)
    );
    assert!(
        latencies.last().copied().unwrap_or_default() < Duration::from_secs(20),
        "{}",
        describe(&latencies)
    );
    let page = stack::scrape(&ingress).await?;
    let evicted = stack::metric_value(
        &page,
        "yourlogic_http_connections_closed_total",
        &[("listener", "events"), ("reason", "evicted_idle")],
    );
    assert!(evicted >= 500.0, "only {evicted} idle connections closed");
    drop(idle);
    Ok(())
}
