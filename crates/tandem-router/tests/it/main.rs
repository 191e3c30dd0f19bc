//! Integration tests for `tandem-router`: the default table on representative requests, the shipped
//! trace (generation, evaluation, a learned scorer on a held-out half) and determinism.

#[cfg(test)]
mod default_table;
#[cfg(test)]
mod shipped_trace;
#[cfg(test)]
mod trace_gen;
