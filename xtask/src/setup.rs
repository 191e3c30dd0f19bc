//! `cargo xtask setup`: installs what the test suite needs, idempotently and quietly when present.
//!
//! Everything lands in a cache directory outside the clone (`TANDEM_CI_CACHE`, default
//! `$HOME/.cache/tandem-ci`) so that a second run on the same machine installs nothing:
//!
//! - a Python venv with the pinned packages of `tests/clients/requirements.txt`;
//! - `@openai/codex` from npm, into `<cache>/npm` (never a global install);
//! - `cargo-deny` and `cargo-nextest`, through `cargo install --locked` when missing;
//! - `cargo-fuzz`, pinned, into `<cache>/cargo-fuzz` (`cargo install --root`), for `ci fuzz`;
//! - the Debian packages `bubblewrap` (driven by `tandem-sandbox`), `tmux` (the terminal UI test), and
//!   `cmake` and `libclang-dev` (llama.cpp's build, for `tandem-local`), `postgresql` and `redis-server`
//!   (the servers the scale-out tests share) and `chromium` (the dashboard's browser test), through `apt-get`, when missing.
//!
//! Python's `venv` module ships with the interpreter.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::cmd;

/// The Codex CLI release the client tests drive; `docs/` and the shared reference describe 0.169.
pub(crate) const CODEX_VERSION: &str = "0.169.0";
/// cargo-deny release installed when `cargo deny` is missing; it builds with the pinned toolchain.
const CARGO_DENY_VERSION: &str = "0.20.2";
/// cargo-fuzz release for the fuzz step; it runs on the stable toolchain with `RUSTC_BOOTSTRAP=1`.
const CARGO_FUZZ_VERSION: &str = "0.13.2";
/// Pinned Python requirements, also the cache key of the venv.
const REQUIREMENTS: &str = "tests/clients/requirements.txt";
/// Written into the venv after a successful install, holding the requirements it was built from.
const VENV_STAMP: &str = ".tandem-requirements";

/// Where the installed tools live.
pub(crate) struct Tools {
    pub(crate) python: PathBuf,
    pub(crate) codex: PathBuf,
    /// The `cargo-fuzz` binary; run it directly with `fuzz` as its first argument.
    pub(crate) cargo_fuzz: PathBuf,
}

impl Tools {
    /// Paths of the tools in the cache directory, whether or not they are installed yet.
    pub(crate) fn locate() -> Result<Tools> {
        let cache = cache_dir()?;
        Ok(Tools {
            python: cache.join("venv/bin/python"),
            codex: cache.join("npm/node_modules/.bin/codex"),
            cargo_fuzz: cache.join("cargo-fuzz/bin/cargo-fuzz"),
        })
    }
}

/// Installs whatever is missing and returns the tool paths.
pub(crate) fn run(root: &Path) -> Result<Tools> {
    let cache = cache_dir()?;
    fs::create_dir_all(&cache).with_context(|| format!("cannot create {}", cache.display()))?;
    let tools = Tools::locate()?;
    timed("python venv", || ensure_venv(root, &cache, &tools.python))?;
    timed("codex cli", || ensure_codex(&cache, &tools.codex))?;
    timed("oidc provider", || ensure_oidc_provider(root))?;
    timed("debian packages", ensure_debian_packages)?;
    timed("cargo-deny", ensure_cargo_deny)?;
    timed("cargo-nextest", ensure_cargo_nextest)?;
    timed("cargo-fuzz", || {
        ensure_cargo_fuzz(&cache, &tools.cargo_fuzz)
    })?;
    Ok(tools)
}

/// Debian packages the build and the tests need: `bubblewrap` for the sandbox's escape tests, `tmux` for
/// the terminal UI test, `cmake` and `libclang-dev` (bindgen) to build llama.cpp for `tandem-local`, and
/// `postgresql` and `redis-server` for the scale-out tests (started by `services`, not as system services), and
/// `chromium` for the dashboard's browser test (driven by Playwright with `executable_path`).
const DEBIAN: &[&str] = &[
    "bubblewrap",
    "tmux",
    "cmake",
    "libclang-dev",
    "postgresql",
    "redis-server",
    "chromium",
];

