//! What a policy is asked ([`Query`]) and what it answers ([`Decision`]), and how a query becomes a
//! Cedar request: entities and context are built from plain values, nothing is parsed per request.

use std::collections::HashSet;
use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, PolicySet, Request,
    RestrictedExpression, Schema,
};
use serde_json::Value;

use crate::{Error, Result};

/// Who is asking: the authenticated user, their teams, the project they act for and their API key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Principal {
    /// The user name; the principal is `Tandem::User::"<user>"`.
    pub user: String,
    /// The user's teams; the user is a member (`in`) of `Tandem::Team::"<group>"` for each.
    pub groups: Vec<String>,
    /// The project the request is made for; when set, the user is a member of
    /// `Tandem::Project::"<project>"` and `context.project` holds it (empty otherwise).
    pub project: Option<String>,
    /// The id of the API key the request authenticated with (`principal.key_id`, optional).
    pub key_id: Option<String>,
}

/// What the principal wants to do.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Action {
    /// Send the request to a model: action `use_model`, resource `Tandem::Model::"<provider>/<model>"`,
    /// a member of `Tandem::Tier::"<tier>"` when the request was routed to a tier.
    UseModel {
        /// The tier the request was routed to, if any.
        tier: Option<String>,
        /// The provider's configured name.
        provider: String,
        /// The model name sent upstream.
        model: String,
        /// What the client sent as `model`.
        alias: String,
    },
    /// Carry a tool: action `use_tool`, resource `Tandem::Tool::"<name>"`. Asked once per tool.
    UseTool {
        /// The tool's name as the model sees it.
        name: String,
    },
    /// Let an agent run reach the internet: action `enable_internet`, resource
    /// `Tandem::Project::"<project>"` (the principal's project, `""` when none).
    EnableInternet,
}

impl Action {
    /// The Cedar action id: `use_model`, `use_tool` or `enable_internet`.
    pub fn name(&self) -> &'static str {
        match self {
            Action::UseModel { .. } => "use_model",
            Action::UseTool { .. } => "use_tool",
            Action::EnableInternet => "enable_internet",
        }
    }
}

/// One question to the policy: may this principal do this action, given these request facts?
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Query {
    /// Who is asking.
    pub principal: Principal,
    /// What they want to do.
    pub action: Action,
    /// Estimated prompt size in tokens (`context.context_tokens`).
    pub context_tokens: u64,
    /// How many tools the request carries (`context.tools`).
    pub tools: u32,
    /// The client API: `chat`, `responses`, `messages` or `agent` (`context.api`).
    pub api: String,
    /// Whether the client asked for a streamed answer (`context.stream`).
    pub stream: bool,
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// Whether the action may go ahead.
    pub allowed: bool,
    /// The `@id`s of the policies that decided, in file order: the permits that matched when allowed,
    /// the forbids that matched when denied, empty for a default deny.
    pub policies: Vec<String>,
    /// One line for the client and the logs, e.g. "denied by policy `no-deep-for-contractors`".
    pub reason: String,
    /// Evaluation errors, each naming its policy; a policy that errors is skipped, except that a
    /// forbid that errors denies (fail closed).
    pub errors: Vec<String>,
}

/// The entity type names and action ids of the schema, built once per [`crate::Policy`].
#[derive(Debug, Clone)]
pub(crate) struct Names {
    user: EntityTypeName,
    team: EntityTypeName,
    project: EntityTypeName,
    tier: EntityTypeName,
    model: EntityTypeName,
    tool: EntityTypeName,
    use_model: EntityUid,
    use_tool: EntityUid,
    enable_internet: EntityUid,
}

