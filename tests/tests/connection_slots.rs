//! Connection slots at the ingress cannot be pinned by clients without a token: an error
//! response to such a client closes its connection, a connection reading a request head for
//! longer than a real client needs is closed at the cap before an idle keep-alive connection
//! of a real client, and a process with few file descriptors caps its connections below its
//! limit (a failed `accept` counts as being at the cap), so eviction still makes room.

use std::time::Duration;

use anyhow::{Context as _, Result};
use testkit::faults::binaries::BinaryProcess;
use testkit::stack::{self, Poster, TOKEN};
use testkit::{EventBuilder, NatsServer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::time::Instant;

const READY: Duration = Duration::from_secs(15);
/// How long a real event may wait for a slot (before the fixes they waited for ever).
const PROBE_LIMIT: Duration = Duration::from_secs(10);

/// Reads one response (head and `Content-Length` body); `None` when the connection closed
/// first or nothing came within `limit`.
async fn read_response(stream: &mut TcpStream, limit: Duration) -> Option<String> {
    let deadline = Instant::now() + limit;
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        let text = String::from_utf8_lossy(&received).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return Some(text);
            }
        }
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    }
}

/// Whether the peer closed `stream` within `limit`.
async fn closed_within(stream: &mut TcpStream, limit: Duration) -> bool {
    let mut buffer = [0u8; 1024];
    let deadline = Instant::now() + limit;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Err(_) => return false,
            Ok(Ok(0) | Err(_)) => return true,
            Ok(Ok(_)) => {}
        }
    }
}

