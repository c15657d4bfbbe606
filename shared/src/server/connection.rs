//! Serving one connection: hyper's HTTP/1.1 with the header and idle timeouts, closing it when
//! asked (eviction, shutdown), and deciding after each response whether it may serve another:
//!
//! - an error response (4xx, 5xx) to a client that did not prove a token closes it (nginx does
//!   the same after most errors): a client without a token cannot keep a slot by looping cheap
//!   requests that fail;
//! - every connection serves at most [`MAX_REQUESTS`] requests and stays open at most
//!   [`MAX_AGE`] (nginx's `keepalive_requests` and `keepalive_time`): a slot is never held for
//!   ever, whoever holds it.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Response, header};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use super::registry::{Connection, Phase};
use super::tracked::Tracked;
use super::{Authenticated, Limits, Peer, closed};

/// Most requests one connection serves; the response to the last says `Connection: close`.
pub const MAX_REQUESTS: u32 = 1000;
/// Longest a connection stays open: the first response after this says `Connection: close`.
pub const MAX_AGE: Duration = Duration::from_secs(3600);

/// Serves one connection until it ends, enforcing the header and idle timeouts and closing it
/// when asked (eviction, shutdown).
pub(super) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    state: &Arc<Connection>,
    http: &hyper::server::conn::http1::Builder,
    router: Router,
    limits: Limits,
    stopping: &CancellationToken,
) {
    let opened = Instant::now();
    let served_requests = AtomicU32::new(0);
    let service = {
        let state = state.clone();
        hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            let state = state.clone();
            let router = router.clone();
            let served = served_requests
                .fetch_add(1, Ordering::Relaxed)
                .saturating_add(1);
            async move {
                state.request_started();
                let mut request = request.map(Body::new);
                request.extensions_mut().insert(Peer(peer));
                let response = router.oneshot(request).await;
                let mut response = match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                };
                if last_on_this_connection(&response, served, opened.elapsed()) {
                    response
                        .headers_mut()
                        .insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                state.request_finished();
                Ok::<_, Infallible>(response)
            }
        })
    };
    let io = TokioIo::new(Tracked::new(stream, state.clone()));
    let mut served = std::pin::pin!(http.serve_connection(io, service));
    let mut closing = false;
    loop {
        let (phase, lasted) = state.phase();
        let timeout = timeout_of(phase, &limits);
        // Looked at again when the timeout would run out, and at least every header timeout
        // (the phase may change meanwhile: an idle connection may start a request head).
        let wait = timeout
            .map_or(limits.header_timeout, |t| t.saturating_sub(lasted))
            .min(limits.header_timeout);
        tokio::select! {
            result = served.as_mut() => {
                if let Err(err) = result {
                    tracing::debug!(%peer, error = %err, "connection ended with an error");
                }
                return;
            }
            () = state.close.notified(), if !closing => {
                if state.abort.load(Ordering::Relaxed) {
                    return;
                }
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            () = stopping.cancelled(), if !closing => {
                closing = true;
                served.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep(wait), if !closing => {
                let (phase, lasted) = state.phase();
                if timeout_of(phase, &limits).is_some_and(|limit| lasted >= limit) {
                    if phase == Phase::Head {
                        // Slow or silent client: dropped without a response.
                        closed(limits.listener, "header_timeout");
                        return;
                    }
                    closed(limits.listener, "idle_timeout");
                    closing = true;
                    served.as_mut().graceful_shutdown();
                }
            }
        }
    }
}

/// Whether the connection must close after `response`, the `served`-th on a connection open
/// for `age`: an error for a client that proved no token, or the connection's budget spent.
fn last_on_this_connection<B>(response: &Response<B>, served: u32, age: Duration) -> bool {
    let status = response.status();
    let failed = status.is_client_error() || status.is_server_error();
    (failed && response.extensions().get::<Authenticated>().is_none())
        || served >= MAX_REQUESTS
        || age >= MAX_AGE
}

/// How long a connection may stay in `phase`.
fn timeout_of(phase: Phase, limits: &Limits) -> Option<Duration> {
    match phase {
        Phase::Head => Some(limits.header_timeout),
        Phase::Idle => Some(limits.idle_timeout),
        Phase::Busy | Phase::Closing => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    fn response(status: StatusCode, authenticated: bool) -> Response<()> {
        let mut response = Response::new(());
        *response.status_mut() = status;
        if authenticated {
            response.extensions_mut().insert(Authenticated);
        }
        response
    }

    #[test]
    fn errors_close_the_connection_of_clients_without_a_token_only() {
        let young = Duration::from_secs(1);
        assert!(last_on_this_connection(
            &response(StatusCode::NOT_FOUND, false),
            1,
            young
        ));
        assert!(last_on_this_connection(
            &response(StatusCode::SERVICE_UNAVAILABLE, false),
            1,
            young
        ));
        assert!(!last_on_this_connection(
            &response(StatusCode::OK, false),
            1,
            young
        ));
        assert!(!last_on_this_connection(
            &response(StatusCode::BAD_REQUEST, true),
            1,
            young
        ));
        assert!(!last_on_this_connection(
            &response(StatusCode::ACCEPTED, true),
            1,
            young
        ));
    }

    #[test]
    fn every_connection_has_a_request_budget_and_a_longest_life() {
        let ok = response(StatusCode::ACCEPTED, true);
        assert!(!last_on_this_connection(
            &ok,
            MAX_REQUESTS - 1,
            Duration::ZERO
        ));
        assert!(last_on_this_connection(&ok, MAX_REQUESTS, Duration::ZERO));
        assert!(last_on_this_connection(&ok, 1, MAX_AGE));
    }
}
