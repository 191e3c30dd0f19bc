//! [`LocalProvider`]: a GGUF model served in-process behind the same [`Provider`] trait as HTTP upstreams.
//!
//! One worker thread owns the model and its context (llama.cpp contexts are not shared between threads) and
//! answers queued requests one at a time; a multi-core machine is used by llama.cpp's own threads. The
//! worker keeps the last conversation's tokens in the KV cache and reuses the longest common prefix, so a
//! follow-up turn or a steered edit only evaluates what changed. Tokens are sent as soon as they are final;
//! when the client goes away the stream's receiver is dropped and the worker stops before the next pass.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use futures::StreamExt;
use tandem_protocol::{
    ChatRequest, ChatResponse, FinishReason, Part, StreamEvent, ToolKind, Usage,
};
use tandem_providers::{EventStream, Provider};
use tokio::sync::mpsc;

use crate::error::{Error, Result};
use crate::generate::{Backend, Forward, Sampling, Settings, Stats, Stop, generate};
use crate::llama::{EngineOptions, Model};
use crate::lookup::LookupSettings;
use crate::template::Template;
use crate::text::{Piece, TextOut};

/// Which inference engine runs the model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineKind {
    /// llama.cpp through `llama-cpp-2`: the fastest on CPU, any GGUF architecture, prompt lookup.
    #[default]
    LlamaCpp,
    /// candle, pure Rust (`--features candle`): llama and qwen2 architectures, no prompt lookup.
    Candle,
}

impl EngineKind {
    /// Whether this build includes the engine.
    pub fn available(self) -> bool {
        match self {
            EngineKind::LlamaCpp => true,
            EngineKind::Candle => cfg!(feature = "candle"),
        }
    }
}

/// A local model provider's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct LocalConfig {
    /// Provider name (as in `provider/model`).
    pub name: String,
    /// The GGUF file.
    pub path: PathBuf,
    /// The inference engine.
    pub kind: EngineKind,
    /// Threads, context and GPU layers.
    pub engine: EngineOptions,
    /// Prompt-lookup drafting; `None` decodes one token per pass.
    pub lookup: Option<LookupSettings>,
    /// Requests that may wait for the model; more are refused at once.
    pub max_queue: usize,
}

/// A GGUF model answering in-process.
pub struct LocalProvider {
    name: String,
    model_name: String,
    jobs: std::sync::mpsc::SyncSender<Job>,
    queued: Arc<AtomicUsize>,
    max_queue: usize,
    context: usize,
    generated: Arc<AtomicU64>,
}

/// Shared between the provider and its worker.
struct Counters {
    queued: Arc<AtomicUsize>,
    generated: Arc<AtomicU64>,
}

struct Job {
    request: ChatRequest,
    events: mpsc::Sender<tandem_providers::Result<StreamEvent>>,
}

impl LocalProvider {
    /// Load the model on a new worker thread; returns once it is ready (or failed to load).
    pub fn start(config: LocalConfig) -> Result<Self> {
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(config.max_queue.max(1));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<(String, usize)>>();
        let queued = Arc::new(AtomicUsize::new(0));
        let generated = Arc::new(AtomicU64::new(0));
        let counters = Counters {
            queued: Arc::clone(&queued),
            generated: Arc::clone(&generated),
        };
        let worker_config = config.clone();
        std::thread::Builder::new()
            .name(format!("tandem-local-{}", config.name))
            .spawn(move || worker(worker_config, rx, ready_tx, counters))
            .map_err(|e| Error::Engine(format!("cannot start the worker thread: {e}")))?;
        let (model_name, context) = ready_rx.recv().map_err(|_| Error::WorkerGone)??;
        Ok(LocalProvider {
            name: config.name,
            model_name,
            jobs,
            queued,
            max_queue: config.max_queue.max(1),
            context,
            generated,
        })
    }

    /// The model's name from its metadata.
    pub fn model_name(&self) -> &str {
        &self.model_name
    }

