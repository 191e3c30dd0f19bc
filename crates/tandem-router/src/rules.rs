//! The rule table: ordered, named rules over [`Features`]; the first rule whose condition holds wins.
//!
//! [`RuleConfig`] and [`Condition`] are the raw, serde form (TOML-friendly, `deny_unknown_fields`) that the
//! config crate embeds; [`RuleTable::new`] checks them once into [`Rule`]s. A condition with several keys
//! holds when all of them hold; an empty condition holds for every request.

use std::collections::BTreeSet;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use tandem_protocol::ReasoningEffort;

use crate::{Error, Features, Result, TaskClass};

#[cfg(test)]
mod tests;

/// One rule as configured: `[[router.rules]] name = "..." when = { ... } tier = "..."`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    /// Unique, non-empty name; ASCII letters, digits, `-`, `_` and `.` only (it appears in headers).
    pub name: String,
    /// When the rule applies.
    pub when: Condition,
    /// The tier it sends matching requests to.
    pub tier: String,
}

/// Requested reasoning effort, ordered from least to most.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EffortLevel {
    /// `minimal` (or `none`).
    Minimal,
    /// `low`.
    Low,
    /// `medium`.
    Medium,
    /// `high` (or `xhigh`).
    High,
}

impl EffortLevel {
    /// The level of a request's effort.
    pub fn of(effort: ReasoningEffort) -> Self {
        match effort {
            ReasoningEffort::Minimal => EffortLevel::Minimal,
            ReasoningEffort::Low => EffortLevel::Low,
            ReasoningEffort::Medium => EffortLevel::Medium,
            ReasoningEffort::High => EffortLevel::High,
        }
    }

    /// The lowercase name.
    pub fn as_str(self) -> &'static str {
        match self {
            EffortLevel::Minimal => "minimal",
            EffortLevel::Low => "low",
            EffortLevel::Medium => "medium",
            EffortLevel::High => "high",
        }
    }
}

/// A rule's condition: every key that is set must hold.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// `prompt_tokens > n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt_tokens_above: Option<u64>,
    /// `last_user_tokens > n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_user_tokens_above: Option<u64>,
    /// `turns > n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub turns_above: Option<u32>,
    /// `tools > n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools_above: Option<u32>,
    /// The request asks for at least this reasoning effort (no effort never matches).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reasoning_effort_at_least: Option<EffortLevel>,
    /// `files_named >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_named_at_least: Option<u32>,
    /// `files_named <= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files_named_at_most: Option<u32>,
    /// The task class is one of these (non-empty).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_class_in: Option<Vec<TaskClass>>,
    /// `deep_verbs >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deep_verbs_at_least: Option<u32>,
    /// `live_verbs >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub live_verbs_at_least: Option<u32>,
    /// `tool_errors >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_errors_at_least: Option<u32>,
    /// `trailing_tool_error == b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trailing_tool_error: Option<bool>,
    /// `interrupts >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupts_at_least: Option<u32>,
    /// `steers >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steers_at_least: Option<u32>,
    /// `prior_failures >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prior_failures_at_least: Option<u32>,
    /// `retries >= n`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries_at_least: Option<u32>,
    /// `escalated == b`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalated: Option<bool>,
}

/// One checked test of a condition.
#[derive(Clone, Debug, PartialEq)]
enum Clause {
    PromptTokensAbove(u64),
    LastUserTokensAbove(u64),
    TurnsAbove(u32),
    ToolsAbove(u32),
    EffortAtLeast(EffortLevel),
    FilesAtLeast(u32),
    FilesAtMost(u32),
    ClassIn(Vec<TaskClass>),
    DeepVerbsAtLeast(u32),
    LiveVerbsAtLeast(u32),
    ToolErrorsAtLeast(u32),
    TrailingToolError(bool),
    InterruptsAtLeast(u32),
    SteersAtLeast(u32),
    PriorFailuresAtLeast(u32),
    RetriesAtLeast(u32),
    Escalated(bool),
}

