//! Speculative drafts for whole-file rewrites: the original file is the draft.
//!
//! A rewrite copies most of the original verbatim, so the best guess for what comes next is the text that follows,
//! in the original, the place where the output so far lines up with it. [`Drafter`] keeps a pointer into the
//! original that only moves forward (the "aligned" policy), so repeated lines do not send it back to the top.

/// Proposes continuations of a rewrite of one original file.
#[derive(Debug, Clone)]
pub struct Drafter<'a> {
    original: &'a str,
    cursor: usize,
}

/// Suffix lengths of the output tried when lining it up with the original, longest first.
const PROBES: [usize; 5] = [64, 32, 16, 8, 4];

impl<'a> Drafter<'a> {
    /// A drafter for rewrites of `original`.
    pub fn new(original: &'a str) -> Self {
        Drafter {
            original,
            cursor: 0,
        }
    }

    /// Up to `max_bytes` of the original that should follow `output` (the rewrite so far); empty when the output's
    /// end occurs nowhere in the original.
    pub fn propose(&mut self, output: &str, max_bytes: usize) -> &'a str {
        let Some(from) = self.align(output) else {
            return "";
        };
        self.cursor = from;
        let mut end = (from + max_bytes).min(self.original.len());
        while !self.original.is_char_boundary(end) {
            end -= 1;
        }
        &self.original[from..end]
    }

    /// Where in the original the output's end lines up: the end of the first occurrence of its longest probed suffix
    /// at or after the cursor, else of the last occurrence before it.
    fn align(&self, output: &str) -> Option<usize> {
        if output.is_empty() {
            return Some(0);
        }
        let mut tried = usize::MAX;
        for probe in PROBES {
            let mut start = output.len().saturating_sub(probe);
            while !output.is_char_boundary(start) {
                start += 1;
            }
            if start == tried {
                continue;
            }
            tried = start;
            let suffix = &output[start..];
            let ends: Vec<usize> = self
                .original
                .match_indices(suffix)
                .map(|(at, s)| at + s.len())
                .collect();
            if let Some(end) = ends.iter().find(|&&e| e >= self.cursor).or(ends.last()) {
                return Some(*end);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests;
