//! Integration tests of the testkit upstream, driven over real HTTP with reqwest.

mod admin;
mod anthropic;
mod faults;
mod openai;
mod pacing;
// `cfg(test)` lets clippy treat the helpers as test code, where unwrap and panic are allowed.
#[cfg(test)]
mod support;
