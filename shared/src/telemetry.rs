//! Logs and metrics (and the set-up of traces, see [`crate::otel`]). Logs are text or JSON lines
//! (`RUST_LOG` filters); metrics are Prometheus text served on `/metrics`. Metric names are constants here so the dashboards, alert rules and
//! tests can be checked against one list.

use std::io::IsTerminal;
use std::sync::OnceLock;
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

use crate::config::LogFormat;
use crate::otel::{self, Traces, TracesArgs, TracesError};

/// Every metric this project exports.
pub mod names {
    /// Counter, label `outcome`: accepted, duplicate, unauthorized, malformed, invalid, expired,
    /// too_large, unsupported_media_type, unavailable.
    pub const INGRESS_REQUESTS: &str = "yourlogic_ingress_requests_total";
    /// Histogram: time from request receipt to response at the ingress.
    pub const INGRESS_SECONDS: &str = "yourlogic_ingress_request_seconds";
    /// Gauge, label `listener` (`events`, `admin`): client connections open.
    pub const HTTP_CONNECTIONS: &str = "yourlogic_http_connections";
    /// Counter, labels `listener`, `reason`: connections a service closed (evicted_idle,
    /// evicted_stalled, header_timeout, idle_timeout, peer_limit).
    pub const HTTP_CONNECTIONS_CLOSED: &str = "yourlogic_http_connections_closed_total";
    /// Histogram: time the durable JetStream publish took.
    pub const PUBLISH_SECONDS: &str = "yourlogic_publish_seconds";
    /// Counter, labels `trigger`, `outcome`: answered, silent, expired, failed.
    pub const EVENTS_PROCESSED: &str = "yourlogic_events_processed_total";
    /// Histogram: ingress receipt to callback accepted.
    pub const END_TO_END_SECONDS: &str = "yourlogic_end_to_end_seconds";
    /// Histogram: time left before the deadline when the answer was accepted.
    pub const DEADLINE_SLACK_SECONDS: &str = "yourlogic_deadline_slack_seconds";
    /// Counter, label `status`: HTTP status code, or `error` / `timeout` for failed attempts.
    pub const CALLBACK_REQUESTS: &str = "yourlogic_callback_requests_total";
    /// Histogram: duration of one callback attempt.
    pub const CALLBACK_SECONDS: &str = "yourlogic_callback_seconds";
    /// Histogram: time the conversation logic took.
    pub const LOGIC_SECONDS: &str = "yourlogic_logic_seconds";
    /// Gauge, label `partition`: events waiting in JetStream for the workers.
    pub const QUEUE_PENDING: &str = "yourlogic_queue_pending";
    /// Gauge, label `partition`: events delivered and not yet acknowledged.
    pub const QUEUE_IN_FLIGHT: &str = "yourlogic_queue_in_flight";
    /// Counter: deliveries that were redeliveries (a worker died or was too slow).
    pub const REDELIVERIES: &str = "yourlogic_redeliveries_total";
    /// Counter, label `reason`: events moved to the dead-letter stream.
    pub const DEAD_LETTERS: &str = "yourlogic_dead_letters_total";
    /// Counter: redelivered events whose answer was already sent (not answered again).
    pub const ALREADY_ANSWERED: &str = "yourlogic_already_answered_total";
    /// Gauge: events this worker is processing right now.
    pub const WORKER_IN_FLIGHT: &str = "yourlogic_worker_in_flight";
    /// Gauge: partitions this worker owns (pulls from).
    pub const WORKER_PARTITIONS: &str = "yourlogic_worker_partitions";
    /// Gauge: events delivered to this worker and not finished (queued in lanes, running, or
    /// on the flood fast path).
    pub const WORKER_HELD: &str = "yourlogic_worker_held_events";
    /// Gauge: live workers, as this worker's membership sees them.
    pub const WORKERS_LIVE: &str = "yourlogic_workers_live";
    /// Counter: events answered by the flood fast path (an empty answer carrying
    /// `control.skipToLatest`, without the logic) because later events of their conversation
    /// already filled its `MAX_HELD_PER_CONVERSATION` quota (a sender flooding one conversation).
    pub const DEFERRED: &str = "yourlogic_deferred_events_total";
    /// Counter: partitions this worker took over (was pinned on), each after checking which of
    /// their events another worker still held.
    pub const TAKEOVERS: &str = "yourlogic_partition_takeovers_total";
    /// Gauge: 1 while the process is connected to NATS.
    pub const NATS_CONNECTED: &str = "yourlogic_nats_connected";
    /// Gauge, label `service`: 1 per running process (for counting ready workers).
    pub const UP: &str = "yourlogic_up";

