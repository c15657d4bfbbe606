//! Every way `POST /v1/events` can fail, mapped in one place to its status code, error code,
//! metric outcome and JSON body `{"error":{"code":"…","message":"…"}}`.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// A refused event, with a message that tells the sender what is wrong.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("request body is larger than the {limit}-byte limit")]
    PayloadTooLarge { limit: usize },
    #[error(
        "the event and its routing headers are larger than the event store accepts \
         ({max_payload} bytes); send a smaller event"
    )]
    TooLargeToStore { max_payload: usize },
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Expired(String),
    #[error("the request body was not received within {0:?}")]
    Timeout(std::time::Duration),
    #[error("{0}")]
    Unavailable(String),
}

impl ApiError {
    /// The HTTP status of this error.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::PayloadTooLarge { .. } | ApiError::TooLargeToStore { .. } => {
                StatusCode::PAYLOAD_TOO_LARGE
            }
            ApiError::Malformed(_) => StatusCode::BAD_REQUEST,
            ApiError::Invalid(_) | ApiError::Expired(_) => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Timeout(_) => StatusCode::REQUEST_TIMEOUT,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The machine-readable error code of the body.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } | ApiError::TooLargeToStore { .. } => {
                "payload_too_large"
            }
            ApiError::Malformed(_) => "malformed_json",
            ApiError::Invalid(_) => "invalid_event",
            ApiError::Expired(_) => "expired",
            ApiError::Timeout(_) => "request_timeout",
            ApiError::Unavailable(_) => "unavailable",
        }
    }

    /// Whether the request body was left (partly) unread: the connection cannot serve another
    /// request then, so the response says `Connection: close` and the client does not reuse it
    /// (a client reusing it would see its next request fail).
    pub fn leaves_body_unread(&self) -> bool {
        matches!(
            self,
            ApiError::Unauthorized(_)
                | ApiError::UnsupportedMediaType(_)
                | ApiError::PayloadTooLarge { .. }
                | ApiError::Timeout(_)
        )
    }

    /// The `outcome` label of `yourlogic_ingress_requests_total`.
    pub fn outcome(&self) -> &'static str {
        match self {
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::PayloadTooLarge { .. } | ApiError::TooLargeToStore { .. } => "too_large",
            ApiError::Malformed(_) => "malformed",
            ApiError::Invalid(_) => "invalid",
            ApiError::Expired(_) => "expired",
            ApiError::Timeout(_) => "timeout",
            ApiError::Unavailable(_) => "unavailable",
        }
    }
}

impl ApiError {
    /// The message for the sender: everything but the internal reason of a 503, which stays in
    /// the logs.
    pub fn public_message(&self) -> String {
        match self {
            ApiError::Unavailable(_) => {
                "the event could not be stored durably; retry shortly".to_string()
            }
            other => other.to_string(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"error": {"code": self.code(), "message": self.public_message()}});
        let mut response = (self.status(), Json(body)).into_response();
        let headers = response.headers_mut();
        if self.leaves_body_unread() {
            headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        match self {
            ApiError::Unauthorized(_) => {
                headers.insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"yourlogic\""),
                );
            }
            ApiError::Unavailable(_) => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            }
            _ => {}
        }
        response
    }
}
