//! Which workers are alive: every worker announces itself on a core NATS subject every
//! [`HEARTBEAT`] and listens to the others. A worker not heard from for [`MEMBER_TTL`] counts as
//! gone (killed, frozen or cut off); a worker stopping gracefully says so at once. The live set
//! decides which partitions each worker owns (see [`super::assignment`]).
//!
//! Nothing here needs to be exact for correctness: NATS pins each partition to one worker at a
//! time whatever the workers believe, and order survives any change of owner (see
//! [`super`]). Membership only spreads the partitions evenly and quickly.
//!
//! What is heard is not trusted blindly. Announcements are signed (HMAC-SHA256) with the shared
//! Salted CX token and carry the time they were sent: one that no token of this worker verifies,
//! or sent more than [`MAX_SKEW`] from now, is ignored, so a client that may publish on the
//! subject without holding the secret cannot announce phantom workers (which would own
//! partitions nobody pulls). During a token rotation a worker verifies with every token it
//! accepts, as for events; a worker not yet given the new token ignores those signed with it,
//! so views may differ for a while, which only makes ownership overlap (NATS pins each
//! partition to one of them). An id must also look like the ones workers make (32 lowercase
//! hex digits), and at most [`MAX_MEMBERS`] others are counted. Should members that are not
//! running workers appear anyway, the alert `YourLogicPartitionsUnowned` fires.

use std::collections::BTreeMap;
use std::time::Duration;

use futures::StreamExt;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use shared::secret::{Secret, TokenSet};
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
/// Farthest an announcement's time may be from this worker's clock (clocks differ a little;
/// a replayed announcement keeps a worker in the view at most this long).
pub const MAX_SKEW: Duration = Duration::from_secs(30);

/// One announcement.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Announcement {
    id: String,
    #[serde(default)]
    leaving: bool,
    /// When it was sent (Unix milliseconds, the sender's clock).
    #[serde(default)]
    time: i64,
    /// HMAC-SHA256 of the fields above with the Salted CX token, in hex.
    #[serde(default)]
    mac: String,
}

impl Announcement {
    /// An announcement of `id`, signed with `token`, sent now.
    fn signed(id: &str, leaving: bool, token: &Secret) -> Self {
        let time = chrono::Utc::now().timestamp_millis();
        let mac = hex(&mac_of(token, id, leaving, time).finalize().into_bytes());
        Self {
            id: id.to_string(),
            leaving,
            time,
            mac,
        }
    }

    /// Whether one of `tokens` signed it, and it was sent within [`MAX_SKEW`] of `now_ms`.
    fn is_authentic(&self, tokens: &TokenSet, now_ms: i64) -> bool {
        let skew = i64::try_from(MAX_SKEW.as_millis()).unwrap_or(i64::MAX);
        if self.time.abs_diff(now_ms) > skew.unsigned_abs() {
            return false;
        }
        let Some(mac) = unhex(&self.mac) else {
            return false;
        };
        tokens.all().iter().any(|token| {
            mac_of(token, &self.id, self.leaving, self.time)
                .verify_slice(&mac)
                .is_ok()
        })
    }
}

/// The MAC of an announcement's fields, keyed by `token` (the subject names the purpose, so the
/// token's MAC here means nothing anywhere else).
fn mac_of(token: &Secret, id: &str, leaving: bool, time: i64) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(token.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{WORKERS_SUBJECT}\n{id}\n{leaving}\n{time}").as_bytes());
    mac
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
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
        tokens: TokenSet,
        stop: CancellationToken,
    ) -> Result<(Self, impl std::future::Future<Output = ()>), async_nats::SubscribeError> {
        let id = uuid::Uuid::new_v4().simple().to_string();
        let subscription = client.subscribe(WORKERS_SUBJECT).await?;
        let (tx, view) = watch::channel(vec![id.clone()]);
        let running = run(client, subscription, id.clone(), tokens, tx, stop);
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
    tokens: TokenSet,
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
            _ = heartbeat.tick() => announce(&client, &id, &tokens, false).await,
            message = subscription.next() => {
                let Some(message) = message else { break };
                match serde_json::from_slice::<Announcement>(&message.payload) {
                    Ok(announcement)
                        if announcement.is_authentic(&tokens, chrono::Utc::now().timestamp_millis()) =>
                    {
                        seen.heard(announcement, Instant::now());
                    }
                    Ok(_) => tracing::debug!("ignoring a worker announcement without a valid signature"),
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
    announce(&client, &id, &tokens, true).await;
    let _ = client.flush().await;
}

async fn announce(client: &async_nats::Client, id: &str, tokens: &TokenSet, leaving: bool) {
    let announcement = Announcement::signed(id, leaving, tokens.signing());
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
            time: 0,
            mac: String::new(),
        }
    }

    #[test]
    fn only_announcements_signed_with_a_known_token_and_sent_recently_count() {
        let tokens: TokenSet = "new-token,old-token".parse().expect("tokens");
        let now = chrono::Utc::now().timestamp_millis();
        let signed = Announcement::signed(&id("a"), false, &Secret::new("old-token"));
        assert!(
            signed.is_authentic(&tokens, now),
            "any accepted token verifies"
        );
        let stranger = Announcement::signed(&id("a"), false, &Secret::new("guess"));
        assert!(!stranger.is_authentic(&tokens, now));
        let mut forged = signed.clone();
        forged.id = id("b");
        assert!(!forged.is_authentic(&tokens, now), "the id is signed");
        forged = signed.clone();
        forged.leaving = true;
        assert!(!forged.is_authentic(&tokens, now), "leaving is signed");
        let skew = i64::try_from(MAX_SKEW.as_millis()).expect("fits");
        assert!(!signed.is_authentic(&tokens, now + skew + 1_000), "too old");
        assert!(!alive(&id("c")).is_authentic(&tokens, now), "unsigned");
        let mut odd = signed;
        odd.mac = "zz".into();
        assert!(!odd.is_authentic(&tokens, now));
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
                time: 0,
                mac: String::new(),
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
