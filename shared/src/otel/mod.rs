//! Distributed traces: OpenTelemetry spans exported over OTLP (HTTP, protobuf) when an endpoint
//! is configured, with the W3C trace context (`traceparent`, `tracestate`) carried from the
//! request Salted CX (or a proxy) sent, through the event's NATS message headers, to the worker:
//! one trace shows an event from its POST to its callback.
//!
//! - [`settings`]: the standard `OTEL_*` settings, each a flag too;
//! - this module: the tracer provider (a batching exporter on its own thread, the sampler, the
//!   resource with `service.name`), process-wide and set up once, and its flush at exit;
//! - [`propagation`]: the trace context in HTTP and NATS headers, and the queue-wait span.
//!
//! Off by default, and then free: no provider or exporter exists, the spans only traces need
//! (target [`SPAN_TARGET`]) are turned off at their call sites by the log filter (creating one
//! costs a check of its call site), and the helpers here return after one check of [`enabled`]
//! without reading or writing any header.

pub mod propagation;
pub mod settings;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider};
use tracing::{Level, Metadata};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::registry::LookupSpan;

pub use settings::TracesArgs;

/// The target of the spans that exist for traces only (the ingress's request, the logic, each
/// callback attempt, dead-lettering). The log leaves them out, so with traces off they are
/// disabled where they are created: `tracing::info_span!(target: SPAN_TARGET, "logic")`.
pub const SPAN_TARGET: &str = "yourlogic_trace";

/// The log filter directive that leaves the trace-only spans out of the log.
pub(crate) const LOG_DIRECTIVE: &str = "yourlogic_trace=off";

/// The crates whose spans and log lines (at `info` and above) go into the traces, the log lines
/// as events of the span they happen in.
const TRACED_CRATES: [&str; 3] = ["ingress", "worker", "shared"];

/// Why traces could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TracesError {
    #[error("cannot set up the OTLP trace exporter for {url}: {source}")]
    Exporter {
        url: String,
        source: opentelemetry_otlp::ExporterBuildError,
    },
}

/// The tracer provider and the tracer of this process.
pub struct Traces {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    /// Where spans go, for the start-up log line (without any user:password of the URL).
    destination: String,
    service: String,
}

/// The installed provider: one per process, even with several services in it (tests).
static INSTALLED: OnceLock<Traces> = OnceLock::new();

/// Whether traces are recorded in this process.
#[inline]
pub fn enabled() -> bool {
    INSTALLED.get().is_some()
}

/// The installed tracer, `None` when traces are off.
pub(crate) fn tracer() -> Option<&'static SdkTracer> {
    INSTALLED.get().map(|traces| &traces.tracer)
}

impl Traces {
    /// Builds the exporter and the provider for `service` (the binary's name, used when
    /// `OTEL_SERVICE_NAME` is unset); `None` when no endpoint is configured. Spans are batched
    /// and sent from a thread of the exporter's own, so exporting never runs on the event path.
    pub fn build(settings: &TracesArgs, service: &str) -> Result<Option<Self>, TracesError> {
        let Some(url) = settings.traces_url() else {
            return Ok(None);
        };
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(url.clone());
        if let Some(headers) = &settings.otel_exporter_otlp_headers {
            exporter = exporter.with_headers(headers.to_map());
        }
        let destination = without_userinfo(&url);
        let exporter = exporter.build().map_err(|source| TracesError::Exporter {
            url: destination.clone(),
            source,
        })?;
        let service = settings.service_name(service).to_string();
        // `Resource::builder` also reads OTEL_RESOURCE_ATTRIBUTES, as the SDK defines it.
        let resource = Resource::builder()
            .with_service_name(service.clone())
            .with_attribute(opentelemetry::KeyValue::new(
                "service.version",
                env!("CARGO_PKG_VERSION"),
            ))
            .build();
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_sampler(settings.sampler())
            .with_resource(resource)
            .build();
        let tracer = provider.tracer("yourlogic");
        Ok(Some(Self {
            provider,
            tracer,
            destination,
            service,
        }))
    }

    /// The layer that turns `tracing` spans into OpenTelemetry spans: the trace-only spans, and
    /// this project's spans and log lines at `info` and above (whatever `RUST_LOG` says; never
    /// those of the libraries, the exporter's own HTTP client included).
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    {
        tracing_opentelemetry::layer()
            .with_tracer(self.tracer.clone())
            // The `target` attribute would only repeat SPAN_TARGET or the code's module.
            .with_target(false)
            .with_filter(filter_fn(traced))
    }

    /// Makes this the process's provider (a second one, from another service started in the
    /// same process, is shut down: the first stays).
    pub fn install(self) {
        let (destination, service) = (self.destination.clone(), self.service.clone());
        match INSTALLED.set(self) {
            Ok(()) => tracing::info!(%destination, %service, "exporting traces"),
            Err(extra) => extra.discard(),
        }
    }

    /// Stops the exporter at once (the provider could not be installed).
    pub fn discard(self) {
        let _ = self.provider.shutdown();
    }
}

/// Sends the spans still waiting in the batch and stops the exporter; call once the service
/// has stopped (later spans are dropped). Blocks until the last export finished or timed out.
pub fn shutdown() {
    if let Some(traces) = INSTALLED.get()
        && let Err(err) = traces.provider.shutdown()
    {
        tracing::warn!(error = %err, "traces: the last spans may not have been exported");
    }
}

/// `url` without a `user:password@` part.
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let authority_end = rest.find('/').unwrap_or(rest.len());
            match rest[..authority_end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    }
}

/// Whether a span or log line goes into the traces.
fn traced(metadata: &Metadata<'_>) -> bool {
    let target = metadata.target();
    if target == SPAN_TARGET {
        return true;
    }
    let ours = TRACED_CRATES.iter().any(|name| {
        target
            .strip_prefix(name)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
    });
    ours && *metadata.level() <= Level::INFO
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_directive_that_hides_the_trace_only_spans_is_valid() {
        let directive = LOG_DIRECTIVE.parse::<tracing_subscriber::filter::Directive>();
        assert!(directive.is_ok(), "{directive:?}");
        assert!(LOG_DIRECTIVE.starts_with(SPAN_TARGET));
    }

    #[test]
    fn the_logged_destination_never_shows_a_password() {
        assert_eq!(
            without_userinfo("https://user:secret@collector:4318/v1/traces"),
            "https://collector:4318/v1/traces"
        );
        assert_eq!(
            without_userinfo("http://collector:4318/v1/traces"),
            "http://collector:4318/v1/traces"
        );
    }

    #[test]
    fn without_an_endpoint_no_exporter_is_built() {
        let built = Traces::build(
            &crate::config::flag_defaults::<TracesArgs>().expect("defaults"),
            "ingress",
        )
        .expect("no error");
        assert!(built.is_none());
    }
}
