//! Logs written to a file (as the scripts and container runtimes do) are plain text: colours
//! only when standard error is a terminal. The worker's first lines say which logic it answers
//! with.

use std::time::Duration;

use anyhow::Result;
use testkit::NatsServer;
use testkit::faults::binaries::BinaryProcess;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_logs_written_to_a_file_contain_no_colour_codes_and_name_the_workers_logic()
-> Result<()> {
    let nats = NatsServer::start().await?;
    let url = nats.url();
    let env = [
        ("NATS_URL", url.as_str()),
        ("SALTEDCX_TOKEN", "log-test-token"),
        ("RUST_LOG", "info"),
    ];
    let mut ingress = BinaryProcess::spawn("ingress", "INGRESS_ADDR", &env)?;
    let mut worker = BinaryProcess::spawn("worker", "WORKER_ADDR", &env)?;
    ingress.wait_ready(Duration::from_secs(15)).await?;
    worker.wait_ready(Duration::from_secs(15)).await?;
    for (name, process) in [("ingress", &mut ingress), ("worker", &mut worker)] {
        process.terminate()?;
        process.wait_exit(Duration::from_secs(30)).await?;
        let log = process.output();
        assert!(log.lines().count() >= 2, "{name} logged too little:\n{log}");
        assert!(
            !log.contains('\u{1b}'),
            "{name}'s log file contains ANSI escape codes:\n{log:?}"
        );
    }
    let log = worker.output();
    assert!(
        log.lines()
            .any(|line| line.contains("conversation logic loaded")
                && line.contains("the built-in playbook")
                && line.contains("knowledge entries")),
        "the worker does not say which logic it loaded:\n{log}"
    );
    Ok(())
}
