//! A nats-server locked down as production is, for the permission tests: the committed
//! `deploy/k8s/overlays/production/nats-auth.conf` (users, accounts, permissions) loaded as it
//! is, TLS required from every client, passwords from the server's environment; the services and
//! strangers logging in as one of its users; what the server log says was refused.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use async_trait::async_trait;
use serde_json::Value;
use shared::answer::{Action, Reply};
use shared::config::NatsArgs;
use shared::event::Event;
use shared::secret::Secret;
use testkit::stack::{self, Service};
use testkit::{FakeSaltedCx, NatsOptions, NatsServer};
use worker::logic::{Context, Logic, LogicError};

/// Longest wait for a service to become ready.
pub const READY: Duration = Duration::from_secs(15);
/// Longest wait for an event's answer.
pub const WAIT: Duration = Duration::from_secs(20);
/// The event stream (STREAM_NAME's default, one shard).
pub const EVENT_STREAM: &str = "YOURLOGIC_EVENTS";
/// Passwords of the users `ingress`, `worker` and `admin` (letters and digits, as NATS needs
/// from its environment).
pub const INGRESS_PASSWORD: &str = "pIngress7c1e";
pub const WORKER_PASSWORD: &str = "pWorker93ad0";
const ADMIN_PASSWORD: &str = "pAdmin5b2f8";

/// The permissions file the deployment uses.
fn permissions_file() -> PathBuf {
    testkit::workspace_root().join("deploy/k8s/overlays/production/nats-auth.conf")
}

fn tls_fixture(name: &str) -> PathBuf {
    testkit::workspace_root()
        .join("tests/fixtures/tls")
        .join(name)
}

/// A nats-server with the production permissions (the committed file, copied next to a config
/// that includes it) and TLS required from every client. The test's own connections are the
/// administrator's; the passwords reach the server through its environment, as in Kubernetes.
pub async fn secured_nats(dir: &tempfile::TempDir) -> Result<NatsServer> {
    std::fs::copy(permissions_file(), dir.path().join("nats-auth.conf"))
        .with_context(|| format!("copying {}", permissions_file().display()))?;
    let config = dir.path().join("nats.conf");
    std::fs::write(
        &config,
        format!(
            "include ./nats-auth.conf\ntls {{\n  cert_file: \"{}\"\n  key_file: \"{}\"\n  \
             timeout: 2\n}}\n",
            tls_fixture("server.pem").display(),
            tls_fixture("server-key.pem").display()
        ),
    )?;
    NatsServer::start_with(NatsOptions {
        extra_args: vec!["-c".into(), config.display().to_string()],
        user: Some(("admin".into(), ADMIN_PASSWORD.into())),
        tls_ca: Some(tls_fixture("ca.pem")),
        env: vec![
            ("NATS_INGRESS_PASSWORD".into(), INGRESS_PASSWORD.into()),
            ("NATS_WORKER_PASSWORD".into(), WORKER_PASSWORD.into()),
            ("NATS_ADMIN_PASSWORD".into(), ADMIN_PASSWORD.into()),
        ],
        ..Default::default()
    })
    .await
}

/// `tls://127.0.0.1:<port>`, what the services are given.
pub fn tls_url(nats: &NatsServer) -> String {
    format!("tls://127.0.0.1:{}", nats.port())
}

/// The NATS settings of a service logging in as `user`, over TLS with the private CA.
pub fn login(nats: &mut NatsArgs, url: &str, user: &str, password: &str) {
    nats.nats_url = url.to_string();
    nats.nats_user = Some(user.into());
    nats.nats_password = Some(Secret::new(password));
    nats.nats_tls = true;
    nats.nats_tls_ca_file = Some(tls_fixture("ca.pem"));
}

/// A client logged in as `user` (not a service: a credential in someone else's hands).
pub async fn connect_as(
    nats: &NatsServer,
    user: &str,
    password: &str,
) -> Result<async_nats::Client> {
    async_nats::ConnectOptions::new()
        .user_and_password(user.into(), password.into())
        .require_tls(true)
        .add_root_certificates(tls_fixture("ca.pem"))
        .connection_timeout(Duration::from_secs(2))
        .connect(tls_url(nats))
        .await
        .with_context(|| format!("connecting as {user}"))
}

/// Answers customer messages with `ok: <text>`; fails for messages starting with `fail` (so
/// they are dead-lettered). Not deterministic, so every answer is claimed in the answers bucket
/// before its callback.
struct FailOnRequest;

#[async_trait]
impl Logic for FailOnRequest {
    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let text = event.trigger_texts().next().unwrap_or_default().to_string();
        if text.starts_with("fail") {
            return Err(LogicError::Failed(format!("refusing {text}")));
        }
        Ok(Reply::with_actions(vec![Action::message(format!(
            "ok: {text}"
        ))]))
    }
}

/// An ingress logged in as `ingress`, not yet waited for: it becomes ready only once a worker
/// has created the event stream (it may not create it itself).
pub async fn start_ingress(nats: &NatsServer) -> Result<Service> {
    let url = tls_url(nats);
    stack::start_ingress(&url, |c| {
        login(&mut c.nats, &url, "ingress", INGRESS_PASSWORD)
    })
    .await
}

/// Waits until `service` is ready; the server log explains a failure.
pub async fn ready(nats: &NatsServer, service: &Service) -> Result<()> {
    stack::wait_ready(service, READY)
        .await
        .with_context(|| server_log(nats))
}

/// Whether `service` stays unready for `period` (polled; any 200 fails).
pub async fn stays_unready(service: &Service, period: Duration) -> bool {
    let url = format!("{}/readyz", service.admin_url());
    !testkit::wait_until(period, Duration::from_millis(100), || {
        let request = reqwest::get(url.clone());
        async move { request.await.is_ok_and(|r| r.status() == 200) }
    })
    .await
}

/// A worker logged in as `worker`, ready.
pub async fn start_worker(nats: &NatsServer, fake: &FakeSaltedCx) -> Result<Service> {
    let url = tls_url(nats);
    let worker = stack::start_worker(&url, &fake.base_url(), Arc::new(FailOnRequest), |c| {
        login(&mut c.nats, &url, "worker", WORKER_PASSWORD)
    })
    .await?;
    ready(nats, &worker).await?;
    Ok(worker)
}

/// The server's log, for failure messages.
pub fn server_log(nats: &NatsServer) -> String {
    let log = std::fs::read_to_string(nats.log_path()).unwrap_or_default();
    format!("nats-server log:\n{log}")
}

/// The server log's permission violations (nats-server logs each refused publish or
/// subscription as an error naming the user and the subject).
pub fn violations(nats: &NatsServer) -> Result<Vec<String>> {
    let log = std::fs::read_to_string(nats.log_path())?;
    Ok(log
        .lines()
        .filter(|line| line.contains("Violation"))
        .map(str::to_string)
        .collect())
}

/// Whether the server log's violations name `user` (`ACCOUNT/user:NAME`) refusing `subject`.
pub fn refused_for(violations: &str, user: &str, subject: &str) -> bool {
    violations
        .lines()
        .any(|line| line.contains(&format!("\"{user}\"")) && line.contains(&format!("\"{subject}")))
}

/// A JetStream context whose refused requests fail fast.
pub fn jetstream_of(client: async_nats::Client) -> async_nats::jetstream::Context {
    let mut js = async_nats::jetstream::new(client);
    js.set_timeout(Duration::from_secs(1));
    js
}

pub fn request_id(event: &Value) -> &str {
    event["requestId"].as_str().unwrap_or_default()
}