    // Conversation outcomes (the playbook and generative logics).

    /// Counter, label `outcome`: contained (completed without a human), escalated, unknown
    /// (the completion event carried no conversation context).
    pub const CONVERSATIONS_COMPLETED: &str = "yourlogic_conversations_completed_total";
    /// Counter, label `reason`: customer_request, misunderstanding, negative_review, hook,
    /// agent_left, not_resolved, generative. Counted when the bot sends `NEEDS_HELP`.
    pub const ESCALATIONS: &str = "yourlogic_escalations_total";
    /// Counter, label `answer`: resolved, not_resolved (the closing question).
    pub const CLOSING_ANSWERS: &str = "yourlogic_closing_answers_total";
    /// Counter, labels `rating` (1..=scale) and `satisfied` (true for at least 4/5 of the scale).
    pub const CLOSING_RATINGS: &str = "yourlogic_closing_ratings_total";
    /// Counter, label `kind`: small_talk, off_topic (intents answered).
    pub const INTENTS: &str = "yourlogic_intents_total";

    // The generative answer step.

    /// Counter, label `outcome`: answered, escalated (the model's tool call), fallback.
    pub const GENERATIVE_REQUESTS: &str = "yourlogic_generative_requests_total";
    /// Counter, label `reason`: no_time, no_passages, timeout, unavailable, unauthorized,
    /// http_error, malformed, empty, echo, unsafe, unverified (why the playbook's answer was used
    /// instead of the model's).
    pub const GENERATIVE_FALLBACKS: &str = "yourlogic_generative_fallbacks_total";
    /// Histogram: duration of one chat-completions request.
    pub const GENERATIVE_SECONDS: &str = "yourlogic_generative_seconds";
    /// Counter, label `kind`: prompt, completion (tokens the model reported).
    pub const GENERATIVE_TOKENS: &str = "yourlogic_generative_tokens_total";
}

/// The label values of the conversation-outcome and generative metrics, registered at zero.
pub mod outcome_labels {
    /// `outcome` of [`super::names::CONVERSATIONS_COMPLETED`].
    pub const COMPLETED: &[&str] = &["contained", "escalated", "unknown"];
    /// `reason` of [`super::names::ESCALATIONS`].
    pub const ESCALATION_REASONS: &[&str] = &[
        "customer_request",
        "misunderstanding",
        "negative_review",
        "hook",
        "agent_left",
        "not_resolved",
        "generative",
    ];
    /// `answer` of [`super::names::CLOSING_ANSWERS`].
    pub const CLOSING_ANSWERS: &[&str] = &["resolved", "not_resolved"];
    /// `kind` of [`super::names::INTENTS`].
    pub const INTENTS: &[&str] = &["small_talk", "off_topic"];
    /// `outcome` of [`super::names::GENERATIVE_REQUESTS`].
    pub const GENERATIVE_OUTCOMES: &[&str] = &["answered", "escalated", "fallback"];
    /// `reason` of [`super::names::GENERATIVE_FALLBACKS`].
    pub const GENERATIVE_FALLBACKS: &[&str] = &[
        "no_time",
        "no_passages",
        "timeout",
        "unavailable",
        "unauthorized",
        "http_error",
        "malformed",
        "empty",
        "echo",
        "unsafe",
        "unverified",
    ];
    /// `kind` of [`super::names::GENERATIVE_TOKENS`].
    pub const TOKENS: &[&str] = &["prompt", "completion"];
}

/// Which service registers its metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Ingress,
    Worker,
}

