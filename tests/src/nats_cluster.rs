//! A real JetStream cluster of `nats-server` processes on loopback, for failover tests.
//!
//! Node `i` (0-based) is named `n{i+1}`, has its own client port, route port, store dir and
//! log file, and routes to every other node. [`NatsCluster::start`] returns once JetStream has
//! a meta leader and every node can hold a replica (a throw-away stream with one replica per
//! node is created and deleted). Nodes can be killed and restarted one by one.

use std::ffi::OsString;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use async_nats::ServerAddr;
use async_nats::jetstream::{self, stream};
use tempfile::TempDir;
use tokio::time::Instant;

use crate::nats_server::{Auth, connect_once};
use crate::poll::{free_ports, retry_until_ok};
use crate::process::ServerProcess;

/// How long cluster formation (all nodes up, meta leader elected) may take.
pub const CLUSTER_START_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a restarted node may take to accept connections and reach JetStream.
pub const NODE_START_TIMEOUT: Duration = Duration::from_secs(10);

/// The cluster name passed as `--cluster_name`.
pub const CLUSTER_NAME: &str = "testkit";

/// A running JetStream cluster owned by the test; killed and removed on drop.
pub struct NatsCluster {
    // Field order matters: processes are killed before the temp dir is removed.
    nodes: Vec<ServerProcess>,
    _dir: TempDir,
}

impl NatsCluster {
    /// Starts `size` nodes (3 for a real quorum) and waits until the cluster can hold a stream
    /// with `size` replicas.
    pub async fn start(size: usize) -> Result<NatsCluster> {
        if size == 0 {
            bail!("a cluster needs at least one node");
        }
        let dir = tempfile::Builder::new()
            .prefix("testkit-nats-cluster-")
            .tempdir()
            .context("creating the cluster temp dir")?;
        let ports = free_ports(2 * size)?;
        let (client_ports, route_ports) = ports.split_at(size);
        let mut nodes = Vec::with_capacity(size);
        for i in 0..size {
            let name = format!("n{}", i + 1);
            let routes: Vec<String> = (0..size)
                .filter(|&j| j != i)
                .map(|j| format!("nats://127.0.0.1:{}", route_ports[j]))
                .collect();
            let mut args: Vec<OsString> = vec![
                "-js".into(),
                "-sd".into(),
                dir.path().join(&name).into(),
                "-a".into(),
                "127.0.0.1".into(),
                "-p".into(),
                client_ports[i].to_string().into(),
                "--server_name".into(),
                name.clone().into(),
                "--cluster_name".into(),
                CLUSTER_NAME.into(),
                "--cluster".into(),
                format!("nats://127.0.0.1:{}", route_ports[i]).into(),
            ];
            if !routes.is_empty() {
                args.extend(["--routes".into(), routes.join(",").into()]);
            }
            let log_path = dir.path().join(format!("{name}.log"));
            let node = ServerProcess::new(
                format!("nats-server {name}"),
                args,
                client_ports[i],
                log_path,
            )?;
            node.spawn()?;
            nodes.push(node);
        }
        let cluster = NatsCluster { nodes, _dir: dir };
        cluster.wait_formed().await?;
        Ok(cluster)
    }

    async fn wait_formed(&self) -> Result<()> {
        let deadline = Instant::now() + CLUSTER_START_TIMEOUT;
        for node in &self.nodes {
            node.wait_accepting(deadline).await?;
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let addrs = self.server_addrs()?;
        let replicas = self.nodes.len();
        retry_until_ok(
            left,
            Duration::from_millis(100),
            "JetStream cluster formed",
            || can_place_stream(addrs.clone(), replicas),
        )
        .await
        .with_context(|| self.log_reports())
    }

    /// Number of nodes.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    /// All client URLs, comma-separated: the value for `NATS_URL`.
    pub fn urls(&self) -> String {
        (0..self.size())
            .map(|i| self.url(i))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// Client URL of node `i` (0-based; the node is named `n{i+1}`).
    pub fn url(&self, i: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[i].port())
    }

    /// Client port of node `i`.
    pub fn port(&self, i: usize) -> u16 {
        self.nodes[i].port()
    }

    /// Server name of node `i` (`n{i+1}`), as reported in stream cluster info.
    pub fn node_name(&self, i: usize) -> String {
        format!("n{}", i + 1)
    }

    /// The log file of node `i`.
    pub fn log_path(&self, i: usize) -> &Path {
        self.nodes[i].log_path()
    }

    /// Whether node `i` is alive.
    pub fn is_running(&self, i: usize) -> bool {
        self.nodes[i].is_running()
    }

    /// The client URLs as parsed addresses, for `async_nats::connect`.
    pub fn server_addrs(&self) -> Result<Vec<ServerAddr>> {
        (0..self.size())
            .map(|i| {
                let url = self.url(i);
                url.parse().with_context(|| format!("parsing {url}"))
            })
            .collect()
    }

    /// A client that knows every node and reconnects to a live one when its node dies.
    pub async fn connect(&self) -> Result<async_nats::Client> {
        async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(1))
            .connect(self.server_addrs()?)
            .await
            .context("connecting to the cluster")
    }

    /// Kills node `i` with SIGKILL (as in a crash).
    pub fn kill(&self, i: usize) {
        self.nodes[i].kill();
    }

    /// Stops node `i` cleanly (SIGTERM) and waits for it to exit.
    pub async fn stop(&self, i: usize) -> Result<()> {
        self.nodes[i].stop().await
    }

    /// Starts node `i` again with the same ports and store (stopping it first if it runs) and
    /// waits until it accepts connections and reaches the JetStream meta leader through it.
    pub async fn restart(&self, i: usize) -> Result<()> {
        let node = &self.nodes[i];
        if node.is_running() {
            node.stop().await?;
        }
        node.spawn()?;
        let deadline = Instant::now() + NODE_START_TIMEOUT;
        node.wait_accepting(deadline).await?;
        let url = self.url(i);
        let left = deadline.saturating_duration_since(Instant::now());
        retry_until_ok(
            left,
            Duration::from_millis(100),
            "restarted node reaches JetStream",
            || account_answers(url.clone()),
        )
        .await
        .with_context(|| node.log_report())
    }

    fn log_reports(&self) -> String {
        self.nodes
            .iter()
            .map(ServerProcess::log_report)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// Creates and deletes a throw-away memory stream with `replicas` replicas: this works only
/// once there is a meta leader and enough peers have joined.
async fn can_place_stream(addrs: Vec<ServerAddr>, replicas: usize) -> Result<()> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(1))
        .connect(addrs)
        .await
        .context("connecting to the cluster")?;
    let mut js = jetstream::new(client);
    js.set_timeout(Duration::from_secs(3));
    let name = "TESTKIT_CLUSTER_READY";
    js.create_stream(stream::Config {
        name: name.to_string(),
        subjects: vec!["testkit.cluster.ready".to_string()],
        storage: stream::StorageType::Memory,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .context("creating a probe stream")?;
    js.delete_stream(name)
        .await
        .context("deleting the probe stream")?;
    Ok(())
}

async fn account_answers(url: String) -> Result<()> {
    let mut js = jetstream::new(connect_once(&url, Auth::default()).await?);
    js.set_timeout(Duration::from_secs(2));
    js.query_account()
        .await
        .context("JetStream account query")?;
    Ok(())
}
