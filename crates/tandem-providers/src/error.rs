//! The crate's error type.

use std::time::Duration;

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an upstream call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The connection could not be made (refused, DNS, TLS).
    #[error("provider `{provider}` is unreachable: {message}")]
    Connect {
        /// Provider name.
        provider: String,
        /// What the HTTP client reported.
        message: String,
    },
    /// No answer, or no further stream data, within the configured time.
    #[error("provider `{provider}` timed out after {elapsed:?} ({phase})")]
    Timeout {
        /// Provider name.
        provider: String,
        /// Which wait ran out: `first byte`, `idle stream`, `whole answer`.
        phase: &'static str,
        /// The limit that was hit.
        elapsed: Duration,
    },
    /// The upstream answered with an error status.
    #[error("provider `{provider}` returned HTTP {status}: {message}")]
    Status {
        /// Provider name.
        provider: String,
        /// The HTTP status.
        status: u16,
        /// The upstream's error message (truncated).
        message: Box<str>,
    },
    /// The connection broke while reading the answer.
    #[error("provider `{provider}` connection broke mid-answer: {message}")]
    Reset {
        /// Provider name.
        provider: String,
        /// What the HTTP client reported.
        message: String,
    },
    /// The stream ended before the upstream's end-of-answer marker.
    #[error("provider `{provider}` ended the stream before the answer was complete")]
    Truncated {
        /// Provider name.
        provider: String,
    },
    /// The answer does not follow the upstream's format, or is too large.
    #[error("provider `{provider}` sent a malformed answer: {source}")]
    Malformed {
        /// Provider name.
        provider: String,
        /// The translation error.
        #[source]
        source: tandem_translate::Error,
    },
    /// The gateway refused to pass the answer on (a data loss prevention rule whose action is block,
    /// or a redaction that could not complete). Names the rule, never the data.
    #[error("answer refused: {reason}")]
    Refused {
        /// Why, naming the rule.
        reason: String,
    },
    /// The gateway failed around an answer that was otherwise fine (its audit entry could not be
    /// written); the client gets an error, not the answer.
    #[error("{message}")]
    Internal {
        /// What failed.
        message: String,
    },
    /// The provider could not be built from its configuration.
    #[error("provider `{provider}` is misconfigured: {message}")]
    Config {
        /// Provider name.
        provider: String,
        /// What is wrong.
        message: String,
    },
}

impl Error {
    /// The category the gateway maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Connect { .. } => ErrorKind::Unavailable,
            Error::Timeout { .. } => ErrorKind::UpstreamTimeout,
            // The upstream judged the request itself bad (too long a context, bad parameter): the client's fault.
            Error::Status {
                status: 400 | 404 | 413 | 422,
                ..
            } => ErrorKind::BadRequest,
            Error::Status { .. }
            | Error::Reset { .. }
            | Error::Truncated { .. }
            | Error::Malformed { .. } => ErrorKind::Upstream,
            Error::Config { .. } | Error::Internal { .. } => ErrorKind::Internal,
            Error::Refused { .. } => ErrorKind::Denied,
        }
    }
}
