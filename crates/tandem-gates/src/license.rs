//! The dependency policy (package and SPDX license allow/deny lists) and where licenses come from.
//!
//! A license expression passes when it can be satisfied using only licenses that are allowed (any,
//! when the allow list is empty) and not denied, as SPDX defines `AND`, `OR` and `WITH`: `MIT OR
//! GPL-3.0-only` passes with GPL denied, `MIT AND GPL-3.0-only` does not. A list entry without an
//! exception also covers the license with any exception (`Apache-2.0` covers `Apache-2.0 WITH
//! LLVM-exception`); an entry with one covers only that pairing.

use std::path::{Path, PathBuf};

use spdx::{Expression, LicenseReq, Licensee, ParseMode};

use crate::manifest::{Dependency, Ecosystem};
use crate::{Error, Result};

/// What to do with a new dependency whose license cannot be found or read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnknownLicense {
    /// Fail the gate.
    Deny,
    /// Pass, with a finding saying so.
    Warn,
}

/// A package list entry: a name in one ecosystem (`npm:left-pad`) or in all (`left-pad`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackageRule {
    /// The ecosystem, or `None` for all.
    pub ecosystem: Option<Ecosystem>,
    /// The name (normalized for Python).
    pub name: String,
}

impl PackageRule {
    /// Parses `name` or `ecosystem:name`. Go module paths have no colon, so the first colon always
    /// ends a prefix.
    pub fn parse(text: &str) -> Result<PackageRule> {
        let text = text.trim();
        let rule = match text.split_once(':') {
            Some((prefix, name)) => {
                let ecosystem = Ecosystem::from_prefix(prefix)
                    .ok_or_else(|| Error::Package(text.to_owned()))?;
                PackageRule {
                    ecosystem: Some(ecosystem),
                    name: ecosystem.normalize(name),
                }
            }
            None => PackageRule {
                ecosystem: None,
                name: text.to_owned(),
            },
        };
        if rule.name.is_empty() {
            return Err(Error::Package(text.to_owned()));
        }
        Ok(rule)
    }

    /// Whether it names `dep`.
    pub fn matches(&self, dep: &Dependency) -> bool {
        match self.ecosystem {
            Some(ecosystem) => ecosystem == dep.ecosystem && self.name == dep.name,
            None => dep.ecosystem.normalize(&self.name) == dep.name,
        }
    }
}

/// The validated `[gates.dependencies]` policy.
#[derive(Clone, Debug)]
pub struct DependencyPolicy {
    allow_licenses: Vec<Licensee>,
    deny_licenses: Vec<Licensee>,
    allow_packages: Vec<PackageRule>,
    deny_packages: Vec<PackageRule>,
    unknown_license: UnknownLicense,
}

/// The raw lists of a [`DependencyPolicy`], as written in the config.
#[derive(Clone, Debug, Default)]
pub struct DependencyLists {
    /// SPDX license ids allowed (empty: all that are not denied).
    pub allow_licenses: Vec<String>,
    /// SPDX license ids denied.
    pub deny_licenses: Vec<String>,
    /// Packages allowed (empty: all that are not denied).
    pub allow_packages: Vec<String>,
    /// Packages denied.
    pub deny_packages: Vec<String>,
}

/// What the policy says about one new dependency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// Whether the dependency may be added.
    pub passed: bool,
    /// Why not, or what to look at (an unknown license under `warn`).
    pub findings: Vec<String>,
}

impl DependencyPolicy {
    /// Validates the lists: licenses must be SPDX ids (or `LicenseRef-…`, optionally `WITH` an
    /// exception) and package prefixes known ecosystems.
    pub fn new(
        lists: &DependencyLists,
        unknown_license: UnknownLicense,
    ) -> Result<DependencyPolicy> {
        let licenses = |list: &[String]| -> Result<Vec<Licensee>> {
            list.iter()
                .map(|text| {
                    Licensee::parse_mode(text, ParseMode::LAX).map_err(|err| Error::License {
                        license: text.clone(),
                        message: err.reason.to_string(),
                    })
                })
                .collect()
        };
        let packages = |list: &[String]| -> Result<Vec<PackageRule>> {
            list.iter().map(|text| PackageRule::parse(text)).collect()
        };
        Ok(DependencyPolicy {
            allow_licenses: licenses(&lists.allow_licenses)?,
            deny_licenses: licenses(&lists.deny_licenses)?,
            allow_packages: packages(&lists.allow_packages)?,
            deny_packages: packages(&lists.deny_packages)?,
            unknown_license,
        })
    }

    /// What to do with unknown licenses.
    pub fn unknown_license(&self) -> UnknownLicense {
        self.unknown_license
    }

