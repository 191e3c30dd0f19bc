//! The dependency gate: new dependencies of the four manifest kinds against package and SPDX
//! license lists, and licenses found in what is installed locally.

use pretty_assertions::assert_eq;
use tandem_gates::{
    Dependency, DependencyLists, DependencyPolicy, Ecosystem, LicenseSource, LocalLicenses,
    ManifestChange, UnknownLicense, dependency_gate, new_dependencies, python_license,
};

use crate::support::Licenses;

fn policy(unknown: UnknownLicense) -> DependencyPolicy {
    let lists = DependencyLists {
        allow_licenses: vec![],
        deny_licenses: vec!["GPL-3.0-only".into(), "AGPL-3.0-only".into()],
        allow_packages: vec![],
        deny_packages: vec![
            "left-pad".into(),
            "cargo:openssl-sys".into(),
            "pypi:PyYAML".into(),
            "go:github.com/evil/pkg".into(),
        ],
    };
    DependencyPolicy::new(&lists, unknown).unwrap()
}

/// Runs the gate on one manifest change and returns (passed, findings).
fn check(
    path: &str,
    old: &str,
    new: &str,
    licenses: &Licenses,
    unknown: UnknownLicense,
) -> (bool, Vec<String>) {
    let change = ManifestChange {
        path: path.to_owned(),
        old: (!old.is_empty()).then(|| old.to_owned()),
        new: Some(new.to_owned()),
    };
    let result = dependency_gate(&policy(unknown), &[change], licenses);
    assert_eq!(result.name, "dependencies");
    (result.passed, result.findings)
}

fn names(path: &str, old: &str, new: &str) -> Vec<String> {
    new_dependencies(path, Some(old), Some(new))
        .unwrap()
        .iter()
        .map(ToString::to_string)
        .collect()
}

const CARGO_OLD: &str = r#"
[package]
name = "app"
[dependencies]
serde = "1"
"#;

#[test]
fn cargo_manifest() {
    let new = r#"
[package]
name = "app"
[dependencies]
serde = { version = "1.0.200", features = ["derive"] }
openssl-sys = "0.9"
anyhow = "1"
json = { package = "serde_json", version = "1" }
local = { path = "../local" }
[dev-dependencies]
gpl-thing = "2"
[target.'cfg(unix)'.dependencies]
mystery = "0.1"
[workspace.dependencies]
tokio = "1"
"#;
    assert_eq!(
        names("crates/app/Cargo.toml", CARGO_OLD, new),
        [
            "cargo:anyhow",
            "cargo:gpl-thing",
            "cargo:mystery",
            "cargo:openssl-sys",
            "cargo:serde_json",
            "cargo:tokio",
        ]
    );
    let licenses = Licenses::with(&[
        ("cargo:openssl-sys", "MIT"),
        ("cargo:anyhow", "MIT OR Apache-2.0"),
        ("cargo:serde_json", "MIT/Apache-2.0"),
        ("cargo:gpl-thing", "GPL-3.0-only"),
        ("cargo:tokio", "MIT"),
    ]);
    let (passed, findings) = check(
        "crates/app/Cargo.toml",
        CARGO_OLD,
        new,
        &licenses,
        UnknownLicense::Deny,
    );
    assert!(!passed);
    assert_eq!(
        findings,
        [
            "crates/app/Cargo.toml: cargo:gpl-thing: license `GPL-3.0-only` is not allowed (GPL-3.0-only)",
            "crates/app/Cargo.toml: cargo:mystery: license unknown",
            "crates/app/Cargo.toml: cargo:openssl-sys: the package is denied",
        ]
    );
}

#[test]
fn npm_manifest() {
    let old = r#"{"name": "web", "dependencies": {"react": "^18.0.0"}}"#;
    let new = r#"{
        "name": "web",
        "dependencies": {"react": "^18.2.0", "left-pad": "1.3.0", "lodash": "^4", "agpl-widget": "1"},
        "devDependencies": {"mystery": "0.0.1", "mine": "file:../mine"}
    }"#;
    assert_eq!(
        names("package.json", old, new),
        [
            "npm:agpl-widget",
            "npm:left-pad",
            "npm:lodash",
            "npm:mystery"
        ]
    );
    let licenses = Licenses::with(&[
        ("npm:left-pad", "WTFPL"),
        ("npm:lodash", "MIT OR Apache-2.0"),
        ("npm:agpl-widget", "AGPL-3.0-only"),
        ("npm:mystery", "SEE LICENSE IN LICENSE.txt"),
    ]);
    let (passed, findings) = check("package.json", old, new, &licenses, UnknownLicense::Warn);
    assert!(!passed);
    assert_eq!(
        findings,
        [
            "package.json: npm:agpl-widget: license `AGPL-3.0-only` is not allowed (AGPL-3.0-only)",
            "package.json: npm:left-pad: the package is denied",
            "package.json: npm:mystery: license `SEE LICENSE IN LICENSE.txt` is not an SPDX expression (warning)",
        ]
    );
}

