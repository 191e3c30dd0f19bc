//! Applying edits to a file's text.
//!
//! Invariant: an edit whose search text matches more than one place is refused with [`Error::Ambiguous`], never
//! applied at a guess.

use crate::diff::{self, Hunk};
use crate::edit::{Edit, Op, Replace};
use crate::error::{Error, Result};
use crate::locate::{self, Level};
use crate::text;

/// The result of applying edits: the new text and the hunks that lead to it from the original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The file's new text; empty for a deleted file.
    pub text: String,
    /// The changes, in file order; `apply_selected(original, &hunks, &[true; n])` equals `text`.
    pub hunks: Vec<Hunk>,
}

/// Applies one edit to `original`, the current text of the edit's file (empty for a file that does not exist).
///
/// A [`Op::Move`] leaves the text unchanged (the caller renames); [`Op::Delete`] empties it.
pub fn apply(original: &str, edit: &Edit) -> Result<Applied> {
    let text = apply_text(original, edit)?;
    Ok(Applied {
        hunks: diff::hunks(original, &text),
        text,
    })
}

/// Applies edits for one file in order, stopping at the first that fails; the hunks go from `original` to the end
/// result.
pub fn apply_all<'a>(original: &str, edits: impl IntoIterator<Item = &'a Edit>) -> Result<Applied> {
    let mut text = original.to_owned();
    for edit in edits {
        text = apply_text(&text, edit)?;
    }
    Ok(Applied {
        hunks: diff::hunks(original, &text),
        text,
    })
}

fn apply_text(original: &str, edit: &Edit) -> Result<String> {
    let path = edit.display_path();
    match &edit.op {
        Op::Replace(replace) => replace_text(path, original, replace),
        Op::Create { content } => {
            if !original.is_empty() {
                return Err(Error::AlreadyExists { path: path.into() });
            }
            Ok(content.clone())
        }
        Op::Delete => Ok(String::new()),
        Op::Move { .. } => Ok(original.to_owned()),
        Op::Rewrite { content } => Ok(if original.is_empty() {
            content.clone()
        } else {
            text::with_eol(content, text::eol(original))
        }),
    }
}

fn replace_text(path: &str, original: &str, edit: &Replace) -> Result<String> {
    let eol = text::eol(original);
    let lines = text::lines(original);
    let contents: Vec<&str> = lines.iter().map(|l| text::content(l)).collect();
    let ends_without_newline = !original.is_empty() && !original.ends_with('\n');
    let (start, end, replacement) = if edit.search.iter().all(|l| l.trim().is_empty()) {
        // Nothing to find: insert at the hinted line, else append (aider's rule for an empty SEARCH).
        let at = edit
            .hint_line
            .map_or(lines.len(), |line| line.min(lines.len()));
        (at, at, edit.replace.clone())
    } else {
        let found = locate::locate(path, &contents, edit)?;
        let replacement = match found.level {
            Level::Indentation => locate::reindent(
                &edit.search,
                &contents[found.start..found.end],
                &edit.replace,
            ),
            Level::Exact | Level::TrailingWhitespace => edit.replace.clone(),
        };
        (found.start, found.end, replacement)
    };
    let mut out = String::with_capacity(original.len() + 64);
    lines[..start].iter().for_each(|l| out.push_str(l));
    if start == lines.len() && ends_without_newline && !replacement.is_empty() {
        // Appending after a last line that had no newline: give it one.
        out.push_str(eol);
    }
    for line in &replacement {
        out.push_str(line);
        out.push_str(eol);
    }
    lines[end..].iter().for_each(|l| out.push_str(l));
    if ends_without_newline && end == lines.len() {
        // The edit reached the end of a file without a final newline: keep it that way.
        if let Some(stripped) = out.strip_suffix(eol) {
            out.truncate(stripped.len());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
