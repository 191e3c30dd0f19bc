//! candle (pure Rust, no C++ toolchain) as the optional engine (`--features candle`): GGUF models of the
//! `llama` and `qwen2` architectures with a GPT-2-style BPE tokenizer (SmolLM2, Qwen2.5-Coder).
//!
//! candle-transformers' quantized models return the last position's logits only and cannot cut their KV
//! cache back, so this engine reports [`Forward::can_rollback`] false: no prompt lookup and no cache reuse
//! (each answer evaluates its whole prompt). Decoding is otherwise the same loop as llama.cpp's.

use std::cell::{RefCell, RefMut};
use std::collections::HashMap;
use std::path::Path;

use candle_core::quantized::gguf_file;
use candle_core::quantized::tokenizer::TokenizerFromGguf as _;
use candle_core::{Device, Tensor};
use candle_transformers::models::{quantized_llama, quantized_qwen2};
use tokenizers::Tokenizer;

use crate::EngineOptions;
use crate::error::{Error, Result};
use crate::generate::{Backend, Forward};

enum Weights {
    Llama(quantized_llama::ModelWeights),
    Qwen2(quantized_qwen2::ModelWeights),
}

impl Weights {
    fn forward(&mut self, x: &Tensor, pos: usize) -> candle_core::Result<Tensor> {
        match self {
            Weights::Llama(m) => m.forward(x, pos),
            Weights::Qwen2(m) => m.forward(x, pos),
        }
    }

    fn clear(&mut self) {
        match self {
            Weights::Llama(m) => m.clear_kv_cache(),
            Weights::Qwen2(m) => m.clear_kv_cache(),
        }
    }
}

/// A GGUF model loaded by candle. Its weights hold the one KV cache, so it has one context at a time.
pub struct CandleModel {
    weights: RefCell<Weights>,
    tokenizer: Tokenizer,
    /// Token id to the bytes it stands for (GPT-2 byte-level BPE), with control tokens empty.
    pieces: Vec<Vec<u8>>,
    ends: Vec<u32>,
    template: Option<String>,
    name: String,
    bos: String,
    eos: String,
    trained_context: usize,
}

fn engine_err(e: impl std::fmt::Display) -> Error {
    Error::Engine(format!("candle: {e}"))
}

impl CandleModel {
    /// Load a GGUF file with candle on the CPU.
    pub fn load(path: &Path) -> Result<CandleModel> {
        let load_err = |message: String| Error::Load {
            path: path.to_owned(),
            message,
        };
        let mut file = std::fs::File::open(path).map_err(Error::io(path))?;
        let content = gguf_file::Content::read(&mut file).map_err(|e| load_err(e.to_string()))?;
        let text = |key: &str| {
            content
                .metadata
                .get(key)
                .and_then(|v| v.to_string().ok())
                .cloned()
        };
        let number = |key: &str| content.metadata.get(key).and_then(|v| v.to_u32().ok());
        let arch = text("general.architecture").unwrap_or_default();
        let template = text("tokenizer.chat_template");
        let name = text("general.name").unwrap_or_else(|| arch.clone());
        let trained_context = number(&format!("{arch}.context_length")).unwrap_or(4096) as usize;
        let tokenizer = Tokenizer::from_gguf(&content).map_err(|e| load_err(e.to_string()))?;
        let tokens: Vec<String> = match content.metadata.get("tokenizer.ggml.tokens") {
            Some(gguf_file::Value::Array(values)) => values
                .iter()
                .map(|v| v.to_string().cloned().unwrap_or_default())
                .collect(),
            _ => return Err(load_err("no tokenizer.ggml.tokens".into())),
        };
        let types: Vec<i32> = match content.metadata.get("tokenizer.ggml.token_type") {
            Some(gguf_file::Value::Array(values)) => {
                values.iter().map(|v| v.to_i32().unwrap_or(1)).collect()
            }
            _ => Vec::new(),
        };
        let unicode_to_byte = byte_decoder();
        let pieces = tokens
            .iter()
            .enumerate()
            .map(|(i, token)| {
                // 3: control tokens, which render as nothing.
                if types.get(i) == Some(&3) {
                    Vec::new()
                } else {
                    token
                        .chars()
                        .map(|c| unicode_to_byte.get(&c).copied())
                        .collect::<Option<Vec<u8>>>()
                        .unwrap_or_else(|| token.as_bytes().to_vec())
                }
            })
            .collect();
        let token_text = |id: Option<u32>| {
            id.and_then(|id| tokens.get(id as usize).cloned())
                .unwrap_or_default()
        };
        let eos_id = number("tokenizer.ggml.eos_token_id");
        let mut ends: Vec<u32> = eos_id.into_iter().collect();
        for marker in ["<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>"] {
            if let Some(id) = tokens.iter().position(|t| t == marker) {
                ends.push(u32::try_from(id).unwrap_or(0));
            }
        }
        let bos = token_text(number("tokenizer.ggml.bos_token_id"));
        let eos = token_text(eos_id);
        let device = Device::Cpu;
        let weights = match arch.as_str() {
            "llama" => Weights::Llama(
                quantized_llama::ModelWeights::from_gguf(content, &mut file, &device)
                    .map_err(|e| load_err(e.to_string()))?,
            ),
            "qwen2" => Weights::Qwen2(
                quantized_qwen2::ModelWeights::from_gguf(content, &mut file, &device)
                    .map_err(|e| load_err(e.to_string()))?,
            ),
            other => {
                return Err(load_err(format!(
                    "candle serves the llama and qwen2 architectures, not `{other}`; use engine = \"llama.cpp\""
                )));
            }
        };
        Ok(CandleModel {
            weights: RefCell::new(weights),
            tokenizer,
            pieces,
            ends,
            template,
            name,
            bos,
            eos,
            trained_context,
        })
    }
}

