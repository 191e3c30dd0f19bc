//! Data loss prevention: find secrets and personal data in text, and redact them in whole texts and in
//! streams split at any point.
//!
//! [`Rules`] are read from gitleaks' TOML rule format (so a company's existing rule files work) and the
//! project's own default set ([`Rules::builtin`]); [`PiiConfig`] adds checksum-backed detectors for
//! emails, phone numbers, payment cards (Luhn) and IBANs (mod-97). A [`Scanner`] compiles them once:
//! one Aho-Corasick pass over all rule keywords, then each triggered rule's byte regex (Unicode off)
//! only in a window around its keyword hits, then the secret group, entropy and allowlists.
//!
//! A [`Redactor`] applies [`Actions`] (block, redact to a stable placeholder, or log) to a text, and
//! [`StreamRedactor`] does the same for text that arrives in pieces: it holds back only the bytes from
//! which a rule could still match, so its output equals the redaction of the whole text however the
//! text is split. A [`Vault`] maps placeholders back to values on the local side.
//!
//! Architecture invariant: sans-IO. Bytes and text in, findings and text out; no tokio, no files, no
//! clock.

mod entropy;
mod error;
mod pii;
mod redact;
mod rules;
mod scanner;
mod stream;

pub use error::{Error, Result};
pub use pii::{PiiConfig, PiiKind};
pub use redact::{Action, Actions, Redacted, Redactor, Report, Vault};
pub use rules::Rules;
pub use scanner::{Class, Finding, Scanner};
pub use stream::{StreamRedactor, StreamRestorer};
