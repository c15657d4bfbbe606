//! `worker decide EVENT.json`: runs the configured logic on an event file and returns the answer
//! the worker would send, without NATS or Salted CX. The quickest way to try a playbook or to
//! reproduce a dead letter.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use shared::answer::Answer;
use shared::event::{Event, EventError};

use crate::config::WorkerArgs;
use crate::logic::Context;
use crate::logic::guarded::{self, LogicFailure};

/// The budget when the event has no usable `time` (Salted CX's usual one).
const DEFAULT_BUDGET: Duration = Duration::from_secs(15);

/// Why no answer was decided; the message names the file or the logic's error.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {source}", path.display())]
    Invalid {
        path: PathBuf,
        #[source]
        source: EventError,
    },
    #[error("cannot set up the logic: {0}")]
    Setup(#[from] crate::StartError),
    /// The logic failed: the worker would dead-letter the event and send the fallback answer.
    #[error(
        "{0}\n(the worker would dead-letter this event as logic_error and answer with the fallback: \
         a note for the agents and NEEDS_HELP, nothing for a silent trigger)"
    )]
    Logic(#[source] LogicFailure),
}

/// Reads `path`, runs the logic chosen by `settings` on it and returns the answer.
pub async fn decide(settings: &WorkerArgs, path: &Path) -> Result<Answer, DecideError> {
    let raw = std::fs::read(path).map_err(|source| DecideError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    // Within the limits the pipeline holds events to, read as the worker reads them.
    let event = shared::admission::readable_body(&raw)
        .and_then(|readable| Event::from_json(&readable))
        .map_err(|source| DecideError::Invalid {
            path: path.to_path_buf(),
            source,
        })?;
    let logic = crate::logic_from_settings(settings)?;
    let budget = budget(&event);
    let now = Utc::now();
    let context = Context::new(now + budget, now, 1, raw.into());
    let event = Arc::new(event);
    let reply = guarded::run(logic, Arc::clone(&event), context, budget)
        .await
        .map_err(DecideError::Logic)?;
    Ok(Answer::new(event.request_id, reply))
}

/// The event's own budget, `expires - time`, or [`DEFAULT_BUDGET`] without a usable `time`.
fn budget(event: &Event) -> Duration {
    event
        .time
        .and_then(|time| (event.expires - time).to_std().ok())
        .filter(|budget| !budget.is_zero())
        .unwrap_or(DEFAULT_BUDGET)
}
