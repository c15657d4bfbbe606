//! Secrets and authentication: the Salted CX token is compared exactly and in constant time,
//! rotates with two tokens (both accepted inbound, callbacks signed with the first), and never
//! shows in logs (the real binaries at debug level), metrics or responses; NATS credentials
//! (user and password, token, TLS with a private CA, a credentials file in operator mode) work,
//! and wrong ones leave the services unready instead of half-working.
//!
//! The TLS material in `tests/fixtures/tls/` was made with
//! `openssl req -x509 -newkey rsa:2048 -nodes -days 36500 ...` (a CA) and a server certificate
//! for `IP:127.0.0.1` signed by it; see its README. The NATS operator, accounts, users and
//! their JWTs are made afresh by each run (`nats_jwt`).

mod nats_jwt;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use shared::config::NatsArgs;
use shared::secret::{Secret, TokenSet};
use testkit::faults::binaries::BinaryProcess;
use testkit::stack::{self, Poster, Service};
use testkit::{Behaviour, EventBuilder, FakeSaltedCx, NatsOptions, NatsServer, Reply};
use worker::logic::echo::EchoLogic;

const READY: Duration = Duration::from_secs(15);
const NATS_USER: &str = "yl";
const NATS_PASSWORD: &str = "nats-pw-91c4e2x";

fn tls_fixture(name: &str) -> PathBuf {
    testkit::workspace_root()
        .join("tests/fixtures/tls")
        .join(name)
}

/// A NATS server whose only real user is `yl`/[`NATS_PASSWORD`] (the toolkit's own readiness
/// probe gets in as the password-less `probe` user of the same account), with TLS available
/// next to plain connections, and monitoring on. The config file lives in `dir`.
async fn nats_with_auth(dir: &tempfile::TempDir) -> Result<NatsServer> {
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "accounts {{\n  APP {{\n    jetstream: enabled\n    users: [\n      \
             {{user: {NATS_USER}, password: \"{NATS_PASSWORD}\"}},\n      \
             {{user: probe, password: \"probe-not-used-by-services\"}}\n    ]\n  }}\n}}\n\
             no_auth_user: probe\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n}}\n\
             allow_non_tls: true\n",
            tls_fixture("server.pem").display(),
            tls_fixture("server-key.pem").display()
        ),
    )?;
    NatsServer::start_with(NatsOptions {
        monitoring: true,
        extra_args: vec!["-c".into(), config.display().to_string()],
        ..Default::default()
    })
    .await
}

fn with_nats_auth(nats: &mut shared::config::NatsArgs, password: &str) {
    nats.nats_user = Some(NATS_USER.into());
    nats.nats_password = Some(Secret::new(password));
}

