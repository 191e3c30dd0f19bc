//! The HTTP side: accept loop, routing, request capture, counters and the non-streaming answers.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};

use crate::anthropic::{self, EventWire};
use crate::openai::{self, ChunkWire};
use crate::options::{self, FaultKind};
use crate::script::{self, Conversation};
use crate::stream::{self, Body, Pacing};
use crate::{Config, Error, Result, Stats};

/// How many requests are kept for inspection.
const CAPTURE_LIMIT: usize = 256;

/// Handle of a running server; dropping it stops the server too.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    state: Arc<State>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

/// Binds `config.listen` and serves in a background task; returns once the socket is bound.
pub async fn spawn(config: Config) -> Result<Server> {
    let (listener, addr) = bind(config.listen).await?;
    let state = Arc::new(State::new(config));
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(listener, Arc::clone(&state), async move {
        // Both a send and a dropped sender mean stop.
        let _ = stopped.await;
    }));
    Ok(Server {
        addr,
        state,
        stop,
        task,
    })
}

impl Server {
    /// The bound address, with the real port when port 0 was asked for.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> Stats {
        self.state.stats()
    }

    /// The captured request bodies, most recent last, at most the last 256.
    /// Bodies that are not JSON are captured as a JSON string.
    pub fn requests(&self) -> Vec<Value> {
        self.state
            .captured()
            .iter()
            .map(|captured| captured.body.clone())
            .collect()
    }

    /// Stops accepting, drops every open connection and waits for the server task.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "testkit server task failed");
        }
    }
}

pub(crate) async fn run(config: Config, shutdown: impl Future<Output = ()>) -> Result<()> {
    let (listener, addr) = bind(config.listen).await?;
    tracing::info!(%addr, "testkit upstream listening");
    serve(listener, Arc::new(State::new(config)), shutdown).await;
    Ok(())
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr)> {
    let bind_error = |source| Error::Bind { addr, source };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

async fn serve(listener: TcpListener, state: Arc<State>, shutdown: impl Future<Output = ()>) {
    let mut shutdown = pin!(shutdown);
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, Arc::clone(&state)));
                }
                Err(error) => {
                    tracing::warn!(%error, "testkit accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(stream: TcpStream, state: Arc<State>) {
    if let Err(error) = stream.set_nodelay(true) {
        tracing::debug!(%error, "testkit could not set TCP_NODELAY");
    }
    let service = service_fn(move |request| handle(Arc::clone(&state), request));
    let connection = http1::Builder::new()
        .timer(TokioTimer::new())
        .serve_connection(TokioIo::new(stream), service);
    if let Err(error) = connection.await {
        tracing::debug!(%error, "testkit connection ended with an error");
    }
}

/// Shared state of one server.
#[derive(Debug)]
pub(crate) struct State {
    config: Config,
    pub(crate) stats: Counters,
    next_id: AtomicU64,
    next_call: AtomicU64,
    captured: Mutex<VecDeque<Captured>>,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) requests: AtomicU64,
    pub(crate) streams_started: AtomicU64,
    pub(crate) streams_completed: AtomicU64,
    pub(crate) streams_cancelled: AtomicU64,
    pub(crate) tokens_sent: AtomicU64,
}

/// One captured request, as served by `GET /testkit/requests`.
#[derive(Clone, Debug, serde::Serialize)]
struct Captured {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Value,
}

impl State {
    fn new(config: Config) -> Self {
        Self {
            config,
            stats: Counters::default(),
            next_id: AtomicU64::new(1),
            next_call: AtomicU64::new(1),
            captured: Mutex::new(VecDeque::with_capacity(CAPTURE_LIMIT)),
        }
    }

    fn stats(&self) -> Stats {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Stats {
            requests: load(&self.stats.requests),
            streams_started: load(&self.stats.streams_started),
            streams_completed: load(&self.stats.streams_completed),
            streams_cancelled: load(&self.stats.streams_cancelled),
            tokens_sent: load(&self.stats.tokens_sent),
        }
    }

    fn captured(&self) -> Vec<Captured> {
        let captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        captured.iter().cloned().collect()
    }

    fn capture(&self, parts: &http::request::Parts, body: Value) {
        let headers = parts
            .headers
            .iter()
            .map(|(name, value)| {
                (
                    name.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let record = Captured {
            method: parts.method.to_string(),
            path: parts.uri.path().to_owned(),
            headers,
            body,
        };
        let mut captured = self.captured.lock().unwrap_or_else(PoisonError::into_inner);
        if captured.len() == CAPTURE_LIMIT {
            captured.pop_front();
        }
        captured.push_back(record);
    }
}

/// The request facts that both APIs share, read by `openai::exchange` or `anthropic::exchange`.
#[derive(Debug)]
pub(crate) struct Exchange {
    pub(crate) model: String,
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) max_tokens: Option<u64>,
    pub(crate) conversation: Conversation,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Api {
    OpenAi,
    Anthropic,
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Body>> {
    let path = request.uri().path();
    match (request.method(), path) {
        (&Method::GET, "/healthz") => Ok(response(
            StatusCode::OK,
            "text/plain",
            Bytes::from_static(b"ok\n"),
        )),
        (&Method::GET, "/v1/models") => Ok(json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": [
                {"id": "testkit", "object": "model", "created": 0, "owned_by": "tandem-testkit"},
            ]}),
        )),
        (&Method::GET, "/testkit/stats") => {
            Ok(json_response(StatusCode::OK, &json!(state.stats())))
        }
        (&Method::GET, "/testkit/requests") => {
            Ok(json_response(StatusCode::OK, &json!(state.captured())))
        }
        (&Method::POST, "/v1/chat/completions") => completion(state, Api::OpenAi, request).await,
        (&Method::POST, "/v1/messages") => completion(state, Api::Anthropic, request).await,
        (
            method,
            "/healthz"
            | "/v1/models"
            | "/testkit/stats"
            | "/testkit/requests"
            | "/v1/chat/completions"
            | "/v1/messages",
        ) => {
            let message = format!("method {method} is not allowed on {path}");
            Ok(error_response(Api::OpenAi, 405, &message))
        }
        (method, _) => {
            let message = format!("no route for {method} {path}");
            Ok(error_response(Api::OpenAi, 404, &message))
        }
    }
}

