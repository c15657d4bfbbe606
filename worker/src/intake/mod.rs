//! The intake: how a worker takes events from NATS, in order per conversation, with several
//! events of each partition in flight.
//!
//! - **Ownership.** The live workers ([`crate::membership`]) share the partitions out by
//!   rendezvous hashing ([`crate::assignment`]); a worker pulls only from the partitions it owns.
//!   NATS enforces one worker per partition at a time: the consumers pin one client of the
//!   priority group and refuse the others' pull requests. A worker that stops pulling loses the
//!   pin after `pin_ttl`; one that lets go (scaling, SIGTERM) gives it up at once.
//! - **Lanes.** The owner pulls events in batches and queues them by conversation
//!   ([`lanes`]): one event per conversation runs at a time, all conversations concurrently.
//! - **Takeover.** When a partition changes owner while the previous one still holds some of
//!   its events, the new owner holds back later events of those conversations until the earlier
//!   ones are acknowledged or redelivered to it ([`partition`], [`takeover`]).
//! - **Progress.** Held events are reported in progress to NATS every third of the ack wait, so
//!   a live worker's events are never redelivered elsewhere; a dead worker's are, after the ack
//!   wait.
//!
//! Everything here runs in one task (the actor loop in [`run`]): deliveries, finished events,
//! NATS chores and membership changes are applied in one place, without locks. Events are
//! processed in tasks of their own.

pub mod lanes;
pub mod partition;
pub mod pull;
pub mod recent;
mod stop;
pub mod takeover;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use shared::envelope::CONVERSATION;
use shared::telemetry::names;
use shared::topology::{ConsumerSettings, Layout, consumer_name, event_subject};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::assignment;
use crate::membership::View;
use crate::process::{Outcome, Processor};
use lanes::{Lanes, Queued};
use partition::{Held, Partition, Resync, Setup, Sync};
use recent::Recent;

/// How the intake pulls.
#[derive(Debug, Clone, Copy)]
pub struct IntakeSettings {
    pub consumer: ConsumerSettings,
    /// Most events asked for in one pull request.
    pub batch: u32,
    /// How long a pull request stays open (the pin is renewed by every request).
    pub pull_expires: Duration,
    /// Above this many bytes of held events, no more is asked for.
    pub max_buffered_bytes: usize,
    /// Most events of one conversation counted in its partition's in-flight window; later ones
    /// wait in its lane outside the window (parked).
    pub max_held_per_conversation: usize,
}

/// Largest size of one pull request's events: above the largest event NATS can carry, so a
/// request can always take the next event.
const REQUEST_MAX_BYTES: usize = 2 << 20;
/// How often the loop looks after requests, progress and barriers.
const TICK: Duration = Duration::from_millis(100);
/// How often the takeover barrier is checked against the stream.
const BARRIER_CHECK: Duration = Duration::from_millis(100);
/// Pause after a failed consumer set-up, doubling up to [`SETUP_RETRY_MAX`].
const SETUP_RETRY: Duration = Duration::from_millis(200);
const SETUP_RETRY_MAX: Duration = Duration::from_secs(5);
/// Pause before an event whose processing could not finish (NATS unavailable) is tried again.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// What readiness and the health endpoint read: partitions owned and partitions ready.
#[derive(Debug, Default)]
pub struct IntakeStatus {
    owned: AtomicUsize,
    ready: AtomicUsize,
    settled: std::sync::atomic::AtomicBool,
}

impl IntakeStatus {
    /// `Ok` once the first membership view is in and every owned partition's consumer is set
    /// up; otherwise what is missing.
    pub fn check(&self) -> Result<(), String> {
        if !self.settled.load(Ordering::Relaxed) {
            return Err("waiting for the other workers' announcements".into());
        }
        let owned = self.owned.load(Ordering::Relaxed);
        let ready = self.ready.load(Ordering::Relaxed);
        if ready < owned {
            return Err(format!("{ready} of {owned} owned partitions ready"));
        }
        Ok(())
    }
}

/// An event whose processing ended.
struct Finished {
    partition: u16,
    sequence: u64,
    conversation: Arc<str>,
    /// The message back, when processing could not finish and must be tried again.
    retry: Option<jetstream::Message>,
}

