//! Hostile input at the ingress: fuzzed requests (malformed and truncated JSON, random bytes,
//! invalid UTF-8, wrong types, duplicate keys, deep nesting, huge strings, every header
//! combination) get exactly the status the contract gives them, and the parser survives
//! pathological nesting. Slow and idle connections: `hostile_connections.rs`.
//!
//! The fuzz test runs `PROPTEST_CASES` cases (default 256); for a longer run:
//! `PROPTEST_CASES=20000 cargo nextest run -p yourlogic-tests --test hostile_input fuzzed`.

use std::time::Duration;

use anyhow::Result;
use chrono::Utc;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use shared::admission::Admission;
use shared::event::{Event, EventError};
use testkit::stack::{self, Poster, TOKEN};
use testkit::{EventBuilder, NatsServer};

const LIMIT: usize = 64 * 1024;
const READY: Duration = Duration::from_secs(15);

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// One fuzzed request.
#[derive(Debug, Clone)]
struct Case {
    authorization: Option<String>,
    auth_ok: bool,
    content_type: String,
    media_ok: bool,
    body: Vec<u8>,
}

fn valid_event() -> EventBuilder {
    EventBuilder::message("conv-fuzz", "hello").expires_in(Duration::from_secs(60))
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        ".{0,24}".prop_map(Value::from),
        Just(json!("2020-01-01T00:00:00Z")),
        Just(json!(uuid::Uuid::new_v4().to_string())),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const POINTERS: &[&str] = &[
    "/requestId",
    "/expires",
    "/time",
    "/trigger",
    "/trigger/type",
    "/trigger/participantType",
    "/trigger/silent",
    "/trigger/content",
    "/accountId",
    "/region",
    "/conversation",
    "/conversation/pid",
    "/conversation/custom",
    "/customer",
    "/customer/custom",
    "/engagements",
    "/turns",
    "/unknownField",
];

/// Replaces the JSON string `"__MARK__"` in a valid event with `raw` bytes.
fn splice(event: EventBuilder, pointer: &str, raw: &[u8]) -> Vec<u8> {
    let text = event.set(pointer, json!("__MARK__")).to_body();
    let at = text
        .windows(10)
        .position(|w| w == b"\"__MARK__\"")
        .unwrap_or(0);
    [&text[..at], raw, &text[at + 10..]].concat()
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        // A valid event, maybe a duplicate of an accepted one.
        Just(()).prop_map(|()| valid_event().to_body()),
        // A field replaced by any JSON (wrong types, nulls, dates in the past, ...).
        (prop::sample::select(POINTERS), json_value())
            .prop_map(|(p, v)| valid_event().set(p, v).to_body()),
        // A field removed.
        prop::sample::select(POINTERS).prop_map(|p| valid_event().remove(p).to_body()),
        // Random bytes.
        prop::collection::vec(any::<u8>(), 0..2048),
        // A valid event cut short.
        (0usize..2000).prop_map(|cut| {
            let body = valid_event().to_body();
            body[..cut.min(body.len())].to_vec()
        }),
        // Nesting up to far beyond serde_json's recursion limit, typed or free-form.
        (
            1usize..20_000,
            prop::sample::select(
                &["/conversation/custom", "/conversation/custom/x", "/trigger"][..]
            )
        )
            .prop_map(|(depth, pointer)| splice(valid_event(), pointer, &nested(depth))),
        // Huge strings, around the body limit.
        (0usize..2 * LIMIT).prop_map(|n| valid_event()
            .set("/trigger/content", json!("x".repeat(n)))
            .to_body()),
        // Invalid UTF-8 inside a string.
        prop::collection::vec(0x80u8..=0xff, 1..8).prop_map(|bad| {
            splice(
                valid_event(),
                "/trigger/content",
                &[b"\"".as_slice(), &bad, b"\""].concat(),
            )
        }),
        // Duplicate keys, at the top or inside an object the pipeline needs.
        (
            prop::sample::select(&["requestId", "expires", "accountId", "conversation"][..]),
            json_value()
        )
            .prop_map(|(key, value)| {
                let body = valid_event().to_body();
                let dup = format!("{{\"{key}\":{value},");
                [dup.as_bytes(), &body[1..]].concat()
            }),
    ]
}

