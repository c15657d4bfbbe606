//! The pipeline mode: each event is POSTed to a running ingress like Salted CX posts it, and its
//! answer comes back as a callback to the studio's own address (the workers'
//! `SALTEDCX_API_URL`), through the simulator's callback API and registry. The time from the
//! post to the callback is measured against the event's budget.

use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;
use tokio::time::Instant;

use crate::client::{IngressClient, Posted as Post};
use crate::conversation::BuiltEvent;
use crate::server::CallbackApi;

/// Pause between tries of an event the ingress could not store yet (503, no connection).
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A running pipeline reached through its ingress.
pub struct Pipeline {
    client: IngressClient,
    callbacks: CallbackApi,
    budget: Duration,
    /// Events sent so far (the order number the registry checks callbacks against).
    sent: std::sync::atomic::AtomicU64,
}

/// How an event sent through the pipeline ended.
#[derive(Debug)]
pub enum Posted {
    /// The callback came in time: its body, and the time from the post.
    Answered { body: Value, latency: Duration },
    /// The callback came after the deadline.
    Late { latency: Duration },
    /// No callback before the deadline.
    Expired,
    /// The ingress did not take the event: why.
    Refused(String),
}

impl Pipeline {
    /// The pipeline whose ingress is `client`; answers arrive through `callbacks`.
    pub fn new(client: IngressClient, callbacks: CallbackApi, budget: Duration) -> Pipeline {
        Pipeline {
            client,
            callbacks,
            budget,
            sent: Default::default(),
        }
    }

    /// The ingress's event URL.
    pub fn url(&self) -> &str {
        self.client.url()
    }

    /// Stops tracking conversation `pid` (the studio started a new one).
    pub fn forget(&self, pid: &str) {
        self.callbacks.registry().close(pid);
    }

    /// Sends `built` (an event of conversation `pid`) and waits for its callback or its
    /// deadline.
    pub async fn send(&self, pid: &str, built: &BuiltEvent) -> Posted {
        let seq = self.sent.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let registry = self.callbacks.registry();
        let sent = Instant::now();
        let deadline = sent + self.budget;
        let answer = registry.expect(pid, built.request_id, seq, deadline);
        if let Err(why) = self.post(Bytes::from(built.body.clone()), deadline).await {
            registry.withdraw(pid, built.request_id);
            return Posted::Refused(why);
        }
        match tokio::time::timeout_at(deadline, answer).await {
            Ok(Ok(arrival)) if arrival.at <= deadline => Posted::Answered {
                body: arrival.body,
                latency: arrival.at.saturating_duration_since(sent),
            },
            Ok(Ok(arrival)) => Posted::Late {
                latency: arrival.at.saturating_duration_since(sent),
            },
            Ok(Err(_)) => Posted::Expired,
            Err(_) => {
                registry.expire(pid, built.request_id);
                Posted::Expired
            }
        }
    }

    /// Posts until the ingress stores the event, while the deadline allows.
    async fn post(&self, body: Bytes, deadline: Instant) -> Result<(), String> {
        loop {
            let posted = self.client.post(body.clone()).await;
            match posted {
                Post::Accepted | Post::Duplicate => return Ok(()),
                refused => {
                    let message = match &refused {
                        Post::Refused {
                            status, message, ..
                        } => format!("the ingress answered {status}: {message}"),
                        Post::Failed { message, .. } => {
                            format!("the ingress at {} does not answer: {message}", self.url())
                        }
                        _ => "refused".into(),
                    };
                    if !refused.retryable() || Instant::now() + RETRY_PAUSE >= deadline {
                        return Err(message);
                    }
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}
