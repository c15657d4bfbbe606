//! Settings shared by the ingress and the worker. Every setting is a CLI flag with an environment
//! variable of the same meaning; clap reports a missing or malformed one with a clear message
//! before anything starts.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, FromArgMatches, ValueEnum};

use crate::secret::{Secret, TokenSet};

/// How to reach NATS.
#[derive(Debug, Clone, Args)]
pub struct NatsArgs {
    /// NATS server(s), comma-separated.
    #[arg(
        long,
        env = "NATS_URL",
        default_value = "nats://127.0.0.1:4222",
        hide_env_values = true
    )]
    pub nats_url: String,
    /// NATS credentials file (JWT + nkey), optional.
    #[arg(long, env = "NATS_CREDS_FILE")]
    pub nats_creds_file: Option<PathBuf>,
    /// NATS user name (with --nats-password), optional.
    #[arg(long, env = "NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password, optional.
    #[arg(long, env = "NATS_PASSWORD", hide_env_values = true)]
    pub nats_password: Option<Secret>,
    /// NATS token, optional.
    #[arg(long, env = "NATS_TOKEN", hide_env_values = true)]
    pub nats_token: Option<Secret>,
    /// Require TLS to NATS (the `tls://` scheme in NATS_URL does the same).
    #[arg(long, env = "NATS_TLS")]
    pub nats_tls: bool,
    /// Extra root certificate (PEM) to trust for NATS TLS, optional.
    #[arg(long, env = "NATS_TLS_CA_FILE")]
    pub nats_tls_ca_file: Option<PathBuf>,
}

impl NatsArgs {
    /// Settings for a NATS server at `url` with no authentication (tests, local runs).
    pub fn plain(url: impl Into<String>) -> Self {
        Self {
            nats_url: url.into(),
            nats_creds_file: None,
            nats_user: None,
            nats_password: None,
            nats_token: None,
            nats_tls: false,
            nats_tls_ca_file: None,
        }
    }
}

/// The Salted CX shared secret.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Shared secret with Salted CX; a comma-separated list for rotation (all verify inbound
    /// requests, the first signs callbacks). Required.
    #[arg(
        long = "saltedcx-token",
        env = "SALTEDCX_TOKEN",
        hide_env_values = true
    )]
    pub saltedcx_token: TokenSet,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// Logging settings (`RUST_LOG` sets the filter).
#[derive(Debug, Clone, Args)]
pub struct LogArgs {
    /// Log format: text or json.
    #[arg(long, env = "LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The event stream's layout; the ingress and the worker must agree on it.
#[derive(Debug, Clone, Args)]
pub struct TopologyArgs {
    /// Name of the JetStream stream holding the events.
    #[arg(long, env = "STREAM_NAME", default_value = "YOURLOGIC_EVENTS")]
    pub stream_name: String,
    /// Number of partitions: the units of ownership spread over the workers (fixed when the
    /// streams are created; bounds the useful worker count).
    #[arg(long, env = "PARTITIONS", default_value_t = 64, value_parser = clap::value_parser!(u16).range(1..=4096))]
    pub partitions: u16,
    /// Number of event streams the partitions are spread over (fixed when the streams are
    /// created): more shards spread NATS's work over more cores and cluster nodes.
    #[arg(long, env = "SHARDS", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub shards: u16,
    /// Stream replicas (1 locally, 3 in a NATS cluster).
    #[arg(long, env = "STREAM_REPLICAS", default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
    pub stream_replicas: u8,
    /// How long events are kept at most, e.g. `1h`, `30m`.
    #[arg(long, env = "STREAM_MAX_AGE", default_value = "1h", value_parser = parse_duration)]
    pub stream_max_age: Duration,
    /// Largest size of the event stream in bytes; new events are refused (503) beyond it.
    #[arg(long, env = "STREAM_MAX_BYTES", default_value_t = 1 << 30)]
    pub stream_max_bytes: i64,
    /// Window within which a repeated requestId is recognised as a duplicate: it must exceed
    /// how long Salted CX may resend an event (its budget). NATS keeps an entry per event for
    /// this long, so its memory grows with window × event rate.
    #[arg(long, env = "DUPLICATE_WINDOW", default_value = "2m", value_parser = parse_duration)]
    pub duplicate_window: Duration,
}

/// The record of answers (at-most-once answering); only the worker uses it, so only the worker
/// has these settings.
#[derive(Debug, Clone, Args)]
pub struct AnswersArgs {
    /// How long the record of an answer is kept (at-most-once answering across redeliveries);
    /// must exceed the longest event budget, since a redelivery after the deadline is dropped.
    #[arg(long, env = "ANSWERS_TTL", default_value = "2m", value_parser = parse_duration)]
    pub answers_ttl: Duration,
    /// Largest size of the answers bucket in bytes.
    #[arg(long, env = "ANSWERS_MAX_BYTES", default_value_t = 1 << 30)]
    pub answers_max_bytes: i64,
}

/// The settings `T` with the defaults its flags declare, whatever the environment says: the one
/// source of defaults for configurations built in code (tests, embedding), so they cannot drift
/// from what `--help`, the README and a deployment get. Fails only for a `T` with a required
/// flag.
pub fn flag_defaults<T: Args + FromArgMatches>() -> Result<T, clap::Error> {
    let command = T::augment_args(clap::Command::new("defaults")).mut_args(|arg| arg.env(None));
    T::from_arg_matches(&command.try_get_matches_from(["defaults"])?)
}

/// Parses durations such as `250ms`, `5s`, `10m`, `1h` (a bare number means seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (try 500ms, 5s, 10m or 1h)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "`{other}` is not a duration unit (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("`{text}` is not a valid duration"));
    }
    // Longer durations make no sense for any setting and would overflow date arithmetic.
    if seconds > MAX_DURATION_SECS {
        return Err(format!("`{text}` is too long (at most 30 days)"));
    }
    Duration::try_from_secs_f64(seconds).map_err(|_| format!("`{text}` is not a valid duration"))
}

/// The longest duration any setting accepts: 30 days.
const MAX_DURATION_SECS: f64 = 30.0 * 24.0 * 3600.0;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flag_defaults_are_the_declared_defaults_and_fail_only_for_a_required_flag() {
        let topology: TopologyArgs = flag_defaults().expect("defaults");
        assert_eq!(topology.stream_name, "YOURLOGIC_EVENTS");
        let answers: AnswersArgs = flag_defaults().expect("defaults");
        assert_eq!(answers.answers_ttl, Duration::from_secs(120));
        assert!(flag_defaults::<NatsArgs>().is_ok());
        assert!(
            flag_defaults::<TokenArgs>().is_err(),
            "the token is required"
        );
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("5s"), Ok(Duration::from_secs(5)));
        assert_eq!(parse_duration("10m"), Ok(Duration::from_secs(600)));
        assert_eq!(parse_duration("2"), Ok(Duration::from_secs(2)));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("x").is_err());
    }

    #[test]
    fn absurd_durations_are_refused_instead_of_overflowing() {
        assert!(parse_duration("1e30h").is_err());
        assert!(parse_duration("99999999999999999999s").is_err());
        assert!(parse_duration("31d").is_err());
        assert_eq!(parse_duration("720h"), Ok(Duration::from_secs(720 * 3600)));
    }
}
