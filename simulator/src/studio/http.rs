//! The studio's HTTP API and page. Everything is JSON except the page itself (one HTML file,
//! one script, one style sheet, compiled into the binary; no build step):
//!
//! - `GET /`, `/studio.js`, `/studio.css`: the page;
//! - `GET /api/playbook`: the playbook's status (version, validation error, languages);
//! - `GET /api/conversation`: the conversation so far, with every answer and its explanation;
//! - `POST /api/step` `{"step": {"customer": "Hi"}}`: plays one step (any case-file step);
//! - `POST /api/new` `{"language": "es"}`: starts a new conversation;
//! - `POST /api/mode` `{"mode": "pipeline"}`: `in-process`, `generative` or `pipeline`;
//! - `POST /api/replay`: plays the conversation again with the current playbook;
//! - `GET /api/export?name=...`: the conversation as a conversation-test case;
//! - the Salted CX callback route, where the workers answer in pipeline mode.
//!
//! Errors are `{"error": {"code": ..., "message": ...}}` with a 4xx status.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::Studio;
use super::session::Mode;
use crate::scenario::Step;

const PAGE: &str = include_str!("page/index.html");
const SCRIPT: &str = include_str!("page/studio.js");
const STYLE: &str = include_str!("page/studio.css");

/// What the API refuses.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("not a step: {0}")]
    BadStep(String),
    #[error("`{0}` is not a language code (e.g. en, es, pt-br)")]
    BadLanguage(String),
    #[error(
        "the pipeline mode needs a running pipeline: start the studio with --ingress-url \
         (STUDIO_INGRESS_URL)"
    )]
    NoPipeline,
    #[error(
        "the generative mode needs a model server: start the studio with --generative-url and \
         --generative-model (GENERATIVE_URL, GENERATIVE_MODEL)"
    )]
    NoModel,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = match &self {
            ApiError::BadStep(_) => (StatusCode::BAD_REQUEST, "bad_step"),
            ApiError::BadLanguage(_) => (StatusCode::BAD_REQUEST, "bad_language"),
            ApiError::NoPipeline => (StatusCode::CONFLICT, "no_pipeline"),
            ApiError::NoModel => (StatusCode::CONFLICT, "no_model"),
        };
        let body = json!({"error": {"code": code, "message": self.to_string()}});
        (status, Json(body)).into_response()
    }
}

/// The studio's routes (the callback route is added by the caller).
pub fn router(studio: Arc<Studio>) -> Router {
    Router::new()
        .route(
            "/",
            get(|| async { asset("text/html; charset=utf-8", PAGE) }),
        )
        .route(
            "/studio.js",
            get(|| async { asset("text/javascript; charset=utf-8", SCRIPT) }),
        )
        .route(
            "/studio.css",
            get(|| async { asset("text/css; charset=utf-8", STYLE) }),
        )
        .route("/api/playbook", get(playbook))
        .route("/api/conversation", get(conversation))
        .route("/api/step", post(step))
        .route("/api/new", post(new_conversation))
        .route("/api/mode", post(mode))
        .route("/api/replay", post(replay))
        .route("/api/export", get(export))
        .with_state(studio)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

async fn playbook(State(studio): State<Arc<Studio>>) -> Json<Value> {
    Json(json!(studio.source.status()))
}

async fn conversation(State(studio): State<Arc<Studio>>) -> Json<Value> {
    Json(studio.conversation_json().await)
}

#[derive(Deserialize)]
struct StepRequest {
    step: Value,
}

/// A step in the case-file form: `{"customer": "Hi"}`, `{"completed": true}` or `"completed"`.
pub fn parse_step(value: Value) -> Result<Step, ApiError> {
    let value = match value {
        Value::Object(map)
            if map.get("completed") == Some(&Value::Bool(true)) && map.len() == 1 =>
        {
            Value::String("completed".into())
        }
        other => other,
    };
    let step: Step = serde_json::from_value(value).map_err(|e| ApiError::BadStep(e.to_string()))?;
    let empty = match &step {
        Step::Customer(t) | Step::CustomerSilent(t) | Step::Agent(t) | Step::AgentJoins(t) => {
            t.trim().is_empty()
        }
        _ => false,
    };
    if empty {
        return Err(ApiError::BadStep("the text is empty".into()));
    }
    Ok(step)
}

async fn step(
    State(studio): State<Arc<Studio>>,
    Json(request): Json<StepRequest>,
) -> Result<Json<Value>, ApiError> {
    let step = parse_step(request.step)?;
    studio.play(step).await;
    Ok(Json(studio.conversation_json().await))
}

#[derive(Deserialize)]
struct NewRequest {
    language: String,
}

async fn new_conversation(
    State(studio): State<Arc<Studio>>,
    Json(request): Json<NewRequest>,
) -> Result<Json<Value>, ApiError> {
    let language = request.language.trim();
    if !worker::logic::playbook::language::valid_code(language) {
        return Err(ApiError::BadLanguage(request.language));
    }
    studio.new_conversation(language).await;
    Ok(Json(studio.conversation_json().await))
}

#[derive(Deserialize)]
struct ModeRequest {
    mode: Mode,
}

async fn mode(
    State(studio): State<Arc<Studio>>,
    Json(request): Json<ModeRequest>,
) -> Result<Json<Value>, ApiError> {
    if request.mode == Mode::Pipeline && studio.pipeline.is_none() {
        return Err(ApiError::NoPipeline);
    }
    if request.mode == Mode::Generative && studio.generative.is_none() {
        return Err(ApiError::NoModel);
    }
    studio.set_mode(request.mode).await;
    Ok(Json(studio.conversation_json().await))
}

async fn replay(State(studio): State<Arc<Studio>>) -> Json<Value> {
    studio.replay().await;
    Json(studio.conversation_json().await)
}

#[derive(Deserialize)]
struct ExportQuery {
    name: Option<String>,
}

async fn export(
    State(studio): State<Arc<Studio>>,
    Query(query): Query<ExportQuery>,
) -> Json<Value> {
    let name = query
        .name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or_else(|| "a conversation tried in the studio".into());
    Json(json!({"name": name, "toml": studio.export(&name).await}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_read_in_the_case_file_form_and_empty_texts_refused() {
        let step = parse_step(json!({"customer": "Hi"})).expect("customer");
        assert_eq!(step, Step::Customer("Hi".into()));
        assert_eq!(
            parse_step(json!({"completed": true})).expect("completed"),
            Step::Completed
        );
        let leave = parse_step(json!({"agent_leaves": {"outcome": "ACCEPTED", "reason": "Done"}}))
            .expect("agent leaves");
        assert!(matches!(leave, Step::AgentLeaves(l) if l.outcome == "ACCEPTED"));
        assert!(matches!(
            parse_step(json!({"customer": "  "})),
            Err(ApiError::BadStep(_))
        ));
        assert!(matches!(
            parse_step(json!({"shout": "hi"})),
            Err(ApiError::BadStep(_))
        ));
    }
}