    /// Checks a new dependency's name and its license (`None`: not found).
    pub fn check(&self, dep: &Dependency, license: Option<&str>) -> Verdict {
        let mut findings = Vec::new();
        let mut passed = true;
        if self.deny_packages.iter().any(|rule| rule.matches(dep)) {
            passed = false;
            findings.push(format!("{dep}: the package is denied"));
        } else if !self.allow_packages.is_empty()
            && !self.allow_packages.iter().any(|rule| rule.matches(dep))
        {
            passed = false;
            findings.push(format!("{dep}: the package is not on the allow list"));
        }
        let expression = license.map(str::trim).filter(|l| !l.is_empty());
        let parsed = expression.map(|text| Expression::parse_mode(text, ParseMode::LAX));
        match (expression, parsed) {
            (Some(text), Some(Ok(expr))) => {
                if let Err(failures) = expr.evaluate_with_failures(|req| self.license_ok(req)) {
                    passed = false;
                    let failing: Vec<String> = failures.iter().map(|f| f.req.to_string()).collect();
                    findings.push(format!(
                        "{dep}: license `{text}` is not allowed ({})",
                        failing.join(", ")
                    ));
                }
            }
            (text, _) => {
                let what = match text {
                    Some(text) => format!("license `{text}` is not an SPDX expression"),
                    None => "license unknown".to_owned(),
                };
                match self.unknown_license {
                    UnknownLicense::Deny => {
                        passed = false;
                        findings.push(format!("{dep}: {what}"));
                    }
                    UnknownLicense::Warn => findings.push(format!("{dep}: {what} (warning)")),
                }
            }
        }
        Verdict { passed, findings }
    }

    fn license_ok(&self, req: &LicenseReq) -> bool {
        let allowed =
            self.allow_licenses.is_empty() || self.allow_licenses.iter().any(|l| covers(l, req));
        allowed && !self.deny_licenses.iter().any(|l| covers(l, req))
    }
}

/// Whether a list entry covers a requirement (an entry without an exception covers the license
/// with any exception).
fn covers(entry: &Licensee, req: &LicenseReq) -> bool {
    if entry.satisfies(req) {
        return true;
    }
    let bare = LicenseReq {
        license: req.license.clone(),
        addition: None,
    };
    req.addition.is_some() && entry.as_ref().addition.is_none() && entry.satisfies(&bare)
}

/// Finds the license of a package, offline.
pub trait LicenseSource {
    /// The package's license expression as its metadata states it, when it can be found.
    fn license(&self, dep: &Dependency) -> Option<String>;
}

/// Licenses from what is installed locally: Cargo's registry cache, the workspace's
/// `node_modules`, and Python `site-packages` directories. Go modules have no license metadata:
/// always unknown.
#[derive(Clone, Debug)]
pub struct LocalLicenses {
    /// The workspace (for `node_modules` and `Cargo.lock`).
    pub workspace: PathBuf,
    /// Cargo's home (`$CARGO_HOME`, else `~/.cargo`), when known.
    pub cargo_home: Option<PathBuf>,
    /// `site-packages` directories to look in, first match wins.
    pub site_packages: Vec<PathBuf>,
}

impl LocalLicenses {
    /// Sources for `workspace`: Cargo's home from `CARGO_HOME` or `HOME`, and the `site-packages`
    /// of a `.venv` or `venv` in the workspace.
    pub fn for_workspace(workspace: &Path, env: &dyn Fn(&str) -> Option<String>) -> LocalLicenses {
        let cargo_home = env("CARGO_HOME")
            .map(PathBuf::from)
            .or_else(|| env("HOME").map(|home| Path::new(&home).join(".cargo")));
        let mut site_packages = Vec::new();
        for venv in [".venv", "venv"] {
            let lib = workspace.join(venv).join("lib");
            let Ok(entries) = std::fs::read_dir(&lib) else {
                continue;
            };
            let mut found: Vec<PathBuf> = entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("site-packages"))
                .filter(|p| p.is_dir())
                .collect();
            found.sort();
            site_packages.extend(found);
        }
        LocalLicenses {
            workspace: workspace.to_path_buf(),
            cargo_home,
            site_packages,
        }
    }

    fn cargo(&self, name: &str) -> Option<String> {
        let src = self.cargo_home.as_ref()?.join("registry").join("src");
        let locked = locked_version(&self.workspace.join("Cargo.lock"), name);
        let prefix = format!("{name}-");
        let mut candidates: Vec<(Vec<u64>, PathBuf)> = Vec::new();
        for registry in std::fs::read_dir(&src).ok()?.filter_map(|e| e.ok()) {
            for entry in std::fs::read_dir(registry.path())
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
            {
                let file_name = entry.file_name();
                let Some(version) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
                    continue;
                };
                if !version.starts_with(|c: char| c.is_ascii_digit()) {
                    continue;
                }
                if locked.as_deref() == Some(version) {
                    return cargo_license(&entry.path().join("Cargo.toml"));
                }
                candidates.push((version_key(version), entry.path()));
            }
        }
        candidates.sort();
        let (_, newest) = candidates.pop()?;
        cargo_license(&newest.join("Cargo.toml"))
    }

    fn npm(&self, name: &str) -> Option<String> {
        let path = self
            .workspace
            .join("node_modules")
            .join(name)
            .join("package.json");
        let doc: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
        match doc.get("license") {
            Some(serde_json::Value::String(license)) => Some(license.clone()),
            // The old `{"type": "MIT", "url": …}` form.
            Some(serde_json::Value::Object(o)) => o.get("type")?.as_str().map(str::to_owned),
            _ => {
                // The older still `licenses: [{"type": …}]`: any of them.
                let types: Vec<&str> = doc
                    .get("licenses")?
                    .as_array()?
                    .iter()
                    .filter_map(|l| l.get("type").and_then(serde_json::Value::as_str))
                    .collect();
                (!types.is_empty()).then(|| types.join(" OR "))
            }
        }
    }

    fn python(&self, name: &str) -> Option<String> {
        for dir in &self.site_packages {
            for entry in std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .filter_map(|e| e.ok())
            {
                let file_name = entry.file_name();
                let Some(stem) = file_name
                    .to_str()
                    .and_then(|n| n.strip_suffix(".dist-info"))
                else {
                    continue;
                };
                // `<name>-<version>.dist-info`, the name with `_` for `-`.
                let Some((dist, _version)) = stem.rsplit_once('-') else {
                    continue;
                };
                if Ecosystem::Pypi.normalize(dist) != name {
                    continue;
                }
                let metadata = std::fs::read_to_string(entry.path().join("METADATA")).ok()?;
                return python_license(&metadata);
            }
        }
        None
    }
}

