//! The ingress: a thin HTTP service that authenticates, validates and durably stores Salted CX
//! events in NATS JetStream (keyed by conversation), answering 202 only once stored.
//!
//! `main.rs` parses the configuration and calls [`Ingress::build`] then [`Ingress::run`]; tests
//! do the same in-process on port 0.

pub mod config;
pub mod error;
pub mod events;
pub mod publisher;
pub mod rejections;
pub mod traces;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::post;
use tokio::net::TcpListener;

pub use config::Config;
use publisher::Publisher;

/// State shared by the request handlers.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub publisher: Publisher,
}

/// Start-up failed: the message says which setting or resource is the problem.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Nats(#[from] shared::nats::ConnectError),
}

/// Listens with a backlog of 4096 (tokio's default is 1024): thousands of conversations
/// reconnecting at once (after a network blip) must not overflow it.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_nodelay(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// A bound, not yet serving ingress.
pub struct Ingress {
    listener: TcpListener,
    router: Router,
    /// The operational endpoints' own listener: never the events port.
    admin: TcpListener,
    admin_router: Router,
    client: async_nats::Client,
    background: tokio::task::JoinSet<()>,
    config: Arc<Config>,
}

impl Ingress {
    /// Binds the listener and connects to NATS (in the background: the ingress starts, and is
    /// not ready, while NATS is down).
    pub async fn build(config: Config) -> Result<Self, StartError> {
        let config = Arc::new(config);
        let listener = bind(config.http.addr).map_err(|source| StartError::Bind {
            addr: config.http.addr,
            source,
        })?;
        let client = shared::nats::connect(&config.nats, "yourlogic-ingress").await?;
        let publisher = Publisher::new(
            client.clone(),
            config.topology.clone(),
            config.http.publish_timeout,
        );
        // Background tasks live in a set, so dropping the ingress stops them.
        let mut background = tokio::task::JoinSet::new();
        background.spawn(publisher.clone().keep_topology());
        background.spawn(shared::queue::monitor(
            publisher.jetstream(),
            config.topology.clone(),
            config.http.queue_stats_interval,
        ));
        let state = AppState {
            config: config.clone(),
            publisher: publisher.clone(),
        };
        // The public port serves the events only; `/healthz`, `/readyz` and `/metrics` (which
        // name accounts and error counts) have their own address.
        let router = Router::new()
            .route("/v1/events", post(events::post_event))
            .with_state(state);
        let admin_router = shared::health::routes(Arc::new(publisher));
        let addr = config.http.admin_addr;
        let admin = bind(addr).map_err(|source| StartError::Bind { addr, source })?;
        Ok(Self {
            listener,
            router,
            admin,
            admin_router,
            client,
            background,
            config,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The operational endpoints' address actually bound.
    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets in-flight requests finish
    /// (bounded by the shutdown timeout) and flushes NATS.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        shared::telemetry::register(shared::telemetry::Service::Ingress);
        let addr = self.local_addr()?;
        let admin_addr = self.admin_addr()?;
        tracing::info!(%addr, admin = %admin_addr, "ingress listening (events; health and metrics on admin)");
        let stop = tokio_util::sync::CancellationToken::new();
        let http = &self.config.http;
        let mut limits = shared::server::Limits {
            listener: "events",
            header_timeout: http.header_timeout,
            idle_timeout: http.idle_timeout,
            max_connections: usize::try_from(http.max_connections).unwrap_or(usize::MAX),
            max_per_peer: usize::try_from(http.max_connections_per_peer).unwrap_or(usize::MAX),
        };
        let mut admin_limits = shared::server::Limits::admin();
        fit_to_open_files(&mut limits, &mut admin_limits);
        let events = shared::server::serve(
            self.listener,
            self.router,
            limits,
            stop.clone().cancelled_owned(),
        );
        let admin = shared::server::serve(
            self.admin,
            self.admin_router,
            admin_limits,
            stop.clone().cancelled_owned(),
        );
        let serving = async { tokio::join!(events, admin) };
        let mut serving = std::pin::pin!(serving);
        let timeout = http.shutdown_timeout;
        tokio::select! {
            _ = &mut serving => {}
            () = shutdown => {
                stop.cancel();
                if tokio::time::timeout(timeout, serving).await.is_err() {
                    tracing::warn!(?timeout, "in-flight requests did not finish in time");
                }
            }
        }
        let mut background = self.background;
        background.abort_all();
        let _ = tokio::time::timeout(timeout, self.client.flush()).await;
        tracing::info!("ingress stopped");
        Ok(())
    }
}

/// Keeps both listeners' connection caps below the open-files limit (a cap above it would never
/// be reached, so slow clients could hold every descriptor without eviction ever starting).
fn fit_to_open_files(events: &mut shared::server::Limits, admin: &mut shared::server::Limits) {
    let limit = shared::server::files::open_files_limit();
    let fitted =
        shared::server::files::fit_caps(&[events.max_connections, admin.max_connections], limit);
    if let [events_cap, admin_cap] = fitted[..] {
        if events_cap < events.max_connections {
            tracing::warn!(
                max_connections = events.max_connections,
                lowered_to = events_cap,
                open_files_limit = limit,
                "MAX_CONNECTIONS lowered to stay below the open-files limit (raise the limit: \
                 ulimit -n, LimitNOFILE, the container runtime's nofile)"
            );
        }
        events.max_connections = events_cap;
        admin.max_connections = admin_cap;
    }
}