/// One tokenless client of the review: loops `GET /nope`, reading the 404, sending the first
/// byte of the next request at once and the rest 0.8 s later (about 1.2 requests a second),
/// reconnecting whenever the ingress closes the connection; until `stop`.
async fn pin_a_slot(addr: std::net::SocketAddr, mut stop: watch::Receiver<bool>) {
    while !*stop.borrow() {
        let Ok(mut stream) = TcpStream::connect(addr).await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        loop {
            if stream.write_all(b"G").await.is_err() {
                break;
            }
            tokio::select! {
                _ = stop.changed() => return,
                () = tokio::time::sleep(Duration::from_millis(800)) => {}
            }
            if stream
                .write_all(b"ET /nope HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .is_err()
            {
                break;
            }
            match read_response(&mut stream, Duration::from_secs(20)).await {
                Some(response) if !response.to_ascii_lowercase().contains("connection: close") => {}
                _ => break,
            }
        }
    }
}

/// Posts one event on a new connection; `Ok(true)` when it got 202 within [`PROBE_LIMIT`].
async fn probe(addr: std::net::SocketAddr, n: usize) -> Result<bool> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(PROBE_LIMIT)
        .build()?;
    let event = EventBuilder::message(&format!("probe-{n}"), "hello").build();
    let response = client
        .post(format!("http://{addr}/v1/events"))
        .bearer_auth(TOKEN)
        .json(&event)
        .send()
        .await;
    Ok(response.is_ok_and(|r| r.status() == 202))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_responses_to_clients_without_a_token_close_their_connection() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    for request in [
        "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
        "GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n",
        "POST /v1/events HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n",
    ] {
        let mut stream = TcpStream::connect(ingress.addr()).await?;
        stream.write_all(request.as_bytes()).await?;
        let response = read_response(&mut stream, Duration::from_secs(10))
            .await
            .context("no response")?;
        let status = response.split(' ').nth(1).unwrap_or_default();
        assert!(status.starts_with('4'), "{request:?}: {response}");
        assert!(
            response.to_ascii_lowercase().contains("connection: close"),
            "{request:?}: {response}"
        );
        assert!(
            closed_within(&mut stream, Duration::from_secs(5)).await,
            "{request:?}: the connection stayed open"
        );
    }
    // With a valid token, an event the ingress refuses keeps the connection (Salted CX's).
    let mut stream = TcpStream::connect(ingress.addr()).await?;
    let mut bad = stack::raw_event_request("conv");
    let at = bad.len() - 2;
    bad[at] = b'!';
    stream.write_all(&bad).await?;
    let response = read_response(&mut stream, Duration::from_secs(10))
        .await
        .context("no response")?;
    assert!(response.starts_with("HTTP/1.1 400"), "{response}");
    stream.write_all(&stack::raw_event_request("conv")).await?;
    let response = read_response(&mut stream, Duration::from_secs(10))
        .await
        .context("no second response")?;
    assert!(response.starts_with("HTTP/1.1 202"), "{response}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokenless_clients_looping_cheap_requests_cannot_pin_the_connection_slots() -> Result<()> {
    const SLOTS: u32 = 20;
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |c| c.http.max_connections = SLOTS).await?;
    stack::wait_ready(&ingress, READY).await?;
    let (stop, stopped) = watch::channel(false);
    let attackers: Vec<_> = (0..SLOTS)
        .map(|_| tokio::spawn(pin_a_slot(ingress.addr(), stopped.clone())))
        .collect();
    // Let the loops take every slot and settle into their rhythm.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let started = Instant::now();
    let probes: Vec<_> = (0..5)
        .map(|n| tokio::spawn(probe(ingress.addr(), n)))
        .collect();
    let mut served = 0;
    for probe in probes {
        if probe.await?? {
            served += 1;
        }
    }
    let waited = started.elapsed();
    let _ = stop.send(true);
    for attacker in attackers {
        let _ = attacker.await;
    }
    println!(
        "{SLOTS} tokenless clients looping GET /nope on {SLOTS} slots: {served} of 5 events \
         accepted, the last after {waited:?}"
    );
    assert_eq!(served, 5, "events timed out behind the pinned slots");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_the_cap_a_stalled_head_is_closed_before_a_real_clients_idle_connection() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |c| {
        c.http.max_connections = 8;
        c.http.header_timeout = Duration::from_secs(30);
    })
    .await?;
    // A real client: one event accepted, then its connection waits for the next (keep-alive).
    // (It is the only other connection: it waits for the ingress to be ready by itself.)
    let mut real = TcpStream::connect(ingress.addr()).await?;
    let ready = Instant::now() + READY;
    loop {
        real.write_all(&stack::raw_event_request("real")).await?;
        let response = read_response(&mut real, Duration::from_secs(10)).await;
        let status = response.as_deref().unwrap_or_default();
        if status.starts_with("HTTP/1.1 202") {
            break;
        }
        anyhow::ensure!(
            status.starts_with("HTTP/1.1 503") && Instant::now() < ready,
            "the ingress did not accept an event: {response:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Seven connections that never finish their request heads take the other slots.
    let mut stalled = Vec::new();
    for _ in 0..7 {
        let mut stream = TcpStream::connect(ingress.addr()).await?;
        stream
            .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\n")
            .await?;
        stalled.push(stream);
    }
    // Long enough for every head to count as stalled (a real client sends one in milliseconds).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert!(
        probe(ingress.addr(), 0).await?,
        "a new client was not served"
    );
    // The real client's connection is still there and takes its next event.
    real.write_all(&stack::raw_event_request("real")).await?;
    let response = read_response(&mut real, Duration::from_secs(10)).await;
    assert!(
        response
            .as_deref()
            .is_some_and(|r| r.starts_with("HTTP/1.1 202")),
        "the real client's idle connection was closed to make room: {response:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_low_open_files_limit_slow_connections_neither_block_real_events_nor_disable_eviction()
-> Result<()> {
    const SLOWLORIS: usize = 500;
    let nats = NatsServer::start().await?;
    let url = nats.url();
    let mut ingress = BinaryProcess::spawn_limited(
        "ingress",
        "INGRESS_ADDR",
        &[
            ("NATS_URL", &url),
            ("SALTEDCX_TOKEN", TOKEN),
            ("RUST_LOG", "warn"),
        ],
        Some(128),
    )?;
    ingress.wait_ready(READY).await?;
    let addr = ingress.url().trim_start_matches("http://").to_string();
    let mut attackers = Vec::new();
    for _ in 0..SLOWLORIS {
        let mut stream = TcpStream::connect(&addr).await?;
        stream
            .write_all(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Pad: aaaa")
            .await?;
        attackers.push(stream);
    }
    let poster = Poster::new(&ingress.url());
    let started = Instant::now();
    let mut accepted = 0;
    for n in 0..8 {
        let event = EventBuilder::message(&format!("real-{n}"), "hello").build();
        let posted = tokio::time::timeout(PROBE_LIMIT, poster.post(&event)).await;
        if matches!(posted, Ok(Ok((status, _))) if status == 202) {
            accepted += 1;
        }
    }
    println!(
        "RLIMIT_NOFILE 128, {SLOWLORIS} slow-header connections: {accepted} of 8 real events \
         accepted in {:?}",
        started.elapsed()
    );
    assert_eq!(accepted, 8, "real events timed out:\n{}", ingress.output());
    drop(attackers);
    Ok(())
}
