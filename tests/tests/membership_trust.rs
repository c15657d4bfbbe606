//! Worker membership cannot be forged: a client that may publish on `yourlogic.workers` but does
//! not hold the shared secret announces phantom workers in vain. Announcements are signed with
//! the Salted CX token (HMAC), so the phantoms take no partition and every event is answered.

use std::time::Duration;

use anyhow::Result;
use testkit::faults::NonceLogic;
use testkit::stack::{self, Poster, TOKEN};
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
const WAIT: Duration = Duration::from_secs(20);
const PHANTOMS: usize = 60;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phantom_workers_announced_without_the_secret_take_no_partition() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    let worker =
        stack::start_worker(&nats.url(), &fake.base_url(), NonceLogic::shared(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    stack::wait_ready(&worker, READY).await?;

    // As in the review: 60 well-formed phantom ids, announced like live workers (every 200 ms,
    // faster than the workers' heartbeat), with a made-up signature.
    let client = nats.connect().await?;
    let announcer = tokio::spawn(async move {
        let ids: Vec<String> = (0..PHANTOMS)
            .map(|_| uuid::Uuid::new_v4().simple().to_string())
            .collect();
        loop {
            for id in &ids {
                let forged = serde_json::json!({
                    "id": id,
                    "leaving": false,
                    "time": chrono::Utc::now().timestamp_millis(),
                    "mac": "00".repeat(32),
                });
                let _ = client
                    .publish(shared::topology::WORKERS_SUBJECT, forged.to_string().into())
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    });
    // Long enough for the membership to have heard them many times over (heartbeat 500 ms).
    tokio::time::sleep(Duration::from_secs(3)).await;

    let poster = Poster::new(&ingress.url());
    let mut ids = Vec::new();
    for n in 0..20 {
        let event = EventBuilder::message(&format!("phantom-{n}"), "hello").build();
        let (status, body) = poster.post(&event).await?;
        anyhow::ensure!(status == 202, "{body}");
        ids.push(event["requestId"].as_str().unwrap_or_default().to_string());
    }
    let answered_count = || {
        ids.iter()
            .filter(|id| !fake.callbacks_for(id).is_empty())
            .count()
    };
    testkit::wait_until(WAIT, Duration::from_millis(100), || {
        let all = answered_count() == ids.len();
        async move { all }
    })
    .await;
    let answered = answered_count();
    let page = stack::scrape(&worker).await?;
    let owned = saltedcx_sim::metrics::metric_value(&page, "yourlogic_worker_partitions", &[]);
    let live = saltedcx_sim::metrics::metric_value(&page, "yourlogic_workers_live", &[]);
    announcer.abort();
    println!(
        "{PHANTOMS} phantom workers announced without the secret: {answered} of 20 events \
         answered; the worker owns {owned} of 64 partitions and counts {live} live workers"
    );
    assert_eq!(answered, 20, "events left to phantom owners");
    assert_eq!(owned, 64.0);
    assert_eq!(live, 1.0);
    Ok(())
}
