//! The partition consumers: one durable pull consumer per partition, pinned to one worker at a
//! time (priority group [`PRIORITY_GROUP`](super::PRIORITY_GROUP), pinned-client policy), with
//! several events in flight.

use std::time::Duration;

use async_nats::jetstream::consumer::{self, PriorityPolicy};
use async_nats::jetstream::stream;

use super::{Layout, PRIORITY_GROUP, TopologyError, consumer_name, event_subject};

/// How the partition consumers behave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsumerSettings {
    /// How long a delivered event may stay unacknowledged (without progress) before NATS
    /// delivers it again: the takeover delay of a dead worker's events.
    pub ack_wait: Duration,
    /// Most events of one partition in flight at its worker (the in-flight window); NATS lets
    /// [`ACK_PENDING_WINDOWS`] times as many be delivered and unacknowledged.
    pub max_in_flight: u32,
    /// How long the pinned worker keeps the partition without pulling: the takeover delay of a
    /// dead worker's partitions.
    pub pin_ttl: Duration,
}

/// Events of one partition delivered and unacknowledged, in in-flight windows: the worker keeps
/// one window for the conversations within their quota and the rest for events of flooded
/// conversations waiting beyond theirs.
const ACK_PENDING_WINDOWS: i64 = 4;

/// Pull requests outstanding at once from all workers for one consumer; fixed when the
/// consumer is created (NATS cannot change it later).
const MAX_WAITING: i64 = 4096;

/// The configuration of partition `partition`'s consumer.
pub fn consumer_config(partition: u16, settings: &ConsumerSettings) -> consumer::pull::Config {
    consumer::pull::Config {
        durable_name: Some(consumer_name(partition)),
        description: Some(format!(
            "Workers' consumer of partition {partition} (one pinned worker at a time)"
        )),
        filter_subject: event_subject(partition),
        ack_policy: consumer::AckPolicy::Explicit,
        deliver_policy: consumer::DeliverPolicy::All,
        ack_wait: settings.ack_wait,
        max_ack_pending: i64::from(settings.max_in_flight.max(1)) * ACK_PENDING_WINDOWS,
        max_deliver: -1,
        max_waiting: MAX_WAITING,
        priority_policy: PriorityPolicy::PinnedClient,
        priority_groups: vec![PRIORITY_GROUP.to_string()],
        priority_timeout: settings.pin_ttl,
        // The consumer's progress (delivered and acknowledged sequences) is kept in memory,
        // replicated like the stream in a cluster, instead of being rewritten to a file many
        // times a second per partition (about a quarter of NATS's CPU under load). The events
        // stay on disk: the stream is a work queue, so an acknowledged event is deleted from
        // it, and a consumer that lost its progress (a restarted single server) is re-created
        // by the workers and delivers what remains. A redelivery that then looks like a first
        // delivery is recognised by when it was published (see the worker's `process` module).
        memory_storage: true,
        ..Default::default()
    }
}

/// Creates or updates partition `partition`'s consumer on its shard's stream.
pub async fn ensure_consumer(
    js: &async_nats::jetstream::Context,
    layout: &Layout,
    partition: u16,
    settings: &ConsumerSettings,
) -> Result<consumer::PullConsumer, TopologyError> {
    let stream_name = layout.stream_of(partition);
    let stream = js
        .get_stream_no_info(&stream_name)
        .await
        .map_err(|e| nats(&stream_name, e))?;
    create_or_update(&stream, consumer_config(partition, settings)).await
}

async fn create_or_update(
    stream: &stream::Stream<()>,
    config: consumer::pull::Config,
) -> Result<consumer::PullConsumer, TopologyError> {
    let name = config.durable_name.clone().unwrap_or_default();
    match stream.create_consumer(config.clone()).await {
        Ok(consumer) => Ok(consumer),
        Err(create_error) => {
            // An existing consumer with another configuration (an earlier version's, or other
            // settings): update it in place. Its storage type and its limit on waiting pull
            // requests cannot be changed; they are kept.
            let Ok(info) = stream.consumer_info(&name).await else {
                return Err(nats(&name, create_error));
            };
            let kept = consumer::pull::Config {
                memory_storage: info.config.memory_storage,
                max_waiting: info.config.max_waiting,
                ..config
            };
            stream
                .update_consumer(kept)
                .await
                .map_err(|e| nats(&name, e))
        }
    }
}

fn nats(what: &str, source: impl Into<async_nats::Error>) -> TopologyError {
    TopologyError::Nats {
        what: what.to_string(),
        source: source.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_consumers_pin_one_worker_with_several_events_in_flight() {
        let config = consumer_config(
            3,
            &ConsumerSettings {
                ack_wait: Duration::from_secs(2),
                max_in_flight: 256,
                pin_ttl: Duration::from_secs(2),
            },
        );
        assert_eq!(config.durable_name.as_deref(), Some("yourlogic-p0003"));
        assert_eq!(config.filter_subject, "yourlogic.events.3");
        assert_eq!(config.max_ack_pending, 1024);
        assert_eq!(config.priority_policy, PriorityPolicy::PinnedClient);
        assert_eq!(config.priority_groups, vec![PRIORITY_GROUP.to_string()]);
        assert!(config.memory_storage);
    }
}
