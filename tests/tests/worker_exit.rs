//! A worker that cannot work stops by itself with an error (so its process exits non-zero and
//! the orchestrator sees it), instead of idling as if all were well.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Result, bail};
use testkit::stack::{self, TOKEN};
use testkit::{FakeSaltedCx, NatsServer};
use worker::logic::echo::EchoLogic;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_partitions_do_not_match_the_streams_stops_with_an_error() -> Result<()> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    // The ingress creates the streams with the default 64 partitions.
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, Duration::from_secs(15)).await?;

    let mut config = worker::Config::new(
        &nats.url(),
        TOKEN,
        &fake.base_url(),
        SocketAddr::from(([127, 0, 0, 1], 0)),
    )
    .map_err(anyhow::Error::msg)?;
    config.topology.partitions = 8;
    let worker = worker::Worker::build(config, std::sync::Arc::new(EchoLogic)).await?;
    // Never asked to stop: it must end by itself.
    let run = worker.run(std::future::pending());
    let ended = tokio::time::timeout(Duration::from_secs(60), run).await;
    let Ok(result) = ended else {
        bail!("the worker kept running with 8 partitions against streams of 64");
    };
    let Err(err) = result else {
        bail!("the worker stopped without an error");
    };
    let message = err.to_string();
    assert!(
        matches!(err, worker::RunError::Topology(_)),
        "unexpected error: {message}"
    );
    assert!(message.contains("64") && message.contains('8'), "{message}");
    // main() turns the error into a failing exit status.
    let code = shared::service::finished("worker", Err::<(), _>(err));
    assert_eq!(code, std::process::ExitCode::FAILURE);
    Ok(())
}
