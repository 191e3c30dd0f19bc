//! What a sandboxed command may do: which directories it may write, which paths inside them stay
//! read-only, and what network it gets.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Names that stay read-only wherever they appear in a writable root: things that something
/// outside the sandbox later reads or runs (git hooks and config, shell startup files, Tandem's own
/// configuration and gates).
pub const PROTECTED: &[&str] = &[
    ".git/hooks",
    ".git/config",
    ".gitmodules",
    ".bashrc",
    ".bash_profile",
    ".bash_login",
    ".bash_logout",
    ".profile",
    ".zshrc",
    ".zshenv",
    ".zprofile",
    ".zlogin",
    "tandem.toml",
    ".tandem",
];

/// Network access of a sandboxed command.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum Network {
    /// No network at all: an empty network namespace, and no sockets but Unix ones.
    #[default]
    Off,
    /// Only HTTP(S) to these domains (`example.org` or `*.example.org`), through Tandem's policy
    /// proxy; IP literals and every other name are refused.
    Allowlist {
        /// Allowed domain patterns.
        domains: Vec<String>,
    },
}

/// The sandbox policy of one command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// The project directory: the one writable root (absolute).
    pub workspace: PathBuf,
    /// More writable directories (absolute), e.g. a build cache outside the workspace.
    #[serde(default)]
    pub writable: Vec<PathBuf>,
    /// Network access.
    #[serde(default)]
    pub network: Network,
}

impl Policy {
    /// A policy with only `workspace` writable and the network off.
    pub fn new(workspace: impl Into<PathBuf>) -> Policy {
        Policy {
            workspace: workspace.into(),
            writable: Vec::new(),
            network: Network::Off,
        }
    }

    /// Checks paths and domain patterns.
    pub fn validate(&self) -> crate::Result<()> {
        for root in std::iter::once(&self.workspace).chain(&self.writable) {
            if !root.is_absolute() {
                return Err(crate::Error::Policy(format!(
                    "writable root {} is not absolute",
                    root.display()
                )));
            }
            if !root.is_dir() {
                return Err(crate::Error::Policy(format!(
                    "writable root {} is not a directory",
                    root.display()
                )));
            }
            if root == Path::new("/") {
                return Err(crate::Error::Policy("`/` cannot be writable".into()));
            }
        }
        if let Network::Allowlist { domains } = &self.network {
            for domain in domains {
                crate::proxy::Pattern::parse(domain)?;
            }
        }
        Ok(())
    }

    /// The writable roots: the workspace, then the others.
    pub fn roots(&self) -> impl Iterator<Item = &Path> {
        std::iter::once(self.workspace.as_path()).chain(self.writable.iter().map(PathBuf::as_path))
    }
}
