//! The command line of `saltedcx-sim`: every flag has an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use shared::config::{LogFormat, parse_duration};
use worker::logic::playbook::ReplyLanguage;

/// A Salted CX emulator: sends Your Logic events to the ingress like Salted CX (one at a time
/// per conversation, the next after the answer or expiry), receives the answers on the Salted
/// CX callback API, and shows or measures what happened. Point the workers'
/// SALTEDCX_API_URL at the simulator's --listen address.
#[derive(Debug, Parser)]
#[command(name = "saltedcx-sim", version, flatten_help = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// Log format of diagnostics on stderr: text or json (`RUST_LOG` sets the filter).
    #[arg(long, global = true, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// What to do.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Play a few scripted conversations and print readable transcripts.
    Demo(DemoArgs),
    /// Drive many concurrent conversations and report throughput, latency and correctness.
    Load(LoadArgs),
    /// Only serve the callback API and print every callback (for hand-made events).
    Serve(ServeArgs),
    /// Send event files (e.g. examples/events/*.json), or customer messages (--text "..."),
    /// like Salted CX and print each callback.
    ///
    /// Each event gets a fresh requestId, `time` now and `expires` one budget later; they go one
    /// after the other (the next once the previous was answered or expired). Serves the callback
    /// API meanwhile. Exit status 0 when every event was answered in time.
    Send(SendArgs),
    /// Run conversation tests (*.toml files with expectations per answer) against a playbook,
    /// in-process, or through a running pipeline with --ingress-url; exit 1 when one fails.
    Test(TestArgs),
    /// Serve the studio: a page to chat with a playbook as the customer, see why it answered,
    /// edit the file and replay, and export the conversation as a conversation test.
    ///
    /// It listens on loopback unless told otherwise and holds no secrets beyond the shared
    /// token of a local pipeline (a generative key stays in the worker's environment).
    Studio(StudioArgs),
    /// Score a playbook on conversation tests (in-process): the share of answers and of
    /// conversations meeting their expectations per category and language, and the rate of
    /// confident wrong answers. A report: exit 0 whatever the figures.
    Score(ScoreArgs),
}

/// Where the simulator listens and what token it shares with the pipeline.
#[derive(Debug, Clone, Args)]
pub struct Endpoint {
    /// Address of the simulator's callback API (the workers' SALTEDCX_API_URL).
    #[arg(long, env = "SIM_ADDR", default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,
    /// Shared secret with the ingress and workers (their SALTEDCX_TOKEN; the first of a
    /// comma-separated list).
    #[arg(
        long,
        env = "SALTEDCX_TOKEN",
        hide_env_values = true,
        default_value = "local-dev-token"
    )]
    pub token: String,
}

impl Endpoint {
    /// The token the simulator signs with and accepts (the first of a list).
    pub fn token(&self) -> String {
        self.token
            .split(',')
            .next()
            .unwrap_or_default()
            .trim()
            .to_string()
    }
}

/// Where events go and how long each may take (`demo`, `load`, `send`).
#[derive(Debug, Clone, Args)]
pub struct Target {
    /// The ingress's event endpoint (`load`: several, comma-separated, to spread the
    /// conversations over them).
    #[arg(
        long,
        env = "INGRESS_URL",
        default_value = "http://127.0.0.1:8080/v1/events"
    )]
    pub ingress_url: String,
    /// Time each event gives Your Logic to answer (`expires - time`).
    #[arg(long, env = "SIM_BUDGET", default_value = "15s", value_parser = parse_duration)]
    pub budget: Duration,
}

/// Which conversations `demo` and `load` play.
#[derive(Debug, Clone, Args)]
pub struct ScenarioArgs {
    /// Directory of *.toml scenarios to play instead of the built-in ones.
    #[arg(long, env = "SIM_SCENARIOS")]
    pub scenarios: Option<PathBuf>,
}

