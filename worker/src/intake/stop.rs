//! Stopping without making anyone wait (SIGTERM, scaling down):
//!
//! 1. every pin is given up at once, so the partitions' new owners (which hear this worker's
//!    leaving announcement) get them without waiting for the pins to expire;
//! 2. events queued here and not started are handed back (NAK: NATS delivers them again at once,
//!    to the new owner, whose takeover barrier keeps them behind this worker's running events);
//! 3. until the last pull request this worker sent has expired, anything NATS still delivers
//!    is handed back the same way; running events finish and are acknowledged;
//! 4. the connection is flushed, so every acknowledgement and hand-back reaches NATS before the
//!    process exits.

use std::time::Duration;

use async_nats::Subscriber;
use async_nats::jetstream;
use futures::StreamExt;
use tokio::time::Instant;

use super::chores::release;
use super::deliveries::{Finished, hand_back_one};
use super::{Intake, pull};
use crate::process::Answering;

/// Time for deliveries already on their way when the last pull request expired.
const IN_TRANSIT: Duration = Duration::from_millis(300);
/// Longest wait for NATS to confirm it has everything this worker sent.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) async fn hand_back(intake: &mut Intake, deliveries: &mut Subscriber, timeout: Duration) {
    let started = Instant::now();
    let deadline = started + timeout;
    let quiet_after = started + intake.settings.pull_expires + IN_TRANSIT;
    for partition in &mut intake.partitions {
        partition.set_owned(false);
        release(&mut intake.chores, &intake.client, partition);
    }
    intake.publish_status();
    let queued = intake.lanes.take_queued();
    let handed_back = queued.len();
    for (_, event) in queued {
        hand_back_one(&event.message).await;
        intake.held.release(event.partition, event.sequence);
    }
    tracing::info!(
        handed_back,
        running = intake.running.len(),
        "stopping: handed back the events not started"
    );
    loop {
        let now = Instant::now();
        if intake.running.is_empty() && intake.chores.is_empty() && now >= quiet_after {
            break;
        }
        if now >= deadline {
            tracing::warn!(
                running = intake.running.len(),
                "events did not finish within the shutdown timeout; they will be redelivered"
            );
            intake.running.abort_all();
            break;
        }
        tokio::select! {
            () = tokio::time::sleep_until(deadline) => {}
            () = tokio::time::sleep_until(quiet_after), if now < quiet_after => {}
            Some(joined) = intake.running.join_next(), if !intake.running.is_empty() => {
                if let Ok(finished) = joined {
                    finish(intake, finished).await;
                }
            }
            Some(_) = intake.chores.join_next(), if !intake.chores.is_empty() => {}
            Some(message) = deliveries.next() => {
                if pull::status_of(&message).is_none() && message.reply.is_some() {
                    let message = jetstream::Message { message, context: intake.js.clone() };
                    hand_back_one(&message).await;
                }
            }
        }
    }
    if tokio::time::timeout(FLUSH_TIMEOUT, intake.client.flush())
        .await
        .is_err()
    {
        tracing::warn!("NATS did not confirm the last acknowledgements in time");
    }
    tracing::info!(took = ?started.elapsed(), "intake stopped");
}

/// A running event ended while stopping: acknowledged by its task, or handed back if it could
/// not finish.
async fn finish(intake: &mut Intake, finished: Finished) {
    if finished.answering == Answering::Decide {
        intake.lanes.finish(&finished.conversation);
    }
    if let Some(message) = &finished.retry {
        hand_back_one(message).await;
    }
    intake.held.release(finished.partition, finished.sequence);
}
