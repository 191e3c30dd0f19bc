//! The per-request entry point: one bearer credential in, one [`Principal`] (or a refusal) out.

use std::sync::Arc;

use crate::error::{Refusal, Result};
use crate::keys::{KEY_PREFIX, KeyStatus, KeyStore, hash_key, key_id};
use crate::oidc::{OidcValidator, looks_like_jwt};
use crate::{AuthMethod, Principal};

/// What an [`Authenticator`] is built from.
pub struct AuthenticatorParts {
    /// Where `tdm_` API keys are looked up; `None` refuses them.
    pub keys: Option<Arc<dyn KeyStore>>,
    /// How OIDC bearer tokens are validated; `None` treats them as unrecognized credentials.
    pub oidc: Option<OidcValidator>,
    /// Whether a request without a recognized credential is let in as [`Principal::anonymous`].
    pub allow_anonymous: bool,
}

/// Authenticates requests: `tdm_` keys against the key store, JWTs against the OIDC issuer.
///
/// Which path a credential takes is decided by its shape alone:
/// - `tdm_…` is an API key. It is refused when malformed, unknown, expired or revoked, whatever
///   `allow_anonymous` says: a wrong key is never silently downgraded to anonymous access.
/// - three dot-separated base64url parts is a JWT: validated when OIDC is configured and refused when
///   validation fails.
/// - anything else (a placeholder such as `sk-dummy` that a client insists on sending), a JWT where no OIDC
///   is configured, and no credential at all are anonymous where that is allowed, and refused otherwise.
///
/// Nothing is cached here: a key revoked in the store stops working on the next request.
pub struct Authenticator {
    keys: Option<Arc<dyn KeyStore>>,
    oidc: Option<OidcValidator>,
    allow_anonymous: bool,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator")
            .field("keys", &self.keys.is_some())
            .field("oidc", &self.oidc)
            .field("allow_anonymous", &self.allow_anonymous)
            .finish()
    }
}

impl Authenticator {
    /// An authenticator over the given key store and OIDC validator.
    pub fn new(parts: AuthenticatorParts) -> Self {
        let AuthenticatorParts {
            keys,
            oidc,
            allow_anonymous,
        } = parts;
        Authenticator {
            keys,
            oidc,
            allow_anonymous,
        }
    }

    /// The OIDC validator, for example to warm its JWKS cache at start-up.
    pub fn oidc(&self) -> Option<&OidcValidator> {
        self.oidc.as_ref()
    }

    /// Whether requests without credentials are let in.
    pub fn allows_anonymous(&self) -> bool {
        self.allow_anonymous
    }

    /// The principal behind `bearer` (the token of `Authorization: Bearer …` or `x-api-key`) at `now_ms`.
    ///
    /// Refusals are [`crate::Error::Unauthorized`] (401). [`crate::Error::Jwks`] (the issuer's keys could not
    /// be loaded) and [`crate::Error::Store`] are failures of the gateway, not of the credential.
    pub async fn authenticate(&self, bearer: Option<&str>, now_ms: i64) -> Result<Principal> {
        let bearer = bearer.map(str::trim).filter(|bearer| !bearer.is_empty());
        match bearer {
            Some(key) if key.starts_with(KEY_PREFIX) => match &self.keys {
                Some(store) => check_key(store.as_ref(), key, now_ms),
                None => Err(Refusal::KeysDisabled.into()),
            },
            Some(token) if looks_like_jwt(token) => match &self.oidc {
                Some(oidc) => oidc.validate_at(token, now_ms).await,
                None => self.anonymous(Refusal::OidcDisabled),
            },
            Some(_) => self.anonymous(Refusal::Unrecognized),
            None => self.anonymous(Refusal::Missing),
        }
    }

    fn anonymous(&self, otherwise: Refusal) -> Result<Principal> {
        match self.allow_anonymous {
            true => Ok(Principal::anonymous()),
            false => Err(otherwise.into()),
        }
    }
}

fn check_key(store: &dyn KeyStore, key: &str, now_ms: i64) -> Result<Principal> {
    let Some(id) = key_id(key) else {
        return Err(Refusal::MalformedKey.into());
    };
    let Some(record) = store.find_by_hash(&hash_key(key))? else {
        return Err(Refusal::UnknownKey.into());
    };
    match record.status(now_ms) {
        KeyStatus::Active => {}
        KeyStatus::Revoked => return Err(Refusal::RevokedKey(record.id).into()),
        KeyStatus::Expired => return Err(Refusal::ExpiredKey(record.id).into()),
    }
    if record.id != id {
        tracing::warn!(key_id = %record.id, "a key store record's id does not match its key");
    }
    Ok(Principal {
        user: record.user,
        groups: record.team.into_iter().collect(),
        project: record.project,
        key_id: Some(record.id),
        method: AuthMethod::Key,
    })
}
