//! Tandem's own assistant. This crate holds the live tier's spot edit ([`edit::run`]): the model is
//! called through a `tandem serve` (so the agent is governed like any client), its edit blocks are
//! applied with `tandem-patch` as each completes in the stream, and an accepted change is recorded
//! in the audit ledger and committed on a `tandem/<slug>` branch with provenance trailers.

pub mod edit;
mod error;
pub mod git;
pub mod model;
pub mod pr;
pub mod prompt;
pub mod task;

pub use error::{Error, Result};