impl Clause {
    fn holds(&self, f: &Features) -> bool {
        match self {
            Clause::PromptTokensAbove(n) => f.prompt_tokens > *n,
            Clause::LastUserTokensAbove(n) => f.last_user_tokens > *n,
            Clause::TurnsAbove(n) => f.turns > *n,
            Clause::ToolsAbove(n) => f.tools > *n,
            Clause::EffortAtLeast(level) => f
                .reasoning_effort
                .is_some_and(|e| EffortLevel::of(e) >= *level),
            Clause::FilesAtLeast(n) => f.files_named >= *n,
            Clause::FilesAtMost(n) => f.files_named <= *n,
            Clause::ClassIn(classes) => classes.contains(&f.task_class),
            Clause::DeepVerbsAtLeast(n) => f.deep_verbs >= *n,
            Clause::LiveVerbsAtLeast(n) => f.live_verbs >= *n,
            Clause::ToolErrorsAtLeast(n) => f.tool_errors >= *n,
            Clause::TrailingToolError(b) => f.trailing_tool_error == *b,
            Clause::InterruptsAtLeast(n) => f.interrupts >= *n,
            Clause::SteersAtLeast(n) => f.steers >= *n,
            Clause::PriorFailuresAtLeast(n) => f.prior_failures >= *n,
            Clause::RetriesAtLeast(n) => f.retries >= *n,
            Clause::Escalated(b) => f.escalated == *b,
        }
    }

    /// `feature=value<op>limit`, ASCII, no spaces: e.g. `files_named=4>=3`.
    fn describe(&self, f: &Features, out: &mut String) {
        // Writing to a String cannot fail.
        let _ = match self {
            Clause::PromptTokensAbove(n) => write!(out, "prompt_tokens={}>{n}", f.prompt_tokens),
            Clause::LastUserTokensAbove(n) => {
                write!(out, "last_user_tokens={}>{n}", f.last_user_tokens)
            }
            Clause::TurnsAbove(n) => write!(out, "turns={}>{n}", f.turns),
            Clause::ToolsAbove(n) => write!(out, "tools={}>{n}", f.tools),
            Clause::EffortAtLeast(level) => write!(
                out,
                "reasoning_effort={}>={}",
                f.reasoning_effort
                    .map_or("none", tandem_protocol::ReasoningEffort::as_str),
                level.as_str()
            ),
            Clause::FilesAtLeast(n) => write!(out, "files_named={}>={n}", f.files_named),
            Clause::FilesAtMost(n) => write!(out, "files_named={}<={n}", f.files_named),
            Clause::ClassIn(classes) => {
                let names: Vec<&str> = classes.iter().map(|c| c.as_str()).collect();
                write!(out, "task_class={} in[{}]", f.task_class, names.join(","))
            }
            Clause::DeepVerbsAtLeast(n) => write!(out, "deep_verbs={}>={n}", f.deep_verbs),
            Clause::LiveVerbsAtLeast(n) => write!(out, "live_verbs={}>={n}", f.live_verbs),
            Clause::ToolErrorsAtLeast(n) => write!(out, "tool_errors={}>={n}", f.tool_errors),
            Clause::TrailingToolError(b) => {
                write!(out, "trailing_tool_error={}=={b}", f.trailing_tool_error)
            }
            Clause::InterruptsAtLeast(n) => write!(out, "interrupts={}>={n}", f.interrupts),
            Clause::SteersAtLeast(n) => write!(out, "steers={}>={n}", f.steers),
            Clause::PriorFailuresAtLeast(n) => {
                write!(out, "prior_failures={}>={n}", f.prior_failures)
            }
            Clause::RetriesAtLeast(n) => write!(out, "retries={}>={n}", f.retries),
            Clause::Escalated(b) => write!(out, "escalated={}=={b}", f.escalated),
        };
    }
}

fn clauses(c: &Condition) -> Vec<Clause> {
    let mut out = Vec::new();
    let mut push = |clause: Option<Clause>| out.extend(clause);
    push(c.escalated.map(Clause::Escalated));
    push(c.prior_failures_at_least.map(Clause::PriorFailuresAtLeast));
    push(c.retries_at_least.map(Clause::RetriesAtLeast));
    push(c.trailing_tool_error.map(Clause::TrailingToolError));
    push(c.tool_errors_at_least.map(Clause::ToolErrorsAtLeast));
    push(c.interrupts_at_least.map(Clause::InterruptsAtLeast));
    push(c.steers_at_least.map(Clause::SteersAtLeast));
    push(c.prompt_tokens_above.map(Clause::PromptTokensAbove));
    push(c.last_user_tokens_above.map(Clause::LastUserTokensAbove));
    push(c.turns_above.map(Clause::TurnsAbove));
    push(c.tools_above.map(Clause::ToolsAbove));
    push(c.reasoning_effort_at_least.map(Clause::EffortAtLeast));
    push(c.task_class_in.clone().map(Clause::ClassIn));
    push(c.files_named_at_least.map(Clause::FilesAtLeast));
    push(c.files_named_at_most.map(Clause::FilesAtMost));
    push(c.deep_verbs_at_least.map(Clause::DeepVerbsAtLeast));
    push(c.live_verbs_at_least.map(Clause::LiveVerbsAtLeast));
    out
}

