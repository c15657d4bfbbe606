//! The operational endpoints every service serves: `/healthz` (the process is alive), `/readyz`
//! (it can do its job) and `/metrics` (Prometheus text).

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures::future::BoxFuture;

/// Answers whether the service can do its job now; `Err` carries the reason shown by `/readyz`.
pub trait Readiness: Send + Sync + 'static {
    fn check(&self) -> BoxFuture<'_, Result<(), String>>;
}

/// The three operational routes, for merging into a service's router.
pub fn routes(readiness: Arc<dyn Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(readiness)
}

async fn healthz() -> impl IntoResponse {
    (StatusCode::OK, "ok\n")
}

async fn readyz(State(readiness): State<Arc<dyn Readiness>>) -> Response {
    match readiness.check().await {
        Ok(()) => (StatusCode::OK, "ready\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("not ready: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics() -> Response {
    let body = crate::telemetry::metrics_handle().render();
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    )
        .into_response()
}
