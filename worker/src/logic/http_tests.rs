//! Tests of the HTTP delegate against a real local HTTP server.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde_json::json;
use shared::answer::Action;

use super::*;

type Seen = Arc<Mutex<Option<(HeaderMap, Bytes)>>>;

/// A delegate answering `status` with `body` after `delay`; records the last request.
async fn delegate(status: u16, body: String, delay: Duration) -> (String, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let app = axum::Router::new().route(
        "/logic",
        post(move |headers: HeaderMap, request: Bytes| {
            let record = record.clone();
            let body = body.clone();
            async move {
                *record.lock().expect("lock") = Some((headers, request));
                tokio::time::sleep(delay).await;
                (StatusCode::from_u16(status).expect("status"), body)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/logic"), seen)
}

const RAW: &str = r#"{"requestId":"3c99280a-9871-4656-a472-5da68d30c01f","accountId":"a","expires":"2030-01-01T00:00:00Z","trigger":{"type":"MESSAGE","participantType":"CUSTOMER","content":"hi"},"conversation":{"pid":"c"},"futureField":1}"#;

fn event_and_context(budget: Duration) -> (Event, Context) {
    let event = Event::from_json(RAW.as_bytes()).expect("valid event");
    let context = Context::new(
        Utc::now() + chrono::Duration::from_std(budget).expect("budget"),
        Utc::now(),
        2,
        Bytes::from_static(RAW.as_bytes()),
    );
    (event, context)
}

async fn ask(status: u16, body: &str) -> Result<Reply, LogicError> {
    let (url, _) = delegate(status, body.to_string(), Duration::ZERO).await;
    let logic = HttpLogic::new(&url, Duration::from_secs(2)).expect("valid url");
    let (event, context) = event_and_context(Duration::from_secs(5));
    logic.decide(&event, &context).await
}

#[tokio::test]
async fn the_delegate_gets_the_raw_event_with_deadline_headers_and_its_actions_are_relayed() {
    let answer = json!({
        "actions": [{"type": "MESSAGE", "content": "Hello from outside"}, {"type": "NEEDS_HELP", "needsHelp": true}],
        "conversation": {"custom": {"step": 2}}
    });
    let (url, seen) = delegate(200, answer.to_string(), Duration::ZERO).await;
    let logic = HttpLogic::new(&url, Duration::from_secs(2)).expect("valid url");
    let (event, context) = event_and_context(Duration::from_secs(10));
    let reply = logic.decide(&event, &context).await.expect("relayed");
    assert_eq!(
        reply.actions,
        [Action::message("Hello from outside"), Action::needs_help()]
    );
    let custom = reply
        .conversation
        .and_then(|c| c.custom)
        .expect("custom relayed");
    assert_eq!(custom.as_map().get("step"), Some(&json!(2)));

    let (headers, body) = seen.lock().expect("lock").clone().expect("request seen");
    assert_eq!(
        body.as_ref(),
        RAW.as_bytes(),
        "the raw event is forwarded unchanged"
    );
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    assert_eq!(header("content-type").as_deref(), Some("application/json"));
    assert_eq!(
        header(REQUEST_ID_HEADER).as_deref(),
        Some("3c99280a-9871-4656-a472-5da68d30c01f")
    );
    assert_eq!(header(DELIVERY_HEADER).as_deref(), Some("2"));
    let deadline: DateTime<Utc> = header(DEADLINE_HEADER)
        .and_then(|h| DateTime::parse_from_rfc3339(&h).ok())
        .expect("RFC 3339 deadline")
        .into();
    // Bounded by LOGIC_TIMEOUT (2 s) although the event has 10 s.
    assert!(deadline <= Utc::now() + chrono::Duration::seconds(2));
    let event_deadline = header(EVENT_DEADLINE_HEADER).expect("event deadline");
    assert!(DateTime::parse_from_rfc3339(&event_deadline).is_ok());
}

#[tokio::test]
async fn server_errors_and_throttling_make_the_logic_unavailable() {
    for status in [500, 503, 429, 408] {
        let result = ask(status, "busy").await;
        assert!(
            matches!(result, Err(LogicError::Unavailable(ref e)) if e.contains("busy")),
            "{status}: {result:?}"
        );
    }
}

#[tokio::test]
async fn a_refusal_by_the_delegate_is_a_logic_failure() {
    let result = ask(400, "no such conversation").await;
    assert!(
        matches!(result, Err(LogicError::Failed(ref e)) if e.contains("400")),
        "{result:?}"
    );
}

#[tokio::test]
async fn invalid_replies_are_logic_failures() {
    let too_big = json!({"actions": [], "conversation": {"custom": {"blob": "x".repeat(1100)}}});
    for body in [
        "not json".to_string(),
        json!({"actions": [{"type": "TELEPORT"}]}).to_string(),
        json!({"actions": [{"type": "NOTE", "content": "  "}]}).to_string(),
        too_big.to_string(),
    ] {
        let result = ask(200, &body).await;
        assert!(
            matches!(result, Err(LogicError::Failed(_))),
            "{body}: {result:?}"
        );
    }
    let result = ask(200, &too_big.to_string()).await;
    assert!(
        matches!(result, Err(LogicError::Failed(ref e)) if e.contains("1024-byte limit")),
        "{result:?}"
    );
}

#[tokio::test]
async fn an_empty_reply_means_no_actions() {
    assert_eq!(ask(204, "").await.expect("ok"), Reply::nothing());
    assert_eq!(ask(200, "{}").await.expect("ok"), Reply::nothing());
}

#[tokio::test]
async fn a_slow_delegate_is_abandoned_within_the_time_left_before_the_deadline() {
    let (url, _) = delegate(200, "{}".into(), Duration::from_secs(10)).await;
    let logic = HttpLogic::new(&url, Duration::from_secs(30))
        .expect("valid url")
        .with_margin(Duration::from_millis(200));
    let (event, context) = event_and_context(Duration::from_millis(700));
    let started = Instant::now();
    let result = logic.decide(&event, &context).await;
    assert!(
        matches!(result, Err(LogicError::Unavailable(ref e)) if e.contains("did not answer")),
        "{result:?}"
    );
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn an_unreachable_delegate_makes_the_logic_unavailable() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let logic = HttpLogic::new(&format!("http://127.0.0.1:{port}/"), Duration::from_secs(1))
        .expect("valid url");
    let (event, context) = event_and_context(Duration::from_secs(5));
    let result = logic.decide(&event, &context).await;
    assert!(
        matches!(result, Err(LogicError::Unavailable(ref e)) if e.contains("unreachable")),
        "{result:?}"
    );
}

#[tokio::test]
async fn without_time_left_the_delegate_is_not_called() {
    let (url, seen) = delegate(200, "{}".into(), Duration::ZERO).await;
    let logic = HttpLogic::new(&url, Duration::from_secs(1)).expect("valid url");
    let (event, context) = event_and_context(Duration::from_millis(100));
    let result = logic.decide(&event, &context).await;
    assert!(
        matches!(result, Err(LogicError::Unavailable(_))),
        "{result:?}"
    );
    assert!(seen.lock().expect("lock").is_none());
}

#[test]
fn only_http_and_https_urls_are_accepted() {
    assert!(HttpLogic::new("ftp://example.com/x", Duration::from_secs(1)).is_err());
    assert!(HttpLogic::new("not a url", Duration::from_secs(1)).is_err());
    assert!(HttpLogic::new("https://logic.example.com/events", Duration::from_secs(1)).is_ok());
}
