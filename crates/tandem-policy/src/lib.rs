//! Policies as code: Cedar policies decide which principal may use which model or tier, which tools a
//! request may carry and whether an agent run may reach the internet.
//!
//! A policy text is parsed and validated against [`SCHEMA`] once ([`Policy::parse`]); a bad text is
//! refused with messages naming the source, the line and column and the policy, so the caller can keep
//! its last good [`Policy`]. [`Policy::evaluate`] answers a [`Query`] with a [`Decision`]: deny by
//! default, and every deny names the forbid that decided it or says that no permit matched.
//! [`Policy::explain`] prints the request as Cedar sees it and how it was decided.
//!
//! Architecture invariant: sans-IO. Text in, decisions out; no tokio, no files, no clock.

mod cache;
mod error;
mod policy;
mod query;

pub use error::{Error, Result};
pub use policy::Policy;
pub use query::{Action, Decision, Principal, Query};

/// The Cedar schema (human-readable `.cedarschema` syntax) that every policy is validated against.
///
/// Namespace `Tandem`: principal `User` (in `Team` and `Project`, optional `key_id`), resources `Model`
/// (in `Tier`; `provider`, `name`, `alias`, `tier`), `Tool` and `Project`, actions `use_model`,
/// `use_tool` and `enable_internet`, and one context record (`context_tokens`, `tools`, `api`,
/// `stream`, `project`). The crate README describes it.
pub const SCHEMA: &str = include_str!("tandem.cedarschema");

/// The policy in force when no policy file is configured: everyone may do everything.
pub const DEFAULT_POLICY: &str =
    "@id(\"default-allow-all\")\npermit(principal, action, resource);\n";
