//! The audit side of an exchange: who asked, from which client, the policy decisions, and keyed
//! hashes of the prompt and the answer, turned into a ledger entry next to the request record.

use serde::Serialize;
use tandem_audit::{
    ContentKey, DlpFinding, Entry, PolicyDecision, Principal, RequestEntry, Tokens,
};
use tandem_protocol::{ChatResponse, Part, StreamEvent};
use tandem_store::RequestRecord;

/// One policy evaluation of a request, kept in its routing record.
#[derive(Clone, Debug, Serialize)]
pub struct PolicyCheck {
    /// `use_model` or `use_tool`.
    pub action: &'static str,
    /// `provider/model` or the tool name.
    pub resource: String,
    /// Whether it was allowed.
    pub allowed: bool,
    /// The deciding policy or the deny reason.
    pub reason: String,
}

/// What the ledger entry needs beyond the request record.
#[derive(Clone, Debug, Default)]
pub(crate) struct Trail {
    pub(crate) principal: Option<tandem_policy::Principal>,
    pub(crate) client: Option<String>,
    pub(crate) session: Option<String>,
    pub(crate) prompt_hash: Option<String>,
    pub(crate) route_reason: Option<String>,
    pub(crate) class: Option<String>,
    pub(crate) policy: Vec<PolicyCheck>,
    pub(crate) answer_hash: Option<String>,
    /// Prompt and answer text for the content store (capture on only).
    pub(crate) content: Option<tandem_audit::Content>,
}

/// Most answer text kept for the content store.
pub(crate) const MAX_CAPTURE: usize = 4 << 20;

/// The text of an answer, for the content store.
pub(crate) fn answer_text(resp: &ChatResponse) -> String {
    let mut out = String::new();
    for part in &resp.parts {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::ToolCall {
                name, arguments, ..
            } => {
                out.push_str(&format!("\n[tool call {name}] {arguments}\n"));
            }
            _ => {}
        }
    }
    out
}

/// The ledger entry of a finished exchange. Takes the trail's fields, except the captured content
/// (which goes to the content store, not the entry).
pub(crate) fn entry(record: &RequestRecord, trail: &mut Trail) -> Entry {
    let principal = trail.principal.take().map_or_else(
        || Principal {
            user: "anonymous".to_owned(),
            ..Principal::default()
        },
        |p| Principal {
            user: p.user,
            teams: p.groups,
            project: p.project,
            key_id: p.key_id,
        },
    );
    let dlp = record
        .dlp
        .as_deref()
        .and_then(|json| serde_json::from_str::<Vec<DlpFinding>>(json).ok())
        .unwrap_or_default();
    Entry::Request(RequestEntry {
        id: record.id.clone(),
        started_at_ms: record.started_at_ms,
        principal,
        client: trail.client.take(),
        session: trail.session.take(),
        api: record.api.clone(),
        stream: record.stream,
        model: record.client_model.clone(),
        tier: record.tier.clone(),
        target: (!record.provider.is_empty())
            .then(|| format!("{}/{}", record.provider, record.upstream_model)),
        route_reason: trail.route_reason.take(),
        class: trail.class.take(),
        policy: std::mem::take(&mut trail.policy)
            .into_iter()
            .map(|p| PolicyDecision {
                action: p.action.to_owned(),
                resource: p.resource,
                allowed: p.allowed,
                reason: p.reason,
            })
            .collect(),
        dlp,
        status: record.status,
        outcome: record.outcome.as_str().to_owned(),
        error: record.error.clone(),
        tokens: Tokens {
            input: record.usage.input_tokens,
            output: record.usage.output_tokens,
            cached_input: record.usage.cached_input_tokens,
            reasoning: record.usage.reasoning_tokens,
            exact: record.usage_exact,
        },
        cost_usd: record.cost,
        latency_ms: record.latency_ms,
        ttft_ms: record.ttft_ms,
        prompt_hash: trail.prompt_hash.take(),
        answer_hash: trail.answer_hash.take(),
    })
}

/// Keyed hash of an answer: text, reasoning and tool calls, each channel hashed as one stream, so
/// a streamed answer and the same answer in one piece hash alike.
pub(crate) struct AnswerHasher {
    text: blake3::Hasher,
    reasoning: blake3::Hasher,
    tools: blake3::Hasher,
    key: ContentKey,
}

impl AnswerHasher {
    pub(crate) fn new(key: &ContentKey) -> Self {
        AnswerHasher {
            text: key.hasher(),
            reasoning: key.hasher(),
            tools: key.hasher(),
            key: key.clone(),
        }
    }

    pub(crate) fn event(&mut self, event: &StreamEvent) {
        match event {
            StreamEvent::TextDelta(t) => {
                self.text.update(t.as_bytes());
            }
            StreamEvent::ReasoningDelta(t) => {
                self.reasoning.update(t.as_bytes());
            }
            StreamEvent::ToolCallStart { name, .. } => self.tool_start(name),
            StreamEvent::ToolCallDelta { arguments, .. } => {
                self.tools.update(arguments.as_bytes());
            }
            _ => {}
        }
    }

    fn tool_start(&mut self, name: &str) {
        self.tools.update(b"\0call\0");
        self.tools.update(name.as_bytes());
        self.tools.update(b"\0");
    }

    pub(crate) fn response(mut self, resp: &ChatResponse) -> String {
        for part in &resp.parts {
            match part {
                Part::Text(t) => {
                    self.text.update(t.as_bytes());
                }
                Part::Reasoning { text, .. } => {
                    self.reasoning.update(text.as_bytes());
                }
                Part::ToolCall {
                    name, arguments, ..
                } => {
                    self.tool_start(name);
                    self.tools.update(arguments.as_bytes());
                }
                Part::ToolResult { .. } | Part::Image { .. } => {}
            }
        }
        self.finish()
    }

    pub(crate) fn finish(self) -> String {
        let mut all = Vec::with_capacity(96);
        all.extend_from_slice(self.text.finalize().as_bytes());
        all.extend_from_slice(self.reasoning.finalize().as_bytes());
        all.extend_from_slice(self.tools.finalize().as_bytes());
        self.key.hash(&all)
    }
}
