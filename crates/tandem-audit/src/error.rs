//! The audit crate's one error type.

use std::path::PathBuf;

/// What can go wrong opening, appending to, reading or verifying the ledger.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory of the ledger could not be read or written.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The ledger database failed.
    #[error("audit database: {0}")]
    Db(#[from] rusqlite::Error),
    /// Another process holds the ledger open for writing.
    #[error(
        "the audit ledger in {} is open for writing by another process (a running `tandem serve`?)",
        path.display()
    )]
    Locked {
        /// The ledger directory.
        path: PathBuf,
    },
    /// The signing key file is malformed or does not match the ledger.
    #[error("audit key {}: {message}", path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A checkpoint, verifier key or proof could not be parsed or checked.
    #[error("{0}")]
    Invalid(String),
    /// An entry could not be encoded or decoded.
    #[error("audit entry: {0}")]
    Json(#[from] serde_json::Error),
    /// The writer thread has stopped; entries can no longer be sealed.
    #[error("the audit writer has stopped")]
    WriterGone,
    /// Asked for something the ledger does not have.
    #[error("{0}")]
    NotFound(String),
    /// The ledger's PostgreSQL database failed or could not be reached.
    #[error("audit ledger database: {0}")]
    Postgres(String),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Wraps an IO error with what was being done to which path.
pub(crate) fn io(
    action: &'static str,
    path: &std::path::Path,
) -> impl FnOnce(std::io::Error) -> Error {
    let path = path.to_owned();
    move |source| Error::Io {
        action,
        path,
        source,
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        match err.as_db_error() {
            Some(db) => Error::Postgres(format!("{err}: {}", db.message())),
            None => Error::Postgres(err.to_string()),
        }
    }
}
