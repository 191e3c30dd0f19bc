//! Prompt-lookup drafting: guess the next tokens by finding the end of the text so far in a reference.
//!
//! An edit mostly copies the file under edit. The drafter finds the longest recent n-gram (the last
//! `ngram_max` down to `ngram_min` tokens) in the reference (the predicted output, else the prompt) and, failing
//! that, earlier in the answer, and proposes the tokens that followed it there. A file is copied top to
//! bottom, so of several matches in the reference it takes the first one at or after the place the last
//! accepted draft came from (an anchor), not the last one in the file. After a fully accepted draft it keeps
//! a cursor into the same place, so a long copied stretch costs no search at all. The draft length `k`
//! adapts: it doubles while drafts are accepted in full and falls back after a miss. After a miss the answer
//! has left the reference (an edit, or a change of layout), so the next draft waits for the longest n-gram
//! to match again: on a CPU a verify pass of k tokens costs about half a step per token, and a draft made
//! from a short, chance match is mostly wasted.

/// How drafts are made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LookupSettings {
    /// Longest n-gram matched.
    pub ngram_max: usize,
    /// Shortest n-gram matched; shorter matches are too often wrong to be worth a verify pass.
    pub ngram_min: usize,
    /// First draft length, and the floor it returns to after a miss.
    pub k_min: usize,
    /// Longest draft.
    pub k_max: usize,
}

impl Default for LookupSettings {
    fn default() -> Self {
        // Tuned on the edit set on 2 CPU cores (bench/results/local-*.md): a CPU verify pass of 16 tokens
        // costs several single-token steps, so long drafts only pay while they are being accepted.
        LookupSettings {
            ngram_max: 4,
            ngram_min: 3,
            k_min: 8,
            k_max: 24,
        }
    }
}

/// Where the last draft came from, to continue from there after it was accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cursor {
    Reference(usize),
    Context(usize),
}

/// Makes drafts for one answer.
#[derive(Debug)]
pub struct Drafter {
    settings: LookupSettings,
    k: usize,
    cursor: Option<Cursor>,
    /// Where in the reference the copy has got to: just after the last accepted reference token.
    anchor: usize,
    /// Length of the last draft, to place the anchor after a miss.
    last_len: usize,
    /// The last draft missed: only the longest n-gram may start the next one.
    missed: bool,
}

impl Drafter {
    /// A drafter for a new answer.
    pub fn new(settings: LookupSettings) -> Self {
        let k_min = settings.k_min.max(1);
        let settings = LookupSettings {
            k_min,
            k_max: settings.k_max.max(k_min),
            ngram_min: settings.ngram_min.max(1),
            ngram_max: settings.ngram_max.max(settings.ngram_min.max(1)),
        };
        Drafter {
            settings,
            k: k_min,
            cursor: None,
            anchor: 0,
            last_len: 0,
            missed: false,
        }
    }

    /// Up to `limit` tokens expected to follow `context`, from `reference` or from `context` itself.
    pub fn draft(&mut self, context: &[u32], reference: &[u32], limit: usize) -> Vec<u32> {
        let draft = self.draft_inner(context, reference, limit);
        self.last_len = draft.len();
        draft
    }

    fn draft_inner(&mut self, context: &[u32], reference: &[u32], limit: usize) -> Vec<u32> {
        let k = self.k.min(limit);
        if k == 0 || context.is_empty() {
            return Vec::new();
        }
        // Continue a stretch that was accepted in full. The verify pass adds one token of its own after
        // an accepted draft, so the context's end lines up with the cursor or one token past it.
        if let Some(cursor) = self.cursor {
            let (source, at, own) = match cursor {
                Cursor::Reference(at) => (reference, at, false),
                Cursor::Context(at) => (context, at, true),
            };
            let n = self.settings.ngram_min.min(context.len());
            let tail = &context[context.len() - n..];
            let aligned = [at + 1, at].into_iter().find(|&at| {
                at >= n
                    && at < source.len()
                    && (!own || at < context.len() - n)
                    && source[at - n..at] == *tail
            });
            if let Some(at) = aligned {
                let end = (at + k).min(source.len());
                self.cursor = Some(if own {
                    Cursor::Context(end)
                } else {
                    Cursor::Reference(end)
                });
                return source[at..end].to_vec();
            }
        }
        self.cursor = None;
        let max_n = self.settings.ngram_max.min(context.len());
        let min_n = if self.missed {
            self.settings.ngram_max
        } else {
            self.settings.ngram_min
        };
        for n in (min_n..=max_n).rev() {
            let tail = &context[context.len() - n..];
            if let Some(at) = find_near(reference, tail, self.anchor) {
                let end = (at + k).min(reference.len());
                self.cursor = Some(Cursor::Reference(end));
                return reference[at..end].to_vec();
            }
            // Earlier in the context, not overlapping the tail itself.
            if let Some(at) = find_after(context, tail, context.len() - n) {
                let end = (at + k).min(context.len());
                self.cursor = Some(Cursor::Context(end));
                return context[at..end].to_vec();
            }
        }
        Vec::new()
    }

