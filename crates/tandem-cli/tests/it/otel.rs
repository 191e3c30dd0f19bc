//! `tandem serve` exporting OpenTelemetry spans over OTLP/HTTP to a real receiver started here: an axum server that
//! decodes `ExportTraceServiceRequest` protobufs. Checks the request span (GenAI attributes, token counts, status), its
//! children (route, policy, DLP, one upstream CLIENT span) with their parent ids, `traceparent` continuation, that a
//! stream's span lasts as long as the stream, JSON logs with span fields, and the flush at shutdown.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{Value, json};

use crate::support::{PATIENCE, Serve, upstream};

/// Upstream model of the `live` tier: three tokens at 30 per second, so a stream lasts about 100 ms.
const MODEL: &str = "scripted?tokens=3&rate=30";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_ID: &str = "00f067aa0ba902b7";

/// One received span, flattened.
#[derive(Clone, Debug)]
struct Got {
    name: String,
    kind: i32,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    start_ns: u64,
    end_ns: u64,
    status_code: i32,
    attributes: HashMap<String, Value>,
    service: String,
}

impl Got {
    fn attr(&self, key: &str) -> &Value {
        self.attributes.get(key).unwrap_or(&Value::Null)
    }
}

/// The OTLP/HTTP receiver: every span of every export, and the content types it was sent with.
#[derive(Clone, Default)]
struct Receiver {
    spans: Arc<Mutex<Vec<Got>>>,
    content_types: Arc<Mutex<Vec<String>>>,
}

impl Receiver {
    async fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let app = axum::Router::new()
            .route("/v1/traces", axum::routing::post(export))
            .with_state(receiver.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (receiver, url)
    }

    fn spans(&self) -> Vec<Got> {
        self.spans.lock().unwrap().clone()
    }

