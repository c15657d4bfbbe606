//! Delivering answers to Salted CX: `POST {api}/api/v1/live/your-logic/accounts/{accountId}/
//! conversations/{conversationPid}` with the bearer token, retried with backoff (connection
//! errors, timeouts, 5xx, 429) while time remains before the deadline and at most
//! `max_attempts` times, never after the deadline. Redirects are not followed (a redirect would
//! carry the token to another URL), and error texts never contain the URL.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use chrono::{DateTime, Utc};
use reqwest::Url;
use shared::answer::{Answer, callback_path};
use shared::retry::{Backoff, Failure, GaveUp, Limits, retry};
use shared::secret::Secret;
use shared::telemetry::names;
use tracing::Instrument;

/// Where and how callbacks are sent.
#[derive(Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    api_url: String,
    /// The API base URLs parsed so far (one per region when `api_url` has `{region}`): parsing
    /// a URL (its host through IDNA) for every callback cost measurable CPU per event.
    bases: Arc<Mutex<HashMap<String, Url>>>,
    token: Secret,
    attempt_timeout: Duration,
    margin: Duration,
    max_attempts: u32,
}

/// Where an answer goes.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    pub account_id: &'a str,
    pub region: Option<&'a str>,
    pub conversation: &'a str,
}

/// A delivered answer.
#[derive(Debug, Clone, Copy)]
pub struct Delivered {
    pub status: u16,
    pub attempts: u32,
    pub accepted_at: DateTime<Utc>,
}

/// Why an answer was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    /// The deadline (minus the margin) passed before any attempt succeeded.
    #[error("deadline passed after {attempts} attempt(s); last error: {last_error}")]
    DeadlinePassed { attempts: u32, last_error: String },
    /// Every allowed attempt failed (connection errors, timeouts, 5xx, 429).
    #[error("callback failed {attempts} times; last error: {last_error}")]
    Unreachable { attempts: u32, last_error: String },
    /// Salted CX refused the answer with a status other than 2xx, 5xx or 429 (a 4xx, or a
    /// redirect): retrying cannot help.
    #[error("callback rejected with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The callback URL cannot be built from this event.
    #[error("cannot build the callback URL: {0}")]
    NoUrl(String),
    /// The answer cannot be written as JSON (a logic's custom data that serde cannot write).
    #[error("the answer cannot be written as JSON: {0}")]
    Unserialisable(#[source] serde_json::Error),
}

/// Most API base URLs remembered (one per region).
const MAX_BASES: usize = 64;

/// Pauses between attempts: about 25 ms, 50 ms, 100 ms, ... at most 800 ms.
fn backoff() -> Backoff {
    Backoff::new(Duration::from_millis(25), Duration::from_millis(800))
}

