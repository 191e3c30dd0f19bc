//! [`Policy`]: a Cedar policy set validated against [`crate::SCHEMA`], and its evaluation.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::Arc;

use cedar_policy::{
    ActionConstraint, AuthorizationError, Authorizer, Effect, PolicyId, PolicySet, Response,
    Schema, ValidationMode, Validator,
};
use miette::Diagnostic;

use crate::cache::EntityCache;
use crate::query::{
    Names, Referenced, build_entities, build_request, describe_query, resource_words,
};
use crate::{Decision, Error, Query, Result, SCHEMA};

/// A loaded policy: every policy has a unique `@id`, and all of them type-check against
/// [`crate::SCHEMA`] in strict mode.
///
/// Cloning is cheap (an `Arc`), so a server can hold the last good policy and swap in a new one only
/// once it parsed. Clones share a bounded, thread-safe memo of entity stores (see the crate README);
/// it changes how fast [`Policy::evaluate`] is, never what it decides.
#[derive(Clone)]
pub struct Policy {
    inner: Arc<Inner>,
}

struct Inner {
    source_name: String,
    /// The policies whose action scope admits each action, indexed by [`Names::action_index`]: a policy
    /// whose scope names another action can neither match nor fail, so evaluation skips it.
    by_action: [PolicySet; 3],
    names: Names,
    /// The parents worth putting in entity stores.
    referenced: Referenced,
    authorizer: Authorizer,
    entities: EntityCache,
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
        let mut by_action = [PolicySet::new(), PolicySet::new(), PolicySet::new()];
        for policy in set.policies() {
            for (i, action) in names.actions().iter().enumerate() {
                let applies = match policy.action_constraint() {
                    ActionConstraint::Any => true,
                    ActionConstraint::Eq(uid) => uid == **action,
                    ActionConstraint::In(uids) => uids.iter().any(|uid| uid == *action),
                };
                if let (true, Some(subset)) = (applies, by_action.get_mut(i)) {
                    subset.add(policy.clone()).map_err(|e| Error::Invalid {
                        source_name: source_name.to_owned(),
                        diagnostics: vec![format!("{source_name}: {e}")],
                    })?;
                }
            }
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
                by_action,
                referenced: Referenced::collect(&set),
                names,
                authorizer: Authorizer::new(),
                entities: EntityCache::default(),
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
        match self.authorize(query) {
            Ok(response) => self.decide(query, &response),
            Err(message) => Decision {
                allowed: false,
                policies: Vec::new(),
                reason: format!("denied: the request could not be evaluated ({message})")
                    .replace(['\n', '\r'], " "),
                errors: vec![message],
            },
        }
    }

    /// Cedar's answer to `query`, or why the query could not be put to Cedar.
    fn authorize(&self, query: &Query) -> Result<Response, String> {
        let names = &self.inner.names;
        let entities = self.inner.entities.get_or_build(query, || {
            build_entities(names, &self.inner.referenced, query, None)
        })?;
        let request = build_request(names, query, None)?;
        let Some(set) = self.inner.by_action.get(Names::action_index(&query.action)) else {
            return Err(format!("no policy set for action {}", query.action.name()));
        };
        Ok(self
            .inner
            .authorizer
            .is_authorized(&request, set, &entities))
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
    ///
    /// All parents are shown, including those no policy names (which evaluation leaves out of the
    /// entity store because they cannot change a decision).
    pub fn explain(&self, query: &Query) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "policy: {} ({} policies)",
            self.inner.source_name,
            self.inner.entries.len()
        );
        let _ = writeln!(out, "request:");
        for (label, line) in describe_query(&self.inner.names, query) {
            let _ = writeln!(out, "  {label}: {line}");
        }
        let decision = self.evaluate(query);
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

    /// Evaluates `query` with every parent in a fresh entity store: no memo, no pruning.
    #[cfg(test)]
    pub(crate) fn evaluate_unpruned(&self, query: &Query) -> Decision {
        let names = &self.inner.names;
        let entities = build_entities(names, &Referenced::everything(), query, None).unwrap();
        let request = build_request(names, query, None).unwrap();
        let set = &self.inner.by_action[Names::action_index(&query.action)];
        let response = self
            .inner
            .authorizer
            .is_authorized(&request, set, &entities);
        self.decide(query, &response)
    }

    /// The teams and tiers the policies name.
    #[cfg(test)]
    pub(crate) fn referenced(&self) -> &Referenced {
        &self.inner.referenced
    }

    /// Builds `query` with schema checks on; for tests that the request path's unchecked build conforms.
    #[cfg(test)]
    pub(crate) fn build_checked(&self, query: &Query) -> Result<(), String> {
        let schema = parse_schema().map_err(|e| e.to_string())?;
        build_entities(
            &self.inner.names,
            &self.inner.referenced,
            query,
            Some(&schema),
        )?;
        build_request(&self.inner.names, query, Some(&schema)).map(|_| ())
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
