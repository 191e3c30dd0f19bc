//! [`Policy`]: a Cedar policy set validated against [`crate::SCHEMA`], and its evaluation.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    AuthorizationError, Authorizer, Effect, PolicyId, PolicySet, Response, Schema, ValidationMode,
    Validator,
};
use miette::Diagnostic;

use crate::query::{Built, Names, build, resource_words};
use crate::{Decision, Error, Query, Result, SCHEMA};

/// A loaded policy: every policy has a unique `@id`, and all of them type-check against
/// [`crate::SCHEMA`] in strict mode.
///
/// Cloning is cheap (an `Arc`), so a server can hold the last good policy and swap in a new one only
/// once it parsed.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    source_name: String,
    set: PolicySet,
    names: Names,
    authorizer: Authorizer,
    /// The policies in file order.
    entries: Vec<Entry>,
    /// Index into `entries` by `@id`.
    index: HashMap<String, usize>,
    warnings: Vec<String>,
}

struct Entry {
    id: String,
    effect: Effect,
    line: usize,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("source_name", &self.inner.source_name)
            .field("ids", &self.ids())
            .finish_non_exhaustive()
    }
}

/// 1-based `(line, column)` of a byte offset in `text`; the column counts characters.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let col = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, col)
}

/// A Cedar diagnostic as `source:line:col: message (help: ...)`, located by its first label, with the
/// line and column for sorting (0 when it has no location).
fn diagnostic_line(
    source_name: &str,
    text: &str,
    policy: Option<&str>,
    d: &dyn Diagnostic,
) -> (usize, usize, String) {
    let message = d.to_string();
    let prefix = match policy {
        Some(id) if !message.contains(&format!("policy `{id}`")) => format!("policy `{id}`: "),
        _ => String::new(),
    };
    let offset = d
        .labels()
        .and_then(|mut labels| labels.next())
        .map(|label| label.offset());
    let (line, col, mut out) = match offset {
        Some(offset) => {
            let (line, col) = line_col(text, offset);
            let out = format!("{source_name}:{line}:{col}: {prefix}{message}");
            (line, col, out)
        }
        None => (0, 0, format!("{source_name}: {prefix}{message}")),
    };
    if let Some(help) = d.help() {
        let _ = write!(out, " (help: {help})");
    }
    (line, col, out)
}

/// The lines of `diagnostics`, in file order.
fn sorted(mut diagnostics: Vec<(usize, usize, String)>) -> Vec<String> {
    diagnostics.sort();
    diagnostics.dedup();
    diagnostics.into_iter().map(|(_, _, line)| line).collect()
}

/// Where `needle` (a policy's own text) starts in `text`, searching from `from`.
fn find_from(text: &str, from: usize, needle: &str) -> usize {
    text.get(from..)
        .and_then(|rest| rest.find(needle))
        .map_or(from, |at| from + at)
}

fn parse_schema() -> Result<Schema> {
    Schema::from_cedarschema_str(SCHEMA)
        .map(|(schema, _warnings)| schema)
        .map_err(|e| Error::Schema(e.to_string()))
}

