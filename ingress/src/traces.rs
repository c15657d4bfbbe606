//! The ingress's span of one `POST /v1/events`, for distributed traces (see `shared::otel`):
//! a child of the caller's trace when the request carries a `traceparent`, with the request id,
//! the outcome and the HTTP status. With traces off the span is disabled and costs nothing.

use axum::http::{HeaderMap, StatusCode};
use shared::otel;
use tracing::Span;
use tracing::field::Empty;

/// The span of one request, continuing the caller's trace.
pub fn request_span(headers: &HeaderMap) -> Span {
    let span = tracing::info_span!(
        target: otel::SPAN_TARGET,
        "POST /v1/events",
        otel.kind = "server",
        http.request.method = "POST",
        http.route = "/v1/events",
        http.response.status_code = Empty,
        otel.status_code = Empty,
        request_id = Empty,
        outcome = Empty,
    );
    otel::propagation::continue_request(&span, headers);
    span
}

/// Records how the request ended (a 5xx marks the span failed).
pub fn record_response(
    span: &Span,
    outcome: &str,
    request_id: Option<&uuid::Uuid>,
    status: StatusCode,
) {
    if span.is_disabled() {
        return;
    }
    if let Some(request_id) = request_id {
        span.record("request_id", tracing::field::display(request_id));
    }
    span.record("outcome", outcome);
    span.record("http.response.status_code", status.as_u16());
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
}
