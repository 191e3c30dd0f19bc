//! llama.cpp through `llama-cpp-2`: loading a GGUF file, its tokenizer and chat template, and the
//! [`Forward`] implementation that the decoding loop drives.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::OnceLock;

use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::context::params::LlamaContextParams;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::token::LlamaToken;

use crate::error::{Error, Result};
use crate::generate::{Backend, Cancel, Forward};

/// How a model is loaded and its context sized.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EngineOptions {
    /// CPU threads for decoding and prefill; 0 means one per available core.
    pub threads: usize,
    /// Context window in tokens (prompt plus answer); 0 means the model's training context, capped at 32,768.
    pub context: u32,
    /// Largest number of tokens evaluated in one llama.cpp call.
    pub batch: u32,
    /// Layers offloaded to a GPU in GPU builds (`--features cuda`); ignored on CPU builds.
    pub gpu_layers: u32,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            threads: 0,
            context: 8192,
            batch: 512,
            gpu_layers: 999,
        }
    }
}

impl EngineOptions {
    fn thread_count(&self) -> i32 {
        let n = if self.threads == 0 {
            std::thread::available_parallelism().map_or(1, usize::from)
        } else {
            self.threads
        };
        i32::try_from(n).unwrap_or(1)
    }
}

/// llama.cpp's process-wide backend, initialised once; its logs go to `tracing` (target `llama-cpp-2`).
fn backend() -> Result<&'static LlamaBackend> {
    static BACKEND: OnceLock<std::result::Result<LlamaBackend, String>> = OnceLock::new();
    BACKEND
        .get_or_init(|| {
            check_cpu().map_err(|e| e.to_string())?;
            llama_cpp_2::send_logs_to_tracing(llama_cpp_2::LogOptions::default());
            LlamaBackend::init().map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|message| Error::Engine(message.clone()))
}

/// llama.cpp is compiled for x86-64-v3 (`.cargo/config.toml`); refuse cleanly rather than crash with SIGILL.
fn check_cpu() -> Result<()> {
    #[cfg(target_arch = "x86_64")]
    {
        if !std::arch::is_x86_feature_detected!("avx2") {
            return Err(Error::Cpu("AVX2"));
        }
        if !std::arch::is_x86_feature_detected!("fma") {
            return Err(Error::Cpu("FMA"));
        }
    }
    Ok(())
}

/// A loaded GGUF model: weights, tokenizer and chat template. Shared by every context made from it.
pub struct Model {
    model: LlamaModel,
    template: Option<String>,
    name: String,
}

impl Model {
    /// Load a GGUF file.
    pub fn load(path: &Path, options: &EngineOptions) -> Result<Model> {
        let backend = backend()?;
        if !path.is_file() {
            return Err(Error::Io {
                path: path.to_owned(),
                source: std::io::Error::from(std::io::ErrorKind::NotFound),
            });
        }
        let params = LlamaModelParams::default().with_n_gpu_layers(options.gpu_layers);
        let model =
            LlamaModel::load_from_file(backend, path, &params).map_err(|e| Error::Load {
                path: path.to_owned(),
                message: e.to_string(),
            })?;
        let template = model.meta_val_str("tokenizer.chat_template").ok();
        let name = model.meta_val_str("general.name").unwrap_or_else(|_| {
            path.file_stem()
                .map_or_else(String::new, |s| s.to_string_lossy().into_owned())
        });
        Ok(Model {
            model,
            template,
            name,
        })
    }

    /// The model's own name (`general.name`), else the file name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The Jinja chat template in the GGUF metadata, if any.
    pub fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    /// The context the model was trained with.
    pub fn trained_context(&self) -> u32 {
        self.model.n_ctx_train()
    }

    /// Tokenize a rendered prompt; special-token text (as the template writes it) becomes those tokens.
    pub fn tokenize(&self, text: &str) -> Vec<u32> {
        let vocab = self.model.vocab();
        let add_bos = vocab.should_add_bos() && !text.starts_with(&self.token_text(vocab.bos()));
        vocab
            .tokenize(text.as_bytes(), add_bos, true)
            .into_iter()
            .map(|t| u32::try_from(t.0).unwrap_or(0))
            .collect()
    }

    /// The text of a token as the template would write it (control tokens included).
    pub fn token_text(&self, token: LlamaToken) -> String {
        let bytes = self.model.vocab().token_to_piece(token, true, None);
        String::from_utf8_lossy(&bytes).into_owned()
    }

    /// The bytes a generated token stands for (control tokens render as nothing).
    pub fn piece(&self, token: u32, out: &mut Vec<u8>) {
        let bytes = self.model.vocab().token_to_piece(
            LlamaToken(i32::try_from(token).unwrap_or(0)),
            false,
            None,
        );
        out.extend_from_slice(&bytes);
    }

    /// Whether a token ends generation (end of turn, end of text).
    pub fn is_end(&self, token: u32) -> bool {
        self.model
            .vocab()
            .is_eog(LlamaToken(i32::try_from(token).unwrap_or(0)))
    }

    /// The BOS and EOS tokens' text, for templates that use them.
    pub fn special_texts(&self) -> (String, String) {
        let vocab = self.model.vocab();
        (self.token_text(vocab.bos()), self.token_text(vocab.eos()))
    }

