//! The NATS layout.
//!
//! - **Partitions.** A conversation belongs to partition `FNV-1a(conversation id) % PARTITIONS`;
//!   its events are published to `yourlogic.events.<partition>`. The partition is the unit of
//!   ownership: one worker at a time consumes it.
//! - **Shards.** The partitions are spread over `SHARDS` streams (partition `p` lives in shard
//!   `p % SHARDS`), so that NATS's per-stream work (storage, acknowledgements) spreads over its
//!   cores and, in a cluster, over its nodes.
//! - **Consumers.** Each partition has one durable pull consumer with a pinned-client priority
//!   group: NATS delivers its events to one worker at a time (the pinned one), several in flight
//!   (`max_ack_pending`), and hands the partition to another worker only when the pinned one
//!   stops pulling or lets go. See the worker's `intake` module for how order is kept when that
//!   happens.
//! - A dead-letter stream, a KV bucket of answers (at-most-once answering) and a core-NATS
//!   subject on which workers announce themselves complete the layout.
//!
//! Everything is created idempotently at start-up ([`streams`], [`consumers`]).

pub mod consumers;
pub mod streams;

use crate::config::TopologyArgs;

pub use consumers::{ConsumerSettings, consumer_config, ensure_consumer};
pub use streams::{
    TopologyError, ensure_answers_bucket, ensure_dead_letter_stream, ensure_event_streams,
    stream_config,
};

/// Subject prefix of the event streams; events go to `yourlogic.events.<partition>`.
pub const EVENTS_PREFIX: &str = "yourlogic.events";
/// Name of the dead-letter stream.
pub const DEAD_LETTER_STREAM: &str = "YOURLOGIC_DEAD_LETTERS";
/// Subject prefix of dead letters: `yourlogic.dead.<partition>`.
pub const DEAD_LETTER_PREFIX: &str = "yourlogic.dead";
/// KV bucket recording answers, so a redelivered event is never answered differently.
pub const ANSWERS_BUCKET: &str = "yourlogic_answers";
/// Core NATS subject on which workers announce that they are alive (or leaving).
pub const WORKERS_SUBJECT: &str = "yourlogic.workers";
/// The priority group every worker pulls with; the consumers pin one worker of it at a time.
pub const PRIORITY_GROUP: &str = "workers";

/// Stable partition of a conversation: FNV-1a (64 bit) of its id modulo `partitions`.
/// Stable across processes, versions and platforms; never change it for an existing stream.
pub fn partition_of(conversation: &str, partitions: u16) -> u16 {
    (fnv1a(conversation.bytes()) % u64::from(partitions.max(1))) as u16
}

/// FNV-1a (64 bit) of `bytes`: the one stable hash of the topology (partitions, and the
/// workers' share of them). Its values must never change.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    bytes.into_iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The subject an event of `partition` is published to.
pub fn event_subject(partition: u16) -> String {
    format!("{EVENTS_PREFIX}.{partition}")
}

/// The subject a dead letter of `partition` is published to.
pub fn dead_letter_subject(partition: u16) -> String {
    format!("{DEAD_LETTER_PREFIX}.{partition}")
}

/// The durable consumer name of `partition`.
pub fn consumer_name(partition: u16) -> String {
    format!("yourlogic-p{partition:04}")
}

/// Where each partition lives: the streams (shards) and their subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    stream_name: String,
    partitions: u16,
    shards: u16,
}

impl Layout {
    /// The layout the settings describe.
    pub fn new(args: &TopologyArgs) -> Self {
        Self {
            stream_name: args.stream_name.clone(),
            partitions: args.partitions.max(1),
            shards: args.shards.clamp(1, args.partitions.max(1)),
        }
    }

    /// Number of partitions.
    pub fn partitions(&self) -> u16 {
        self.partitions
    }

    /// Number of shard streams.
    pub fn shards(&self) -> u16 {
        self.shards
    }

    /// The partition of `conversation`.
    pub fn partition_of(&self, conversation: &str) -> u16 {
        partition_of(conversation, self.partitions)
    }

    /// The shard holding `partition`.
    pub fn shard_of(&self, partition: u16) -> u16 {
        partition % self.shards
    }

    /// The stream of shard `shard`: `STREAM_NAME` itself with one shard, `STREAM_NAME_<shard>`
    /// with several.
    pub fn shard_stream(&self, shard: u16) -> String {
        if self.shards == 1 {
            self.stream_name.clone()
        } else {
            format!("{}_{shard}", self.stream_name)
        }
    }

    /// The stream holding `partition`.
    pub fn stream_of(&self, partition: u16) -> String {
        self.shard_stream(self.shard_of(partition))
    }

    /// The partitions of shard `shard`, in order.
    pub fn shard_partitions(&self, shard: u16) -> impl Iterator<Item = u16> + '_ {
        (shard..self.partitions).step_by(usize::from(self.shards))
    }

    /// The subjects shard `shard`'s stream binds: every partition's subject with one shard (a
    /// wildcard), its own partitions' subjects with several.
    pub fn shard_subjects(&self, shard: u16) -> Vec<String> {
        if self.shards == 1 {
            vec![format!("{EVENTS_PREFIX}.*")]
        } else {
            self.shard_partitions(shard).map(event_subject).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layout(partitions: u16, shards: u16) -> Layout {
        Layout::new(&TopologyArgs {
            partitions,
            shards,
            ..crate::config::flag_defaults().expect("defaults")
        })
    }

    #[test]
    fn partitions_are_stable_and_in_range() {
        assert_eq!(
            partition_of("conversation-a", 64),
            partition_of("conversation-a", 64)
        );
        for i in 0..1000 {
            assert!(partition_of(&format!("c{i}"), 64) < 64);
        }
        // Pinned values: changing the hash would reorder existing streams.
        assert_eq!(partition_of("", 64), (0xcbf2_9ce4_8422_2325u64 % 64) as u16);
        assert_eq!(partition_of("005ea483-5151-479d-842e-f5ef0a1fa5cc", 1), 0);
    }

    #[test]
    fn partitions_spread_conversations_evenly() {
        let mut counts = [0u32; 16];
        for _ in 0..16_000 {
            counts[usize::from(partition_of(&uuid::Uuid::new_v4().to_string(), 16))] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn names_follow_the_documented_layout() {
        assert_eq!(event_subject(7), "yourlogic.events.7");
        assert_eq!(dead_letter_subject(7), "yourlogic.dead.7");
        assert_eq!(consumer_name(7), "yourlogic-p0007");
    }

    #[test]
    fn one_shard_is_the_stream_itself_with_every_partition() {
        let one = layout(64, 1);
        assert_eq!(one.shard_stream(0), "YOURLOGIC_EVENTS");
        assert_eq!(one.stream_of(63), "YOURLOGIC_EVENTS");
        assert_eq!(one.shard_subjects(0), vec!["yourlogic.events.*"]);
        assert_eq!(one.shard_partitions(0).count(), 64);
    }

    #[test]
    fn shards_split_the_partitions_round_robin_into_their_own_streams() {
        let four = layout(10, 4);
        assert_eq!(four.stream_of(5), "YOURLOGIC_EVENTS_1");
        assert_eq!(four.shard_partitions(1).collect::<Vec<_>>(), vec![1, 5, 9]);
        assert_eq!(
            four.shard_subjects(2),
            vec!["yourlogic.events.2", "yourlogic.events.6"]
        );
        // Every partition in exactly one shard.
        let mut all: Vec<u16> = (0..4).flat_map(|s| four.shard_partitions(s)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn more_shards_than_partitions_are_capped() {
        assert_eq!(layout(2, 8).shards(), 2);
    }
}
