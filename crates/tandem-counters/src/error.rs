//! The crate's error type.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the shared counters could not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Redis refused the command or could not be reached.
    #[error("redis: {0}")]
    Redis(String),
    /// Redis did not answer in time.
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
    /// A script answered something this build does not understand.
    #[error("redis script answered unexpectedly: {0}")]
    Protocol(String),
}

impl Error {
    /// Unreachable counters make budgets unenforceable: the service is unavailable.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Unavailable
    }
}

impl From<redis::RedisError> for Error {
    fn from(err: redis::RedisError) -> Self {
        Error::Redis(err.to_string())
    }
}
