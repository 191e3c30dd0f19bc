//! The crate's error type: why a policy file refuses to load.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a policy text could not become a [`crate::Policy`].
///
/// Every message names the source (the file name the caller passed) and, where Cedar reports one,
/// the `line:col` of the problem, so `tandem policy check FILE` can print it as is.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The text is not Cedar: one diagnostic per syntax error, each `source:line:col: message`.
    #[error("cannot parse policies in `{source_name}`:\n{}", .diagnostics.join("\n"))]
    Parse {
        /// The name the caller gave the text (usually its file path).
        source_name: String,
        /// One line per error.
        diagnostics: Vec<String>,
    },
    /// The policies do not type-check against [`crate::SCHEMA`]: one diagnostic per error, each
    /// `source:line:col: policy `id`: message`.
    #[error("policies in `{source_name}` do not match the Tandem schema:\n{}", .diagnostics.join("\n"))]
    Invalid {
        /// The name the caller gave the text.
        source_name: String,
        /// One line per error.
        diagnostics: Vec<String>,
    },
    /// A policy has no `@id("...")` annotation (or an empty one), so denies could not name it.
    #[error(
        "{source_name}:{line}:{col}: policy has no @id annotation; add `@id(\"a-unique-name\")` before it"
    )]
    MissingId {
        /// The name the caller gave the text.
        source_name: String,
        /// 1-based line where the policy starts.
        line: usize,
        /// 1-based column where the policy starts.
        col: usize,
    },
    /// Two policies share an `@id`.
    #[error(
        "{source_name}:{line}:{col}: duplicate policy id `{id}` (first used at line {first_line})"
    )]
    DuplicateId {
        /// The name the caller gave the text.
        source_name: String,
        /// The repeated id.
        id: String,
        /// 1-based line of the second use.
        line: usize,
        /// 1-based column of the second use.
        col: usize,
        /// 1-based line of the first use.
        first_line: usize,
    },
    /// The embedded schema does not parse: a bug in this crate, caught by its tests.
    #[error("the built-in Tandem policy schema is invalid: {0}")]
    Schema(String),
}

impl Error {
    /// The category the gateway maps to a status code.
    ///
    /// A bad policy text is the operator's input (400 when it comes through an admin API); a broken
    /// built-in schema is a bug (500).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Parse { .. }
            | Error::Invalid { .. }
            | Error::MissingId { .. }
            | Error::DuplicateId { .. } => ErrorKind::BadRequest,
            Error::Schema(_) => ErrorKind::Internal,
        }
    }
}
