//! Finding where a search text sits in a file: exact first, then ignoring trailing whitespace, then ignoring
//! indentation.
//!
//! Invariant: a search that matches more than one place at the first level that matches at all is refused, never
//! guessed, unless a unified diff's line number points exactly at one of the places.

use crate::edit::Replace;
use crate::error::{Error, Result};

/// How the search text matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Level {
    /// Byte for byte (line endings aside).
    Exact,
    /// Equal after trimming trailing whitespace.
    TrailingWhitespace,
    /// Equal after trimming whitespace on both sides; the replacement is re-indented.
    Indentation,
}

impl Level {
    /// How lines are compared at this level.
    fn normalizer(self) -> fn(&str) -> &str {
        match self {
            Level::Exact => |s| s,
            Level::TrailingWhitespace => str::trim_end,
            Level::Indentation => str::trim,
        }
    }
}

/// A located search text: lines `start..end` of the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) level: Level,
}

/// Finds `edit.search` in `lines` (the file's lines without line endings).
pub(crate) fn locate(path: &str, lines: &[&str], edit: &Replace) -> Result<Found> {
    let from = anchors_end(path, lines, &edit.anchors)?;
    let search: Vec<&str> = edit.search.iter().map(String::as_str).collect();
    for level in [Level::Exact, Level::TrailingWhitespace, Level::Indentation] {
        let norm = level.normalizer();
        let mut starts = candidates(lines, &search, from, norm);
        if edit.end_of_file {
            starts.retain(|&s| s + search.len() == lines.len());
        }
        match starts.as_slice() {
            [] => continue,
            [start] => return Ok(found(*start, search.len(), level)),
            _ => {
                let hinted = edit
                    .hint_line
                    .map(|line| line.saturating_sub(1))
                    .filter(|hint| starts.contains(hint));
                if let Some(start) = hinted {
                    return Ok(found(start, search.len(), level));
                }
                return Err(Error::Ambiguous {
                    path: path.into(),
                    first_line: first_line(&edit.search).into(),
                    count: starts.len(),
                });
            }
        }
    }
    Err(Error::NotFound {
        path: path.into(),
        first_line: first_line(&edit.search).into(),
    })
}

fn found(start: usize, len: usize, level: Level) -> Found {
    Found {
        start,
        end: start + len,
        level,
    }
}

/// Every start at or after `from` where `search` matches under `norm`.
fn candidates(lines: &[&str], search: &[&str], from: usize, norm: fn(&str) -> &str) -> Vec<usize> {
    if search.is_empty() || search.len() > lines.len() {
        return Vec::new();
    }
    let last = lines.len() - search.len();
    (from..=last)
        .filter(|&start| {
            search
                .iter()
                .zip(&lines[start..])
                .all(|(s, l)| norm(s) == norm(l))
        })
        .collect()
}

/// The line after the last `@@` anchor, each searched after the previous one (trimmed comparison).
fn anchors_end(path: &str, lines: &[&str], anchors: &[String]) -> Result<usize> {
    let mut from = 0;
    for anchor in anchors {
        let want = anchor.trim();
        let Some(at) = lines
            .iter()
            .enumerate()
            .skip(from)
            .find_map(|(i, l)| (l.trim() == want).then_some(i))
        else {
            return Err(Error::AnchorNotFound {
                path: path.into(),
                anchor: anchor.as_str().into(),
            });
        };
        from = at + 1;
    }
    Ok(from)
}

/// The first non-blank line of a search text, for messages.
pub(crate) fn first_line(search: &[String]) -> &str {
    search
        .iter()
        .map(|l| l.trim())
        .find(|l| !l.is_empty())
        .unwrap_or("")
}

/// Re-indents `replace` the way the matched file lines differ from `search`.
///
/// The indentation of the first non-blank search line is compared with that of the file line it matched: a missing
/// prefix is added to every non-blank replacement line, an extra one removed, and a different one swapped.
pub(crate) fn reindent(search: &[String], matched: &[&str], replace: &[String]) -> Vec<String> {
    let Some((s, f)) = search
        .iter()
        .zip(matched)
        .find(|(s, _)| !s.trim().is_empty())
    else {
        return replace.to_vec();
    };
    let from = indent(s);
    let to = indent(f);
    replace
        .iter()
        .map(|line| {
            if line.trim().is_empty() {
                return line.clone();
            }
            if let Some(rest) = line.strip_prefix(from) {
                return format!("{to}{rest}");
            }
            // The replacement line is indented less than the search: remove what can be removed.
            if let Some(extra) = from.strip_prefix(to) {
                let own = indent(line);
                let cut = own.len().min(extra.len());
                return line[cut..].to_owned();
            }
            line.clone()
        })
        .collect()
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

#[cfg(test)]
mod tests;
