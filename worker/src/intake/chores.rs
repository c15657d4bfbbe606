//! The NATS chores the intake runs outside its loop (setting a partition's consumer up,
//! computing and checking a takeover barrier, giving up a pin), and what the loop does with
//! each one's result.

use std::sync::Arc;

use async_nats::jetstream;
use shared::telemetry::names;
use shared::topology::{ConsumerSettings, Layout, event_subject};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::partition::{Partition, Resync};
use super::{Intake, IntakeSettings, takeover};

/// The result of a chore.
pub(super) enum Chore {
    SetUp {
        partition: u16,
        result: Result<(), SetUpError>,
    },
    Barrier {
        partition: u16,
        epoch: u64,
        result: Result<Vec<(u64, Arc<str>)>, takeover::TakeoverError>,
    },
    BarrierChecked {
        partition: u16,
        result: Result<Vec<u64>, takeover::TakeoverError>,
    },
    Unpinned,
}

/// A partition's consumer could not be set up (it is tried again).
#[derive(Debug, thiserror::Error)]
pub(super) enum SetUpError {
    #[error(transparent)]
    Topology(#[from] shared::topology::TopologyError),
    #[error("cannot read the consumer: {0}")]
    Info(#[source] async_nats::Error),
    #[error("consumer {0} is not pinned-client (NATS 2.11 or later is required)")]
    NotPinned(String),
}

impl Intake {
    /// Applies a chore's result.
    pub(super) fn on_chore(&mut self, joined: Result<Chore, tokio::task::JoinError>) {
        let Ok(chore) = joined else { return };
        match chore {
            Chore::SetUp { partition, result } => self.on_set_up(partition, result),
            Chore::Barrier {
                partition,
                epoch,
                result,
            } => self.on_barrier(partition, epoch, result),
            Chore::BarrierChecked { partition, result } => {
                self.on_barrier_checked(partition, result);
            }
            Chore::Unpinned => {}
        }
    }

    fn on_set_up(&mut self, number: u16, result: Result<(), SetUpError>) {
        let index = usize::from(number);
        let partition = &mut self.partitions[index];
        match result {
            Ok(()) => {
                tracing::debug!(partition = number, "partition consumer ready");
                partition.setup_done();
                self.setup_backoff[index].reset();
            }
            Err(error) => {
                tracing::warn!(
                    partition = number,
                    error = %error,
                    "cannot set up the partition's consumer yet; retrying"
                );
                partition.setup_failed(Instant::now() + self.setup_backoff[index].next_pause());
            }
        }
        self.publish_status();
    }

    fn on_barrier(
        &mut self,
        number: u16,
        epoch: u64,
        result: Result<Vec<(u64, Arc<str>)>, takeover::TakeoverError>,
    ) {
        let partition = &mut self.partitions[usize::from(number)];
        match result {
            Ok(mut unacknowledged) => {
                // Events finished here whose acknowledgement NATS has not applied yet (or lost)
                // are behind their conversations already.
                let recent = &self.recent;
                unacknowledged.retain(|(sequence, _)| !recent.contains(number, *sequence));
                let held = &self.held;
                let held_here = |sequence| held.contains(number, sequence);
                if partition.install_barrier(epoch, unacknowledged, held_here) {
                    log_barrier(&self.me, partition);
                    if partition.resync() == Resync::NewPin {
                        metrics::counter!(names::TAKEOVERS).increment(1);
                    }
                    self.start_waiting(number);
                }
            }
            Err(err) if partition.syncing(epoch) => {
                tracing::warn!(partition = number, error = %err, "takeover look-up failed; retrying");
                begin_takeover(&mut self.chores, &self.js, partition);
            }
            Err(_) => {}
        }
    }

    fn on_barrier_checked(
        &mut self,
        number: u16,
        result: Result<Vec<u64>, takeover::TakeoverError>,
    ) {
        let partition = &mut self.partitions[usize::from(number)];
        partition.barrier_check_ended(Instant::now());
        match result {
            Ok(gone) => {
                let released: Vec<Arc<str>> = gone
                    .into_iter()
                    .filter_map(|sequence| partition.clear_barrier_entry(sequence))
                    .collect();
                for conversation in released {
                    self.try_start(&conversation);
                }
            }
            Err(err) => tracing::debug!(partition = number, error = %err, "barrier check failed"),
        }
    }
}

/// Creates or checks partition `number`'s consumer, and that NATS pins it (an older server
/// that ignored the priority settings would deliver to every worker).
pub(super) fn set_up(
    chores: &mut JoinSet<Chore>,
    js: &jetstream::Context,
    layout: &Layout,
    settings: &IntakeSettings,
    number: u16,
) {
    let (js, layout, consumer) = (js.clone(), layout.clone(), settings.consumer);
    chores.spawn(async move {
        let result = ensure_pinned_consumer(&js, &layout, number, &consumer).await;
        Chore::SetUp {
            partition: number,
            result,
        }
    });
}

async fn ensure_pinned_consumer(
    js: &jetstream::Context,
    layout: &Layout,
    partition: u16,
    settings: &ConsumerSettings,
) -> Result<(), SetUpError> {
    let mut consumer = shared::topology::ensure_consumer(js, layout, partition, settings).await?;
    let info = consumer
        .info()
        .await
        .map_err(|err| SetUpError::Info(err.into()))?;
    if info.config.priority_policy != jetstream::consumer::PriorityPolicy::PinnedClient {
        return Err(SetUpError::NotPinned(info.name.clone()));
    }
    Ok(())
}

/// Starts computing the barrier of the partition's current pin epoch.
pub(super) fn begin_takeover(
    chores: &mut JoinSet<Chore>,
    js: &jetstream::Context,
    partition: &Partition,
) {
    let Some(epoch) = partition.syncing_epoch() else {
        return;
    };
    let js = js.clone();
    let number = partition.number();
    let (stream, consumer) = (
        partition.stream().to_string(),
        partition.consumer().to_string(),
    );
    chores.spawn(async move {
        let result =
            takeover::unacknowledged(&js, &stream, &consumer, &event_subject(number)).await;
        Chore::Barrier {
            partition: number,
            epoch,
            result,
        }
    });
}

/// Checks which of the barrier's `sequences` have left the stream.
pub(super) fn check_barrier(
    chores: &mut JoinSet<Chore>,
    js: &jetstream::Context,
    partition: &Partition,
    sequences: Vec<u64>,
) {
    let js = js.clone();
    let number = partition.number();
    let (stream, consumer) = (
        partition.stream().to_string(),
        partition.consumer().to_string(),
    );
    chores.spawn(async move {
        let result = takeover::gone(&js, &stream, &consumer, &sequences).await;
        Chore::BarrierChecked {
            partition: number,
            result,
        }
    });
}

/// Stops pulling from a partition and gives up its pin, so its new owner gets it at once. Events
/// already held are finished here.
pub(super) fn release(
    chores: &mut JoinSet<Chore>,
    client: &async_nats::Client,
    partition: &mut Partition,
) {
    partition.forget_requests();
    if !partition.forget_pin() {
        return;
    }
    let client = client.clone();
    let (stream, consumer) = (
        partition.stream().to_string(),
        partition.consumer().to_string(),
    );
    let number = partition.number();
    chores.spawn(async move {
        if let Err(err) = takeover::unpin(&client, &stream, &consumer).await {
            tracing::debug!(partition = number, error = %err, "unpin failed; the pin expires by itself");
        }
        Chore::Unpinned
    });
}

/// Logs the barrier just installed: after a new pin (a takeover) or after lost deliveries.
fn log_barrier(me: &str, partition: &Partition) {
    let number = partition.number();
    let barrier = partition.barrier();
    match partition.resync() {
        Resync::NewPin if !barrier.is_empty() => tracing::info!(
            worker = me,
            partition = number,
            held_elsewhere = barrier.len(),
            "took over the partition; waiting for the events another worker holds"
        ),
        Resync::NewPin => {
            tracing::debug!(worker = me, partition = number, "took over the partition")
        }
        Resync::LostDeliveries { .. } => tracing::info!(
            worker = me,
            partition = number,
            waiting_for = barrier.len(),
            sequences = ?barrier.sequences(),
            "resynced the partition after lost deliveries; waiting for the events delivered and not acknowledged"
        ),
    }
}
