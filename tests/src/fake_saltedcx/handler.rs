//! The callback endpoint of the fake: authenticate, record, answer as scripted.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde_json::{Value, json};
use tokio::sync::watch;

use super::Shared;
use super::behaviour::{Callback, Outcome, Reply};
use crate::killable::ConnHandle;

/// State of one listening period of the fake (see `FakeSaltedCx::pause`).
#[derive(Clone)]
pub(super) struct AppState {
    pub(super) shared: Arc<Shared>,
    /// Becomes `true` when the fake goes offline: delayed and hung calls are cut then.
    pub(super) offline: watch::Receiver<bool>,
}

/// `POST /api/v1/live/your-logic/accounts/{accountId}/conversations/{conversationPid}`.
pub(super) async fn callback(
    State(app): State<AppState>,
    ConnectInfo(conn): ConnectInfo<ConnHandle>,
    Path((account_id, conversation_pid)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let conversation = conversation_pid.clone();
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let parsed = serde_json::from_slice::<Value>(&body);
    let body_json = match &parsed {
        Ok(value) => value.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&body).into_owned()),
    };
    let request_id = parsed.as_ref().ok().and_then(|v| {
        v.get("requestId")
            .or_else(|| v.get("request"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    });
    let authorized = app.shared.authorizes(authorization.as_deref());
    let index = app.shared.record(Callback {
        account_id,
        conversation_pid,
        request_id: request_id.clone(),
        body: body_json,
        authorization,
        received_at: Utc::now(),
        status_returned: 0,
        outcome: Outcome::Pending,
    });

    if !authorized {
        return respond(
            &app,
            index,
            401,
            error_body("unauthorized", "missing or wrong bearer token"),
        );
    }
    if let Err(e) = parsed {
        return respond(
            &app,
            index,
            400,
            error_body("malformed_json", &e.to_string()),
        );
    }
    if request_id.is_none() {
        return respond(
            &app,
            index,
            400,
            error_body("invalid", "requestId is missing"),
        );
    }

    let (reply, delay) = app.shared.next_reply(&conversation);
    let mut offline = app.offline.clone();
    if !delay.is_zero() {
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = offline.wait_for(|off| *off) => return cut(&app, &conn, index),
        }
    }
    match reply {
        Reply::Respond { status, body } => respond(&app, index, status, body),
        Reply::Reset => cut(&app, &conn, index),
        Reply::Hang => {
            app.shared.finish(index, 0, Outcome::Hung);
            // Both arms end the same way: when offline, or if the sender is gone.
            let _ = offline.wait_for(|off| *off).await;
            conn.kill();
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}

fn error_body(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

fn respond(app: &AppState, index: usize, status: u16, body: Value) -> Response {
    app.shared.finish(index, status, Outcome::Responded(status));
    let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = (code, Json(body)).into_response();
    if status == 401 {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer"),
        );
    }
    response
}

/// Resets the connection; the returned response is never written (the write fails).
fn cut(app: &AppState, conn: &ConnHandle, index: usize) -> Response {
    app.shared.finish(index, 0, Outcome::Reset);
    conn.kill();
    StatusCode::SERVICE_UNAVAILABLE.into_response()
}
