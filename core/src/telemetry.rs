//! Logging and tracing setup shared by the binaries.
//!
//! Logs: a `tracing` subscriber writing to stderr.
//!
//! Traces: W3C trace context (`traceparent`, `tracestate`). A submitter's
//! context is stored with its task and continued by the gateway's `submit`
//! span and the worker's `claim`, `run` and `outcome` spans; handlers get the
//! `run` span's context. Spans always get ids, so the context is passed on
//! even when nothing is exported; OTLP export is off unless the standard
//! variables ask for it ([`init`]).

use std::collections::HashMap;
use std::time::SystemTime;

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::EnvFilter;

pub use opentelemetry::trace::SpanKind;
pub use opentelemetry::{Context, KeyValue};

/// The W3C header (and command-handler variable, upper-cased) carrying the
/// trace id and the parent span id.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header carrying vendors' trace state.
pub const TRACESTATE: &str = "tracestate";

/// Installs a `tracing` subscriber writing to stderr and the trace provider.
/// The log filter comes from `RUST_LOG` (default
/// `info,rdkafka=warn,sqlx=warn`). Colours only on a terminal: a log file or
/// collector gets plain text it can grep.
///
/// Spans are exported over OTLP/HTTP when `OTEL_TRACES_EXPORTER=otlp`, or
/// when it is unset and `OTEL_EXPORTER_OTLP_ENDPOINT` or
/// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set; `OTEL_TRACES_EXPORTER=none`
/// (or nothing set) exports nothing. The exporter reads the other standard
/// variables itself (`OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` (default)
/// or `http/json`, `*_HEADERS`, `*_TIMEOUT`), the provider
/// `OTEL_TRACES_SAMPLER` (default parent-based always-on) and
/// `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES` (service name
/// `service` otherwise). Keep the returned [`Telemetry`] and call
/// [`Telemetry::shutdown`] at exit so the last spans are sent.
pub fn init(service: &'static str) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,rdkafka=warn,sqlx=warn"));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_target(true).with_ansi(ansi).try_init();

    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service);
    }
    let mut provider = SdkTracerProvider::builder().with_resource(resource.build());
    let export = otlp_wanted(|k| std::env::var(k).ok());
    if export {
        match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
            Ok(exporter) => {
                provider = provider.with_batch_exporter(exporter);
                tracing::info!("exporting trace spans over OTLP/HTTP (OTEL_EXPORTER_OTLP_* settings)");
            }
            Err(e) => tracing::error!(error = %e, "cannot set up the OTLP span exporter; spans are not exported"),
        }
    }
    let provider = provider.build();
    opentelemetry::global::set_tracer_provider(provider.clone());
    Telemetry { provider, export }
}

/// Whether the standard variables (read through `var`) ask for OTLP export.
fn otlp_wanted(var: impl Fn(&str) -> Option<String>) -> bool {
    match var("OTEL_TRACES_EXPORTER").as_deref().map(str::trim) {
        Some("otlp") => true,
        Some(s) if !s.is_empty() => false,
        _ => ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"].iter().any(|k| var(k).is_some()),
    }
}

/// The installed trace provider; see [`init`].
pub struct Telemetry {
    provider: SdkTracerProvider,
    export: bool,
}

impl Telemetry {
    /// Sends the spans still buffered (bounded by the exporter's timeout)
    /// and stops the provider. Blocking: call it once the runtime's work is done.
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            if self.export {
                tracing::warn!(error = %e, "trace spans not all exported at shutdown");
            }
        }
    }
}

/// A task's trace context as stored with it (`tasks.traceparent`,
/// `tasks.tracestate`): the W3C header values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraceContext {
    /// `00-<32 hex trace id>-<16 hex parent span id>-<2 hex flags>`.
    pub traceparent: String,
    /// Vendors' `key=value` list; empty when there is none.
    pub tracestate: String,
}

impl TraceContext {
    /// The context `cx` carries (its span's), or `None` when it has no valid span.
    pub fn of(cx: &Context) -> Option<Self> {
        let mut carrier = HashMap::new();
        TraceContextPropagator::new().inject_context(cx, &mut carrier);
        let traceparent = carrier.remove(TRACEPARENT)?;
        Some(Self { traceparent, tracestate: carrier.remove(TRACESTATE).unwrap_or_default() })
    }

