//! Integration tests for `tandem-budget`: every rule kind and pattern, all-or-nothing reservations,
//! concurrency bounds, settlement (drop, cut-off streams, overruns), window rollover, persistence,
//! refusal messages and the configuration shape.

#[cfg(test)]
mod atomic;
#[cfg(test)]
mod concurrency;
#[cfg(test)]
mod config;
#[cfg(test)]
mod messages;
#[cfg(test)]
mod persist;
#[cfg(test)]
mod rollover;
#[cfg(test)]
mod rules;
#[cfg(test)]
mod settle;
#[cfg(test)]
mod support;
