//! The crate's error type.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a body could not be translated.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The body is not valid JSON or does not match the format; `path` names the field (`messages[0].role`).
    #[error("invalid request body at `{path}`: {message}")]
    Json {
        /// JSON path of the offending field, `.` for the root.
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The body is well-formed but asks for something this format or Tandem cannot express.
    #[error("{0}")]
    Invalid(String),
    /// The upstream sent an answer that does not follow its format.
    #[error("malformed upstream answer: {0}")]
    Upstream(String),
}

impl Error {
    /// The category the gateway maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Json { .. } | Error::Invalid(_) => ErrorKind::BadRequest,
            Error::Upstream(_) => ErrorKind::Upstream,
        }
    }
}
