//! The tracing settings: the standard OpenTelemetry environment variables, each also a flag.
//! Traces are off unless an OTLP endpoint is set.

use std::collections::HashMap;
use std::fmt;

use clap::{Args, ValueEnum};
use opentelemetry_sdk::trace::Sampler;

/// Where spans go and which traces are kept.
#[derive(Debug, Clone, Args)]
pub struct TracesArgs {
    /// Base URL of an OpenTelemetry collector's OTLP/HTTP receiver, e.g.
    /// `http://otel-collector:4318`: spans are sent to `<URL>/v1/traces` as protobuf. Unset (and
    /// no OTEL_EXPORTER_OTLP_TRACES_ENDPOINT): no traces are recorded or exported.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", value_parser = parse_http_url)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// Full URL spans are sent to (OTLP/HTTP, protobuf), taking precedence over
    /// OTEL_EXPORTER_OTLP_ENDPOINT.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", value_parser = parse_http_url)]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// Extra HTTP headers sent with every export, `name=value` pairs separated by commas (values
    /// percent-encoded), e.g. a tracing service's API key. Never logged.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_HEADERS", hide_env_values = true, value_parser = ExportHeaders::parse)]
    pub otel_exporter_otlp_headers: Option<ExportHeaders>,
    /// The `service.name` of the spans; the binary's name (`ingress`, `worker`) when unset.
    #[arg(long, env = "OTEL_SERVICE_NAME")]
    pub otel_service_name: Option<String>,
    /// Which traces are recorded: `parentbased_always_on` follows the caller's decision (the
    /// `traceparent` of the request) and records every trace the ingress starts;
    /// `parentbased_traceidratio` starts only a fraction (OTEL_TRACES_SAMPLER_ARG) of them.
    #[arg(long, env = "OTEL_TRACES_SAMPLER", value_enum, default_value_t = SamplerKind::ParentbasedAlwaysOn)]
    pub otel_traces_sampler: SamplerKind,
    /// The fraction of traces the `traceidratio` samplers record, from 0 to 1.
    #[arg(long, env = "OTEL_TRACES_SAMPLER_ARG", default_value_t = 1.0, value_parser = parse_ratio)]
    pub otel_traces_sampler_arg: f64,
}

/// The samplers of the OpenTelemetry specification (`OTEL_TRACES_SAMPLER`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
#[value(rename_all = "snake_case")]
pub enum SamplerKind {
    /// Record every trace.
    AlwaysOn,
    /// Record none.
    AlwaysOff,
    /// Record the fraction OTEL_TRACES_SAMPLER_ARG of the traces, chosen by trace id.
    Traceidratio,
    /// Follow the parent's decision; record every trace this process starts.
    ParentbasedAlwaysOn,
    /// Follow the parent's decision; record none of the traces this process starts.
    ParentbasedAlwaysOff,
    /// Follow the parent's decision; record a fraction of the traces this process starts.
    ParentbasedTraceidratio,
}

impl TracesArgs {
    /// The URL spans are sent to, `None` when tracing is off.
    /// (An empty value counts as unset, as the OpenTelemetry specification asks.)
    pub fn traces_url(&self) -> Option<String> {
        let given = |url: &Option<String>| url.clone().filter(|url| !url.is_empty());
        if let Some(url) = given(&self.otel_exporter_otlp_traces_endpoint) {
            return Some(url);
        }
        given(&self.otel_exporter_otlp_endpoint)
            .map(|base| format!("{}/v1/traces", base.trim_end_matches('/')))
    }

    /// The `service.name` resource attribute.
    pub fn service_name<'a>(&'a self, binary: &'a str) -> &'a str {
        self.otel_service_name
            .as_deref()
            .filter(|name| !name.trim().is_empty())
            .unwrap_or(binary)
    }

    /// The configured sampler.
    pub fn sampler(&self) -> Sampler {
        let ratio = self.otel_traces_sampler_arg;
        match self.otel_traces_sampler {
            SamplerKind::AlwaysOn => Sampler::AlwaysOn,
            SamplerKind::AlwaysOff => Sampler::AlwaysOff,
            SamplerKind::Traceidratio => Sampler::TraceIdRatioBased(ratio),
            SamplerKind::ParentbasedAlwaysOn => Sampler::ParentBased(Box::new(Sampler::AlwaysOn)),
            SamplerKind::ParentbasedAlwaysOff => Sampler::ParentBased(Box::new(Sampler::AlwaysOff)),
            SamplerKind::ParentbasedTraceidratio => {
                Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(ratio)))
            }
        }
    }
}

