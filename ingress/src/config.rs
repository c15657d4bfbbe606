//! The ingress configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use shared::config::{LogArgs, NatsArgs, TokenArgs, TopologyArgs, flag_defaults, parse_duration};
use shared::otel::TracesArgs;

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
        #[arg(long, default_value = "http://127.0.0.1:9091/readyz")]
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
    pub traces: TracesArgs,
    #[command(flatten)]
    pub topology: TopologyArgs,
    #[command(flatten)]
    pub http: HttpArgs,
    #[command(flatten)]
    pub routing: RoutingArgs,
}

/// Which events the ingress takes, and how long they may be worked on.
#[derive(Debug, Clone, Args)]
pub struct RoutingArgs {
    /// The Salted CX account answers go to when an event carries no `accountId` (Salted CX's
    /// docs say it "should not be necessary"). Unset: such events are refused (422).
    #[arg(long, env = "SALTEDCX_ACCOUNT_ID")]
    pub saltedcx_account_id: Option<String>,
    /// Regions whose events are taken, comma-separated (e.g. `eu,us`); the region selects the
    /// callback host. Empty: any region name.
    #[arg(long, env = "SALTEDCX_REGIONS", value_delimiter = ',')]
    pub saltedcx_regions: Vec<String>,
    /// Longest time an event is worked on: an event whose `expires` lies further ahead is
    /// answered as if it expired after this (keep it below how long the workers keep answer
    /// records).
    #[arg(long, env = "MAX_BUDGET", default_value = "60s", value_parser = parse_duration)]
    pub max_budget: Duration,
}

impl RoutingArgs {
    /// Refuses an event of a region this deployment does not serve.
    pub fn check_region(&self, region: Option<&str>) -> Result<(), crate::error::ApiError> {
        let allowed = |region: &str| {
            self.saltedcx_regions
                .iter()
                .any(|r| r.trim().eq_ignore_ascii_case(region))
        };
        match region {
            Some(region) if !self.saltedcx_regions.is_empty() && !allowed(region) => {
                Err(crate::error::ApiError::Invalid(format!(
                    "invalid event: region `{region}` is not served by this deployment \
                     (SALTEDCX_REGIONS: {})",
                    self.saltedcx_regions.join(",")
                )))
            }
            _ => Ok(()),
        }
    }

    /// `deadline`, but no later than `MAX_BUDGET` after `received_at`.
    pub fn bounded(
        &self,
        deadline: chrono::DateTime<chrono::Utc>,
        received_at: chrono::DateTime<chrono::Utc>,
    ) -> chrono::DateTime<chrono::Utc> {
        chrono::TimeDelta::from_std(self.max_budget)
            .ok()
            .and_then(|budget| received_at.checked_add_signed(budget))
            .map_or(deadline, |latest| deadline.min(latest))
    }
}

/// HTTP behaviour of the ingress.
#[derive(Debug, Clone, Args)]
pub struct HttpArgs {
    /// Listen address.
    #[arg(long = "addr", env = "INGRESS_ADDR", default_value = "0.0.0.0:8080")]
    pub addr: SocketAddr,
    /// Address of `/healthz`, `/readyz` and `/metrics`: never on the public port, which serves
    /// only the events (reach this one only from probes and Prometheus).
    #[arg(long, env = "INGRESS_ADMIN_ADDR", default_value = "0.0.0.0:9091")]
    pub admin_addr: SocketAddr,
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
    /// Most client connections open at once (lowered, with a warning, to stay below the
    /// open-files limit). At the cap a connection stalled in its headers, else the longest-idle
    /// keep-alive one, is closed to make room; only when all are busy do new connections wait
    /// in the listen backlog.
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
    /// A configuration for tests and embedding: listen on `addr` (the operational endpoints on
    /// the same IP, any free port), NATS at `nats_url` (no authentication), the Salted CX
    /// token(s); every other setting has the default its flag declares (the environment is not
    /// read).
    pub fn new(nats_url: &str, tokens: &str, addr: SocketAddr) -> Result<Self, String> {
        let defaults = |err: clap::Error| format!("the settings' defaults do not parse: {err}");
        Ok(Self {
            nats: NatsArgs {
                nats_url: nats_url.to_string(),
                ..flag_defaults().map_err(defaults)?
            },
            token: TokenArgs {
                saltedcx_token: tokens.parse()?,
            },
            log: flag_defaults().map_err(defaults)?,
            traces: flag_defaults().map_err(defaults)?,
            topology: flag_defaults().map_err(defaults)?,
            routing: flag_defaults().map_err(defaults)?,
            http: HttpArgs {
                addr,
                admin_addr: SocketAddr::new(addr.ip(), 0),
                ..flag_defaults().map_err(defaults)?
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[test]
    fn a_configuration_built_in_code_is_the_command_line_with_the_same_settings() {
        let embedded = Config::new(
            "nats://10.0.0.1:4222",
            "token-a,token-b",
            "127.0.0.1:0".parse().expect("address"),
        )
        .expect("configuration");
        // The command line with the same settings, the environment ignored.
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from([
                "ingress",
                "--nats-url",
                "nats://10.0.0.1:4222",
                "--saltedcx-token",
                "token-a,token-b",
                "--addr",
                "127.0.0.1:0",
                "--admin-addr",
                "127.0.0.1:0",
            ])
            .expect("valid arguments");
        let parsed = Cli::from_arg_matches(&matches)
            .expect("valid arguments")
            .config;
        // Every field (secrets print as `***`, alike): `Config::new` sets nothing but these and
        // takes every other value from the flags' own defaults.
        assert_eq!(format!("{embedded:?}"), format!("{parsed:?}"));
    }
}
