//! The crate's error type, and [`ApiError`]: the one place where failures become HTTP responses.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use tandem_protocol::ErrorKind;

use crate::format::ClientFormat;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the gateway could not start or stop cleanly.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The embedded store could not be opened.
    #[error(transparent)]
    Store(#[from] tandem_store::Error),
    /// A provider could not be built.
    #[error(transparent)]
    Provider(#[from] tandem_providers::Error),
    /// A local model could not be loaded.
    #[error("local model: {0}")]
    Local(#[from] tandem_local::Error),
    /// The pipeline could not be assembled or flushed.
    #[error(transparent)]
    Core(#[from] tandem_core::Error),
    /// The audit ledger could not be opened.
    #[error("audit ledger: {0}")]
    Audit(#[from] tandem_audit::Error),
    /// The authenticator could not be built.
    #[error(transparent)]
    Auth(tandem_auth::Error),
    /// The shared budget counters (Redis) could not be reached.
    #[error("shared budget counters: {0}")]
    Counters(#[from] tandem_counters::Error),
    /// Budgets or limits are invalid.
    #[error("budgets: {0}")]
    Budget(tandem_budget::Error),
    /// Part of the configuration could not be prepared (the DLP key file).
    #[error(transparent)]
    Config(tandem_config::Error),
    /// The HTTP server failed.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
}

/// An error answered to a client, in the shape of the client's API.
#[derive(Debug)]
pub(crate) struct ApiError {
    pub(crate) kind: ErrorKind,
    pub(crate) message: String,
    pub(crate) request_id: String,
    pub(crate) body: fn(ErrorKind, &str) -> serde_json::Value,
}

impl ApiError {
    pub(crate) fn new<F: ClientFormat>(kind: ErrorKind, message: String, request_id: &str) -> Self {
        ApiError {
            kind,
            message,
            request_id: request_id.to_owned(),
            body: F::error_body,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.kind.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        // Internal details go to the log; the client gets the request id to quote.
        let message = if self.kind == ErrorKind::Internal {
            tracing::error!(request_id = %self.request_id, error = %self.message, "internal error");
            format!("internal error (request id {})", self.request_id)
        } else {
            tracing::debug!(request_id = %self.request_id, status = status.as_u16(), error = %self.message, "request failed");
            self.message
        };
        let mut response = (status, axum::Json((self.body)(self.kind, &message))).into_response();
        if let Ok(value) = HeaderValue::from_str(&self.request_id) {
            response.headers_mut().insert("x-request-id", value);
        }
        response
    }
}