#[test]
fn pyproject_manifest() {
    let old = r#"
[project]
name = "tool"
dependencies = ["requests>=2"]
"#;
    let new = r#"
[project]
name = "tool"
dependencies = [
    "requests>=2.31",
    "PyYAML>=6",
    "rich[jupyter] (>=13); python_version > '3.8'",
]
[project.optional-dependencies]
test = ["pytest"]
[tool.poetry.dependencies]
python = "^3.11"
Gnu_Plot = "1"
local = { path = "../local" }
[tool.poetry.group.dev.dependencies]
mystery = "*"
"#;
    assert_eq!(
        names("pyproject.toml", old, new),
        [
            "pypi:gnu-plot",
            "pypi:mystery",
            "pypi:pytest",
            "pypi:pyyaml",
            "pypi:rich",
        ]
    );
    let licenses = Licenses::with(&[
        ("pypi:pyyaml", "MIT"),
        ("pypi:rich", "MIT"),
        ("pypi:pytest", "MIT OR Apache-2.0"),
        ("pypi:gnu-plot", "GPL-3.0-only"),
    ]);
    let (passed, findings) = check("pyproject.toml", old, new, &licenses, UnknownLicense::Deny);
    assert!(!passed);
    assert_eq!(
        findings,
        [
            "pyproject.toml: pypi:gnu-plot: license `GPL-3.0-only` is not allowed (GPL-3.0-only)",
            "pyproject.toml: pypi:mystery: license unknown",
            "pyproject.toml: pypi:pyyaml: the package is denied",
        ]
    );
}

#[test]
fn go_mod_manifest() {
    let old = "module example.com/app\n\ngo 1.22\n\nrequire github.com/pkg/errors v0.9.1\n";
    let new = "module example.com/app\n\ngo 1.22\n\nrequire github.com/pkg/errors v0.9.1\n\n\
               require (\n\tgithub.com/evil/pkg v1.0.0\n\tgolang.org/x/text v0.14.0 // indirect\n\
               \tgithub.com/ok/dual v1.2.3\n)\n\nreplace github.com/a/b => ../b\n";
    assert_eq!(
        names("go.mod", old, new),
        [
            "go:github.com/evil/pkg",
            "go:github.com/ok/dual",
            "go:golang.org/x/text",
        ]
    );
    // Go modules carry no license metadata: the real source never knows, so a test source stands
    // in for a known one.
    let licenses = Licenses::with(&[("go:github.com/ok/dual", "MIT OR Apache-2.0")]);
    let (passed, findings) = check("go.mod", old, new, &licenses, UnknownLicense::Deny);
    assert!(!passed);
    assert_eq!(
        findings,
        [
            "go.mod: go:github.com/evil/pkg: the package is denied",
            "go.mod: go:github.com/evil/pkg: license unknown",
            "go.mod: go:golang.org/x/text: license unknown",
        ]
    );
    let (passed, findings) = check("go.mod", old, new, &licenses, UnknownLicense::Warn);
    assert!(!passed, "the denied package still fails");
    assert_eq!(findings.len(), 3);
    let local = LocalLicenses::for_workspace(std::path::Path::new("/nonexistent"), &|_| None);
    let dep = Dependency {
        ecosystem: Ecosystem::Go,
        name: "golang.org/x/text".into(),
        version: None,
    };
    assert_eq!(local.license(&dep), None);
}

#[test]
fn unchanged_or_removed_dependencies_pass() {
    let (passed, findings) = check(
        "Cargo.toml",
        CARGO_OLD,
        "[package]\nname = \"app\"\n[dependencies]\nserde = \"1.0.210\"\n",
        &Licenses::default(),
        UnknownLicense::Deny,
    );
    assert!(passed && findings.is_empty(), "{findings:?}");
    let removed = ManifestChange {
        path: "Cargo.toml".into(),
        old: Some(CARGO_OLD.into()),
        new: None,
    };
    let result = dependency_gate(
        &policy(UnknownLicense::Deny),
        &[removed],
        &Licenses::default(),
    );
    assert!(result.passed);
    let (passed, findings) = check(
        "Cargo.toml",
        CARGO_OLD,
        "[dependencies\n",
        &Licenses::default(),
        UnknownLicense::Deny,
    );
    assert!(!passed);
    assert!(findings[0].starts_with("Cargo.toml: "), "{findings:?}");
}

