//! The NATS layout: one event stream partitioned by conversation, one durable pull consumer per
//! partition (at most one unacknowledged event each, which is what keeps every conversation in
//! order across any number of workers), a dead-letter stream and a KV bucket of answered
//! requests. Everything is created idempotently at start-up.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, kv, stream};

use crate::config::{AnswersArgs, TopologyArgs};

/// Subject prefix of the event stream; events go to `yourlogic.events.<partition>`.
pub const EVENTS_PREFIX: &str = "yourlogic.events";
/// Name of the dead-letter stream.
pub const DEAD_LETTER_STREAM: &str = "YOURLOGIC_DEAD_LETTERS";
/// Subject prefix of dead letters: `yourlogic.dead.<partition>`.
pub const DEAD_LETTER_PREFIX: &str = "yourlogic.dead";
/// KV bucket recording answers, so a redelivered event is never answered differently.
pub const ANSWERS_BUCKET: &str = "yourlogic_answers";
/// Stream metadata key recording the partition count.
const PARTITIONS_KEY: &str = "yourlogic.partitions";

/// Stable partition of a conversation: FNV-1a (64 bit) of its id modulo `partitions`.
/// Stable across processes, versions and platforms; never change it for an existing stream.
pub fn partition_of(conversation: &str, partitions: u16) -> u16 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in conversation.as_bytes() {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash % u64::from(partitions.max(1))) as u16
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

/// Something about the topology is wrong or NATS refused to set it up.
#[derive(Debug, thiserror::Error)]
pub enum TopologyError {
    #[error(
        "stream `{stream}` was created with {existing} partitions but this process is configured \
         with {configured}; set PARTITIONS={existing} (the partition count of a stream cannot change)"
    )]
    PartitionMismatch {
        stream: String,
        existing: String,
        configured: u16,
    },
    #[error("NATS JetStream request failed while setting up `{what}`: {source}")]
    Nats {
        what: String,
        #[source]
        source: async_nats::Error,
    },
}

fn nats_err(what: impl Into<String>) -> impl FnOnce(async_nats::Error) -> TopologyError {
    let what = what.into();
    move |source| TopologyError::Nats { what, source }
}

/// The event stream's configuration.
pub fn stream_config(args: &TopologyArgs) -> stream::Config {
    stream::Config {
        name: args.stream_name.clone(),
        description: Some("Salted CX Your Logic events, partitioned by conversation".into()),
        subjects: vec![format!("{EVENTS_PREFIX}.*")],
        storage: stream::StorageType::File,
        // Work queue: an event is removed once acknowledged, so the stream holds only the backlog
        // (each partition has exactly one consumer, with its own subject).
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::New,
        max_age: args.stream_max_age,
        max_bytes: args.stream_max_bytes,
        num_replicas: usize::from(args.stream_replicas),
        duplicate_window: args.duplicate_window,
        metadata: HashMap::from([(PARTITIONS_KEY.to_string(), args.partitions.to_string())]),
        ..Default::default()
    }
}

/// Creates the event stream, or checks and updates an existing one.
pub async fn ensure_event_stream(
    js: &jetstream::Context,
    args: &TopologyArgs,
) -> Result<(), TopologyError> {
    let config = stream_config(args);
    match js.get_stream(&args.stream_name).await {
        Ok(mut existing) => {
            let info = existing
                .info()
                .await
                .map_err(|e| TopologyError::Nats {
                    what: args.stream_name.clone(),
                    source: e.into(),
                })?
                .clone();
            if let Some(found) = info.config.metadata.get(PARTITIONS_KEY)
                && found != &args.partitions.to_string()
            {
                return Err(TopologyError::PartitionMismatch {
                    stream: args.stream_name.clone(),
                    existing: found.clone(),
                    configured: args.partitions,
                });
            }
            let differs = info.config.subjects != config.subjects
                || info.config.max_age != config.max_age
                || info.config.max_bytes != config.max_bytes
                || info.config.num_replicas != config.num_replicas
                || info.config.duplicate_window != config.duplicate_window
                || !info.config.metadata.contains_key(PARTITIONS_KEY);
            if differs {
                tracing::info!(stream = %args.stream_name, "updating event stream configuration");
                js.update_stream(&config)
                    .await
                    .map_err(|e| nats_err(args.stream_name.clone())(e.into()))?;
            }
            Ok(())
        }
        Err(_) => {
            js.create_or_update_stream(config)
                .await
                .map_err(|e| nats_err(args.stream_name.clone())(e.into()))?;
            tracing::info!(stream = %args.stream_name, partitions = args.partitions, "created event stream");
            Ok(())
        }
    }
}

