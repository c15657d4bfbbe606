//! The W3C trace context across the pipeline: read from the request that brought an event (the
//! caller's `traceparent`), written into the event's NATS message headers by the ingress, and
//! read there by the worker, whose spans then continue the ingress's trace. Also the span of
//! the event's wait in the queue, which the worker records with explicit times.
//!
//! Every function returns at once when traces are off, before touching any header.

use std::time::SystemTime;

use chrono::{DateTime, Utc};
use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, TraceContextExt, Tracer as _};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// Makes `span` (the ingress's span of one request) a child of the caller's trace when the
/// request carries a valid `traceparent`; otherwise it starts a trace.
pub fn continue_request(span: &Span, headers: &axum::http::HeaderMap) {
    if !super::enabled() || span.is_disabled() {
        return;
    }
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    if parent.span().span_context().is_valid() {
        let _ = span.set_parent(parent);
    }
}

/// Adds the current span's trace context (`traceparent`, and `tracestate` when there is one)
/// to the headers of a message about to be published.
pub fn inject_current(headers: &mut async_nats::HeaderMap) {
    if !super::enabled() {
        return;
    }
    let context = Span::current().context();
    if context.span().span_context().is_valid() {
        TraceContextPropagator::new().inject_context(&context, &mut NatsHeaders(headers));
    }
}

/// Makes `span` (the worker's span of one event) continue the trace whose context the event's
/// message headers carry, and records the event's wait from its receipt at the ingress
/// (`received_at`) until now, as a span `queue wait` beside it (a child of the same parent; of
/// `span` when the message carries no trace context). Call before `span` is first entered.
pub fn continue_event(
    span: &Span,
    headers: Option<&async_nats::HeaderMap>,
    received_at: DateTime<Utc>,
) {
    let Some(tracer) = super::tracer() else {
        return;
    };
    if span.is_disabled() {
        return;
    }
    let carried = headers
        .map(|headers| TraceContextPropagator::new().extract(&NatsHeaderReader(headers)))
        .filter(|context| context.span().span_context().is_valid());
    let parent = match carried {
        Some(context) => {
            let _ = span.set_parent(context.clone());
            context
        }
        None => span.context(),
    };
    queue_wait(tracer, &parent, received_at);
}

/// The span of an event's time between its receipt at the ingress and the start of its
/// processing (both clocks are the services' own; a worker whose clock is behind records 0).
fn queue_wait(
    tracer: &opentelemetry_sdk::trace::SdkTracer,
    parent: &Context,
    since: DateTime<Utc>,
) {
    let now = SystemTime::now();
    let start = SystemTime::from(since).min(now);
    let mut wait = tracer
        .span_builder("queue wait")
        .with_kind(SpanKind::Consumer)
        .with_start_time(start)
        .start_with_context(tracer, parent);
    wait.end_with_timestamp(now);
}

/// Writes trace context entries into NATS headers.
struct NatsHeaders<'a>(&'a mut async_nats::HeaderMap);

impl Injector for NatsHeaders<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes ids and validated `tracestate` entries only; a line break would
        // make the NATS client panic, so such a value is dropped rather than trusted.
        if !value.contains(['\r', '\n']) {
            self.0.insert(key, value);
        }
    }
}

/// Reads trace context entries from NATS headers.
struct NatsHeaderReader<'a>(&'a async_nats::HeaderMap);

impl Extractor for NatsHeaderReader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(async_nats::HeaderValue::as_str)
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .iter()
            .map(|(name, _)| AsRef::<str>::as_ref(name))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_trace_context_survives_a_round_trip_through_nats_headers() {
        let mut source = std::collections::HashMap::new();
        source.insert("traceparent".to_string(), TRACEPARENT.to_string());
        source.insert("tracestate".to_string(), "vendor=abc".to_string());
        let propagator = TraceContextPropagator::new();
        let context = propagator.extract(&source);

        let mut headers = async_nats::HeaderMap::new();
        propagator.inject_context(&context, &mut NatsHeaders(&mut headers));
        assert_eq!(
            headers.get("traceparent").map(|v| v.as_str()),
            Some(TRACEPARENT)
        );
        assert_eq!(
            headers.get("tracestate").map(|v| v.as_str()),
            Some("vendor=abc")
        );

        let read = propagator.extract(&NatsHeaderReader(&headers));
        assert_eq!(
            read.span().span_context(),
            context.span().span_context(),
            "the worker reads what the ingress wrote"
        );
    }

    #[test]
    fn with_traces_off_nothing_is_written_or_read() {
        let mut headers = async_nats::HeaderMap::new();
        inject_current(&mut headers);
        assert!(headers.is_empty());
        let span = tracing::info_span!("event");
        continue_event(&span, Some(&headers), Utc::now());
        continue_request(&span, &axum::http::HeaderMap::new());
    }
}
