//! Rule files in gitleaks' TOML format: the raw serde shape, checked once into [`Rules`].
//!
//! Supported: `title`, `minVersion`, `[extend]` (`useDefault`, `disabledRules`), `[[rules]]` (`id`,
//! `description`, `regex`, `secretGroup`, `entropy`, `keywords`, `path`, `tags`, `[[rules.allowlists]]`
//! and the older `[rules.allowlist]`), and global `[[allowlists]]` (with `targetRules`) or the older
//! `[allowlist]`. Allowlists take `condition`, `paths`, `regexes`, `regexTarget`, `stopwords` and
//! `commits` (commits never match here: the gateway scans text, not history). Unknown fields and
//! composite `[[rules.required]]` rules are refused with a message rather than ignored.

use serde::Deserialize;

use crate::{Error, Result};

/// The project's default rules (gitleaks format), compiled into the binary.
const BUILTIN: &str = include_str!("../rules/default.toml");

/// A checked rule set: what a [`crate::Scanner`] compiles.
#[derive(Clone, Debug)]
pub struct Rules {
    pub(crate) rules: Vec<RuleSpec>,
    pub(crate) allowlists: Vec<AllowlistSpec>,
}

/// One rule as written in the file.
#[derive(Clone, Debug)]
pub(crate) struct RuleSpec {
    pub(crate) id: String,
    pub(crate) regex: Option<String>,
    pub(crate) secret_group: Option<usize>,
    pub(crate) entropy: Option<f32>,
    pub(crate) keywords: Vec<String>,
    pub(crate) path: Option<String>,
    pub(crate) allowlists: Vec<AllowlistSpec>,
}

/// One allowlist as written in the file.
#[derive(Clone, Debug, Default)]
pub(crate) struct AllowlistSpec {
    pub(crate) all: bool,
    pub(crate) paths: Vec<String>,
    pub(crate) regexes: Vec<String>,
    pub(crate) target: Target,
    pub(crate) stopwords: Vec<String>,
    pub(crate) commits: bool,
    pub(crate) target_rules: Vec<String>,
}

/// What an allowlist regex is matched against.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum Target {
    /// The extracted secret (gitleaks' default).
    #[default]
    Secret,
    /// The whole regex match.
    Match,
    /// The line holding the match.
    Line,
}

impl Rules {
    /// The project's default rule set.
    pub fn builtin() -> Result<Rules> {
        parse(BUILTIN, None)
    }

    /// Reads a gitleaks-format rule file. With `[extend] useDefault = true` the file's rules are added
    /// to (and override, by id) the default set, minus `disabledRules`.
    pub fn from_toml(text: &str) -> Result<Rules> {
        let builtin = Rules::builtin()?;
        parse(text, Some(builtin))
    }

    /// The number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The rule ids, in file order.
    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.id.as_str())
    }
}

