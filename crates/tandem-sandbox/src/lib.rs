//! The sandbox for every command Tandem's agent runs.
//!
//! The host side ([`Sandbox`]) runs the command through bubblewrap: new user, mount, PID, IPC, UTS
//! and network namespaces, a read-only root, the writable roots bound in, and protected paths
//! (`.git/hooks`, `.git/config`, shell startup files, `tandem.toml`; also in nested repositories)
//! bound read-only over them. Inside, the small single-threaded helper (`tandem-sandbox exec`)
//! applies Landlock (writes only to the writable roots, no TCP) and seccomp (no io_uring, ptrace,
//! namespaces, mounts, `TIOCSTI`; Unix sockets only unless the network is allowed), then `exec`s
//! the command. The network is off by default; a domain allowlist goes through the [`Proxy`] on a
//! Unix socket bridged into the empty network namespace. Without user namespaces it falls back to
//! Landlock and seccomp alone with a loud warning, and without Landlock either it refuses to run.

mod confine;
mod error;
mod filter;
pub mod helper;
mod launch;
mod policy;
pub mod proxy;

pub use confine::{Landlocked, confine};
pub use error::{Error, Result};
pub use launch::{BRIDGE_PORT, Mode, Sandbox};
pub use policy::{Network, PROTECTED, Policy};
pub use proxy::{Decision, Proxy};
