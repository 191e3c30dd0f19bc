//! Redaction of text that arrives in pieces (streamed answers), correct however the text is split.
//!
//! The stream keeps the text it has not released yet and asks the scanner's lazy DFA, for each
//! position from the last safe point on, whether any rule's regex could still match starting there
//! given the bytes seen so far. Everything before the first such position is final: it is scanned,
//! redacted and released; the rest is held until more text arrives or the stream ends. So the hold is
//! as short as possible (usually the current word) and the output equals
//! [`crate::Redactor::redact`] of the whole text. A finding whose action is block fails the stream
//! (closed), and so does a hold that grows beyond its bound.

use crate::redact::{Redactor, Report, Vault, placeholder_prefix_at_end};
use crate::{Error, Result};

/// Bytes of released text kept in front of the held text, so look-behind (`\b`) and matches that
/// started before the release point read the same bytes as in the whole text.
const CONTEXT: usize = 1024;

/// Redacts a stream of text pieces; see the module docs.
pub struct StreamRedactor {
    redactor: Redactor,
    /// Context (already released) followed by held text.
    buf: String,
    /// Bytes of `buf` already released.
    released: usize,
    /// Positions of `buf` below this are known not to start a match.
    dead_until: usize,
    reports: Vec<Report>,
    vault: Vault,
    failed: bool,
}

impl std::fmt::Debug for StreamRedactor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamRedactor")
            .field("held", &(self.buf.len() - self.released))
            .field("reports", &self.reports.len())
            .finish_non_exhaustive()
    }
}

impl StreamRedactor {
    pub(crate) fn new(redactor: Redactor) -> StreamRedactor {
        StreamRedactor {
            redactor,
            buf: String::new(),
            released: 0,
            dead_until: 0,
            reports: Vec::new(),
            vault: Vault::default(),
            failed: false,
        }
    }

    /// The largest number of bytes a stream holds back before it fails closed.
    pub fn hold_limit(&self) -> usize {
        2 * self.redactor.scanner().max_window + 64 * 1024
    }

    /// Adds a piece and returns the text that is now safe to release (possibly empty).
    pub fn push(&mut self, piece: &str) -> Result<String> {
        if self.failed {
            return Err(Error::Overflow {
                limit: self.hold_limit(),
            });
        }
        self.buf.push_str(piece);
        let safe = self.safe_point();
        let out = self.release(safe, false);
        if out.is_ok() && self.buf.len() - self.released > self.hold_limit() {
            self.failed = true;
            return Err(Error::Overflow {
                limit: self.hold_limit(),
            });
        }
        out
    }

    /// Ends the stream and returns the rest of the text, redacted.
    pub fn finish(&mut self) -> Result<String> {
        if self.failed {
            return Err(Error::Overflow {
                limit: self.hold_limit(),
            });
        }
        let end = self.buf.len();
        self.release(end, true)
    }

    /// The number of bytes held back now.
    pub fn held(&self) -> usize {
        self.buf.len() - self.released
    }

    /// Takes the findings reported so far.
    pub fn take_reports(&mut self) -> Vec<Report> {
        std::mem::take(&mut self.reports)
    }

    /// Takes the placeholders produced so far.
    pub fn take_vault(&mut self) -> Vault {
        std::mem::take(&mut self.vault)
    }

    /// The first position from which a match could still start.
    fn safe_point(&mut self) -> usize {
        let scanner = self.redactor.scanner();
        let hay = self.buf.as_bytes();
        let mut p = self.dead_until.max(self.released);
        if p < hay.len() {
            scanner.with_live_cache(|cache| {
                while p < hay.len() && !scanner.could_match_from(cache, hay, p) {
                    p += 1;
                }
            });
        }
        self.dead_until = p;
        p
    }

    /// Releases `buf[released..upto]` (moved back so no finding is cut), redacted.
    fn release(&mut self, upto: usize, last: bool) -> Result<String> {
        // Nothing can start before `released` (those positions were dead when released), so only
        // the held text is scanned; the context before it serves look-behind.
        let findings = self
            .redactor
            .scanner()
            .scan_from(self.buf.as_bytes(), self.released);
        let mut upto = upto;
        if !last {
            // Never cut a finding in two: hold it whole, from the start of its match (the rescan
            // only sees matches that start in the held text). That includes a secret that starts
            // exactly at the cut after a match begun before it (`AWS_SECRET=` then the key): its
            // keyword would be released, and the rescan would no longer find the match.
            loop {
                let cut = findings
                    .iter()
                    .filter(|f| f.matched.start.min(f.span.start) < upto && f.span.end > upto)
                    .map(|f| f.matched.start.min(f.span.start))
                    .min();
                match cut {
                    Some(start) => upto = start,
                    None => break,
                }
            }
            while !self.buf.is_char_boundary(upto) {
                upto -= 1;
            }
        }
        if upto <= self.released {
            return Ok(String::new());
        }
        let mine: Vec<_> = findings
            .into_iter()
            .filter(|f| f.span.start >= self.released && f.span.start < upto)
            .collect();
        let region = &self.buf[self.released..upto];
        let out = match self.redactor.apply(
            region,
            self.released,
            &mine,
            &mut self.reports,
            &mut self.vault,
        ) {
            Ok(out) => out,
            Err(e) => {
                self.failed = true;
                return Err(e);
            }
        };
        self.released = upto;
        // Keep some released context; drop the rest.
        let keep_from = self.released.saturating_sub(CONTEXT);
        let keep_from = (0..=keep_from)
            .rev()
            .find(|&i| self.buf.is_char_boundary(i))
            .unwrap_or(0);
        if keep_from > 0 {
            self.buf.drain(..keep_from);
            self.released -= keep_from;
            self.dead_until -= keep_from.min(self.dead_until);
        }
        Ok(out)
    }
}

/// Puts real values back in place of placeholders in text arriving in pieces, holding back only a
/// possible placeholder split at the end of a piece.
#[derive(Debug)]
pub struct StreamRestorer {
    vault: Vault,
    held: String,
}

impl StreamRestorer {
    /// A restorer for `vault`'s placeholders.
    pub fn new(vault: Vault) -> StreamRestorer {
        StreamRestorer {
            vault,
            held: String::new(),
        }
    }

    /// Adds a piece; returns what can be released.
    pub fn push(&mut self, piece: &str) -> String {
        self.held.push_str(piece);
        let cut = placeholder_prefix_at_end(self.held.as_bytes()).unwrap_or(self.held.len());
        let ready: String = self.held.drain(..cut).collect();
        self.vault.restore(&ready).into_owned()
    }

    /// Ends the stream.
    pub fn finish(&mut self) -> String {
        let rest = std::mem::take(&mut self.held);
        self.vault.restore(&rest).into_owned()
    }
}
