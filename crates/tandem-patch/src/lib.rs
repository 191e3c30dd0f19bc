//! Fast-apply for the coding agent, sans IO: read a model's edits as they stream in, and apply them to file contents.
//!
//! - [`Parser`] turns model text, pushed in any pieces, into [`Event`]s: each [`Edit`] as soon as its block or hunk
//!   is complete. It reads aider search/replace blocks, unified diffs, Codex `apply_patch` envelopes and fenced
//!   whole-file rewrites.
//! - [`apply`] and [`apply_all`] apply edits to a file's text (exact match, then whitespace-tolerant), refusing
//!   ambiguous ones, and return the new text with per-hunk changes; [`apply_selected`] keeps only accepted hunks.
//! - [`unified_diff`] renders a change for display and commit bodies.
//! - [`Drafter`] proposes continuations of a whole-file rewrite from the original file (speculative drafts).
//!
//! The crate reads no files and has no async: the caller supplies file contents and writes results.

mod apply;
mod diff;
mod draft;
mod edit;
mod error;
mod locate;
mod parser;
mod text;

pub use apply::{Applied, apply, apply_all};
pub use diff::{Hunk, apply_selected, hunks, unified_diff};
pub use draft::Drafter;
pub use edit::{Edit, Format, Op, Replace};
pub use error::{Error, Result};
pub use parser::{Event, Parser, ParserConfig, parse};
