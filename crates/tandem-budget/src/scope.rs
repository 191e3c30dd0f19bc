//! Who spends: a [`Scope`] names one API key, user, team or project (`user:alice`), and a
//! [`ScopePattern`] says which scopes a rule applies to (`user:*` for each user, `team:payments` for one
//! team).
//!
//! A key scope names the key's id or label, never the secret itself: scopes appear in refusal
//! messages, the admin API and the database.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::{Error, Result};

#[cfg(test)]
mod tests;

/// The kind of a scope: the part before the colon.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScopeKind {
    /// An API key (by id or label).
    Key,
    /// A user.
    User,
    /// A team.
    Team,
    /// A project.
    Project,
}

impl ScopeKind {
    /// The prefix as written in scopes and patterns: `key`, `user`, `team` or `project`.
    pub fn as_str(self) -> &'static str {
        match self {
            ScopeKind::Key => "key",
            ScopeKind::User => "user",
            ScopeKind::Team => "team",
            ScopeKind::Project => "project",
        }
    }

    fn parse(prefix: &str) -> Option<ScopeKind> {
        match prefix {
            "key" => Some(ScopeKind::Key),
            "user" => Some(ScopeKind::User),
            "team" => Some(ScopeKind::Team),
            "project" => Some(ScopeKind::Project),
            _ => None,
        }
    }
}

/// One spender: a request carries several (its key, its user, the user's team, the project).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum Scope {
    /// An API key, by id or label (never the secret).
    Key(String),
    /// A user.
    User(String),
    /// A team.
    Team(String),
    /// A project.
    Project(String),
}

impl Scope {
    /// Parses `kind:value`, for example `team:payments`.
    ///
    /// The value must be non-empty, at most 256 bytes, and free of control characters and of `*`
    /// (which patterns use).
    pub fn parse(input: &str) -> Result<Scope> {
        let (kind, value) = split(input)?;
        if value == "*" || value.contains('*') {
            return Err(invalid(
                input,
                "a scope cannot contain `*`; that is a pattern",
            ));
        }
        Ok(Scope::new(kind, value.to_owned()))
    }

    /// A scope of `kind` named `value`, unchecked.
    pub fn new(kind: ScopeKind, value: String) -> Scope {
        match kind {
            ScopeKind::Key => Scope::Key(value),
            ScopeKind::User => Scope::User(value),
            ScopeKind::Team => Scope::Team(value),
            ScopeKind::Project => Scope::Project(value),
        }
    }

    /// The part before the colon.
    pub fn kind(&self) -> ScopeKind {
        match self {
            Scope::Key(_) => ScopeKind::Key,
            Scope::User(_) => ScopeKind::User,
            Scope::Team(_) => ScopeKind::Team,
            Scope::Project(_) => ScopeKind::Project,
        }
    }

    /// The part after the colon.
    pub fn value(&self) -> &str {
        match self {
            Scope::Key(v) | Scope::User(v) | Scope::Team(v) | Scope::Project(v) => v,
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind().as_str(), self.value())
    }
}

impl FromStr for Scope {
    type Err = Error;

    fn from_str(s: &str) -> Result<Scope> {
        Scope::parse(s)
    }
}

impl TryFrom<String> for Scope {
    type Error = Error;

    fn try_from(s: String) -> Result<Scope> {
        Scope::parse(&s)
    }
}

impl From<Scope> for String {
    fn from(scope: Scope) -> String {
        scope.to_string()
    }
}

/// Which scopes a rule applies to: every scope of a kind, each counted separately (`user:*`), or one
/// exact scope (`team:payments`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum ScopePattern {
    /// `kind:*`: each scope of this kind has its own allowance.
    Each(ScopeKind),
    /// One scope.
    Exact(Scope),
}

impl ScopePattern {
    /// Parses `kind:*` or an exact scope.
    pub fn parse(input: &str) -> Result<ScopePattern> {
        let (kind, value) = split(input)?;
        match value {
            "*" => Ok(ScopePattern::Each(kind)),
            _ => Scope::parse(input).map(ScopePattern::Exact),
        }
    }

    /// Whether the rule applies to `scope`.
    pub fn matches(&self, scope: &Scope) -> bool {
        match self {
            ScopePattern::Each(kind) => scope.kind() == *kind,
            ScopePattern::Exact(exact) => exact == scope,
        }
    }
}

impl fmt::Display for ScopePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopePattern::Each(kind) => write!(f, "{}:*", kind.as_str()),
            ScopePattern::Exact(scope) => scope.fmt(f),
        }
    }
}

impl FromStr for ScopePattern {
    type Err = Error;

    fn from_str(s: &str) -> Result<ScopePattern> {
        ScopePattern::parse(s)
    }
}

impl TryFrom<String> for ScopePattern {
    type Error = Error;

    fn try_from(s: String) -> Result<ScopePattern> {
        ScopePattern::parse(&s)
    }
}

impl From<ScopePattern> for String {
    fn from(pattern: ScopePattern) -> String {
        pattern.to_string()
    }
}

/// Longest accepted value, in bytes.
const MAX_VALUE_LEN: usize = 256;

fn split(input: &str) -> Result<(ScopeKind, &str)> {
    let Some((prefix, value)) = input.split_once(':') else {
        return Err(invalid(input, "expected `kind:value`"));
    };
    let Some(kind) = ScopeKind::parse(prefix) else {
        return Err(invalid(
            input,
            "kind must be `key`, `user`, `team` or `project`",
        ));
    };
    if value.is_empty() {
        return Err(invalid(input, "the value after `:` is empty"));
    }
    if value.len() > MAX_VALUE_LEN {
        return Err(invalid(input, "the value is longer than 256 bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(invalid(input, "the value contains a control character"));
    }
    Ok((kind, value))
}

fn invalid(input: &str, reason: &'static str) -> Error {
    let mut input = input.to_owned();
    if input.len() > 80 {
        let mut cut = 80;
        while !input.is_char_boundary(cut) {
            cut -= 1;
        }
        input.truncate(cut);
        input.push('…');
    }
    Error::InvalidScope { input, reason }
}