    /// Apply the template through llama.cpp's built-in template engine (known formats only, no tools).
    pub fn builtin_template(&self, messages: &[(String, String)]) -> Result<String> {
        use llama_cpp_2::model::LlamaChatMessage;
        let template = self
            .model
            .chat_template(None)
            .map_err(|e| Error::Template(e.to_string()))?;
        let chat = messages
            .iter()
            .map(|(role, content)| LlamaChatMessage::new(role.clone(), content.clone()))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| Error::Template(e.to_string()))?;
        self.model
            .apply_chat_template(&template, &chat, true)
            .map_err(|e| Error::Template(e.to_string()))
    }

    /// A context (a KV cache for one sequence) on this model.
    pub fn context(&self, options: &EngineOptions) -> Result<Engine<'_>> {
        let backend = backend()?;
        let context = if options.context == 0 {
            self.trained_context().min(32_768)
        } else {
            options.context
        };
        let batch = options.batch.clamp(1, context);
        let threads = options.thread_count();
        let params = LlamaContextParams::default()
            .with_n_ctx(NonZeroU32::new(context))
            .with_n_batch(batch)
            .with_n_ubatch(batch)
            .with_n_threads(threads)
            .with_n_threads_batch(threads);
        let ctx = self
            .model
            .new_context(backend, params)
            .map_err(|e| Error::Engine(format!("cannot create a context: {e}")))?;
        Ok(Engine {
            ctx,
            batch: LlamaBatch::new(batch as usize, 1),
            n_batch: batch as usize,
            n_ctx: context as usize,
            last_all: false,
            last_len: 0,
            cancel: None,
        })
    }
}

impl Backend for Model {
    fn name(&self) -> &str {
        Model::name(self)
    }

    fn template(&self) -> Option<&str> {
        Model::template(self)
    }

    fn special_texts(&self) -> (String, String) {
        Model::special_texts(self)
    }

    fn tokenize(&self, text: &str) -> Vec<u32> {
        Model::tokenize(self, text)
    }

    fn piece(&self, token: u32, out: &mut Vec<u8>) {
        Model::piece(self, token, out);
    }

    fn is_end(&self, token: u32) -> bool {
        Model::is_end(self, token)
    }

    fn context(&self, options: &EngineOptions) -> Result<Box<dyn Forward + '_>> {
        Ok(Box::new(Model::context(self, options)?))
    }
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// One llama.cpp context: evaluates tokens into its KV cache and exposes their logits.
pub struct Engine<'m> {
    ctx: LlamaContext<'m>,
    batch: LlamaBatch<'static>,
    n_batch: usize,
    n_ctx: usize,
    last_all: bool,
    last_len: usize,
    cancel: Option<Cancel>,
}

/// Prompt tokens evaluated per llama.cpp call in a prefill: between calls, a client that went away stops it
/// (about 2 s of CPU at most with the default model on 2 cores).
const PREFILL_CHUNK: usize = 256;

impl Forward for Engine<'_> {
    fn eval(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<()> {
        if tokens.is_empty() {
            return Err(Error::Engine("nothing to evaluate".into()));
        }
        if pos + tokens.len() > self.n_ctx {
            return Err(Error::ContextFull {
                prompt: pos + tokens.len(),
                max_tokens: 0,
                context: self.n_ctx,
            });
        }
        if all && tokens.len() > self.n_batch {
            return Err(Error::Engine(format!(
                "{} tokens with all logits exceed the batch of {}",
                tokens.len(),
                self.n_batch
            )));
        }
        let chunks =
            tokens.chunks(
                self.n_batch
                    .min(PREFILL_CHUNK)
                    .max(if all { tokens.len() } else { 1 }),
            );
        let n_chunks = chunks.len();
        let mut at = pos;
        for (c, chunk) in chunks.enumerate() {
            if c > 0 && self.cancel.as_ref().is_some_and(|cancel| cancel()) {
                return Err(Error::Cancelled);
            }
            self.batch.clear();
            let last_chunk = c + 1 == n_chunks;
            for (i, &token) in chunk.iter().enumerate() {
                let logits = last_chunk && (all || i + 1 == chunk.len());
                let position = i32::try_from(at + i)
                    .map_err(|_| Error::Engine("position out of range".into()))?;
                self.batch
                    .add(
                        LlamaToken(i32::try_from(token).unwrap_or(0)),
                        position,
                        &[0],
                        logits,
                    )
                    .map_err(|e| Error::Engine(e.to_string()))?;
            }
            self.ctx
                .decode(&mut self.batch)
                .map_err(|e| Error::Engine(format!("decode: {e}")))?;
            at += chunk.len();
            if last_chunk {
                self.last_len = chunk.len();
            }
        }
        self.last_all = all;
        Ok(())
    }

    fn logits(&self, i: usize) -> &[f32] {
        // Only indices that were asked for logits are valid; others map to the last one.
        let i = if self.last_all {
            i.min(self.last_len.saturating_sub(1))
        } else {
            self.last_len.saturating_sub(1)
        };
        self.ctx.get_logits_ith(i32::try_from(i).unwrap_or(0))
    }

    fn context_size(&self) -> usize {
        self.n_ctx
    }

    fn set_cancel(&mut self, cancel: Option<Cancel>) {
        self.cancel = cancel;
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        let len = u32::try_from(len).map_err(|_| Error::Engine("position out of range".into()))?;
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(len), None)
            .map_err(|e| Error::Engine(e.to_string()))?;
        Ok(())
    }
}
