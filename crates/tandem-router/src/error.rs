//! The crate's error type.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a router could not be built, or a trace, scorer or request body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A rule sends requests to a tier the gateway does not have.
    #[error("rule `{rule}` names unknown tier `{tier}` (known tiers: {known})")]
    UnknownTier {
        /// The rule's name.
        rule: String,
        /// The tier it names.
        tier: String,
        /// The known tiers, comma-separated.
        known: String,
    },
    /// The router configuration is inconsistent (empty or duplicate rule names, bad threshold, ...).
    #[error("invalid router config: {0}")]
    Config(String),
    /// A scorer's weights could not be read.
    #[error("invalid scorer: {0}")]
    Scorer(String),
    /// A line of an evaluation trace could not be read.
    #[error("trace line {line}: {message}")]
    Trace {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A request body is none of the client formats Tandem decodes.
    #[error("body is not a Chat Completions, Responses or Messages request: {0}")]
    Body(String),
}

impl Error {
    /// The category the gateway maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Body(_) => ErrorKind::BadRequest,
            Error::UnknownTier { .. }
            | Error::Config(_)
            | Error::Scorer(_)
            | Error::Trace { .. } => ErrorKind::Internal,
        }
    }
}