    /// The context window in tokens.
    pub fn context_size(&self) -> usize {
        self.context
    }

    /// Tokens generated since the model was loaded, including those of answers cut short.
    pub fn generated_total(&self) -> u64 {
        self.generated.load(Ordering::Relaxed)
    }

    fn error(&self, err: &Error) -> tandem_providers::Error {
        provider_error(&self.name, err, false)
    }
}

/// A local failure as a provider error: the request's own fault is a 400, a full queue a 503; anything else
/// is internal before the answer started, and a broken stream once it has.
fn provider_error(provider: &str, err: &Error, streaming: bool) -> tandem_providers::Error {
    let provider = provider.to_owned();
    match err {
        Error::ContextFull { .. } | Error::Template(_) => tandem_providers::Error::Status {
            provider,
            status: 400,
            message: err.to_string().into(),
        },
        Error::Busy(_) => tandem_providers::Error::Status {
            provider,
            status: 503,
            message: err.to_string().into(),
        },
        _ if streaming => tandem_providers::Error::Reset {
            provider,
            message: err.to_string(),
        },
        _ => tandem_providers::Error::Internal {
            message: format!("local model `{provider}`: {err}"),
        },
    }
}

#[async_trait::async_trait]
impl Provider for LocalProvider {
    fn name(&self) -> &str {
        &self.name
    }

    fn api_name(&self) -> &'static str {
        "llama.cpp"
    }

    async fn complete(
        &self,
        req: &ChatRequest,
        upstream_model: &str,
    ) -> tandem_providers::Result<ChatResponse> {
        let mut stream = self.stream(req, upstream_model).await?;
        let mut response = ChatResponse {
            id: String::new(),
            model: String::new(),
            parts: Vec::new(),
            finish: FinishReason::Stop,
            usage: Usage::default(),
        };
        let mut text = String::new();
        while let Some(event) = stream.next().await {
            match event? {
                StreamEvent::Start { id, model } => {
                    response.id = id;
                    response.model = model;
                }
                StreamEvent::TextDelta(delta) => text.push_str(&delta),
                StreamEvent::ToolCallStart { id, name, .. } => {
                    if !text.is_empty() {
                        response.parts.push(Part::Text(std::mem::take(&mut text)));
                    }
                    response.parts.push(Part::ToolCall {
                        id,
                        name,
                        arguments: String::new(),
                        kind: ToolKind::Function,
                    });
                }
                StreamEvent::ToolCallDelta { arguments, .. } => {
                    if let Some(Part::ToolCall { arguments: a, .. }) = response.parts.last_mut() {
                        a.push_str(&arguments);
                    }
                }
                StreamEvent::Finish(reason) => response.finish = reason,
                StreamEvent::Usage(usage) => response.usage = usage,
                StreamEvent::ReasoningDelta(_) | StreamEvent::ReasoningSignature(_) => {}
            }
        }
        if !text.is_empty() {
            response.parts.push(Part::Text(text));
        }
        Ok(response)
    }

    async fn stream(
        &self,
        req: &ChatRequest,
        _upstream_model: &str,
    ) -> tandem_providers::Result<EventStream> {
        if self.queued.fetch_add(1, Ordering::SeqCst) >= self.max_queue {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(self.error(&Error::Busy(self.max_queue)));
        }
        let (events, rx) = mpsc::channel(256);
        let job = Job {
            request: req.clone(),
            events,
        };
        if self.jobs.try_send(job).is_err() {
            self.queued.fetch_sub(1, Ordering::SeqCst);
            return Err(self.error(&Error::WorkerGone));
        }
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|event| (event, rx))
        });
        Ok(Box::pin(stream))
    }
}

