//! The helper's side, run inside the sandbox on its single thread just before `exec`: Landlock
//! (writes only to the writable roots; no TCP unless through the proxy bridge) and the seccomp
//! filters. Both are inherited by the command and everything it starts.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, PathBeneath, PathFd,
    Ruleset, RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope,
};

use crate::policy::{PROTECTED, Policy};
use crate::{Error, Mode, Result, filter};

/// Device files a command may write.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
    "/dev/ptmx",
    "/dev/pts",
    "/dev/shm",
];

/// How well the Landlock layer took.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Landlocked {
    /// Every requested restriction is enforced.
    Fully,
    /// Some (newer) restrictions are not supported by this kernel.
    Partially,
    /// The kernel has no Landlock.
    Not,
}

/// Applies Landlock and seccomp to the calling thread. `bridge` is the in-sandbox proxy port, the
/// only TCP destination allowed. In [`Mode::Landlock`] (no namespaces) Landlock must be enforced
/// and is stricter: `.git` is read-only as a whole, and new files can only be made below the
/// workspace's subdirectories, because Landlock cannot carve a read-only hole into a writable tree.
pub fn confine(policy: &Policy, mode: Mode, bridge: Option<u16>) -> Result<Landlocked> {
    let landlocked = landlock(policy, mode, bridge)?;
    if mode == Mode::Landlock && landlocked == Landlocked::Not {
        return Err(Error::Unavailable(
            "no user namespaces for bubblewrap and no Landlock in this kernel".into(),
        ));
    }
    filter::install(bridge.is_some())?;
    Ok(landlocked)
}

fn landlock(policy: &Policy, mode: Mode, bridge: Option<u16>) -> Result<Landlocked> {
    let abi = ABI::V6;
    let err = |e: landlock::RulesetError| Error::Landlock(e.to_string());
    let mut ruleset = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(abi))
        .map_err(err)?
        .handle_access(AccessNet::BindTcp | AccessNet::ConnectTcp)
        .map_err(err)?
        .scope(Scope::AbstractUnixSocket | Scope::Signal)
        .map_err(err)?
        .create()
        .map_err(err)?;
    let read = AccessFs::from_read(abi);
    let all = AccessFs::from_all(abi);
    ruleset = ruleset
        .add_rule(PathBeneath::new(open("/")?, read))
        .map_err(err)?;
    let mut writable: Vec<PathBuf> = Vec::new();
    match mode {
        Mode::Bwrap => {
            writable.extend(policy.roots().map(Path::to_path_buf));
            // bubblewrap gives the command a private /tmp.
            writable.push(PathBuf::from("/tmp"));
        }
        Mode::Landlock => {
            // Every entry of the workspace but `.git` and the protected ones; the workspace itself
            // stays closed (a right on a directory reaches everything below it, protected paths
            // included). Other writable roots (the helper's private temporary directory among
            // them) are writable whole.
            grant_around_protected(&policy.workspace, NESTED_DEPTH, &mut writable)?;
            writable.extend(policy.writable.iter().cloned());
        }
    }
    // Directories are writable below; files (and devices) only themselves. Paths that do not
    // exist here are skipped.
    let devices = DEVICES.iter().map(PathBuf::from);
    for path in writable.into_iter().chain(devices) {
        let Ok(fd) = open(&path) else { continue };
        let access = if path.is_dir() {
            all
        } else {
            AccessFs::from_file(abi)
        };
        ruleset = ruleset
            .add_rule(PathBeneath::new(fd, access))
            .map_err(err)?;
    }
    if let Some(port) = bridge {
        ruleset = ruleset
            .add_rule(NetPort::new(port, AccessNet::ConnectTcp))
            .map_err(err)?;
    }
    let status = ruleset.restrict_self().map_err(err)?;
    Ok(match status.ruleset {
        RulesetStatus::FullyEnforced => Landlocked::Fully,
        RulesetStatus::PartiallyEnforced => Landlocked::Partially,
        _ => Landlocked::Not,
    })
}

/// How deep nested repositories are looked for.
const NESTED_DEPTH: usize = 4;

/// Adds the entries of `dir` to `writable`, except `.git` and protected names; a subdirectory that
/// holds any of those (within `depth` levels) is split the same way instead of granted whole.
fn grant_around_protected(dir: &Path, depth: usize, writable: &mut Vec<PathBuf>) -> Result<()> {
    let entries =
        std::fs::read_dir(dir).map_err(crate::error::io(format!("listing {}", dir.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if is_guarded(&name) {
            continue;
        }
        let path = entry.path();
        if depth > 0
            && entry.file_type().is_ok_and(|t| t.is_dir())
            && holds_guarded(&path, depth - 1)
        {
            grant_around_protected(&path, depth - 1, writable)?;
        } else {
            writable.push(path);
        }
    }
    Ok(())
}

fn is_guarded(name: &str) -> bool {
    name == ".git" || PROTECTED.contains(&name)
}

/// Whether `dir` or a directory below it (within `depth` levels) holds `.git` or a protected name.
fn holds_guarded(dir: &Path, depth: usize) -> bool {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return false;
    };
    entries.flatten().any(|entry| {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        is_guarded(&name)
            || (depth > 0
                && !matches!(name.as_ref(), "node_modules" | "target" | ".venv")
                && entry.file_type().is_ok_and(|t| t.is_dir())
                && holds_guarded(&entry.path(), depth - 1))
    })
}

fn open(path: impl AsRef<Path>) -> Result<PathFd> {
    let path = path.as_ref();
    PathFd::new(path).map_err(|e| Error::Landlock(format!("{}: {e}", path.display())))
}
