//! The worker configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::{
    AnswersArgs, LogArgs, NatsArgs, TokenArgs, TopologyArgs, flag_defaults, parse_duration,
};
use shared::otel::TracesArgs;

use shared::secret::Secret;

use crate::logic::generative::AnswerScope;
use crate::logic::generative::client::KeyHeader;
use crate::logic::playbook::ReplyLanguage;

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
    /// The playbook, with a language model (`GENERATIVE_URL`, `GENERATIVE_MODEL`) answering
    /// customer messages at its auto-answer step, grounded in the knowledge base.
    Generative,
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
    pub traces: TracesArgs,
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
        default_value = "https://api.{region}.salted.cx",
        hide_env_values = true
    )]
    pub api_url: String,
    /// The conversation logic.
    #[arg(long, env = "LOGIC", value_enum, default_value_t = LogicKind::Playbook)]
    pub logic: LogicKind,
    /// Path to the conversation playbook file (the built-in playbook when unset).
    #[arg(long, env = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// Your Logic's own agent ids in Salted CX (comma-separated): engagements with one of these
    /// `agent` ids are the bot's own, never a human agent's. Optional: without it the bot tells
    /// its engagements apart by the turns in them (see docs/logic.md).
    #[arg(long, env = "BOT_AGENT_IDS", value_delimiter = ',')]
    pub bot_agent_ids: Vec<String>,
    /// The language of the playbook's replies: `customer` (the customer's language when the
    /// playbook has it, else its default language) or `account` (always the default language,
    /// for accounts where Salted CX translates the bot's replies).
    #[arg(long, env = "REPLY_LANGUAGE", value_enum, default_value_t = ReplyLanguage::Customer)]
    pub reply_language: ReplyLanguage,
    /// With `LOGIC=http`: the URL every event is POSTed to (required then).
    #[arg(long, env = "LOGIC_URL", hide_env_values = true)]
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
    /// Most events of one conversation waiting for the logic at its worker (queued or running);
    /// beyond that its oldest queued ones are answered at once, in order, with an empty answer
    /// carrying `control.skipToLatest`, so one flooded conversation cannot fill its partition's
    /// window in NATS (Salted CX sends a conversation's next event only after the previous one
    /// is answered, so only a flood reaches the quota).
    #[arg(long, env = "MAX_HELD_PER_CONVERSATION", default_value_t = 32, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_held_per_conversation: u32,
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
    #[arg(long, env = "CALLBACK_MAX_ATTEMPTS", default_value_t = 30, value_parser = clap::value_parser!(u32).range(1..=1000))]
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
    /// Largest event body read (the ingress's limit: an event published to NATS around the
    /// ingress is held to it too, and dead-lettered beyond it).
    #[arg(long, env = "MAX_BODY_BYTES", default_value_t = 1 << 20)]
    pub max_body_bytes: usize,
    /// Longest time an event is worked on, from when NATS stored it (the ingress's limit: a
    /// later deadline in an event's headers is treated as this far ahead; keep it below
    /// ANSWERS_TTL).
    #[arg(long, env = "MAX_BUDGET", default_value = "60s", value_parser = parse_duration)]
    pub max_budget: Duration,
    #[command(flatten)]
    pub generative: GenerativeArgs,
}