impl Names {
    pub(crate) fn new() -> Result<Names> {
        let ty = |name: &str| {
            EntityTypeName::from_str(name)
                .map_err(|e| Error::Schema(format!("entity type `{name}`: {e}")))
        };
        let action_type = ty("Tandem::Action")?;
        let action =
            |id: &str| EntityUid::from_type_name_and_id(action_type.clone(), EntityId::new(id));
        Ok(Names {
            user: ty("Tandem::User")?,
            team: ty("Tandem::Team")?,
            project: ty("Tandem::Project")?,
            tier: ty("Tandem::Tier")?,
            model: ty("Tandem::Model")?,
            tool: ty("Tandem::Tool")?,
            use_model: action("use_model"),
            use_tool: action("use_tool"),
            enable_internet: action("enable_internet"),
        })
    }

    /// The action uids, in [`Names::action_index`] order.
    pub(crate) fn actions(&self) -> [&EntityUid; 3] {
        [&self.use_model, &self.use_tool, &self.enable_internet]
    }

    /// The position of `action` in [`Names::actions`].
    pub(crate) fn action_index(action: &Action) -> usize {
        match action {
            Action::UseModel { .. } => 0,
            Action::UseTool { .. } => 1,
            Action::EnableInternet => 2,
        }
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// The teams, tiers and projects that some policy names as an entity literal.
///
/// Only they can make an `in` test true: in the Tandem schema no attribute or context field holds an
/// entity, so a team, a tier or a project can only be named by a literal
/// (`principal in Tandem::Team::"platform"`), except that the resource of `enable_internet` is the
/// principal's project (`principal in resource`). Parents that no policy names are left out of the
/// entity store, which keeps its transitive closure (about 1.5 µs per parent) small for users with many
/// groups; decisions do not change. The project parent is always kept for `enable_internet`.
#[derive(Debug, Clone, Default)]
pub(crate) struct Referenced {
    /// Keep every parent (a policy could not be inspected).
    everything: bool,
    teams: HashSet<String>,
    tiers: HashSet<String>,
    projects: HashSet<String>,
}

impl Referenced {
    /// Collects the team and tier literals of every policy in `set`.
    pub(crate) fn collect(set: &PolicySet) -> Referenced {
        let mut referenced = Referenced::default();
        for policy in set.policies() {
            match policy.to_json() {
                Ok(json) => referenced.walk(&json),
                Err(_) => return Referenced::everything(),
            }
        }
        referenced
    }

    /// Keeps every parent.
    pub(crate) fn everything() -> Referenced {
        Referenced {
            everything: true,
            ..Referenced::default()
        }
    }

    /// Entity literals appear in a policy's JSON form as `{"type": "...", "id": "..."}`, in the scope
    /// (`"entity"`) and in expressions (`"__entity"`) alike.
    fn walk(&mut self, json: &Value) {
        match json {
            Value::Object(map) => {
                if let (Some(Value::String(ty)), Some(Value::String(id))) =
                    (map.get("type"), map.get("id"))
                {
                    match ty.as_str() {
                        "Tandem::Team" => {
                            self.teams.insert(id.clone());
                        }
                        "Tandem::Tier" => {
                            self.tiers.insert(id.clone());
                        }
                        "Tandem::Project" => {
                            self.projects.insert(id.clone());
                        }
                        _ => {}
                    }
                }
                map.values().for_each(|value| self.walk(value));
            }
            Value::Array(values) => values.iter().for_each(|value| self.walk(value)),
            Value::Null | Value::Bool(_) | Value::Number(_) | Value::String(_) => {}
        }
    }

    /// The teams, tiers and projects named, each sorted.
    #[cfg(test)]
    pub(crate) fn names(&self) -> (bool, [Vec<&str>; 3]) {
        fn sorted(set: &HashSet<String>) -> Vec<&str> {
            let mut names: Vec<&str> = set.iter().map(String::as_str).collect();
            names.sort_unstable();
            names
        }
        (
            self.everything,
            [
                sorted(&self.teams),
                sorted(&self.tiers),
                sorted(&self.projects),
            ],
        )
    }

    fn team(&self, team: &str) -> bool {
        self.everything || self.teams.contains(team)
    }

    fn tier(&self, tier: &str) -> bool {
        self.everything || self.tiers.contains(tier)
    }

    fn project(&self, project: &str, action: &Action) -> bool {
        self.everything
            || matches!(action, Action::EnableInternet)
            || self.projects.contains(project)
    }
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

/// Cedar's spelling of a string literal.
fn quoted(value: &str) -> String {
    format!("\"{}\"", value.escape_debug())
}

/// `uid in [parents] { attrs }`, attributes in schema order.
fn describe(uid: &EntityUid, parents: &[EntityUid], attrs: &[(&str, String)]) -> String {
    let mut out = uid.to_string();
    if !parents.is_empty() {
        let parents: Vec<String> = parents.iter().map(ToString::to_string).collect();
        out.push_str(&format!(" in [{}]", parents.join(", ")));
    }
    if !attrs.is_empty() {
        let attrs: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        out.push_str(&format!(" {{ {} }}", attrs.join(", ")));
    }
    out
}

/// The principal's project, `""` when none.
fn project(query: &Query) -> &str {
    query.principal.project.as_deref().unwrap_or("")
}

/// The request's principal, action and resource uids.
fn uids<'n>(names: &'n Names, query: &Query) -> (EntityUid, &'n EntityUid, EntityUid) {
    let user = Names::uid(&names.user, &query.principal.user);
    let (action, resource) = match &query.action {
        Action::UseModel {
            provider, model, ..
        } => {
            let mut id = String::with_capacity(provider.len() + 1 + model.len());
            id.push_str(provider);
            id.push('/');
            id.push_str(model);
            (&names.use_model, Names::uid(&names.model, &id))
        }
        Action::UseTool { name } => (&names.use_tool, Names::uid(&names.tool, name)),
        Action::EnableInternet => (
            &names.enable_internet,
            Names::uid(&names.project, project(query)),
        ),
    };
    (user, action, resource)
}

/// The principal's parents that `keep` keeps for `action`: its teams, then its project.
fn user_parents(
    names: &Names,
    principal: &Principal,
    action: &Action,
    keep: &Referenced,
) -> Vec<EntityUid> {
    let mut parents = Vec::with_capacity(principal.groups.len() + 1);
    parents.extend(
        principal
            .groups
            .iter()
            .filter(|group| keep.team(group))
            .map(|group| Names::uid(&names.team, group)),
    );
    if let Some(project) = &principal.project
        && keep.project(project, action)
    {
        parents.push(Names::uid(&names.project, project));
    }
    parents
}

/// The resource's parents that `keep` keeps: a model's tier.
fn resource_parents(names: &Names, action: &Action, keep: &Referenced) -> Vec<EntityUid> {
    match action {
        Action::UseModel {
            tier: Some(tier), ..
        } if keep.tier(tier) => vec![Names::uid(&names.tier, tier)],
        Action::UseModel { .. } | Action::UseTool { .. } | Action::EnableInternet => Vec::new(),
    }
}

/// The entity store for `query`: the principal and the resource with their parents and attributes.
///
/// It depends on the query's principal and action only (not on the context), so it can be cached by
/// them. With a schema the entities are also checked against it (the tests do this); the request path
/// passes `None`, because the types here produce schema-conforming entities by construction.
pub(crate) fn build_entities(
    names: &Names,
    keep: &Referenced,
    query: &Query,
    schema: Option<&Schema>,
) -> Result<Entities, String> {
    let (user, _, resource) = uids(names, query);
    let key_id = query
        .principal
        .key_id
        .as_deref()
        .map(|key_id| ("key_id".to_owned(), string(key_id)));
    let user_entity = Entity::new_with_tags(
        user,
        key_id,
        user_parents(names, &query.principal, &query.action, keep),
        [],
    )
    .map_err(|e| format!("principal: {e}"))?;

    let resource_entity = match &query.action {
        Action::UseModel {
            tier,
            provider,
            model,
            alias,
        } => {
            let attrs = [
                ("provider".to_owned(), string(provider)),
                ("name".to_owned(), string(model)),
                ("alias".to_owned(), string(alias)),
                ("tier".to_owned(), string(tier.as_deref().unwrap_or(""))),
            ];
            let parents = resource_parents(names, &query.action, keep);
            Entity::new_with_tags(resource, attrs, parents, [])
                .map_err(|e| format!("resource: {e}"))?
        }
        Action::UseTool { .. } | Action::EnableInternet => Entity::with_uid(resource),
    };
    Entities::from_entities([user_entity, resource_entity], schema)
        .map_err(|e| format!("entities: {e}"))
}

/// The Cedar request for `query`: principal, action, resource and the context record.
pub(crate) fn build_request(
    names: &Names,
    query: &Query,
    schema: Option<&Schema>,
) -> Result<Request, String> {
    let (user, action, resource) = uids(names, query);
    let tokens = i64::try_from(query.context_tokens).unwrap_or(i64::MAX);
    let context = Context::from_pairs([
        (
            "context_tokens".to_owned(),
            RestrictedExpression::new_long(tokens),
        ),
        (
            "tools".to_owned(),
            RestrictedExpression::new_long(i64::from(query.tools)),
        ),
        ("api".to_owned(), string(&query.api)),
        (
            "stream".to_owned(),
            RestrictedExpression::new_bool(query.stream),
        ),
        ("project".to_owned(), string(project(query))),
    ])
    .map_err(|e| format!("context: {e}"))?;
    Request::new(user, action.clone(), resource, context, schema)
        .map_err(|e| format!("request: {e}"))
}

/// The request as Cedar sees it, one `(label, line)` per part, for [`crate::Policy::explain`]:
/// `uid in [parents] { attrs }` for the principal and the resource, the action uid and the context.
pub(crate) fn describe_query(names: &Names, query: &Query) -> [(&'static str, String); 4] {
    let (user, action, resource) = uids(names, query);
    let key_id: Vec<(&str, String)> = query
        .principal
        .key_id
        .iter()
        .map(|key_id| ("key_id", quoted(key_id)))
        .collect();
    let resource_attrs: Vec<(&str, String)> = match &query.action {
        Action::UseModel {
            tier,
            provider,
            model,
            alias,
        } => vec![
            ("provider", quoted(provider)),
            ("name", quoted(model)),
            ("alias", quoted(alias)),
            ("tier", quoted(tier.as_deref().unwrap_or(""))),
        ],
        Action::UseTool { .. } | Action::EnableInternet => Vec::new(),
    };
    let tokens = i64::try_from(query.context_tokens).unwrap_or(i64::MAX);
    [
        (
            "principal",
            describe(
                &user,
                &user_parents(
                    names,
                    &query.principal,
                    &query.action,
                    &Referenced::everything(),
                ),
                &key_id,
            ),
        ),
        ("action", action.to_string()),
        (
            "resource",
            describe(
                &resource,
                &resource_parents(names, &query.action, &Referenced::everything()),
                &resource_attrs,
            ),
        ),
        (
            "context",
            format!(
                "{{ context_tokens: {tokens}, tools: {}, api: {}, stream: {}, project: {} }}",
                query.tools,
                quoted(&query.api),
                query.stream,
                quoted(project(query)),
            ),
        ),
    ]
}

/// The resource in words, for a default-deny reason: "model `openai/gpt-5` in tier `deep`".
pub(crate) fn resource_words(query: &Query) -> String {
    match &query.action {
        Action::UseModel {
            tier,
            provider,
            model,
            ..
        } => {
            let model = format!("{provider}/{model}");
            match tier {
                Some(tier) => format!(
                    "model `{}` in tier `{}`",
                    model.escape_debug(),
                    tier.escape_debug()
                ),
                None => format!("model `{}` (no tier)", model.escape_debug()),
            }
        }
        Action::UseTool { name } => format!("tool `{}`", name.escape_debug()),
        Action::EnableInternet => match &query.principal.project {
            Some(project) => format!("project `{}`", project.escape_debug()),
            None => "a request with no project".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests;