async fn completion(
    state: Arc<State>,
    api: Api,
    request: Request<Incoming>,
) -> Result<Response<Body>> {
    state.stats.requests.fetch_add(1, Ordering::Relaxed);
    let (parts, body) = request.into_parts();
    let bytes = body.collect().await.map_err(Error::ReadBody)?.to_bytes();
    let parsed = serde_json::from_slice::<Value>(&bytes);
    let captured = match &parsed {
        Ok(body) => body.clone(),
        Err(_) => Value::String(String::from_utf8_lossy(&bytes).into_owned()),
    };
    state.capture(&parts, captured);
    let body = match parsed {
        Ok(body) => body,
        Err(error) => {
            return Ok(error_response(
                api,
                400,
                &format!("invalid JSON body: {error}"),
            ));
        }
    };
    let exchange = match api {
        Api::OpenAi => openai::exchange(&body),
        Api::Anthropic => anthropic::exchange(&body),
    };
    let exchange = match exchange {
        Ok(exchange) => exchange,
        Err(message) => return Ok(error_response(api, 400, &message)),
    };
    let options = match options::parse(&exchange.model) {
        Ok(options) => options,
        Err(message) => return Ok(error_response(api, 400, &message)),
    };
    if !options.delay.is_zero() {
        tokio::time::sleep(options.delay).await;
    }
    if let Some(status) = options.status {
        return Ok(error_response(
            api,
            status,
            &format!("testkit scripted status {status}"),
        ));
    }
    let answer = script::answer(
        &options,
        &exchange.conversation,
        exchange.max_tokens,
        state.config.default_tokens,
        &state.next_call,
    );
    let id = state.next_id.fetch_add(1, Ordering::Relaxed);
    let created = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    let rate = options.rate.unwrap_or(state.config.tokens_per_sec);
    let rate = (rate > 0.0 && rate.is_finite()).then_some(rate);
    let model = exchange.model.as_str();

    if exchange.stream {
        let pacing = Pacing {
            rate,
            first_token: options.first_token,
            fault: options.fault,
        };
        let body = match api {
            Api::OpenAi => {
                let wire = ChunkWire::new(id, created, model, exchange.include_usage);
                stream::body(state, wire, answer, pacing)
            }
            Api::Anthropic => stream::body(state, EventWire::new(id, model), answer, pacing),
        };
        let mut response = Response::new(body);
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return Ok(response);
    }

    let json = match api {
        Api::OpenAi => openai::completion(id, created, model, &answer),
        Api::Anthropic => match anthropic::message(id, model, &answer) {
            Ok(json) => json,
            Err(message) => return Ok(error_response(api, 400, &message)),
        },
    };
    let mut wait = options.first_token;
    if let Some(rate) = rate {
        wait += Duration::from_secs_f64(answer.completion_tokens() as f64 / rate);
    }
    if !wait.is_zero() {
        tokio::time::sleep(wait).await;
    }
    match options.fault.map(|fault| (fault.kind, fault.after)) {
        None => Ok(json_response(StatusCode::OK, &json)),
        Some((FaultKind::Reset, after)) => Err(Error::ScriptedReset { after }),
        Some((FaultKind::Stall, _)) => futures::future::pending().await,
        Some((FaultKind::Malformed, _)) => Ok(response(
            StatusCode::OK,
            "application/json",
            Bytes::from_static(b"{not json"),
        )),
        Some((FaultKind::Truncate, _)) => {
            let mut text = json.to_string();
            text.truncate(text.len() / 2);
            Ok(response(
                StatusCode::OK,
                "application/json",
                Bytes::from(text),
            ))
        }
    }
}

fn response(status: StatusCode, content_type: &'static str, body: Bytes) -> Response<Body> {
    let mut response = Response::new(
        Full::new(body)
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn json_response(status: StatusCode, body: &Value) -> Response<Body> {
    response(status, "application/json", Bytes::from(body.to_string()))
}

/// Every error answer goes through here, in the error shape of `api`.
fn error_response(api: Api, status: u16, message: &str) -> Response<Body> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, code) = match status.as_u16() {
        401 => ("authentication_error", "invalid_api_key"),
        403 => ("permission_error", "permission_denied"),
        404 => ("not_found_error", "not_found"),
        405 => ("invalid_request_error", "method_not_allowed"),
        413 => ("request_too_large", "request_too_large"),
        429 => ("rate_limit_error", "rate_limit_exceeded"),
        503 | 529 => ("overloaded_error", "overloaded"),
        500..=599 => ("api_error", "server_error"),
        _ => ("invalid_request_error", "invalid_request"),
    };
    let body = match api {
        Api::OpenAi => openai::error(kind, code, message),
        Api::Anthropic => anthropic::error(kind, message),
    };
    json_response(status, &body)
}
