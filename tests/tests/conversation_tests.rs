//! The conversation tests shipped with the default playbook (`tests/conversations/`), run by
//! `saltedcx-sim test`: they pass against the built-in playbook in-process and through the real
//! pipeline (ingress, NATS JetStream, a worker, the simulator's callback API), where the worker
//! counts their outcomes (contained, escalations by reason, ratings, intents); they cover every
//! lifecycle phase and trigger type in several languages, and every understanding category in
//! every language of the default playbook. (The command's own exit codes and messages are tested
//! in `simulator/tests/test_command.rs`.)

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Result, ensure};
use saltedcx_sim::cases::run::{Backend, run};
use saltedcx_sim::cases::{self, Case};
use saltedcx_sim::client::IngressClient;
use saltedcx_sim::conversation::ACCOUNT_ID;
use saltedcx_sim::driver::{Env, Ingress};
use saltedcx_sim::scenario::Step;
use saltedcx_sim::server::CallbackServer;
use saltedcx_sim::stats::Stats;
use testkit::stack::{self, TOKEN};
use testkit::{NatsServer, workspace_root};
use worker::logic::playbook::{Playbook, PlaybookLogic};

const BUDGET: Duration = Duration::from_secs(15);

fn shipped() -> Vec<Case> {
    let dir: PathBuf = workspace_root().join("tests/conversations");
    cases::load(&[dir]).expect("the shipped conversation tests parse")
}

#[tokio::test]
async fn the_shipped_conversation_tests_pass_against_the_built_in_playbook() {
    let logic = Arc::new(PlaybookLogic::new(
        Playbook::builtin().expect("built-in playbook"),
    ));
    let report = run(&Backend::InProcess(logic), &shipped(), BUDGET).await;
    assert!(report.passed(), "{}", report.render());
}

#[test]
fn the_shipped_cases_cover_every_phase_and_trigger_in_at_least_three_languages() {
    let cases = shipped();
    assert!(cases.len() >= 40, "only {} cases", cases.len());
    let languages: BTreeSet<&str> = cases.iter().map(|c| c.scenario.language.as_str()).collect();
    assert!(languages.len() >= 3, "languages: {languages:?}");
    let kinds: BTreeSet<&str> = cases
        .iter()
        .flat_map(|c| &c.scenario.steps)
        .map(|step| match step {
            Step::Customer(_) => "MESSAGE",
            Step::CustomerSilent(_) => "silent MESSAGE",
            Step::Agent(_) => "agent MESSAGE",
            Step::AgentJoins(_) => "agent joins",
            Step::Action(_) => "ACTION",
            Step::AgentLeaves(_) => "ENGAGEMENT_COMPLETED",
            Step::File(_) => "FILE",
            Step::Navigation(_) => "NAVIGATION",
            Step::Review(_) => "REVIEW",
            Step::MenuStep(_) => "MENU_STEP",
            Step::Answer(_) => "ANSWER",
            Step::ConversationUpdate(_) => "Conversation Update",
            Step::Completed => "CONVERSATION_COMPLETED",
        })
        .collect();
    assert_eq!(kinds.len(), 13, "step kinds covered: {kinds:?}");
    // The lifecycle phases, by what the expectations check.
    let expects: Vec<_> = cases
        .iter()
        .flat_map(|c| c.expects.iter().flatten())
        .collect();
    let phase = |p: &str| {
        expects.iter().any(|e| {
            e.custom
                .as_ref()
                .and_then(|c| c.get("yl"))
                .and_then(|yl| yl.get("p"))
                .is_some_and(|v| v == p)
        })
    };
    for (code, name) in [
        ("c", "collecting the request"),
        ("a", "answering"),
        ("h", "with an agent"),
        ("x", "closing question"),
        ("f", "feedback"),
        ("d", "done"),
    ] {
        assert!(
            phase(code),
            "no expectation checks the phase {name} ({code})"
        );
    }
    assert!(expects.iter().any(|e| e.escalates == Some(true)));
    assert!(expects.iter().any(|e| e.needs_help == Some(false)));
}

#[test]
fn every_understanding_category_has_a_shipped_case_in_every_language() {
    let cases = shipped();
    let mut missing = Vec::new();
    for language in ["en", "es", "de", "fr", "cs"] {
        for category in [
            "phrasings",
            "typos",
            "several-requests",
            "tone",
            "stuck",
            "cannot-know",
            "negation",
            "human-request",
            "entities",
            "agent-engaged",
            "agent-leaves",
            "closing-rating",
            "small-talk",
            "mixed-language",
        ] {
            let found = cases.iter().any(|c| {
                c.category.as_deref() == Some(category) && c.scenario.language == language
            });
            if !found {
                missing.push(format!("{category} in {language}"));
            }
        }
    }
    assert!(missing.is_empty(), "no shipped case for: {missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_conversation_tests_pass_through_the_real_pipeline() -> Result<()> {
    let nats = NatsServer::start().await?;
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));
    let server = Arc::new(CallbackServer::start(loopback, TOKEN, Some(ACCOUNT_ID), false).await?);
    let ingress = stack::start_ingress(&nats.url(), |_| {}).await?;
    stack::wait_ready(&ingress, Duration::from_secs(15)).await?;
    let config = worker::Config::new(&nats.url(), TOKEN, &server.base_url(), loopback)
        .map_err(anyhow::Error::msg)?;
    let logic = worker::logic_from_config(&config)?;
    let worker = stack::start_worker(&nats.url(), &server.base_url(), logic, |_| {}).await?;
    stack::wait_ready(&worker, Duration::from_secs(15)).await?;
    let env = Env {
        ingresses: vec![
            Ingress::new(
                IngressClient::new(&format!("{}/v1/events", ingress.url()), TOKEN)?,
                false,
            )
            .await?,
        ],
        server,
        stats: Arc::new(Stats::default()),
        budget: BUDGET,
        event_size: 0,
        warmup_until: tokio::time::Instant::now(),
    };
    let report = run(&Backend::Pipeline(env), &shipped(), BUDGET).await;
    ensure!(report.passed(), "{}", report.render());
    // The worker counted the conversations' outcomes.
    let page = stack::scrape(&worker).await?;
    for (name, labels) in [
        (
            "yourlogic_conversations_completed_total",
            [("outcome", "contained")],
        ),
        (
            "yourlogic_conversations_completed_total",
            [("outcome", "escalated")],
        ),
        (
            "yourlogic_escalations_total",
            [("reason", "customer_request")],
        ),
        (
            "yourlogic_escalations_total",
            [("reason", "misunderstanding")],
        ),
        ("yourlogic_escalations_total", [("reason", "not_resolved")]),
        ("yourlogic_closing_answers_total", [("answer", "resolved")]),
        ("yourlogic_closing_ratings_total", [("satisfied", "true")]),
        ("yourlogic_intents_total", [("kind", "small_talk")]),
        ("yourlogic_intents_total", [("kind", "off_topic")]),
    ] {
        let value = saltedcx_sim::metrics::metric_value(&page, name, &labels);
        ensure!(value >= 1.0, "{name}{labels:?} = {value}");
    }
    Ok(())
}
