//! A fake Salted CX callback API for tests: an axum server on a loopback port that records every
//! answer the worker sends and replies as the test scripts it.
//!
//! It serves `POST /api/v1/live/your-logic/accounts/{accountId}/conversations/{conversationPid}`
//! below [`FakeSaltedCx::base_url`] (give that to the worker as `SALTEDCX_API_URL`). For each
//! call, in this order:
//! 1. the call is recorded as a [`Callback`] (every call, also rejected ones, in arrival order);
//! 2. `Authorization: Bearer <token>` is checked against the accepted tokens: `401` if wrong or
//!    missing (as the real API, which ignores such calls);
//! 3. a body that is not JSON gets `400`, a body without `requestId` (or its alias `request`)
//!    gets `400`;
//! 4. the [`Behaviour`] decides: wait for its delay, then take the next scripted [`Reply`] or
//!    the default one: a status with a JSON body (default `200 {}`), a connection reset
//!    without response, or a hang (no answer until the client gives up).
//!
//! [`FakeSaltedCx::pause`] closes the port and resets open connections (clients then get
//! "connection refused"); [`FakeSaltedCx::resume`] listens on the same port again, keeping the
//! records and behaviour. [`FakeSaltedCx::start_on`] starts a new fake on a given port.
//!
//! The simulator serves the same API (`saltedcx_sim::server`, whose route this fake uses) for a
//! different job: it hands each callback to the conversation waiting for it and counts what
//! arrives at load scale, while this fake records every call and injects the failures the
//! delivery tests need (statuses, delays, hangs, resets, a closed port).

mod behaviour;
mod handler;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::routing::post;
use saltedcx_sim::server::CALLBACK_ROUTE;
use tokio::net::TcpListener;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use behaviour::{Behaviour, Callback, Outcome, Reply};

use crate::killable::{ConnHandle, Connections, KillableListener};
use crate::poll::wait_until;
use handler::AppState;

/// State shared by the handle and the server; survives pause and resume.
struct Shared {
    tokens: Mutex<Vec<String>>,
    behaviour: Mutex<Behaviour>,
    /// Behaviours for single conversations, taking precedence over `behaviour`.
    per_conversation: Mutex<std::collections::HashMap<String, Behaviour>>,
    records: Mutex<Vec<Callback>>,
    /// Bumped on every change of `records`, so waiters wake without polling.
    changed: watch::Sender<u64>,
    /// Every completed call, for tests that react to callbacks as they come.
    completed: broadcast::Sender<Callback>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Handlers never panic while holding these locks; recover rather than cascade if one did.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    fn authorizes(&self, authorization: Option<&str>) -> bool {
        let Some(token) = authorization.and_then(|h| h.strip_prefix("Bearer ")) else {
            return false;
        };
        lock(&self.tokens).iter().any(|t| t == token)
    }

    fn record(&self, callback: Callback) -> usize {
        let mut records = lock(&self.records);
        records.push(callback);
        let index = records.len() - 1;
        drop(records);
        self.changed.send_modify(|n| *n += 1);
        index
    }

    fn finish(&self, index: usize, status: u16, outcome: Outcome) {
        let mut records = lock(&self.records);
        let Some(callback) = records.get_mut(index) else {
            return; // cleared meanwhile
        };
        callback.status_returned = status;
        callback.outcome = outcome;
        let done = callback.clone();
        drop(records);
        self.changed.send_modify(|n| *n += 1);
        // No subscribers is fine.
        let _ = self.completed.send(done);
    }

    fn next_reply(&self, conversation_pid: &str) -> (Reply, Duration) {
        if let Some(behaviour) = lock(&self.per_conversation).get_mut(conversation_pid) {
            return (behaviour.next_reply(), behaviour.delay);
        }
        let mut behaviour = lock(&self.behaviour);
        (behaviour.next_reply(), behaviour.delay)
    }
}

/// One listening period: the server task and what is needed to cut it off.
struct Listening {
    task: JoinHandle<()>,
    connections: Arc<Connections>,
    offline: watch::Sender<bool>,
}

impl Listening {
    fn stop(self) -> JoinHandle<()> {
        self.offline.send_replace(true);
        self.connections.kill_all();
        self.task.abort();
        self.task
    }
}

/// The fake Salted CX API; stops listening on drop.
pub struct FakeSaltedCx {
    shared: Arc<Shared>,
    port: u16,
    listening: Mutex<Option<Listening>>,
}