impl Policy {
    /// Parses `text` (Cedar policies) and validates it against [`crate::SCHEMA`] in strict mode.
    ///
    /// `source_name` (usually the file path) prefixes every message. Refuses: syntax errors
    /// ([`Error::Parse`]), templates and schema violations ([`Error::Invalid`]), a policy without an
    /// `@id("...")` annotation ([`Error::MissingId`]) and two policies with one id
    /// ([`Error::DuplicateId`]).
    pub fn parse(text: &str, source_name: &str) -> Result<Policy> {
        let schema = parse_schema()?;
        let names = Names::new()?;
        let parsed = PolicySet::from_str(text).map_err(|errors| Error::Parse {
            source_name: source_name.to_owned(),
            diagnostics: sorted(
                errors
                    .iter()
                    .map(|e| diagnostic_line(source_name, text, None, e))
                    .collect(),
            ),
        })?;
        if let Some(template) = parsed.templates().next() {
            let (line, col) = line_col(text, find_from(text, 0, &template.to_string()));
            return Err(Error::Invalid {
                source_name: source_name.to_owned(),
                diagnostics: vec![format!(
                    "{source_name}:{line}:{col}: templates (policies with `?principal` or `?resource` slots) are not supported"
                )],
            });
        }

        // Cedar numbers the policies `policy0`, `policy1`, ... in file order; each one's text is a
        // slice of the input, which gives its position.
        let mut policies: Vec<(usize, &cedar_policy::Policy)> = parsed
            .policies()
            .map(|p| {
                let n = AsRef::<str>::as_ref(p.id())
                    .strip_prefix("policy")
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(usize::MAX);
                (n, p)
            })
            .collect();
        policies.sort_by_key(|(n, _)| *n);

        let mut cursor = 0;
        let mut set = PolicySet::new();
        let mut entries: Vec<Entry> = Vec::with_capacity(policies.len());
        let mut index = HashMap::with_capacity(policies.len());
        for (_, policy) in policies {
            let own_text = policy.to_string();
            let start = find_from(text, cursor, &own_text);
            cursor = start + own_text.len().min(text.len().saturating_sub(start));
            let (line, col) = line_col(text, start);
            let id = match policy.annotation("id").map(str::trim) {
                Some(id) if !id.is_empty() => id.to_owned(),
                _ => {
                    return Err(Error::MissingId {
                        source_name: source_name.to_owned(),
                        line,
                        col,
                    });
                }
            };
            if let Some(&first) = index.get(&id) {
                let first_line = entries.get(first).map_or(0, |e: &Entry| e.line);
                return Err(Error::DuplicateId {
                    source_name: source_name.to_owned(),
                    id,
                    line,
                    col,
                    first_line,
                });
            }
            set.add(policy.new_id(PolicyId::new(&id)))
                .map_err(|e| Error::Invalid {
                    source_name: source_name.to_owned(),
                    diagnostics: vec![format!("{source_name}:{line}:{col}: {e}")],
                })?;
            index.insert(id.clone(), entries.len());
            entries.push(Entry {
                id,
                effect: policy.effect(),
                line,
            });
        }

        let validator = Validator::new(schema);
        let result = validator.validate(&set, ValidationMode::Strict);
        if !result.validation_passed() {
            return Err(Error::Invalid {
                source_name: source_name.to_owned(),
                diagnostics: sorted(
                    result
                        .validation_errors()
                        .map(|e| {
                            let id = e.policy_id().to_string();
                            diagnostic_line(source_name, text, Some(&id), e)
                        })
                        .collect(),
                ),
            });
        }
        let warnings = sorted(
            result
                .validation_warnings()
                .map(|w| {
                    let id = w.policy_id().to_string();
                    diagnostic_line(source_name, text, Some(&id), w)
                })
                .collect(),
        );
        drop(result);

        Ok(Policy {
            inner: Arc::new(Inner {
                source_name: source_name.to_owned(),
                set,
                names,
                authorizer: Authorizer::new(),
                entries,
                index,
                warnings,
            }),
        })
    }

    /// [`crate::DEFAULT_POLICY`], the policy in force when no policy file is configured.
    pub fn default_policy() -> Result<Policy> {
        Policy::parse(crate::DEFAULT_POLICY, "<default policy>")
    }

    /// The name the text was loaded from.
    pub fn source_name(&self) -> &str {
        &self.inner.source_name
    }

    /// The `@id`s of all policies, in file order.
    pub fn ids(&self) -> Vec<String> {
        self.inner.entries.iter().map(|e| e.id.clone()).collect()
    }

    /// Validation warnings (for example, mixed-script strings), one line each; they do not refuse a load.
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// Decides `query`: deny unless some permit matches and no forbid does.
    ///
    /// Every deny names what decided it: the matching forbids' `@id`s, or the action and resource that no
    /// permit covered ("default deny"). A forbid that fails to evaluate denies as if it matched.
    pub fn evaluate(&self, query: &Query) -> Decision {
        match build(&self.inner.names, query, None) {
            Ok(built) => {
                let response = self.authorize(&built);
                self.decide(query, &response)
            }
            Err(message) => Decision {
                allowed: false,
                policies: Vec::new(),
                reason: format!("denied: the request could not be evaluated ({message})")
                    .replace(['\n', '\r'], " "),
                errors: vec![message],
            },
        }
    }

    fn authorize(&self, built: &Built) -> Response {
        self.inner
            .authorizer
            .is_authorized(&built.request, &self.inner.set, &built.entities)
    }

