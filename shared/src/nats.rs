//! Connecting to NATS: authentication, TLS, endless reconnection and connection-state metrics.

use std::sync::atomic::{AtomicI64, Ordering};

use async_nats::{Client, ConnectOptions, ServerAddr};
use chrono::{DateTime, Utc};

use crate::config::NatsArgs;
use crate::secret::{redact_url, redact_urls};
use crate::telemetry::names;

/// The NATS settings are unusable, or the credentials file cannot be read. URLs in these
/// errors are redacted (no password, token or query value).
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("NATS_URL entry `{url}` is not a valid NATS address: {reason}")]
    BadUrl { url: String, reason: String },
    #[error("cannot read NATS_CREDS_FILE {path}: {reason}")]
    Credentials { path: String, reason: String },
    #[error("cannot set up the NATS connection: {0}")]
    Connect(String),
}

/// Connects in the background (the process starts even while NATS is down and reconnects
/// forever); `/readyz` reports the connection state.
pub async fn connect(args: &NatsArgs, name: &str) -> Result<Client, ConnectError> {
    let addrs = args
        .nats_url
        .split(',')
        .map(str::trim)
        .filter(|url| !url.is_empty())
        .map(|url| {
            url.parse::<ServerAddr>()
                .map_err(|err| ConnectError::BadUrl {
                    url: redact_url(url),
                    reason: err.to_string(),
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if addrs.is_empty() {
        return Err(ConnectError::BadUrl {
            url: redact_urls(&args.nats_url),
            reason: "no server given".into(),
        });
    }
    let mut options = ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connection_timeout(std::time::Duration::from_secs(2))
        .event_callback(|event| async move {
            match event {
                async_nats::Event::Connected => {
                    mark_connection_change();
                    metrics::gauge!(names::NATS_CONNECTED).set(1.0);
                    tracing::info!("connected to NATS");
                }
                async_nats::Event::Disconnected => {
                    mark_connection_change();
                    metrics::gauge!(names::NATS_CONNECTED).set(0.0);
                    tracing::warn!("disconnected from NATS; reconnecting");
                }
                other => tracing::info!(event = %other, "NATS connection event"),
            }
        });
    if let Some(path) = &args.nats_creds_file {
        options =
            options
                .credentials_file(path)
                .await
                .map_err(|err| ConnectError::Credentials {
                    path: path.display().to_string(),
                    reason: err.to_string(),
                })?;
    }
    if let (Some(user), Some(password)) = (&args.nats_user, &args.nats_password) {
        options = options.user_and_password(user.clone(), password.expose().to_string());
    }
    if let Some(token) = &args.nats_token {
        options = options.token(token.expose().to_string());
    }
    if args.nats_tls {
        options = options.require_tls(true);
    }
    if let Some(ca) = &args.nats_tls_ca_file {
        options = options.add_root_certificates(ca.clone());
    }
    options
        .connect(addrs)
        .await
        .map_err(|err| ConnectError::Connect(err.to_string()))
}

/// Whether the client is connected right now.
pub fn is_connected(client: &Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

/// When this process's NATS connection last changed state (connected, lost), in milliseconds
/// since the Unix epoch; 0 before the first connection.
static CONNECTION_CHANGED_MS: AtomicI64 = AtomicI64::new(0);

fn mark_connection_change() {
    CONNECTION_CHANGED_MS.fetch_max(Utc::now().timestamp_millis(), Ordering::Relaxed);
}

/// When this process's NATS connection last connected or was lost (the Unix epoch before the
/// first connection). Whatever NATS lost while this process was cut off from it (a restarted
/// server forgets in-memory consumer progress) happened before this moment.
pub fn connection_changed_at() -> DateTime<Utc> {
    DateTime::from_timestamp_millis(CONNECTION_CHANGED_MS.load(Ordering::Relaxed))
        .unwrap_or_default()
}