/// `saltedcx-sim demo`.
#[derive(Debug, Clone, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// How many conversations to play (the scenarios in turn).
    #[arg(long, env = "SIM_CONVERSATIONS", default_value_t = 3)]
    pub conversations: usize,
}

/// `saltedcx-sim load`.
#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(flatten)]
    pub target: Target,
    #[command(flatten)]
    pub scenario: ScenarioArgs,
    /// Concurrent conversations.
    #[arg(long, env = "SIM_CONVERSATIONS", default_value_t = 2000)]
    pub conversations: usize,
    /// How long to send (default 30s unless --events is given).
    #[arg(long, env = "SIM_DURATION", value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Stop after this many events.
    #[arg(long, env = "SIM_EVENTS")]
    pub events: Option<u64>,
    /// Open loop: events per second across all conversations (omit for closed loop).
    #[arg(long, env = "SIM_RATE")]
    pub rate: Option<f64>,
    /// Event size in bytes: smaller events are padded, larger ones keep their newest turns
    /// (0: natural size, growing with the conversation).
    #[arg(long, env = "SIM_EVENT_SIZE", default_value_t = 5120)]
    pub event_size: usize,
    /// Start the conversations evenly spread over this time; 0 starts them all at once, as a
    /// burst (Salted CX reconnecting, a campaign starting).
    #[arg(long, env = "SIM_RAMP_UP", default_value = "0s", value_parser = parse_duration)]
    pub ramp_up: Duration,
    /// How conversations reach the ingress: each over a connection of its own, kept alive
    /// between its events (as Salted CX does), or over one shared pool.
    #[arg(long, env = "SIM_CONNECTIONS", value_enum, default_value_t = Connections::PerConversation)]
    pub connections: Connections,
    /// Leave the latencies of the first moments out of the histograms.
    #[arg(long, env = "SIM_WARMUP", default_value = "0s", value_parser = parse_duration)]
    pub warmup: Duration,
    /// After the run, wait this long for late callbacks of expired events.
    #[arg(long, env = "SIM_DRAIN", default_value = "2s", value_parser = parse_duration)]
    pub drain: Duration,
    /// Hard limit on the sending phase, whatever else is set.
    #[arg(long, env = "SIM_TIME_LIMIT", default_value = "1h", value_parser = parse_duration)]
    pub time_limit: Duration,
    /// Print a progress line this often (0s: never).
    #[arg(long, env = "SIM_PROGRESS", default_value = "1s", value_parser = parse_duration)]
    pub progress: Duration,
    /// The workers' metrics URLs (comma-separated, e.g.
    /// `http://127.0.0.1:9090/metrics,http://127.0.0.1:9092/metrics`): events the workers
    /// counted as expired are then told apart from lost ones.
    #[arg(long, env = "SIM_WORKER_METRICS", value_delimiter = ',')]
    pub worker_metrics: Vec<String>,
    /// Also write the report as JSON to this file.
    #[arg(long, env = "SIM_REPORT_JSON")]
    pub report_json: Option<PathBuf>,
    /// Exit with status 1 unless the run had no lost event and no ordering violation.
    #[arg(long, env = "SIM_CHECK")]
    pub check: bool,
}

