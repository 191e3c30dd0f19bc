//! Integration tests of the local tier: installs from a loopback package index, and a real GGUF model.

#[cfg(test)]
mod install;
#[cfg(test)]
mod model;
