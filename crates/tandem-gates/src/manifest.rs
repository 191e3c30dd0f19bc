//! Dependency manifests: which files they are, the dependencies they declare, and which of those a
//! change adds.

use std::collections::BTreeSet;
use std::fmt;

use crate::{Error, Result};

/// A package ecosystem with a manifest the dependency gate reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// Rust: `Cargo.toml`.
    Cargo,
    /// JavaScript: `package.json`.
    Npm,
    /// Python: `pyproject.toml` (PEP 621 and Poetry).
    Pypi,
    /// Go: `go.mod`.
    Go,
}

impl Ecosystem {
    /// The ecosystem of a manifest path (by file name), if it is one.
    pub fn of_manifest(path: &str) -> Option<Ecosystem> {
        let name = path.rsplit(['/', '\\']).next().unwrap_or(path);
        match name {
            "Cargo.toml" => Some(Ecosystem::Cargo),
            "package.json" => Some(Ecosystem::Npm),
            "pyproject.toml" => Some(Ecosystem::Pypi),
            "go.mod" => Some(Ecosystem::Go),
            _ => None,
        }
    }

    /// The prefix naming it in package lists (`cargo`, `npm`, `pypi`, `go`).
    pub fn prefix(self) -> &'static str {
        match self {
            Ecosystem::Cargo => "cargo",
            Ecosystem::Npm => "npm",
            Ecosystem::Pypi => "pypi",
            Ecosystem::Go => "go",
        }
    }

    /// The ecosystem a package-list prefix names (`python` is accepted for `pypi`).
    pub fn from_prefix(prefix: &str) -> Option<Ecosystem> {
        match prefix {
            "cargo" => Some(Ecosystem::Cargo),
            "npm" => Some(Ecosystem::Npm),
            "pypi" | "python" => Some(Ecosystem::Pypi),
            "go" => Some(Ecosystem::Go),
            _ => None,
        }
    }

    /// A package name as the ecosystem compares names: Python's are normalized as in PEP 503
    /// (lowercase, runs of `-_.` become `-`); the others are kept as written.
    pub fn normalize(self, name: &str) -> String {
        match self {
            Ecosystem::Pypi => {
                let mut out = String::with_capacity(name.len());
                for c in name.trim().chars() {
                    match c {
                        '-' | '_' | '.' if out.ends_with('-') => {}
                        '-' | '_' | '.' => out.push('-'),
                        c => out.push(c.to_ascii_lowercase()),
                    }
                }
                out
            }
            _ => name.trim().to_owned(),
        }
    }
}

impl fmt::Display for Ecosystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.prefix())
    }
}

/// A dependency a manifest declares.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dependency {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// The package name (the registry's, not a rename; normalized for Python).
    pub name: String,
    /// The version or requirement as written, when there is one.
    pub version: Option<String>,
}

impl fmt::Display for Dependency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.ecosystem, self.name)
    }
}

/// The dependencies `new` declares that `old` does not (by ecosystem and name; a changed version is
/// not new). `None` is a missing file. The result is sorted.
pub fn new_dependencies(
    path: &str,
    old: Option<&str>,
    new: Option<&str>,
) -> Result<Vec<Dependency>> {
    let Some(ecosystem) = Ecosystem::of_manifest(path) else {
        return Ok(Vec::new());
    };
    let Some(new) = new else {
        return Ok(Vec::new());
    };
    let after = dependencies(ecosystem, path, new)?;
    // A broken old manifest is treated as empty: everything in the new one is checked.
    let before: BTreeSet<String> = old
        .and_then(|old| dependencies(ecosystem, path, old).ok())
        .unwrap_or_default()
        .into_iter()
        .map(|d| d.name)
        .collect();
    let mut added: Vec<Dependency> = after
        .into_iter()
        .filter(|d| !before.contains(&d.name))
        .collect();
    added.sort();
    added.dedup_by(|a, b| a.name == b.name);
    Ok(added)
}

/// Every dependency a manifest declares (local path dependencies excluded).
pub fn dependencies(ecosystem: Ecosystem, path: &str, text: &str) -> Result<Vec<Dependency>> {
    let invalid = |message: String| Error::Manifest {
        path: path.to_owned(),
        message,
    };
    match ecosystem {
        Ecosystem::Cargo => {
            let doc: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
            Ok(cargo(&doc))
        }
        Ecosystem::Npm => {
            let doc: serde_json::Value =
                serde_json::from_str(text).map_err(|e| invalid(e.to_string()))?;
            Ok(npm(&doc))
        }
        Ecosystem::Pypi => {
            let doc: toml::Table = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
            Ok(pyproject(&doc))
        }
        Ecosystem::Go => Ok(go_mod(text)),
    }
}

