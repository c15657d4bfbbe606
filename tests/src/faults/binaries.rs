//! The real `ingress` and `worker` binaries as child processes, for what in-process services
//! cannot show: signals (SIGTERM, exit codes), everything a process writes to its output (logs
//! must never contain a secret), and its memory.
//!
//! The binaries are the ones cargo built next to the test executable (`target/debug/ingress`,
//! `target/debug/worker`; `cargo build --workspace --all-targets` or `scripts/test.sh` builds
//! them). Output (stdout and stderr) goes to a log file in a temp dir; the process is killed
//! on drop.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::poll::free_port;

/// Path of the workspace binary `name` (`ingress`, `worker`, `saltedcx-sim`) built next to this
/// executable: a test (`target/debug/deps/<test>`) or a binary of this crate (`target/debug/<bin>`).
pub fn binary(name: &str) -> Result<PathBuf> {
    let exe = std::env::current_exe().context("locating the running executable")?;
    let dir = exe
        .parent()
        .context("the running executable has no directory")?;
    let beside = dir.join(name);
    if beside.is_file() {
        return Ok(beside);
    }
    // target/debug/deps/<test> -> target/debug/<name>
    let path = dir.parent().map(|up| up.join(name)).unwrap_or(beside);
    if !path.is_file() {
        bail!(
            "{} is missing: build the binaries first (`cargo build --workspace --all-targets`, \
             as scripts/test.sh does)",
            path.display()
        );
    }
    Ok(path)
}

/// Runs binary `name` (`worker`, `ingress`) to completion with `env` (on top of a cleared
/// environment, PATH kept) and `args`, for at most `limit`; returns its output.
pub async fn run_command(
    name: &str,
    env: &[(&str, &str)],
    args: &[&str],
    limit: Duration,
) -> Result<std::process::Output> {
    let mut command = tokio::process::Command::new(binary(name)?);
    command
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    for (key, value) in env {
        command.env(key, value);
    }
    tokio::time::timeout(limit, command.output())
        .await
        .with_context(|| format!("{name} {args:?} did not finish in {limit:?}"))?
        .with_context(|| format!("running {name} {args:?}"))
}

/// A running `ingress` or `worker` process.
pub struct BinaryProcess {
    name: String,
    child: Child,
    addr: SocketAddr,
    /// The ingress's admin listener (health, metrics); `None` for a worker (on `addr`).
    admin: Option<SocketAddr>,
    log_path: PathBuf,
    _dir: TempDir,
}

impl BinaryProcess {
    /// Starts binary `name` listening on a free loopback port (set through `addr_var`, e.g.
    /// `INGRESS_ADDR`), with the given environment on top of a cleared one (PATH kept). The
    /// ingress's admin listener gets a free loopback port too, unless `INGRESS_ADMIN_ADDR` is
    /// in `env`.
    pub fn spawn(name: &str, addr_var: &str, env: &[(&str, &str)]) -> Result<BinaryProcess> {
        Self::spawn_limited(name, addr_var, env, None)
    }

    /// [`BinaryProcess::spawn`], with the soft and hard limits of open files (`RLIMIT_NOFILE`)
    /// set to `open_files` when given (through `ulimit -n` of `/bin/sh`, which then execs the
    /// binary: the pid is the binary's).
    pub fn spawn_limited(
        name: &str,
        addr_var: &str,
        env: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Result<BinaryProcess> {
        let path = binary(name)?;
        let dir = tempfile::Builder::new()
            .prefix(&format!("testkit-{name}-"))
            .tempdir()
            .context("creating a temp dir for the process log")?;
        let log_path = dir.path().join(format!("{name}.log"));
        let log = std::fs::File::create(&log_path).context("creating the process log")?;
        let log_err = log.try_clone().context("duplicating the log handle")?;
        let addr = SocketAddr::from(([127, 0, 0, 1], free_port()?));
        let admin = match env.iter().find(|(key, _)| *key == "INGRESS_ADMIN_ADDR") {
            Some((_, value)) => Some(value.parse().context("INGRESS_ADMIN_ADDR")?),
            None if name == "ingress" => Some(SocketAddr::from(([127, 0, 0, 1], free_port()?))),
            None => None,
        };
        let mut command = match open_files {
            None => Command::new(&path),
            Some(limit) => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c")
                    .arg(format!("ulimit -n {limit} && exec \"$0\""))
                    .arg(&path);
                sh
            }
        };
        command
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env(addr_var, addr.to_string())
            .envs(admin.map(|admin| ("INGRESS_ADMIN_ADDR", admin.to_string())))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err);
        for (key, value) in env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .with_context(|| format!("spawning {}", path.display()))?;
        Ok(BinaryProcess {
            name: name.to_string(),
            child,
            addr,
            admin,
            log_path,
            _dir: dir,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://addr` of its HTTP listener.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://addr` of its health and metrics endpoints (the ingress's admin listener).
    pub fn admin_url(&self) -> String {
        format!("http://{}", self.admin.unwrap_or(self.addr))
    }

    /// Everything the process wrote so far.
    pub fn output(&self) -> String {
        std::fs::read(&self.log_path)
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// Waits until `GET /readyz` answers 200, or fails after `timeout` with the output.
    pub async fn wait_ready(&mut self, timeout: Duration) -> Result<()> {
        let url = format!("{}/readyz", self.admin_url());
        let client = reqwest::Client::new();
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "{} exited ({status}) before ready:\n{}",
                    self.name,
                    self.output()
                );
            }
            let ready = client
                .get(&url)
                .timeout(Duration::from_secs(1))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready within {timeout:?}:\n{}",
                    self.name,
                    self.output()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Sends SIGTERM (`kill -TERM pid`).
    pub fn terminate(&self) -> Result<()> {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .context("running kill -TERM")?;
        anyhow::ensure!(status.success(), "kill -TERM {} failed", self.pid());
        Ok(())
    }

    /// Waits for the process to exit (at most `timeout`) and returns its status.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} still running after {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Resident memory in KiB (`VmRSS` from `/proc/<pid>/status`), if readable.
    pub fn rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).ok()?;
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
    }

    /// Open file descriptors (entries of `/proc/<pid>/fd`), if readable.
    pub fn open_fds(&self) -> Option<usize> {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid()))
            .ok()
            .map(|dir| dir.count())
    }

    /// Kills it (SIGKILL) and reaps it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for BinaryProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let output = self.output();
            let lines: Vec<&str> = output.lines().collect();
            eprintln!(
                "--- {} output (last lines) ---\n{}",
                self.name,
                lines[lines.len().saturating_sub(40)..].join("\n")
            );
        }
        self.kill();
    }
}