/// `saltedcx-sim test`.
#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    /// Conversation test files, or directories of them (*.toml).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The playbook under test (the worker's built-in playbook when unset).
    #[arg(long, env = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// Your Logic's own agent ids, as the worker's BOT_AGENT_IDS.
    #[arg(long, env = "BOT_AGENT_IDS", value_delimiter = ',')]
    pub bot_agent_ids: Vec<String>,
    /// The reply language, as the worker's REPLY_LANGUAGE.
    #[arg(long, env = "REPLY_LANGUAGE", value_enum, default_value_t = ReplyLanguage::Customer)]
    pub reply_language: ReplyLanguage,
    /// Test a running pipeline instead: POST the events to this ingress URL (point the
    /// workers' SALTEDCX_API_URL at --listen). The playbook settings above are then unused.
    #[arg(long = "ingress-url", env = "SIM_TEST_INGRESS_URL")]
    pub ingress_url: Option<String>,
    #[command(flatten)]
    pub endpoint: Endpoint,
    /// Time each event gives Your Logic to answer (`expires - time`).
    #[arg(long, env = "SIM_BUDGET", default_value = "15s", value_parser = parse_duration)]
    pub budget: Duration,
    /// Only run the cases whose name contains this text.
    #[arg(long, env = "SIM_TEST_FILTER")]
    pub filter: Option<String>,
    /// Print how the playbook understood every answer (ranked candidates with their
    /// confidence, what it chose, the requests of each message); in-process only.
    #[arg(long, env = "SIM_TEST_EXPLAIN")]
    pub explain: bool,
}

/// `saltedcx-sim score`.
#[derive(Debug, Clone, Args)]
pub struct ScoreArgs {
    /// Conversation test files, or directories of them (*.toml).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// The playbook scored (the worker's built-in playbook when unset).
    #[arg(long, env = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// Your Logic's own agent ids, as the worker's BOT_AGENT_IDS.
    #[arg(long, env = "BOT_AGENT_IDS", value_delimiter = ',')]
    pub bot_agent_ids: Vec<String>,
    /// The reply language, as the worker's REPLY_LANGUAGE.
    #[arg(long, env = "REPLY_LANGUAGE", value_enum, default_value_t = ReplyLanguage::Customer)]
    pub reply_language: ReplyLanguage,
    /// Only score the cases whose name contains this text.
    #[arg(long, env = "SIM_TEST_FILTER")]
    pub filter: Option<String>,
    /// Also list the conversations that did not pass, with their first difference.
    #[arg(long, env = "SIM_SCORE_FAILURES")]
    pub failures: bool,
    /// Also print how often the best candidate is right at each confidence, and what each
    /// answer threshold would do (to tune `matching.threshold`).
    #[arg(long, env = "SIM_SCORE_CALIBRATION")]
    pub calibration: bool,
}

/// `saltedcx-sim studio`.
#[derive(Debug, Clone, Args)]
pub struct StudioArgs {
    /// Address of the studio's page (and of the callback API the workers answer to in
    /// pipeline mode: their SALTEDCX_API_URL). Loopback unless you mean to share it.
    #[arg(long, env = "STUDIO_ADDR", default_value = "127.0.0.1:8090")]
    pub listen: SocketAddr,
    /// The playbook file to try; reloaded whenever it changes (the worker's built-in playbook
    /// when unset).
    #[arg(long, env = "PLAYBOOK")]
    pub playbook: Option<PathBuf>,
    /// A running pipeline's event endpoint: enables the pipeline mode (events go to this
    /// ingress, answers come back to --listen).
    #[arg(long = "ingress-url", env = "STUDIO_INGRESS_URL")]
    pub ingress_url: Option<String>,
    /// Shared secret with the pipeline's ingress and workers (their SALTEDCX_TOKEN; the first
    /// of a comma-separated list).
    #[arg(
        long,
        env = "SALTEDCX_TOKEN",
        hide_env_values = true,
        default_value = "local-dev-token"
    )]
    pub token: String,
    /// Your Logic's own agent ids, as the worker's BOT_AGENT_IDS.
    #[arg(long, env = "BOT_AGENT_IDS", value_delimiter = ',')]
    pub bot_agent_ids: Vec<String>,
    /// The reply language, as the worker's REPLY_LANGUAGE.
    #[arg(long, env = "REPLY_LANGUAGE", value_enum, default_value_t = ReplyLanguage::Customer)]
    pub reply_language: ReplyLanguage,
    /// Time each event gives Your Logic to answer (`expires - time`).
    #[arg(long, env = "SIM_BUDGET", default_value = "15s", value_parser = parse_duration)]
    pub budget: Duration,
    /// With --generative-model: an OpenAI-compatible server without a key (a local model
    /// server), for the generative mode in-process (up to before `/chat/completions`). The
    /// studio takes no API key: try a keyed provider through a pipeline whose worker holds it.
    #[arg(
        long = "generative-url",
        env = "GENERATIVE_URL",
        hide_env_values = true,
        requires = "generative_model"
    )]
    pub generative_url: Option<String>,
    /// The model name for the generative mode.
    #[arg(
        long = "generative-model",
        env = "GENERATIVE_MODEL",
        requires = "generative_url"
    )]
    pub generative_model: Option<String>,
    /// Reference documents for the generative mode's retrieval besides the playbook's
    /// knowledge entries (as the worker's GENERATIVE_DOCUMENTS).
    #[arg(
        long = "generative-documents",
        env = "GENERATIVE_DOCUMENTS",
        value_delimiter = ','
    )]
    pub generative_documents: Vec<PathBuf>,
}

