//! OpenTelemetry traces, behind the cargo feature `otel` (off by default: `cargo build
//! --release --features otel`). With `serve --otlp-endpoint URL` the spans lotline's tracing
//! makes (one per gRPC call, named after its method, with the handler's span inside) go to an
//! OpenTelemetry collector over OTLP/HTTP (protobuf), as service `lotline`, batched on a
//! thread of their own. A call that carries a W3C `traceparent` header continues the caller's
//! trace. Without the feature, `--otlp-endpoint` is refused with how to get it.

/// The OTLP/HTTP traces URL of a collector: `/v1/traces` under the base URL given, unless the
/// URL names that path already.
pub fn traces_url(endpoint: &str) -> String {
    let endpoint = endpoint.trim();
    if endpoint.ends_with("/v1/traces") {
        endpoint.to_string()
    } else {
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    }
}

#[cfg(feature = "otel")]
mod enabled {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig as _;
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tracing_subscriber::Layer;
    use tracing_subscriber::registry::LookupSpan;

    /// The exporter's provider: [`Telemetry::shutdown`] sends what is still batched.
    pub struct Telemetry {
        provider: SdkTracerProvider,
    }

    impl Telemetry {
        /// Starts exporting to the collector at `endpoint`, and the layer that feeds it.
        pub fn start<S>(
            endpoint: &str,
        ) -> Result<(Telemetry, Box<dyn Layer<S> + Send + Sync>), String>
        where
            S: tracing::Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
        {
            let url = super::traces_url(endpoint);
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_endpoint(url.clone())
                .build()
                .map_err(|e| format!("--otlp-endpoint {url}: {e}"))?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(
                    Resource::builder()
                        .with_service_name("lotline")
                        .with_attribute(opentelemetry::KeyValue::new(
                            "service.version",
                            env!("CARGO_PKG_VERSION"),
                        ))
                        .build(),
                )
                .build();
            opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
            let tracer = provider.tracer("lotline");
            let layer = tracing_opentelemetry::layer().with_tracer(tracer).boxed();
            Ok((Telemetry { provider }, layer))
        }

        /// Sends what is batched and stops.
        pub fn shutdown(self) {
            if let Err(e) = self.provider.shutdown() {
                eprintln!("lotline: OpenTelemetry: {e}");
            }
        }
    }

    /// Makes `span` a child of the trace a request's `traceparent` header names, if any.
    pub fn continue_trace(span: &tracing::Span, headers: &axum::http::HeaderMap) {
        use tracing_opentelemetry::OpenTelemetrySpanExt as _;
        struct Headers<'h>(&'h axum::http::HeaderMap);
        impl opentelemetry::propagation::Extractor for Headers<'_> {
            fn get(&self, key: &str) -> Option<&str> {
                self.0.get(key).and_then(|v| v.to_str().ok())
            }
            fn keys(&self) -> Vec<&str> {
                self.0.keys().map(|k| k.as_str()).collect()
            }
        }
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&Headers(headers))
        });
        let _ = span.set_parent(parent);
    }
}

#[cfg(feature = "otel")]
pub use enabled::{Telemetry, continue_trace};

/// Without the feature: nothing to start, nothing to continue.
#[cfg(not(feature = "otel"))]
pub struct Telemetry;

#[cfg(not(feature = "otel"))]
impl Telemetry {
    pub fn start<S>(
        _endpoint: &str,
    ) -> Result<
        (
            Telemetry,
            Box<dyn tracing_subscriber::Layer<S> + Send + Sync>,
        ),
        String,
    >
    where
        S: tracing::Subscriber,
    {
        Err(
            "--otlp-endpoint: this lotline was built without OpenTelemetry; build it with \
             `cargo build --release -p lotline-server --features otel`"
                .into(),
        )
    }

    pub fn shutdown(self) {}
}

#[cfg(not(feature = "otel"))]
pub fn continue_trace(_span: &tracing::Span, _headers: &axum::http::HeaderMap) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_path_is_added_once() {
        assert_eq!(traces_url("http://c:4318"), "http://c:4318/v1/traces");
        assert_eq!(traces_url("http://c:4318/"), "http://c:4318/v1/traces");
        assert_eq!(
            traces_url("http://c:4318/v1/traces"),
            "http://c:4318/v1/traces"
        );
    }
}
