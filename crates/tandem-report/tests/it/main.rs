//! Integration tests of tandem-report: a hand-computed fixture history (a real git repository and
//! ledger entries) and the figures the report must give for it.

#[cfg(test)]
mod fixture;
