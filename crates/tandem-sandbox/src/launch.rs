//! The host's side: choose how to sandbox (bubblewrap with user namespaces, else Landlock and
//! seccomp alone, loudly), and build the command line that runs a program through the helper.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::policy::{Network, PROTECTED, Policy};
use crate::proxy::Proxy;
use crate::{Error, Result};

/// The port the helper's bridge listens on inside the sandbox's own network namespace.
pub const BRIDGE_PORT: u16 = 3128;
/// Where the proxy's Unix socket appears inside the sandbox.
const PROXY_SOCKET: &str = "/tmp/.tandem-proxy.sock";
/// How deep nested repositories are looked for (their hooks and config are protected too).
const NESTED_DEPTH: usize = 4;

/// How commands are confined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// bubblewrap: new user, mount, PID, IPC, UTS and network namespaces, a read-only root with the
    /// writable roots bound in and protected paths bound read-only over them; then Landlock and
    /// seccomp inside.
    Bwrap,
    /// No user namespaces here: Landlock and seccomp alone, network off.
    Landlock,
}

/// A sandbox for one policy: makes [`Command`]s that run programs confined.
pub struct Sandbox {
    policy: Policy,
    helper: PathBuf,
    /// Arguments before the helper's own (`__sandbox` when the helper is `tandem` itself).
    prefix: Vec<String>,
    mode: Mode,
    proxy: Option<Proxy>,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("policy", &self.policy)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    /// A sandbox for `policy`, confining through the helper binary at `helper`. Uses bubblewrap
    /// when user namespaces work, else Landlock and seccomp alone with a warning; never nothing.
    pub fn new(policy: Policy, helper: impl Into<PathBuf>) -> Result<Sandbox> {
        let mode = detect();
        if mode == Mode::Landlock {
            tracing::warn!(
                "SANDBOX DEGRADED: bubblewrap cannot create user namespaces here; commands run under Landlock and seccomp only, with the network off, .git read-only and no new files at the top of the workspace"
            );
        }
        Sandbox::with_mode(policy, helper, mode)
    }

    /// A sandbox in a given mode (tests use it to exercise the fallback).
    pub fn with_mode(policy: Policy, helper: impl Into<PathBuf>, mode: Mode) -> Result<Sandbox> {
        Sandbox::with_resolver(policy, helper, mode, None)
    }

    /// A sandbox in a given mode whose proxy resolves names with `resolver` (trusted as it is;
    /// tests map allowed names to local servers with it).
    pub fn with_resolver(
        mut policy: Policy,
        helper: impl Into<PathBuf>,
        mode: Mode,
        resolver: Option<crate::proxy::Resolver>,
    ) -> Result<Sandbox> {
        policy.validate()?;
        if mode == Mode::Landlock && policy.network != Network::Off {
            tracing::warn!(
                "SANDBOX DEGRADED: a domain allowlist needs a network namespace; the network is off"
            );
            policy.network = Network::Off;
        }
        let proxy = match &policy.network {
            Network::Off => None,
            Network::Allowlist { domains } => Some(Proxy::start_with(domains, resolver)?),
        };
        Ok(Sandbox {
            policy,
            helper: helper.into(),
            prefix: Vec::new(),
            mode,
            proxy,
        })
    }

    /// Runs the helper as `helper <prefix…> exec …`, for a program that hosts the helper behind a
    /// subcommand (`tandem __sandbox`).
    pub fn with_helper_prefix(mut self, prefix: &[&str]) -> Sandbox {
        self.prefix = prefix.iter().map(|s| (*s).to_owned()).collect();
        self
    }

    /// How commands are confined.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The policy proxy, when the network is an allowlist (its decisions are logged there).
    pub fn proxy(&self) -> Option<&Proxy> {
        self.proxy.as_ref()
    }

    /// A command that runs `program` with `args` in the sandbox, in the workspace.
    pub fn command<I, S>(&self, program: &str, args: I) -> Result<Command>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<std::ffi::OsStr>,
    {
        let policy = serde_json::to_string(&self.policy)
            .map_err(|e| Error::Policy(format!("encoding: {e}")))?;
        let mut helper_args: Vec<String> = self.prefix.clone();
        helper_args.extend([
            "exec".into(),
            "--mode".into(),
            match self.mode {
                Mode::Bwrap => "bwrap".into(),
                Mode::Landlock => "landlock".into(),
            },
            "--policy".into(),
            policy,
        ]);
        if self.proxy.is_some() {
            helper_args.extend([
                "--bridge".into(),
                BRIDGE_PORT.to_string(),
                "--proxy-socket".into(),
                PROXY_SOCKET.into(),
            ]);
        }
        helper_args.push("--".into());
        helper_args.push(program.into());
        let mut command = match self.mode {
            Mode::Landlock => {
                let mut c = Command::new(&self.helper);
                c.args(&helper_args);
                c
            }
            Mode::Bwrap => {
                let mut c = Command::new(bwrap().ok_or_else(|| {
                    Error::Unavailable("bubblewrap (`bwrap`) is not installed".into())
                })?);
                c.args(self.bwrap_args()?);
                c.arg("--").arg(&self.helper).args(&helper_args);
                c
            }
        };
        command.args(args).current_dir(&self.policy.workspace);
        Ok(command)
    }

