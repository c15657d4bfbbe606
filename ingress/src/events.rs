//! `POST /v1/events`: authenticate, check the media type and size, read what routing needs
//! (the rest is only checked to be JSON), refuse expired events, store durably, answer 202.
//! Every refusal is counted, and logged (rate-limited) with its reason and the peer's address.

use std::time::Instant;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use shared::admission::Admission;
use shared::deadline::{expired_on_arrival, local_deadline};
use shared::envelope::Envelope;
use shared::event::{EventError, TriggerType};
use shared::telemetry::names;
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;
use crate::publisher::{PublishError, Stored};
use crate::{rejections, traces};

/// Handles one event; every outcome is counted.
pub async fn post_event(
    State(state): State<AppState>,
    peer: Option<axum::Extension<shared::server::Peer>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let span = traces::request_span(&headers);
    let result = accept(&state, &headers, body)
        .instrument(span.clone())
        .await;
    let outcome = match &result {
        Ok((Stored::New, _)) => "accepted",
        Ok((Stored::Duplicate, _)) => "duplicate",
        Err(err) => err.outcome(),
    };
    metrics::counter!(names::INGRESS_REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(names::INGRESS_SECONDS).record(started.elapsed().as_secs_f64());
    let request_id = result.as_ref().ok().map(|(_, id)| *id);
    // A client with a valid token keeps its connection after a refused event; any other error
    // response closes it (shared::server), so that strangers cannot hold connection slots.
    let authenticated = !matches!(result, Err(ApiError::Unauthorized(_)));
    let mut response = match result {
        Ok((stored, request_id)) => accepted(stored, &request_id),
        Err(err) => {
            rejections::log(&err, peer.map(|p| p.0.0));
            err.into_response()
        }
    };
    if authenticated {
        response
            .extensions_mut()
            .insert(shared::server::Authenticated);
    }
    traces::record_response(&span, outcome, request_id.as_ref(), response.status());
    response
}

/// `202 {"requestId":"…","status":"accepted"|"duplicate"}`, written without building a JSON tree.
fn accepted(stored: Stored, request_id: &uuid::Uuid) -> Response {
    let status = match stored {
        Stored::New => "accepted",
        Stored::Duplicate => "duplicate",
    };
    let body = format!(r#"{{"requestId":"{request_id}","status":"{status}"}}"#);
    let mut response = (StatusCode::ACCEPTED, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Stored, uuid::Uuid), ApiError> {
    authenticate(state, headers)?;
    check_media_type(headers)?;
    let received_at = Utc::now();
    let bytes = read_body(state, headers, body).await?;
    let config = &state.config;
    let event = Admission::from_json(&bytes, config.routing.saltedcx_account_id.as_deref())
        .map_err(|err| match err {
            EventError::Malformed(message) => ApiError::Malformed(message),
            EventError::Invalid(message) => ApiError::Invalid(message),
        })?;
    if expired_on_arrival(event.expires, received_at, config.http.clock_skew) {
        return Err(ApiError::Expired(format!(
            "the event expired at {} (now {}, clock skew tolerance {:?}); it was not queued",
            event.expires.to_rfc3339(),
            received_at.to_rfc3339(),
            config.http.clock_skew
        )));
    }
    config.routing.check_region(event.region.as_deref())?;
    let deadline = config.routing.bounded(
        local_deadline(event.time, event.expires, received_at),
        received_at,
    );
    let envelope = Envelope {
        request_id: event.request_id,
        deadline,
        received_at,
        // Unknown types are kept in the body but labelled OTHER in metrics, so a sender
        // cannot create metric series without bound.
        trigger: match &event.trigger {
            TriggerType::Other(_) => "OTHER".to_string(),
            known => known.as_str().to_string(),
        },
        silent: event.silent,
        account_id: Some(event.account_id),
        region: event.region,
        conversation: event.conversation,
    };
    match state.publisher.publish(&envelope, bytes).await {
        Ok(stored) => Ok((stored, envelope.request_id)),
        Err(PublishError::TooLarge { max_payload }) => {
            Err(ApiError::TooLargeToStore { max_payload })
        }
        Err(err) => Err(ApiError::Unavailable(err.to_string())),
    }
}

fn authenticate(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(ApiError::Unauthorized(
            "missing Authorization header (expected `Bearer <token>`)",
        ));
    };
    let valid = value
        .to_str()
        .is_ok_and(|text| state.config.token.saltedcx_token.verify_bearer(text));
    if valid {
        Ok(())
    } else {
        Err(ApiError::Unauthorized("invalid bearer token"))
    }
}

fn check_media_type(headers: &HeaderMap) -> Result<(), ApiError> {
    let value = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let essence = value.split(';').next().unwrap_or_default().trim();
    let json = essence.eq_ignore_ascii_case("application/json")
        || (essence.len() > 17
            && essence[..12].eq_ignore_ascii_case("application/")
            && essence[essence.len() - 5..].eq_ignore_ascii_case("+json"));
    if json {
        Ok(())
    } else if value.is_empty() {
        Err(ApiError::UnsupportedMediaType(
            "missing Content-Type; send `Content-Type: application/json`".into(),
        ))
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type `{value}` is not supported; send `application/json`"
        )))
    }
}

async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<bytes::Bytes, ApiError> {
    let limit = state.config.http.max_body_bytes;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let timeout = state.config.http.request_timeout;
    let limited = http_body_util::Limited::new(body, limit);
    match tokio::time::timeout(timeout, http_body_util::BodyExt::collect(limited)).await {
        Err(_) => Err(ApiError::Timeout(timeout)),
        Ok(Ok(collected)) => Ok(collected.to_bytes()),
        Ok(Err(err)) if err.is::<http_body_util::LengthLimitError>() => {
            Err(ApiError::PayloadTooLarge { limit })
        }
        Ok(Err(err)) => Err(ApiError::Malformed(format!(
            "the request body could not be read: {err}"
        ))),
    }
}
