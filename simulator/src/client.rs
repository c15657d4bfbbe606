//! Sending events to the ingress as Salted CX does: `POST` with `Authorization: Bearer <token>`
//! and `Content-Type: application/json`, on pooled keep-alive connections.

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use serde_json::Value;

/// What became of one POST.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Posted {
    /// `202` with `"status":"accepted"`.
    Accepted,
    /// `202` with `"status":"duplicate"` (the requestId was already accepted).
    Duplicate,
    /// Another status: its error kind, e.g. `http_422_invalid_event`.
    Refused {
        status: u16,
        kind: String,
        message: String,
    },
    /// No HTTP answer: `connect`, `timeout` or `io`.
    Failed { kind: &'static str, message: String },
}

impl Posted {
    /// Whether trying again later may succeed (503, 429, or no answer at all).
    pub fn retryable(&self) -> bool {
        match self {
            Posted::Refused { status, .. } => *status == 503 || *status == 429,
            Posted::Failed { .. } => true,
            _ => false,
        }
    }

    /// The error kind for statistics, if it is an error.
    pub fn error_kind(&self) -> Option<&str> {
        match self {
            Posted::Refused { kind, .. } => Some(kind),
            Posted::Failed { kind, .. } => Some(kind),
            _ => None,
        }
    }
}

/// A client of the ingress.
#[derive(Clone)]
pub struct IngressClient {
    http: reqwest::Client,
    url: reqwest::Url,
    authorization: String,
}

impl IngressClient {
    /// A client posting to `url` (the full `/v1/events` URL) with `token`.
    pub fn new(url: &str, token: &str) -> Result<IngressClient> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(30))
            .connect_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(10))
            .tcp_nodelay(true)
            .user_agent("saltedcx-sim")
            .build()?;
        Ok(IngressClient {
            http,
            url: reqwest::Url::parse(url)
                .with_context(|| format!("`{url}` is not a valid ingress URL"))?,
            authorization: format!("Bearer {token}"),
        })
    }

    /// The URL events go to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Fails with a helpful message when nothing answers at the ingress URL, or when it
    /// refuses the token.
    pub async fn check_reachable(&self) -> Result<()> {
        // An empty object is refused (422): any HTTP answer but 401 proves a usable ingress.
        match self.post(Bytes::from_static(b"{}")).await {
            Posted::Failed { message, .. } => Err(anyhow::anyhow!(message)).with_context(|| {
                format!(
                    "the ingress at {} does not answer; start the stack first (scripts/run-local.sh)",
                    self.url()
                )
            }),
            Posted::Refused { status: 401, .. } => anyhow::bail!(
                "the ingress at {} refused the token (401): give the simulator the ingress's \
                 SALTEDCX_TOKEN (--token)",
                self.url()
            ),
            _ => Ok(()),
        }
    }

    /// Posts one event body.
    pub async fn post(&self, body: Bytes) -> Posted {
        let sent = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::AUTHORIZATION, &self.authorization)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(err) => return failed(&err),
        };
        let status = response.status().as_u16();
        match response.bytes().await {
            Ok(bytes) => classify(status, &bytes),
            Err(err) => failed(&err),
        }
    }

    /// Where a conversation's own connection posts (see [`super::dedicated`]): the ingress
    /// address resolved now, once.
    pub async fn dedicated_target(&self) -> Result<super::dedicated::Target> {
        let host = self.url.host_str().context("the ingress URL has no host")?;
        let port = self
            .url
            .port_or_known_default()
            .context("the ingress URL has no port")?;
        let addr = tokio::net::lookup_host((host, port))
            .await
            .with_context(|| format!("cannot resolve {host}"))?
            .next()
            .with_context(|| format!("{host} has no address"))?;
        let host_header = match self.url.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_string(),
        };
        Ok(super::dedicated::Target {
            addr,
            host: host_header.parse().context("ingress host")?,
            path: self.url.path().to_string(),
            authorization: self.authorization.parse().context("token")?,
        })
    }
}

/// What an ingress answer means: `202` accepted or duplicate, anything else refused with the
/// error code of its JSON body.
pub fn classify(status: u16, body: &[u8]) -> Posted {
    let json: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    if status == 202 {
        return match json.get("status").and_then(Value::as_str) {
            Some("duplicate") => Posted::Duplicate,
            _ => Posted::Accepted,
        };
    }
    let code = json
        .pointer("/error/code")
        .and_then(Value::as_str)
        .unwrap_or("error");
    let message = json
        .pointer("/error/message")
        .and_then(Value::as_str)
        .map_or_else(
            || String::from_utf8_lossy(body).chars().take(200).collect(),
            str::to_owned,
        );
    Posted::Refused {
        status,
        kind: format!("http_{status}_{code}"),
        message,
    }
}

fn failed(err: &reqwest::Error) -> Posted {
    let kind = if err.is_connect() {
        "connect"
    } else if err.is_timeout() {
        "timeout"
    } else {
        "io"
    };
    Posted::Failed {
        kind,
        message: format!("{err:#}"),
    }
}

/// How one conversation reaches the ingress.
pub enum Poster {
    /// Through a pool shared by all conversations.
    Shared(IngressClient),
    /// Through a connection of its own, as Salted CX does.
    Own(super::dedicated::Dedicated),
}

impl Poster {
    /// Posts one event body.
    pub async fn post(&mut self, body: Bytes) -> Posted {
        match self {
            Poster::Shared(client) => client.post(body).await,
            Poster::Own(connection) => connection.post(body).await,
        }
    }
}
