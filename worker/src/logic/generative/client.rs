//! A client for OpenAI-compatible chat completions (`POST {base}/chat/completions`), as served by
//! OpenAI, Azure OpenAI, vLLM, llama.cpp's server and Ollama.
//!
//! One request per answer, not streamed: the answer is only useful once complete, and the whole
//! exchange must fit in the event's deadline anyway. The base URL may carry a query (Azure's
//! `?api-version=...`), kept on the request URL. The key is sent as `Authorization: Bearer` or,
//! for Azure, as `api-key`; it never appears in logs or errors.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName, HeaderValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use shared::secret::Secret;

use crate::logic::body::{BodyError, read_capped};

/// Largest response body read from the model server.
pub const MAX_RESPONSE_BYTES: usize = 1024 * 1024;

/// How the key is sent (`GENERATIVE_API_KEY_HEADER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum KeyHeader {
    /// `Authorization: Bearer <key>` (OpenAI, vLLM, llama.cpp, Ollama, most gateways).
    #[default]
    Authorization,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKey,
}

/// The client could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("GENERATIVE_URL `{url}` is not a valid http(s) URL: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("GENERATIVE_API_KEY contains characters that cannot be sent in an HTTP header")]
    BadKey,
    #[error("cannot create the HTTP client for the generative step: {0}")]
    Http(String),
}

/// Why a completion did not come back.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    /// No answer within the time given.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    /// The server could not be reached, or the connection broke.
    #[error("the model server is unreachable")]
    Unavailable,
    /// The server answered with an error status.
    #[error("the model server answered HTTP {0}")]
    Status(u16),
    /// The answer is not a chat completion.
    #[error("the model server's answer is not a chat completion: {0}")]
    Malformed(String),
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChatMessage {
    pub role: &'static str,
    pub content: String,
}

impl ChatMessage {
    pub fn system(content: impl Into<String>) -> Self {
        Self {
            role: "system",
            content: content.into(),
        }
    }
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: "user",
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: "assistant",
            content: content.into(),
        }
    }
}

/// What the model was asked.
#[derive(Debug, Clone, Serialize)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<ChatMessage>,
    pub max_tokens: u32,
    pub temperature: f32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Value>,
    pub stream: bool,
}

/// A call of one of the offered tools.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub name: String,
    /// The arguments as the model wrote them (a JSON object, usually).
    pub arguments: String,
}

/// Tokens the server reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
pub struct Usage {
    #[serde(default)]
    pub prompt_tokens: u64,
    #[serde(default)]
    pub completion_tokens: u64,
}

/// The model's answer.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Completion {
    pub content: Option<String>,
    pub tool_calls: Vec<ToolCall>,
    pub usage: Option<Usage>,
}

/// Sends chat-completion requests to one server and model.
#[derive(Debug, Clone)]
pub struct ChatClient {
    http: reqwest::Client,
    url: reqwest::Url,
    key: Option<(HeaderName, HeaderValue)>,
}

impl ChatClient {
    /// A client for the server at `base_url` (ending before `/chat/completions`).
    pub fn new(
        base_url: &str,
        key: Option<&Secret>,
        key_header: KeyHeader,
    ) -> Result<Self, ClientError> {
        let bad = |reason: String| ClientError::BadUrl {
            url: shared::secret::redact_url(base_url),
            reason,
        };
        let mut url = reqwest::Url::parse(base_url).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad(format!("the scheme is `{}`", url.scheme())));
        }
        let path = format!("{}/chat/completions", url.path().trim_end_matches('/'));
        url.set_path(&path);
        let key = match key.map(Secret::expose).filter(|k| !k.is_empty()) {
            None => None,
            Some(key) => {
                let (name, value) = match key_header {
                    KeyHeader::Authorization => (AUTHORIZATION, format!("Bearer {key}")),
                    KeyHeader::ApiKey => (HeaderName::from_static("api-key"), key.to_string()),
                };
                let mut value = HeaderValue::from_str(&value).map_err(|_| ClientError::BadKey)?;
                value.set_sensitive(true);
                Some((name, value))
            }
        };
        let http = reqwest::Client::builder()
            .user_agent(concat!("yourlogic-worker/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(Duration::from_secs(2))
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| ClientError::Http(e.to_string()))?;
        Ok(Self { http, url, key })
    }

    /// The request URL (without the key).
    pub fn url(&self) -> &reqwest::Url {
        &self.url
    }

    /// Asks for one completion, waiting at most `timeout`.
    pub async fn complete(
        &self,
        request: &ChatRequest,
        timeout: Duration,
    ) -> Result<Completion, ChatError> {
        let mut builder = self
            .http
            .post(self.url.clone())
            .timeout(timeout)
            .header(CONTENT_TYPE, "application/json")
            .json(request);
        if let Some((name, value)) = &self.key {
            builder = builder.header(name.clone(), value.clone());
        }
        let exchange = async {
            let response = builder.send().await.map_err(|e| failed(&e, timeout))?;
            let status = response.status();
            let body = read_capped(response, MAX_RESPONSE_BYTES)
                .await
                .map_err(|e| match e {
                    BodyError::Read(e) => failed(&e, timeout),
                    BodyError::TooLarge(max) => {
                        ChatError::Malformed(format!("larger than {max} bytes"))
                    }
                })?;
            if !status.is_success() {
                return Err(ChatError::Status(status.as_u16()));
            }
            parse_completion(&body)
        };
        // reqwest's timeout covers the whole exchange too; this one also bounds the body read
        // and the parsing, whatever the client does.
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(ChatError::Timeout(timeout)))
    }
}

