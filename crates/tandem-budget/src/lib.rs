//! Token and cost budgets per key, user, team and project per UTC day or month, and requests and
//! tokens per minute, sans-IO.
//!
//! A request carries [`Scope`]s (`key:laptop`, `user:alice`, `team:payments`, `project:web`). Before the
//! upstream call the gateway [`Ledger::reserve`]s an [`Estimate`] (prompt tokens plus the output reserve,
//! priced by [`Prices`]) against every [`BudgetRule`] and [`RateRule`] matching one of them, all or
//! nothing; a refusal is an [`Exceeded`] (429). After the call, including a stream cut off by the client,
//! it [`Ledger::settle`]s the actual usage. [`Ledger::export`] and [`Ledger::import`] carry the settled
//! spend to and from the store. For several replicas, [`Ledger::shared_plan`] describes the same checks
//! for a shared counter service ([`SharedPlan`]).
//!
//! Architecture invariant: sans-IO. No tokio, no files, no clock (`now_ms` is a parameter, Unix
//! milliseconds), no randomness; the state is behind one `std::sync::Mutex`.
//!
//! Architecture invariant: a budget admits a request only if `used + reserved + estimate <= limit`,
//! so the spend exceeds a limit only by what settled requests used beyond their estimates.

mod error;
mod exceeded;
mod ledger;
mod price;
mod rule;
mod scope;
mod shared;
mod time;

pub use error::{Error, Result};
pub use exceeded::{Exceeded, ExceededKind};
pub use ledger::{Estimate, Ledger, PersistedUsage, Reservation, UsageRow, WindowKind};
pub use price::{Price, Prices};
pub use rule::{BudgetRule, RateRule};
pub use scope::{Scope, ScopeKind, ScopePattern};
pub use shared::{Counter, Limits, SharedPlan, nanos};
pub use time::{Period, format_rfc3339};
