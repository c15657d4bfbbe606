//! Distributed traces: with an OTLP endpoint configured, one event posted with a caller's
//! `traceparent` leaves one trace in the collector holding the ingress's span and the worker's
//! spans (the event, its wait in the queue, the logic, the callback attempt), linked parent to
//! child across NATS. The real binaries run, each with its own `service.name`, sending to a
//! small OTLP/HTTP receiver on loopback.

use std::time::Duration;

use anyhow::{Context, Result};
use reqwest::StatusCode;
use testkit::faults::binaries::BinaryProcess;
use testkit::otlp::{OtlpReceiver, ReceivedSpan};
use testkit::stack::TOKEN;
use testkit::{EventBuilder, FakeSaltedCx, NatsServer};

const READY: Duration = Duration::from_secs(15);
/// The caller's trace: the ingress's span must be its child.
const CALLER_TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

/// Nats, a fake Salted CX, a receiver, and the ingress and a worker (echo logic) exporting to
/// it; `batch_delay_ms` is how long the exporters collect spans before sending them.
struct Traced {
    _nats: NatsServer,
    fake: FakeSaltedCx,
    collector: OtlpReceiver,
    ingress: BinaryProcess,
    worker: BinaryProcess,
}

async fn traced_pipeline(batch_delay_ms: &str) -> Result<Traced> {
    let nats = NatsServer::start().await?;
    let fake = FakeSaltedCx::start(TOKEN).await?;
    let collector = OtlpReceiver::start().await?;
    let nats_url = nats.url();
    let endpoint = collector.endpoint();
    let api_url = fake.base_url();
    let common = [
        ("NATS_URL", nats_url.as_str()),
        ("SALTEDCX_TOKEN", TOKEN),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        // The SDK's own batch setting (milliseconds).
        ("OTEL_BSP_SCHEDULE_DELAY", batch_delay_ms),
    ];
    let mut ingress = BinaryProcess::spawn("ingress", "INGRESS_ADDR", &common)?;
    let mut worker_env = common.to_vec();
    worker_env.extend([("SALTEDCX_API_URL", api_url.as_str()), ("LOGIC", "echo")]);
    let mut worker = BinaryProcess::spawn("worker", "WORKER_ADDR", &worker_env)?;
    ingress.wait_ready(READY).await?;
    worker.wait_ready(READY).await?;
    Ok(Traced {
        _nats: nats,
        fake,
        collector,
        ingress,
        worker,
    })
}

/// Posts a message event with the caller's `traceparent`; returns its request id once the
/// fake Salted CX got its answer.
async fn post_traced_event(traced: &Traced, conversation: &str) -> Result<String> {
    let event = EventBuilder::message(conversation, "hello there").build();
    let request_id = event["requestId"]
        .as_str()
        .context("the event has a requestId")?
        .to_string();
    let response = reqwest::Client::new()
        .post(format!("{}/v1/events", traced.ingress.url()))
        .bearer_auth(TOKEN)
        .header(
            "traceparent",
            format!("00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"),
        )
        .json(&event)
        .timeout(Duration::from_secs(10))
        .send()
        .await?;
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    traced
        .fake
        .wait_for_request(&request_id, Duration::from_secs(10))
        .await?;
    Ok(request_id)
}

/// The spans of the caller's trace, once the worker's callback span is among them.
async fn wait_for_trace(collector: &OtlpReceiver, timeout: Duration) -> Vec<ReceivedSpan> {
    let trace = || {
        collector
            .spans()
            .into_iter()
            .filter(|span| span.trace_id == CALLER_TRACE_ID)
            .collect::<Vec<_>>()
    };
    let complete = |spans: &[ReceivedSpan]| {
        [
            "POST /v1/events",
            "event",
            "queue wait",
            "logic",
            "callback",
        ]
        .iter()
        .all(|name| spans.iter().any(|span| span.name == *name))
    };
    testkit::poll::wait_for(timeout, Duration::from_millis(50), || async {
        let spans = trace();
        complete(&spans).then_some(spans)
    })
    .await
    .unwrap_or_else(trace)
}

fn named<'a>(spans: &'a [ReceivedSpan], name: &str) -> &'a ReceivedSpan {
    let found: Vec<&ReceivedSpan> = spans.iter().filter(|span| span.name == name).collect();
    assert_eq!(found.len(), 1, "one `{name}` span expected in {spans:#?}");
    found[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_event_leaves_one_trace_across_the_ingress_and_the_worker_continuing_the_callers()
-> Result<()> {
    let traced = traced_pipeline("100").await?;
    let request_id = post_traced_event(&traced, "conv-traced").await?;

    let spans = wait_for_trace(&traced.collector, Duration::from_secs(20)).await;
    let ingress = named(&spans, "POST /v1/events");
    assert_eq!(ingress.service, "ingress");
    assert_eq!(
        ingress.parent_span_id, CALLER_SPAN_ID,
        "the caller's traceparent is honoured"
    );
    assert_eq!(ingress.attribute("request_id"), Some(request_id.as_str()));
    assert_eq!(ingress.attribute("http.response.status_code"), Some("202"));
    assert_eq!(ingress.attribute("outcome"), Some("accepted"));

    let event = named(&spans, "event");
    assert_eq!(event.service, "worker");
    assert_eq!(
        event.parent_span_id, ingress.span_id,
        "the worker continues the ingress's span, carried in the NATS headers"
    );
    assert_eq!(event.attribute("request_id"), Some(request_id.as_str()));
    assert_eq!(event.attribute("conversation"), Some("conv-traced"));

    let wait = named(&spans, "queue wait");
    assert_eq!(wait.service, "worker");
    assert_eq!(wait.parent_span_id, ingress.span_id);
    assert!(
        wait.start_unix_nanos >= ingress.start_unix_nanos
            && wait.end_unix_nanos >= wait.start_unix_nanos,
        "the wait starts at the ingress's receipt: {wait:?}, ingress {ingress:?}"
    );

    for child in ["logic", "callback"] {
        let span = named(&spans, child);
        assert_eq!(span.service, "worker");
        assert_eq!(
            span.parent_span_id, event.span_id,
            "{child} inside the event"
        );
    }
    let callback = named(&spans, "callback");
    assert_eq!(callback.attribute("http.response.status_code"), Some("200"));
    assert_eq!(callback.attribute("attempt"), Some("1"));

    let services: std::collections::BTreeSet<&str> =
        spans.iter().map(|span| span.service.as_str()).collect();
    assert_eq!(
        services,
        ["ingress", "worker"].into_iter().collect(),
        "{spans:#?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_still_waiting_for_their_batch_are_sent_when_the_services_stop() -> Result<()> {
    // A batch delay far beyond the test: only the flush at shutdown can deliver the spans.
    let mut traced = traced_pipeline("600000").await?;
    post_traced_event(&traced, "conv-flushed").await?;
    for process in [&mut traced.worker, &mut traced.ingress] {
        process.terminate()?;
        let status = process.wait_exit(Duration::from_secs(30)).await?;
        assert!(status.success(), "exit status {status}");
    }
    let spans = wait_for_trace(&traced.collector, Duration::from_secs(5)).await;
    named(&spans, "POST /v1/events");
    named(&spans, "callback");
    Ok(())
}