fn cargo(doc: &toml::Table) -> Vec<Dependency> {
    const SECTIONS: [&str; 3] = ["dependencies", "dev-dependencies", "build-dependencies"];
    let mut out = Vec::new();
    let mut tables: Vec<&toml::Table> = Vec::new();
    for section in SECTIONS {
        if let Some(t) = doc.get(section).and_then(toml::Value::as_table) {
            tables.push(t);
        }
    }
    if let Some(targets) = doc.get("target").and_then(toml::Value::as_table) {
        for target in targets.values().filter_map(toml::Value::as_table) {
            for section in SECTIONS {
                if let Some(t) = target.get(section).and_then(toml::Value::as_table) {
                    tables.push(t);
                }
            }
        }
    }
    if let Some(t) = doc
        .get("workspace")
        .and_then(|w| w.get("dependencies"))
        .and_then(toml::Value::as_table)
    {
        tables.push(t);
    }
    for table in tables {
        for (key, spec) in table {
            let (name, version) = match spec {
                toml::Value::String(version) => (key.clone(), Some(version.clone())),
                toml::Value::Table(t) => {
                    // Path dependencies are the project's own crates; `workspace = true` names one
                    // declared (and checked) in `[workspace.dependencies]`.
                    let local = t.contains_key("path") && !t.contains_key("version");
                    if local || t.get("workspace").and_then(toml::Value::as_bool) == Some(true) {
                        continue;
                    }
                    let name = t
                        .get("package")
                        .and_then(toml::Value::as_str)
                        .unwrap_or(key)
                        .to_owned();
                    let version = t
                        .get("version")
                        .and_then(toml::Value::as_str)
                        .map(str::to_owned);
                    (name, version)
                }
                _ => continue,
            };
            out.push(Dependency {
                ecosystem: Ecosystem::Cargo,
                name,
                version,
            });
        }
    }
    out
}

fn npm(doc: &serde_json::Value) -> Vec<Dependency> {
    let mut out = Vec::new();
    for section in [
        "dependencies",
        "devDependencies",
        "optionalDependencies",
        "peerDependencies",
    ] {
        let Some(deps) = doc.get(section).and_then(serde_json::Value::as_object) else {
            continue;
        };
        for (name, spec) in deps {
            let version = spec.as_str().map(str::to_owned);
            // `file:` and `link:` specs are local packages.
            if version
                .as_deref()
                .is_some_and(|v| v.starts_with("file:") || v.starts_with("link:"))
            {
                continue;
            }
            out.push(Dependency {
                ecosystem: Ecosystem::Npm,
                name: name.clone(),
                version,
            });
        }
    }
    out
}

fn pyproject(doc: &toml::Table) -> Vec<Dependency> {
    let mut out = Vec::new();
    let mut pep508 = |spec: &str| {
        if let Some(dep) = pep508_dependency(spec) {
            out.push(dep);
        }
    };
    let project = doc.get("project");
    for spec in project
        .and_then(|p| p.get("dependencies"))
        .and_then(toml::Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(toml::Value::as_str)
    {
        pep508(spec);
    }
    if let Some(groups) = project
        .and_then(|p| p.get("optional-dependencies"))
        .and_then(toml::Value::as_table)
    {
        for spec in groups
            .values()
            .filter_map(toml::Value::as_array)
            .flatten()
            .filter_map(toml::Value::as_str)
        {
            pep508(spec);
        }
    }
    let poetry = doc.get("tool").and_then(|t| t.get("poetry"));
    let mut tables: Vec<&toml::Table> = Vec::new();
    for section in ["dependencies", "dev-dependencies"] {
        if let Some(t) = poetry
            .and_then(|p| p.get(section))
            .and_then(toml::Value::as_table)
        {
            tables.push(t);
        }
    }
    if let Some(groups) = poetry
        .and_then(|p| p.get("group"))
        .and_then(toml::Value::as_table)
    {
        for group in groups.values() {
            if let Some(t) = group.get("dependencies").and_then(toml::Value::as_table) {
                tables.push(t);
            }
        }
    }
    for table in tables {
        for (name, spec) in table {
            if name.eq_ignore_ascii_case("python") {
                continue;
            }
            let version = match spec {
                toml::Value::String(v) => Some(v.clone()),
                toml::Value::Table(t) => {
                    if t.contains_key("path") {
                        continue;
                    }
                    t.get("version")
                        .and_then(toml::Value::as_str)
                        .map(str::to_owned)
                }
                _ => None,
            };
            out.push(Dependency {
                ecosystem: Ecosystem::Pypi,
                name: Ecosystem::Pypi.normalize(name),
                version,
            });
        }
    }
    out
}

/// `requests[socks]>=2.31; python_version>"3.8"` → `requests`, `>=2.31`.
fn pep508_dependency(spec: &str) -> Option<Dependency> {
    let spec = spec.trim();
    let end = spec
        .find(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')))
        .unwrap_or(spec.len());
    let name = &spec[..end];
    if name.is_empty() {
        return None;
    }
    let rest = spec[end..].split(';').next().unwrap_or_default();
    let rest = match rest.trim_start().strip_prefix('[') {
        Some(extras) => extras.split_once(']').map_or("", |(_, r)| r),
        None => rest,
    };
    let version = rest
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .trim();
    Some(Dependency {
        ecosystem: Ecosystem::Pypi,
        name: Ecosystem::Pypi.normalize(name),
        version: (!version.is_empty()).then(|| version.to_owned()),
    })
}

fn go_mod(text: &str) -> Vec<Dependency> {
    let mut out = Vec::new();
    let mut in_block = false;
    for line in text.lines() {
        let line = line.split("//").next().unwrap_or_default().trim();
        let spec = if in_block {
            if line == ")" {
                in_block = false;
                continue;
            }
            line
        } else if let Some(rest) = line.strip_prefix("require") {
            let rest = rest.trim();
            if rest == "(" {
                in_block = true;
                continue;
            }
            rest
        } else {
            continue;
        };
        let mut parts = spec.split_whitespace();
        let (Some(module), version) = (parts.next(), parts.next()) else {
            continue;
        };
        out.push(Dependency {
            ecosystem: Ecosystem::Go,
            name: module.trim_matches('"').to_owned(),
            version: version.map(str::to_owned),
        });
    }
    out
}
