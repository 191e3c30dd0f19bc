//! The crate's error type.

/// What can go wrong while reading a ledger or a repository.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Reading the git repository failed.
    #[error("git: {0}")]
    Git(String),
    /// Reading the audit ledger failed.
    #[error("audit ledger: {0}")]
    Audit(#[from] tandem_audit::Error),
    /// Encoding the report failed.
    #[error("encoding the report: {0}")]
    Json(#[from] serde_json::Error),
}

/// The crate's result type.
pub type Result<T> = std::result::Result<T, Error>;

/// Wraps any gix error with what was being done.
pub(crate) fn git(what: &str) -> impl FnOnce(String) -> Error + '_ {
    move |e| Error::Git(format!("{what}: {e}"))
}
