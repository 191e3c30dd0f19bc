//! Route handlers: one generic exchange handler for the three client APIs, plus models and probes.

use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use http_body_util::{BodyExt, LengthLimitError, Limited};
use serde_json::json;
use tandem_core::{Exchange, Hints, MeteredStream, Pace, RouteInfo};
use tandem_protocol::ErrorKind;
use tandem_translate::{EncodeContext, StreamEncoder, openai_chat};

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

/// Decode, run the pipeline, encode: the whole life of one client exchange.
#[tracing::instrument(skip_all, fields(api = F::API.as_str(), request_id))]
async fn exchange<F: ClientFormat>(state: AppState, headers: HeaderMap, body: Body) -> Response {
    let id = uuid::Uuid::now_v7().simple().to_string();
    tracing::Span::current().record("request_id", id.as_str());
    let exchange = Exchange::start(id.clone(), F::API);
    let reject = |kind: ErrorKind, message: String| {
        state.core.record_rejected(&exchange, "", kind, &message);
        ApiError::new::<F>(kind, message, &id).into_response()
    };
    let principal = match authenticate(&state, &headers).await {
        Ok(principal) => principal,
        Err(err) => return reject(err.kind(), err.to_string()),
    };
    let bytes = match read_body(body, &headers, state.max_body_bytes).await {
        Ok(bytes) => bytes,
        Err((kind, message)) => return reject(kind, message),
    };
    let mut req = match F::decode(&bytes) {
        Ok(req) => req,
        Err(err) => return reject(err.kind(), err.to_string()),
    };
    if req.session.is_none() {
        req.session = session_header(&headers);
    }
    let mut hints = match hints(&headers) {
        Ok(hints) => hints,
        Err(message) => return reject(ErrorKind::BadRequest, message),
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
                let mut response = sse_response(events, encoder, &id);
                set_route_headers(&mut response, &route);
                response
            }
            Err(err) => ApiError::new::<F>(err.kind(), err.to_string(), &id).into_response(),
        }
    } else {
        match state.core.complete(&exchange, &req, &hints).await {
            Ok((resp, route)) => {
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
            Err(err) => ApiError::new::<F>(err.kind(), err.to_string(), &id).into_response(),
        }
    }
}

/// Read the body up to the limit; over the limit is 413 whether or not a Content-Length was sent.
async fn read_body(
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
async fn authenticate(
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
fn sse_response(events: MeteredStream, encoder: Box<dyn StreamEncoder>, id: &str) -> Response {
    let batches = events.ready_chunks(BATCH_EVENTS);
    let body = futures::stream::unfold(Some((batches, encoder)), |state| async move {
        let (mut batches, mut encoder) = state?;
        loop {
            let Some(batch) = batches.next().await else {
                let tail = encoder.finish();
                return Some((Ok::<_, std::convert::Infallible>(Bytes::from(tail)), None));
            };
            let mut out = String::new();
            for item in batch {
                match item {
                    Ok(event) => out.push_str(&encoder.encode(&event)),
                    Err(err) => {
                        tracing::warn!(error = %err, "upstream failed mid-stream");
                        out.push_str(&encoder.fail(err.kind(), &err.to_string()));
                        return Some((Ok(Bytes::from(out)), None));
                    }
                }
            }
            if !out.is_empty() {
                return Some((Ok(Bytes::from(out)), Some((batches, encoder))));
            }
        }
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

/// Readiness: the embedded store answers.
pub(crate) async fn readyz(State(state): State<AppState>) -> Response {
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