/// The worker: loads the model, then answers jobs until the provider is dropped.
fn worker(
    config: LocalConfig,
    jobs: std::sync::mpsc::Receiver<Job>,
    ready: std::sync::mpsc::Sender<Result<(String, usize)>>,
    counters: Counters,
) {
    let loaded = load(&config).and_then(|model| {
        let (bos, eos) = model.special_texts();
        let template = Template::new(model.template(), bos, eos)?;
        Ok((model, template))
    });
    let (model, template) = match loaded {
        Ok(loaded) => loaded,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let mut engine = match model.context(&config.engine) {
        Ok(engine) => engine,
        Err(err) => {
            let _ = ready.send(Err(err));
            return;
        }
    };
    let context = engine.context_size();
    let _ = ready.send(Ok((model.name().to_owned(), context)));
    let mut loaded = Loaded {
        model: model.as_ref(),
        template: &template,
        engine: engine.as_mut(),
        cached: Vec::new(),
    };
    let mut counter = 0u64;
    while let Ok(job) = jobs.recv() {
        counters.queued.fetch_sub(1, Ordering::SeqCst);
        if job.events.is_closed() {
            continue;
        }
        counter += 1;
        let id = format!("local-{}-{counter}", std::process::id());
        let result = answer(&config, &mut loaded, &job, &id, &counters.generated);
        loaded.engine.set_cancel(None);
        if let Err(err) = result {
            if !matches!(err, Error::Cancelled) {
                tracing::warn!(provider = %config.name, error = %err, "local model request failed");
            }
            // Whatever the cache holds is no longer known.
            loaded.cached.clear();
            let _ = job
                .events
                .blocking_send(Err(provider_error(&config.name, &err, true)));
        }
    }
}

/// Load the model with the configured engine.
fn load(config: &LocalConfig) -> Result<Box<dyn Backend>> {
    match config.kind {
        EngineKind::LlamaCpp => Ok(Box::new(Model::load(&config.path, &config.engine)?)),
        #[cfg(feature = "candle")]
        EngineKind::Candle => Ok(Box::new(crate::candle::CandleModel::load(&config.path)?)),
        #[cfg(not(feature = "candle"))]
        EngineKind::Candle => Err(Error::Engine(
            "this build has no candle engine; build with `--features tandem-local/candle`".into(),
        )),
    }
}

/// What the worker holds between requests: the model, its template, its one context, and the tokens that
/// context's cache holds.
struct Loaded<'m> {
    model: &'m dyn Backend,
    template: &'m Template,
    engine: &'m mut dyn Forward,
    cached: Vec<u32>,
}

