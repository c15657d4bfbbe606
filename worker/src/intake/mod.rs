//! The intake: how a worker takes events from NATS, in order per conversation, with several
//! events of each partition in flight.
//!
//! - **Ownership.** The live workers ([`membership`]) share the partitions out by rendezvous
//!   hashing ([`assignment`]); a worker pulls only from the partitions it owns. NATS enforces
//!   one worker per partition at a time: the consumers pin one client of the priority group and
//!   refuse the others' pull requests. A worker that stops pulling loses the pin after
//!   `pin_ttl`; one that lets go (scaling, SIGTERM) gives it up at once.
//! - **Lanes.** The owner pulls events in batches and queues them by conversation
//!   ([`lanes`]): one event per conversation runs at a time, all conversations concurrently.
//! - **Quota.** At most `max_held_per_conversation` events of one conversation wait for the
//!   logic here; beyond that its oldest queued ones take the fast path ([`deliveries`]): they
//!   are answered at once with an empty answer telling Salted CX to skip to the latest event,
//!   so a flooded conversation cannot fill NATS's window of its partition.
//! - **Takeover.** When a partition changes owner while the previous one still holds some of
//!   its events, the new owner holds back later events of those conversations until the earlier
//!   ones are acknowledged or redelivered to it ([`partition`], [`takeover`]).
//! - **Progress.** Held events ([`held`]) are reported in progress to NATS every third of the
//!   ack wait, so a live worker's events are never redelivered elsewhere; a dead worker's are,
//!   after the ack wait.
//!
//! Everything here runs in one task (the actor loop in [`run`]): deliveries, finished events,
//! NATS chores ([`chores`]) and membership changes are applied in one place, without locks.
//! Events are processed in tasks of their own.

pub mod assignment;
mod chores;
mod deliveries;
mod held;
mod lanes;
pub mod membership;
mod partition;
mod pull;
mod recent;
mod stop;
mod takeover;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::jetstream;
use futures::StreamExt;
use shared::retry::Backoff;
use shared::telemetry::names;
use shared::topology::{ConsumerSettings, Layout, consumer_name};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::process::Processor;
use chores::Chore;
use deliveries::Finished;
use held::HeldEvents;
use lanes::Lanes;
use membership::View;
use partition::Partition;
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
    /// Most events of one conversation waiting for the logic here (queued or running); its
    /// older queued ones beyond that take the fast path.
    pub max_held_per_conversation: usize,
}

/// The intake could not go on: the worker cannot work and must exit with an error.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("cannot subscribe for deliveries: {0}")]
    Subscribe(#[source] async_nats::SubscribeError),
    #[error("the delivery subscription ended: the NATS connection is closed")]
    DeliveriesEnded,
    #[error("the worker membership ended before the intake was stopped")]
    MembershipEnded,
}

/// Largest size of one pull request's events: above the largest event NATS can carry, so a
/// request can always take the next event.
const REQUEST_MAX_BYTES: usize = 2 << 20;
/// How often the loop looks after requests, progress and barriers.
const TICK: Duration = Duration::from_millis(100);
/// How often the takeover barrier is checked against the stream.
const BARRIER_CHECK: Duration = Duration::from_millis(100);
/// Pauses after a failed consumer set-up: from about this, growing to [`SETUP_RETRY_MAX`].
const SETUP_RETRY: Duration = Duration::from_millis(200);
const SETUP_RETRY_MAX: Duration = Duration::from_secs(5);

/// What readiness and the health endpoint read: partitions owned and partitions ready.
#[derive(Debug, Default)]
pub struct IntakeStatus {
    owned: AtomicUsize,
    ready: AtomicUsize,
    settled: AtomicBool,
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
    held: HeldEvents,
    lanes: Lanes<jetstream::Message>,
    running: JoinSet<Finished>,
    chores: JoinSet<Chore>,
    recent: Recent,
    next_request: u64,
    setup_backoff: Vec<Backoff>,
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
        let count = layout.partitions();
        let partitions = (0..count)
            .map(|p| Partition::new(p, layout.stream_of(p), consumer_name(p), now))
            .collect();
        Self {
            inbox: client.new_inbox(),
            setup_backoff: vec![Backoff::new(SETUP_RETRY, SETUP_RETRY_MAX); usize::from(count)],
            client,
            js,
            layout,
            settings,
            processor,
            me: me.into(),
            partitions,
            held: HeldEvents::new(count),
            lanes: Lanes::default(),
            running: JoinSet::new(),
            chores: JoinSet::new(),
            recent: Recent::new(1 << 16),
            next_request: 0,
            last_progress_sweep: now,
            status,
            connects: 0,
        }
    }
}

