//! The crate's error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML or has unknown or mistyped keys.
    #[error("{source_name}: {message}")]
    Parse {
        /// File path or "embedded default".
        source_name: String,
        /// The TOML parser's message, with line and column.
        message: String,
    },
    /// The file parses but its values do not make sense together.
    #[error("{source_name}: {message}")]
    Invalid {
        /// File path or "embedded default".
        source_name: String,
        /// What is wrong.
        message: String,
    },
}