/// The result of a NATS chore run outside the loop.
enum Chore {
    SetUp {
        partition: u16,
        result: Result<(), String>,
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

/// The intake's state; see the module documentation.
pub struct Intake {
    client: async_nats::Client,
    js: jetstream::Context,
    layout: Layout,
    settings: IntakeSettings,
    processor: Arc<Processor>,
    me: Arc<str>,
    inbox: String,
    partitions: Vec<Partition>,
    lanes: Lanes<jetstream::Message>,
    running: JoinSet<Finished>,
    chores: JoinSet<Chore>,
    recent: Recent,
    held_bytes: usize,
    next_request: u64,
    setup_backoff: Vec<Duration>,
    last_progress_sweep: Instant,
    status: Arc<IntakeStatus>,
    /// How many times the NATS connection had been established at the last tick.
    connects: u64,
}

impl Intake {
    /// An intake for the worker `me`; call [`run`] to start it.
    pub fn new(
        client: async_nats::Client,
        js: jetstream::Context,
        layout: Layout,
        settings: IntakeSettings,
        processor: Arc<Processor>,
        me: String,
        status: Arc<IntakeStatus>,
    ) -> Self {
        let now = Instant::now();
        let partitions = (0..layout.partitions())
            .map(|p| Partition::new(p, layout.stream_of(p), consumer_name(p), now))
            .collect();
        Self {
            inbox: client.new_inbox(),
            setup_backoff: vec![SETUP_RETRY; usize::from(layout.partitions())],
            client,
            js,
            layout,
            settings,
            processor,
            me: me.into(),
            partitions,
            lanes: Lanes::default(),
            running: JoinSet::new(),
            chores: JoinSet::new(),
            recent: Recent::new(1 << 16),
            held_bytes: 0,
            next_request: 0,
            last_progress_sweep: now,
            status,
            connects: 0,
        }
    }
}

/// Consumes until `stop` fires, then hands back what it has not started, finishes what it has
/// (bounded by `shutdown_timeout`), and returns once NATS has every acknowledgement.
pub async fn run(
    mut intake: Intake,
    mut view: watch::Receiver<View>,
    stop: CancellationToken,
    shutdown_timeout: Duration,
) {
    let mut deliveries = match intake.client.subscribe(format!("{}.>", intake.inbox)).await {
        Ok(subscription) => subscription,
        Err(err) => {
            tracing::error!(error = %err, "cannot subscribe for deliveries");
            return;
        }
    };
    // The first view comes once the membership has heard from the other workers.
    if !wait_for_view(&mut view, &stop).await {
        return;
    }
    intake.status.settled.store(true, Ordering::Relaxed);
    intake.apply_view(&view.borrow_and_update());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            Some(finished) = intake.running.join_next(), if !intake.running.is_empty() => {
                intake.on_finished(finished);
            }
            Some(chore) = intake.chores.join_next(), if !intake.chores.is_empty() => {
                intake.on_chore(chore);
            }
            message = deliveries.next() => match message {
                Some(message) => intake.on_message(message).await,
                None => break,
            },
            Ok(()) = view.changed() => {
                let live = view.borrow_and_update().clone();
                intake.apply_view(&live);
            }
            _ = tick.tick() => intake.on_tick().await,
        }
    }
    stop::hand_back(&mut intake, &mut deliveries, shutdown_timeout).await;
}

async fn wait_for_view(view: &mut watch::Receiver<View>, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        changed = view.changed() => changed.is_ok(),
        // A worker alone hears nobody: the view does not change, its first one stands.
        () = tokio::time::sleep(crate::membership::HEARTBEAT * 2) => true,
    }
}

impl Intake {
    /// Owns the partitions the view gives this worker; lets go of the others.
    fn apply_view(&mut self, live: &View) {
        let owned = assignment::owned(&self.me, live, self.layout.partitions());
        for (partition, owns) in self.partitions.iter_mut().zip(owned) {
            if partition.owned == owns {
                continue;
            }
            partition.owned = owns;
            if !owns {
                release(&mut self.chores, &self.client, partition);
            }
        }
        metrics::gauge!(names::WORKERS_LIVE).set(live.len() as f64);
        self.publish_status();
    }

    fn publish_status(&self) {
        let owned = self.partitions.iter().filter(|p| p.owned).count();
        let ready = self
            .partitions
            .iter()
            .filter(|p| p.owned && p.setup == Setup::Done)
            .count();
        self.status.owned.store(owned, Ordering::Relaxed);
        self.status.ready.store(ready, Ordering::Relaxed);
        metrics::gauge!(names::WORKER_PARTITIONS).set(owned as f64);
    }