/// Export headers (`OTEL_EXPORTER_OTLP_HEADERS`); their values may be secrets, so `Debug` shows
/// only the names.
#[derive(Clone, PartialEq, Eq)]
pub struct ExportHeaders(Vec<(String, String)>);

impl ExportHeaders {
    /// Parses `name=value,name2=value2` (values percent-decoded, spaces around items ignored).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut headers = Vec::new();
        let items = text
            .split(',')
            .map(str::trim)
            .filter(|item| !item.is_empty());
        for (number, item) in items.enumerate() {
            // The item is not shown: without its `=` it may be a bare secret.
            let Some((name, value)) = item.split_once('=') else {
                return Err(format!(
                    "header {} of the list is not a `name=value` pair",
                    number + 1
                ));
            };
            let name = name.trim();
            let valid_name = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !valid_name {
                return Err(format!("`{name}` is not a valid HTTP header name"));
            }
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| format!("the value of header `{name}` is not UTF-8 once decoded"))?;
            if value.chars().any(char::is_control) {
                return Err(format!(
                    "the value of header `{name}` contains control characters"
                ));
            }
            headers.push((name.to_string(), value.into_owned()));
        }
        Ok(Self(headers))
    }

    /// The headers, for the exporter.
    pub fn to_map(&self) -> HashMap<String, String> {
        self.0.iter().cloned().collect()
    }
}

impl fmt::Debug for ExportHeaders {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(name, _)| format!("{name}=***")))
            .finish()
    }
}

/// An `http://` or `https://` URL with a host, or nothing (an empty value means unset).
fn parse_http_url(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(String::new());
    }
    let rest = text
        .strip_prefix("http://")
        .or_else(|| text.strip_prefix("https://"))
        .ok_or_else(|| format!("`{text}` is not an http:// or https:// URL"))?;
    if rest.is_empty() || rest.starts_with('/') {
        return Err(format!("`{text}` names no host"));
    }
    text.parse::<axum::http::Uri>()
        .map_err(|err| format!("`{text}` is not a valid URL: {err}"))?;
    Ok(text.to_string())
}

/// A fraction from 0 to 1.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(format!("`{text}` is not a fraction from 0 to 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_is_the_base_with_the_signal_path_unless_given_in_full() {
        let mut args: TracesArgs = crate::config::flag_defaults().expect("defaults");
        assert_eq!(args.traces_url(), None);
        args.otel_exporter_otlp_endpoint = Some(String::new());
        assert_eq!(args.traces_url(), None, "empty means unset");
        args.otel_exporter_otlp_endpoint = Some("http://collector:4318/".into());
        assert_eq!(
            args.traces_url().as_deref(),
            Some("http://collector:4318/v1/traces")
        );
        args.otel_exporter_otlp_traces_endpoint = Some("https://traces.example/in".into());
        assert_eq!(
            args.traces_url().as_deref(),
            Some("https://traces.example/in")
        );
    }

    #[test]
    fn endpoints_must_be_http_urls_with_a_host() {
        assert!(parse_http_url("http://127.0.0.1:4318").is_ok());
        assert_eq!(parse_http_url(" "), Ok(String::new()));
        assert!(parse_http_url("collector:4318").is_err());
        assert!(parse_http_url("http://").is_err());
        assert!(parse_http_url("grpc://collector:4317").is_err());
    }

    #[test]
    fn export_headers_are_parsed_decoded_and_never_shown() {
        let headers = ExportHeaders::parse("x-api-key=se%20cret, tenant = a").expect("valid");
        let map = headers.to_map();
        assert_eq!(map.get("x-api-key").map(String::as_str), Some("se cret"));
        assert_eq!(map.get("tenant").map(String::as_str), Some("a"));
        let shown = format!("{headers:?}");
        assert!(
            shown.contains("x-api-key") && !shown.contains("se cret"),
            "{shown}"
        );
        let err = ExportHeaders::parse("a=1,secret-without-name").expect_err("no value");
        assert!(err.contains("header 2") && !err.contains("secret"), "{err}");
        assert!(ExportHeaders::parse("bad name=1").is_err());
        assert!(ExportHeaders::parse("a=%0Ab").is_err());
    }

    #[test]
    fn sampler_ratios_must_be_fractions() {
        assert_eq!(parse_ratio("0.25"), Ok(0.25));
        assert!(parse_ratio("1.5").is_err());
        assert!(parse_ratio("-0.1").is_err());
        assert!(parse_ratio("x").is_err());
    }
}
