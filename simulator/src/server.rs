//! The simulator's Salted CX callback API:
//! `POST /api/v1/live/your-logic/accounts/{accountId}/conversations/{conversationPid}`.
//!
//! Like Salted CX it ignores (401) a call without the shared token, refuses a body that is not
//! JSON or has no `requestId` (or its alias `request`), refuses `custom` data over 1 kB, and
//! resolves the conversation's outstanding request: the callback is handed to the waiting
//! conversation with its arrival time, and answered `200 {}` at once. A callback for a request
//! that already expired gets `410`, one for a request it does not know `404`; a repeated one
//! `200` again (counted as a duplicate). Every kind is counted in [`CallbackCounters`].
//!
//! In `print_unknown` mode (the `serve` command) callbacks for conversations the simulator
//! does not drive are accepted and printed, so a hand-made event's answer can be seen.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use uuid::Uuid;

use super::registry::{Registry, Routed};

/// The callback route, in axum's path syntax.
pub const CALLBACK_ROUTE: &str =
    "/api/v1/live/your-logic/accounts/{account_id}/conversations/{conversation_pid}";

/// What the callback endpoint saw, by kind.
#[derive(Debug, Default)]
pub struct CallbackCounters {
    /// Callbacks handed to the waiting conversation.
    pub delivered: AtomicU64,
    /// Wrong or missing token (401).
    pub unauthorized: AtomicU64,
    /// Not JSON, no `requestId`, or custom data over 1 kB (400).
    pub malformed: AtomicU64,
    /// The path's account is not the simulated account (400).
    pub wrong_account: AtomicU64,
    /// Repeated callbacks for an answered request (200).
    pub duplicate: AtomicU64,
    /// First callbacks for requests that had expired unanswered (410).
    pub late: AtomicU64,
    /// Late callbacks that arrived after a later request of the conversation was answered.
    pub out_of_order: AtomicU64,
    /// Callbacks for unknown conversations or requests (404).
    pub unknown: AtomicU64,
    /// Callbacks printed in `serve` mode.
    pub printed: AtomicU64,
}

/// A plain copy of [`CallbackCounters`], for reports.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallbackCounts {
    /// Handed to the waiting conversation.
    pub delivered: u64,
    /// Wrong or missing token.
    pub unauthorized: u64,
    /// Not JSON, no `requestId`, or custom data over 1 kB.
    pub malformed: u64,
    /// For another account.
    pub wrong_account: u64,
    /// Repeated for an answered request.
    pub duplicate: u64,
    /// For requests that had expired unanswered.
    pub late: u64,
    /// Late ones after a later request was answered.
    pub out_of_order: u64,
    /// For unknown conversations or requests.
    pub unknown: u64,
    /// Printed in `serve` mode.
    pub printed: u64,
}

impl CallbackCounters {
    /// The current values.
    pub fn snapshot(&self) -> CallbackCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        CallbackCounts {
            delivered: get(&self.delivered),
            unauthorized: get(&self.unauthorized),
            malformed: get(&self.malformed),
            wrong_account: get(&self.wrong_account),
            duplicate: get(&self.duplicate),
            late: get(&self.late),
            out_of_order: get(&self.out_of_order),
            unknown: get(&self.unknown),
            printed: get(&self.printed),
        }
    }
}

struct Shared {
    token: String,
    /// The only account accepted; `None`: any.
    account_id: Option<String>,
    registry: Registry,
    counters: CallbackCounters,
    print_unknown: bool,
}

/// The callback API without a listener of its own, for a server that serves it beside other
/// routes (the studio answers the workers' callbacks on its own port).
#[derive(Clone)]
pub struct CallbackApi {
    shared: Arc<Shared>,
}

impl CallbackApi {
    /// Accepts callbacks signed with `token` for conversations of `account_id` (of any account
    /// when `None`); `print_unknown` as in [`CallbackServer::start`].
    pub fn new(token: &str, account_id: Option<&str>, print_unknown: bool) -> CallbackApi {
        CallbackApi {
            shared: Arc::new(Shared {
                token: token.to_string(),
                account_id: account_id.map(str::to_string),
                registry: Registry::default(),
                counters: CallbackCounters::default(),
                print_unknown,
            }),
        }
    }

