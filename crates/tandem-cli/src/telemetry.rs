//! The binary's tracing subscriber: logs to stderr (text or JSON) and, when an OTLP endpoint is configured, spans to an
//! OpenTelemetry collector over OTLP/HTTP (protobuf), sent through the workspace's reqwest (rustls).
//!
//! Only this module knows OpenTelemetry: the libraries create `tracing` spans with `gen_ai.*` and `otel.*` fields, and
//! `tracing-opentelemetry` turns them into OTel spans. Incoming W3C `traceparent` headers become the request span's
//! parent through the gateway's [`tandem_gateway::TraceContext`] hook.

use std::time::Duration;

use anyhow::Context as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tandem_config::{LogFormat, TelemetrySettings};
use tracing::Level;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Longest wait for one export to the collector.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// The installed telemetry; [`Telemetry::shutdown`] sends the spans still queued.
pub(crate) struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Telemetry {
    /// The hook that makes an incoming `traceparent` the parent of the request span; `None` without tracing.
    pub(crate) fn trace_context(&self) -> Option<tandem_gateway::TraceContext> {
        self.provider.as_ref()?;
        Some(tandem_gateway::TraceContext::new(|headers, span| {
            let parent = TraceContextPropagator::new()
                .extract(&opentelemetry_http::HeaderExtractor(headers));
            if let Err(err) = span.set_parent(parent) {
                tracing::debug!(error = %err, "cannot continue the incoming trace");
            }
        }))
    }

    /// Export the spans still queued and stop the exporter. Call outside the async runtime's worker threads, while
    /// the runtime still runs (the exporter sends on it).
    pub(crate) fn shutdown(self) {
        if let Some(provider) = self.provider
            && let Err(err) = provider.shutdown()
        {
            tracing::warn!(error = %err, "could not export the last spans");
        }
    }
}

/// Install the global subscriber: `RUST_LOG` (default `info`) filters the log lines; spans of the Tandem crates at
/// INFO go to the collector when `settings` name an endpoint. `runtime` carries the exporter's HTTP requests.
pub(crate) fn init(
    settings: Option<&TelemetrySettings>,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = settings.map_or(LogFormat::Text, |s| s.log_format);
    let logs = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(true)
            .with_writer(std::io::stderr)
            .boxed(),
    };
    let provider = match settings {
        Some(s) => match &s.otlp_endpoint {
            Some(endpoint) => Some(tracer_provider(s, endpoint, runtime)?),
            None => None,
        },
        None => None,
    };
    let spans = provider.as_ref().map(|provider| {
        tracing_opentelemetry::layer()
            .with_tracer(provider.tracer("tandem"))
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(
                Targets::new()
                    .with_target("tandem_gateway", Level::INFO)
                    .with_target("tandem_core", Level::INFO),
            )
    });
    tracing_subscriber::registry()
        .with(logs.with_filter(filter))
        .with(spans)
        .try_init()
        .context("installing the tracing subscriber")?;
    Ok(Telemetry { provider })
}

fn tracer_provider(
    settings: &TelemetrySettings,
    endpoint: &str,
    runtime: &tokio::runtime::Handle,
) -> anyhow::Result<SdkTracerProvider> {
    let client = reqwest::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(OtlpClient {
            client,
            runtime: runtime.clone(),
        })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{endpoint}/v1/traces"))
        .with_timeout(EXPORT_TIMEOUT)
        .build()
        .context("building the OTLP span exporter")?;
    // The batch processor reads OTEL_BSP_SCHEDULE_DELAY, OTEL_BSP_MAX_QUEUE_SIZE and friends.
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            settings.sample_ratio,
        ))))
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .build(),
        )
        .build())
}

/// The exporter's HTTP client: the workspace's reqwest, run on the binary's tokio runtime (the batch processor
/// exports from a thread of its own, outside the runtime).
#[derive(Debug)]
struct OtlpClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for OtlpClient {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let request = reqwest::Request::try_from(request.map(reqwest::Body::from))?;
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let response = client.execute(request).await?;
            let status = response.status();
            let body = response.bytes().await?;
            Ok::<_, reqwest::Error>((status, body))
        });
        let (status, body) = sent.await??;
        let mut response = http::Response::new(body);
        *response.status_mut() = status;
        Ok(response)
    }
}
