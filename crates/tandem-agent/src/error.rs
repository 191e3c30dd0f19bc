//! The agent crate's one error type.

/// What can go wrong during an edit.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The model server could not be reached or answered with an error.
    #[error("model: {0}")]
    Model(String),
    /// The model's edits could not be applied.
    #[error("applying the edit: {0}")]
    Apply(#[from] tandem_patch::Error),
    /// The model answered without any edit.
    #[error("the model proposed no edit")]
    NoEdit,
    /// A git command failed.
    #[error("git: {0}")]
    Git(String),
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A quality gate failed; the change was not kept.
    #[error("gates failed: {0}")]
    Gates(String),
    /// The change could not be recorded in the audit ledger.
    #[error("recording the change: {0}")]
    Record(String),
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;
