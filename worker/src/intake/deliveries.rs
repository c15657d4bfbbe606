//! What the intake does with what NATS delivers: request statuses, events taken into their
//! conversation's lane, events started and finished.
//!
//! **The flood fast path.** Salted CX sends a conversation's next event only once the previous
//! one is answered, so a conversation rarely has more than one event here. A client posting
//! many events of one conversation at once (a flood) would otherwise fill NATS's window of the
//! partition (`max_ack_pending`) with events that wait for one another, and NATS would deliver
//! nothing else of the partition. So at most `max_held_per_conversation` events of one
//! conversation wait for the logic here; beyond that, its oldest queued events are answered at
//! once, in stream order, each with an empty answer carrying `control.skipToLatest` (Salted CX
//! moves on to the latest event, which runs the logic with the whole conversation in its
//! context), and acknowledged. They finish within one callback, so the flood leaves the window
//! as fast as it enters it. Answers with content keep the conversation's order; the empty
//! answers of skipped events carry nothing whose order could matter.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use shared::envelope::CONVERSATION;
use shared::telemetry::names;
use tokio::time::Instant;

use super::chores::{begin_takeover, release};
use super::held::Held;
use super::lanes::Queued;
use super::partition::{Partition, Resync};
use super::{Intake, pull};
use crate::process::{Answering, Outcome};

/// Pause before an event whose processing could not finish (NATS unavailable) is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// An event whose processing ended.
pub(super) struct Finished {
    pub partition: u16,
    pub sequence: u64,
    pub conversation: Arc<str>,
    /// How it was answered (the fast path runs outside its lane).
    pub answering: Answering,
    /// The message back, when processing could not finish and must be tried again.
    pub retry: Option<jetstream::Message>,
}

impl Intake {
    /// A message on the delivery subscription: an event or a request's status.
    pub(super) async fn on_message(&mut self, message: async_nats::Message) {
        if let Some(status) = pull::status_of(&message) {
            let Some((number, request)) = pull::route(&self.inbox, &message.subject) else {
                return;
            };
            if let Some(partition) = self.partitions.get_mut(usize::from(number)) {
                tracing::trace!(partition = number, request, ?status, description = ?message.description, "pull request status");
                on_status(partition, request, status);
                self.maintain(number).await;
            }
            return;
        }
        let Some(number) = pull::delivered_partition(&message.subject) else {
            tracing::warn!(subject = %message.subject, "delivery of an unknown subject");
            return;
        };
        let Some(partition) = self.partitions.get_mut(usize::from(number)) else {
            return;
        };
        partition.delivered();
        let message = jetstream::Message {
            message,
            context: self.js.clone(),
        };
        let Ok(info) = message.info() else {
            tracing::warn!(
                partition = number,
                "delivery without acknowledgement subject"
            );
            return;
        };
        let (sequence, delivered) = (info.stream_sequence, info.delivered);
        let pin = message
            .headers
            .as_ref()
            .and_then(|h| h.get_last(pull::PIN_HEADER))
            .map(|v| v.as_str());
        tracing::debug!(
            worker = %self.me,
            partition = number,
            stream_sequence = sequence,
            consumer_sequence = info.consumer_sequence,
            delivered,
            pin = pin.unwrap_or_default(),
            conversation = conversation_of(&message),
            "delivery"
        );
        match partition.observe_delivery(pin, info.consumer_sequence) {
            None => {}
            Some(Resync::NewPin) => {
                begin_takeover(&mut self.chores, &self.js, partition);
                if !partition.owned() {
                    // Pinned through a request sent before it was given away: let go again.
                    release(&mut self.chores, &self.client, partition);
                }
            }
            Some(Resync::LostDeliveries { expected, received }) => {
                tracing::warn!(
                    worker = %self.me,
                    partition = number,
                    expected,
                    received,
                    "deliveries of the partition were lost on the way; holding back their \
                     conversations until they are redelivered"
                );
                begin_takeover(&mut self.chores, &self.js, partition);
            }
        }
        self.accept(number, sequence, delivered, message).await;
        self.maintain(number).await;
    }

    /// Takes a delivered event into its conversation's lane.
    async fn accept(
        &mut self,
        number: u16,
        sequence: u64,
        delivered: i64,
        message: jetstream::Message,
    ) {
        let partition = &mut self.partitions[usize::from(number)];
        if delivered > 1 && self.recent.contains(number, sequence) {
            // Finished here already, its acknowledgement lost: acknowledge again, do not redo.
            if let Some(conversation) = partition.clear_barrier_entry(sequence) {
                self.try_start(&conversation);
            }
            if let Err(err) = message.ack().await {
                tracing::debug!(error = %err, "re-acknowledgement failed");
            }
            return;
        }
        let conversation: Arc<str> = conversation_of(&message).into();
        let Some(ack_subject) = message.reply.clone() else {
            return;
        };
        if self.held.redelivered(number, sequence, ack_subject.clone()) {
            // Redelivered while held here (the ack wait passed during a stall): keep one copy.
            self.lanes.replace(&conversation, sequence, message);
            return;
        }
        let held = Held {
            ack_subject,
            progress_at: Instant::now(),
            bytes: message.payload.len(),
        };
        self.held.hold(number, sequence, held);
        if partition.clear_barrier_entry(sequence).is_some() {
            tracing::debug!(
                partition = number,
                sequence,
                "event held elsewhere redelivered here"
            );
        }
        self.lanes.push(
            conversation.clone(),
            Queued {
                partition: number,
                sequence,
                message,
            },
        );
        self.try_start(&conversation);
    }