/// The Debian packages that building `tandem` needs (llama.cpp): for `cargo xtask quickstart`.
pub(crate) fn ensure_build_packages() -> Result<()> {
    timed("debian packages", || {
        apt_install(&["cmake", "libclang-dev"])
    })
}

fn ensure_debian_packages() -> Result<Installed> {
    apt_install(DEBIAN)
}

fn apt_install(packages: &[&str]) -> Result<Installed> {
    let missing: Vec<&str> = packages
        .iter()
        .filter(|package| {
            cmd::probe(&mut cmd::new("dpkg-query", ["-W", "-f=${Status}", package]))
                .is_none_or(|status| !status.contains("install ok installed"))
        })
        .copied()
        .collect();
    let names = packages.to_vec();
    if missing.is_empty() {
        return Ok(Installed::AlreadyPresent(names.join(", ")));
    }
    cmd::run(&mut cmd::new("apt-get", ["update", "-q"]))?;
    let mut args = vec!["install", "-y", "-q", "--no-install-recommends"];
    args.extend(&missing);
    cmd::run(&mut cmd::new("apt-get", args))?;
    Ok(Installed::Now(missing.join(", ")))
}

/// `TANDEM_CI_CACHE`, else `$HOME/.cache/tandem-ci`.
pub(crate) fn cache_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TANDEM_CI_CACHE").filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir));
    }
    let Some(home) = std::env::var_os("HOME").filter(|home| !home.is_empty()) else {
        bail!(
            "neither TANDEM_CI_CACHE nor HOME is set, so there is no cache directory for the test tools"
        );
    };
    Ok(PathBuf::from(home).join(".cache/tandem-ci"))
}

/// Runs one install step and reports it on one line, with its time when it did any work.
fn timed(what: &str, step: impl FnOnce() -> Result<Installed>) -> Result<()> {
    let start = Instant::now();
    match step().with_context(|| format!("setup of {what} failed"))? {
        Installed::AlreadyPresent(version) => eprintln!("setup: {what}: present ({version})"),
        Installed::Now(version) => {
            eprintln!(
                "setup: {what}: installed {version} in {:.0?}",
                start.elapsed()
            );
        }
    }
    Ok(())
}

enum Installed {
    AlreadyPresent(String),
    Now(String),
}

fn ensure_venv(root: &Path, cache: &Path, python: &Path) -> Result<Installed> {
    let requirements_path = root.join(REQUIREMENTS);
    let requirements = fs::read_to_string(&requirements_path)
        .with_context(|| format!("cannot read {}", requirements_path.display()))?;
    let venv = cache.join("venv");
    let stamp = venv.join(VENV_STAMP);
    let pins = requirements_summary(&requirements);
    let healthy = cmd::probe(&mut cmd::new(
        python,
        [
            "-c",
            "import openai, anthropic, pytest, httpx, schemathesis, playwright, PIL",
        ],
    ))
    .is_some();
    if healthy && fs::read_to_string(&stamp).ok().as_deref() == Some(requirements.as_str()) {
        return Ok(Installed::AlreadyPresent(pins));
    }
    if !python.exists() {
        cmd::run(cmd::new("python3", ["-m", "venv"]).arg(&venv))?;
    }
    cmd::run(
        cmd::new(
            python,
            [
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "-r",
            ],
        )
        .arg(&requirements_path),
    )?;
    fs::write(&stamp, &requirements)
        .with_context(|| format!("cannot write {}", stamp.display()))?;
    Ok(Installed::Now(pins))
}

