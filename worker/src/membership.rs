//! Which workers are alive: every worker announces itself on a core NATS subject every
//! [`HEARTBEAT`] and listens to the others. A worker not heard from for [`MEMBER_TTL`] counts as
//! gone (killed, frozen or cut off); a worker stopping gracefully says so at once. The live set
//! decides which partitions each worker owns (see [`crate::assignment`]).
//!
//! Nothing here needs to be exact for correctness: NATS pins each partition to one worker at a
//! time whatever the workers believe, and order survives any change of owner (see
//! [`crate::intake`]). Membership only spreads the partitions evenly and quickly.
//!
//! What is heard is not trusted blindly: an id must look like the ones workers make (32
//! lowercase hex digits), and at most [`MAX_MEMBERS`] others are counted (beyond the partition
//! count a worker owns nothing anyway), so a client that may publish on the subject cannot make
//! the view grow without bound. Only the workers' NATS credential may publish there
//! (`nats-auth.conf`); a holder of it can still announce phantom workers, which own partitions
//! nobody pulls: the alert `YourLogicPartitionsUnowned` shows that the running workers own
//! fewer partitions than there are.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use shared::topology::WORKERS_SUBJECT;
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How often a worker announces itself.
pub const HEARTBEAT: Duration = Duration::from_millis(500);
/// A worker not heard from for this long counts as gone.
pub const MEMBER_TTL: Duration = Duration::from_millis(1500);
/// Most other workers counted in the view (those heard from most recently are kept).
pub const MAX_MEMBERS: usize = 1024;

/// One announcement.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Announcement {
    id: String,
    #[serde(default)]
    leaving: bool,
}

/// The live workers, as this worker sees them: sorted ids, always including itself.
pub type View = Vec<String>;

/// This worker's membership: its id and the live view.
#[derive(Clone)]
pub struct Membership {
    id: String,
    view: watch::Receiver<View>,
}

impl Membership {
    /// Subscribes on `client`; the returned future announces and listens until `stop` fires,
    /// then announces leaving. It must be polled (it is not spawned, so that dropping the
    /// worker stops it, as a killed process would). The first view is published once one
    /// heartbeat period has passed, so a worker that has just started does not claim every
    /// partition before it has heard from the others.
    pub async fn start(
        client: async_nats::Client,
        stop: CancellationToken,
    ) -> Result<(Self, impl std::future::Future<Output = ()>), async_nats::SubscribeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let subscription = client.subscribe(WORKERS_SUBJECT).await?;
        let (tx, view) = watch::channel(vec![id.clone()]);
        let running = run(client, subscription, id.clone(), tx, stop);
        Ok((Self { id, view }, running))
    }

    /// This worker's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The live view, which changes as workers come and go.
    pub fn view(&self) -> watch::Receiver<View> {
        self.view.clone()
    }
}

async fn run(
    client: async_nats::Client,
    mut subscription: async_nats::Subscriber,
    id: String,
    view: watch::Sender<View>,
    stop: CancellationToken,
) {
    let mut seen = Peers::new(id.clone());
    let mut heartbeat = tokio::time::interval(HEARTBEAT);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let settled_at = Instant::now() + HEARTBEAT + HEARTBEAT / 2;
    let mut expiry = tokio::time::interval(HEARTBEAT / 4);
    loop {
        tokio::select! {
            () = stop.cancelled() => break,
            _ = heartbeat.tick() => announce(&client, &id, false).await,
            message = subscription.next() => {
                let Some(message) = message else { break };
                match serde_json::from_slice::<Announcement>(&message.payload) {
                    Ok(announcement) => seen.heard(announcement, Instant::now()),
                    Err(err) => tracing::debug!(error = %err, "ignoring a malformed worker announcement"),
                }
            }
            _ = expiry.tick() => {}
        }
        let now = Instant::now();
        seen.expire(now);
        if now >= settled_at {
            view.send_if_modified(|current| {
                let live = seen.live();
                let changed = *current != live;
                if changed {
                    tracing::info!(workers = live.len(), "worker membership changed");
                    *current = live;
                }
                changed
            });
        }
    }
    announce(&client, &id, true).await;
    let _ = client.flush().await;
}

