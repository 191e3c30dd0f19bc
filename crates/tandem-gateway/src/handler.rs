//! Route handlers: one generic exchange handler for the three client APIs, plus models and probes.

use std::task::Poll;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::{Stream, StreamExt};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tandem_core::{Exchange, Hints, Pace, RouteInfo, int};
use tandem_protocol::ErrorKind;
use tandem_translate::{EncodeContext, StreamEncoder, openai_chat};
use tracing::field::Empty;
use tracing::{Instrument, Span};

use crate::AppState;
use crate::error::ApiError;
use crate::format::{Chat, ClientFormat, Messages, Responses};

/// Most upstream events encoded into one write when the upstream is faster than the client.
const BATCH_EVENTS: usize = 64;

pub(crate) async fn chat(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    exchange::<Chat>(state, headers, body).await
}

pub(crate) async fn responses(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    exchange::<Responses>(state, headers, body).await
}

pub(crate) async fn messages(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    exchange::<Messages>(state, headers, body).await
}

/// The whole life of one client exchange in one SERVER span named `{method} {route}` (the HTTP conventions; the name is
/// fixed when the span starts, before the model is known) with the OpenTelemetry GenAI attributes.
///
/// The span's parent comes from the request's `traceparent` when a [`crate::TraceContext`] is installed.
/// For streams the SSE body holds the span, so it ends when the answer does, not when this function returns.
async fn exchange<F: ClientFormat>(state: AppState, headers: HeaderMap, body: Body) -> Response {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let span = tracing::info_span!(
        "exchange",
        otel.name = route_of(F::API),
        otel.kind = "server",
        otel.status_code = Empty,
        api = F::API.as_str(),
        request_id = id.as_str(),
        "tandem.request_id" = id.as_str(),
        "gen_ai.operation.name" = "chat",
        "gen_ai.request.model" = Empty,
        "gen_ai.response.model" = Empty,
        "gen_ai.provider.name" = Empty,
        "gen_ai.usage.input_tokens" = Empty,
        "gen_ai.usage.output_tokens" = Empty,
        "gen_ai.response.finish_reasons" = Empty,
        "http.request.method" = "POST",
        "http.route" = route_of(F::API).trim_start_matches("POST "),
        "http.response.status_code" = Empty,
        "tandem.tier" = Empty,
        "tandem.route.reason" = Empty,
        "tandem.target" = Empty,
        "tandem.stream" = Empty,
        "error.type" = Empty,
    );
    if let Some(trace_context) = &state.trace_context {
        (trace_context.0)(&headers, &span);
    }
    let response = serve_exchange::<F>(state, headers, body, id, span.clone())
        .instrument(span.clone())
        .await;
    let status = response.status();
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "ERROR");
    }
    response
}

/// The `{method} {route}` of each client API.
fn route_of(api: tandem_core::Api) -> &'static str {
    match api {
        tandem_core::Api::Chat => "POST /v1/chat/completions",
        tandem_core::Api::Responses => "POST /v1/responses",
        tandem_core::Api::Messages => "POST /v1/messages",
    }
}

/// Record where the exchange went on its span.
fn record_route(span: &Span, state: &AppState, route: &RouteInfo) {
    span.record("tandem.tier", route.tier.as_deref().unwrap_or(""));
    span.record("tandem.route.reason", route.reason.as_str());
    span.record("tandem.target", route.target.as_str());
    if let Some((provider, _)) = route.target.split_once('/') {
        span.record(
            "gen_ai.provider.name",
            state.core.provider_api_name(provider),
        );
    }
}