    /// Starts the next event of `conversation` if its lane is idle, its partition synced and no
    /// earlier event of it is held elsewhere; sends its events beyond the quota to the fast path.
    pub(super) fn try_start(&mut self, conversation: &Arc<str>) {
        let partitions = &self.partitions;
        let may_start = |head: &Queued<_>| {
            partitions[usize::from(head.partition)].may_start(conversation, head.sequence)
        };
        let next = self.lanes.start_next(conversation, may_start);
        let quota = self.settings.max_held_per_conversation;
        let excess = self.lanes.take_excess(conversation, quota, may_start);
        if let Some(queued) = next {
            self.spawn(queued, conversation.clone(), Answering::Decide);
        }
        for queued in excess {
            self.held
                .move_to_fast_path(queued.partition, queued.sequence);
            metrics::counter!(names::DEFERRED).increment(1);
            self.spawn(queued, conversation.clone(), Answering::SkipToLatest);
        }
    }

    /// Starts every conversation of `partition` that waits (after its barrier is installed).
    pub(super) fn start_waiting(&mut self, partition: u16) {
        for conversation in self.lanes.waiting_in(partition) {
            self.try_start(&conversation);
        }
    }

    /// Processes one event in a task of its own; the task acknowledges it once its outcome is
    /// final, or hands it back for another try.
    fn spawn(
        &mut self,
        queued: Queued<jetstream::Message>,
        conversation: Arc<str>,
        answering: Answering,
    ) {
        tracing::debug!(
            worker = %self.me,
            partition = queued.partition,
            stream_sequence = queued.sequence,
            conversation = &*conversation,
            ?answering,
            "started"
        );
        let processor = self.processor.clone();
        let me = self.me.clone();
        metrics::gauge!(names::WORKER_IN_FLIGHT).increment(1.0);
        self.running.spawn(async move {
            let Queued {
                partition,
                sequence,
                message,
            } = queued;
            let outcome = processor.handle(partition, &message, answering).await;
            metrics::gauge!(names::WORKER_IN_FLIGHT).decrement(1.0);
            let retry = if outcome == Outcome::Retry {
                tokio::time::sleep(RETRY_PAUSE).await;
                Some(message)
            } else {
                match message.ack().await {
                    Ok(()) => tracing::debug!(
                        worker = %me,
                        partition,
                        stream_sequence = sequence,
                        "acknowledged"
                    ),
                    Err(err) => tracing::warn!(
                        error = %err,
                        "acknowledgement failed; the event will be redelivered"
                    ),
                }
                None
            };
            Finished {
                partition,
                sequence,
                conversation,
                answering,
                retry,
            }
        });
    }

    pub(super) fn on_finished(&mut self, joined: Result<Finished, tokio::task::JoinError>) {
        let finished = match joined {
            Ok(finished) => finished,
            // Processing catches panics itself; a task can only fail by being aborted.
            Err(err) => {
                tracing::error!(error = %err, "event task ended abnormally");
                return;
            }
        };
        let Finished {
            partition,
            sequence,
            conversation,
            answering,
            retry,
        } = finished;
        if answering == Answering::Decide {
            self.lanes.finish(&conversation);
        }
        match retry {
            // Not finished: the fast path tries again at once; a lane's event goes back to the
            // head of its lane, still held.
            Some(message) => {
                let queued = Queued {
                    partition,
                    sequence,
                    message,
                };
                match answering {
                    Answering::SkipToLatest => self.spawn(queued, conversation.clone(), answering),
                    Answering::Decide => self.lanes.push(conversation.clone(), queued),
                }
            }
            None => {
                self.held.release(partition, sequence);
                self.recent.insert(partition, sequence);
            }
        }
        self.try_start(&conversation);
    }
}

/// Applies a request's status to its partition.
fn on_status(partition: &mut Partition, request: u64, status: pull::Status) {
    match status {
        pull::Status::Heartbeat => {}
        pull::Status::Ended => partition.request_ended(request),
        pull::Status::WrongPin => {
            // Another worker is pinned, or this one's pin expired: ask again without it.
            partition.request_ended(request);
            partition.forget_pin();
        }
        pull::Status::ConsumerGone => {
            if partition.consumer_gone(Instant::now()) {
                tracing::warn!(
                    partition = partition.number(),
                    "the partition's consumer is gone; setting it up again"
                );
            }
        }
    }
}

/// The conversation id an event's headers carry (empty when missing).
fn conversation_of(message: &async_nats::Message) -> &str {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(CONVERSATION))
        .map_or("", |v| v.as_str())
}

/// NAKs `message` so NATS delivers it again at once (to whoever holds the pin).
pub(super) async fn hand_back_one(message: &jetstream::Message) {
    if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
        tracing::debug!(error = %err, "hand-back failed; the event is redelivered after the ack wait");
    }
}