    /// Wait until `ready` holds on the spans received so far.
    async fn wait_for(&self, what: &str, ready: impl Fn(&[Got]) -> bool) -> Vec<Got> {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let spans = self.spans();
            if ready(&spans) {
                return spans;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; got {spans:#?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn export(
    State(receiver): State<Receiver>,
    headers: HeaderMap,
    body: Bytes,
) -> (StatusCode, [(&'static str, &'static str); 1], Vec<u8>) {
    let content_type = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    receiver.content_types.lock().unwrap().push(content_type);
    let request = ExportTraceServiceRequest::decode(body).unwrap();
    let mut spans = receiver.spans.lock().unwrap();
    for resource_spans in request.resource_spans {
        let service = resource_spans
            .resource
            .iter()
            .flat_map(|r| &r.attributes)
            .find(|kv| kv.key == "service.name")
            .map(|kv| json_of(kv.value.as_ref().and_then(|v| v.value.as_ref())))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        for scope in resource_spans.scope_spans {
            for span in scope.spans {
                spans.push(Got {
                    name: span.name,
                    kind: span.kind,
                    trace_id: hex(&span.trace_id),
                    span_id: hex(&span.span_id),
                    parent_span_id: hex(&span.parent_span_id),
                    start_ns: span.start_time_unix_nano,
                    end_ns: span.end_time_unix_nano,
                    status_code: span.status.map_or(0, |s| s.code),
                    attributes: span
                        .attributes
                        .into_iter()
                        .map(|kv| (kv.key, json_of(kv.value.and_then(|v| v.value).as_ref())))
                        .collect(),
                    service: service.clone(),
                });
            }
        }
    }
    let answer = ExportTraceServiceResponse::default().encode_to_vec();
    (
        StatusCode::OK,
        [("content-type", "application/x-protobuf")],
        answer,
    )
}

fn json_of(value: Option<&AnyValue>) -> Value {
    match value {
        Some(AnyValue::StringValue(s)) => json!(s),
        Some(AnyValue::IntValue(i)) => json!(i),
        Some(AnyValue::BoolValue(b)) => json!(b),
        Some(AnyValue::DoubleValue(d)) => json!(d),
        other => json!(format!("{other:?}")),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `tandem serve` with the `live` tier on `upstream`, exporting to `otlp`, logging JSON.
async fn start(upstream: &str, otlp: &str, env: &[(&str, &str)]) -> Serve {
    Serve::start(
        &format!(
            r#"
[[providers]]
name = "tk"
kind = "openai"
base_url = "http://{upstream}/v1"
[tiers.live]
[[tiers.live.targets]]
provider = "tk"
model = "{MODEL}"
[telemetry]
otlp_endpoint = "{otlp}"
service_name = "tandem-e2e"
log_format = "json"
"#
        ),
        env,
    )
    .await
}

/// POST a chat request; the request id and the body.
async fn chat(serve: &Serve, body: Value, headers: &[(&str, &str)]) -> (String, String) {
    let mut request = reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", serve.base))
        .json(&body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let resp = request.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_owned();
    (id, resp.text().await.unwrap())
}

fn request_span<'a>(spans: &'a [Got], id: &str) -> Option<&'a Got> {
    spans
        .iter()
        .find(|s| s.attr("tandem.request_id") == &json!(id))
}

/// The request span of `id` and its children, once the upstream span has arrived too.
fn exchange_spans(spans: &[Got], id: &str) -> Option<(Got, Vec<Got>)> {
    let root = request_span(spans, id)?;
    let children: Vec<Got> = spans
        .iter()
        .filter(|s| s.parent_span_id == root.span_id)
        .cloned()
        .collect();
    children
        .iter()
        .any(|s| s.kind == SpanKind::Client as i32)
        .then(|| (root.clone(), children))
}

fn names(children: &[Got]) -> Vec<&str> {
    let mut names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    names.sort_unstable();
    names
}

/// The request span and its children of one successful exchange on the `live` tier.
fn check_exchange(root: &Got, children: &[Got], stream: bool) {
    assert_eq!(root.name, "POST /v1/chat/completions");
    assert_eq!(root.kind, SpanKind::Server as i32);
    assert_eq!(root.service, "tandem-e2e");
    for (key, value) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.request.model", json!("tandem-live")),
        ("gen_ai.response.model", json!(MODEL)),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.usage.output_tokens", json!(3)),
        ("gen_ai.usage.input_tokens", json!(1)),
        ("gen_ai.response.finish_reasons", json!("stop")),
        ("http.response.status_code", json!(200)),
        ("tandem.tier", json!("live")),
        ("tandem.route.reason", json!("alias")),
        ("tandem.target", json!(format!("tk/{MODEL}"))),
        ("tandem.stream", json!(stream)),
    ] {
        assert_eq!(root.attr(key), &value, "{key} of {root:#?}");
    }
    assert_eq!(
        names(children),
        [
            format!("chat {MODEL}").as_str(),
            "tandem.dlp",
            "tandem.policy",
            "tandem.route",
        ]
    );
    for child in children {
        assert_eq!(child.trace_id, root.trace_id, "{child:#?}");
        assert!(
            child.start_ns >= root.start_ns && child.end_ns <= root.end_ns,
            "{child:#?}"
        );
    }
    let route = children.iter().find(|s| s.name == "tandem.route").unwrap();
    assert_eq!(route.attr("tandem.tier"), &json!("live"));
    let upstream = children
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    for (key, value) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!(MODEL)),
        ("gen_ai.response.model", json!(MODEL)),
        ("gen_ai.usage.input_tokens", json!(1)),
        ("gen_ai.usage.output_tokens", json!(3)),
        ("server.address", json!("127.0.0.1")),
        ("tandem.provider", json!("tk")),
    ] {
        assert_eq!(upstream.attr(key), &value, "{key} of {upstream:#?}");
    }
}

#[tokio::test]
async fn spans_reach_an_otlp_receiver_with_gen_ai_attributes_and_parents() {
    let (receiver, otlp) = Receiver::start().await;
    let upstream = upstream().await;
    let mut serve = start(
        &upstream.addr().to_string(),
        &otlp,
        &[("OTEL_BSP_SCHEDULE_DELAY", "100")],
    )
    .await;
    let ask = json!({"model": "tandem-live", "messages": [{"role": "user", "content": "hi"}]});

    // Not streamed, continuing the caller's trace.
    let traceparent = format!("00-{TRACE_ID}-{PARENT_ID}-01");
    let (plain_id, _) = chat(&serve, ask.clone(), &[("traceparent", &traceparent)]).await;
    // Streamed, a trace of its own.
    let mut streamed = ask.clone();
    streamed["stream"] = json!(true);
    let (stream_id, text) = chat(&serve, streamed, &[]).await;
    assert!(text.contains("[DONE]"), "{text}");
    // A stream that breaks after its first token: the warning is logged inside the request span.
    let breaking = json!({
        "model": "tk/scripted?tokens=3&reset_after=1",
        "stream": true,
        "messages": [{"role": "user", "content": "hi"}],
    });
    let (broken_id, text) = chat(&serve, breaking, &[]).await;
    assert!(text.contains("error"), "{text}");

    // Spans arrive while the server runs (scheduled export), not only at shutdown.
    let spans = receiver
        .wait_for("all three exchanges", |spans| {
            exchange_spans(spans, &plain_id).is_some()
                && exchange_spans(spans, &stream_id).is_some()
                && exchange_spans(spans, &broken_id).is_some()
        })
        .await;
    assert!(
        receiver
            .content_types
            .lock()
            .unwrap()
            .iter()
            .all(|c| c == "application/x-protobuf")
    );

    let (plain, children) = exchange_spans(&spans, &plain_id).unwrap();
    check_exchange(&plain, &children, false);
    assert_eq!(
        plain.trace_id, TRACE_ID,
        "the incoming traceparent is continued"
    );
    assert_eq!(plain.parent_span_id, PARENT_ID);

    let (stream, children) = exchange_spans(&spans, &stream_id).unwrap();
    check_exchange(&stream, &children, true);
    assert_ne!(stream.trace_id, TRACE_ID);
    assert_eq!(
        stream.parent_span_id, "",
        "a request without traceparent starts a trace"
    );
    // The handler returns at the first token; the span ends with the stream (3 tokens at 30/s).
    assert!(
        stream.end_ns - stream.start_ns >= 60_000_000,
        "the request span lasted {} ns",
        stream.end_ns - stream.start_ns
    );

    let (broken, children) = exchange_spans(&spans, &broken_id).unwrap();
    assert_eq!(broken.status_code, 2, "status ERROR: {broken:#?}");
    assert_eq!(
        broken.attr("gen_ai.request.model"),
        &json!("tk/scripted?tokens=3&reset_after=1")
    );
    let upstream_span = children
        .iter()
        .find(|s| s.kind == SpanKind::Client as i32)
        .unwrap();
    assert_eq!(upstream_span.status_code, 2);
    assert_eq!(upstream_span.attr("error.type"), &json!("reset"));

    // JSON logs carry the fields of the spans they were written in.
    let logs = serve.logs.lock().unwrap().clone();
    let warning = logs
        .iter()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "upstream failed mid-stream")
        .unwrap_or_else(|| panic!("no mid-stream warning in {logs:#?}"));
    assert_eq!(warning["level"], "WARN");
    assert_eq!(warning["span"]["tandem.request_id"], json!(broken_id));
    assert_eq!(warning["spans"][0]["name"], "exchange");

    serve.stop().await;
}

#[tokio::test]
async fn queued_spans_are_exported_at_shutdown() {
    let (receiver, otlp) = Receiver::start().await;
    let upstream = upstream().await;
    // Far beyond the test's patience: only the flush at shutdown can deliver the spans.
    let mut serve = start(
        &upstream.addr().to_string(),
        &otlp,
        &[("OTEL_BSP_SCHEDULE_DELAY", "600000")],
    )
    .await;
    let ask = json!({"model": "tandem-live", "messages": [{"role": "user", "content": "hi"}]});
    let (id, _) = chat(&serve, ask, &[]).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        request_span(&receiver.spans(), &id).is_none(),
        "exported before shutdown"
    );
    serve.stop().await;
    let spans = receiver.spans();
    let (root, children) = exchange_spans(&spans, &id).unwrap_or_else(|| panic!("{spans:#?}"));
    check_exchange(&root, &children, false);
}