/// Registers a service's metrics with help texts and zero values for the known label values,
/// so every series exists from the start (dashboards and `rate()` alerts see 0, not "no data").
pub fn register(service: Service) {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    let _ = metrics_handle();
    describe_gauge!(names::UP, "1 per running process");
    describe_gauge!(
        names::HTTP_CONNECTIONS,
        "Client connections open, by listener"
    );
    describe_counter!(
        names::HTTP_CONNECTIONS_CLOSED,
        "Client connections a service closed, by listener and reason"
    );
    describe_gauge!(names::NATS_CONNECTED, "1 while connected to NATS");
    describe_gauge!(
        names::QUEUE_PENDING,
        "Events waiting in JetStream per partition"
    );
    describe_gauge!(
        names::QUEUE_IN_FLIGHT,
        "Events delivered and not yet acknowledged per partition"
    );
    match service {
        Service::Ingress => {
            describe_counter!(
                names::INGRESS_REQUESTS,
                "POST /v1/events requests by outcome"
            );
            describe_histogram!(names::INGRESS_SECONDS, "Ingress request handling time");
            describe_histogram!(names::PUBLISH_SECONDS, "Durable JetStream publish time");
            for outcome in [
                "accepted",
                "duplicate",
                "unauthorized",
                "malformed",
                "invalid",
                "expired",
                "too_large",
                "unsupported_media_type",
                "timeout",
                "unavailable",
            ] {
                metrics::counter!(names::INGRESS_REQUESTS, "outcome" => outcome).increment(0);
            }
            for reason in [
                "evicted_idle",
                "evicted_stalled",
                "header_timeout",
                "idle_timeout",
                "peer_limit",
            ] {
                metrics::counter!(names::HTTP_CONNECTIONS_CLOSED, "listener" => "events", "reason" => reason)
                    .increment(0);
            }
            metrics::gauge!(names::HTTP_CONNECTIONS, "listener" => "events").increment(0.0);
            metrics::gauge!(names::UP, "service" => "ingress").set(1.0);
        }
        Service::Worker => {
            describe_counter!(
                names::EVENTS_PROCESSED,
                "Events finished, by trigger and outcome"
            );
            describe_histogram!(
                names::END_TO_END_SECONDS,
                "Ingress receipt to callback accepted"
            );
            describe_histogram!(
                names::DEADLINE_SLACK_SECONDS,
                "Time left before the deadline when answered"
            );
            describe_counter!(names::CALLBACK_REQUESTS, "Callback attempts by HTTP status");
            describe_histogram!(names::CALLBACK_SECONDS, "Duration of one callback attempt");
            describe_histogram!(names::LOGIC_SECONDS, "Time the conversation logic took");
            describe_counter!(names::REDELIVERIES, "Deliveries that were redeliveries");
            describe_counter!(
                names::DEAD_LETTERS,
                "Events moved to the dead-letter stream"
            );
            describe_counter!(
                names::ALREADY_ANSWERED,
                "Redelivered events already answered"
            );
            describe_gauge!(
                names::WORKER_IN_FLIGHT,
                "Events being processed by this worker"
            );
            describe_gauge!(names::WORKER_PARTITIONS, "Partitions this worker owns");
            describe_gauge!(
                names::WORKER_HELD,
                "Events delivered to this worker and not finished"
            );
            describe_gauge!(names::WORKERS_LIVE, "Live workers as this worker sees them");
            describe_counter!(names::TAKEOVERS, "Partitions this worker took over");
            describe_counter!(
                names::DEFERRED,
                "Events held beyond their conversation's quota, waiting outside the partition's in-flight window"
            );
            metrics::counter!(names::DEFERRED).increment(0);
            for outcome in ["answered", "silent", "expired", "failed"] {
                metrics::counter!(names::EVENTS_PROCESSED, "trigger" => "MESSAGE", "outcome" => outcome)
                    .increment(0);
            }
            for reason in [
                "bad_envelope",
                "invalid_event",
                "logic_error",
                "callback_rejected",
                "no_callback_url",
                "unserialisable_answer",
                "too_many_deliveries",
                "callback_unreachable",
            ] {
                metrics::counter!(names::DEAD_LETTERS, "reason" => reason).increment(0);
            }
            metrics::counter!(names::REDELIVERIES).increment(0);
            metrics::counter!(names::ALREADY_ANSWERED).increment(0);
            metrics::gauge!(names::WORKER_IN_FLIGHT).increment(0.0);
            metrics::gauge!(names::WORKER_PARTITIONS).increment(0.0);
            metrics::gauge!(names::WORKER_HELD).increment(0.0);
            metrics::counter!(names::TAKEOVERS).increment(0);
            metrics::gauge!(names::UP, "service" => "worker").set(1.0);
            register_conversation_outcomes();
        }
    }
}

