//! The edit vocabulary shared by the parser and the applier.

/// One complete edit read from a model's output, for one file.
///
/// Edits for the same file are meant to be applied in the order the parser yields them: a [`Op::Move`] comes before
/// the content edits of the moved file, which carry the new path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The file, relative as the model wrote it; `None` when the model named none and the parser had no default.
    pub path: Option<String>,
    /// What to do to the file.
    pub op: Op,
    /// The format the edit was written in.
    pub format: Format,
    /// The 1-based line of the model's output where the edit starts.
    pub line: usize,
}

impl Edit {
    /// The path for messages: the edit's path or `<unnamed>`.
    pub fn display_path(&self) -> &str {
        self.path.as_deref().unwrap_or("<unnamed>")
    }
}

/// What an edit does to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// Replace one run of lines (search/replace blocks, unified diff hunks, `apply_patch` chunks).
    Replace(Replace),
    /// Create the file with this content (`*** Add File:`).
    Create {
        /// The new file's text.
        content: String,
    },
    /// Delete the file (`*** Delete File:`, or a unified diff to `/dev/null`).
    Delete,
    /// Rename the file to `to` (`*** Move to:`); its content edits follow under the new path.
    Move {
        /// The new path.
        to: String,
    },
    /// Replace the whole file with this text (a fenced code block holding the full new file).
    Rewrite {
        /// The new file's text.
        content: String,
    },
}

/// A line-based replacement and the hints that help locate it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Replace {
    /// The lines to find (context and removed lines), without line endings.
    pub search: Vec<String>,
    /// The lines to put in their place (context and added lines), without line endings.
    pub replace: Vec<String>,
    /// `apply_patch` `@@` context lines, outermost first: the search text is looked for after the last of them.
    pub anchors: Vec<String>,
    /// A unified diff's old start line (1-based); only a hint, since models count lines badly.
    pub hint_line: Option<usize>,
    /// The chunk must end at the end of the file (`*** End of File`).
    pub end_of_file: bool,
}

/// The edit formats the parser reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Aider-style `<<<<<<< SEARCH` / `=======` / `>>>>>>> REPLACE` blocks.
    SearchReplace,
    /// `--- a/x` / `+++ b/x` / `@@ -l,n +l,n @@` hunks.
    Unified,
    /// Codex's `*** Begin Patch` … `*** End Patch` envelope.
    ApplyPatch,
    /// A fenced code block holding the whole new file.
    WholeFile,
}
