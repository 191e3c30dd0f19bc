//! The crate's error type.

use tandem_protocol::ErrorKind;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the pipeline could not answer.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request named no model.
    #[error("the request names no model")]
    EmptyModel,
    /// A model alias names a provider that does not exist.
    #[error("provider `{0}` is not configured")]
    UnknownProvider(String),
    /// A tier name that is not configured.
    #[error("tier `{0}` is not configured")]
    UnknownTier(String),
    /// `model: "auto"` or `x-tandem-pace: auto` without a router configured.
    #[error("`auto` routing needs [tiers] and a [router] in the configuration")]
    NoRouter,
    /// A tier has no targets.
    #[error("tier `{0}` has no targets")]
    NoTargets(String),
    /// Every target's circuit breaker is open.
    #[error("every target is unavailable (circuit open); retry shortly")]
    AllTargetsOpen,
    /// The router configuration is invalid.
    #[error("router: {0}")]
    Router(#[source] tandem_router::Error),
    /// The pipeline was built without providers.
    #[error("no providers are configured")]
    NoProviders,
    /// A policy refused the request; the message names the policy.
    #[error("{0}")]
    Denied(String),
    /// A budget or rate limit is spent; the message names it.
    #[error("{0}")]
    Quota(tandem_budget::Exceeded),
    /// The shared budget counters could not be reached and the configured mode is fail closed.
    #[error("budgets cannot be checked: {0}")]
    Counters(#[source] tandem_counters::Error),
    /// The upstream call failed.
    #[error(transparent)]
    Provider(#[from] tandem_providers::Error),
    /// Data loss prevention refused the request or answer (names the rule, never the data).
    #[error("{0}")]
    Dlp(#[source] tandem_dlp::Error),
    /// The audit ledger could not record the exchange, so it is not answered.
    #[error("audit ledger: {0}")]
    Audit(#[source] tandem_audit::Error),
    /// The embedded store failed.
    #[error("state store: {0}")]
    Store(#[source] tandem_store::Error),
}

impl Error {
    /// The category the gateway maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::EmptyModel => ErrorKind::BadRequest,
            Error::UnknownProvider(_) | Error::UnknownTier(_) => ErrorKind::NotFound,
            Error::NoRouter => ErrorKind::BadRequest,
            Error::Denied(_) => ErrorKind::Denied,
            Error::Dlp(tandem_dlp::Error::Blocked { .. }) => ErrorKind::Denied,
            Error::Dlp(_) | Error::Audit(_) => ErrorKind::Internal,
            Error::Quota(_) => ErrorKind::QuotaExceeded,
            Error::Counters(err) => err.kind(),
            Error::AllTargetsOpen => ErrorKind::Unavailable,
            Error::NoProviders | Error::NoTargets(_) | Error::Router(_) | Error::Store(_) => {
                ErrorKind::Internal
            }
            Error::Provider(err) => err.kind(),
        }
    }
}
