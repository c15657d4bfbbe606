//! The worker configuration: every setting is a flag with an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::{LogArgs, LogFormat, NatsArgs, TokenArgs, TopologyArgs, parse_duration};

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
    pub topology: TopologyArgs,
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
    #[arg(long, env = "LOGIC_URL")]
    pub logic_url: Option<String>,
    /// With `LOGIC=http`: the longest wait for the delegate's answer (always bounded by the time
    /// left before the event's deadline).
    #[arg(long, env = "LOGIC_TIMEOUT", default_value = "2s", value_parser = parse_duration)]
    pub logic_timeout: Duration,
    /// How long an event may stay unacknowledged before JetStream hands it to another worker
    /// (a dead worker's events are taken over after this). Long work extends it automatically.
    #[arg(long, env = "ACK_WAIT", default_value = "5s", value_parser = parse_duration)]
    pub ack_wait: Duration,
    /// Time kept in hand before the deadline: no callback attempt starts later than
    /// `deadline - margin`, so the answer arrives in time.
    #[arg(long, env = "DEADLINE_MARGIN", default_value = "250ms", value_parser = parse_duration)]
    pub deadline_margin: Duration,
    /// Longest single callback attempt (retries follow while time remains).
    #[arg(long, env = "CALLBACK_TIMEOUT", default_value = "5s", value_parser = parse_duration)]
    pub callback_timeout: Duration,
    /// Deliveries of one event after which it is dead-lettered without processing (it probably
    /// crashes workers).
    #[arg(long, env = "MAX_DELIVERIES", default_value_t = 5)]
    pub max_deliveries: i64,
    /// How long in-flight events may take to finish after SIGTERM.
    #[arg(long, env = "SHUTDOWN_TIMEOUT", default_value = "20s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,
    /// How often the queue-length gauges are refreshed.
    #[arg(long, env = "QUEUE_STATS_INTERVAL", default_value = "5s", value_parser = parse_duration)]
    pub queue_stats_interval: Duration,
    #[command(flatten)]
    pub generative: GenerativeArgs,
}

/// The generative answer step (`LOGIC=generative`).
#[derive(Debug, Clone, Args)]
pub struct GenerativeArgs {
    /// With `LOGIC=generative`: the base URL of an OpenAI-compatible API, up to before
    /// `/chat/completions` (e.g. `https://api.openai.com/v1`, `http://vllm:8000/v1`,
    /// `http://ollama:11434/v1`; Azure: `https://RESOURCE.openai.azure.com/openai/deployments/DEPLOYMENT?api-version=2024-10-21`).
    #[arg(long = "generative-url", env = "GENERATIVE_URL")]
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
}

impl Default for GenerativeArgs {
    fn default() -> Self {
        Self {
            url: None,
            model: None,
            api_key: None,
            api_key_header: KeyHeader::Authorization,
            system_prompt: None,
            system_prompt_file: None,
            documents: Vec::new(),
            answers: AnswerScope::All,
            timeout: Duration::from_secs(8),
            max_tokens: 300,
            temperature: 0.2,
            max_reply_chars: 700,
            passages: 4,
            history: 12,
            escalation_tool: true,
        }
    }
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
            worker: WorkerArgs {
                addr,
                api_url: api_url.to_string(),
                logic: LogicKind::Playbook,
                playbook: None,
                bot_agent_ids: Vec::new(),
                reply_language: ReplyLanguage::Customer,
                logic_url: None,
                logic_timeout: Duration::from_secs(2),
                ack_wait: Duration::from_secs(5),
                deadline_margin: Duration::from_millis(250),
                callback_timeout: Duration::from_secs(5),
                max_deliveries: 5,
                shutdown_timeout: Duration::from_secs(20),
                queue_stats_interval: Duration::from_secs(5),
                generative: GenerativeArgs::default(),
            },
        })
    }
}
