//! Queue statistics: how many events wait in each partition and how many are in flight. Exported
//! as `yourlogic_queue_pending{partition}` (the signal the autoscaler uses) and
//! `yourlogic_queue_in_flight{partition}`.

use std::time::Duration;

use async_nats::jetstream;

use crate::config::TopologyArgs;
use crate::telemetry::names;
use crate::topology::{Layout, consumer_name};

/// Refreshes the queue gauges every `interval` until the task is dropped.
pub async fn monitor(js: jetstream::Context, topology: TopologyArgs, interval: Duration) {
    let layout = Layout::new(&topology);
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let connected = crate::nats::is_connected(&js.client());
        metrics::gauge!(names::NATS_CONNECTED).set(if connected { 1.0 } else { 0.0 });
        for shard in 0..layout.shards() {
            let Ok(stream) = js.get_stream_no_info(layout.shard_stream(shard)).await else {
                continue;
            };
            for partition in layout.shard_partitions(shard) {
                let Ok(info) = stream.consumer_info(consumer_name(partition)).await else {
                    continue;
                };
                let label = partition.to_string();
                metrics::gauge!(names::QUEUE_PENDING, "partition" => label.clone())
                    .set(info.num_pending as f64);
                metrics::gauge!(names::QUEUE_IN_FLIGHT, "partition" => label)
                    .set(info.num_ack_pending as f64);
            }
        }
    }
}