    /// Report how many of the last draft's `drafted` tokens were accepted.
    pub fn feedback(&mut self, drafted: usize, accepted: usize) {
        if drafted == 0 {
            return;
        }
        if let Some(Cursor::Reference(end)) = self.cursor {
            self.anchor = end - self.last_len.saturating_sub(accepted);
        }
        self.missed = accepted < drafted;
        if accepted == drafted {
            self.k = (self.k * 2).min(self.settings.k_max);
        } else {
            self.k = self.settings.k_min;
            // The stretch diverged: search afresh next time.
            self.cursor = None;
        }
    }

    /// The current draft length.
    pub fn k(&self) -> usize {
        self.k
    }
}

/// The index just after the first occurrence of `pattern` in `haystack` that ends at or after `anchor` and
/// has a token after it; else just after the last one before `anchor`.
fn find_near(haystack: &[u32], pattern: &[u32], anchor: usize) -> Option<usize> {
    let n = pattern.len();
    if n == 0 || haystack.len() <= n {
        return None;
    }
    let matches = |s: usize| haystack[s..s + n] == *pattern;
    let first = anchor.saturating_sub(n);
    (first..haystack.len() - n)
        .find(|&s| matches(s))
        .or_else(|| {
            (0..first.min(haystack.len() - n))
                .rev()
                .find(|&s| matches(s))
        })
        .map(|s| s + n)
}

/// The index just after the last occurrence of `pattern` in `haystack[..limit]` that has at least one
/// token after it.
fn find_after(haystack: &[u32], pattern: &[u32], limit: usize) -> Option<usize> {
    let n = pattern.len();
    let limit = limit.min(haystack.len());
    if n == 0 || limit < n {
        return None;
    }
    // Most recent first: edits move forward, and the latest copy is the likeliest to continue.
    (0..=limit - n)
        .rev()
        .find(|&s| s + n < haystack.len() && haystack[s..s + n] == *pattern)
        .map(|s| s + n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drafts_the_continuation_from_the_reference() {
        let mut d = Drafter::new(LookupSettings {
            ngram_max: 3,
            ngram_min: 2,
            k_min: 3,
            k_max: 8,
        });
        let reference = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        assert_eq!(d.draft(&[9, 9, 3, 4], &reference, 10), vec![5, 6, 7]);
        d.feedback(3, 3);
        assert_eq!(d.k(), 6);
        // The cursor continues without a search.
        assert_eq!(
            d.draft(&[9, 9, 3, 4, 5, 6, 7, 8], &reference, 10),
            vec![9, 10, 11, 12]
        );
    }

    #[test]
    fn a_miss_resets_k_and_the_cursor() {
        let mut d = Drafter::new(LookupSettings {
            ngram_max: 2,
            ngram_min: 2,
            k_min: 2,
            k_max: 8,
        });
        let reference = [1, 2, 3, 4, 5, 6];
        assert_eq!(d.draft(&[1, 2], &reference, 10), vec![3, 4]);
        d.feedback(2, 2);
        assert_eq!(d.k(), 4);
        d.feedback(4, 1);
        assert_eq!(d.k(), 2);
        assert_eq!(d.draft(&[7, 7], &reference, 10), Vec::<u32>::new());
    }

    #[test]
    fn falls_back_to_earlier_context_and_respects_the_limit() {
        let mut d = Drafter::new(LookupSettings {
            ngram_min: 2,
            ..LookupSettings::default()
        });
        let ctx = [5, 6, 7, 8, 9, 5, 6];
        assert_eq!(d.draft(&ctx, &[], 2), vec![7, 8]);
        assert_eq!(d.draft(&ctx, &[], 0), Vec::<u32>::new());
        // No match: no draft.
        assert!(
            Drafter::new(LookupSettings::default())
                .draft(&[1, 2, 3], &[4, 5], 8)
                .is_empty()
        );
    }

    #[test]
    fn takes_the_match_after_the_anchor() {
        let mut d = Drafter::new(LookupSettings {
            ngram_max: 2,
            ngram_min: 2,
            k_min: 2,
            k_max: 4,
        });
        // `5 6` occurs three times; the copy has got past the first.
        let reference = [5, 6, 1, 1, 9, 5, 6, 2, 2, 9, 5, 6, 3, 3];
        assert_eq!(d.draft(&[5, 6], &reference, 8), vec![1, 1]);
        d.feedback(2, 2);
        // After a miss at the second occurrence's region, the anchor stays there.
        assert_eq!(
            d.draft(&[0, 5, 6, 1, 1, 9], &reference, 8),
            vec![5, 6, 2, 2]
        );
        d.feedback(4, 1);
        assert_eq!(d.draft(&[7, 7, 5, 6], &reference, 8), vec![2, 2]);
    }

    #[test]
    fn prefers_the_longest_ngram() {
        let mut d = Drafter::new(LookupSettings {
            ngram_max: 3,
            ngram_min: 1,
            k_min: 2,
            k_max: 2,
        });
        // `2 3` occurs twice; only the second is preceded by 1.
        let reference = [1, 2, 3, 40, 41, 9, 2, 3, 50, 51];
        assert_eq!(d.draft(&[1, 2, 3], &reference, 8), vec![40, 41]);
    }
}