impl FakeSaltedCx {
    /// Starts a fake accepting `token` on a free loopback port.
    pub async fn start(token: &str) -> Result<FakeSaltedCx> {
        Self::start_on(0, token).await
    }

    /// Starts a fake accepting `token` on `127.0.0.1:port` (0: any free port), for example
    /// the port of a fake that was shut down, to end a "connection refused" window.
    pub async fn start_on(port: u16, token: &str) -> Result<FakeSaltedCx> {
        let (changed, _) = watch::channel(0);
        let (completed, _) = broadcast::channel(4096);
        let shared = Arc::new(Shared {
            tokens: Mutex::new(vec![token.to_string()]),
            behaviour: Mutex::new(Behaviour::default()),
            per_conversation: Mutex::new(std::collections::HashMap::new()),
            records: Mutex::new(Vec::new()),
            changed,
            completed,
        });
        let listener = bind(port).await?;
        let port = listener
            .local_addr()
            .context("reading the fake's address")?
            .port();
        let fake = FakeSaltedCx {
            shared,
            port,
            listening: Mutex::new(None),
        };
        fake.serve(listener);
        Ok(fake)
    }

    fn serve(&self, listener: TcpListener) {
        let connections = Arc::new(Connections::default());
        let (offline, offline_rx) = watch::channel(false);
        let app = Router::new()
            .route(CALLBACK_ROUTE, post(handler::callback))
            .with_state(AppState {
                shared: self.shared.clone(),
                offline: offline_rx,
            });
        let listener = KillableListener::new(listener, connections.clone());
        let server = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<ConnHandle>(),
        );
        let task = tokio::spawn(async move {
            // axum::serve only returns on a listener error, which our listener never reports.
            let _ = server.await;
        });
        let previous = lock(&self.listening).replace(Listening {
            task,
            connections,
            offline,
        });
        if let Some(previous) = previous {
            previous.stop();
        }
    }

    /// `http://127.0.0.1:<port>`: the worker's `SALTEDCX_API_URL`.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The port, stable across [`FakeSaltedCx::pause`] and [`FakeSaltedCx::resume`].
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The full callback URL for one conversation.
    pub fn callback_url(&self, account_id: &str, conversation_pid: &str) -> String {
        format!(
            "{}/api/v1/live/your-logic/accounts/{account_id}/conversations/{conversation_pid}",
            self.base_url()
        )
    }

    /// Every recorded call, including rejected and failed ones, in arrival order.
    pub fn callbacks(&self) -> Vec<Callback> {
        lock(&self.shared.records).clone()
    }

    /// The calls answered 2xx, in arrival order.
    pub fn successful_callbacks(&self) -> Vec<Callback> {
        self.callbacks()
            .into_iter()
            .filter(Callback::is_success)
            .collect()
    }

    /// The calls answered 2xx for one request id.
    pub fn callbacks_for(&self, request_id: &str) -> Vec<Callback> {
        let all = self.successful_callbacks().into_iter();
        all.filter(|c| c.request_id.as_deref() == Some(request_id))
            .collect()
    }

    /// Forgets all recorded calls.
    pub fn clear_callbacks(&self) {
        lock(&self.shared.records).clear();
        self.shared.changed.send_modify(|n| *n += 1);
    }

    /// Waits until at least `n` calls have been handled (answered, reset or hung; any status)
    /// and returns all recorded calls, or fails at `timeout` saying what did arrive.
    pub async fn wait_for_callbacks(&self, n: usize, timeout: Duration) -> Result<Vec<Callback>> {
        self.wait_for(timeout, &format!("{n} handled callbacks"), |all| {
            (all.iter().filter(|c| c.is_complete()).count() >= n).then(|| all.to_vec())
        })
        .await
    }

    /// Waits until at least `n` calls were answered 2xx and returns those calls.
    pub async fn wait_for_successful_callbacks(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<Callback>> {
        self.wait_for(timeout, &format!("{n} successful callbacks"), |all| {
            // Count first: cloning every record on every change would be quadratic.
            let done = all.iter().filter(|c| c.is_success()).count() >= n;
            done.then(|| all.iter().filter(|c| c.is_success()).cloned().collect())
        })
        .await
    }

    /// Waits for the first call answered 2xx for `request_id` and returns it.
    pub async fn wait_for_request(&self, request_id: &str, timeout: Duration) -> Result<Callback> {
        self.wait_for(
            timeout,
            &format!("a successful callback for {request_id}"),
            |all| {
                all.iter()
                    .find(|c| c.is_success() && c.request_id.as_deref() == Some(request_id))
                    .cloned()
            },
        )
        .await
    }

    /// Evaluates `check` on the records after every change until it yields a value.
    async fn wait_for<T>(
        &self,
        timeout: Duration,
        what: &str,
        check: impl Fn(&[Callback]) -> Option<T>,
    ) -> Result<T> {
        let deadline = Instant::now() + timeout;
        let mut changed = self.shared.changed.subscribe();
        loop {
            changed.mark_unchanged();
            if let Some(found) = check(&lock(&self.shared.records)) {
                return Ok(found);
            }
            if tokio::time::timeout_at(deadline, changed.changed())
                .await
                .is_err()
            {
                bail!(
                    "timed out after {timeout:?} waiting for {what}; got {}",
                    self.summary()
                );
            }
        }
    }

    /// A one-line account of the recorded calls, for failure messages.
    pub fn summary(&self) -> String {
        let calls = self.callbacks();
        let list: Vec<String> = calls
            .iter()
            .map(|c| format!("{}:{:?}", c.request_id.as_deref().unwrap_or("-"), c.outcome))
            .collect();
        format!("{} calls [{}]", calls.len(), list.join(", "))
    }

    /// Receives every call once handled (answered, reset or hung), from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Callback> {
        self.shared.completed.subscribe()
    }

    /// Replaces the behaviour (takes effect for the next call, also while running).
    pub fn set_behaviour(&self, behaviour: Behaviour) {
        *lock(&self.shared.behaviour) = behaviour;
    }

    /// Gives calls for one conversation their own behaviour (e.g. a slow conversation among
    /// fast ones); other conversations keep the general one.
    pub fn set_behaviour_for(&self, conversation_pid: &str, behaviour: Behaviour) {
        lock(&self.shared.per_conversation).insert(conversation_pid.to_string(), behaviour);
    }

    /// The current behaviour, with what is left of its script.
    pub fn behaviour(&self) -> Behaviour {
        lock(&self.shared.behaviour).clone()
    }

    /// Appends replies to the script.
    pub fn push_replies(&self, replies: impl IntoIterator<Item = Reply>) {
        lock(&self.shared.behaviour).script.extend(replies);
    }

    /// Sets the delay before every answer.
    pub fn set_delay(&self, delay: Duration) {
        lock(&self.shared.behaviour).delay = delay;
    }

    /// Replaces the accepted bearer tokens (e.g. to test token rotation).
    pub fn set_tokens(&self, tokens: &[&str]) {
        *lock(&self.shared.tokens) = tokens.iter().map(|t| t.to_string()).collect();
    }

    /// Whether the fake is listening.
    pub fn is_listening(&self) -> bool {
        lock(&self.listening).is_some()
    }

    /// Stops listening: the port refuses connections, open connections are reset and delayed
    /// or hung calls are cut. Records and behaviour are kept for [`FakeSaltedCx::resume`].
    pub async fn pause(&self) {
        let listening = lock(&self.listening).take();
        if let Some(listening) = listening {
            let connections = listening.connections.clone();
            // Wait for the task to end, so the listening socket is closed when this returns,
            let _ = listening.stop().await;
            // and for the killed connections to be dropped, so no client can reuse one.
            let closed = wait_until(Duration::from_secs(2), Duration::from_millis(5), || {
                let connections = connections.clone();
                async move { connections.all_closed() }
            })
            .await;
            if !closed {
                tracing::warn!("fake Salted CX: some connections were still open after pause");
            }
        }
    }

    /// Listens again on the same port after [`FakeSaltedCx::pause`].
    pub async fn resume(&self) -> Result<()> {
        if self.is_listening() {
            return Ok(());
        }
        let listener = bind(self.port).await?;
        self.serve(listener);
        Ok(())
    }

    /// Stops the fake for good (as dropping it does, but waits until the port is closed).
    pub async fn shutdown(self) {
        self.pause().await;
    }
}

impl Drop for FakeSaltedCx {
    fn drop(&mut self) {
        if let Some(listening) = lock(&self.listening).take() {
            listening.stop();
        }
    }
}

/// Binds `127.0.0.1:port`, retrying for a moment: a port just released can still be busy.
async fn bind(port: u16) -> Result<TcpListener> {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        match TcpListener::bind(("127.0.0.1", port)).await {
            Ok(listener) => return Ok(listener),
            Err(e) if port != 0 && Instant::now() < deadline => {
                tracing::debug!(port, "fake Salted CX bind failed, retrying: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => return Err(e).with_context(|| format!("binding 127.0.0.1:{port}")),
        }
    }
}
