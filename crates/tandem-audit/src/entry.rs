//! What the ledger records (request and change entries) and the exact bytes each entry becomes.
//!
//! An entry is sealed as one line of JSON: `{"i":<index>,"prev":"<hash of entry i-1>","ts":<unix ms>,"kind":…}`.
//! Those bytes are the Merkle leaf; they are stored and hashed as written, never re-encoded, so
//! verification does not depend on how a JSON library orders or spaces fields.

use serde::{Deserialize, Serialize};

/// One ledger entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Entry {
    /// A client exchange through the gateway.
    Request(RequestEntry),
    /// A change made by the agent and the decision on it.
    Change(ChangeEntry),
}

impl Entry {
    /// The stored spelling of the kind.
    pub fn kind(&self) -> &'static str {
        match self {
            Entry::Request(_) => "request",
            Entry::Change(_) => "change",
        }
    }

    /// Who the entry is about.
    pub fn principal(&self) -> &Principal {
        match self {
            Entry::Request(r) => &r.principal,
            Entry::Change(c) => &c.principal,
        }
    }
}

/// Who acted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Principal {
    /// The user (OIDC subject or the key's user).
    pub user: String,
    /// Teams (groups) the user belongs to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub teams: Vec<String>,
    /// The project, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The API key id used, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key_id: Option<String>,
}

/// Token counts of an exchange.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tokens {
    /// Prompt tokens.
    pub input: u64,
    /// Answer tokens.
    pub output: u64,
    /// Prompt tokens served from the upstream's cache.
    #[serde(default)]
    pub cached_input: u64,
    /// Reasoning tokens (part of `output`).
    #[serde(default)]
    pub reasoning: u64,
    /// Whether these are the upstream's own counts (false for estimates of cut-off streams).
    pub exact: bool,
}

/// One policy evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyDecision {
    /// `use_model` or `use_tool`.
    pub action: String,
    /// The target (`provider/model`) or tool name.
    pub resource: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The deciding policy id or the reason for a deny.
    pub reason: String,
}

/// One data loss prevention finding: never the value.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DlpFinding {
    /// `request` or `response`.
    pub dir: String,
    /// The rule id.
    pub rule: String,
    /// `secret` or `pii`.
    pub class: String,
    /// `block`, `redact` or `log`.
    pub action: String,
    /// Keyed fingerprint of the value.
    pub fingerprint: String,
}

/// A client exchange, as the gateway answered it. Holds keyed hashes of the prompt and the answer,
/// never their text.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestEntry {
    /// Tandem's request id (`x-request-id`).
    pub id: String,
    /// Unix milliseconds at which the request arrived.
    pub started_at_ms: i64,
    /// Who asked.
    pub principal: Principal,
    /// The client software (`User-Agent`), when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// The client's session key, when sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Client API: `chat`, `responses` or `messages`.
    pub api: String,
    /// Whether the answer was streamed.
    pub stream: bool,
    /// The model name the client asked for.
    pub model: String,
    /// The tier it went to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// `provider/model` that answered (or was tried last).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Why that tier and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route_reason: Option<String>,
    /// The router's task class (`rename`, `fix`, …), when the router ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// Every policy evaluation, in order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<PolicyDecision>,
    /// DLP findings by rule id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dlp: Vec<DlpFinding>,
    /// HTTP status sent to the client.
    pub status: u16,
    /// `ok`, `error` or `cancelled`.
    pub outcome: String,
    /// The error message of a failed exchange.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Token counts.
    pub tokens: Tokens,
    /// Cost in US dollars at the configured prices.
    pub cost_usd: f64,
    /// Arrival to end of answer.
    pub latency_ms: u64,
    /// Arrival to first streamed token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttft_ms: Option<u64>,
    /// Keyed BLAKE3 of the request body as received ([`crate::ContentKey`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_hash: Option<String>,
    /// Keyed BLAKE3 of the answer as sent (text, reasoning and tool calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer_hash: Option<String>,
}

/// A file a change touched.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileChange {
    /// Path relative to the repository root.
    pub path: String,
    /// SHA-256 (hex) of the file after the change; `None` when the change deleted it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Lines added.
    pub added: u64,
    /// Lines removed.
    pub removed: u64,
}

/// A quality gate run on a change.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckRun {
    /// The gate's name (`test`, `lint`, `dlp`, `licenses`…).
    pub name: String,
    /// The command run, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// Whether it passed.
    pub passed: bool,
    /// How long it ran.
    pub duration_ms: u64,
}

/// A change made by the agent, its checks, and whether and by whom it was accepted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChangeEntry {
    /// The task or edit id.
    pub task: String,
    /// The instruction, as a keyed hash (the text stays out of the ledger).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instruction_hash: Option<String>,
    /// Who asked for the change.
    pub principal: Principal,
    /// `live` or `deep`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    /// The task class of the instruction (`rename`, `fix`, …), as the pace router classifies it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<String>,
    /// The gateway requests that produced it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requests: Vec<String>,
    /// The repository (remote URL or path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
    /// Files touched.
    pub files: Vec<FileChange>,
    /// SHA-256 (hex) of the unified diff.
    pub diff_sha256: String,
    /// Checks run and their results.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckRun>,
    /// Whether the change was accepted.
    pub accepted: bool,
    /// Who accepted or rejected it (a user, or `gates` when automatic).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<String>,
    /// Why it was accepted or rejected.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The commit it landed as.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
}

/// An entry as sealed in the log: its index, the hash of the entry before it, and when it was appended.
#[derive(Clone, Debug, PartialEq, Deserialize)]
pub struct Sealed {
    /// Position in the log, from 0.
    pub i: u64,
    /// Hex RFC 6962 leaf hash of entry `i - 1` (64 zeros for the first entry).
    pub prev: String,
    /// Unix milliseconds at which it was appended.
    pub ts: i64,
    /// The entry.
    #[serde(flatten)]
    pub entry: Entry,
}

impl Sealed {
    /// Parses sealed entry bytes.
    pub fn parse(body: &[u8]) -> crate::Result<Sealed> {
        Ok(serde_json::from_slice(body)?)
    }
}

/// The sealed bytes of `entry_json` (an entry encoded as a JSON object) at index `i`.
pub(crate) fn seal(i: u64, prev: &[u8; 32], ts: i64, entry_json: &[u8], out: &mut Vec<u8>) {
    use std::io::Write;
    out.clear();
    // `entry_json` starts with `{`; the header fields go in front of its first field.
    let rest = entry_json.get(1..).unwrap_or_default();
    let _ = write!(out, "{{\"i\":{i},\"prev\":\"");
    let mut hex_buf = [0u8; 64];
    let _ = hex::encode_to_slice(prev, &mut hex_buf);
    out.extend_from_slice(&hex_buf);
    let _ = write!(out, "\",\"ts\":{ts},");
    out.extend_from_slice(rest);
}