/// A checked rule.
#[derive(Clone, Debug, PartialEq)]
pub struct Rule {
    name: String,
    tier: String,
    clauses: Vec<Clause>,
}

impl Rule {
    /// The rule's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The tier it sends matching requests to.
    pub fn tier(&self) -> &str {
        &self.tier
    }

    /// Whether every clause holds.
    pub fn matches(&self, f: &Features) -> bool {
        self.clauses.iter().all(|c| c.holds(f))
    }

    /// The short reason for a match: `rule:<name> <clause> <clause>...` (ASCII, header-safe).
    pub fn reason(&self, f: &Features) -> String {
        let mut out = format!("rule:{}", self.name);
        for clause in &self.clauses {
            out.push(' ');
            clause.describe(f, &mut out);
        }
        out
    }

    /// Each clause with whether it holds, for explanations: `[(text, holds)]`.
    pub fn clause_report(&self, f: &Features) -> Vec<(String, bool)> {
        self.clauses
            .iter()
            .map(|c| {
                let mut text = String::new();
                c.describe(f, &mut text);
                (text, c.holds(f))
            })
            .collect()
    }
}

/// Ordered rules; the first match wins.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleTable {
    rules: Vec<Rule>,
}

impl RuleTable {
    /// Check the configured rules against the tiers the gateway knows.
    ///
    /// Errors: an empty or non-ASCII-identifier name, a duplicate name, an unknown tier (naming the rule
    /// and the tier), an empty `task_class_in`, or `files_named_at_least` above `files_named_at_most`.
    pub fn new(rules: &[RuleConfig], known_tiers: &[String]) -> Result<RuleTable> {
        let mut seen = BTreeSet::new();
        let mut checked = Vec::with_capacity(rules.len());
        for (index, rule) in rules.iter().enumerate() {
            if rule.name.is_empty() {
                return Err(Error::Config(format!(
                    "rule #{} has an empty name",
                    index + 1
                )));
            }
            if !rule
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
            {
                return Err(Error::Config(format!(
                    "rule name `{}` may only hold ASCII letters, digits, `-`, `_` and `.`",
                    rule.name.escape_default()
                )));
            }
            if !seen.insert(rule.name.as_str()) {
                return Err(Error::Config(format!(
                    "duplicate rule name `{}`",
                    rule.name
                )));
            }
            if !known_tiers.contains(&rule.tier) {
                return Err(Error::UnknownTier {
                    rule: rule.name.clone(),
                    tier: rule.tier.clone(),
                    known: known_tiers.join(", "),
                });
            }
            if rule.when.task_class_in.as_ref().is_some_and(Vec::is_empty) {
                return Err(Error::Config(format!(
                    "rule `{}` has an empty task_class_in, which never matches",
                    rule.name
                )));
            }
            if let (Some(least), Some(most)) = (
                rule.when.files_named_at_least,
                rule.when.files_named_at_most,
            ) && least > most
            {
                return Err(Error::Config(format!(
                    "rule `{}` can never match: files_named_at_least {least} > files_named_at_most {most}",
                    rule.name
                )));
            }
            checked.push(Rule {
                name: rule.name.clone(),
                tier: rule.tier.clone(),
                clauses: clauses(&rule.when),
            });
        }
        Ok(RuleTable { rules: checked })
    }

