//! Hostile connections at the ingress: slow clients are cut off (408 for a slow body, a closed
//! connection for unfinished headers, no bytes at all, or an idle keep-alive connection); many
//! idle and slow connections neither block real events nor make memory grow without bound; the
//! connection cap holds extra connections back until a slot frees up.

use std::time::Duration;

use anyhow::Result;
use testkit::faults::binaries::BinaryProcess;
use testkit::stack::{self, Poster, Service, TOKEN};
use testkit::{EventBuilder, NatsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(15);

fn valid_event() -> EventBuilder {
    EventBuilder::message("conv-slow", "hello").expires_in(Duration::from_secs(60))
}

/// Reads from `stream` until EOF or an error, at most `limit`; returns what arrived and when
/// the connection ended (`None` if it stayed open).
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Option<Duration>) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        match tokio::time::timeout_at(started + limit, stream.read(&mut buffer)).await {
            Err(_) => return (String::from_utf8_lossy(&received).into_owned(), None),
            Ok(Ok(0)) | Ok(Err(_)) => {
                return (
                    String::from_utf8_lossy(&received).into_owned(),
                    Some(started.elapsed()),
                );
            }
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_get_408_and_slow_or_silent_connections_are_closed() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |c| {
        c.http.request_timeout = Duration::from_secs(1);
        c.http.header_timeout = Duration::from_secs(1);
        c.http.idle_timeout = Duration::from_secs(1);
    })
    .await?;
    stack::wait_ready(&ingress, READY).await?;
    let addr = ingress.addr();
    let head = |length: usize| {
        format!(
            "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
             Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    };

    // A body that stops half-way: 408 with the JSON error, after about the request timeout.
    let mut stalled = TcpStream::connect(addr).await?;
    stalled
        .write_all(format!("{}{{\"requestId\":", head(1000)).as_bytes())
        .await?;
    let (response, closed) = read_until_closed(&mut stalled, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");
    assert!(response.contains("\"request_timeout\""), "{response}");
    assert!(closed.is_some(), "the connection stays open after the 408");

    // A body dripped a byte every 100 ms: the limit is on the whole body, so 408 as well.
    let mut drip = TcpStream::connect(addr).await?;
    drip.write_all(head(100).as_bytes()).await?;
    let dripping = async {
        for _ in 0..100 {
            if drip.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(3), dripping)
        .await
        .ok();
    let (response, _) = read_until_closed(&mut drip, Duration::from_secs(10)).await;
    assert!(response.starts_with("HTTP/1.1 408"), "{response}");

    // Headers never finished, nothing sent at all, an idle keep-alive connection: all closed.
    let opened = Instant::now();
    let mut partial = TcpStream::connect(addr).await?;
    partial
        .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    let mut silent = TcpStream::connect(addr).await?;
    let mut idle = TcpStream::connect(addr).await?;
    idle.write_all(&stack::raw_event_request("idle")).await?;
    for (what, stream) in [
        ("partial headers", &mut partial),
        ("silent", &mut silent),
        ("idle keep-alive", &mut idle),
    ] {
        let (_, closed) = read_until_closed(stream, Duration::from_secs(10)).await;
        assert!(closed.is_some(), "{what} connection still open after 10 s");
        println!(
            "{what} connection closed by the ingress within {:?} (HEADER_TIMEOUT and IDLE_TIMEOUT 1 s)",
            opened.elapsed()
        );
    }
    let page = stack::scrape(&ingress).await?;
    assert!(
        saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_ingress_requests_total",
            &[("outcome", "timeout")]
        ) >= 2.0
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_slow_connections_neither_block_real_events_nor_grow_memory_without_bound()
-> Result<()> {
    const SLOWLORIS: usize = 600;
    const SILENT: usize = 200;
    const SLOW_BODIES: usize = 20;
    let nats = NatsServer::start().await?;
    let url = nats.url();
    let mut ingress = BinaryProcess::spawn(
        "ingress",
        "INGRESS_ADDR",
        &[
            ("NATS_URL", &url),
            ("SALTEDCX_TOKEN", TOKEN),
            ("REQUEST_TIMEOUT", "3s"),
            ("RUST_LOG", "warn"),
        ],
    )?;
    ingress.wait_ready(READY).await?;
    let poster = Poster::new(&ingress.url());
    for _ in 0..20 {
        poster.post(&valid_event().build()).await?;
    }
    let rss_before = ingress.rss_kib().unwrap_or_default();
    let fds_before = ingress.open_fds().unwrap_or_default();

    let addr = ingress.url().trim_start_matches("http://").to_string();
    let mut attackers = Vec::new();
    for i in 0..SLOWLORIS + SILENT + SLOW_BODIES {
        let mut stream = TcpStream::connect(&addr).await?;
        if i < SLOWLORIS {
            // Unauthenticated headers, 8 kB of them, never finished.
            let pad = "a".repeat(8 * 1024);
            stream
                .write_all(
                    format!("POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Pad: {pad}").as_bytes(),
                )
                .await?;
        } else if i >= SLOWLORIS + SILENT {
            // Authenticated, announcing 1 MB and sending 600 kB of it.
            let head = format!(
                "POST /v1/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n"
            );
            stream.write_all(head.as_bytes()).await?;
            stream.write_all(&vec![b' '; 600_000]).await?;
        }
        attackers.push(stream);
    }
    let rss_attacked = ingress.rss_kib().unwrap_or_default();

    // Real events still go through while the attack holds its connections.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let started = Instant::now();
        let (status, body) = poster.post(&valid_event().build()).await?;
        assert_eq!(status, 202, "{body}");
        slowest = slowest.max(started.elapsed());
    }
    // The ingress closes every attacking connection by itself.
    let mut closed = 0;
    for stream in &mut attackers {
        if read_until_closed(stream, Duration::from_secs(15))
            .await
            .1
            .is_some()
        {
            closed += 1;
        }
    }
    let drained = testkit::wait_until(Duration::from_secs(10), Duration::from_millis(100), || {
        let fds = ingress.open_fds().unwrap_or(usize::MAX);
        async move { fds <= fds_before + 10 }
    })
    .await;
    let rss_after = ingress.rss_kib().unwrap_or_default();
    println!(
        "{} hostile connections ({SLOWLORIS} slow headers, {SILENT} silent, {SLOW_BODIES} slow 1 MB \
         bodies): RSS {rss_before} KiB before, {rss_attacked} KiB under attack, {rss_after} KiB \
         after; {closed} closed by the ingress; real events answered 202 in at most {slowest:?}",
        attackers.len()
    );
    assert_eq!(
        closed,
        attackers.len(),
        "connections left open by the ingress"
    );
    assert!(drained, "the ingress still holds connections");
    assert!(
        rss_attacked < rss_before + 150 * 1024,
        "memory grew by {} KiB",
        rss_attacked - rss_before
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_connection_stalled_in_its_headers_is_closed_to_make_room() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress: Service = stack::start_ingress(&nats.url(), |c| {
        c.http.max_connections = 8;
        c.http.header_timeout = Duration::from_secs(10);
    })
    .await?;
    stack::wait_ready(&ingress, READY).await?;
    let mut held = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(ingress.addr()).await?;
        stream
            .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            .await?;
        held.push(stream);
    }
    // The ninth connection is served once one of the eight has been stalled in its headers for
    // a quarter of a second (STALLED_AFTER), long before the 10 s header timeout would free a
    // slot.
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", ingress.url()))
        .bearer_auth(TOKEN)
        .json(&valid_event().build())
        .timeout(Duration::from_secs(15))
        .send()
        .await?;
    let waited = started.elapsed();
    assert_eq!(response.status(), 202);
    println!("with 8 slots held by stalled clients, a new request was served after {waited:?}");
    assert!(
        waited >= shared::server::STALLED_AFTER - Duration::from_millis(50),
        "served at once ({waited:?}): cap not applied"
    );
    // Room was made by evicting a stalled connection, not by the header timeout running out
    // (what the time above shows; asserted on the counters, so that a slow machine cannot fail
    // it).
    let page = stack::scrape(&ingress).await?;
    let closed = |reason: &str| {
        saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_http_connections_closed_total",
            &[("listener", "events"), ("reason", reason)],
        )
    };
    assert!(
        closed("evicted_stalled") >= 1.0,
        "no stalled connection counted as evicted"
    );
    assert_eq!(
        closed("header_timeout"),
        0.0,
        "served only after the header timeout ({waited:?})"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_the_longest_idle_keep_alive_connection_makes_room_at_once() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress: Service = stack::start_ingress(&nats.url(), |c| {
        c.http.max_connections = 8;
        c.http.idle_timeout = Duration::from_secs(60);
    })
    .await?;
    stack::wait_ready(&ingress, READY).await?;
    // Eight keep-alive connections, each after one answered request, idle.
    let mut idle = Vec::new();
    for _ in 0..8 {
        let mut stream = TcpStream::connect(ingress.addr()).await?;
        stream.write_all(&stack::raw_event_request("idle")).await?;
        let mut buf = [0u8; 512];
        let read = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf)).await??;
        assert!(String::from_utf8_lossy(&buf[..read]).starts_with("HTTP/1.1 202"));
        idle.push(stream);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = Instant::now();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", ingress.url()))
        .bearer_auth(TOKEN)
        .json(&valid_event().build())
        .timeout(Duration::from_secs(15))
        .send()
        .await?;
    let waited = started.elapsed();
    assert_eq!(response.status(), 202);
    println!("with 8 idle keep-alive connections at the cap, a new one was served in {waited:?}");
    // Served by evicting an idle connection, not after one's idle timeout (a minute).
    let page = stack::scrape(&ingress).await?;
    let closed = |reason: &str| {
        saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_http_connections_closed_total",
            &[("listener", "events"), ("reason", reason)],
        )
    };
    assert!(closed("evicted_idle") >= 1.0, "waited {waited:?}");
    assert_eq!(closed("idle_timeout"), 0.0, "waited {waited:?}");
    // The oldest idle connection was the one closed.
    let (_, oldest_closed) = read_until_closed(&mut idle[0], Duration::from_secs(2)).await;
    assert!(
        oldest_closed.is_some(),
        "the longest-idle connection is still open"
    );
    Ok(())
}
