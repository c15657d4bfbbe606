//! The streams and the bucket: event streams (one per shard), the dead-letter stream and the
//! answers bucket, created or updated idempotently at start-up.

use std::collections::HashMap;
use std::time::Duration;

use async_nats::jetstream::{self, kv, stream};

use super::{ANSWERS_BUCKET, DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, Layout};
use crate::config::{AnswersArgs, TopologyArgs};

/// Stream metadata key recording the partition count.
const PARTITIONS_KEY: &str = "yourlogic.partitions";
/// Stream metadata key recording the shard count (absent on streams of one shard made by
/// earlier versions, which means one).
const SHARDS_KEY: &str = "yourlogic.shards";

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
    #[error(
        "stream `{stream}` was created for {existing} shard(s) but this process is configured \
         with {configured}; set SHARDS={existing} (the shard count cannot change while events \
         are stored: drain and delete the event streams to change it)"
    )]
    ShardMismatch {
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

impl TopologyError {
    /// Whether this is a configuration mismatch (retrying cannot help) rather than NATS being
    /// unavailable.
    pub fn is_mismatch(&self) -> bool {
        matches!(
            self,
            TopologyError::PartitionMismatch { .. } | TopologyError::ShardMismatch { .. }
        )
    }
}

fn nats_err<E: Into<async_nats::Error>>(what: &str) -> impl FnOnce(E) -> TopologyError + '_ {
    move |source| TopologyError::Nats {
        what: what.to_string(),
        source: source.into(),
    }
}

/// The configuration of shard `shard`'s event stream. The byte limit is shared out evenly, so
/// all shards together hold at most `STREAM_MAX_BYTES`.
pub fn stream_config(args: &TopologyArgs, shard: u16) -> stream::Config {
    let layout = Layout::new(args);
    let shards = i64::from(layout.shards());
    stream::Config {
        name: layout.shard_stream(shard),
        description: Some(format!(
            "Salted CX Your Logic events, partitioned by conversation (shard {shard} of {shards})"
        )),
        subjects: layout.shard_subjects(shard),
        storage: stream::StorageType::File,
        // Work queue: an event is removed once acknowledged, so the stream holds only the backlog
        // (each partition has exactly one consumer, with its own subject).
        retention: stream::RetentionPolicy::WorkQueue,
        discard: stream::DiscardPolicy::New,
        max_age: args.stream_max_age,
        max_bytes: (args.stream_max_bytes + shards - 1) / shards,
        num_replicas: usize::from(args.stream_replicas),
        duplicate_window: args.duplicate_window,
        metadata: HashMap::from([
            (PARTITIONS_KEY.to_string(), layout.partitions().to_string()),
            (SHARDS_KEY.to_string(), shards.to_string()),
        ]),
        ..Default::default()
    }
}

/// Creates every shard's event stream, or checks and updates the existing ones.
pub async fn ensure_event_streams(
    js: &jetstream::Context,
    args: &TopologyArgs,
) -> Result<(), TopologyError> {
    let layout = Layout::new(args);
    for shard in 0..layout.shards() {
        ensure_event_stream(js, stream_config(args, shard), &layout).await?;
    }
    Ok(())
}

async fn ensure_event_stream(
    js: &jetstream::Context,
    config: stream::Config,
    layout: &Layout,
) -> Result<(), TopologyError> {
    let name = config.name.clone();
    let Ok(mut existing) = js.get_stream(&name).await else {
        js.create_or_update_stream(config)
            .await
            .map_err(nats_err(&name))?;
        tracing::info!(stream = %name, partitions = layout.partitions(), shards = layout.shards(), "created event stream");
        return Ok(());
    };
    let info = existing.info().await.map_err(nats_err(&name))?.clone();
    let metadata = &info.config.metadata;
    if let Some(found) = metadata.get(PARTITIONS_KEY)
        && found != &layout.partitions().to_string()
    {
        return Err(TopologyError::PartitionMismatch {
            stream: name,
            existing: found.clone(),
            configured: layout.partitions(),
        });
    }
    let shards = metadata.get(SHARDS_KEY).map_or("1", String::as_str);
    if shards != layout.shards().to_string() {
        return Err(TopologyError::ShardMismatch {
            stream: name,
            existing: shards.to_string(),
            configured: layout.shards(),
        });
    }
    let differs = info.config.subjects != config.subjects
        || info.config.max_age != config.max_age
        || info.config.max_bytes != config.max_bytes
        || info.config.num_replicas != config.num_replicas
        || info.config.duplicate_window != config.duplicate_window
        || config
            .metadata
            .iter()
            .any(|(key, value)| info.config.metadata.get(key) != Some(value));
    if differs {
        tracing::info!(stream = %name, "updating event stream configuration");
        js.update_stream(&config).await.map_err(nats_err(&name))?;
    }
    Ok(())
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
    .map_err(nats_err(DEAD_LETTER_STREAM))?;
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
    .map_err(nats_err(ANSWERS_BUCKET))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_streams_share_the_byte_limit_and_record_the_layout() {
        let args = TopologyArgs {
            partitions: 8,
            shards: 2,
            stream_max_bytes: 1000,
            ..crate::config::flag_defaults().expect("defaults")
        };
        let config = stream_config(&args, 1);
        assert_eq!(config.name, "YOURLOGIC_EVENTS_1");
        assert_eq!(config.max_bytes, 500);
        assert_eq!(
            config.metadata.get(PARTITIONS_KEY).map(String::as_str),
            Some("8")
        );
        assert_eq!(
            config.metadata.get(SHARDS_KEY).map(String::as_str),
            Some("2")
        );
        assert_eq!(config.subjects.len(), 4);
    }
}