/// License expressions against allow and deny lists, as SPDX evaluates them.
#[test]
fn license_expressions() {
    let lists = DependencyLists {
        allow_licenses: vec![
            "MIT".into(),
            "Apache-2.0".into(),
            "BSD-3-Clause".into(),
            "GPL-3.0-only".into(),
        ],
        deny_licenses: vec!["GPL-3.0-only".into()],
        allow_packages: vec!["cargo:ok".into(), "other".into()],
        deny_packages: vec![],
    };
    let policy = DependencyPolicy::new(&lists, UnknownLicense::Deny).unwrap();
    let dep = |name: &str| Dependency {
        ecosystem: Ecosystem::Cargo,
        name: name.into(),
        version: None,
    };
    let check = |license: &str, expect: bool| {
        let verdict = policy.check(&dep("ok"), Some(license));
        assert_eq!(verdict.passed, expect, "{license}: {verdict:?}");
    };
    check("MIT", true);
    check("MIT OR Apache-2.0", true);
    check("Apache-2.0 OR MIT", true);
    check("MIT OR GPL-3.0-only", true);
    check("MIT AND BSD-3-Clause", true);
    check("MIT AND GPL-3.0-only", false);
    check("GPL-3.0-only", false);
    check("ISC", false);
    check("ISC OR LGPL-2.1-only", false);
    check("(MIT OR ISC) AND (Apache-2.0 OR GPL-3.0-only)", true);
    check("Apache-2.0 WITH LLVM-exception", true);
    check("MIT/Apache-2.0", true);
    check("not a license at all", false);
    assert!(policy.check(&dep("other"), Some("MIT")).passed);
    let refused = policy.check(&dep("stranger"), Some("MIT"));
    assert_eq!(
        refused.findings,
        ["cargo:stranger: the package is not on the allow list"]
    );
}

#[test]
fn local_licenses_read_installed_metadata() {
    let home = tempfile::tempdir().unwrap();
    let ws = tempfile::tempdir().unwrap();
    let write = |path: std::path::PathBuf, text: &str| {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    };
    let registry = home
        .path()
        .join("registry/src/index.crates.io-1949cf8c6b5b557f");
    write(
        registry.join("anyhow-1.0.9/Cargo.toml"),
        "[package]\nname = \"anyhow\"\nlicense = \"MIT\"\n",
    );
    write(
        registry.join("anyhow-1.0.10/Cargo.toml"),
        "[package]\nname = \"anyhow\"\nlicense = \"MIT OR Apache-2.0\"\n",
    );
    write(
        registry.join("anyhow-derive-9.0.0/Cargo.toml"),
        "[package]\nname = \"anyhow-derive\"\nlicense = \"GPL-3.0-only\"\n",
    );
    write(
        registry.join("locked-1.0.0/Cargo.toml"),
        "[package]\nname = \"locked\"\nlicense = \"ISC\"\n",
    );
    write(
        registry.join("locked-2.0.0/Cargo.toml"),
        "[package]\nname = \"locked\"\nlicense = \"GPL-3.0-only\"\n",
    );
    write(
        ws.path().join("Cargo.lock"),
        "version = 4\n[[package]]\nname = \"locked\"\nversion = \"1.0.0\"\n",
    );
    write(
        ws.path().join("node_modules/@scope/pkg/package.json"),
        r#"{"name": "@scope/pkg", "license": "BSD-3-Clause"}"#,
    );
    write(
        ws.path().join("node_modules/old/package.json"),
        r#"{"name": "old", "licenses": [{"type": "MIT"}, {"type": "Apache-2.0"}]}"#,
    );
    let site = ws.path().join(".venv/lib/python3.12/site-packages");
    write(
        site.join("PyYAML-6.0.1.dist-info/METADATA"),
        "Metadata-Version: 2.1\nName: PyYAML\nLicense: MIT\n\nLicense: GPL in the description\n",
    );
    write(
        site.join("new_style-1.0.dist-info/METADATA"),
        "Metadata-Version: 2.4\nName: new-style\nLicense-Expression: Apache-2.0 OR MIT\n",
    );
    let env = |key: &str| (key == "CARGO_HOME").then(|| home.path().display().to_string());
    let local = LocalLicenses::for_workspace(ws.path(), &env);
    assert_eq!(local.site_packages, [site]);
    let license = |ecosystem, name: &str| {
        local.license(&Dependency {
            ecosystem,
            name: name.into(),
            version: None,
        })
    };
    assert_eq!(
        license(Ecosystem::Cargo, "anyhow").as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert_eq!(license(Ecosystem::Cargo, "locked").as_deref(), Some("ISC"));
    assert_eq!(license(Ecosystem::Cargo, "absent"), None);
    assert_eq!(
        license(Ecosystem::Npm, "@scope/pkg").as_deref(),
        Some("BSD-3-Clause")
    );
    assert_eq!(
        license(Ecosystem::Npm, "old").as_deref(),
        Some("MIT OR Apache-2.0")
    );
    assert_eq!(license(Ecosystem::Pypi, "pyyaml").as_deref(), Some("MIT"));
    assert_eq!(
        license(Ecosystem::Pypi, "new-style").as_deref(),
        Some("Apache-2.0 OR MIT")
    );
    assert_eq!(license(Ecosystem::Pypi, "absent"), None);
}

#[test]
fn python_license_falls_back_to_classifiers() {
    let metadata =
        "Name: x\nLicense: BSD-ish, see file\nClassifier: License :: OSI Approved :: MIT License\n";
    assert_eq!(python_license(metadata).as_deref(), Some("MIT"));
    assert_eq!(python_license("Name: x\nLicense: UNKNOWN\n"), None);
}
