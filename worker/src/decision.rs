//! Running the conversation logic on one event the way the worker does: in its own task (so a
//! panic is caught and reported), within a time limit, and with every escalation removed from
//! the reply to a silent trigger. Used by event processing and by `worker decide`.

use std::sync::Arc;
use std::time::Duration;

use shared::answer::Reply;
use shared::event::Event;

use crate::logic::{Context, Logic, LogicError};

/// Why the logic produced no reply; the text is what the dead letter's `Yl-Error` says.
#[derive(Debug, thiserror::Error)]
pub enum DecideError {
    #[error("logic did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("logic panicked: {0}")]
    Panicked(String),
    #[error("logic task failed: {0}")]
    Aborted(String),
    #[error(transparent)]
    Logic(#[from] LogicError),
}

/// Runs `logic` on `event`, giving up after `budget`.
pub async fn run(
    logic: Arc<dyn Logic>,
    event: Arc<Event>,
    context: Context,
    budget: Duration,
) -> Result<Reply, DecideError> {
    let task_event = Arc::clone(&event);
    let task = tokio::spawn(async move { logic.decide(&task_event, &context).await });
    let abort = task.abort_handle();
    let reply = match tokio::time::timeout(budget, task).await {
        Err(_) => {
            abort.abort();
            Err(DecideError::TimedOut(budget))
        }
        Ok(Err(join)) if join.is_panic() => Err(DecideError::Panicked(panic_text(join))),
        Ok(Err(join)) => Err(DecideError::Aborted(join.to_string())),
        Ok(Ok(result)) => result.map_err(DecideError::from),
    }?;
    // Silent triggers never escalate, whatever the logic says.
    Ok(if event.is_silent() {
        reply.without_escalation()
    } else {
        reply
    })
}

/// The message of a panic (`non-text panic` when it is not a string).
pub fn panic_text(join: tokio::task::JoinError) -> String {
    let payload = join.into_panic();
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}
