//! The ingress side of the external contract: every status code of `POST /v1/events` with its
//! JSON error body, the operational endpoints, and 503 (fast) while NATS is down.

use std::time::{Duration, Instant};

use anyhow::Result;
use reqwest::StatusCode;
use serde_json::{Value, json};
use testkit::stack::{self, Poster, TOKEN};
use testkit::{EventBuilder, NatsServer};

fn error_code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

fn error_message(body: &Value) -> &str {
    body["error"]["message"].as_str().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_contract_status_of_post_events_comes_with_its_error_body() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |c| c.http.max_body_bytes = 64 * 1024).await?;
    stack::wait_ready(&ingress, Duration::from_secs(10)).await?;
    let poster = Poster::new(&ingress.url());
    let event = EventBuilder::message("conv-contract", "hello").build();
    let body = serde_json::to_vec(&event)?;

    // 202 accepted, then 202 duplicate for the same requestId.
    let (status, reply) = poster.post(&event).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(
        reply,
        json!({"requestId": event["requestId"], "status": "accepted"})
    );
    let (status, reply) = poster.post(&event).await?;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(reply["status"], "duplicate");

    // 401 without a token or with a wrong one, with WWW-Authenticate.
    for auth in [None, Some("Bearer wrong"), Some(TOKEN)] {
        let (status, reply) = poster
            .post_raw(body.clone(), auth, "application/json")
            .await?;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{auth:?}");
        assert_eq!(error_code(&reply), "unauthorized");
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/events", ingress.url()))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await?;
    assert_eq!(
        raw.headers()
            .get("www-authenticate")
            .and_then(|v| v.to_str().ok()),
        Some("Bearer realm=\"yourlogic\"")
    );

    let bearer = format!("Bearer {TOKEN}");
    let auth = Some(bearer.as_str());
    // 415 for another media type.
    let (status, reply) = poster.post_raw(body.clone(), auth, "text/plain").await?;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(error_code(&reply), "unsupported_media_type");

    // 400 for broken JSON, with line and column.
    let (status, reply) = poster
        .post_raw(b"{\n  \"requestId\": 1,".to_vec(), auth, "application/json")
        .await?;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&reply), "malformed_json");
    assert!(error_message(&reply).contains("line 2"), "{reply}");

    // 413 beyond the configured limit.
    let huge = EventBuilder::message("conv-contract", &"x".repeat(100 * 1024)).build();
    let (status, reply) = poster.post(&huge).await?;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_code(&reply), "payload_too_large");

    // 422 invalid_event naming the field.
    for (pointer, field) in [
        ("/requestId", "requestId"),
        ("/expires", "expires"),
        ("/conversation", "conversation"),
        ("/accountId", "accountId"),
    ] {
        let event = EventBuilder::message("conv-contract", "x")
            .remove(pointer)
            .build();
        let (status, reply) = poster.post(&event).await?;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{pointer}");
        assert_eq!(error_code(&reply), "invalid_event");
        assert!(error_message(&reply).contains(field), "{reply}");
    }
    let bad_id = EventBuilder::message("conv-contract", "x")
        .request_id("not-a-uuid")
        .build();
    let (status, reply) = poster.post(&bad_id).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(error_message(&reply).contains("requestId"), "{reply}");

    // 422 expired beyond the skew tolerance, but accepted within it.
    let expired = EventBuilder::message("conv-contract", "x")
        .expired_since(Duration::from_secs(30))
        .build();
    let (status, reply) = poster.post(&expired).await?;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error_code(&reply), "expired");
    let slightly_late = EventBuilder::message("conv-contract", "x")
        .expired_since(Duration::from_secs(2))
        .build();
    let (status, _) = poster.post(&slightly_late).await?;
    assert_eq!(
        status,
        StatusCode::ACCEPTED,
        "within the 5 s skew tolerance"
    );

    // Every outcome is counted.
    let page = stack::scrape(&ingress).await?;
    for outcome in [
        "accepted",
        "duplicate",
        "unauthorized",
        "unsupported_media_type",
        "malformed",
        "too_large",
        "invalid",
        "expired",
    ] {
        let count = saltedcx_sim::metrics::metric_value(
            &page,
            "yourlogic_ingress_requests_total",
            &[("outcome", outcome)],
        );
        assert!(count >= 1.0, "outcome {outcome} not counted");
    }
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_endpoints_answer() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, Duration::from_secs(10)).await?;
    let healthz = reqwest::get(format!("{}/healthz", ingress.admin_url())).await?;
    assert_eq!(healthz.status(), StatusCode::OK);
    let metrics = stack::scrape(&ingress).await?;
    assert!(metrics.contains("yourlogic_up"), "{metrics}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_nats_is_down_the_ingress_answers_503_quickly_and_recovers_by_itself() -> Result<()> {
    let nats = NatsServer::start().await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, Duration::from_secs(10)).await?;
    let poster = Poster::new(&ingress.url());
    let (status, _) = poster
        .post(&EventBuilder::message("conv-down", "before").build())
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED);

    nats.stop().await?;
    for _ in 0..3 {
        let started = Instant::now();
        let (status, reply) = poster
            .post(&EventBuilder::message("conv-down", "during").build())
            .await?;
        let took = started.elapsed();
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{reply}");
        assert_eq!(error_code(&reply), "unavailable");
        // At once, not after waiting for NATS: the publish wait alone is 1 s; a busy machine
        // may add some, a hang would take far longer.
        assert!(took < Duration::from_secs(5), "503 took {took:?}");
    }
    let raw = reqwest::Client::new()
        .post(format!("{}/v1/events", ingress.url()))
        .bearer_auth(TOKEN)
        .json(&EventBuilder::message("conv-down", "during").build())
        .send()
        .await?;
    assert_eq!(raw.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(raw.headers().contains_key("retry-after"));
    let readyz = reqwest::get(format!("{}/readyz", ingress.admin_url())).await?;
    assert_eq!(readyz.status(), StatusCode::SERVICE_UNAVAILABLE);

    nats.restart().await?;
    stack::wait_ready(&ingress, Duration::from_secs(15)).await?;
    let (status, reply) = poster
        .post(&EventBuilder::message("conv-down", "after").build())
        .await?;
    assert_eq!(status, StatusCode::ACCEPTED, "{reply}");
    Ok(())
}