impl Deliverer {
    /// A deliverer with a pooled HTTP client.
    pub fn new(
        api_url: String,
        token: Secret,
        attempt_timeout: Duration,
        margin: Duration,
        max_attempts: u32,
    ) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(1024)
            .connect_timeout(Duration::from_secs(2))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("yourlogic-worker/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            http,
            api_url,
            bases: Arc::default(),
            token,
            attempt_timeout,
            margin,
            max_attempts: max_attempts.max(1),
        })
    }

    /// The callback URL for `target`.
    pub fn url(&self, target: &Target<'_>) -> Result<Url, DeliveryError> {
        let region = if self.api_url.contains("{region}") {
            target
                .region
                .filter(|r| {
                    !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                .ok_or_else(|| {
                    DeliveryError::NoUrl("the event has no usable `region` for the API URL".into())
                })?
        } else {
            ""
        };
        let mut url = self.base(region)?;
        let path = format!(
            "{}{}",
            url.path().trim_end_matches('/'),
            callback_path(target.account_id, target.conversation)
        );
        url.set_path(&path);
        Ok(url)
    }

    /// The API base URL for `region` (empty when the URL has no `{region}`), parsed once.
    fn base(&self, region: &str) -> Result<Url, DeliveryError> {
        let mut bases = self
            .bases
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(base) = bases.get(region) {
            return Ok(base.clone());
        }
        let base = Url::parse(&self.api_url.replace("{region}", region)).map_err(|err| {
            DeliveryError::NoUrl(format!("SALTEDCX_API_URL is not a usable URL: {err}"))
        })?;
        // Regions are DNS labels (and with SALTEDCX_REGIONS a few): the bound only guards
        // against events published around the ingress.
        if bases.len() >= MAX_BASES {
            bases.clear();
        }
        bases.insert(region.to_string(), base.clone());
        Ok(base)
    }

    /// The latest moment an attempt may start for `deadline`.
    pub fn cutoff(&self, deadline: DateTime<Utc>) -> DateTime<Utc> {
        deadline - chrono::TimeDelta::from_std(self.margin).unwrap_or_default()
    }

    /// Sends `answer`, retrying while time remains before `deadline`.
    pub async fn deliver(
        &self,
        target: &Target<'_>,
        answer: &Answer,
        deadline: DateTime<Utc>,
    ) -> Result<Delivered, DeliveryError> {
        let url = self.url(target)?;
        let body = serde_json::to_vec(answer)
            .map(Bytes::from)
            .map_err(DeliveryError::Unserialisable)?;
        let cutoff = self.cutoff(deadline);
        let left = shared::deadline::remaining(cutoff, Utc::now());
        if left.is_zero() {
            return Err(DeliveryError::DeadlinePassed {
                attempts: 0,
                last_error: "no time left for an attempt".into(),
            });
        }
        let outcome = retry(
            backoff(),
            Limits::until(tokio::time::Instant::now() + left),
            |number| self.attempt(url.clone(), &body, cutoff, number),
        )
        .await;
        outcome.map_err(|gave_up| match gave_up {
            GaveUp::Permanent(error) | GaveUp::Deadline(error) => error,
            GaveUp::Cancelled(error) => error.unwrap_or(DeliveryError::DeadlinePassed {
                attempts: 0,
                last_error: "cancelled".into(),
            }),
        })
    }

    /// One attempt. A transient failure carries "deadline passed" as the error to report if no
    /// time is left for another; after the last allowed attempt it is permanent (unreachable).
    async fn attempt(
        &self,
        url: Url,
        body: &Bytes,
        cutoff: DateTime<Utc>,
        number: u32,
    ) -> Result<Delivered, Failure<DeliveryError>> {
        let remaining = shared::deadline::remaining(cutoff, Utc::now());
        if remaining.is_zero() {
            return Err(Failure::Permanent(DeliveryError::DeadlinePassed {
                attempts: number - 1,
                last_error: "no time left for another attempt".into(),
            }));
        }
        let started = Instant::now();
        // Traces only (disabled, and free, when traces are off).
        let span = tracing::info_span!(
            target: shared::otel::SPAN_TARGET,
            "callback",
            otel.kind = "client",
            attempt = number,
            http.request.method = "POST",
            http.response.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let response = self
            .http
            .post(url)
            .bearer_auth(self.token.expose())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .timeout(self.attempt_timeout.min(remaining))
            .body(body.clone())
            .send()
            .instrument(span.clone())
            .await;
        metrics::histogram!(names::CALLBACK_SECONDS).record(started.elapsed().as_secs_f64());
        let last_error = match response {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", status);
                metrics::counter!(names::CALLBACK_REQUESTS, "status" => status_label(status))
                    .increment(1);
                if response.status().is_success() {
                    return Ok(Delivered {
                        status,
                        attempts: number,
                        accepted_at: Utc::now(),
                    });
                }
                span.record("otel.status_code", "ERROR");
                let text = response.text().await.unwrap_or_default();
                let text: String = text.chars().take(300).collect();
                if !(status == 429 || (500..600).contains(&status)) {
                    return Err(Failure::Permanent(DeliveryError::Rejected {
                        status,
                        body: text,
                    }));
                }
                format!("HTTP {status}: {text}")
            }
            Err(err) => {
                let label = if err.is_timeout() { "timeout" } else { "error" };
                metrics::counter!(names::CALLBACK_REQUESTS, "status" => label).increment(1);
                span.record("error.type", label);
                span.record("otel.status_code", "ERROR");
                format!("{label}: {}", err.without_url())
            }
        };
        tracing::debug!(attempt = number, error = %last_error, "callback attempt failed");
        if number >= self.max_attempts {
            return Err(Failure::Permanent(DeliveryError::Unreachable {
                attempts: number,
                last_error,
            }));
        }
        Err(Failure::Transient(DeliveryError::DeadlinePassed {
            attempts: number,
            last_error,
        }))
    }
}

/// The `status` label: the status code, from a fixed set so a server cannot create series
/// without bound.
fn status_label(status: u16) -> &'static str {
    const KNOWN: [(u16, &str); 14] = [
        (200, "200"),
        (201, "201"),
        (202, "202"),
        (204, "204"),
        (400, "400"),
        (401, "401"),
        (403, "403"),
        (404, "404"),
        (409, "409"),
        (429, "429"),
        (500, "500"),
        (502, "502"),
        (503, "503"),
        (504, "504"),
    ];
    if let Some((_, label)) = KNOWN.iter().find(|(code, _)| *code == status) {
        return label;
    }
    match status / 100 {
        2 => "2xx",
        3 => "3xx",
        4 => "4xx",
        _ => "5xx",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deliverer(api: &str) -> Deliverer {
        Deliverer::new(
            api.into(),
            Secret::new("t"),
            Duration::from_secs(1),
            Duration::from_millis(100),
            5,
        )
        .expect("client")
    }

    #[test]
    fn callback_url_substitutes_the_region_and_appends_the_documented_path() {
        let target = Target {
            account_id: "acc",
            region: Some("eu"),
            conversation: "conv",
        };
        let deliverer = deliverer("https://api.{region}.salted.cx");
        let url = deliverer.url(&target).expect("url");
        assert_eq!(
            url.as_str(),
            "https://api.eu.salted.cx/api/v1/live/your-logic/accounts/acc/conversations/conv"
        );
        let other = Target {
            account_id: "a/b?c",
            region: Some("us"),
            conversation: "c d",
        };
        assert_eq!(
            deliverer.url(&other).expect("url").as_str(),
            "https://api.us.salted.cx/api/v1/live/your-logic/accounts/a%2Fb%3Fc/conversations/c%20d",
            "ids are percent-encoded, the base of each region parsed once"
        );
        let below = self::deliverer("http://127.0.0.1:1/prefix/");
        assert_eq!(
            below.url(&target).expect("url").as_str(),
            "http://127.0.0.1:1/prefix/api/v1/live/your-logic/accounts/acc/conversations/conv"
        );
    }

    #[test]
    fn a_region_that_could_change_the_host_is_refused() {
        let target = Target {
            account_id: "acc",
            region: Some("evil.com/x"),
            conversation: "conv",
        };
        assert!(
            deliverer("https://api.{region}.salted.cx")
                .url(&target)
                .is_err()
        );
        let no_region = Target {
            region: None,
            ..target
        };
        assert!(deliverer("http://127.0.0.1:1/").url(&no_region).is_ok());
    }

    #[test]
    fn status_labels_are_bounded() {
        assert_eq!(status_label(202), "202");
        assert_eq!(status_label(299), "2xx");
        assert_eq!(status_label(307), "3xx");
        assert_eq!(status_label(418), "4xx");
        assert_eq!(status_label(599), "5xx");
    }
}
