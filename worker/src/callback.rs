//! Delivering answers to Salted CX: `POST {api}/api/v1/live/your-logic/accounts/{accountId}/
//! conversations/{conversationPid}` with the bearer token, retried with backoff (connection
//! errors, timeouts, 5xx, 429) while time remains before the deadline, and never after it.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use shared::answer::{Answer, callback_path};
use shared::secret::Secret;
use shared::telemetry::names;

/// Where and how callbacks are sent.
#[derive(Clone)]
pub struct Deliverer {
    http: reqwest::Client,
    api_url: String,
    token: Secret,
    attempt_timeout: Duration,
    margin: Duration,
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
    /// Salted CX refused the answer with a 4xx other than 429: retrying cannot help.
    #[error("callback rejected with HTTP {status}: {body}")]
    Rejected { status: u16, body: String },
    /// The callback URL cannot be built from this event.
    #[error("cannot build the callback URL: {0}")]
    NoUrl(String),
}

impl Deliverer {
    /// A deliverer with a pooled HTTP client.
    pub fn new(
        api_url: String,
        token: Secret,
        attempt_timeout: Duration,
        margin: Duration,
    ) -> Self {
        let http = reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_max_idle_per_host(256)
            .connect_timeout(Duration::from_secs(2))
            .user_agent(concat!("yourlogic-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            http,
            api_url,
            token,
            attempt_timeout,
            margin,
        }
    }

    /// The callback URL for `target`.
    pub fn url(&self, target: &Target<'_>) -> Result<String, DeliveryError> {
        let base = if self.api_url.contains("{region}") {
            let region = target
                .region
                .filter(|r| {
                    !r.is_empty() && r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                })
                .ok_or_else(|| {
                    DeliveryError::NoUrl("the event has no usable `region` for the API URL".into())
                })?;
            self.api_url.replace("{region}", region)
        } else {
            self.api_url.clone()
        };
        Ok(format!(
            "{}{}",
            base.trim_end_matches('/'),
            callback_path(target.account_id, target.conversation)
        ))
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
            .map_err(|e| DeliveryError::NoUrl(format!("answer does not serialise: {e}")))?;
        let cutoff = self.cutoff(deadline);
        let mut attempts = 0u32;
        let mut last_error = String::from("no attempt was possible");
        loop {
            let remaining = shared::deadline::remaining(cutoff, Utc::now());
            if remaining.is_zero() {
                return Err(DeliveryError::DeadlinePassed {
                    attempts,
                    last_error,
                });
            }
            attempts += 1;
            let started = Instant::now();
            let response = self
                .http
                .post(&url)
                .bearer_auth(self.token.expose())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .timeout(self.attempt_timeout.min(remaining))
                .body(body.clone())
                .send()
                .await;
            metrics::histogram!(names::CALLBACK_SECONDS).record(started.elapsed().as_secs_f64());
            match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    metrics::counter!(names::CALLBACK_REQUESTS, "status" => status.to_string())
                        .increment(1);
                    if response.status().is_success() {
                        return Ok(Delivered {
                            status,
                            attempts,
                            accepted_at: Utc::now(),
                        });
                    }
                    let text = response.text().await.unwrap_or_default();
                    let text: String = text.chars().take(300).collect();
                    if status != 429 && (400..500).contains(&status) {
                        return Err(DeliveryError::Rejected { status, body: text });
                    }
                    last_error = format!("HTTP {status}: {text}");
                }
                Err(err) => {
                    let label = if err.is_timeout() { "timeout" } else { "error" };
                    metrics::counter!(names::CALLBACK_REQUESTS, "status" => label).increment(1);
                    last_error = format!("{label}: {err}");
                }
            }
            tracing::debug!(attempt = attempts, error = %last_error, "callback attempt failed");
            let backoff = backoff(attempts);
            let remaining = shared::deadline::remaining(cutoff, Utc::now());
            if remaining <= backoff {
                return Err(DeliveryError::DeadlinePassed {
                    attempts,
                    last_error,
                });
            }
            tokio::time::sleep(backoff).await;
        }
    }
}

/// Exponential backoff with jitter: about 25 ms, 50 ms, 100 ms, ... at most 800 ms.
fn backoff(attempt: u32) -> Duration {
    let base = 25u64.saturating_mul(1 << attempt.min(6).saturating_sub(1));
    let capped = base.min(1000);
    let jitter = rand::rng().random_range(0..=capped / 2);
    Duration::from_millis(capped / 2 + jitter)
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
        )
    }

    #[test]
    fn callback_url_substitutes_the_region_and_appends_the_documented_path() {
        let target = Target {
            account_id: "acc",
            region: Some("eu"),
            conversation: "conv",
        };
        let url = deliverer("https://api.{region}.salted.cx")
            .url(&target)
            .expect("url");
        assert_eq!(
            url,
            "https://api.eu.salted.cx/api/v1/live/your-logic/accounts/acc/conversations/conv"
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
    fn backoff_grows_and_stays_capped() {
        // Half the step plus up to half of it in jitter; the step doubles up to 800 ms.
        for _ in 0..200 {
            assert!(backoff(1) <= Duration::from_millis(25));
            let late = backoff(20);
            assert!(late >= Duration::from_millis(400) && late <= Duration::from_millis(800));
        }
    }
}