/// The generative answer step (`LOGIC=generative`).
#[derive(Debug, Clone, Args)]
pub struct GenerativeArgs {
    /// With `LOGIC=generative`: the base URL of an OpenAI-compatible API, up to before
    /// `/chat/completions` (e.g. `https://api.openai.com/v1`, `http://vllm:8000/v1`,
    /// `http://ollama:11434/v1`; Azure: `https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21`).
    #[arg(
        long = "generative-url",
        env = "GENERATIVE_URL",
        hide_env_values = true
    )]
    pub url: Option<String>,
    /// With `LOGIC=generative`: the model name sent with each request.
    #[arg(long = "generative-model", env = "GENERATIVE_MODEL")]
    pub model: Option<String>,
    /// The API key (none for servers without authentication). Never logged.
    #[arg(
        long = "generative-api-key",
        env = "GENERATIVE_API_KEY",
        hide_env_values = true
    )]
    pub api_key: Option<Secret>,
    /// How the key is sent: `authorization` (Bearer) or `api-key` (Azure OpenAI).
    #[arg(long = "generative-api-key-header", env = "GENERATIVE_API_KEY_HEADER", value_enum, default_value_t = KeyHeader::Authorization)]
    pub api_key_header: KeyHeader,
    /// The system prompt (a built-in one, asking for short answers from the passages, when
    /// neither this nor `GENERATIVE_SYSTEM_PROMPT_FILE` is set).
    #[arg(long = "generative-system-prompt", env = "GENERATIVE_SYSTEM_PROMPT")]
    pub system_prompt: Option<String>,
    /// A file holding the system prompt (instead of `GENERATIVE_SYSTEM_PROMPT`).
    #[arg(
        long = "generative-system-prompt-file",
        env = "GENERATIVE_SYSTEM_PROMPT_FILE",
        conflicts_with = "system_prompt"
    )]
    pub system_prompt_file: Option<PathBuf>,
    /// Reference documents for retrieval besides the playbook's knowledge entries: `.md` and
    /// `.txt` files or directories, comma-separated.
    #[arg(
        long = "generative-documents",
        env = "GENERATIVE_DOCUMENTS",
        value_delimiter = ','
    )]
    pub documents: Vec<PathBuf>,
    /// Which messages the model answers: `all` that reach the playbook's auto-answer step, or
    /// only those the playbook does not understand (`unmatched`).
    #[arg(long = "generative-answers", env = "GENERATIVE_ANSWERS", value_enum, default_value_t = AnswerScope::All)]
    pub answers: AnswerScope,
    /// Longest wait for the model; the time left before the event's deadline (minus what the
    /// answer needs to travel) always limits it further.
    #[arg(long = "generative-timeout", env = "GENERATIVE_TIMEOUT", default_value = "8s", value_parser = parse_duration)]
    pub timeout: Duration,
    /// Most tokens the model may generate per answer.
    #[arg(
        long = "generative-max-tokens",
        env = "GENERATIVE_MAX_TOKENS",
        default_value_t = 300
    )]
    pub max_tokens: u32,
    /// Sampling temperature.
    #[arg(
        long = "generative-temperature",
        env = "GENERATIVE_TEMPERATURE",
        default_value_t = 0.2
    )]
    pub temperature: f32,
    /// Longest answer sent to the customer, in characters (cut at a sentence end).
    #[arg(
        long = "generative-max-reply-chars",
        env = "GENERATIVE_MAX_REPLY_CHARS",
        default_value_t = 700
    )]
    pub max_reply_chars: usize,
    /// How many retrieved passages the model gets.
    #[arg(
        long = "generative-passages",
        env = "GENERATIVE_PASSAGES",
        default_value_t = 4
    )]
    pub passages: usize,
    /// How many of the conversation's last turns the model gets.
    #[arg(
        long = "generative-history",
        env = "GENERATIVE_HISTORY",
        default_value_t = 12
    )]
    pub history: usize,
    /// Whether the model may hand the conversation to a human (the `escalate_to_human` tool);
    /// `false` for servers or models without tool calling.
    #[arg(long = "generative-escalation-tool", env = "GENERATIVE_ESCALATION_TOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub escalation_tool: bool,
    /// Whether phone numbers, e-mail addresses, card and account numbers in the conversation
    /// are replaced by `[phone]`, `[email]`, `[card]`, `[account]` before it is sent to the model.
    #[arg(long = "generative-redact-pii", env = "GENERATIVE_REDACT_PII", default_value_t = true, action = clap::ArgAction::Set)]
    pub redact_pii: bool,
    /// Hosts whose links a model answer may contain (comma-separated; their subdomains too),
    /// and only links found in the passages or the conversation. None by default: an answer
    /// with a link falls back to the playbook's.
    #[arg(
        long = "generative-link-hosts",
        env = "GENERATIVE_LINK_HOSTS",
        value_delimiter = ','
    )]
    pub link_hosts: Vec<String>,
}

impl Config {
    /// A configuration for tests and embedding: NATS at `nats_url` (no authentication), the
    /// Salted CX token(s), the callback base URL and the health listener; every other setting
    /// has the default its flag declares (the environment is not read).
    pub fn new(
        nats_url: &str,
        tokens: &str,
        api_url: &str,
        addr: SocketAddr,
    ) -> Result<Self, String> {
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
            answers: flag_defaults().map_err(defaults)?,
            worker: WorkerArgs {
                addr,
                api_url: api_url.to_string(),
                ..flag_defaults().map_err(defaults)?
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

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, FromArgMatches};

    use super::*;

    #[test]
    fn a_configuration_built_in_code_is_the_command_line_with_the_same_settings() {
        let embedded = Config::new(
            "nats://10.0.0.1:4222",
            "token-a,token-b",
            "http://127.0.0.1:8088",
            "127.0.0.1:0".parse().expect("address"),
        )
        .expect("configuration");
        // The command line with the same settings, the environment ignored.
        let command = Cli::command().mut_args(|arg| arg.env(None));
        let matches = command
            .try_get_matches_from([
                "worker",
                "--nats-url",
                "nats://10.0.0.1:4222",
                "--saltedcx-token",
                "token-a,token-b",
                "--api-url",
                "http://127.0.0.1:8088",
                "--addr",
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