    /// The callback route ([`CALLBACK_ROUTE`]).
    pub fn router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        Router::new()
            .route(CALLBACK_ROUTE, post(callback))
            .with_state(self.shared.clone())
    }

    /// The conversations waiting for callbacks.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// What the endpoint saw so far.
    pub fn counters(&self) -> CallbackCounts {
        self.shared.counters.snapshot()
    }
}

/// A running callback server; stops on drop.
pub struct CallbackServer {
    shared: Arc<Shared>,
    addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Drop for CallbackServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl CallbackServer {
    /// Listens on `addr` (port 0: any free port), accepting callbacks signed with `token` for
    /// conversations of `account_id` (of any account when `None`).
    pub async fn start(
        addr: SocketAddr,
        token: &str,
        account_id: Option<&str>,
        print_unknown: bool,
    ) -> Result<CallbackServer> {
        let listener = TcpListener::bind(addr).await.with_context(|| {
            format!("cannot listen for callbacks on {addr} (is another simulator running?)")
        })?;
        let addr = listener
            .local_addr()
            .context("reading the callback address")?;
        let api = CallbackApi::new(token, account_id, print_unknown);
        let app = api
            .router()
            .route("/healthz", axum::routing::get(|| async { "ok" }));
        let shared = api.shared;
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, app).await {
                tracing::error!(error = %err, "callback server failed");
            }
        });
        Ok(CallbackServer { shared, addr, task })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The value for the workers' `SALTEDCX_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The conversations waiting for callbacks.
    pub fn registry(&self) -> &Registry {
        &self.shared.registry
    }

    /// What the endpoint saw so far.
    pub fn counters(&self) -> CallbackCounts {
        self.shared.counters.snapshot()
    }
}

fn reply(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (
        status,
        axum::Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

fn ok() -> Response {
    (StatusCode::OK, axum::Json(json!({}))).into_response()
}

async fn callback(
    State(shared): State<Arc<Shared>>,
    Path((account_id, conversation_pid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let at = Instant::now();
    let counters = &shared.counters;
    let bump = |counter: &AtomicU64| counter.fetch_add(1, Ordering::Relaxed);
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if token != Some(shared.token.as_str()) {
        bump(&counters.unauthorized);
        return reply(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong bearer token",
        );
    }
    let Ok(value) = serde_json::from_slice::<Value>(&body) else {
        bump(&counters.malformed);
        return reply(
            StatusCode::BAD_REQUEST,
            "malformed_json",
            "the body is not JSON",
        );
    };
    let request_id = value
        .get("requestId")
        .or_else(|| value.get("request"))
        .and_then(Value::as_str)
        .and_then(|id| Uuid::parse_str(id).ok());
    let Some(request_id) = request_id else {
        bump(&counters.malformed);
        return reply(
            StatusCode::BAD_REQUEST,
            "invalid",
            "requestId is missing or not a UUID",
        );
    };
    for pointer in ["/conversation/custom", "/customer/custom"] {
        let size = value.pointer(pointer).map_or(0, |c| c.to_string().len());
        if size > shared::custom::CUSTOM_LIMIT_BYTES {
            bump(&counters.malformed);
            return reply(
                StatusCode::BAD_REQUEST,
                "custom_too_large",
                &format!("{pointer} is {size} bytes, over 1 kB"),
            );
        }
    }
    let foreign = shared
        .account_id
        .as_ref()
        .is_some_and(|only| *only != account_id);
    if foreign && !shared.print_unknown {
        bump(&counters.wrong_account);
        return reply(StatusCode::BAD_REQUEST, "wrong_account", "no such account");
    }
    let printed = shared.print_unknown.then(|| value.clone());
    let routed = shared
        .registry
        .route(&conversation_pid, request_id, at, value);
    match routed {
        Routed::Delivered => {
            bump(&counters.delivered);
            ok()
        }
        Routed::Duplicate => {
            bump(&counters.duplicate);
            ok()
        }
        Routed::Late | Routed::OutOfOrder => {
            bump(&counters.late);
            if routed == Routed::OutOfOrder {
                bump(&counters.out_of_order);
            }
            reply(
                StatusCode::GONE,
                "expired",
                "the request expired before this answer",
            )
        }
        Routed::Unknown => match printed {
            Some(body) => {
                bump(&counters.printed);
                super::transcript::print_callback(&account_id, &conversation_pid, &body);
                ok()
            }
            None => {
                bump(&counters.unknown);
                reply(
                    StatusCode::NOT_FOUND,
                    "unknown_request",
                    "no such outstanding request",
                )
            }
        },
    }
}
