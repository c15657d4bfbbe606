//! The simulator against the real pipeline (nats-server, an in-process ingress and two workers
//! with the default playbook): a short, bounded load run loses nothing and keeps every
//! conversation in order; the demo's transcripts show the answers.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use saltedcx_sim::conversation::ACCOUNT_ID;
use saltedcx_sim::server::CallbackServer;
use saltedcx_sim::{demo, load, scenario};
use testkit::NatsServer;
use testkit::stack::{self, Service, TOKEN};

const READY: Duration = Duration::from_secs(15);

/// An ingress and two playbook workers answering to the simulator's callback server.
struct Stack {
    _nats: NatsServer,
    ingress: Service,
    _workers: Vec<Service>,
    server: Arc<CallbackServer>,
}

async fn stack() -> Result<Stack> {
    let nats = NatsServer::start().await?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Arc::new(CallbackServer::start(loopback, TOKEN, Some(ACCOUNT_ID), false).await?);
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, READY).await?;
    let mut workers = Vec::new();
    for _ in 0..2 {
        let config = worker::Config::new(&nats.url(), TOKEN, &server.base_url(), loopback)
            .map_err(anyhow::Error::msg)?;
        let logic = worker::logic_from_config(&config)?;
        let worker = stack::start_worker(&nats.url(), &server.base_url(), logic, |_| {}).await?;
        stack::wait_ready(&worker, READY).await?;
        workers.push(worker);
    }
    Ok(Stack {
        _nats: nats,
        ingress,
        _workers: workers,
        server,
    })
}

fn load_options(stack: &Stack, rate: Option<f64>) -> Result<load::LoadOptions> {
    Ok(load::LoadOptions {
        ingress_urls: vec![format!("{}/v1/events", stack.ingress.url())],
        token: TOKEN.into(),
        conversations: 200,
        duration: Some(Duration::from_secs(3)),
        events: Some(20_000),
        rate,
        budget: Duration::from_secs(15),
        event_size: 3072,
        ramp_up: Duration::from_millis(200),
        connections: saltedcx_sim::config::Connections::PerConversation,
        // In-process workers share one metrics registry with every test of the process.
        worker_metrics: Vec::new(),
        warmup: Duration::ZERO,
        drain: Duration::from_secs(1),
        time_limit: Duration::from_secs(10),
        progress: None,
        scenarios: scenario::builtin()?,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_closed_loop_load_run_loses_no_event_and_keeps_every_conversation_in_order()
-> Result<()> {
    let stack = stack().await?;
    let report = load::run(&load_options(&stack, None)?, stack.server.clone()).await?;
    println!("{}", report.render());
    assert!(report.accepted > 0, "nothing was accepted");
    assert!(report.answered > 0, "nothing was answered");
    assert_eq!(report.lost, 0, "lost events");
    assert_eq!(report.ordering_violations, 0, "ordering violations");
    assert_eq!(report.accepted, report.answered + report.deadline_misses);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_open_loop_load_run_loses_no_event_and_keeps_every_conversation_in_order()
-> Result<()> {
    let stack = stack().await?;
    let report = load::run(&load_options(&stack, Some(300.0))?, stack.server.clone()).await?;
    println!("{}", report.render());
    assert!(report.answered > 0, "nothing was answered");
    assert_eq!(report.lost, 0, "lost events");
    assert_eq!(report.ordering_violations, 0, "ordering violations");
    assert_eq!(report.accepted, report.answered + report.deadline_misses);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_plays_every_scenario_and_each_transcript_shows_the_answers() -> Result<()> {
    let stack = stack().await?;
    let scenarios = scenario::builtin()?;
    let options = demo::DemoOptions {
        ingress_url: format!("{}/v1/events", stack.ingress.url()),
        token: TOKEN.into(),
        conversations: scenarios.len(),
        budget: Duration::from_secs(15),
        scenarios,
        print: true,
    };
    let transcripts = demo::run(&options, stack.server.clone()).await?;
    assert_eq!(transcripts.len(), options.conversations);
    for transcript in &transcripts {
        let name = &transcript.scenario.name;
        assert_eq!(
            transcript.answered(),
            transcript.events(),
            "{name}: unanswered events"
        );
        let messages = transcript
            .actions()
            .iter()
            .filter(|a| a["type"] == "MESSAGE")
            .count();
        assert!(messages > 0, "{name}: the bot never said anything");
    }
    // The escalation scenario asks for a human at some point.
    let escalated = transcripts
        .iter()
        .flat_map(|t| t.actions())
        .any(|a| a["type"] == "NEEDS_HELP");
    assert!(escalated, "no scenario escalated to an agent");
    Ok(())
}

#[tokio::test]
async fn the_demo_says_how_to_start_the_stack_when_the_ingress_is_not_running() -> Result<()> {
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Arc::new(CallbackServer::start(loopback, TOKEN, Some(ACCOUNT_ID), false).await?);
    let port = testkit::free_port()?;
    let options = demo::DemoOptions {
        ingress_url: format!("http://127.0.0.1:{port}/v1/events"),
        token: TOKEN.into(),
        conversations: 1,
        budget: Duration::from_secs(15),
        scenarios: scenario::builtin()?,
        print: false,
    };
    let err = demo::run(&options, server).await.expect_err("no ingress");
    assert!(format!("{err:#}").contains("run-local.sh"), "{err:#}");
    Ok(())
}
