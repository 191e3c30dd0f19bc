//! What a policy is asked ([`Query`]) and what it answers ([`Decision`]), and how a query becomes a
//! Cedar request: entities and context are built from plain values, nothing is parsed per request.

use std::str::FromStr;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression,
    Schema,
};

use crate::{Error, Result};

/// Who is asking: the authenticated user, their teams, the project they act for and their API key.
#[derive(Debug, Clone, PartialEq, Eq)]
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
#[derive(Debug, Clone, PartialEq, Eq)]
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

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// A query as Cedar sees it.
pub(crate) struct Built {
    pub(crate) request: Request,
    pub(crate) entities: Entities,
    /// One line per part of the request, for [`crate::Policy::explain`].
    pub(crate) lines: [(&'static str, String); 4],
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

/// Builds the Cedar request and entities for `query`.
///
/// With a schema the request and entities are also checked against it (the tests do this); the
/// request path passes `None`, because the types here produce schema-conforming values by construction.
pub(crate) fn build(
    names: &Names,
    query: &Query,
    schema: Option<&Schema>,
) -> Result<Built, String> {
    let principal = &query.principal;
    let project = principal.project.as_deref().unwrap_or("");

    let user = Names::uid(&names.user, &principal.user);
    let mut user_parents: Vec<EntityUid> = principal
        .groups
        .iter()
        .map(|group| Names::uid(&names.team, group))
        .collect();
    if let Some(project) = &principal.project {
        user_parents.push(Names::uid(&names.project, project));
    }
    let mut user_attrs = Vec::new();
    let mut user_shown = Vec::new();
    if let Some(key_id) = &principal.key_id {
        user_attrs.push(("key_id".to_owned(), string(key_id)));
        user_shown.push(("key_id", quoted(key_id)));
    }
    let principal_line = describe(&user, &user_parents, &user_shown);
    let user_entity = Entity::new_with_tags(user.clone(), user_attrs, user_parents, [])
        .map_err(|e| format!("principal: {e}"))?;

    let (action, resource, resource_entity, resource_line) = match &query.action {
        Action::UseModel {
            tier,
            provider,
            model,
            alias,
        } => {
            let uid = Names::uid(&names.model, &format!("{provider}/{model}"));
            let parents: Vec<EntityUid> = tier
                .iter()
                .map(|tier| Names::uid(&names.tier, tier))
                .collect();
            let tier = tier.as_deref().unwrap_or("");
            let shown = [
                ("provider", quoted(provider)),
                ("name", quoted(model)),
                ("alias", quoted(alias)),
                ("tier", quoted(tier)),
            ];
            let line = describe(&uid, &parents, &shown);
            let attrs = [
                ("provider".to_owned(), string(provider)),
                ("name".to_owned(), string(model)),
                ("alias".to_owned(), string(alias)),
                ("tier".to_owned(), string(tier)),
            ];
            let entity = Entity::new_with_tags(uid.clone(), attrs, parents, [])
                .map_err(|e| format!("resource: {e}"))?;
            (&names.use_model, uid, entity, line)
        }
        Action::UseTool { name } => {
            let uid = Names::uid(&names.tool, name);
            let line = describe(&uid, &[], &[]);
            let entity = Entity::with_uid(uid.clone());
            (&names.use_tool, uid, entity, line)
        }
        Action::EnableInternet => {
            let uid = Names::uid(&names.project, project);
            let line = describe(&uid, &[], &[]);
            let entity = Entity::with_uid(uid.clone());
            (&names.enable_internet, uid, entity, line)
        }
    };

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
        ("project".to_owned(), string(project)),
    ])
    .map_err(|e| format!("context: {e}"))?;
    let context_line = format!(
        "{{ context_tokens: {tokens}, tools: {}, api: {}, stream: {}, project: {} }}",
        query.tools,
        quoted(&query.api),
        query.stream,
        quoted(project),
    );

    let entities = Entities::from_entities([user_entity, resource_entity], schema)
        .map_err(|e| format!("entities: {e}"))?;
    let lines = [
        ("principal", principal_line),
        ("action", action.to_string()),
        ("resource", resource_line),
        ("context", context_line),
    ];
    let request = Request::new(user, action.clone(), resource, context, schema)
        .map_err(|e| format!("request: {e}"))?;
    Ok(Built {
        request,
        entities,
        lines,
    })
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