/// Decode, run the pipeline, encode.
async fn serve_exchange<F: ClientFormat>(
    state: AppState,
    headers: HeaderMap,
    body: Body,
    id: String,
    span: Span,
) -> Response {
    let mut exchange = Exchange::start(id.clone(), F::API);
    exchange.client = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|v| v.chars().take(200).collect());
    let reject = |exchange: &Exchange, kind: ErrorKind, message: String| {
        span.record("error.type", tracing::field::debug(kind));
        state.core.record_rejected(exchange, "", kind, &message);
        ApiError::new::<F>(kind, message, &id).into_response()
    };
    let principal = match authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return reject(&exchange, err.kind(), err.to_string()),
    };
    exchange.principal = Some(principal.clone());
    let bytes = match read_body(body, &headers, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err((kind, message)) => return reject(&exchange, kind, message),
    };
    exchange.prompt_hash = state.core.content_hash(&bytes);
    if state.core.captures() {
        exchange.prompt_text = Some(String::from_utf8_lossy(&bytes).into_owned());
    }
    let mut req = match F::decode(&bytes) {
        Ok(req) => req,
        Err(err) => return reject(&exchange, err.kind(), err.to_string()),
    };
    span.record("gen_ai.request.model", req.model.as_str());
    span.record("tandem.stream", req.stream);
    if req.session.is_none() {
        req.session = session_header(&headers);
    }
    let mut hints = match hints(&headers) {
        Ok(hints) => hints,
        Err(message) => return reject(&exchange, ErrorKind::BadRequest, message),
    };
    hints.principal = Some(principal);
    let created = exchange.created();
    if req.stream {
        let encoder = F::encoder(&EncodeContext {
            request: &req,
            id: &id,
            created,
        });
        match state.core.stream(&exchange, &req, &hints).await {
            Ok((events, route)) => {
                record_route(&span, &state, &route);
                let mut response = sse_response(events, encoder, &id, span);
                set_route_headers(&mut response, &route);
                response
            }
            Err(err) => {
                span.record("error.type", tracing::field::debug(err.kind()));
                ApiError::new::<F>(err.kind(), err.to_string(), &id).into_response()
            }
        }
    } else {
        match state.core.complete(&exchange, &req, &hints).await {
            Ok((resp, route)) => {
                record_route(&span, &state, &route);
                span.record("gen_ai.response.model", resp.model.as_str());
                span.record("gen_ai.usage.input_tokens", int(resp.usage.input_tokens));
                span.record("gen_ai.usage.output_tokens", int(resp.usage.output_tokens));
                span.record(
                    "gen_ai.response.finish_reasons",
                    tandem_core::finish_reason(&resp.finish),
                );
                let ctx = EncodeContext {
                    request: &req,
                    id: &id,
                    created,
                };
                let mut response = axum::Json(F::encode_response(&resp, &ctx)).into_response();
                set_request_id(&mut response, &id);
                set_route_headers(&mut response, &route);
                response
            }
            Err(err) => {
                span.record("error.type", tracing::field::debug(err.kind()));
                ApiError::new::<F>(err.kind(), err.to_string(), &id).into_response()
            }
        }
    }
}

