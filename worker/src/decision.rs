//! Running the conversation logic on one event the way the worker does: in its own task (so a
//! panic is caught and reported), within a time limit, and with every escalation removed from
//! the reply to a silent trigger.

use std::sync::Arc;
use std::time::Duration;

use shared::answer::Reply;
use shared::event::Event;

use crate::logic::{Context, Logic, LogicError};

/// Runs `logic` on `event`, giving up after `budget`. The error says what went wrong, as the
/// dead letter's `Yl-Error` would (`logic failed: ...`, `logic panicked: ...`, ...).
pub async fn run(
    logic: Arc<dyn Logic>,
    event: Arc<Event>,
    context: Context,
    budget: Duration,
) -> Result<Reply, String> {
    let task_event = Arc::clone(&event);
    let task = tokio::spawn(async move { logic.decide(&task_event, &context).await });
    let abort = task.abort_handle();
    let reply = match tokio::time::timeout(budget, task).await {
        Err(_) => {
            abort.abort();
            Err(format!("logic did not answer within {budget:?}"))
        }
        Ok(Err(join)) if join.is_panic() => Err(format!("logic panicked: {}", panic_text(join))),
        Ok(Err(join)) => Err(format!("logic task failed: {join}")),
        Ok(Ok(Err(LogicError::Failed(e)))) => Err(format!("logic failed: {e}")),
        Ok(Ok(Err(LogicError::Unavailable(e)))) => Err(format!("logic dependency failed: {e}")),
        Ok(Ok(Ok(reply))) => Ok(reply),
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