    /// A message on the delivery subscription: an event or a request's status.
    async fn on_message(&mut self, message: async_nats::Message) {
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
                if !partition.owned {
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
            if let Some(conversation) = partition.barrier.remove(sequence) {
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
        if let Some(held) = partition.held.get_mut(&sequence) {
            // Redelivered while held here (the ack wait passed during a stall): keep one copy.
            held.ack_subject = ack_subject;
            held.progress_at = Instant::now();
            self.lanes.replace(&conversation, sequence, message);
            return;
        }
        if self.lanes.held(&conversation) >= self.settings.max_held_per_conversation {
            // Beyond the conversation's quota: it waits in its lane, in order, like any other,
            // but outside the partition's in-flight window, which stays open for the other
            // conversations. NATS bounds how many can wait so (`max_ack_pending`).
            partition.parked += 1;
            metrics::counter!(names::DEFERRED).increment(1);
        }
        let bytes = message.payload.len();
        partition.held.insert(
            sequence,
            Held {
                conversation: conversation.clone(),
                ack_subject,
                progress_at: Instant::now(),
                bytes,
            },
        );
        self.held_bytes += bytes;
        if partition.barrier.remove(sequence).is_some() {
            tracing::debug!(
                partition = number,
                sequence,
                "event held elsewhere redelivered here"
            );
        }
        metrics::gauge!(names::WORKER_HELD).increment(1.0);
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
    /// earlier event of it is held elsewhere.
    fn try_start(&mut self, conversation: &Arc<str>) {
        let partitions = &self.partitions;
        let next = self.lanes.start_next(conversation, |head| {
            let partition = &partitions[usize::from(head.partition)];
            partition.synced() && !partition.barrier.blocks(conversation, head.sequence)
        });
        let Some(queued) = next else { return };
        tracing::debug!(
            worker = %self.me,
            partition = queued.partition,
            stream_sequence = queued.sequence,
            conversation = &**conversation,
            "started"
        );
        let processor = self.processor.clone();
        let conversation = conversation.clone();
        let me = self.me.clone();
        metrics::gauge!(names::WORKER_IN_FLIGHT).increment(1.0);
        self.running.spawn(async move {
            let Queued {
                partition,
                sequence,
                message,
            } = queued;
            let outcome = processor.handle(partition, &message).await;
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
                retry,
            }
        });
    }

    fn on_finished(&mut self, joined: Result<Finished, tokio::task::JoinError>) {
        let finished = match joined {
            Ok(finished) => finished,
            // Processing catches panics itself; a task can only fail by being aborted.
            Err(err) => {
                tracing::error!(error = %err, "event task ended abnormally");
                return;
            }
        };
        let Finished {
            partition: number,
            sequence,
            conversation,
            retry,
        } = finished;
        self.lanes.finish(&conversation);
        match retry {
            Some(message) => {
                // Not finished: back to the head of its lane, still held.
                self.lanes.push(
                    conversation.clone(),
                    Queued {
                        partition: number,
                        sequence,
                        message,
                    },
                );
            }
            None => {
                let partition = &mut self.partitions[usize::from(number)];
                if let Some(held) = partition.held.remove(&sequence) {
                    self.held_bytes = self.held_bytes.saturating_sub(held.bytes);
                    metrics::gauge!(names::WORKER_HELD).decrement(1.0);
                    // One of the conversation's parked events now counts within its quota.
                    if self.lanes.held(&conversation) >= self.settings.max_held_per_conversation {
                        partition.parked = partition.parked.saturating_sub(1);
                    }
                }
                self.recent.insert(number, sequence);
            }
        }
        self.try_start(&conversation);
    }

    fn on_chore(&mut self, joined: Result<Chore, tokio::task::JoinError>) {
        let Ok(chore) = joined else { return };
        match chore {
            Chore::SetUp { partition, result } => {
                let index = usize::from(partition);
                let state = &mut self.partitions[index];
                match result {
                    Ok(()) => {
                        tracing::debug!(partition, "partition consumer ready");
                        state.setup = Setup::Done;
                        self.setup_backoff[index] = SETUP_RETRY;
                    }
                    Err(error) => {
                        let pause = self.setup_backoff[index];
                        tracing::warn!(
                            partition,
                            error,
                            "cannot set up the partition's consumer yet; retrying"
                        );
                        state.setup = Setup::Needed {
                            not_before: Instant::now() + pause,
                        };
                        self.setup_backoff[index] = (pause * 2).min(SETUP_RETRY_MAX);
                    }
                }
                self.publish_status();
            }
            Chore::Barrier {
                partition,
                epoch,
                result,
            } => {
                let state = &mut self.partitions[usize::from(partition)];
                match result {
                    Ok(mut unacknowledged) => {
                        // Events finished here whose acknowledgement NATS has not applied yet
                        // (or lost) are behind their conversations already.
                        let recent = &self.recent;
                        unacknowledged
                            .retain(|(sequence, _)| !recent.contains(partition, *sequence));
                        if state.install_barrier(epoch, unacknowledged) {
                            log_barrier(&self.me, state);
                            if state.resync == Resync::NewPin {
                                metrics::counter!(names::TAKEOVERS).increment(1);
                            }
                            self.start_waiting(partition);
                        }
                    }
                    Err(err) if state.syncing(epoch) => {
                        tracing::warn!(partition, error = %err, "takeover look-up failed; retrying");
                        begin_takeover(&mut self.chores, &self.js, state);
                    }
                    Err(_) => {}
                }
            }
            Chore::BarrierChecked { partition, result } => {
                let state = &mut self.partitions[usize::from(partition)];
                state.barrier_check = (Instant::now(), false);
                match result {
                    Ok(gone) => {
                        let released: Vec<Arc<str>> = gone
                            .into_iter()
                            .filter_map(|s| state.barrier.remove(s))
                            .collect();
                        for conversation in released {
                            self.try_start(&conversation);
                        }
                    }
                    Err(err) => tracing::debug!(partition, error = %err, "barrier check failed"),
                }
            }
            Chore::Unpinned => {}
        }
    }

    /// Starts every conversation of `partition` that waits (after its barrier is installed).
    fn start_waiting(&mut self, partition: u16) {
        for conversation in self.lanes.waiting_in(partition) {
            self.try_start(&conversation);
        }
    }

    /// Notices when the NATS connection was established again: logs it with this worker's id and
    /// the server (to reconstruct what happened to a partition's deliveries) and pulls anew.
    fn watch_connection(&mut self) {
        let connects = self.client.statistics().connects.load(Ordering::Relaxed);
        if connects == self.connects {
            return;
        }
        let via = self.client.server_info().server_name;
        tracing::info!(worker = %self.me, connects, via, "connected to NATS");
        if self.connects > 0 {
            // Reconnected: the open pull requests may have died with the old connection. New
            // ones, sent at once with the pin, keep the pin and the partitions' events flowing
            // instead of waiting for the old ones to count as lost.
            for partition in &mut self.partitions {
                partition.forget_requests();
            }
        }
        self.connects = connects;
    }

    async fn on_tick(&mut self) {
        self.watch_connection();
        let now = Instant::now();
        for number in 0..self.layout.partitions() {
            let partition = &mut self.partitions[usize::from(number)];
            partition.forget_lost_requests(now);
            if let Setup::Needed { not_before } = partition.setup
                && partition.owned
                && now >= not_before
            {
                partition.setup = Setup::InProgress;
                let (js, layout, settings) =
                    (self.js.clone(), self.layout.clone(), self.settings.consumer);
                self.chores.spawn(async move {
                    let result = set_up(&js, &layout, number, &settings).await;
                    Chore::SetUp {
                        partition: number,
                        result,
                    }
                });
            }
            if partition.barrier_check_due(now, BARRIER_CHECK) {
                partition.barrier_check = (now, true);
                let js = self.js.clone();
                let (stream, consumer) = (partition.stream.clone(), partition.consumer.clone());
                let sequences = partition.barrier.sequences();
                self.chores.spawn(async move {
                    let result = takeover::gone(&js, &stream, &consumer, &sequences).await;
                    Chore::BarrierChecked {
                        partition: number,
                        result,
                    }
                });
            }
            self.maintain(number).await;
        }
        self.sweep_progress(now).await;
    }

    /// Tells NATS that held events are still being worked on, so they are not redelivered.
    async fn sweep_progress(&mut self, now: Instant) {
        let every = self.settings.consumer.ack_wait / 3;
        if now.saturating_duration_since(self.last_progress_sweep) < every / 2 {
            return;
        }
        self.last_progress_sweep = now;
        for partition in &mut self.partitions {
            for held in partition.held.values_mut() {
                if now.saturating_duration_since(held.progress_at) >= every {
                    held.progress_at = now;
                    let subject = held.ack_subject.clone();
                    if let Err(err) = self.client.publish(subject, "+WPI".into()).await {
                        tracing::debug!(error = %err, "progress report failed");
                    }
                }
            }
        }
    }

    /// Sends a pull request for `number` if it needs one.
    async fn maintain(&mut self, number: u16) {
        let buffer_full = self.held_bytes >= self.settings.max_buffered_bytes;
        let partition = &mut self.partitions[usize::from(number)];
        let Some(batch) = partition.next_batch(
            self.settings.batch,
            self.settings.consumer.max_in_flight,
            buffer_full,
        ) else {
            return;
        };
        self.next_request += 1;
        let id = self.next_request;
        let expires = self.settings.pull_expires;
        let body = pull::request_body(batch, expires, REQUEST_MAX_BYTES, partition.pin.as_deref());
        let reply = pull::reply_subject(&self.inbox, number, id);
        let sent = self
            .client
            .publish_with_reply(partition.api_subject.clone(), reply, body)
            .await;
        match sent {
            Ok(()) => partition.request_sent(
                id,
                batch,
                Instant::now() + expires * 2 + Duration::from_secs(1),
            ),
            Err(err) => tracing::debug!(partition = number, error = %err, "pull request not sent"),
        }
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
            partition.forget_requests();
            partition.forget_pin();
            if partition.setup == Setup::Done {
                tracing::warn!(
                    partition = partition.number,
                    "the partition's consumer is gone; setting it up again"
                );
                partition.setup = Setup::Needed {
                    not_before: Instant::now(),
                };
            }
        }
    }
}

/// Logs the barrier just installed: after a new pin (a takeover) or after lost deliveries.
fn log_barrier(me: &str, partition: &Partition) {
    let number = partition.number;
    let waiting_for = partition.barrier.len();
    match partition.resync {
        Resync::NewPin if waiting_for > 0 => tracing::info!(
            worker = me,
            partition = number,
            held_elsewhere = waiting_for,
            "took over the partition; waiting for the events another worker holds"
        ),
        Resync::NewPin => {
            tracing::debug!(worker = me, partition = number, "took over the partition")
        }
        Resync::LostDeliveries { .. } => tracing::info!(
            worker = me,
            partition = number,
            waiting_for,
            sequences = ?partition.barrier.sequences(),
            "resynced the partition after lost deliveries; waiting for the events delivered and not acknowledged"
        ),
    }
}

/// Starts computing the barrier of the partition's current pin epoch.
fn begin_takeover(chores: &mut JoinSet<Chore>, js: &jetstream::Context, partition: &Partition) {
    let Sync::Syncing { epoch } = partition.sync else {
        return;
    };
    let js = js.clone();
    let number = partition.number;
    let (stream, consumer) = (partition.stream.clone(), partition.consumer.clone());
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

/// Stops pulling from a partition and gives up its pin, so its new owner gets it at once. Events
/// already held are finished here.
fn release(chores: &mut JoinSet<Chore>, client: &async_nats::Client, partition: &mut Partition) {
    partition.forget_requests();
    if !partition.forget_pin() {
        return;
    }
    let client = client.clone();
    let (stream, consumer) = (partition.stream.clone(), partition.consumer.clone());
    let number = partition.number;
    chores.spawn(async move {
        if let Err(err) = takeover::unpin(&client, &stream, &consumer).await {
            tracing::debug!(partition = number, error = %err, "unpin failed; the pin expires by itself");
        }
        Chore::Unpinned
    });
}

/// Creates or checks a partition's consumer, and that NATS pins it (an older server that
/// ignored the priority settings would deliver to every worker).
async fn set_up(
    js: &jetstream::Context,
    layout: &Layout,
    partition: u16,
    settings: &ConsumerSettings,
) -> Result<(), String> {
    let mut consumer = shared::topology::ensure_consumer(js, layout, partition, settings)
        .await
        .map_err(|e| e.to_string())?;
    let info = consumer.info().await.map_err(|e| e.to_string())?;
    if info.config.priority_policy != async_nats::jetstream::consumer::PriorityPolicy::PinnedClient
    {
        return Err(format!(
            "consumer {} is not pinned-client (NATS 2.11 or later is required)",
            info.name
        ));
    }
    Ok(())
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
async fn hand_back_one(message: &jetstream::Message) {
    if let Err(err) = message.ack_with(AckKind::Nak(None)).await {
        tracing::debug!(error = %err, "hand-back failed; the event is redelivered after the ack wait");
    }
}