    /// The 32 hex digits of the trace id in `traceparent`.
    pub(crate) fn trace_id(traceparent: &str) -> Option<&str> {
        traceparent.split('-').nth(1).filter(|t| t.len() == 32)
    }
}

/// The remote parent that `traceparent` and `tracestate` describe; an
/// absent or invalid `traceparent` gives an empty context, under which
/// spans start a new trace (what the W3C rules ask of a receiver).
pub fn remote_parent(traceparent: Option<&str>, tracestate: Option<&str>) -> Context {
    let mut carrier = HashMap::new();
    if let Some(tp) = traceparent {
        carrier.insert(TRACEPARENT.to_string(), tp.trim().to_string());
        if let Some(ts) = tracestate.filter(|s| !s.is_empty()) {
            carrier.insert(TRACESTATE.to_string(), ts.to_string());
        }
    }
    TraceContextPropagator::new().extract_with_context(&Context::new(), &carrier)
}

/// Starts span `name` of `kind` under `parent` (at `start`, or now), with
/// `attributes`; the returned context holds it, and the span ends when the
/// last clone of that context is dropped, or by [`end`].
pub fn start(
    name: &'static str,
    kind: SpanKind,
    parent: &Context,
    start: Option<SystemTime>,
    attributes: Vec<KeyValue>,
) -> Context {
    let tracer = opentelemetry::global::tracer_provider().tracer("yadtq");
    let mut builder = tracer.span_builder(name).with_kind(kind).with_attributes(attributes);
    if let Some(at) = start {
        builder = builder.with_start_time(at);
    }
    let span = builder.start_with_context(&tracer, parent);
    parent.with_span(span)
}

/// Ends the span `cx` holds now, after adding `attributes`.
pub fn end(cx: &Context, attributes: Vec<KeyValue>) {
    let span = cx.span();
    span.set_attributes(attributes);
    span.end();
}

/// Records span `name` that ran from `from` to now under `parent`, with
/// `attributes` (for work done for many tasks at once, like a batched claim).
pub fn record(name: &'static str, parent: &Context, from: SystemTime, attributes: Vec<KeyValue>) {
    let cx = start(name, SpanKind::Internal, parent, Some(from), attributes);
    cx.span().end();
}

#[cfg(test)]
mod tests {
    use super::*;

    const TP: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    fn install() {
        let provider = SdkTracerProvider::builder().build();
        opentelemetry::global::set_tracer_provider(provider);
    }

    #[test]
    fn a_child_span_keeps_the_trace_id_and_gets_its_own_span_id() {
        install();
        let parent = remote_parent(Some(TP), Some("vendor=1"));
        let child = start("run", SpanKind::Internal, &parent, None, vec![]);
        let tc = TraceContext::of(&child).expect("a valid context");
        assert_eq!(TraceContext::trace_id(&tc.traceparent), Some("4bf92f3577b34da6a3ce929d0e0e4736"));
        assert!(!tc.traceparent.contains("00f067aa0ba902b7"), "a new parent id: {}", tc.traceparent);
        assert!(tc.traceparent.ends_with("-01"), "sampled as its parent: {}", tc.traceparent);
        assert_eq!(tc.tracestate, "vendor=1");
    }

    #[test]
    fn an_absent_or_invalid_traceparent_starts_a_new_trace() {
        install();
        for bad in [None, Some("garbage"), Some("00-00000000000000000000000000000000-00f067aa0ba902b7-01")] {
            let parent = remote_parent(bad, None);
            assert!(TraceContext::of(&parent).is_none(), "{bad:?} is no parent");
            let span = start("submit", SpanKind::Server, &parent, None, vec![]);
            let tc = TraceContext::of(&span).expect("a new trace");
            let id = TraceContext::trace_id(&tc.traceparent).expect("a trace id");
            assert_ne!(id, "4bf92f3577b34da6a3ce929d0e0e4736");
        }
    }

    #[test]
    fn export_follows_the_standard_variables() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert!(!otlp_wanted(vars(&[])), "off by default");
        assert!(otlp_wanted(vars(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318")])));
        assert!(otlp_wanted(vars(&[("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://c:4318/v1/traces")])));
        assert!(otlp_wanted(vars(&[("OTEL_TRACES_EXPORTER", "otlp")])));
        assert!(!otlp_wanted(vars(&[("OTEL_TRACES_EXPORTER", "none"), ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c")])));
    }
}
