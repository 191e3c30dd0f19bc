//! API keys: generation, hashing, the record kept for each key, and the store the gateway looks them up in.
//!
//! A key is `tdm_` followed by 40 random base62 characters (about 238 bits from the operating system's
//! random number generator). Only its SHA-256 hex digest is stored: a key with that much entropy cannot be
//! guessed or brute-forced from its hash, so a slow password hash (argon2, bcrypt) would add latency to every
//! request and no security. Lookups are by hash, so the time a lookup takes tells an attacker nothing
//! about any stored key.

use std::time::Duration;

use rand::TryRng;
use rand::rngs::SysRng;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// The prefix of every Tandem API key.
pub const KEY_PREFIX: &str = "tdm_";
/// The number of random characters after the prefix.
const KEY_BODY_LEN: usize = 40;
/// The number of random characters that make up the key id (after `key_`).
const KEY_ID_LEN: usize = 8;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A freshly generated key: show `secret` once, store `record`.
#[derive(Debug)]
pub struct NewKey {
    /// The key id (`key_` + the first 8 characters after the prefix), safe to show in listings.
    pub id: String,
    /// The key itself; shown to the operator once and never stored.
    pub secret: SecretString,
    /// What the store keeps: the hash, the owner and the validity.
    pub record: KeyRecord,
}

/// What the key store keeps about one key: never the key, only its hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// `key_` + the first 8 characters after the prefix.
    pub id: String,
    /// [`hash_key`] of the key: lowercase SHA-256 hex.
    pub hash: String,
    /// The user the key acts as.
    pub user: String,
    /// The user's team, which becomes the principal's group.
    pub team: Option<String>,
    /// The project the key is bound to.
    pub project: Option<String>,
    /// When the key was created (Unix milliseconds).
    pub created_at_ms: i64,
    /// When the key stops working (Unix milliseconds); `None` never expires.
    pub expires_at_ms: Option<i64>,
    /// When the key was revoked (Unix milliseconds); `None` while it is not.
    pub revoked_at_ms: Option<i64>,
}

/// Whether a key works at a given time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// The key works.
    Active,
    /// `expires_at_ms` is past.
    Expired,
    /// The key was revoked; revocation wins over expiry.
    Revoked,
}

impl KeyStatus {
    /// `active`, `expired` or `revoked`, for listings.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyStatus::Active => "active",
            KeyStatus::Expired => "expired",
            KeyStatus::Revoked => "revoked",
        }
    }
}

impl KeyRecord {
    /// The key's status at `now_ms`: a key is revoked from `revoked_at_ms` on and expired from
    /// `expires_at_ms` on.
    pub fn status(&self, now_ms: i64) -> KeyStatus {
        match (self.revoked_at_ms, self.expires_at_ms) {
            (Some(revoked), _) if revoked <= now_ms => KeyStatus::Revoked,
            (_, Some(expires)) if expires <= now_ms => KeyStatus::Expired,
            _ => KeyStatus::Active,
        }
    }
}

/// Where the authenticator finds keys. The gateway implements it on its SQLite store.
///
/// It is called on every request that carries a `tdm_` key, so a lookup must be fast (an indexed query
/// or a map), and it must not cache records in a way that delays revocation: a revoked key has to stop
/// working at once.
pub trait KeyStore: Send + Sync {
    /// The record whose `hash` is `hash`, if any.
    fn find_by_hash(&self, hash: &str) -> Result<Option<KeyRecord>>;
}

/// A new key for `user`, valid from `now_ms` until `expires_at_ms` (or forever).
///
/// The randomness comes from the operating system ([`SysRng`], formerly `OsRng`); this fails only when
/// the operating system cannot provide it.
pub fn generate_key(
    user: &str,
    team: Option<&str>,
    project: Option<&str>,
    expires_at_ms: Option<i64>,
    now_ms: i64,
) -> Result<NewKey> {
    let mut secret = String::with_capacity(KEY_PREFIX.len() + KEY_BODY_LEN);
    secret.push_str(KEY_PREFIX);
    let mut buf = [0u8; 64];
    while secret.len() < KEY_PREFIX.len() + KEY_BODY_LEN {
        SysRng
            .try_fill_bytes(&mut buf)
            .map_err(|err| Error::Random(err.to_string().into()))?;
        // Rejection sampling: 248 = 4 × 62, so accepted bytes map uniformly onto the alphabet.
        for byte in buf.iter().copied().filter(|&b| b < 248) {
            if secret.len() == KEY_PREFIX.len() + KEY_BODY_LEN {
                break;
            }
            secret.push(char::from(BASE62[usize::from(byte % 62)]));
        }
        buf.fill(0);
    }
    let id = key_id(&secret).ok_or_else(|| Error::Random("generated a malformed key".into()))?;
    let record = KeyRecord {
        id: id.clone(),
        hash: hash_key(&secret),
        user: user.to_owned(),
        team: team.map(str::to_owned),
        project: project.map(str::to_owned),
        created_at_ms: now_ms,
        expires_at_ms,
        revoked_at_ms: None,
    };
    Ok(NewKey {
        id,
        secret: SecretString::from(secret),
        record,
    })
}

/// The stored form of a key: the lowercase SHA-256 hex digest of the whole key, prefix included.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is a well-formed key: `tdm_` and 40 base62 characters.
pub fn looks_like_api_key(secret: &str) -> bool {
    secret.strip_prefix(KEY_PREFIX).is_some_and(|body| {
        body.len() == KEY_BODY_LEN && body.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The id of a well-formed key: `key_` + the first 8 characters after the prefix.
pub fn key_id(secret: &str) -> Option<String> {
    if !looks_like_api_key(secret) {
        return None;
    }
    let body = secret.get(KEY_PREFIX.len()..KEY_PREFIX.len() + KEY_ID_LEN)?;
    Some(format!("key_{body}"))
}

/// Parses a positive duration such as `90s`, `90m`, `12h`, `30d` or `1w` (as in `--expires 30d`).
pub fn parse_duration(input: &str) -> Result<Duration> {
    let invalid = |reason| Error::InvalidDuration {
        input: input.into(),
        reason,
    };
    let text = input.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    if digits.is_empty() {
        return Err(invalid(
            "expected a number followed by s, m, h, d or w, as in 30d",
        ));
    }
    let seconds_per_unit: u64 = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 60 * 60,
        "d" => 24 * 60 * 60,
        "w" => 7 * 24 * 60 * 60,
        "" => return Err(invalid("missing unit: use s, m, h, d or w, as in 30d")),
        _ => return Err(invalid("unknown unit: use s, m, h, d or w, as in 30d")),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| invalid("the number is too large"))?;
    if count == 0 {
        return Err(invalid("must be longer than zero"));
    }
    let seconds = count
        .checked_mul(seconds_per_unit)
        .ok_or_else(|| invalid("the number is too large"))?;
    Ok(Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests;
