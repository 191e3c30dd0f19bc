//! Identity for the gateway: who is calling, proven by an API key or an OIDC bearer token.
//!
//! [`Authenticator::authenticate`] turns the bearer credential of one request into a [`Principal`]:
//! `tdm_` API keys are looked up by their SHA-256 hash in a [`KeyStore`] (expiry and revocation are checked
//! on every request, nothing is cached here), JWTs are validated by an [`OidcValidator`] against the
//! issuer's JWKS (cached, refetched on an unknown `kid`), and a request without credentials is anonymous
//! only where that is allowed.
//!
//! **Invariant:** no error message, log line or `Debug` output contains a credential.

mod authenticator;
mod error;
mod keys;
mod oidc;

pub use crate::authenticator::{Authenticator, AuthenticatorParts};
pub use crate::error::{Error, Refusal, Result};
pub use crate::keys::{
    KEY_PREFIX, KeyRecord, KeyStatus, KeyStore, NewKey, generate_key, hash_key, key_id,
    looks_like_api_key, parse_duration,
};
pub use crate::oidc::{OidcConfig, OidcValidator};

/// The user name of anonymous principals.
pub const ANONYMOUS_USER: &str = "anonymous";

/// Who made a request, as proven by its credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    /// The user: the key's owner, or the configured user claim of the token (falling back to `sub`).
    pub user: String,
    /// Groups: the key's team, or the configured groups claim of the token.
    pub groups: Vec<String>,
    /// The project the key is bound to, or the configured project claim of the token.
    pub project: Option<String>,
    /// The id of the API key used (`key_…`), never the key itself.
    pub key_id: Option<String>,
    /// How the principal was authenticated.
    pub method: AuthMethod,
}

impl Principal {
    /// The principal of a request without credentials, where anonymous access is allowed.
    pub fn anonymous() -> Self {
        Principal {
            user: ANONYMOUS_USER.to_owned(),
            groups: Vec::new(),
            project: None,
            key_id: None,
            method: AuthMethod::Anonymous,
        }
    }
}

/// How a [`Principal`] was authenticated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthMethod {
    /// A `tdm_` API key from the key store.
    Key,
    /// An OIDC bearer token (a JWT) validated against the issuer's JWKS.
    Oidc,
    /// No credentials, where anonymous access is allowed.
    Anonymous,
}

impl AuthMethod {
    /// A short lowercase name for records and logs: `key`, `oidc` or `anonymous`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Key => "key",
            AuthMethod::Oidc => "oidc",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}
