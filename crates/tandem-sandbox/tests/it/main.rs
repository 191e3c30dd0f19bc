//! Escape tests: commands in the sandbox try to write outside the workspace, through symlinks and
//! renames, plant git hooks, reach the network and use forbidden syscalls, in both modes and as an
//! unprivileged user; the allowlist proxy lets listed names through and refuses the rest.

#[cfg(test)]
mod escapes;