/// `openai==1.2.3 pytest==4.5.6` from the requirements file, for the log line.
fn requirements_summary(requirements: &str) -> String {
    requirements
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ensure_codex(cache: &Path, codex: &Path) -> Result<Installed> {
    let wanted = format!("codex-cli {CODEX_VERSION}");
    let version =
        || cmd::probe(&mut cmd::new(codex, ["--version"])).map(|out| out.trim().to_owned());
    if version().as_deref() == Some(wanted.as_str()) {
        return Ok(Installed::AlreadyPresent(wanted));
    }
    let prefix = cache.join("npm");
    cmd::run(
        cmd::new(
            "npm",
            [
                "install",
                "--no-save",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ],
        )
        .arg(&prefix)
        .arg(format!("@openai/codex@{CODEX_VERSION}")),
    )?;
    match version() {
        Some(found) if found == wanted => Ok(Installed::Now(wanted)),
        found => bail!(
            "after npm install, `{} --version` printed {found:?}, expected `{wanted}`",
            codex.display()
        ),
    }
}

/// The OpenID provider the OIDC tests start (`tests/oidc`, pinned by its package-lock.json).
/// Installed inside the clone: its ES-module import ignores `NODE_PATH`.
fn ensure_oidc_provider(root: &Path) -> Result<Installed> {
    let dir = root.join("tests/oidc");
    let marker = dir.join("node_modules/oidc-provider/package.json");
    if marker.exists() {
        return Ok(Installed::AlreadyPresent("oidc-provider".to_owned()));
    }
    cmd::run(
        cmd::new(
            "npm",
            [
                "ci",
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                "--prefix",
            ],
        )
        .arg(&dir),
    )?;
    Ok(Installed::Now("oidc-provider".to_owned()))
}

fn ensure_cargo_deny() -> Result<Installed> {
    if let Some(version) = cmd::probe(&mut cmd::cargo(["deny", "--version"])) {
        return Ok(Installed::AlreadyPresent(version.trim().to_owned()));
    }
    cmd::run(&mut cmd::cargo([
        "install",
        "--locked",
        "--quiet",
        "cargo-deny",
        "--version",
        CARGO_DENY_VERSION,
    ]))?;
    Ok(Installed::Now(format!("cargo-deny {CARGO_DENY_VERSION}")))
}

fn ensure_cargo_nextest() -> Result<Installed> {
    if let Some(version) = nextest_version() {
        return Ok(Installed::AlreadyPresent(version));
    }
    cmd::run(&mut cmd::cargo([
        "install",
        "--locked",
        "--quiet",
        "cargo-nextest",
    ]))?;
    let Some(version) = nextest_version() else {
        bail!("`cargo nextest --version` still fails after installing cargo-nextest");
    };
    Ok(Installed::Now(version))
}

/// The first line of `cargo nextest --version`, or `None` when nextest is missing.
pub(crate) fn nextest_version() -> Option<String> {
    let out = cmd::probe(&mut cmd::cargo(["nextest", "--version"]))?;
    Some(out.lines().next().unwrap_or_default().trim().to_owned())
}

/// cargo-fuzz lives in the cache, not in `~/.cargo/bin`, so its pinned version is the one CI uses.
fn ensure_cargo_fuzz(cache: &Path, cargo_fuzz: &Path) -> Result<Installed> {
    let wanted = format!("cargo-fuzz {CARGO_FUZZ_VERSION}");
    let version =
        || cmd::probe(&mut cmd::new(cargo_fuzz, ["--version"])).map(|out| out.trim().to_owned());
    if version().as_deref() == Some(wanted.as_str()) {
        return Ok(Installed::AlreadyPresent(wanted));
    }
    cmd::run(
        cmd::cargo([
            "install",
            "--locked",
            "--quiet",
            "--force",
            "cargo-fuzz",
            "--version",
            CARGO_FUZZ_VERSION,
            "--root",
        ])
        .arg(cache.join("cargo-fuzz")),
    )?;
    match version() {
        Some(found) if found == wanted => Ok(Installed::Now(wanted)),
        found => bail!(
            "after cargo install, `{} --version` printed {found:?}, expected `{wanted}`",
            cargo_fuzz.display()
        ),
    }
}
