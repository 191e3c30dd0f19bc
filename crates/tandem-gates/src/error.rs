//! The crate's error type.

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a gate could not be set up or run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A gate command could not be started or waited for.
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The sandbox refused to build the command.
    #[error("sandbox: {0}")]
    Sandbox(#[from] tandem_sandbox::Error),
    /// A license in an allow or deny list is not an SPDX license (or `LicenseRef-…`).
    #[error("`{license}` is not an SPDX license identifier: {message}")]
    License {
        /// The list entry.
        license: String,
        /// The SPDX parser's message.
        message: String,
    },
    /// A package in an allow or deny list has an unknown ecosystem prefix.
    #[error(
        "package `{0}`: the prefix must be cargo:, npm:, pypi: or go: (or none for every ecosystem)"
    )]
    Package(String),
    /// A manifest could not be parsed.
    #[error("{path}: {message}")]
    Manifest {
        /// The manifest's path.
        path: String,
        /// The parser's message.
        message: String,
    },
}