/// `saltedcx-sim serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
}

/// `saltedcx-sim send`.
#[derive(Debug, Clone, Args)]
pub struct SendArgs {
    #[command(flatten)]
    pub endpoint: Endpoint,
    #[command(flatten)]
    pub target: Target,
    /// Print one JSON object per event (file, outcome, latency, callback) instead of text.
    #[arg(long)]
    pub json: bool,
    /// A customer message to send instead of files; repeat it for several: they go one after
    /// the other as one new conversation, each event carrying the conversation so far (the
    /// earlier messages, the bot's answers, the custom data it stored), as Salted CX sends it.
    #[arg(
        long = "text",
        value_name = "MESSAGE",
        conflicts_with = "files",
        required_unless_present = "files"
    )]
    pub texts: Vec<String>,
    /// With --text: the customer's language (`languageCustomer`, e.g. `es`): the playbook
    /// answers in it when it has it.
    #[arg(long, value_name = "LANG", default_value = "en", requires = "texts")]
    pub language: String,
    /// The event files (JSON), sent in this order.
    #[arg(value_name = "FILE", required_unless_present = "texts")]
    pub files: Vec<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn load_flags_parse_with_units() {
        let cli = Cli::try_parse_from([
            "saltedcx-sim",
            "load",
            "--conversations",
            "200",
            "--duration",
            "3s",
            "--rate",
            "500",
        ])
        .expect("valid command line");
        let Command::Load(load) = cli.command else {
            panic!("not load")
        };
        assert_eq!(load.conversations, 200);
        assert_eq!(load.duration, Some(Duration::from_secs(3)));
        assert_eq!(load.rate, Some(500.0));
        assert_eq!(load.target.budget, Duration::from_secs(15));
    }

    #[test]
    fn the_studio_listens_on_loopback_by_default_and_a_model_needs_both_its_url_and_name() {
        let cli = Cli::try_parse_from(["saltedcx-sim", "studio"]).expect("valid command line");
        let Command::Studio(studio) = cli.command else {
            panic!("not studio")
        };
        assert!(studio.listen.ip().is_loopback());
        assert!(studio.generative_url.is_none() && studio.ingress_url.is_none());
        let half =
            Cli::try_parse_from(["saltedcx-sim", "studio", "--generative-url", "http://m/v1"]);
        assert!(half.is_err(), "a model URL without a model name is refused");
    }

    #[test]
    fn the_top_level_help_shows_every_subcommands_settings() {
        let help = Cli::command().render_help().to_string();
        for expected in [
            "--ingress-url",
            "--conversations",
            "--rate",
            "--listen",
            "--report-json",
            "SIM_BUDGET",
            "saltedcx-sim send",
        ] {
            assert!(help.contains(expected), "{expected} missing from:\n{help}");
        }
    }
}

/// How conversations reach the ingress.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Connections {
    /// One HTTP connection per concurrent conversation.
    PerConversation,
    /// One pool of connections shared by all conversations.
    Pooled,
}
