//! The sandbox crate's one error type.

/// What can go wrong preparing or applying a sandbox.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy is unusable (a relative or missing workspace, a bad domain pattern…).
    #[error("sandbox policy: {0}")]
    Policy(String),
    /// Neither bubblewrap with user namespaces nor Landlock is available: nothing may run.
    #[error("no sandbox is available here ({0}); refusing to run commands unsandboxed")]
    Unavailable(String),
    /// Landlock could not be applied.
    #[error("landlock: {0}")]
    Landlock(String),
    /// The seccomp filter could not be built or installed.
    #[error("seccomp: {0}")]
    Seccomp(String),
    /// A file or process operation failed.
    #[error("{action}: {source}")]
    Io {
        /// What was being done.
        action: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
}

/// Shorthand.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn io(action: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let action = action.into();
    move |source| Error::Io { action, source }
}
