//! The worker configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::{
    AnswersArgs, LogArgs, LogFormat, NatsArgs, TokenArgs, TopologyArgs, parse_duration,
};

/// Consumes Salted CX events from NATS JetStream in conversation order, runs the conversation
/// logic and delivers each answer to Salted CX before the event's deadline.
#[derive(Debug, Parser)]
#[command(name = "worker", version, subcommand_negates_reqs = true)]
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
        #[arg(long, default_value = "http://127.0.0.1:9090/readyz")]
        url: String,
    },
    /// Validates a playbook file and prints a summary: exits 0 when it is valid, 1 with the
    /// errors (file, line, column, what is wrong) otherwise. For CI pipelines.
    CheckPlaybook {
        /// The playbook file (TOML).
        file: PathBuf,
    },
    /// Lists, shows or purges the dead letters (the stream YOURLOGIC_DEAD_LETTERS).
    ///
    /// Dead letters are the events that could not be processed, stored with the error. Connects
    /// with the worker's NATS settings (NATS_URL, NATS_CREDS_FILE, ...; as flags they go before
    /// the subcommand: `worker --nats-url URL dead-letters list`).
    DeadLetters {
        #[command(subcommand)]
        command: DeadLettersCommand,
    },
    /// Prints the answer the configured logic gives to an event file (the callback body).
    ///
    /// Runs the logic the service would run (LOGIC, PLAYBOOK, LOGIC_URL, LOGIC_TIMEOUT) on the
    /// event: exits 0 with the answer the worker would send, 1 with the error when the file is
    /// not a valid event or the logic fails. The logic gets the event's budget (`expires - time`,
    /// else 15 s) from now, as if the event had just arrived. NATS and Salted CX are not
    /// contacted.
    Decide {
        /// The event file (JSON, as Salted CX sends it; `worker dead-letters show ID --event`
        /// prints a dead letter's event).
        file: PathBuf,
    },
}