/// Answer one request, streaming its events.
fn answer(
    config: &LocalConfig,
    loaded: &mut Loaded<'_>,
    job: &Job,
    id: &str,
    generated_total: &AtomicU64,
) -> Result<()> {
    let Loaded {
        model,
        template,
        engine,
        cached,
    } = loaded;
    let (model, template) = (*model, *template);
    let req = &job.request;
    let send = |event: StreamEvent| job.events.blocking_send(Ok(event)).is_ok();
    if !send(StreamEvent::Start {
        id: id.to_owned(),
        model: model.name().to_owned(),
    }) {
        return Ok(());
    }
    let rendered = template.render(&req.messages, &req.tools)?;
    let prompt = model.tokenize(&rendered);
    let context = engine.context_size();
    let room = context.saturating_sub(prompt.len());
    let max_tokens = req.max_output_tokens.map_or(room, |m| m as usize);
    if prompt.is_empty()
        || prompt.len() + max_tokens.min(1) > context
        || (req.max_output_tokens.is_some() && max_tokens > room)
    {
        return Err(Error::ContextFull {
            prompt: prompt.len(),
            max_tokens,
            context,
        });
    }
    let events = job.events.clone();
    engine.set_cancel(Some(std::sync::Arc::new(move || events.is_closed())));
    let reference = prediction(req)
        .map(|text| model.tokenize(&text))
        .unwrap_or_default();
    let reused = cached
        .iter()
        .zip(&prompt)
        .take_while(|(a, b)| a == b)
        .count();
    let settings = Settings {
        max_tokens,
        sampling: sampling(req, id),
        lookup: config.lookup,
    };
    let mut text = TextOut::new(req.stop.clone(), !req.tools.is_empty());
    let mut pieces = Vec::new();
    let mut bytes = Vec::new();
    let mut calls = 0u32;
    let mut generated = Vec::new();
    let mut gone = false;
    let emit_pieces = |pieces: &mut Vec<Piece>, calls: &mut u32| -> bool {
        for piece in pieces.drain(..) {
            let ok = match piece {
                Piece::Text(t) => send(StreamEvent::TextDelta(t)),
                Piece::ToolCall { name, arguments } => {
                    let index = *calls;
                    *calls += 1;
                    send(StreamEvent::ToolCallStart {
                        index,
                        id: format!("call_{id}_{index}"),
                        name,
                    }) && send(StreamEvent::ToolCallDelta { index, arguments })
                }
            };
            if !ok {
                return false;
            }
        }
        true
    };
    let (stop, stats) = generate(
        &mut **engine,
        &prompt,
        reused,
        &reference,
        &settings,
        &|t| model.is_end(t),
        &mut |token| {
            generated.push(token);
            generated_total.fetch_add(1, Ordering::Relaxed);
            bytes.clear();
            model.piece(token, &mut bytes);
            text.push(&bytes, &mut pieces);
            if !emit_pieces(&mut pieces, &mut calls) || job.events.is_closed() {
                gone = true;
                return ControlFlow::Break(());
            }
            if text.stopped() {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        },
    )?;
    // The cache now holds the prompt and every generated token but the last.
    cached.clear();
    cached.extend_from_slice(&prompt);
    cached.extend_from_slice(&generated[..generated.len().saturating_sub(1)]);
    log_stats(config, &stats);
    if gone {
        return Ok(());
    }
    text.finish(&mut pieces);
    if !emit_pieces(&mut pieces, &mut calls) {
        return Ok(());
    }
    let finish = match stop {
        _ if calls > 0 => FinishReason::ToolCalls,
        Stop::Length => FinishReason::Length,
        Stop::End | Stop::Consumer => FinishReason::Stop,
    };
    let _ = send(StreamEvent::Finish(finish))
        && send(StreamEvent::Usage(Usage {
            input_tokens: prompt.len() as u64,
            output_tokens: stats.generated as u64,
            cached_input_tokens: stats.reused as u64,
            reasoning_tokens: 0,
        }));
    Ok(())
}

fn log_stats(config: &LocalConfig, stats: &Stats) {
    tracing::debug!(
        provider = %config.name,
        prefilled = stats.prefilled,
        reused = stats.reused,
        generated = stats.generated,
        passes = stats.passes,
        acceptance = stats.acceptance(),
        prefill_ms = stats.prefill_time.as_millis() as u64,
        decode_ms = stats.decode_time.as_millis() as u64,
        "local generation"
    );
}

/// OpenAI's predicted output (`prediction: {type: "content", content}`): the text drafts come from first.
fn prediction(req: &ChatRequest) -> Option<String> {
    let prediction = req.openai_extra.get("prediction")?;
    match prediction.get("content")? {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Array(parts) => Some(
            parts
                .iter()
                .filter_map(|p| p.get("text").and_then(serde_json::Value::as_str))
                .collect(),
        ),
        _ => None,
    }
}

/// Greedy unless the request asks for a temperature above 0 (a coding tier's edits should be repeatable).
fn sampling(req: &ChatRequest, id: &str) -> Sampling {
    match req.temperature {
        Some(t) if t > 0.0 => Sampling::Random {
            temperature: t as f32,
            top_p: req.top_p.map_or(1.0, |p| p.clamp(0.01, 1.0) as f32),
            seed: req
                .openai_extra
                .get("seed")
                .and_then(serde_json::Value::as_u64)
                .unwrap_or_else(|| {
                    id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
                    }) ^ std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_nanos() as u64)
                }),
        },
        _ => Sampling::Greedy,
    }
}
