//! The crate's error type: why a scope, a rule set or a price table could not be accepted.
//!
//! A refused request is not an error of this kind: it is an [`crate::Exceeded`], which the gateway
//! answers with 429.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a scope, a scope pattern, a rule set or a price could not be accepted.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A scope or scope pattern is not `kind:value` with kind `key`, `user`, `team` or `project`.
    #[error("invalid scope `{input}`: {reason}")]
    InvalidScope {
        /// The text as given.
        input: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two rules (budgets and rate limits share one namespace) have the same name.
    #[error("duplicate budget or rate limit name `{0}`")]
    DuplicateRule(String),
    /// A rule has an empty name.
    #[error("a budget or rate limit has an empty name")]
    EmptyName,
    /// A rule sets none of its limits.
    #[error("`{0}` sets no limit")]
    NoLimit(String),
    /// A rule's limit is negative, NaN or infinite.
    #[error("`{rule}` has an invalid limit: {reason}")]
    InvalidLimit {
        /// The rule's name.
        rule: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A price is negative, NaN or infinite.
    #[error("invalid price: {0}")]
    InvalidPrice(&'static str),
}

impl Error {
    /// The category the gateway maps to a status code.
    ///
    /// A scope parsed from a request is the client's mistake; everything else is configuration, which
    /// the configuration loader reports before the server starts.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidScope { .. } => ErrorKind::BadRequest,
            Error::DuplicateRule(_)
            | Error::EmptyName
            | Error::NoLimit(_)
            | Error::InvalidLimit { .. }
            | Error::InvalidPrice(_) => ErrorKind::Internal,
        }
    }
}
