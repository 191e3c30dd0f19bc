//! Placeholder until the ledger benchmark lands.
fn main() {}