/// Creates (or updates) the dead-letter stream; dead letters are kept for a week.
pub async fn ensure_dead_letter_stream(
    js: &jetstream::Context,
    replicas: u8,
) -> Result<(), TopologyError> {
    js.create_or_update_stream(stream::Config {
        name: DEAD_LETTER_STREAM.into(),
        description: Some("Events that could not be processed, with the error".into()),
        subjects: vec![format!("{DEAD_LETTER_PREFIX}.*")],
        storage: stream::StorageType::File,
        max_age: Duration::from_secs(7 * 24 * 3600),
        max_bytes: 256 << 20,
        num_replicas: usize::from(replicas),
        ..Default::default()
    })
    .await
    .map_err(|e| nats_err(DEAD_LETTER_STREAM)(e.into()))?;
    Ok(())
}

/// Creates (or updates) the bucket of answered requests. Entries are needed only while their
/// event can still be redelivered and answered, i.e. until its deadline (a redelivery after it
/// is dropped as expired), so they live `answers_ttl`; compressed, since answers are JSON.
pub async fn ensure_answers_bucket(
    js: &jetstream::Context,
    args: &AnswersArgs,
    replicas: u8,
) -> Result<kv::Store, TopologyError> {
    js.create_or_update_key_value(kv::Config {
        bucket: ANSWERS_BUCKET.into(),
        description: "Answers sent per requestId (at-most-once answering)".into(),
        history: 1,
        max_age: args.answers_ttl.max(Duration::from_secs(10)),
        max_bytes: args.answers_max_bytes,
        storage: stream::StorageType::File,
        num_replicas: usize::from(replicas),
        compression: true,
        ..Default::default()
    })
    .await
    .map_err(|e| nats_err(ANSWERS_BUCKET)(e.into()))
}

/// The configuration of partition `partition`'s consumer.
pub fn consumer_config(partition: u16, ack_wait: Duration) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(consumer_name(partition)),
        description: Some(format!(
            "Workers' ordered consumer of partition {partition}"
        )),
        filter_subject: event_subject(partition),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait,
        // One unacknowledged event per partition: the next event of a conversation is not
        // delivered to anyone before the previous one is finished.
        max_ack_pending: 1,
        max_deliver: -1,
        max_waiting: 4096,
        // The consumer's progress (delivered and acknowledged sequences) is kept in memory,
        // replicated like the stream in a cluster, instead of being rewritten to a file ten times
        // a second per partition (about a quarter of NATS's CPU under load). The events stay
        // on disk: the stream is a work queue, so an acknowledged event is deleted from it, and a
        // consumer that lost its progress (a restarted single server) is re-created by the
        // workers and delivers what remains. A redelivery that then looks like a first delivery
        // is recognised by when it was published (see the worker's `process` module).
        memory_storage: true,
        ..Default::default()
    }
}

/// Creates or updates partition `partition`'s consumer and returns it.
pub async fn ensure_consumer(
    stream: &stream::Stream,
    partition: u16,
    ack_wait: Duration,
) -> Result<consumer::PullConsumer, TopologyError> {
    let config = consumer_config(partition, ack_wait);
    let name = consumer_name(partition);
    match stream.create_consumer(config.clone()).await {
        Ok(consumer) => Ok(consumer),
        Err(create_error) => {
            // An existing consumer with another configuration (ack_wait): update it in place.
            // Its storage type cannot be changed; one created on disk by an earlier version
            // stays on disk (delete it while no worker runs to move it to memory).
            let existing = match stream.consumer_info(&name).await {
                Ok(info) => info.config.memory_storage,
                Err(_) => return Err(nats_err(name)(create_error.into())),
            };
            if existing != config.memory_storage {
                tracing::info!(
                    consumer = %name,
                    "keeping the consumer's storage type (it cannot be changed in place)"
                );
            }
            stream
                .update_consumer(consumer::pull::Config {
                    memory_storage: existing,
                    ..config
                })
                .await
                .map_err(|e| nats_err(name)(e.into()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        for i in 0..16_000 {
            counts[usize::from(partition_of(&uuid::Uuid::new_v4().to_string(), 16))] += 1;
            let _ = i;
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
}