    fn bwrap_args(&self) -> Result<Vec<String>> {
        let mut a: Vec<String> = [
            "--die-with-parent",
            "--new-session",
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup-try",
            "--unshare-net",
            "--cap-drop",
            "ALL",
            "--ro-bind",
            "/",
            "/",
            "--dev",
            "/dev",
            "--proc",
            "/proc",
            "--tmpfs",
            "/tmp",
        ]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
        let text = |p: &Path| p.to_string_lossy().into_owned();
        for root in self.policy.roots() {
            a.extend(["--bind".into(), text(root), text(root)]);
        }
        let (pinned, protected) = protected_paths(&self.policy)?;
        // Each repository's `.git` becomes a mount point of its own, so it cannot be renamed away
        // and replaced by one with writable hooks.
        for path in pinned {
            a.extend(["--bind".into(), text(&path), text(&path)]);
        }
        for path in protected {
            a.extend(["--ro-bind".into(), text(&path), text(&path)]);
        }
        // The helper stays visible even when it lives under /tmp, which the sandbox replaces.
        a.extend(["--ro-bind".into(), text(&self.helper), text(&self.helper)]);
        if let Some(proxy) = &self.proxy {
            a.extend(["--bind".into(), text(proxy.socket()), PROXY_SOCKET.into()]);
        }
        a.extend(["--chdir".into(), text(&self.policy.workspace)]);
        Ok(a)
    }
}

/// The `.git` directories in the writable roots (to pin as mount points) and the existing
/// protected paths in the roots and in the repositories nested in them. A repository's hooks
/// directory is created first when missing, so that it can be bound read-only.
fn protected_paths(policy: &Policy) -> Result<(Vec<PathBuf>, Vec<PathBuf>)> {
    let mut pinned = Vec::new();
    let mut out = Vec::new();
    for root in policy.roots() {
        let mut dirs = vec![root.to_path_buf()];
        let mut depth = 0;
        while !dirs.is_empty() && depth <= NESTED_DEPTH {
            let mut next = Vec::new();
            for dir in dirs {
                let git = dir.join(".git");
                if git.is_dir() {
                    pinned.push(git.clone());
                }
                if git.is_dir() && !git.join("hooks").exists() {
                    std::fs::create_dir(git.join("hooks")).map_err(crate::error::io(format!(
                        "creating {}",
                        git.join("hooks").display()
                    )))?;
                }
                for name in PROTECTED {
                    let path = dir.join(name);
                    // `symlink_metadata`: a protected name that is a symlink is bound as the link
                    // itself resolves inside the sandbox's read-only view.
                    if path.symlink_metadata().is_ok() {
                        out.push(path);
                    }
                }
                if depth < NESTED_DEPTH
                    && let Ok(entries) = std::fs::read_dir(&dir)
                {
                    for entry in entries.flatten() {
                        let name = entry.file_name();
                        let skip = matches!(
                            name.to_string_lossy().as_ref(),
                            ".git" | "node_modules" | "target" | ".venv"
                        );
                        if !skip && entry.file_type().is_ok_and(|t| t.is_dir()) {
                            next.push(entry.path());
                        }
                    }
                }
            }
            dirs = next;
            depth += 1;
        }
    }
    Ok((pinned, out))
}

/// The system's `bwrap`.
fn bwrap() -> Option<PathBuf> {
    static FOUND: OnceLock<Option<PathBuf>> = OnceLock::new();
    FOUND
        .get_or_init(|| {
            let path = std::env::var_os("PATH")?;
            std::env::split_paths(&path)
                .map(|dir| dir.join("bwrap"))
                .find(|p| p.is_file())
        })
        .clone()
}

/// Whether bubblewrap works here with the namespaces the sandbox asks for.
fn detect() -> Mode {
    static MODE: OnceLock<Mode> = OnceLock::new();
    *MODE.get_or_init(|| {
        let Some(bwrap) = bwrap() else {
            return Mode::Landlock;
        };
        let works = Command::new(bwrap)
            .args([
                "--unshare-user",
                "--unshare-net",
                "--unshare-pid",
                "--ro-bind",
                "/",
                "/",
                "--proc",
                "/proc",
                "--",
                "true",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if works { Mode::Bwrap } else { Mode::Landlock }
    })
}