/// Read the body up to the limit; over the limit is 413 whether or not a Content-Length was sent.
pub(crate) async fn read_body(
    body: Body,
    headers: &HeaderMap,
    limit: usize,
) -> Result<Bytes, (ErrorKind, String)> {
    let too_large = |size: &str| {
        (
            ErrorKind::PayloadTooLarge,
            format!("request body is {size} bytes; the limit is {limit} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared
        && len > limit as u64
    {
        return Err(too_large(&len.to_string()));
    }
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            Err(too_large(&format!("more than {limit}")))
        }
        Err(err) => Err((
            ErrorKind::BadRequest,
            format!("could not read the request body: {err}"),
        )),
    }
}

/// The session key clients send as a header (Codex: `session-id`).
fn session_header(headers: &HeaderMap) -> Option<String> {
    ["session-id", "x-session-id", "x-tandem-session"]
        .iter()
        .find_map(|name| headers.get(*name))
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// Routing hints from headers: `x-tandem-pace: live|deep|auto|<tier>` and `x-tandem-signal: check-failed`.
fn hints(headers: &HeaderMap) -> Result<Hints, String> {
    let text = |name: &str| -> Result<Option<String>, String> {
        match headers.get(name) {
            None => Ok(None),
            Some(v) => v
                .to_str()
                .map(|s| Some(s.trim().to_ascii_lowercase()))
                .map_err(|_| format!("header `{name}` is not ASCII")),
        }
    };
    let pace = match text("x-tandem-pace")?.as_deref() {
        None | Some("") => None,
        Some("auto") => Some(Pace::Auto),
        Some(tier) => Some(Pace::Tier(tier.to_owned())),
    };
    let failure_signal = match text("x-tandem-signal")?.as_deref() {
        None | Some("") => false,
        Some("check-failed" | "tool-error" | "failed") => true,
        Some(other) => {
            return Err(format!(
                "header `x-tandem-signal` has unknown value `{other}`; use `check-failed`"
            ));
        }
    };
    Ok(Hints {
        pace,
        failure_signal,
        principal: None,
    })
}

/// The caller, from `Authorization: Bearer …` or Anthropic's `x-api-key`.
pub(crate) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<tandem_policy::Principal, tandem_auth::Error> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()));
    let principal = state
        .auth
        .authenticate(bearer, crate::governance::now_ms())
        .await?;
    Ok(tandem_policy::Principal {
        user: principal.user,
        groups: principal.groups,
        project: principal.project,
        key_id: principal.key_id,
    })
}

/// `x-tandem-tier`, `x-tandem-target` and `x-tandem-route-reason`.
fn set_route_headers(response: &mut Response, route: &RouteInfo) {
    let headers = response.headers_mut();
    let pairs = [
        ("x-tandem-tier", route.tier.as_deref().unwrap_or("")),
        ("x-tandem-target", route.target.as_str()),
        ("x-tandem-route-reason", route.reason.as_str()),
    ];
    for (name, value) in pairs {
        if value.is_empty() {
            continue;
        }
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    }
}

fn set_request_id(response: &mut Response, id: &str) {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", value);
    }
}

