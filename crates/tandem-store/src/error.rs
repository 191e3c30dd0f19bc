//! The crate's error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A batch of records could not be written.
    #[error("writing records failed: {0}")]
    Write(String),
    /// The writer thread is gone (it failed earlier, or the store is shutting down).
    #[error("the store writer has stopped")]
    WriterGone,
}
