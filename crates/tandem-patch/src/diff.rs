//! Per-hunk diffs (for accepting or rejecting each change) and unified diff text (for display and commit bodies),
//! both computed with `similar`'s Myers diff over lines.
//!
//! The ops come straight from `similar::algorithms::Capture`: `similar` 2.7's compacting pass (used by `TextDiff`
//! and `capture_diff_slices`) returned inconsistent ops for some inputs (found by this crate's property test), so
//! neither is used.

use std::fmt::Write as _;
use std::ops::Range;

use similar::algorithms::{Capture, Replace, diff_slices};
use similar::{Algorithm, DiffOp, DiffTag};

use crate::text;

/// One contiguous change between two versions of a file.
///
/// Lines keep their line endings, so applying a hunk reproduces the new text exactly, including CRLF endings and a
/// missing final newline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hunk {
    /// The first old line replaced (0-based); for a pure insertion, the line it is inserted before.
    pub old_start: usize,
    /// The first new line (0-based) in the fully applied text.
    pub new_start: usize,
    /// The old lines removed.
    pub old_lines: Vec<String>,
    /// The new lines put in their place.
    pub new_lines: Vec<String>,
}

/// The hunks that turn `old` into `new`: Myers' diff over lines, with no shared context, so changes separated by at
/// least one unchanged line are separate hunks.
pub fn hunks(old: &str, new: &str) -> Vec<Hunk> {
    let old_lines = text::lines(old);
    let new_lines = text::lines(new);
    let ops = line_ops(&old_lines, &new_lines);
    let mut out: Vec<Hunk> = Vec::new();
    for op in ops {
        let (old_range, new_range) = match op {
            DiffOp::Equal { .. } => continue,
            other => (other.old_range(), other.new_range()),
        };
        let adjacent = out.last().is_some_and(|h| {
            h.old_start + h.old_lines.len() == old_range.start
                && h.new_start + h.new_lines.len() == new_range.start
        });
        let hunk = match out.last_mut() {
            Some(last) if adjacent => last,
            _ => {
                out.push(Hunk {
                    old_start: old_range.start,
                    new_start: new_range.start,
                    old_lines: Vec::new(),
                    new_lines: Vec::new(),
                });
                let Some(last) = out.last_mut() else {
                    continue;
                };
                last
            }
        };
        hunk.old_lines
            .extend(old_lines[old_range].iter().map(|l| (*l).to_owned()));
        hunk.new_lines
            .extend(new_lines[new_range].iter().map(|l| (*l).to_owned()));
    }
    out
}

/// `original` with only the hunks whose `accepted` flag is true applied (a missing flag counts as rejected).
///
/// The hunks must come from [`hunks`] (or [`crate::Applied::hunks`]) for this `original`.
pub fn apply_selected(original: &str, hunks: &[Hunk], accepted: &[bool]) -> String {
    let lines = text::lines(original);
    let mut out = String::with_capacity(original.len());
    let mut at = 0;
    for (index, hunk) in hunks.iter().enumerate() {
        if !accepted.get(index).copied().unwrap_or(false) {
            continue;
        }
        let start = hunk.old_start.min(lines.len()).max(at);
        lines[at..start].iter().for_each(|l| out.push_str(l));
        hunk.new_lines.iter().for_each(|l| out.push_str(l));
        at = (start + hunk.old_lines.len()).min(lines.len());
    }
    lines[at..].iter().for_each(|l| out.push_str(l));
    out
}

/// A unified diff from `a/{path}` to `b/{path}` with three lines of context; empty when nothing changed.
///
/// A last line without a newline is followed by `\ No newline at end of file`, as `diff -u` writes it.
pub fn unified_diff(path: &str, old: &str, new: &str) -> String {
    if old == new {
        return String::new();
    }
    let old_lines = text::lines(old);
    let new_lines = text::lines(new);
    let mut out = format!("--- a/{path}\n+++ b/{path}\n");
    for group in similar::group_diff_ops(line_ops(&old_lines, &new_lines), 3) {
        let (Some(first), Some(last)) = (group.first(), group.last()) else {
            continue;
        };
        let old_range = first.old_range().start..last.old_range().end;
        let new_range = first.new_range().start..last.new_range().end;
        let _ = writeln!(
            out,
            "@@ -{} +{} @@",
            header_range(&old_range),
            header_range(&new_range)
        );
        for op in &group {
            let (sign, lines) = match op.tag() {
                DiffTag::Equal => (' ', &old_lines[op.old_range()]),
                DiffTag::Delete => ('-', &old_lines[op.old_range()]),
                DiffTag::Insert => ('+', &new_lines[op.new_range()]),
                DiffTag::Replace => {
                    push_lines(&mut out, '-', &old_lines[op.old_range()]);
                    ('+', &new_lines[op.new_range()])
                }
            };
            push_lines(&mut out, sign, lines);
        }
    }
    out
}

fn push_lines(out: &mut String, sign: char, lines: &[&str]) {
    for line in lines {
        out.push(sign);
        out.push_str(line);
        if !line.ends_with('\n') {
            out.push_str("\n\\ No newline at end of file\n");
        }
    }
}

/// `start,len` as a hunk header writes it: 1-based, `,len` left out when it is 1, and the line before for none.
fn header_range(range: &Range<usize>) -> String {
    match range.len() {
        0 => format!("{},0", range.start),
        1 => format!("{}", range.start + 1),
        len => format!("{},{len}", range.start + 1),
    }
}

/// Myers' line diff, uncompacted, with a delete next to an insert merged into one replace.
fn line_ops(old: &[&str], new: &[&str]) -> Vec<DiffOp> {
    let mut hook = Replace::new(Capture::new());
    match diff_slices(Algorithm::Myers, &mut hook, old, new) {
        Ok(()) => {}
        Err(never) => match never {},
    }
    hook.into_inner().into_ops()
}
