//! Pace routing for `model: "auto"`: pick the fast `live` tier or the slow `deep` tier for a request.
//!
//! The pipeline is three pure steps:
//! 1. [`extract`] turns a canonical [`ChatRequest`] plus [`SessionFacts`] into [`Features`], every one
//!    of them explainable (token estimates, task class from verbs, files named, tool errors, interrupts);
//! 2. a [`RuleTable`] of ordered, configurable rules decides when one matches (first match wins);
//! 3. otherwise a [`Scorer`] (the learned [`LogisticScorer`], or any implementation) estimates
//!    P(deep needed), and the router sends the request to the deep tier at or above a threshold.
//!
//! [`Router::route`] returns a [`Decision`] with a short header-safe reason; [`Router::explain`] prints
//! every feature, every rule and the score. The [`eval`] module replays labelled traces the way RouteLLM
//! evaluates routers (APGR, CPT), without calling any model.
//!
//! Architecture invariant: sans-IO. No tokio, no files, no clock, no randomness: seeds come in as parameters.

mod error;
pub mod eval;
pub mod features;
mod router;
mod rules;
pub mod scorer;

pub use error::{Error, Result};
pub use eval::{Report, TraceEntry, eval_file, evaluate, explain_request};
pub use features::{FeatureExtractor, Features, SessionFacts, TaskClass, extract};
pub use router::{Decision, Router, RouterConfig};
pub use rules::{
    Condition, EffortLevel, Rule, RuleConfig, RuleTable, default_rules, default_rules_for,
};
pub use scorer::{LogisticScorer, Scorer, ScorerConfig};

#[doc(no_inline)]
pub use tandem_protocol::ChatRequest;
