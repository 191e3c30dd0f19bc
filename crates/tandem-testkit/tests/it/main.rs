//! Integration tests of the testkit upstream, driven over real HTTP with reqwest.

mod admin;
mod anthropic;
mod faults;
mod openai;
mod pacing;
mod support;
