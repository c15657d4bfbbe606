//! The findings of the security review, each reproduced on loopback and shown fixed: crafted
//! bodies that used to cost hundreds of MB, a far-future deadline chosen by the sender, an
//! unreachable callback host retried without end (and holding back its partition), redirects carrying the token elsewhere,
//! secrets in notes, dead letters and `--help`, events too large for NATS answered 503, internal
//! error text in 503 bodies, operational endpoints on the public port, and a worker admin port
//! without header timeout. (Slow-header slot exhaustion: tests/tests/hostile_connections.rs; a
//! flooded or slow conversation holding others back: tests/tests/faults_callbacks.rs.)

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use serde_json::json;
use testkit::faults::binaries::BinaryProcess;
use testkit::faults::{self, NonceLogic};
use testkit::nats_server::NatsOptions;
use testkit::stack::{self, Poster, TOKEN};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsServer, Reply};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);

fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}

/// A valid event of `conversation` whose body is padded to about one MiB with `n` empty turns.
fn crafted_turns(conversation: &str, n: usize) -> Vec<u8> {
    let mut event = EventBuilder::message(conversation, "hello").build();
    if let Some(object) = event.as_object_mut() {
        object.remove("turns");
    }
    let mut body = event.to_string();
    body.pop();
    body.push_str(",\"turns\":[");
    body.push_str(&vec!["{}"; n].join(","));
    body.push_str("]}");
    body.into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crafted_bodies_of_hundreds_of_thousands_of_turns_are_refused_without_growing_the_ingress()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = BinaryProcess::spawn(
        "ingress",
        "INGRESS_ADDR",
        &[("NATS_URL", &nats.url()), ("SALTEDCX_TOKEN", TOKEN)],
    )?;
    let client = reqwest::Client::new();
    let ready = testkit::wait_until(READY, Duration::from_millis(50), || {
        let request = client.get(format!("{}/readyz", ingress.admin_url())).send();
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    anyhow::ensure!(ready, "ingress not ready: {}", ingress.output());
    let before = ingress.rss_kib().context("rss")?;
    // About 349k empty turns in one MiB, as in the review; three at once.
    let body = crafted_turns("crafted", 349_000);
    let mut posts = Vec::new();
    for _ in 0..3 {
        let request = client
            .post(format!("{}/v1/events", ingress.url()))
            .bearer_auth(TOKEN)
            .header(header::CONTENT_TYPE, "application/json")
            .body(body.clone())
            .send();
        posts.push(tokio::spawn(request));
    }
    for post in posts {
        let response = post.await??;
        assert_eq!(response.status(), 422);
        let text = response.text().await?;
        assert!(text.contains("more than 10000 elements"), "{text}");
    }
    let after = ingress.rss_kib().context("rss")?;
    println!(
        "three 1 MiB events of 349k empty turns: refused (422); ingress RSS {} -> {} MB",
        before / 1024,
        after / 1024
    );
    // Before the fix one such request took the ingress from 16 to 268 MB.
    assert!(
        after.saturating_sub(before) < 64 * 1024,
        "RSS grew from {before} to {after} kB"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_far_future_deadline_is_worked_on_for_at_most_max_budget() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour(Behaviour::always(Reply::status(503)));
    let ingress = stack::start_ingress(&nats.url(), |c| {
        c.routing.max_budget = Duration::from_secs(2);
    })
    .await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), NonceLogic::shared(), |c| {
        c.worker.callback_max_attempts = 1000;
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let event = EventBuilder::message("far-future", "hello")
        .set("/expires", json!("2099-01-01T00:00:00Z"))
        .build();
    let posted = chrono::Utc::now();
    let (status, _) = Poster::new(&ingress.url()).post(&event).await?;
    assert_eq!(status, 202);
    let expired = testkit::wait_until(WAIT, Duration::from_millis(100), || async {
        faults::metric_at(
            &worker.url(),
            "yourlogic_events_processed_total",
            &[("trigger", "MESSAGE"), ("outcome", "expired")],
        )
        .await
            >= 1.0
    })
    .await;
    assert!(
        expired,
        "the event was still being retried: {}",
        fake.summary()
    );
    let last_attempt = fake
        .callbacks()
        .iter()
        .map(|c| c.received_at)
        .max()
        .context("no callback attempt")?;
    println!(
        "expires 2099, MAX_BUDGET 2 s: last callback attempt {:?} after posting",
        (last_attempt - posted).to_std().unwrap_or_default()
    );
    assert!(last_attempt - posted < chrono::Duration::seconds(2));
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_callback_host_is_given_up_after_the_allowed_attempts_and_delays_no_other_conversation()
-> Result<()> {
    const ATTEMPTS: usize = 10;
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    fake.set_behaviour_for("unreachable", Behaviour::always(Reply::status(503)));
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), NonceLogic::shared(), |c| {
        c.worker.callback_max_attempts = u32::try_from(ATTEMPTS).unwrap_or(u32::MAX);
    })
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    let event = EventBuilder::message("unreachable", "hello")
        .expires_in(Duration::from_secs(50))
        .build();
    let id = event["requestId"].as_str().unwrap_or_default().to_string();
    assert_eq!(poster.post(&event).await?.0, 202);
    let attempts = |fake: &FakeSaltedCx, id: &str| {
        fake.callbacks()
            .iter()
            .filter(|c| c.request_id.as_deref() == Some(id))
            .count()
    };
    let first_attempt = testkit::wait_until(WAIT, Duration::from_millis(10), || {
        let n = attempts(&fake, &id);
        async move { n > 0 }
    })
    .await;
    assert!(first_attempt, "no callback attempt");

    // While its callbacks are retried (about 4 s of backoff), a conversation of the same
    // partition is answered as usual.
    let partition = shared::topology::partition_of("unreachable", 64);
    let neighbour = (0..)
        .map(|i| format!("neighbour-{i}"))
        .find(|c| shared::topology::partition_of(c, 64) == partition)
        .context("a neighbour")?;
    let other = EventBuilder::message(&neighbour, "hello").build();
    let other_id = other["requestId"].as_str().unwrap_or_default().to_string();
    let posted = chrono::Utc::now();
    assert_eq!(poster.post(&other).await?.0, 202);
    let answered = fake.wait_for_request(&other_id, WAIT).await?;
    let waited = (answered.received_at - posted).to_std().unwrap_or_default();
    let retried_meanwhile = attempts(&fake, &id);
    println!(
        "a neighbour in partition {partition} answered after {waited:?} while the unreachable \
         host had {retried_meanwhile} of its {ATTEMPTS} attempts"
    );
    // Answered while the unreachable host's callbacks were still being retried: not held back
    // behind them (how long it took is printed, not asserted).
    assert!(
        retried_meanwhile < ATTEMPTS,
        "the unreachable host's attempts were over before the neighbour was answered \
         (after {waited:?})"
    );

    let js = nats.jetstream().await?;
    let dead = testkit::wait_until(WAIT, Duration::from_millis(100), || {
        let (js, id) = (js.clone(), id.clone());
        async move {
            faults::dead_letters(&js)
                .await
                .unwrap_or_default()
                .iter()
                .any(|d| d.request_id == id)
        }
    })
    .await;
    assert!(dead, "not dead-lettered");
    let letters = faults::dead_letters(&js).await?;
    let letter = letters
        .iter()
        .find(|d| d.request_id == id)
        .context("letter")?;
    assert_eq!(letter.reason, "callback_unreachable");
    assert_eq!(attempts(&fake, &id), ATTEMPTS, "{}", fake.summary());
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_do_not_follow_redirects_so_the_token_stays_with_salted_cx() -> Result<()> {
    // Where a redirect would lead: it must never be called.
    let elsewhere_calls = Arc::new(AtomicUsize::new(0));
    let elsewhere = {
        let calls = elsewhere_calls.clone();
        let app = Router::new().fallback(move || {
            calls.fetch_add(1, Ordering::Relaxed);
            async { StatusCode::OK }
        });
        let listener = TcpListener::bind(loopback()).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    };
    // "Salted CX" answering every callback with a same-host-looking redirect.
    let redirecting = {
        let location = format!("http://{elsewhere}/steal");
        let app = Router::new().fallback(post(move || {
            let location = location.clone();
            async move {
                let mut headers = HeaderMap::new();
                headers.insert(header::LOCATION, location.parse().expect("location"));
                (StatusCode::TEMPORARY_REDIRECT, headers)
            }
        }));
        let listener = TcpListener::bind(loopback()).await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    };
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(
        &nats.url(),
        &format!("http://{redirecting}"),
        NonceLogic::shared(),
        |_| {},
    )
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let event = EventBuilder::message("redirected", "hello").build();
    let id = event["requestId"].as_str().unwrap_or_default().to_string();
    assert_eq!(Poster::new(&ingress.url()).post(&event).await?.0, 202);
    let js = nats.jetstream().await?;
    let dead = testkit::wait_until(WAIT, Duration::from_millis(100), || {
        let (js, id) = (js.clone(), id.clone());
        async move {
            faults::dead_letters(&js)
                .await
                .unwrap_or_default()
                .iter()
                .any(|d| d.request_id == id && d.reason == "callback_rejected")
        }
    })
    .await;
    assert!(dead, "the redirect was not refused");
    assert_eq!(
        elsewhere_calls.load(Ordering::Relaxed),
        0,
        "the redirect was followed"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delegates_url_and_key_appear_in_no_note_dead_letter_or_help() -> Result<()> {
    const KEY: &str = "s3cr3t-delegate-key";
    // A delegate that refuses connections: its error would name the URL.
    let closed = TcpListener::bind(loopback()).await?.local_addr()?;
    let url = format!("http://{closed}/decide?key={KEY}");
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let logic: Arc<dyn worker::logic::Logic> = Arc::new(
        worker::logic::http::HttpLogic::new(&url, Duration::from_secs(1))
            .map_err(anyhow::Error::msg)?,
    );
    let worker = stack::start_worker(&nats.url(), &fake.base_url(), logic, |_| {}).await?;
    stack::wait_ready(&worker, READY).await?;
    let event = EventBuilder::message("delegate-down", "hello").build();
    let id = event["requestId"].as_str().unwrap_or_default().to_string();
    assert_eq!(Poster::new(&ingress.url()).post(&event).await?.0, 202);
    let answered = fake.wait_for_request(&id, WAIT).await?;
    let note = answered.actions()[0]["content"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(!note.contains(KEY) && !note.contains("127.0.0.1"), "{note}");
    let letters = faults::dead_letters(&nats.jetstream().await?).await?;
    let letter = letters
        .iter()
        .find(|d| d.request_id == id)
        .context("dead letter")?;
    assert!(!letter.error.contains(KEY), "{}", letter.error);
    // `worker --help` shows no value of a URL setting from the environment.
    let help = std::process::Command::new(faults::binaries::binary("worker")?)
        .arg("--help")
        .env("LOGIC_URL", &url)
        .env("NATS_URL", format!("nats://user:{KEY}@127.0.0.1:4222"))
        .env("SALTEDCX_API_URL", format!("https://x.example/?k={KEY}"))
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout);
    assert!(help.contains("LOGIC_URL"), "{help}");
    assert!(!help.contains(KEY), "--help shows a secret: {help}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_too_large_for_nats_with_its_headers_gets_413_not_503() -> Result<()> {
    let config = tempfile::NamedTempFile::new()?;
    std::fs::write(config.path(), "max_payload: 65536\n")?;
    let nats = NatsServer::start_with(NatsOptions {
        extra_args: vec!["-c".into(), config.path().display().to_string()],
        ..NatsOptions::default()
    })
    .await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let big = EventBuilder::message("big", &"x".repeat(70_000)).build();
    let (status, reply) = Poster::new(&ingress.url()).post(&big).await?;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["error"]["code"], "payload_too_large");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unavailable_answers_do_not_show_nats_errors() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    nats.stop().await?;
    let event = EventBuilder::message("nats-down", "hello").build();
    let (status, reply) = Poster::new(&ingress.url()).post(&event).await?;
    assert_eq!(status, 503);
    assert_eq!(
        reply["error"]["message"],
        "the event could not be stored durably; retry shortly"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_an_admin_address_the_operational_endpoints_leave_the_public_port() -> Result<()> {
    let nats = NatsServer::start().await?;
    let admin = TcpListener::bind(loopback()).await?.local_addr()?;
    let ingress = stack::start_ingress(&nats.url(), |c| {
        c.http.admin_addr = admin;
    })
    .await?;
    let client = reqwest::Client::new();
    let ready = testkit::wait_until(READY, Duration::from_millis(50), || {
        let request = client.get(format!("http://{admin}/readyz")).send();
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    assert!(ready, "not ready on the admin address");
    for path in ["/metrics", "/readyz", "/healthz"] {
        let public = client
            .get(format!("{}{path}", ingress.url()))
            .send()
            .await?;
        assert_eq!(public.status(), 404, "{path} on the public port");
    }
    let metrics = client.get(format!("http://{admin}/metrics")).send().await?;
    assert_eq!(metrics.status(), 200);
    let event = EventBuilder::message("admin", "hello").build();
    assert_eq!(Poster::new(&ingress.url()).post(&event).await?.0, 202);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_workers_admin_port_closes_connections_that_never_finish_their_headers() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let worker =
        stack::start_worker(&nats.url(), &fake.base_url(), NonceLogic::shared(), |_| {}).await?;
    let mut slow = TcpStream::connect(worker.addr()).await?;
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .await?;
    let started = tokio::time::Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(Duration::from_secs(15), async {
        loop {
            match slow.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection is still open after 15 s");
    println!(
        "a worker admin connection stuck in its headers was closed after {:?}",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn by_default_the_public_port_serves_only_events() -> Result<()> {
    // The binary's default: an admin address of its own, not the events port.
    let cli = <ingress::config::Cli as clap::CommandFactory>::command();
    let default = cli
        .get_arguments()
        .find(|arg| arg.get_id() == "admin_addr")
        .and_then(|arg| arg.get_default_values().first().cloned())
        .context("INGRESS_ADMIN_ADDR has a default")?;
    assert_eq!(default, "0.0.0.0:9091");
    // The embedding configuration does the same, on a free port.
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    assert_ne!(ingress.admin_url(), ingress.url());
    let poster = Poster::new(&ingress.url());
    let accepted = testkit::wait_until(READY, Duration::from_millis(100), || {
        let event = EventBuilder::message("default", "hello").build();
        let poster = poster.clone();
        async move {
            poster
                .post(&event)
                .await
                .is_ok_and(|(status, _)| status == 202)
        }
    })
    .await;
    assert!(accepted, "no event accepted");
    let client = reqwest::Client::new();
    for path in ["/metrics", "/readyz", "/healthz"] {
        let public = client
            .get(format!("{}{path}", ingress.url()))
            .send()
            .await?;
        assert_eq!(public.status(), 404, "{path} on the public port");
        let admin = client
            .get(format!("{}{path}", ingress.admin_url()))
            .send()
            .await?;
        assert_eq!(admin.status(), 200, "{path} on the admin address");
    }
    Ok(())
}
