//! A real single-node `nats-server` with JetStream for one test.
//!
//! Each [`NatsServer`] listens on its own free loopback port and keeps its JetStream store and
//! log in its own temp dir, so tests run in parallel (nextest runs each in its own process).
//! It can be stopped, killed and restarted on the same port with the same store, so tests can
//! prove that persisted streams survive an outage. Everything is killed and removed on drop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::jetstream;
use tempfile::TempDir;
use tokio::time::Instant;

use crate::poll::{free_port, retry_until_ok};
use crate::process::ServerProcess;

/// How long start-up (TCP accepting and JetStream answering) may take.
pub const START_TIMEOUT: Duration = Duration::from_secs(10);

/// Options for [`NatsServer::start_with`].
#[derive(Debug, Clone, Default)]
pub struct NatsOptions {
    /// Also serve the HTTP monitoring endpoint (`-m <port>`; `/varz`, `/jsz`, ...).
    pub monitoring: bool,
    /// Extra command-line arguments passed to `nats-server` as they are.
    pub extra_args: Vec<String>,
    /// Require this token from every client (`--auth`); the test's own connections use it.
    pub token: Option<String>,
    /// A `.creds` file (user JWT and seed) the test's own connections authenticate with, for
    /// a server in operator (JWT) mode configured through `extra_args` (`-c <file>`); the
    /// server itself is not told about it.
    pub creds: Option<PathBuf>,
    /// A user and password the test's own connections authenticate with (a user of the server's
    /// config file, given through `extra_args`).
    pub user: Option<(String, String)>,
    /// The test's own connections require TLS and trust this CA (PEM): for a server whose config
    /// file requires TLS from every client.
    pub tls_ca: Option<PathBuf>,
    /// Environment variables of the server process, e.g. the passwords its config file reads
    /// (`password: $NAME`).
    pub env: Vec<(String, String)>,
}

/// A running `nats-server -js` on `127.0.0.1:<port>`, owned by the test.
pub struct NatsServer {
    // Field order matters: the process is killed before its temp dir is removed.
    process: ServerProcess,
    monitor_port: Option<u16>,
    token: Option<String>,
    creds: Option<PathBuf>,
    user: Option<(String, String)>,
    tls_ca: Option<PathBuf>,
    store_dir: PathBuf,
    _dir: TempDir,
}

impl NatsServer {
    /// Starts a server with JetStream on a free port and waits (up to 10 s) until JetStream
    /// answers.
    pub async fn start() -> Result<NatsServer> {
        Self::start_with(NatsOptions::default()).await
    }

    /// Like [`NatsServer::start`], with monitoring or extra arguments.
    pub async fn start_with(options: NatsOptions) -> Result<NatsServer> {
        // A free port can be taken by another test process before the server binds it: retry.
        let mut attempts = 0;
        loop {
            attempts += 1;
            let server = Self::spawn(&options)?;
            match server.wait_ready().await {
                Ok(()) => return Ok(server),
                Err(e) if attempts < 3 && server.process.port_was_taken() => {
                    tracing::debug!("nats-server port race, retrying: {e:#}");
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn spawn(options: &NatsOptions) -> Result<NatsServer> {
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-")
            .tempdir()
            .context("creating the nats-server temp dir")?;
        let store_dir = dir.path().join("jetstream");
        let port = free_port()?;
        let mut args: Vec<OsString> = vec![
            "-js".into(),
            "-sd".into(),
            store_dir.clone().into(),
            "-a".into(),
            "127.0.0.1".into(),
            "-p".into(),
            port.to_string().into(),
        ];
        let monitor_port = if options.monitoring {
            let monitor = free_port()?;
            args.extend(["-m".into(), monitor.to_string().into()]);
            Some(monitor)
        } else {
            None
        };
        if let Some(token) = &options.token {
            args.extend(["--auth".into(), token.into()]);
        }
        args.extend(options.extra_args.iter().map(OsString::from));
        let log_path = dir.path().join("nats-server.log");
        let process = ServerProcess::new(format!("nats-server :{port}"), args, port, log_path)?
            .with_env(&options.env);
        process.spawn()?;
        Ok(NatsServer {
            process,
            monitor_port,
            token: options.token.clone(),
            creds: options.creds.clone(),
            user: options.user.clone(),
            tls_ca: options.tls_ca.clone(),
            store_dir,
            _dir: dir,
        })
    }

    /// Waits until the server accepts connections and JetStream answers an account query.
    async fn wait_ready(&self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        self.process.wait_accepting(deadline).await?;
        let left = deadline.saturating_duration_since(Instant::now());
        let url = self.url();
        let auth = self.auth();
        retry_until_ok(left, Duration::from_millis(50), "JetStream ready", || {
            jetstream_answers(&url, auth)
        })
        .await
        .with_context(|| self.process.log_report())
    }

    /// How the test's own connections authenticate.
    fn auth(&self) -> Auth<'_> {
        Auth {
            token: self.token.as_deref(),
            creds: self.creds.as_deref(),
            user: self.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str())),
            tls_ca: self.tls_ca.as_deref(),
        }
    }

    /// `nats://127.0.0.1:<port>`, the value for `NATS_URL`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port())
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.process.port()
    }

