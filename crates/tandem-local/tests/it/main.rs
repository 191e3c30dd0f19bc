//! Integration tests of the local tier: installs from a loopback package index, and a real GGUF model.

mod install;
mod model;