/// Whether `service` stays unready for `period` (polled; any 200 fails).
async fn stays_unready(service: &Service, period: Duration) -> bool {
    let url = format!("{}/readyz", service.admin_url());
    !testkit::wait_until(period, Duration::from_millis(100), || {
        let request = reqwest::get(url.clone());
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await
}

/// Starts an ingress and a worker whose NATS settings `auth` sets, waits until both are ready
/// and checks that an event of `conversation` is answered; returns them (they stop when dropped).
async fn serves_events_with(
    nats_url: &str,
    fake: &FakeSaltedCx,
    conversation: &str,
    auth: impl Fn(&mut NatsArgs),
) -> Result<(Service, Service)> {
    let ingress = stack::start_ingress(nats_url, |c| auth(&mut c.nats)).await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(
        nats_url,
        &fake.base_url(),
        std::sync::Arc::new(EchoLogic),
        |c| auth(&mut c.nats),
    )
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let event = EventBuilder::message(conversation, "hi").build();
    assert_eq!(Poster::new(&ingress.url()).post(&event).await?.0, 202);
    fake.wait_for_request(
        event["requestId"].as_str().unwrap_or_default(),
        Duration::from_secs(10),
    )
    .await?;
    Ok((ingress, worker))
}

/// An ingress with the NATS settings `ingress_auth` and a worker with `worker_auth` never
/// become ready, and the ingress refuses events with 503 (never 2xx).
async fn refuses_events_with(
    nats_url: &str,
    fake: &FakeSaltedCx,
    conversation: &str,
    ingress_auth: impl FnOnce(&mut NatsArgs),
    worker_auth: impl FnOnce(&mut NatsArgs),
) -> Result<()> {
    let ingress = stack::start_ingress(nats_url, |c| ingress_auth(&mut c.nats)).await?;
    let worker = stack::start_worker(
        nats_url,
        &fake.base_url(),
        std::sync::Arc::new(EchoLogic),
        |c| worker_auth(&mut c.nats),
    )
    .await?;
    assert!(stays_unready(&ingress, Duration::from_secs(3)).await);
    assert!(stays_unready(&worker, Duration::from_secs(1)).await);
    let (status, body) = Poster::new(&ingress.url())
        .post(&EventBuilder::message(conversation, "no").build())
        .await?;
    assert_eq!(status, 503, "{body}");
    Ok(())
}

#[test]
fn token_comparison_accepts_exactly_the_configured_tokens_whatever_their_length() {
    let set: TokenSet = "tok-new-7f3a9c,tok-old-2b8e1d".parse().expect("two tokens");
    assert_eq!(set.len(), 2);
    assert_eq!(set.signing().expose(), "tok-new-7f3a9c");
    for good in ["tok-new-7f3a9c", "tok-old-2b8e1d"] {
        assert!(set.verify(good));
        assert!(set.verify_bearer(&format!("Bearer {good}")));
        assert!(set.verify_bearer(&format!("bearer {good}")));
    }
    for bad in [
        "",
        "t",
        "tok-new-7f3a9",
        "tok-new-7f3a9c ",
        "tok-new-7f3a9cX",
        "TOK-NEW-7F3A9C",
        "tok-old-2b8e1d\0",
        "tok-new-7f3a9c,tok-old-2b8e1d",
        "tok-néw-7f3a9c",
    ] {
        assert!(!set.verify(bad), "{bad:?} accepted");
    }
    for header in [
        "tok-new-7f3a9c",
        "Basic tok-new-7f3a9c",
        "Bearer",
        "Bearer ",
        "Bearertok-new-7f3a9c",
    ] {
        assert!(!set.verify_bearer(header), "{header:?} accepted");
    }
    assert!(!format!("{set:?}").contains("7f3a9c"));
    assert!(!format!("{:?}", Secret::new(NATS_PASSWORD)).contains(NATS_PASSWORD));
}

/// Optional, statistical: a mismatch in the first byte costs the same as one in the last byte.
/// Ignored by default because timing on a shared machine is noisy; run it alone with
/// `scripts/timing-check.sh`.
#[test]
#[ignore = "statistical timing test: run by scripts/timing-check.sh on a quiet machine"]
fn token_comparison_takes_the_same_time_wherever_the_tokens_differ() {
    let token = "s".repeat(64);
    let set: TokenSet = token.parse().expect("token");
    let early = format!("x{}", &token[1..]);
    let late = format!("{}x", &token[..63]);
    let time = |candidate: &str| {
        let started = std::time::Instant::now();
        for _ in 0..20_000 {
            std::hint::black_box(set.verify(std::hint::black_box(candidate)));
        }
        started.elapsed()
    };
    let (mut early_runs, mut late_runs) = (Vec::new(), Vec::new());
    for _ in 0..51 {
        early_runs.push(time(&early));
        late_runs.push(time(&late));
    }
    early_runs.sort();
    late_runs.sort();
    let ratio = early_runs[25].as_secs_f64() / late_runs[25].as_secs_f64();
    println!("median time, first-byte vs last-byte mismatch: ratio {ratio:.3}");
    assert!((0.8..1.25).contains(&ratio), "ratio {ratio}");
}

/// Optional, statistical: a wrong token of the configured token's length costs the same as one
/// a byte shorter or longer, so timing does not reveal the token's length (both sides are
/// hashed before they are compared). Run with `scripts/timing-check.sh`.
#[test]
#[ignore = "statistical timing test: run by scripts/timing-check.sh on a quiet machine"]
fn token_comparison_takes_the_same_time_whatever_the_length_presented() {
    let token = "s".repeat(40);
    let set: TokenSet = token.parse().expect("token");
    // All within one SHA-256 block, so hashing them costs the same.
    let shorter = "x".repeat(39);
    let same_length = "x".repeat(40);
    let longer = "x".repeat(41);
    let time = |candidate: &str| {
        let started = std::time::Instant::now();
        for _ in 0..20_000 {
            std::hint::black_box(set.verify(std::hint::black_box(candidate)));
        }
        started.elapsed()
    };
    let (mut shorter_runs, mut same_runs, mut longer_runs) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..51 {
        shorter_runs.push(time(&shorter));
        same_runs.push(time(&same_length));
        longer_runs.push(time(&longer));
    }
    for runs in [&mut shorter_runs, &mut same_runs, &mut longer_runs] {
        runs.sort();
    }
    let median = |runs: &[std::time::Duration]| runs[25].as_secs_f64();
    let against_shorter = median(&same_runs) / median(&shorter_runs);
    let against_longer = median(&same_runs) / median(&longer_runs);
    println!(
        "median time, wrong token of the right length vs one byte shorter: ratio \
         {against_shorter:.3}; vs one byte longer: {against_longer:.3}"
    );
    assert!(
        (0.8..1.25).contains(&against_shorter),
        "ratio {against_shorter}"
    );
    assert!(
        (0.8..1.25).contains(&against_longer),
        "ratio {against_longer}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_a_rotation_both_tokens_are_accepted_and_callbacks_are_signed_with_the_new_one()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start("tok-new").await?;
    let rotating = |tokens: &'static str| {
        move |set: &mut shared::config::TokenArgs| {
            if let Ok(parsed) = tokens.parse() {
                set.saltedcx_token = parsed;
            }
        }
    };
    let ingress =
        stack::start_ingress(&nats.url(), |c| rotating("tok-new,tok-old")(&mut c.token)).await?;
    stack::wait_ready(&ingress, READY).await?;
    let worker = stack::start_worker(
        &nats.url(),
        &fake.base_url(),
        std::sync::Arc::new(EchoLogic),
        |c| rotating("tok-new,tok-old")(&mut c.token),
    )
    .await?;
    stack::wait_ready(&worker, READY).await?;
    let poster = Poster::new(&ingress.url());
    let send = |token: &'static str| {
        let poster = poster.clone();
        async move {
            let event = EventBuilder::message("conv-rotate", token).build();
            let (status, _) = poster
                .post_raw(
                    serde_json::to_vec(&event)?,
                    Some(&format!("Bearer {token}")),
                    "application/json",
                )
                .await?;
            Ok::<_, anyhow::Error>((
                status.as_u16(),
                event["requestId"].as_str().unwrap_or_default().to_string(),
            ))
        }
    };
    let (new_status, new_id) = send("tok-new").await?;
    let (old_status, old_id) = send("tok-old").await?;
    let (other_status, _) = send("tok-other").await?;
    assert_eq!((new_status, old_status, other_status), (202, 202, 401));
    for id in [&new_id, &old_id] {
        let callback = fake.wait_for_request(id, Duration::from_secs(10)).await?;
        assert_eq!(callback.authorization.as_deref(), Some("Bearer tok-new"));
    }

    // The rotation ends: the old token is removed and refused from then on.
    ingress.stop(Duration::from_secs(15)).await?;
    let ingress = stack::start_ingress(&nats.url(), |c| rotating("tok-new")(&mut c.token)).await?;
    stack::wait_ready(&ingress, READY).await?;
    let poster = Poster::new(&ingress.url());
    let event = serde_json::to_vec(&EventBuilder::message("conv-rotate", "after").build())?;
    let (status, _) = poster
        .post_raw(event.clone(), Some("Bearer tok-old"), "application/json")
        .await?;
    assert_eq!(status, 401);
    let (status, _) = poster
        .post_raw(event, Some("Bearer tok-new"), "application/json")
        .await?;
    assert_eq!(status, 202);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_never_appear_in_debug_logs_metrics_help_or_responses() -> Result<()> {
    const NEW: &str = "tok-new-7f3a9c";
    const OLD: &str = "tok-old-2b8e1d";
    let dir = tempfile::tempdir()?;
    let nats = nats_with_auth(&dir).await?;
    let fake = FakeSaltedCx::start(NEW).await?;
    // One failed attempt first, so the retry path logs too.
    fake.set_behaviour(Behaviour::script([Reply::status(500)]));
    let tokens = format!("{NEW},{OLD}");
    let url = nats.url();
    // `debug` by default; `SECRETS_TEST_LOG=trace` checks every dependency's trace output too.
    let level = std::env::var("SECRETS_TEST_LOG").unwrap_or_else(|_| "debug".into());
    let common = [
        ("NATS_URL", url.as_str()),
        ("NATS_USER", NATS_USER),
        ("NATS_PASSWORD", NATS_PASSWORD),
        ("SALTEDCX_TOKEN", tokens.as_str()),
        ("RUST_LOG", level.as_str()),
    ];
    let mut ingress = BinaryProcess::spawn("ingress", "INGRESS_ADDR", &common)?;
    let api = fake.base_url();
    let mut worker_env = common.to_vec();
    worker_env.push(("SALTEDCX_API_URL", api.as_str()));
    let mut worker = BinaryProcess::spawn("worker", "WORKER_ADDR", &worker_env)?;
    ingress.wait_ready(READY).await?;
    worker.wait_ready(READY).await?;

    let poster = Poster::new(&ingress.url());
    let mut responses = Vec::new();
    let mut accepted = Vec::new();
    for (i, auth) in [NEW, OLD, "tok-new-7f3a9d", NEW, OLD].iter().enumerate() {
        let event = EventBuilder::message(&format!("conv-secret-{i}"), "hello").build();
        let (status, body) = poster
            .post_raw(
                serde_json::to_vec(&event)?,
                Some(&format!("Bearer {auth}")),
                "application/json",
            )
            .await?;
        if status == 202 {
            accepted.push(event["requestId"].as_str().unwrap_or_default().to_string());
        }
        responses.push(body.to_string());
    }
    let (_, malformed) = poster
        .post_raw(
            b"{\"requestId\":".to_vec(),
            Some(&format!("Bearer {OLD}")),
            "application/json",
        )
        .await?;
    responses.push(malformed.to_string());
    assert_eq!(accepted.len(), 4);
    for id in &accepted {
        let callback = fake.wait_for_request(id, Duration::from_secs(20)).await?;
        assert_eq!(
            callback.authorization.as_deref(),
            Some(format!("Bearer {NEW}").as_str())
        );
    }
    let metrics = [
        reqwest::get(format!("{}/metrics", ingress.admin_url()))
            .await?
            .text()
            .await?,
        reqwest::get(format!("{}/metrics", worker.url()))
            .await?
            .text()
            .await?,
    ];
    // --help with the secrets in the environment (clap must not print env values of secrets).
    let mut help = String::new();
    for name in ["ingress", "worker"] {
        let output = std::process::Command::new(testkit::faults::binaries::binary(name)?)
            .arg("--help")
            .env("SALTEDCX_TOKEN", &tokens)
            .env("NATS_PASSWORD", NATS_PASSWORD)
            .output()?;
        help.push_str(&String::from_utf8_lossy(&output.stdout));
    }
    assert!(help.contains("SALTEDCX_TOKEN"), "{help}");
    ingress.terminate()?;
    worker.terminate()?;
    ingress.wait_exit(Duration::from_secs(30)).await?;
    worker.wait_exit(Duration::from_secs(30)).await?;

    let logs = [ingress.output(), worker.output()];
    let lines: usize = logs.iter().map(|l| l.lines().count()).sum();
    for secret in [NEW, OLD, NATS_PASSWORD] {
        for (what, text) in [
            ("ingress log", &logs[0]),
            ("worker log", &logs[1]),
            ("ingress metrics", &metrics[0]),
            ("worker metrics", &metrics[1]),
            ("--help", &help),
        ] {
            assert!(!text.contains(secret), "{secret} found in the {what}");
        }
        assert!(
            responses.iter().all(|r| !r.contains(secret)),
            "{secret} in a response"
        );
    }
    assert!(lines > 50, "too few log lines to mean anything: {lines}");
    println!(
        "no secret in {lines} {level} log lines, 2 metrics pages, --help, {} responses",
        responses.len()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_use_nats_user_password_and_tls_and_stay_unready_with_wrong_credentials()
-> Result<()> {
    let dir = tempfile::tempdir()?;
    let nats = nats_with_auth(&dir).await?;
    let fake = FakeSaltedCx::start(stack::TOKEN).await?;

    // Right credentials: ready, and events flow.
    let _running = serves_events_with(&nats.url(), &fake, "conv-auth", |n| {
        with_nats_auth(n, NATS_PASSWORD)
    })
    .await?;

    // Wrong password: never ready, and the ingress refuses events with 503 (never 2xx).
    refuses_events_with(
        &nats.url(),
        &fake,
        "conv-auth",
        |n| with_nats_auth(n, "wrong"),
        |n| with_nats_auth(n, "wrong"),
    )
    .await?;

    // TLS with the private CA: ready, and the server sees a TLS connection.
    let tls_url = format!("tls://127.0.0.1:{}", nats.port());
    let tls_ingress = stack::start_ingress(&tls_url, |c| {
        with_nats_auth(&mut c.nats, NATS_PASSWORD);
        c.nats.nats_tls = true;
        c.nats.nats_tls_ca_file = Some(tls_fixture("ca.pem"));
    })
    .await?;
    stack::wait_ready(&tls_ingress, READY).await?;
    let monitor = nats.monitor_url().context("monitoring is on")?;
    let connz: Value = reqwest::get(format!("{monitor}/connz?auth=true"))
        .await?
        .json()
        .await?;
    let tls_connections = connz["connections"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter(|c| c["tls_version"].as_str().is_some_and(|v| !v.is_empty()))
                .filter(|c| c["authorized_user"] == NATS_USER)
                .count()
        })
        .unwrap_or_default();
    assert!(
        tls_connections >= 1,
        "no TLS connection as {NATS_USER}: {connz}"
    );

    // TLS without trusting the private CA: the certificate is refused, never ready.
    let untrusting = stack::start_ingress(&tls_url, |c| {
        with_nats_auth(&mut c.nats, NATS_PASSWORD);
        c.nats.nats_tls = true;
    })
    .await?;
    assert!(stays_unready(&untrusting, Duration::from_secs(3)).await);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_use_a_nats_token_and_stay_unready_with_a_wrong_one() -> Result<()> {
    const NATS_TOKEN: &str = "nats-token-5d8e1a";
    let nats = NatsServer::start_with(NatsOptions {
        token: Some(NATS_TOKEN.into()),
        ..Default::default()
    })
    .await?;
    let fake = FakeSaltedCx::start(stack::TOKEN).await?;
    let with_token = |nats: &mut NatsArgs, token: &str| {
        nats.nats_token = Some(Secret::new(token));
    };
    let _running = serves_events_with(&nats.url(), &fake, "conv-token", |n| {
        with_token(n, NATS_TOKEN)
    })
    .await?;

    // A wrong token, or none: never ready, and events are refused with 503 (never 2xx).
    refuses_events_with(
        &nats.url(),
        &fake,
        "conv-token",
        |n| with_token(n, "wrong"),
        |_| {},
    )
    .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_use_a_nats_credentials_file_and_stay_unready_with_an_untrusted_one() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let trust = nats_jwt::OperatorMode::new();
    let config = dir.path().join("nats.conf");
    std::fs::write(&config, trust.server_config()?)?;
    let creds = dir.path().join("yl.creds");
    std::fs::write(&creds, nats_jwt::user_creds(&trust.app, "yl")?)?;
    // The toolkit's readiness probe gets in with the same file (operator mode has no anonymous
    // user).
    let nats = NatsServer::start_with(NatsOptions {
        extra_args: vec!["-c".into(), config.display().to_string()],
        creds: Some(creds.clone()),
        ..Default::default()
    })
    .await?;
    let fake = FakeSaltedCx::start(stack::TOKEN).await?;

    let _running = serves_events_with(&nats.url(), &fake, "conv-creds", |n| {
        n.nats_creds_file = Some(creds.clone())
    })
    .await?;

    // A user of an account the server does not know (well-formed, signed by its own account
    // key), or no credentials: never ready, and events are refused with 503 (never 2xx).
    let untrusted = dir.path().join("stranger.creds");
    std::fs::write(
        &untrusted,
        nats_jwt::user_creds(&nkeys::KeyPair::new_account(), "stranger")?,
    )?;
    refuses_events_with(
        &nats.url(),
        &fake,
        "conv-creds",
        |n| n.nats_creds_file = Some(untrusted),
        |_| {},
    )
    .await?;

    // A file that is not a credentials file, or none at all: the service does not start, and
    // the error names the setting and the path.
    let garbled = dir.path().join("garbled.creds");
    std::fs::write(&garbled, "not a credentials file\n")?;
    for path in [garbled, dir.path().join("missing.creds")] {
        let started = stack::start_ingress(&nats.url(), |c| {
            c.nats.nats_creds_file = Some(path.clone());
        })
        .await;
        let error = match started {
            Ok(_) => anyhow::bail!("the ingress started with {}", path.display()),
            Err(error) => format!("{error:#}"),
        };
        assert!(
            error.contains("NATS_CREDS_FILE") && error.contains(&path.display().to_string()),
            "{error}"
        );
    }
    Ok(())
}