/// `worker dead-letters ...`.
#[derive(Debug, Subcommand)]
pub enum DeadLettersCommand {
    /// One line per dead letter, oldest first: id, when it was dead-lettered, reason,
    /// conversation, requestId.
    List {
        /// Only the newest N dead letters.
        #[arg(long, value_name = "N")]
        limit: Option<u64>,
        /// Print a JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// One dead letter in full: the error, every header and the event.
    Show {
        /// The dead letter's id (its sequence number in the stream, as `list` prints it) or the
        /// event's requestId (the newest dead letter of that request).
        id: String,
        /// Print a JSON object (the event under `event`) instead of text.
        #[arg(long)]
        json: bool,
        /// Print only the event, byte for byte as Salted CX sent it (for `worker decide`).
        #[arg(long, conflicts_with = "json")]
        event: bool,
    },
    /// Deletes every dead letter stored so far (not those stored while it runs).
    Purge {
        /// Really delete them; without it, only says how many would be deleted and exits 1.
        #[arg(long)]
        yes: bool,
        /// Print the result as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// Which conversation logic answers events.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogicKind {
    /// The declarative conversation playbook (`PLAYBOOK`, or the built-in default).
    #[default]
    Playbook,
    /// Echo every customer message back (smoke tests).
    Echo,
    /// Forward every event to your own HTTP service (`LOGIC_URL`) and relay its answer.
    Http,
}

/// Everything the worker needs to run.
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
    pub answers: AnswersArgs,
    #[command(flatten)]
    pub worker: WorkerArgs,
}

/// Worker behaviour.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// Health and metrics listen address.
    #[arg(long = "addr", env = "WORKER_ADDR", default_value = "0.0.0.0:9090")]
    pub addr: SocketAddr,
    /// Callback base URL; `{region}` is replaced by the event's region.
    #[arg(
        long,
        env = "SALTEDCX_API_URL",
        default_value = "https://api.{region}.salted.cx"
    )]
    pub api_url: String,
    /// The conversation logic.
    #[arg(long, env = "LOGIC", value_enum, default_value_t = LogicKind::Playbook)]
    pub logic: LogicKind,
    /// Path to the conversation playbook file (the built-in playbook when unset).
    #[arg(long, env = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// With `LOGIC=http`: the URL every event is POSTed to (required then).
    #[arg(long, env = "LOGIC_URL")]
    pub logic_url: Option<String>,
    /// With `LOGIC=http`: the longest wait for the delegate's answer (always bounded by the time
    /// left before the event's deadline).
    #[arg(long, env = "LOGIC_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub logic_timeout: Duration,
    /// How long an event may stay unacknowledged without news before JetStream delivers it
    /// again (a dead worker's events are taken over after this). A live worker reports progress
    /// on the events it holds every third of it, so they are never taken from it.
    #[arg(long, env = "ACK_WAIT", default_value = "2s", value_parser = parse_ack_wait)]
    pub ack_wait: Duration,
    /// Most events of one partition delivered to its worker and not yet finished: they run
    /// concurrently, one per conversation at a time.
    #[arg(long, env = "IN_FLIGHT_PER_PARTITION", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub in_flight_per_partition: u32,
    /// Above this many bytes of events held (queued or running), the worker asks NATS for no
    /// more until some finish: bounds its memory whatever the event sizes.
    #[arg(long, env = "MAX_HELD_BYTES", default_value_t = 64 << 20, value_parser = clap::value_parser!(u64).range(1 << 20..))]
    pub max_held_bytes: u64,
    /// Time kept in hand before the deadline: no callback attempt starts later than
    /// `deadline - margin`, so the answer arrives in time.
    #[arg(long, env = "DEADLINE_MARGIN", default_value = "250ms", value_parser = parse_duration)]
    pub deadline_margin: Duration,
    /// Longest single callback attempt (retries follow while time remains).
    #[arg(long, env = "CALLBACK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub callback_timeout: Duration,
    /// Most callback attempts for one answer (connection errors, timeouts, 5xx, 429); after the
    /// last one fails the event is dead-lettered (reason `callback_unreachable`).
    #[arg(long, env = "CALLBACK_MAX_ATTEMPTS", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub callback_max_attempts: u32,
    /// Times processing of one event may start (counted over redeliveries) before it is
    /// dead-lettered and answered with the fallback without being decided again (it probably
    /// crashes workers).
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: i64,
    /// How long in-flight events may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How often the queue-length gauges are refreshed.
    #[arg(long, env = "QUEUE_STATS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub queue_stats_interval: Duration,
}

impl Config {
    /// A configuration for tests and embedding.
    pub fn new(
        nats_url: &str,
        tokens: &str,
        api_url: &str,
        addr: SocketAddr,
    ) -> Result<Self, String> {
        Ok(Self {
            nats: NatsArgs::plain(nats_url),
            token: TokenArgs {
                saltedcx_token: tokens.parse()?,
            },
            log: LogArgs {
                log_format: LogFormat::Text,
            },
            topology: TopologyArgs::default(),
            answers: AnswersArgs::default(),
            worker: WorkerArgs {
                addr,
                api_url: api_url.to_string(),
                logic: LogicKind::Playbook,
                playbook: None,
                logic_url: None,
                logic_timeout: Duration::from_secs(2),
                ack_wait: Duration::from_secs(2),
                in_flight_per_partition: 256,
                max_held_bytes: 64 << 20,
                deadline_margin: Duration::from_millis(250),
                callback_timeout: Duration::from_secs(5),
                callback_max_attempts: 10,
                max_deliveries: 5,
                shutdown_timeout: Duration::from_secs(20),
                queue_stats_interval: Duration::from_secs(5),
            },
        })
    }
}

/// `ACK_WAIT`: a duration of at least 300 ms (progress is reported every third of it).
fn parse_ack_wait(text: &str) -> Result<Duration, String> {
    let wait = parse_duration(text)?;
    if wait < Duration::from_millis(300) {
        return Err(format!(
            "`{text}` is too short for ACK_WAIT (at least 300ms)"
        ));
    }
    Ok(wait)
}
