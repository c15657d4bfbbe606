//! Running the conversation logic on one event the way the worker does, guarded: with panics
//! caught and reported, within a time limit, and with every escalation removed from the reply to
//! a silent trigger. Used by event processing and by `worker decide`.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;

use shared::answer::Reply;
use shared::event::Event;

use super::{Context, Logic, LogicError};

/// Why the logic produced no reply: too slow, panicked, or its own error. The text is what the
/// dead letter's `Yl-Error` says.
#[derive(Debug, thiserror::Error)]
pub enum LogicFailure {
    #[error("logic did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("logic panicked: {0}")]
    Panicked(String),
    /// The logic returned an error.
    #[error(transparent)]
    Error(#[from] LogicError),
}

/// Runs `logic` on `event`, giving up after `budget`. A panic is caught (the logic runs in
/// this task: no task is spawned per event).
pub async fn run(
    logic: Arc<dyn Logic>,
    event: Arc<Event>,
    context: Context,
    budget: Duration,
) -> Result<Reply, LogicFailure> {
    let deciding = AssertUnwindSafe(logic.decide(&event, &context)).catch_unwind();
    let reply = match tokio::time::timeout(budget, deciding).await {
        Err(_) => Err(LogicFailure::TimedOut(budget)),
        Ok(Err(panic)) => Err(LogicFailure::Panicked(panic_text(panic))),
        Ok(Ok(result)) => result.map_err(LogicFailure::from),
    }?;
    // Silent triggers never escalate, whatever the logic says.
    Ok(if event.is_silent() {
        reply.without_escalation()
    } else {
        reply
    })
}

/// The message of a panic (`non-text panic` when it is not a string).
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-text panic".into())
}
