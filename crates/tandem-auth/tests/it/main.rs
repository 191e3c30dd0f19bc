//! Integration tests for tandem-auth: API keys through the authenticator, and OIDC tokens signed with the
//! fixed test keys in `fixtures/` (test-only key pairs, never used anywhere else) against a mock issuer
//! that serves discovery and a JWKS on 127.0.0.1.

#[cfg(test)]
mod authenticator;
#[cfg(test)]
mod oidc;
#[cfg(test)]
mod support;