fn case() -> impl Strategy<Value = Case> {
    let auth = prop_oneof![
        4 => Just((Some(format!("Bearer {TOKEN}")), true)),
        1 => Just((Some(format!("bearer   {TOKEN} ")), true)),
        1 => Just((None, false)),
        1 => Just((Some(TOKEN.to_string()), false)),
        1 => Just((Some(format!("Basic {TOKEN}")), false)),
        1 => "[ -~]{0,40}".prop_map(|t| (Some(format!("Bearer {t}")), t.trim() == TOKEN)),
        1 => Just((Some(format!("Bearer {TOKEN}x")), false)),
    ];
    let media = prop_oneof![
        4 => Just(("application/json".to_string(), true)),
        1 => Just(("application/json; charset=utf-8".to_string(), true)),
        1 => Just(("Application/JSON".to_string(), true)),
        1 => Just(("application/cloudevents+json".to_string(), true)),
        1 => Just(("text/plain".to_string(), false)),
        1 => Just(("application/x-www-form-urlencoded".to_string(), false)),
    ];
    (auth, media, body()).prop_map(
        |((authorization, auth_ok), (content_type, media_ok), body)| Case {
            authorization,
            auth_ok,
            content_type,
            media_ok,
            body,
        },
    )
}

/// The status the contract gives `case`, and its error code.
fn expected(case: &Case) -> (u16, &'static str) {
    if !case.auth_ok {
        return (401, "unauthorized");
    }
    if !case.media_ok {
        return (415, "unsupported_media_type");
    }
    if case.body.len() > LIMIT {
        return (413, "payload_too_large");
    }
    match Admission::from_json(&case.body, None) {
        Err(EventError::Malformed(_)) => (400, "malformed_json"),
        Err(EventError::Invalid(_)) => (422, "invalid_event"),
        Ok(event)
            if shared::deadline::expired_on_arrival(
                event.expires,
                Utc::now(),
                Duration::from_secs(5),
            ) =>
        {
            (422, "expired")
        }
        Ok(_) => (202, ""),
    }
}

#[test]
fn fuzzed_requests_get_exactly_the_contract_status_and_the_ingress_stays_up() -> Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let (nats, ingress) = runtime.block_on(async {
        let nats = NatsServer::start().await?;
        let ingress = stack::start_ingress(&nats.url(), |c| c.http.max_body_bytes = LIMIT).await?;
        stack::wait_ready(&ingress, READY).await?;
        Ok::<_, anyhow::Error>((nats, ingress))
    })?;
    let poster = Poster::new(&ingress.url());
    let mut runner = TestRunner::new(Config {
        cases: cases(),
        failure_persistence: None,
        ..Config::default()
    });
    let started = std::time::Instant::now();
    let previous = std::cell::RefCell::new(String::from("none"));
    let result = runner.run(&case(), |case| {
        let (want, code) = expected(&case);
        let request = poster.post_raw(
            case.body.clone(),
            case.authorization.as_deref(),
            &case.content_type,
        );
        let (status, body) = runtime
            .block_on(async { tokio::time::timeout(Duration::from_secs(10), request).await })
            .map_err(|_| TestCaseError::fail("no answer within 10 s"))?
            .map_err(|e| {
                TestCaseError::fail(format!(
                    "request failed: {e:#} (previous request: {})",
                    previous.borrow()
                ))
            })?;
        *previous.borrow_mut() = format!(
            "{status} for {} bytes of {:?} with {:?}",
            case.body.len(),
            case.content_type,
            case.authorization
        );
        prop_assert_eq!(status.as_u16(), want, "body {}", body);
        if want != 202 {
            prop_assert_eq!(body["error"]["code"].as_str(), Some(code));
            prop_assert!(
                !body["error"]["message"]
                    .as_str()
                    .unwrap_or_default()
                    .is_empty()
            );
        }
        Ok(())
    });
    println!("{} fuzzed requests in {:?}", cases(), started.elapsed());
    result.map_err(|e| anyhow::anyhow!("{e}"))?;
    // Still up and still accepting.
    runtime.block_on(async {
        let (status, _) = poster.post(&valid_event().build()).await?;
        anyhow::ensure!(
            status == 202,
            "a valid event after the fuzzing got {status}"
        );
        Ok(())
    })?;
    drop(ingress);
    drop(nats);
    Ok(())
}

/// `depth` nested arrays.
fn nested(depth: usize) -> Vec<u8> {
    [b"[".repeat(depth), b"]".repeat(depth)].concat()
}

