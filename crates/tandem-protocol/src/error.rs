//! Error categories shared by all crates, so the gateway can map any failure to a status code in one place.

/// What kind of failure happened, independent of the crate that saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorKind {
    /// The client sent something malformed or unsupported (400).
    BadRequest,
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