    /// `http://127.0.0.1:<port>` of the monitoring endpoint, if enabled.
    pub fn monitor_url(&self) -> Option<String> {
        self.monitor_port.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// The JetStream store directory (kept across [`NatsServer::restart`]).
    pub fn store_dir(&self) -> &Path {
        &self.store_dir
    }

    /// The file receiving the server's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        self.process.log_path()
    }

    /// Whether the server process is alive.
    pub fn is_running(&self) -> bool {
        self.process.is_running()
    }

    /// A client connected to this server (fails fast if it is down).
    pub async fn connect(&self) -> Result<async_nats::Client> {
        connect_once(&self.url(), self.auth()).await
    }

    /// A JetStream context on a fresh client connected to this server.
    pub async fn jetstream(&self) -> Result<jetstream::Context> {
        Ok(jetstream::new(self.connect().await?))
    }

    /// Stops the server cleanly (SIGTERM, then SIGKILL after 10 s) and waits for it to exit.
    pub async fn stop(&self) -> Result<()> {
        self.process.stop().await
    }

    /// Kills the server with SIGKILL (no clean shutdown, as in a crash).
    pub fn kill(&self) {
        self.process.kill();
    }

    /// Starts the server again on the same port with the same store, so persisted streams
    /// survive, and waits until JetStream is ready. Stops it first if it is running.
    pub async fn restart(&self) -> Result<()> {
        if self.is_running() {
            self.stop().await?;
        }
        // The port is ours; only a stranger taking it in the meantime would fail the start.
        self.process.spawn()?;
        self.wait_ready().await
    }
}

/// The credentials of the test's own connections (none by default).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Auth<'a> {
    pub token: Option<&'a str>,
    pub creds: Option<&'a Path>,
    pub user: Option<(&'a str, &'a str)>,
    pub tls_ca: Option<&'a Path>,
}

/// A client connection attempt that does not retry, so readiness polling stays responsive.
pub(crate) async fn connect_once(url: &str, auth: Auth<'_>) -> Result<async_nats::Client> {
    let mut options = async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(1));
    if let Some(token) = auth.token {
        options = options.token(token.to_string());
    }
    if let Some(creds) = auth.creds {
        options = options
            .credentials_file(creds)
            .await
            .with_context(|| format!("reading the credentials file {}", creds.display()))?;
    }
    if let Some((user, password)) = auth.user {
        options = options.user_and_password(user.to_string(), password.to_string());
    }
    if let Some(ca) = auth.tls_ca {
        options = options
            .require_tls(true)
            .add_root_certificates(ca.to_path_buf());
    }
    options
        .connect(url)
        .await
        .with_context(|| format!("connecting to {url}"))
}

/// Whether JetStream on `url` answers an account query.
async fn jetstream_answers(url: &str, auth: Auth<'_>) -> Result<()> {
    let client = connect_once(url, auth).await?;
    let js = jetstream::new(client);
    match tokio::time::timeout(Duration::from_secs(2), js.query_account()).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(e)) => bail!("JetStream account query failed: {e}"),
        Err(_) => bail!("JetStream account query timed out"),
    }
}