/// GPT-2's byte-level alphabet, reversed: the printable character standing for each byte.
fn byte_decoder() -> HashMap<char, u8> {
    let mut printable: Vec<u8> = (b'!'..=b'~')
        .chain(0xA1..=0xAC)
        .chain(0xAE..=0xFF)
        .collect();
    let mut map: HashMap<char, u8> = printable.iter().map(|&b| (char::from(b), b)).collect();
    let mut next = 0u32;
    for b in 0..=255u8 {
        if !printable.contains(&b) {
            if let Some(c) = char::from_u32(256 + next) {
                map.insert(c, b);
            }
            next += 1;
            printable.push(b);
        }
    }
    map
}

impl Backend for CandleModel {
    fn name(&self) -> &str {
        &self.name
    }

    fn template(&self) -> Option<&str> {
        self.template.as_deref()
    }

    fn special_texts(&self) -> (String, String) {
        (self.bos.clone(), self.eos.clone())
    }

    fn tokenize(&self, text: &str) -> Vec<u32> {
        self.tokenizer
            .encode(text, false)
            .map(|e| e.get_ids().to_vec())
            .unwrap_or_default()
    }

    fn piece(&self, token: u32, out: &mut Vec<u8>) {
        if let Some(bytes) = self.pieces.get(token as usize) {
            out.extend_from_slice(bytes);
        }
    }

    fn is_end(&self, token: u32) -> bool {
        self.ends.contains(&token)
    }

    fn context(&self, options: &EngineOptions) -> Result<Box<dyn Forward + '_>> {
        let weights = self
            .weights
            .try_borrow_mut()
            .map_err(|_| engine_err("the model already has a context"))?;
        let context = if options.context == 0 {
            self.trained_context.min(32_768)
        } else {
            options.context as usize
        };
        Ok(Box::new(CandleEngine {
            weights,
            len: 0,
            logits: Vec::new(),
            context,
        }))
    }
}

/// The model's one context.
struct CandleEngine<'m> {
    weights: RefMut<'m, Weights>,
    len: usize,
    logits: Vec<f32>,
    context: usize,
}

impl Forward for CandleEngine<'_> {
    fn eval(&mut self, tokens: &[u32], pos: usize, all: bool) -> Result<()> {
        if all && tokens.len() > 1 {
            return Err(engine_err("logits for every position are not available"));
        }
        if pos != self.len {
            return Err(engine_err(format!(
                "eval at {pos} with {} cached",
                self.len
            )));
        }
        if pos + tokens.len() > self.context {
            return Err(Error::ContextFull {
                prompt: pos + tokens.len(),
                max_tokens: 0,
                context: self.context,
            });
        }
        if pos == 0 {
            self.weights.clear();
        }
        let input = Tensor::new(tokens, &Device::Cpu)
            .and_then(|t| t.unsqueeze(0))
            .map_err(engine_err)?;
        let logits = self.weights.forward(&input, pos).map_err(engine_err)?;
        self.logits = logits
            .squeeze(0)
            .and_then(|l| l.to_dtype(candle_core::DType::F32))
            .and_then(|l| l.to_vec1())
            .map_err(engine_err)?;
        self.len = pos + tokens.len();
        Ok(())
    }

    fn logits(&self, _i: usize) -> &[f32] {
        &self.logits
    }

    fn truncate(&mut self, len: usize) -> Result<()> {
        if len == self.len {
            return Ok(());
        }
        if len == 0 {
            self.weights.clear();
            self.len = 0;
            return Ok(());
        }
        Err(engine_err("the KV cache cannot be cut back"))
    }

    fn can_rollback(&self) -> bool {
        false
    }

    fn context_size(&self) -> usize {
        self.context
    }
}

impl std::fmt::Debug for CandleModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CandleModel")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}