/// Stream the answer to the client as SSE, chunk by chunk, ending with the format's terminal events.
///
/// A failure mid-stream ends the body with the format's error event, never with its success marker.
/// If the client goes away, hyper drops this body, which drops the upstream stream and closes that connection.
/// The body holds the request span: it ends with the body, and the answer's model, usage and finish reason are
/// recorded on it as they pass.
fn sse_response<S>(events: S, encoder: Box<dyn StreamEncoder>, id: &str, span: Span) -> Response
where
    S: Stream<Item = Event> + Send + Unpin + 'static,
{
    let state = SseBody {
        events,
        encoder,
        span,
        first_output: FirstOutput::Awaited,
        ended: false,
    };
    let body = futures::stream::unfold(Some(state), |state| async move {
        let mut state = state?;
        let span = state.span.clone();
        async move {
            let (bytes, more) = state.frame().await;
            Some((
                Ok::<_, std::convert::Infallible>(bytes),
                more.then_some(state),
            ))
        }
        .instrument(span)
        .await
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    set_request_id(&mut response, id);
    response
}

/// One event of a streamed answer, or the failure that ends it.
type Event = tandem_providers::Result<tandem_protocol::StreamEvent>;

/// Where a streamed answer is with its first token.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FirstOutput {
    /// Not seen yet: the frame that carries it ends there.
    Awaited,
    /// In the last frame: yield once, so the server writes it out before encoding what is behind it.
    Sent,
    /// Written out.
    Flushed,
}

/// A streamed answer on its way out.
///
/// Each frame is every event that is ready (up to [`BATCH_EVENTS`]), encoded as one write, so a fast upstream
/// costs a write per burst rather than per token. The first token is the exception: an upstream that sends a
/// whole short answer in one burst would otherwise have it wait until the burst is encoded and the exchange
/// recorded, so its frame ends at the first token and the body yields once after it, which makes the server
/// write it out at once.
struct SseBody<S> {
    events: S,
    encoder: Box<dyn StreamEncoder>,
    span: Span,
    first_output: FirstOutput,
    /// The events have ended (they are not polled again).
    ended: bool,
}

impl<S: Stream<Item = Event> + Unpin> SseBody<S> {
    /// The next frame, and whether more follow.
    async fn frame(&mut self) -> (Bytes, bool) {
        if self.first_output == FirstOutput::Sent {
            self.first_output = FirstOutput::Flushed;
            tokio::task::yield_now().await;
        }
        let mut out = String::new();
        loop {
            let batch = self.ready().await;
            if batch.is_empty() {
                out.push_str(&self.encoder.finish());
                return (Bytes::from(out), false);
            }
            for item in batch {
                match item {
                    Ok(event) => {
                        tandem_core::record_event(&self.span, &event);
                        out.push_str(&self.encoder.encode(&event));
                        if self.first_output == FirstOutput::Awaited && event.is_output() {
                            self.first_output = FirstOutput::Sent;
                        }
                    }
                    Err(err) => {
                        tracing::warn!(error = %err, "upstream failed mid-stream");
                        self.span.record("otel.status_code", "ERROR");
                        self.span
                            .record("error.type", tracing::field::debug(err.kind()));
                        out.push_str(&self.encoder.fail(err.kind(), &err.to_string()));
                        return (Bytes::from(out), false);
                    }
                }
            }
            if !out.is_empty() {
                return (Bytes::from(out), true);
            }
        }
    }

    /// The events ready now, waiting for at least one; empty once the answer has ended. Before the first
    /// token, the batch ends with it.
    async fn ready(&mut self) -> Vec<Event> {
        let mut batch = Vec::new();
        if self.ended {
            return batch;
        }
        std::future::poll_fn(|cx| {
            loop {
                match self.events.poll_next_unpin(cx) {
                    Poll::Ready(Some(item)) => {
                        let first = self.first_output == FirstOutput::Awaited
                            && item.as_ref().is_ok_and(|e| e.is_output());
                        batch.push(item);
                        if first || batch.len() == BATCH_EVENTS {
                            return Poll::Ready(());
                        }
                    }
                    Poll::Ready(None) => {
                        self.ended = true;
                        return Poll::Ready(());
                    }
                    Poll::Pending if batch.is_empty() => return Poll::Pending,
                    Poll::Pending => return Poll::Ready(()),
                }
            }
        })
        .await;
        batch
    }
}

/// `GET /v1/models`, in Anthropic's shape when the client sends `anthropic-version`, else OpenAI's.
pub(crate) async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let names = state.core.model_names();
    if headers.contains_key("anthropic-version") {
        let data: Vec<_> = names
            .iter()
            .map(|n| json!({"type": "model", "id": n, "display_name": n, "created_at": "1970-01-01T00:00:00Z"}))
            .collect();
        return axum::Json(json!({
            "data": data,
            "has_more": false,
            "first_id": names.first(),
            "last_id": names.last(),
        }))
        .into_response();
    }
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let data: Vec<_> = names
        .iter()
        .map(|n| json!({"id": n, "object": "model", "created": created, "owned_by": "tandem"}))
        .collect();
    axum::Json(json!({"object": "list", "data": data})).into_response()
}

/// Liveness: the process answers.
pub(crate) async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// Readiness: the server is not shutting down and the embedded store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
    if state.draining.load(std::sync::atomic::Ordering::SeqCst) {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "unavailable", "reason": "shutting down"})),
        )
            .into_response();
    }
    match state.core.ready() {
        Ok(()) => axum::Json(json!({"status": "ready"})).into_response(),
        Err(err) => {
            tracing::warn!(error = %err, "not ready");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"status": "unavailable", "reason": err.to_string()})),
            )
                .into_response()
        }
    }
}