fn failed(err: &reqwest::Error, timeout: Duration) -> ChatError {
    if err.is_timeout() {
        ChatError::Timeout(timeout)
    } else {
        ChatError::Unavailable
    }
}

#[derive(Deserialize)]
struct WireResponse {
    choices: Vec<WireChoice>,
    #[serde(default)]
    usage: Option<Usage>,
}

#[derive(Deserialize)]
struct WireChoice {
    message: WireMessage,
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    content: Option<String>,
    #[serde(default)]
    tool_calls: Vec<WireToolCall>,
}

#[derive(Deserialize)]
struct WireToolCall {
    function: WireFunction,
}

#[derive(Deserialize)]
struct WireFunction {
    name: String,
    #[serde(default)]
    arguments: Value,
}

/// Parses a chat-completions response body.
pub fn parse_completion(body: &[u8]) -> Result<Completion, ChatError> {
    let wire: WireResponse =
        serde_json::from_slice(body).map_err(|e| ChatError::Malformed(e.to_string()))?;
    let Some(choice) = wire.choices.into_iter().next() else {
        return Err(ChatError::Malformed("no choices".into()));
    };
    let tool_calls = choice
        .message
        .tool_calls
        .into_iter()
        .map(|call| ToolCall {
            name: call.function.name,
            // Arguments are a JSON string in the OpenAI format; some servers send an object.
            arguments: match call.function.arguments {
                Value::String(text) => text,
                Value::Null => String::new(),
                other => other.to_string(),
            },
        })
        .collect();
    Ok(Completion {
        content: choice.message.content,
        tool_calls,
        usage: wire.usage,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_completion_with_content_tool_calls_and_usage_is_parsed() {
        let body = br#"{"id":"x","choices":[{"index":0,"finish_reason":"stop","message":{"role":"assistant",
            "content":"Hello","tool_calls":[{"id":"c1","type":"function","function":{"name":"escalate_to_human",
            "arguments":"{\"reason\":\"angry\"}"}}]}}],"usage":{"prompt_tokens":12,"completion_tokens":3,"total_tokens":15}}"#;
        let completion = parse_completion(body).expect("valid");
        assert_eq!(completion.content.as_deref(), Some("Hello"));
        assert_eq!(completion.tool_calls[0].name, "escalate_to_human");
        assert_eq!(completion.tool_calls[0].arguments, r#"{"reason":"angry"}"#);
        assert_eq!(
            completion.usage,
            Some(Usage {
                prompt_tokens: 12,
                completion_tokens: 3
            })
        );
    }

    #[test]
    fn arguments_sent_as_an_object_are_kept_as_json_text() {
        let body = br#"{"choices":[{"message":{"content":null,"tool_calls":[{"function":{"name":"f","arguments":{"reason":"x"}}}]}}]}"#;
        let completion = parse_completion(body).expect("valid");
        assert_eq!(completion.tool_calls[0].arguments, r#"{"reason":"x"}"#);
        assert_eq!(completion.content, None);
    }

    #[test]
    fn anything_but_a_completion_is_malformed() {
        for body in [
            &b"not json"[..],
            b"{}",
            br#"{"choices":[]}"#,
            br#"{"choices":[{}]}"#,
        ] {
            assert!(matches!(
                parse_completion(body),
                Err(ChatError::Malformed(_))
            ));
        }
    }

    #[test]
    fn the_request_url_keeps_the_base_path_and_query() {
        let client = ChatClient::new(
            "https://r.openai.azure.com/openai/deployments/gpt/?api-version=2024-10-21",
            None,
            KeyHeader::ApiKey,
        )
        .expect("valid");
        assert_eq!(
            client.url().as_str(),
            "https://r.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
        );
        let err = ChatClient::new("ftp://x", None, KeyHeader::Authorization).expect_err("bad");
        assert!(err.to_string().contains("scheme is `ftp`"), "{err}");
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let key = Secret::new("sk-very-secret");
        let client = ChatClient::new(
            "http://127.0.0.1:1/v1",
            Some(&key),
            KeyHeader::Authorization,
        )
        .expect("valid");
        assert!(!format!("{client:?}").contains("sk-very-secret"));
    }
}