fn parse(text: &str, defaults: Option<Rules>) -> Result<Rules> {
    let raw: RawFile = toml::from_str(text).map_err(|e| Error::Toml(e.to_string().into()))?;
    let mut rules = Vec::with_capacity(raw.rules.len());
    for rule in raw.rules {
        rules.push(rule.check()?);
    }
    let mut allowlists = Vec::new();
    if let Some(a) = raw.allowlist {
        allowlists.push(a.check("allowlist")?);
    }
    for a in raw.allowlists {
        allowlists.push(a.check("allowlists")?);
    }
    let mut out = Rules { rules, allowlists };
    if let Some(extend) = raw.extend {
        if extend.path.is_some() {
            return Err(Error::Toml(
                "`[extend] path` is not supported: merge the files, or use `useDefault = true`"
                    .into(),
            ));
        }
        if extend.use_default
            && let Some(defaults) = defaults
        {
            let own: Vec<String> = out.rules.iter().map(|r| r.id.clone()).collect();
            let mut merged: Vec<RuleSpec> = defaults
                .rules
                .into_iter()
                .filter(|r| !own.contains(&r.id))
                .collect();
            merged.append(&mut out.rules);
            out.rules = merged;
            let mut allow = defaults.allowlists;
            allow.append(&mut out.allowlists);
            out.allowlists = allow;
        }
        out.rules.retain(|r| !extend.disabled_rules.contains(&r.id));
    }
    let mut seen = std::collections::HashSet::new();
    for r in &out.rules {
        if !seen.insert(r.id.as_str()) {
            return Err(Error::Rule {
                rule: r.id.clone().into(),
                message: "duplicate rule id".into(),
            });
        }
    }
    Ok(out)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawFile {
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility with gitleaks files")]
    title: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility with gitleaks files")]
    min_version: Option<String>,
    #[serde(default)]
    extend: Option<RawExtend>,
    #[serde(default)]
    rules: Vec<RawRule>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExtend {
    #[serde(default)]
    use_default: bool,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    disabled_rules: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    id: String,
    #[serde(default)]
    #[expect(dead_code, reason = "documentation only")]
    description: Option<String>,
    #[serde(default)]
    regex: Option<String>,
    #[serde(default)]
    secret_group: Option<usize>,
    #[serde(default)]
    entropy: Option<f32>,
    #[serde(default)]
    keywords: Vec<String>,
    #[serde(default)]
    path: Option<String>,
    #[serde(default)]
    #[expect(dead_code, reason = "accepted for compatibility with gitleaks files")]
    tags: Vec<String>,
    #[serde(default)]
    allowlist: Option<RawAllowlist>,
    #[serde(default)]
    allowlists: Vec<RawAllowlist>,
    #[serde(default)]
    required: Option<toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawAllowlist {
    #[serde(default)]
    #[expect(dead_code, reason = "documentation only")]
    description: Option<String>,
    #[serde(default)]
    condition: Option<String>,
    #[serde(default)]
    commits: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    regex_target: Option<String>,
    #[serde(default)]
    regexes: Vec<String>,
    #[serde(default)]
    stopwords: Vec<String>,
    #[serde(default)]
    target_rules: Vec<String>,
}

impl RawRule {
    fn check(self) -> Result<RuleSpec> {
        let bad = |message: &str| Error::Rule {
            rule: self.id.clone().into(),
            message: message.into(),
        };
        if self.id.trim().is_empty() {
            return Err(Error::Rule {
                rule: "".into(),
                message: "a rule needs an `id`".into(),
            });
        }
        if self.required.is_some() {
            return Err(bad(
                "composite rules (`[[rules.required]]`) are not supported; split them into separate rules",
            ));
        }
        if self.regex.is_none() && self.path.is_none() {
            return Err(bad("a rule needs a `regex`, a `path`, or both"));
        }
        if let Some(e) = self.entropy
            && !(0.0..=8.0).contains(&e)
        {
            return Err(bad("`entropy` must be between 0 and 8 bits per byte"));
        }
        if self.secret_group.is_some() && self.regex.is_none() {
            return Err(bad("`secretGroup` needs a `regex`"));
        }
        let mut allowlists = Vec::new();
        if let Some(a) = self.allowlist {
            allowlists.push(a.check(&self.id)?);
        }
        for a in self.allowlists {
            let checked = a.check(&self.id)?;
            if !checked.target_rules.is_empty() {
                return Err(bad("`targetRules` belongs in a global `[[allowlists]]`"));
            }
            allowlists.push(checked);
        }
        Ok(RuleSpec {
            keywords: self
                .keywords
                .iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            id: self.id,
            regex: self.regex,
            secret_group: self.secret_group,
            entropy: self.entropy,
            path: self.path,
            allowlists,
        })
    }
}

impl RawAllowlist {
    fn check(self, owner: &str) -> Result<AllowlistSpec> {
        let bad = |message: String| Error::Rule {
            rule: owner.into(),
            message: message.into(),
        };
        let all = match self
            .condition
            .as_deref()
            .map(str::to_ascii_uppercase)
            .as_deref()
        {
            None | Some("OR") => false,
            Some("AND") => true,
            Some(other) => {
                return Err(bad(format!(
                    "allowlist condition `{other}` is not OR or AND"
                )));
            }
        };
        let target = match self.regex_target.as_deref() {
            None | Some("secret") => Target::Secret,
            Some("match") => Target::Match,
            Some("line") => Target::Line,
            Some(other) => {
                return Err(bad(format!(
                    "allowlist regexTarget `{other}` is not secret, match or line"
                )));
            }
        };
        if self.commits.is_empty()
            && self.paths.is_empty()
            && self.regexes.is_empty()
            && self.stopwords.is_empty()
        {
            return Err(bad(
                "an allowlist needs commits, paths, regexes or stopwords".into(),
            ));
        }
        Ok(AllowlistSpec {
            all,
            paths: self.paths,
            regexes: self.regexes,
            target,
            stopwords: self
                .stopwords
                .iter()
                .map(|s| s.to_ascii_lowercase())
                .collect(),
            commits: !self.commits.is_empty(),
            target_rules: self.target_rules,
        })
    }
}
