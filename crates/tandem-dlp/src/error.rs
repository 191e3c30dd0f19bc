//! The crate's one error type.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong when reading rules or redacting.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The rule file is not valid TOML or does not have gitleaks' shape.
    #[error("invalid rule file: {0}")]
    Toml(Box<str>),
    /// A rule's or allowlist's regular expression does not compile.
    #[error("rule `{rule}`: invalid regex: {message}")]
    Regex {
        /// The rule id (or `allowlist`).
        rule: Box<str>,
        /// The compiler's message.
        message: Box<str>,
    },
    /// A rule is well-formed TOML but cannot be used.
    #[error("rule `{rule}`: {message}")]
    Rule {
        /// The rule id.
        rule: Box<str>,
        /// What is wrong with it.
        message: Box<str>,
    },
    /// A finding whose action is `block`. Carries the rule id, never the secret.
    #[error("blocked by data loss prevention rule `{rule}`")]
    Blocked {
        /// The rule that matched.
        rule: Box<str>,
    },
    /// A stream held back more text than its bound allows; it fails closed.
    #[error("stream redaction held back more than {limit} bytes")]
    Overflow {
        /// The bound in bytes.
        limit: usize,
    },
}