/// Anything else: a 404 in OpenAI's shape.
pub(crate) async fn not_found(uri: axum::http::Uri) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(openai_chat::error_body(
            ErrorKind::NotFound,
            &format!("no route for {}", uri.path()),
        )),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use std::pin::Pin;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    use axum::body::Body;
    use axum::body::HttpBody;
    use tandem_protocol::{ChatRequest, FinishReason, StreamEvent, Usage};
    use tandem_translate::{EncodeContext, openai_chat};
    use tracing::Span;

    use super::sse_response;

    /// Counts its wakes.
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// The frames of `body` as a poller outside any runtime sees them: `None` for a `Pending`.
    fn frames(mut body: Body) -> (Vec<Option<String>>, usize) {
        let wakes = Arc::new(Wakes(AtomicUsize::new(0)));
        let waker = Waker::from(Arc::clone(&wakes));
        let mut cx = Context::from_waker(&waker);
        let mut out = Vec::new();
        loop {
            match Pin::new(&mut body).poll_frame(&mut cx) {
                Poll::Ready(Some(Ok(frame))) => {
                    let data = frame.into_data().unwrap_or_default();
                    out.push(Some(String::from_utf8_lossy(&data).into_owned()));
                }
                Poll::Ready(Some(Err(err))) => panic!("body failed: {err}"),
                Poll::Ready(None) => break,
                Poll::Pending => out.push(None),
            }
            assert!(out.len() < 20, "the body does not end: {out:?}");
        }
        (out, wakes.0.load(Ordering::SeqCst))
    }

    /// The frames of `events` streamed as Chat Completions.
    fn chat_frames(
        events: impl futures::Stream<Item = super::Event> + Send + Unpin + 'static,
    ) -> (Vec<Option<String>>, usize) {
        let request = ChatRequest::new("m", Vec::new());
        let encoder = openai_chat::Encoder::new(&EncodeContext {
            request: &request,
            id: "x",
            created: 0,
        });
        let response = sse_response(events, Box::new(encoder), "x", Span::none());
        frames(response.into_body())
    }

    #[test]
    fn a_burst_answer_writes_its_first_token_alone_then_the_rest_in_one_frame() {
        let events = futures::stream::iter(
            [
                StreamEvent::Start {
                    id: "u".into(),
                    model: "m".into(),
                },
                StreamEvent::TextDelta("first".into()),
                StreamEvent::TextDelta("second".into()),
                StreamEvent::TextDelta("third".into()),
                StreamEvent::Finish(FinishReason::Stop),
                StreamEvent::Usage(Usage::default()),
            ]
            .map(Ok),
        );
        let (frames, wakes) = chat_frames(events);
        // The role chunk and the first token; a yield (the server writes them out); the rest at once; the end.
        assert_eq!(frames.len(), 4, "{frames:?}");
        let first = frames[0].as_deref().unwrap_or_default();
        assert!(first.contains("\"role\":\"assistant\"") && first.contains("first"));
        assert!(!first.contains("second"), "{first}");
        assert_eq!(frames[1], None);
        assert_eq!(wakes, 1, "the yield must wake the body's task");
        let rest = frames[2].as_deref().unwrap_or_default();
        assert!(rest.contains("second") && rest.contains("third") && rest.contains("\"stop\""));
        assert!(
            frames[3]
                .as_deref()
                .is_some_and(|f| f.ends_with("data: [DONE]\n\n"))
        );
    }

    #[test]
    fn a_stream_that_fails_before_its_first_token_ends_with_the_error_and_no_yield() {
        let events = futures::stream::iter([Err(tandem_providers::Error::Internal {
            message: "gone".into(),
        })]);
        let (frames, wakes) = chat_frames(events);
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert!(
            frames[0]
                .as_deref()
                .is_some_and(|f| f.contains("gone") && !f.contains("[DONE]"))
        );
        assert_eq!(wakes, 0);
    }
}