async fn announce(client: &async_nats::Client, id: &str, leaving: bool) {
    let announcement = Announcement {
        id: id.to_string(),
        leaving,
    };
    let Ok(payload) = serde_json::to_vec(&announcement) else {
        return;
    };
    if let Err(err) = client.publish(WORKERS_SUBJECT, payload.into()).await {
        tracing::debug!(error = %err, "worker announcement not sent");
    }
}

/// Whether `id` is one a worker makes: a UUID's 32 lowercase hex digits.
fn is_worker_id(id: &str) -> bool {
    id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// When each other worker was last heard from.
struct Peers {
    me: String,
    last_heard: BTreeMap<String, Instant>,
}

impl Peers {
    fn new(me: String) -> Self {
        Self {
            me,
            last_heard: BTreeMap::new(),
        }
    }

    fn heard(&mut self, announcement: Announcement, now: Instant) {
        if announcement.id == self.me || !is_worker_id(&announcement.id) {
            return;
        }
        if announcement.leaving {
            self.last_heard.remove(&announcement.id);
            return;
        }
        let known = self.last_heard.contains_key(&announcement.id);
        if !known && self.last_heard.len() >= MAX_MEMBERS {
            // Full: the one heard from longest ago makes room (a live worker is heard again
            // within a heartbeat).
            let oldest = self
                .last_heard
                .iter()
                .min_by_key(|(_, heard)| **heard)
                .map(|(id, _)| id.clone());
            if let Some(oldest) = oldest {
                self.last_heard.remove(&oldest);
            }
        }
        self.last_heard.insert(announcement.id, now);
    }

    fn expire(&mut self, now: Instant) {
        self.last_heard
            .retain(|_, heard| now.saturating_duration_since(*heard) < MEMBER_TTL);
    }

    fn live(&self) -> View {
        let mut live: View = self.last_heard.keys().cloned().collect();
        live.push(self.me.clone());
        live.sort_unstable();
        live
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A worker id made of `c` (e.g. `"a"` gives 32 `a`s).
    fn id(c: &str) -> String {
        c.repeat(32)
    }

    fn alive(id: &str) -> Announcement {
        Announcement {
            id: id.into(),
            leaving: false,
        }
    }

    #[test]
    fn the_view_always_holds_this_worker_and_sorts_the_others() {
        let mut peers = Peers::new(id("5"));
        let now = Instant::now();
        peers.heard(alive(&id("f")), now);
        peers.heard(alive(&id("a")), now);
        peers.heard(alive(&id("5")), now);
        assert_eq!(peers.live(), vec![id("5"), id("a"), id("f")]);
    }

    #[test]
    fn silent_workers_expire_and_leaving_ones_go_at_once() {
        let mut peers = Peers::new(id("0"));
        let start = Instant::now();
        peers.heard(alive(&id("1")), start);
        peers.heard(alive(&id("2")), start);
        peers.heard(
            Announcement {
                id: id("2"),
                leaving: true,
            },
            start,
        );
        assert_eq!(peers.live(), vec![id("0"), id("1")]);
        peers.expire(start + MEMBER_TTL - Duration::from_millis(1));
        assert_eq!(peers.live(), vec![id("0"), id("1")]);
        peers.expire(start + MEMBER_TTL);
        assert_eq!(peers.live(), vec![id("0")]);
    }

    #[test]
    fn ids_unlike_a_workers_are_ignored_and_the_view_is_bounded() {
        let mut peers = Peers::new(id("0"));
        let now = Instant::now();
        for forged in [
            "",
            "x",
            "phantom-1",
            &"A".repeat(32),
            &"a".repeat(33),
            &"g".repeat(32),
        ] {
            peers.heard(alive(forged), now);
        }
        assert_eq!(peers.live(), vec![id("0")]);
        for n in 0..MAX_MEMBERS + 50 {
            let at = now + Duration::from_micros(n as u64);
            peers.heard(alive(&format!("{n:032x}")), at);
        }
        assert_eq!(peers.live().len(), MAX_MEMBERS + 1);
        // The newest are kept.
        assert!(peers.live().contains(&format!("{:032x}", MAX_MEMBERS + 49)));
    }
}
