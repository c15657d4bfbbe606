//! A complete worker with its own Rust logic; it takes every worker flag and variable, e.g.
//! `SALTEDCX_TOKEN=secret cargo run -p worker --example custom_logic`.

use std::sync::Arc;

use async_trait::async_trait;
use clap::Parser;
use shared::answer::{Action, Reply};
use shared::event::{Event, ParticipantType, TriggerType};
use worker::logic::{Context, Logic, LogicError};

/// Answers questions about opening hours; asks for a human for anything else.
struct MyLogic;

#[async_trait]
impl Logic for MyLogic {
    async fn decide(&self, event: &Event, _context: &Context) -> Result<Reply, LogicError> {
        let customer = event.trigger.participant_type == Some(ParticipantType::Customer);
        if event.trigger.kind != TriggerType::Message || !customer {
            return Ok(Reply::nothing()); // an empty reply still resolves the request
        }
        let text = event.trigger_texts().next().unwrap_or_default();
        if text.to_lowercase().contains("open") {
            return Ok(Reply::with_actions(vec![Action::message(
                "We open 8-18 CET.",
            )]));
        }
        // The worker drops NEEDS_HELP for silent triggers, so this is always safe.
        let note = Action::note(format!("Customer asks: {text}"));
        Ok(Reply::with_actions(vec![note, Action::needs_help()]))
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = worker::config::Cli::parse();
    shared::telemetry::init(cli.config.log.log_format, &cli.config.traces, "worker")?;
    let worker = worker::Worker::build(cli.config, Arc::new(MyLogic)).await?;
    let result = worker.run(shared::shutdown::signal()).await;
    // Sends the last spans when traces are on (OTEL_EXPORTER_OTLP_ENDPOINT).
    shared::otel::shutdown();
    Ok(result?)
}
