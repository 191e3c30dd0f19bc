//! The crate's one error type.

/// Result with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why an edit could not be applied.
///
/// Each variant names the file (or `<unnamed>` when the model gave no path and the parser had no default) and, for
/// search failures, the first line of the search text, so a retry prompt can quote both.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The search text occurs nowhere in the file, even ignoring whitespace.
    #[error("{path}: search text not found (first line `{first_line}`)")]
    NotFound {
        /// The file the edit was for.
        path: Box<str>,
        /// The search text's first non-blank line.
        first_line: Box<str>,
    },
    /// The search text occurs in more than one place, so the edit is refused.
    #[error(
        "{path}: search text matches {count} places (first line `{first_line}`); add surrounding lines to make it unique"
    )]
    Ambiguous {
        /// The file the edit was for.
        path: Box<str>,
        /// The search text's first non-blank line.
        first_line: Box<str>,
        /// How many places it matches.
        count: usize,
    },
    /// An `apply_patch` `@@` context line occurs nowhere in the file.
    #[error("{path}: context line `{anchor}` not found")]
    AnchorNotFound {
        /// The file the edit was for.
        path: Box<str>,
        /// The `@@` line's text.
        anchor: Box<str>,
    },
    /// A file the edit creates already has content.
    #[error("{path}: file to be added already exists")]
    AlreadyExists {
        /// The file the edit was for.
        path: Box<str>,
    },
}