#[test]
fn the_parser_refuses_absurd_nesting_without_overflowing_the_stack() {
    // Where free-form JSON is allowed (inside `custom`), serde_json's recursion limit (128)
    // refuses deep nesting as malformed; nothing recurses without bound.
    assert!(
        Event::from_json(&splice(
            valid_event(),
            "/customer/custom/deep",
            &nested(100)
        ))
        .is_ok()
    );
    for depth in [129, 10_000, 1_000_000] {
        let body = splice(valid_event(), "/customer/custom/deep", &nested(depth));
        let result = Event::from_json(&body);
        assert!(
            matches!(&result, Err(EventError::Malformed(m)) if m.contains("recursion limit")),
            "depth {depth}: {result:?}"
        );
    }
    // Where an object is expected, a nested array is simply the wrong type (422), at any depth.
    let body = splice(valid_event(), "/customer/custom", &nested(1_000_000));
    assert!(
        matches!(Event::from_json(&body), Err(EventError::Invalid(m)) if m.contains("customer.custom"))
    );
    let objects = "{\"a\":".repeat(100_000) + "1" + &"}".repeat(100_000);
    let body = splice(valid_event(), "/conversation/custom", objects.as_bytes());
    assert!(Event::from_json(&body).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn named_hostile_bodies_get_their_documented_status() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let poster = Poster::new(&ingress.url());
    let auth = format!("Bearer {TOKEN}");
    let post = |body: Vec<u8>| poster.post_raw(body, Some(&auth), "application/json");

    let (status, reply) = post(splice(
        valid_event(),
        "/customer/custom/deep",
        &nested(200_000),
    ))
    .await?;
    assert_eq!(
        (status.as_u16(), reply["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    // Anywhere, typed or free-form: nesting beyond 64 levels is refused before any parse.
    let (status, reply) = post(splice(valid_event(), "/customer/custom", &nested(200_000))).await?;
    assert_eq!(
        (status.as_u16(), reply["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );
    let (status, reply) = post(splice(valid_event(), "/unknownField", &nested(65))).await?;
    assert_eq!(
        (status.as_u16(), reply["error"]["code"].as_str()),
        (400, Some("malformed_json")),
        "{reply}"
    );
    // A documented field the pipeline does not need, of an unexpected type, is accepted: the
    // worker answers the event without it.
    let (status, reply) = post(valid_event().set("/turns", json!("not a list")).to_body()).await?;
    assert_eq!(status, 202, "{reply}");
    // So many turns that building them would cost a worker hundreds of MB: refused unbuilt.
    let many = format!(
        "[{}]",
        vec!["{}"; shared::admission::MAX_TURNS + 1].join(",")
    );
    let (status, reply) = post(splice(valid_event(), "/turns", many.as_bytes())).await?;
    assert_eq!(
        (status.as_u16(), reply["error"]["code"].as_str()),
        (422, Some("invalid_event")),
        "{reply}"
    );

    let near_limit = valid_event().set("/trigger/content", json!("é".repeat(400_000)));
    assert_eq!(
        post(near_limit.to_body()).await?.0,
        202,
        "a 800 kB message is accepted"
    );
    let giant_custom: serde_json::Map<String, Value> = (0..5000)
        .map(|i| (format!("k{i}"), json!("v".repeat(100))))
        .collect();
    let (status, _) = post(valid_event().custom(Value::Object(giant_custom)).to_body()).await?;
    assert_eq!(
        status, 202,
        "oversized custom data from Salted CX is carried, not refused"
    );
    // Twice the limit: refused from Content-Length before reading. The connection is closed
    // with most of the body unread, so the kernel may reset it before the client reads the 413
    // (HTTP/1.1 servers do not drain refused bodies): either is a refusal.
    let huge = valid_event()
        .set("/x", json!("y".repeat(2 << 20)))
        .to_body();
    match post(huge).await {
        Ok((status, reply)) => assert_eq!(
            (status.as_u16(), reply["error"]["code"].as_str()),
            (413, Some("payload_too_large"))
        ),
        Err(err) => println!("2 MB body refused with a reset before the 413 arrived: {err:#}"),
    }

    let (status, reply) = post(splice(valid_event(), "/trigger/content", b"\"\xff\xfe\"")).await?;
    assert_eq!(
        (status.as_u16(), reply["error"]["code"].as_str()),
        (400, Some("malformed_json"))
    );

    let body = valid_event().to_body();
    let duplicate = [
        br#"{"requestId":"6f1c2a52-1d4e-4c8e-9a33-5c0d8e7f1a2b","#.as_slice(),
        &body[1..],
    ]
    .concat();
    let (status, reply) = post(duplicate).await?;
    assert_eq!(status, 422, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("duplicate field `requestId`"),
        "{reply}"
    );

    // Ids end up in NATS headers and callback paths: line breaks and dot segments are refused,
    // while an odd trigger type (free-form) is carried.
    for pid in ["conv\r\nNats-Msg-Id: x", "..", "conv\u{0}"] {
        let (status, reply) =
            post(valid_event().set("/conversation/pid", json!(pid)).to_body()).await?;
        assert_eq!(status, 422, "{pid:?}: {reply}");
    }
    let (status, reply) = post(valid_event().set("/accountId", json!("..")).to_body()).await?;
    assert_eq!(status, 422, "{reply}");
    let (status, reply) = post(valid_event().trigger_type("\r\nPUB evil 1\r\n").to_body()).await?;
    assert_eq!(status, 202, "{reply}");

    let (status, reply) = post(valid_event().set("/requestId", json!(42)).to_body()).await?;
    assert_eq!(status, 422);
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("requestId"),
        "{reply}"
    );
    Ok(())
}
