//! Integration tests of the audit ledger: appending, sealing, proofs, every way of tampering with
//! the stored log, crash recovery, content capture, attestations, and the ledger in PostgreSQL.

#[cfg(test)]
mod ledger;
#[cfg(test)]
mod postgres;
#[cfg(test)]
mod support;
#[cfg(test)]
mod tamper;
