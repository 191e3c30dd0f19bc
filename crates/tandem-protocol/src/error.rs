//! Error categories shared by all crates, so the gateway can map any failure to a status code in one place.

/// What kind of failure happened, independent of the crate that saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent something malformed or unsupported (400).
    BadRequest,
    /// The request carries no valid credentials: a missing, unknown, expired or revoked API key, or a
    /// bearer token that failed validation (401).
    Unauthorized,
    /// The requested model or resource does not exist (404).
    NotFound,
    /// The request body is larger than the configured limit (413).
    PayloadTooLarge,
    /// A policy refused the request (400, never 403: clients retry 403).
    Denied,
    /// A budget is spent (429 `insufficient_quota`).
    QuotaExceeded,
    /// The upstream answered with an error status or an unreadable body (502).
    Upstream,
    /// The upstream did not answer in time (504).
    UpstreamTimeout,
    /// No upstream could be reached (502).
    Unavailable,
    /// A bug or an unexpected local failure (500).
    Internal,
}

impl ErrorKind {
    /// The HTTP status for this category: the one place where failures become status codes.
    ///
    /// Policy refusals are 400 and spent budgets 429, never 403 or 5xx, because clients such as Codex CLI
    /// retry 403 and 5xx.
    pub fn http_status(self) -> u16 {
        match self {
            ErrorKind::BadRequest | ErrorKind::Denied => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::PayloadTooLarge => 413,
            ErrorKind::QuotaExceeded => 429,
            ErrorKind::Internal => 500,
            ErrorKind::Upstream | ErrorKind::Unavailable => 502,
            ErrorKind::UpstreamTimeout => 504,
        }
    }
}