impl LicenseSource for LocalLicenses {
    fn license(&self, dep: &Dependency) -> Option<String> {
        match dep.ecosystem {
            Ecosystem::Cargo => self.cargo(&dep.name),
            Ecosystem::Npm => self.npm(&dep.name),
            Ecosystem::Pypi => self.python(&dep.name),
            Ecosystem::Go => None,
        }
    }
}

/// The version of `name` in a `Cargo.lock`, when it holds exactly one.
fn locked_version(lock: &Path, name: &str) -> Option<String> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(lock).ok()?).ok()?;
    let mut versions = doc
        .get("package")?
        .as_array()?
        .iter()
        .filter(|p| p.get("name").and_then(toml::Value::as_str) == Some(name))
        .filter_map(|p| p.get("version").and_then(toml::Value::as_str));
    let first = versions.next()?;
    versions.next().is_none().then(|| first.to_owned())
}

/// `1.10.2-rc.1` → [1, 10, 2, 1]: enough to pick the newest cached release.
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|part| part.parse().ok())
        .collect()
}

fn cargo_license(manifest: &Path) -> Option<String> {
    let doc: toml::Table = toml::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    doc.get("package")?
        .get("license")?
        .as_str()
        .map(str::to_owned)
}

/// `License-Expression` (PEP 639), else a short `License`, else the trove classifiers of common
/// licenses.
pub fn python_license(metadata: &str) -> Option<String> {
    let mut license = None;
    let mut classifiers = Vec::new();
    // Headers end at the first empty line; the description follows.
    for line in metadata.lines().take_while(|l| !l.is_empty()) {
        if let Some(value) = line.strip_prefix("License-Expression:") {
            return Some(value.trim().to_owned());
        }
        if let Some(value) = line.strip_prefix("License:") {
            let value = value.trim();
            // Some projects paste their whole license text here.
            if !value.is_empty() && value.len() <= 100 && !value.eq_ignore_ascii_case("UNKNOWN") {
                license = Some(value.to_owned());
            }
        }
        if let Some(value) = line.strip_prefix("Classifier: License :: OSI Approved :: ") {
            let id = match value.trim() {
                "MIT License" => Some("MIT"),
                "Apache Software License" => Some("Apache-2.0"),
                "ISC License (ISCL)" => Some("ISC"),
                "Mozilla Public License 2.0 (MPL 2.0)" => Some("MPL-2.0"),
                "GNU General Public License v3 (GPLv3)" => Some("GPL-3.0-only"),
                "GNU General Public License v2 (GPLv2)" => Some("GPL-2.0-only"),
                "GNU Affero General Public License v3" => Some("AGPL-3.0-only"),
                "GNU Lesser General Public License v3 (LGPLv3)" => Some("LGPL-3.0-only"),
                _ => None,
            };
            classifiers.extend(id);
        }
    }
    let from_classifiers = (!classifiers.is_empty()).then(|| classifiers.join(" OR "));
    match license {
        Some(text) if Expression::parse_mode(&text, ParseMode::LAX).is_ok() => Some(text),
        _ => from_classifiers.or(license),
    }
}