/// Describes the conversation-outcome and generative metrics and creates their series at zero.
fn register_conversation_outcomes() {
    use metrics::{counter, describe_counter, describe_histogram};
    let labelled: [(&'static str, &'static str, &'static str, &[&'static str]); 6] = [
        (
            names::CONVERSATIONS_COMPLETED,
            "Completed conversations by outcome (contained: without a human)",
            "outcome",
            outcome_labels::COMPLETED,
        ),
        (
            names::ESCALATIONS,
            "Escalations to a human agent by reason",
            "reason",
            outcome_labels::ESCALATION_REASONS,
        ),
        (
            names::CLOSING_ANSWERS,
            "Answers to the closing question",
            "answer",
            outcome_labels::CLOSING_ANSWERS,
        ),
        (
            names::INTENTS,
            "Small-talk and off-topic messages answered",
            "kind",
            outcome_labels::INTENTS,
        ),
        (
            names::GENERATIVE_REQUESTS,
            "Generative answer attempts by outcome",
            "outcome",
            outcome_labels::GENERATIVE_OUTCOMES,
        ),
        (
            names::GENERATIVE_FALLBACKS,
            "Generative answers replaced by the playbook's, by reason",
            "reason",
            outcome_labels::GENERATIVE_FALLBACKS,
        ),
    ];
    for (name, help, label, values) in labelled {
        describe_counter!(name, help);
        for value in values {
            counter!(name, label => *value).increment(0);
        }
    }
    describe_counter!(
        names::CLOSING_RATINGS,
        "Ratings given at the closing (CSAT: satisfied=true)"
    );
    // The series of the default 1-5 scale (4 and 5 count as satisfied).
    for rating in 1..=5u8 {
        let satisfied = if rating >= 4 { "true" } else { "false" };
        counter!(names::CLOSING_RATINGS, "rating" => rating.to_string(), "satisfied" => satisfied)
            .increment(0);
    }
    describe_counter!(
        names::GENERATIVE_TOKENS,
        "Tokens used by the generative step"
    );
    for kind in outcome_labels::TOKENS {
        counter!(names::GENERATIVE_TOKENS, "kind" => *kind).increment(0);
    }
    describe_histogram!(
        names::GENERATIVE_SECONDS,
        "Duration of one chat-completions request"
    );
    // Registered without a sample, so the series exists before the first request.
    let _ = metrics::histogram!(names::GENERATIVE_SECONDS);
}

/// Latency buckets (seconds) for every histogram: fine below 10 ms, up to a minute.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0,
    60.0,
];

/// Starts logging to standard error. Safe to call more than once (later calls do nothing).
/// Text lines are coloured only when standard error is a terminal, so log files stay plain.
pub fn init_logging(format: LogFormat) {
    let builder = tracing_subscriber::fmt()
        .with_env_filter(log_filter())
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // Already initialised (several services in one test process): keep the first.
    let _ = result;
}

/// Starts logging (as [`init_logging`]) and, when `traces` names an OTLP endpoint, the export
/// of distributed traces as `service` (see [`crate::otel`]). Without an endpoint this is
/// exactly [`init_logging`]. Call [`crate::otel::shutdown`] when the service has stopped.
pub fn init(format: LogFormat, traces: &TracesArgs, service: &str) -> Result<(), TracesError> {
    let Some(traces) = Traces::build(traces, service)? else {
        init_logging(format);
        return Ok(());
    };
    let log = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let log = match format {
        LogFormat::Text => log.with_filter(log_filter()).boxed(),
        LogFormat::Json => log
            .json()
            .flatten_event(true)
            .with_filter(log_filter())
            .boxed(),
    };
    let subscriber = tracing_subscriber::registry()
        .with(log)
        .with(traces.layer());
    match subscriber.try_init() {
        Ok(()) => traces.install(),
        // Already initialised (several services in one test process): keep the first.
        Err(_) => traces.discard(),
    }
    Ok(())
}

/// `RUST_LOG` (default `info`), without the spans that exist for traces only.
fn log_filter() -> EnvFilter {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    match otel::LOG_DIRECTIVE.parse() {
        Ok(directive) => filter.add_directive(directive),
        // A constant, checked by a unit test.
        Err(_) => filter,
    }
}

/// The process-wide Prometheus recorder, installed on first use. Several services in one process
/// (tests) share it.
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .map(PrometheusBuilder::build_recorder)
                .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
            }
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(Duration::from_secs(5));
                        upkeep.run_upkeep();
                    }
                })
                .ok();
            handle
        })
        .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_filter_turns_the_trace_only_spans_off_where_they_are_created() {
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(log_filter())
            .with_writer(std::io::sink)
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            let traced = tracing::info_span!(target: otel::SPAN_TARGET, "logic");
            assert!(traced.is_disabled(), "trace-only spans must cost nothing");
            let logged = tracing::error_span!("event");
            assert!(!logged.is_disabled(), "the log's own spans stay");
        });
    }
}
