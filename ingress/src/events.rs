//! `POST /v1/events`: authenticate, check the media type and size, validate, refuse expired
//! events, store durably, answer 202.

use std::time::Instant;

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::json;
use shared::deadline::{expired_on_arrival, local_deadline};
use shared::envelope::Envelope;
use shared::event::{Event, EventError, TriggerType};
use shared::telemetry::names;
use tracing::Instrument;

use crate::AppState;
use crate::error::ApiError;
use crate::publisher::Stored;

/// Handles one event; every outcome is counted.
pub async fn post_event(State(state): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    let started = Instant::now();
    let result = accept(&state, &headers, body).await;
    let outcome = match &result {
        Ok((Stored::New, _)) => "accepted",
        Ok((Stored::Duplicate, _)) => "duplicate",
        Err(err) => err.outcome(),
    };
    metrics::counter!(names::INGRESS_REQUESTS, "outcome" => outcome).increment(1);
    metrics::histogram!(names::INGRESS_SECONDS).record(started.elapsed().as_secs_f64());
    match result {
        Ok((stored, request_id)) => {
            let status = if stored == Stored::New {
                "accepted"
            } else {
                "duplicate"
            };
            (
                StatusCode::ACCEPTED,
                Json(json!({"requestId": request_id, "status": status})),
            )
                .into_response()
        }
        Err(err) => err.into_response(),
    }
}

async fn accept(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Stored, String), ApiError> {
    authenticate(state, headers)?;
    check_media_type(headers)?;
    let received_at = Utc::now();
    let bytes = read_body(state, headers, body).await?;
    let event = Event::from_json(&bytes).map_err(|err| match err {
        EventError::Malformed(message) => ApiError::Malformed(message),
        EventError::Invalid(message) => ApiError::Invalid(message),
    })?;
    let conversation = event.conversation_pid().unwrap_or_default().to_string();
    let span =
        tracing::info_span!("event", request_id = %event.request_id, conversation = %conversation);
    async {
        let config = &state.config.http;
        if expired_on_arrival(event.expires, received_at, config.clock_skew) {
            tracing::info!(expires = %event.expires, "refused: already expired");
            return Err(ApiError::Expired(format!(
                "the event expired at {} (now {}, clock skew tolerance {:?}); it was not queued",
                event.expires.to_rfc3339(),
                received_at.to_rfc3339(),
                config.clock_skew
            )));
        }
        let envelope = Envelope {
            request_id: event.request_id,
            conversation,
            deadline: local_deadline(event.time, event.expires, received_at),
            received_at,
            // Unknown types are kept in the body but labelled OTHER in metrics, so a sender
            // cannot create metric series without bound.
            trigger: match &event.trigger.kind {
                TriggerType::Other(_) => "OTHER".to_string(),
                known => known.as_str().to_string(),
            },
            silent: event.is_silent(),
            account_id: event.account_id.clone(),
            region: event.region.clone(),
        };
        match state.publisher.publish(&envelope, bytes).await {
            Ok(stored) => {
                tracing::debug!(?stored, "stored");
                Ok((stored, event.request_id.to_string()))
            }
            Err(message) => {
                tracing::warn!(error = %message, "refused: not stored");
                Err(ApiError::Unavailable(message))
            }
        }
    }
    .instrument(span)
    .await
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
    let essence = value
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
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
