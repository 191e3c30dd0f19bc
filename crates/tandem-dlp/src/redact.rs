//! Actions on findings: block, redact to a stable placeholder, or log; and the [`Vault`] that maps
//! placeholders back to values on the local side.
//!
//! A placeholder is `[REDACTED:<rule>:<8 hex>]`, the hex being a keyed BLAKE3 hash of the value: the
//! same value always gets the same placeholder (so a conversation stays consistent turn after turn and
//! prompt caches keep working), and the value cannot be recovered from it without the key.

use std::borrow::Cow;
use std::collections::HashMap;
use std::str::FromStr;
use std::sync::Arc;

use crate::scanner::{Class, Finding, PLACEHOLDER_PREFIX, Scanner};
use crate::stream::StreamRedactor;
use crate::{Error, Result};

/// What to do with a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Refuse the request (or end the stream) naming the rule, never the value.
    Block,
    /// Replace the value with a placeholder.
    Redact,
    /// Record the finding and pass the value through.
    Log,
}

impl Action {
    /// The action's name as written in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Block => "block",
            Action::Redact => "redact",
            Action::Log => "log",
        }
    }
}

impl FromStr for Action {
    type Err = Error;

    fn from_str(s: &str) -> Result<Action> {
        match s {
            "block" => Ok(Action::Block),
            "redact" => Ok(Action::Redact),
            "log" => Ok(Action::Log),
            other => Err(Error::Rule {
                rule: other.into(),
                message: "an action is `block`, `redact` or `log`".into(),
            }),
        }
    }
}

/// Which [`Action`] applies to a finding: per rule id first, then per class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actions {
    secrets: Action,
    pii: Action,
    rules: HashMap<String, Action>,
}

impl Actions {
    /// `secrets` for secret rules, `pii` for personal data, no per-rule overrides.
    pub fn new(secrets: Action, pii: Action) -> Actions {
        Actions {
            secrets,
            pii,
            rules: HashMap::new(),
        }
    }

    /// Redact everything.
    pub fn redact_all() -> Actions {
        Actions::new(Action::Redact, Action::Redact)
    }

    /// Overrides the action for one rule id (`pii-email` and the like for personal data).
    pub fn with_rule(mut self, rule: impl Into<String>, action: Action) -> Actions {
        self.rules.insert(rule.into(), action);
        self
    }

    /// The action for `finding`.
    pub fn for_finding(&self, finding: &Finding) -> Action {
        if let Some(a) = self.rules.get(&*finding.rule) {
            return *a;
        }
        match finding.class {
            Class::Secret => self.secrets,
            Class::Pii(_) => self.pii,
        }
    }
}

/// What was found and done, for the audit record. Carries a keyed fingerprint, never the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// The rule id.
    pub rule: Arc<str>,
    /// Secret or personal data.
    pub class: Class,
    /// What was done.
    pub action: Action,
    /// The 8 hex digits of the placeholder: equal values have equal fingerprints.
    pub fingerprint: String,
}

/// Placeholders and the values they stand for, kept on the local side only.
#[derive(Clone, Debug, Default)]
pub struct Vault {
    values: HashMap<String, String>,
}

impl Vault {
    /// Whether nothing was redacted.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The number of distinct placeholders.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Adds another vault's entries.
    pub fn extend(&mut self, other: Vault) {
        self.values.extend(other.values);
    }

    /// Puts the real values back in place of known placeholders; unknown ones stay.
    pub fn restore<'a>(&self, text: &'a str) -> Cow<'a, str> {
        if self.values.is_empty() || !text.contains("[REDACTED:") {
            return Cow::Borrowed(text);
        }
        let mut out = String::with_capacity(text.len());
        let mut rest = text;
        while let Some(open) = rest.find("[REDACTED:") {
            out.push_str(&rest[..open]);
            let tail = &rest[open..];
            match tail.find(']').map(|c| &tail[..=c]) {
                Some(ph) if self.values.contains_key(ph) => {
                    out.push_str(&self.values[ph]);
                    rest = &tail[ph.len()..];
                }
                _ => {
                    out.push('[');
                    rest = &tail[1..];
                }
            }
        }
        out.push_str(rest);
        Cow::Owned(out)
    }

    fn insert(&mut self, placeholder: String, value: &str) {
        self.values.insert(placeholder, value.to_owned());
    }
}

/// A text after redaction.
#[derive(Clone, Debug)]
pub struct Redacted {
    /// The text with placeholders in place of redacted values.
    pub text: String,
    /// Every finding and its action.
    pub reports: Vec<Report>,
    /// Placeholder → value for what was redacted.
    pub vault: Vault,
}

/// Applies [`Actions`] to what a [`Scanner`] finds. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Redactor {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    scanner: Arc<Scanner>,
    actions: Actions,
    key: [u8; 32],
}