    /// The first rule that matches.
    pub fn first_match(&self, f: &Features) -> Option<&Rule> {
        self.rules.iter().find(|r| r.matches(f))
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

fn rule(name: &str, tier: &str, when: Condition) -> RuleConfig {
    RuleConfig {
        name: name.to_owned(),
        when,
        tier: tier.to_owned(),
    }
}

/// The default rule table for a `live` and a `deep` tier. In order (first match wins):
///
/// | # | name | when | tier | why |
/// | --- | --- | --- | --- | --- |
/// | 1 | `sticky-escalation` | `escalated = true` | deep | the session was already moved to deep |
/// | 2 | `failure-escalates` | `prior_failures_at_least = 1` | deep | a verifier failed after an earlier answer (cascade) |
/// | 3 | `retry-escalates` | `retries_at_least = 1` | deep | the same task came back |
/// | 4 | `tool-error-escalates` | `trailing_tool_error = true` | deep | the latest tool result failed: red build or test |
/// | 5 | `repeated-tool-errors` | `tool_errors_at_least = 3` | deep | the agent keeps hitting errors |
/// | 6 | `repeated-interrupts` | `interrupts_at_least = 2` | deep | the user keeps stopping the model |
/// | 7 | `big-context` | `prompt_tokens_above = 48000` | deep | long context degrades the fast tier (Spark: 128k window) |
/// | 8 | `long-ask` | `last_user_tokens_above = 1000` | deep | a long task description is a spec, not a spot edit |
/// | 9 | `high-effort` | `reasoning_effort_at_least = "high"` | deep | the client asked for depth |
/// | 10 | `multi-file` | `files_named_at_least = 3` | deep | edit scope spans files |
/// | 11 | `deep-verbs` | `deep_verbs_at_least = 1` | deep | design, investigate, why, migrate, refactor, race, flaky, across, ... |
/// | 12 | `deep-class` | `task_class_in = ["migration", "refactor"]` | deep | structural work |
/// | 13 | `spot-edit` | `task_class_in = ["rename", "docs", "config"]`, `files_named_at_most = 1` | live | mechanical edits in one place |
///
/// Otherwise the scorer decides when one is configured, else the live tier.
/// The tiers are named `live` and `deep`; [`default_rules_for`] takes other names.
pub fn default_rules() -> Vec<RuleConfig> {
    default_rules_for("live", "deep")
}

/// [`default_rules`] for tiers with other names.
pub fn default_rules_for(live: &str, deep: &str) -> Vec<RuleConfig> {
    vec![
        rule(
            "sticky-escalation",
            deep,
            Condition {
                escalated: Some(true),
                ..Condition::default()
            },
        ),
        rule(
            "failure-escalates",
            deep,
            Condition {
                prior_failures_at_least: Some(1),
                ..Condition::default()
            },
        ),
        rule(
            "retry-escalates",
            deep,
            Condition {
                retries_at_least: Some(1),
                ..Condition::default()
            },
        ),
        rule(
            "tool-error-escalates",
            deep,
            Condition {
                trailing_tool_error: Some(true),
                ..Condition::default()
            },
        ),
        rule(
            "repeated-tool-errors",
            deep,
            Condition {
                tool_errors_at_least: Some(3),
                ..Condition::default()
            },
        ),
        rule(
            "repeated-interrupts",
            deep,
            Condition {
                interrupts_at_least: Some(2),
                ..Condition::default()
            },
        ),
        rule(
            "big-context",
            deep,
            Condition {
                prompt_tokens_above: Some(48_000),
                ..Condition::default()
            },
        ),
        rule(
            "long-ask",
            deep,
            Condition {
                last_user_tokens_above: Some(1_000),
                ..Condition::default()
            },
        ),
        rule(
            "high-effort",
            deep,
            Condition {
                reasoning_effort_at_least: Some(EffortLevel::High),
                ..Condition::default()
            },
        ),
        rule(
            "multi-file",
            deep,
            Condition {
                files_named_at_least: Some(3),
                ..Condition::default()
            },
        ),
        rule(
            "deep-verbs",
            deep,
            Condition {
                deep_verbs_at_least: Some(1),
                ..Condition::default()
            },
        ),
        rule(
            "deep-class",
            deep,
            Condition {
                task_class_in: Some(vec![TaskClass::Migration, TaskClass::Refactor]),
                ..Condition::default()
            },
        ),
        rule(
            "spot-edit",
            live,
            Condition {
                task_class_in: Some(vec![TaskClass::Rename, TaskClass::Docs, TaskClass::Config]),
                files_named_at_most: Some(1),
                ..Condition::default()
            },
        ),
    ]
}
