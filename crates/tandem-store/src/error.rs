//! The crate's error type.

use std::path::PathBuf;

/// Result alias for this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why the store failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The state directory could not be created.
    #[error("cannot create state directory {path}: {source}")]
    Dir {
        /// The directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A batch of records could not be written.
    #[error("writing records failed: {0}")]
    Write(String),
    /// The writer thread is gone (it failed earlier, or the store is shutting down).
    #[error("the store writer has stopped")]
    WriterGone,
    /// PostgreSQL refused an operation or could not be reached.
    #[error("postgres: {0}")]
    Postgres(String),
    /// The database was migrated by a newer Tandem.
    #[error(
        "the database schema is at version {found}, newer than this build knows ({known}); upgrade tandem"
    )]
    SchemaTooNew {
        /// The database's version.
        found: i64,
        /// The newest version this build knows.
        known: i64,
    },
    /// The database needs migrations this process was told not to apply.
    #[error(
        "the database schema is at version {found}, this build needs {known}: run `tandem migrate`"
    )]
    SchemaBehind {
        /// The database's version.
        found: i64,
        /// The version this build needs.
        known: i64,
    },
}

impl From<tokio_postgres::Error> for Error {
    fn from(err: tokio_postgres::Error) -> Self {
        // The driver's message and, when the server sent one, its own (never the connection string).
        match err.as_db_error() {
            Some(db) => Error::Postgres(format!("{err}: {}", db.message())),
            None => Error::Postgres(err.to_string()),
        }
    }
}