/// Consumes until `stop` fires, then hands back what it has not started, finishes what it has
/// (bounded by `shutdown_timeout`), and returns once NATS has every acknowledgement. An error
/// means the intake could not go on without being stopped (the worker cannot work).
pub async fn run(
    mut intake: Intake,
    mut view: watch::Receiver<View>,
    stop: CancellationToken,
    shutdown_timeout: Duration,
) -> Result<(), IntakeError> {
    let mut deliveries = intake
        .client
        .subscribe(format!("{}.>", intake.inbox))
        .await
        .map_err(IntakeError::Subscribe)?;
    // The first view comes once the membership has heard from the other workers.
    if !wait_for_view(&mut view, &stop).await {
        return if stop.is_cancelled() {
            Ok(())
        } else {
            Err(IntakeError::MembershipEnded)
        };
    }
    intake.status.settled.store(true, Ordering::Relaxed);
    intake.apply_view(&view.borrow_and_update());
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut ended = None;
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
                None => {
                    ended = Some(IntakeError::DeliveriesEnded);
                    break;
                }
            },
            changed = view.changed() => match changed {
                Ok(()) => {
                    let live = view.borrow_and_update().clone();
                    intake.apply_view(&live);
                }
                Err(_) if stop.is_cancelled() => break,
                Err(_) => {
                    ended = Some(IntakeError::MembershipEnded);
                    break;
                }
            },
            _ = tick.tick() => intake.on_tick().await,
        }
    }
    stop::hand_back(&mut intake, &mut deliveries, shutdown_timeout).await;
    match ended {
        Some(error) if !stop.is_cancelled() => Err(error),
        _ => Ok(()),
    }
}

async fn wait_for_view(view: &mut watch::Receiver<View>, stop: &CancellationToken) -> bool {
    tokio::select! {
        () = stop.cancelled() => false,
        changed = view.changed() => changed.is_ok(),
        // A worker alone hears nobody: the view does not change, its first one stands.
        () = tokio::time::sleep(membership::HEARTBEAT * 2) => true,
    }
}

impl Intake {
    /// Owns the partitions the view gives this worker; lets go of the others.
    fn apply_view(&mut self, live: &View) {
        let owned = assignment::owned(&self.me, live, self.layout.partitions());
        for (partition, owns) in self.partitions.iter_mut().zip(owned) {
            if partition.set_owned(owns) && !owns {
                chores::release(&mut self.chores, &self.client, partition);
            }
        }
        metrics::gauge!(names::WORKERS_LIVE).set(live.len() as f64);
        self.publish_status();
    }

    fn publish_status(&self) {
        let owned = self.partitions.iter().filter(|p| p.owned()).count();
        let ready = self.partitions.iter().filter(|p| p.ready()).count();
        self.status.owned.store(owned, Ordering::Relaxed);
        self.status.ready.store(ready, Ordering::Relaxed);
        metrics::gauge!(names::WORKER_PARTITIONS).set(owned as f64);
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
            if partition.begin_setup(now) {
                chores::set_up(
                    &mut self.chores,
                    &self.js,
                    &self.layout,
                    &self.settings,
                    number,
                );
            }
            if let Some(sequences) = partition.begin_barrier_check(now, BARRIER_CHECK) {
                chores::check_barrier(&mut self.chores, &self.js, partition, sequences);
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
        for subject in self.held.due_for_progress(now, every) {
            if let Err(err) = self.client.publish(subject, "+WPI".into()).await {
                tracing::debug!(error = %err, "progress report failed");
            }
        }
    }

    /// Sends a pull request for `number` if it needs one.
    async fn maintain(&mut self, number: u16) {
        let buffer_full = self.held.bytes() >= self.settings.max_buffered_bytes;
        let in_window = self.held.in_window(number);
        let partition = &mut self.partitions[usize::from(number)];
        let Some(batch) = partition.next_batch(
            in_window,
            self.settings.batch,
            self.settings.consumer.max_in_flight,
            buffer_full,
        ) else {
            return;
        };
        self.next_request += 1;
        let id = self.next_request;
        let expires = self.settings.pull_expires;
        let body = pull::request_body(batch, expires, REQUEST_MAX_BYTES, partition.pin());
        let reply = pull::reply_subject(&self.inbox, number, id);
        let sent = self
            .client
            .publish_with_reply(partition.api_subject().to_string(), reply, body)
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
