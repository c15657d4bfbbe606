//! The ingress configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shared::config::{LogArgs, NatsArgs, TokenArgs, TopologyArgs, parse_duration};

/// Receives Salted CX Your Logic events, validates them and stores them durably in NATS
/// JetStream, keyed by conversation; answers 202 only once the event is stored.
#[derive(Debug, Parser)]
#[command(name = "ingress", version, subcommand_negates_reqs = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub config: Config,
}

/// Subcommands besides serving (the default).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Exits 0 when the URL answers 200 (for container health checks without curl).
    Healthcheck {
        /// URL to probe.
        #[arg(long, default_value = "http://127.0.0.1:8080/readyz")]
        url: String,
    },
}

/// Everything the ingress needs to run.
#[derive(Debug, Clone, Args)]
pub struct Config {
    #[command(flatten)]
    pub nats: NatsArgs,
    #[command(flatten)]
    pub token: TokenArgs,
    #[command(flatten)]
    pub log: LogArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
}

/// HTTP behaviour of the ingress.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Listen address.
    #[arg(long = "addr", env = "INGRESS_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: SocketAddr,
    /// Largest accepted event body in bytes (413 beyond).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Tolerated clock difference with Salted CX: an event is refused as expired only when its
    /// `expires` lies further in the past than this.
    #[arg(long, env = "CLOCK_SKEW", default_value = "5s", value_parser = parse_duration)]
    pub clock_skew: Duration,
    /// How long to wait for JetStream to confirm a publish before answering 503.
    #[arg(long, env = "PUBLISH_TIMEOUT", default_value = "1s", value_parser = parse_duration)]
    pub publish_timeout: Duration,
    /// How long a client may take to send a request's body (408 beyond).
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub request_timeout: Duration,
    /// How long a client may take to send a request's head, from the connection's start or the
    /// first byte of the request (the connection is closed beyond): protects against clients
    /// that never finish their headers.
    #[arg(long, env = "HEADER_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub header_timeout: Duration,
    /// How long an idle keep-alive connection stays open waiting for its next request.
    #[arg(long, env = "IDLE_TIMEOUT", default_value = "60s", value_parser = parse_duration)]
    pub idle_timeout: Duration,
    /// Most client connections open at once. At the cap the longest-idle keep-alive
    /// connection (or one stalled in its headers) is closed to make room; only when all are
    /// busy do new connections wait in the listen backlog.
    #[arg(long, env = "MAX_CONNECTIONS", default_value_t = 8192, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_connections: u32,
    /// Most connections open at once from one peer address (0: no limit). Leave it off when
    /// Salted CX (or a load balancer) reaches the ingress from a few addresses.
    #[arg(long, env = "MAX_CONNECTIONS_PER_PEER", default_value_t = 0)]
    pub max_connections_per_peer: u32,
    /// How often the queue-length gauges are refreshed.
    #[arg(long, env = "QUEUE_STATS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub queue_stats_interval: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
}

impl Config {
    /// A configuration for tests and embedding: listen on `addr`, NATS at `nats_url`.
    pub fn new(nats_url: &str, tokens: &str, addr: SocketAddr) -> Result<Self, String> {
        Ok(Self {
            nats: NatsArgs::plain(nats_url),
            token: TokenArgs {
                saltedcx_token: tokens.parse()?,
            },
            log: LogArgs {
                log_format: shared::config::LogFormat::Text,
            },
            topology: TopologyArgs::default(),
            http: HttpArgs {
                addr,
                max_body_bytes: 1 << 20,
                clock_skew: Duration::from_secs(5),
                publish_timeout: Duration::from_secs(1),
                request_timeout: Duration::from_secs(10),
                header_timeout: Duration::from_secs(5),
                idle_timeout: Duration::from_secs(60),
                max_connections: 8192,
                max_connections_per_peer: 0,
                queue_stats_interval: Duration::from_secs(5),
                shutdown_timeout: Duration::from_secs(10),
            },
        })
    }
}
