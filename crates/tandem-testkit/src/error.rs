//! The crate's error type.

use std::net::SocketAddr;

/// Errors of the test upstream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The listening socket could not be bound.
    #[error("failed to bind {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    /// Reading a request body failed.
    #[error("failed to read the request body")]
    ReadBody(#[source] hyper::Error),
    /// A scripted `reset_after` fault; returned to hyper to abort the connection.
    #[error("scripted connection reset after {after} chunks")]
    ScriptedReset { after: u32 },
}

/// Result alias of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