    /// The `@id`s in `ids`, in file order.
    fn in_file_order<'a>(&self, ids: impl Iterator<Item = &'a PolicyId>) -> Vec<String> {
        let mut found: Vec<usize> = ids
            .filter_map(|id| self.inner.index.get(AsRef::<str>::as_ref(id)).copied())
            .collect();
        found.sort_unstable();
        found.dedup();
        found
            .into_iter()
            .filter_map(|i| self.inner.entries.get(i).map(|e| e.id.clone()))
            .collect()
    }

    fn decide(&self, query: &Query, response: &Response) -> Decision {
        let diagnostics = response.diagnostics();
        let mut errors: Vec<(usize, String)> = diagnostics
            .errors()
            .map(|e| {
                let at = self
                    .inner
                    .index
                    .get(AsRef::<str>::as_ref(failed_policy(e)))
                    .copied()
                    .unwrap_or(usize::MAX);
                (at, e.to_string())
            })
            .collect();
        errors.sort();
        let errors: Vec<String> = errors.into_iter().map(|(_, e)| e).collect();
        let failed_forbids: Vec<String> = self
            .in_file_order(diagnostics.errors().map(failed_policy))
            .into_iter()
            .filter(|id| {
                self.inner
                    .index
                    .get(id)
                    .and_then(|&i| self.inner.entries.get(i))
                    .is_some_and(|e| e.effect == Effect::Forbid)
            })
            .collect();
        let determining = self.in_file_order(diagnostics.reason());

        let (allowed, policies, reason) = match response.decision() {
            cedar_policy::Decision::Allow if failed_forbids.is_empty() => {
                let reason = format!("allowed by {}", name_policies(&determining));
                (true, determining, reason)
            }
            cedar_policy::Decision::Allow => {
                let reason = format!(
                    "denied by {} (failed to evaluate; a failing forbid denies)",
                    name_policies(&failed_forbids)
                );
                (false, failed_forbids, reason)
            }
            cedar_policy::Decision::Deny if !determining.is_empty() => {
                let reason = format!("denied by {}", name_policies(&determining));
                (false, determining, reason)
            }
            cedar_policy::Decision::Deny => {
                let reason = format!(
                    "denied: no policy permits {} on {} for user `{}` (default deny)",
                    query.action.name(),
                    resource_words(query),
                    query.principal.user.escape_debug(),
                );
                (false, Vec::new(), reason)
            }
        };
        Decision {
            allowed,
            policies,
            reason,
            errors,
        }
    }

    /// A multi-line account of `query`: the request as Cedar sees it (principal with its parents and
    /// attributes, action, resource, context), the decision and its reason, the determining policies
    /// with their effect and line, and any evaluation errors.
    pub fn explain(&self, query: &Query) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "policy: {} ({} policies)",
            self.inner.source_name,
            self.inner.entries.len()
        );
        let built = match build(&self.inner.names, query, None) {
            Ok(built) => built,
            Err(message) => {
                let _ = writeln!(out, "request: cannot be built: {message}");
                let _ = writeln!(out, "decision: deny");
                return out;
            }
        };
        let _ = writeln!(out, "request:");
        for (label, line) in &built.lines {
            let _ = writeln!(out, "  {label}: {line}");
        }
        let response = self.authorize(&built);
        let decision = self.decide(query, &response);
        let verdict = if decision.allowed { "allow" } else { "deny" };
        let _ = writeln!(out, "decision: {verdict}");
        let _ = writeln!(out, "reason: {}", decision.reason);
        match decision.policies.is_empty() {
            true => {
                let _ = writeln!(out, "determining policies: none");
            }
            false => {
                let _ = writeln!(out, "determining policies:");
                for id in &decision.policies {
                    let Some(entry) = self
                        .inner
                        .index
                        .get(id)
                        .and_then(|&i| self.inner.entries.get(i))
                    else {
                        continue;
                    };
                    let effect = match entry.effect {
                        Effect::Permit => "permit",
                        Effect::Forbid => "forbid",
                    };
                    let _ = writeln!(out, "  {} ({effect}, line {})", entry.id, entry.line);
                }
            }
        }
        match decision.errors.is_empty() {
            true => {
                let _ = writeln!(out, "errors: none");
            }
            false => {
                let _ = writeln!(out, "errors:");
                for error in &decision.errors {
                    let _ = writeln!(out, "  {error}");
                }
            }
        }
        out
    }

    /// Builds `query` with schema checks on; for tests that the request path's unchecked build conforms.
    #[cfg(test)]
    pub(crate) fn build_checked(&self, query: &Query) -> Result<(), String> {
        let schema = parse_schema().map_err(|e| e.to_string())?;
        build(&self.inner.names, query, Some(&schema)).map(|_| ())
    }
}

/// The policy an evaluation error is about.
fn failed_policy(error: &AuthorizationError) -> &PolicyId {
    match error {
        AuthorizationError::PolicyEvaluationError(e) => e.policy_id(),
    }
}

/// "policy `a`" or "policies `a`, `b`".
fn name_policies(ids: &[String]) -> String {
    let quoted: Vec<String> = ids
        .iter()
        .map(|id| format!("`{}`", id.escape_debug()))
        .collect();
    match quoted.len() {
        1 => format!("policy {}", quoted.join("")),
        _ => format!("policies {}", quoted.join(", ")),
    }
}

#[cfg(test)]
mod tests;