impl Redactor {
    /// A redactor; `key` keys the placeholder hashes (keep it stable to keep placeholders stable).
    pub fn new(scanner: Arc<Scanner>, actions: Actions, key: [u8; 32]) -> Redactor {
        Redactor {
            inner: Arc::new(Inner {
                scanner,
                actions,
                key,
            }),
        }
    }

    /// The scanner.
    pub fn scanner(&self) -> &Scanner {
        &self.inner.scanner
    }

    /// The actions.
    pub fn actions(&self) -> &Actions {
        &self.inner.actions
    }

    /// Redacts a whole text. A finding whose action is block fails with [`Error::Blocked`].
    pub fn redact(&self, text: &str) -> Result<Redacted> {
        let mut out = Redacted {
            text: text.to_owned(),
            reports: Vec::new(),
            vault: Vault::default(),
        };
        self.redact_in_place(&mut out.text, &mut out.reports, &mut out.vault)?;
        Ok(out)
    }

    /// Redacts `text` in place (no copy when nothing is found), adding to `reports` and `vault`.
    pub fn redact_in_place(
        &self,
        text: &mut String,
        reports: &mut Vec<Report>,
        vault: &mut Vault,
    ) -> Result<()> {
        let findings = self.inner.scanner.scan(text.as_bytes());
        if findings.is_empty() {
            return Ok(());
        }
        let replaced = self.apply(text, 0, &findings, reports, vault)?;
        *text = replaced;
        Ok(())
    }

    /// A redactor for text arriving in pieces.
    pub fn stream(&self) -> StreamRedactor {
        StreamRedactor::new(self.clone())
    }

    /// The placeholder for `value` found by `rule`.
    pub fn placeholder(&self, rule: &str, value: &str) -> String {
        format!("[REDACTED:{rule}:{}]", self.fingerprint(value))
    }

    fn fingerprint(&self, value: &str) -> String {
        let hash = blake3::keyed_hash(&self.inner.key, value.as_bytes());
        hash.as_bytes()[..4]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Applies the findings that fall in `text` (offsets relative to `base`) and returns the new
    /// text. Findings must be sorted by span start. Overlapping redacted spans merge into one
    /// placeholder.
    pub(crate) fn apply(
        &self,
        text: &str,
        base: usize,
        findings: &[Finding],
        reports: &mut Vec<Report>,
        vault: &mut Vault,
    ) -> Result<String> {
        let mut redact: Vec<(std::ops::Range<usize>, Arc<str>)> = Vec::new();
        let mut new_reports = Vec::new();
        for f in findings {
            let action = self.inner.actions.for_finding(f);
            let span = char_span(text, f.span.start - base, f.span.end - base);
            if action == Action::Block {
                return Err(Error::Blocked {
                    rule: f.rule.as_ref().into(),
                });
            }
            new_reports.push(Report {
                rule: f.rule.clone(),
                class: f.class,
                action,
                fingerprint: self.fingerprint(&text[span.clone()]),
            });
            if action == Action::Redact {
                match redact.last_mut() {
                    Some((last, _)) if span.start < last.end => last.end = last.end.max(span.end),
                    _ => redact.push((span, f.rule.clone())),
                }
            }
        }
        reports.append(&mut new_reports);
        let mut out = String::with_capacity(text.len());
        let mut at = 0;
        for (span, rule) in redact {
            out.push_str(&text[at..span.start]);
            let value = &text[span.clone()];
            let placeholder = self.placeholder(&rule, value);
            out.push_str(&placeholder);
            vault.insert(placeholder, value);
            at = span.end;
        }
        out.push_str(&text[at..]);
        Ok(out)
    }
}

/// Widens a byte range to the nearest char boundaries (rules work on bytes; user rules may cut a
/// multi-byte character).
fn char_span(text: &str, mut start: usize, mut end: usize) -> std::ops::Range<usize> {
    start = start.min(text.len());
    end = end.min(text.len());
    while !text.is_char_boundary(start) {
        start -= 1;
    }
    while !text.is_char_boundary(end) {
        end += 1;
    }
    start..end
}

/// Whether `text` holds the start of a placeholder (used by the stream to hold back a split one).
pub(crate) fn placeholder_prefix_at_end(text: &[u8]) -> Option<usize> {
    let from = text.len().saturating_sub(PLACEHOLDER_PREFIX.len() + 96);
    let open = text[from..].iter().rposition(|&b| b == b'[')? + from;
    let tail = &text[open..];
    let n = tail.len().min(PLACEHOLDER_PREFIX.len());
    (tail[..n] == PLACEHOLDER_PREFIX[..n] && !tail.contains(&b']')).then_some(open)
}
