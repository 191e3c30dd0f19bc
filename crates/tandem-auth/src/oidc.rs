//! OIDC bearer tokens: JWTs validated against the issuer's JWKS, with claims mapped to a [`Principal`].
//!
//! The JWKS is fetched on first use (or by [`OidcValidator::refresh_keys`] at start-up) and cached by `kid`.
//! A token whose `kid` is not cached triggers one refetch, at most once per
//! [`OidcConfig::jwks_refresh_min_interval`] (so forged `kid`s cannot make the gateway hammer the issuer),
//! then is refused. Concurrent refetches are coalesced into one.
//!
//! Checked, in this order: the JWT shape, `alg` (only the configured asymmetric algorithms; `none` and HS*
//! never), the key for `kid` and that it fits `alg`, the signature, `iss`, `aud`, `exp` and `nbf` (with
//! leeway, against the time passed in), then the claims the principal is built from.
//!
//! Signature verification costs tens of microseconds (RSA-2048, P-256), and clients send the same token
//! on every request until it expires, so a token that passed is remembered by its SHA-256 digest together
//! with its principal, `exp` and `nbf`: a repeat skips the signature and claim checks but not the time
//! checks. Only tokens that passed every check are remembered, and the memory is emptied whenever the
//! JWKS is reloaded, so a key the issuer withdrew stops verifying old tokens at the next reload.

use std::collections::{HashMap, HashSet};
use std::str::FromStr;
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyOperations, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::error::{Error, Refusal, Result};
use crate::{AuthMethod, Principal};

/// Tokens longer than this are refused before any parsing.
const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Discovery documents and JWKS larger than this are refused.
const MAX_DOCUMENT_BYTES: usize = 1024 * 1024;
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);
const HTTP_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How to validate OIDC bearer tokens. [`OidcConfig::new`] fills in the defaults.
#[derive(Clone, Debug)]
pub struct OidcConfig {
    /// The issuer, exactly as in the tokens' `iss` (and in the discovery document).
    pub issuer: String,
    /// The audience the tokens must be for (one of the values of `aud`).
    pub audience: String,
    /// Where the signing keys are; `None` discovers it from `{issuer}/.well-known/openid-configuration`.
    pub jwks_uri: Option<String>,
    /// The claim that names the user (default `sub`); tokens without it fall back to `sub`.
    pub user_claim: String,
    /// The claim that lists the user's groups (an array of strings, or one string), if any.
    pub groups_claim: Option<String>,
    /// The claim that names the project (a string), if any.
    pub project_claim: Option<String>,
    /// The accepted signature algorithms (default RS256 and ES256); HS* are refused here.
    pub algorithms: Vec<Algorithm>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 30).
    pub leeway_s: u64,
    /// The JWKS is refetched for an unknown `kid` at most this often (default 30 s).
    pub jwks_refresh_min_interval: Duration,
    /// How many validated tokens are remembered (by digest) to skip re-verifying them; 0 disables
    /// (default 10,000).
    pub token_cache_capacity: usize,
}

impl OidcConfig {
    /// A config for `issuer` and `audience` with the defaults: JWKS discovered, user from `sub`, no groups
    /// or project claims, RS256 and ES256, 30 s leeway, refetch at most every 30 s, 10,000 validated tokens
    /// remembered.
    ///
    /// Claim names may be paths into nested objects (`realm_access.roles`); a claim whose name contains
    /// dots itself (`https://example.com/groups`) is found first.
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        OidcConfig {
            issuer: issuer.into(),
            audience: audience.into(),
            jwks_uri: None,
            user_claim: "sub".to_owned(),
            groups_claim: None,
            project_claim: None,
            algorithms: vec![Algorithm::RS256, Algorithm::ES256],
            leeway_s: 30,
            jwks_refresh_min_interval: Duration::from_secs(30),
            token_cache_capacity: 10_000,
        }
    }
}

/// Validates OIDC bearer tokens; holds the JWKS cache. Share one per gateway (it is `Send + Sync`).
pub struct OidcValidator {
    config: OidcConfig,
    http: reqwest::Client,
    /// One prepared `Validation` per accepted algorithm (jsonwebtoken wants exactly the token's).
    validations: HashMap<Algorithm, Validation>,
    /// The JWKS location, from the config or discovered once.
    jwks_uri: tokio::sync::OnceCell<String>,
    keys: RwLock<KeyCache>,
    /// Tokens that passed validation, by SHA-256 digest; emptied when the JWKS is reloaded.
    verified: RwLock<HashMap<[u8; 32], VerifiedToken>>,
    /// Held while fetching, so concurrent refetches coalesce into one.
    refresh: tokio::sync::Mutex<RefreshState>,
}

impl std::fmt::Debug for OidcValidator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let cached: Vec<String> = self.read_keys().keys.keys().cloned().collect();
        f.debug_struct("OidcValidator")
            .field("config", &self.config)
            .field("cached_kids", &cached)
            .finish()
    }
}

#[derive(Default)]
struct KeyCache {
    /// Usable verification keys by `kid` (`""` for a key without one).
    keys: HashMap<String, Arc<CachedKey>>,
    /// Whether a JWKS was ever loaded.
    loaded: bool,
}

struct VerifiedToken {
    principal: Principal,
    exp_ms: i64,
    nbf_ms: Option<i64>,
}

#[derive(Default)]
struct RefreshState {
    last_attempt: Option<Instant>,
    last_error: Option<Box<str>>,
}

struct CachedKey {
    key: DecodingKey,
    family: Family,
    /// The key's own `alg`, when the JWKS names one.
    alg: Option<Algorithm>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Family {
    Rsa,
    Ec,
    Ed,
}

fn family_of(alg: Algorithm) -> Option<Family> {
    match alg {
        Algorithm::RS256
        | Algorithm::RS384
        | Algorithm::RS512
        | Algorithm::PS256
        | Algorithm::PS384
        | Algorithm::PS512 => Some(Family::Rsa),
        Algorithm::ES256 | Algorithm::ES384 => Some(Family::Ec),
        Algorithm::EdDSA => Some(Family::Ed),
        Algorithm::HS256 | Algorithm::HS384 | Algorithm::HS512 => None,
    }
}

#[derive(Deserialize)]
struct RawHeader {
    alg: String,
    #[serde(default)]
    kid: Option<String>,
}

#[derive(Deserialize)]
struct Discovery {
    issuer: String,
    jwks_uri: String,
}

#[derive(Deserialize)]
struct RawJwks {
    keys: Vec<Value>,
}

impl OidcValidator {
    /// Checks the config and prepares the HTTP client; fetches nothing yet.
    pub fn new(config: OidcConfig) -> Result<Self> {
        if config.issuer.trim().is_empty() {
            return Err(Error::Config("`issuer` is empty".into()));
        }
        if config.audience.trim().is_empty() {
            return Err(Error::Config("`audience` is empty".into()));
        }
        if config.user_claim.trim().is_empty() {
            return Err(Error::Config("`user_claim` is empty".into()));
        }
        if config.algorithms.is_empty() {
            return Err(Error::Config("`algorithms` is empty".into()));
        }
        let mut validations = HashMap::new();
        for &alg in &config.algorithms {
            if family_of(alg).is_none() {
                return Err(Error::Config(
                    format!("algorithm {alg:?} is symmetric and cannot be verified with an issuer's public keys")
                        .into(),
                ));
            }
            let mut validation = Validation::new(alg);
            // `exp` and `nbf` are checked against the time passed in, not jsonwebtoken's clock.
            validation.validate_exp = false;
            validation.validate_nbf = false;
            validation.leeway = 0;
            validation.required_spec_claims = HashSet::from(["iss".to_owned(), "aud".to_owned()]);
            validation.set_issuer(&[config.issuer.as_str()]);
            validation.set_audience(&[config.audience.as_str()]);
            validations.insert(alg, validation);
        }
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .connect_timeout(HTTP_CONNECT_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .user_agent(concat!("tandem/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|err| Error::Config(format!("cannot build the HTTP client: {err}").into()))?;
        let jwks_uri = tokio::sync::OnceCell::new_with(config.jwks_uri.clone());
        Ok(OidcValidator {
            config,
            http,
            validations,
            jwks_uri,
            keys: RwLock::new(KeyCache::default()),
            verified: RwLock::new(HashMap::new()),
            refresh: tokio::sync::Mutex::new(RefreshState::default()),
        })
    }

    /// The config this validator was built from.
    pub fn config(&self) -> &OidcConfig {
        &self.config
    }

    /// Validates `token` now (by the system clock); see [`OidcValidator::validate_at`].
    pub async fn validate(&self, token: &str) -> Result<Principal> {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |elapsed| {
                i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
            });
        self.validate_at(token, now_ms).await
    }

    /// Validates `token` at `now_ms` (Unix milliseconds) and maps its claims to a principal.
    ///
    /// Refusals are [`Error::Unauthorized`]; [`Error::Jwks`] means the signing keys could not be loaded.
    pub async fn validate_at(&self, token: &str, now_ms: i64) -> Result<Principal> {
        if self.config.token_cache_capacity == 0 {
            return self
                .verify(token, now_ms)
                .await
                .map(|verified| verified.principal);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let remembered = self
            .verified
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .map(|hit| {
                self.check_times(hit.exp_ms, hit.nbf_ms, now_ms)
                    .map(|()| hit.principal.clone())
            });
        if let Some(result) = remembered {
            return result;
        }
        let verified = self.verify(token, now_ms).await?;
        let principal = verified.principal.clone();
        let mut cache = self
            .verified
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= self.config.token_cache_capacity {
            let leeway_ms = self.leeway_ms();
            cache.retain(|_, token| now_ms <= token.exp_ms.saturating_add(leeway_ms));
            if cache.len() >= self.config.token_cache_capacity {
                cache.clear();
            }
        }
        cache.insert(digest, verified);
        Ok(principal)
    }

    /// The full validation of a token not seen before.
    async fn verify(&self, token: &str, now_ms: i64) -> Result<VerifiedToken> {
        let header = parse_header(token)?;
        let alg = Algorithm::from_str(&header.alg)
            .ok()
            .filter(|alg| self.validations.contains_key(alg))
            .ok_or_else(|| Refusal::Algorithm(sanitize(&header.alg)))?;
        let key = self.key_for(header.kid.as_deref()).await?;
        if family_of(alg) != Some(key.family) || key.alg.is_some_and(|key_alg| key_alg != alg) {
            return Err(Refusal::Algorithm(sanitize(&header.alg)).into());
        }
        let Some(validation) = self.validations.get(&alg) else {
            return Err(Refusal::Algorithm(sanitize(&header.alg)).into());
        };
        let claims = jsonwebtoken::decode::<Map<String, Value>>(token, &key.key, validation)
            .map_err(|err| refusal_of(&err))?
            .claims;
        let exp_ms = numeric_date_ms(&claims, "exp")?
            .ok_or_else(|| Refusal::MissingClaim("exp".to_owned()))?;
        let nbf_ms = numeric_date_ms(&claims, "nbf")?;
        self.check_times(exp_ms, nbf_ms, now_ms)?;
        Ok(VerifiedToken {
            principal: self.principal(&claims)?,
            exp_ms,
            nbf_ms,
        })
    }

    /// Fetches the JWKS now (discovering its location first if needed), replacing the cache.
    ///
    /// The gateway may call this at start-up so that the first request does not wait for the issuer.
    pub async fn refresh_keys(&self) -> Result<usize> {
        let mut state = self.refresh.lock().await;
        self.fetch_into_cache(&mut state).await
    }

    /// The key for `kid`, refetching the JWKS once (rate-limited) when it is not cached.
    async fn key_for(&self, kid: Option<&str>) -> Result<Arc<CachedKey>> {
        if let Some(key) = self.cached_key(kid) {
            return Ok(key);
        }
        {
            let mut state = self.refresh.lock().await;
            // Another request may have refreshed while this one waited for the lock.
            if let Some(key) = self.cached_key(kid) {
                return Ok(key);
            }
            let due = state
                .last_attempt
                .is_none_or(|at| at.elapsed() >= self.config.jwks_refresh_min_interval);
            if due {
                self.fetch_into_cache(&mut state).await?;
            } else if !self.read_keys().loaded {
                let detail = state
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "not loaded yet".into());
                return Err(Error::Jwks(detail));
            }
        }
        self.cached_key(kid).ok_or_else(|| match kid {
            Some(kid) => Refusal::UnknownKid(sanitize(kid)).into(),
            None => {
                Refusal::MalformedToken("the header has no `kid` and the issuer has several keys")
                    .into()
            }
        })
    }

    fn cached_key(&self, kid: Option<&str>) -> Option<Arc<CachedKey>> {
        let cache = self.read_keys();
        match kid {
            Some(kid) => cache.keys.get(kid).cloned(),
            // Without a `kid`, only an issuer with a single key is unambiguous.
            None if cache.keys.len() == 1 => cache.keys.values().next().cloned(),
            None => None,
        }
    }

    fn read_keys(&self) -> std::sync::RwLockReadGuard<'_, KeyCache> {
        self.keys.read().unwrap_or_else(PoisonError::into_inner)
    }

    async fn fetch_into_cache(&self, state: &mut RefreshState) -> Result<usize> {
        state.last_attempt = Some(Instant::now());
        match self.fetch_keys().await {
            Ok(keys) => {
                let count = keys.len();
                let mut cache = self.keys.write().unwrap_or_else(PoisonError::into_inner);
                cache.keys = keys;
                cache.loaded = true;
                drop(cache);
                self.verified
                    .write()
                    .unwrap_or_else(PoisonError::into_inner)
                    .clear();
                state.last_error = None;
                tracing::info!(issuer = %self.config.issuer, keys = count, "loaded the OIDC signing keys");
                Ok(count)
            }
            Err(err) => {
                tracing::warn!(issuer = %self.config.issuer, error = %err, "cannot load the OIDC signing keys");
                state.last_error = Some(err.to_string().into());
                Err(err)
            }
        }
    }

    async fn fetch_keys(&self) -> Result<HashMap<String, Arc<CachedKey>>> {
        let uri = self
            .jwks_uri
            .get_or_try_init(|| self.discover_jwks_uri())
            .await?;
        let jwks: RawJwks = get_json(&self.http, uri)
            .await
            .map_err(|err| Error::Jwks(format!("{uri}: {err}").into()))?;
        let mut keys = HashMap::new();
        for raw in jwks.keys {
            match usable_key(raw, &self.config.algorithms) {
                Ok((kid, key)) => {
                    keys.insert(kid, Arc::new(key));
                }
                Err(reason) => tracing::debug!(reason, "skipping a JWKS key"),
            }
        }
        if keys.is_empty() {
            return Err(Error::Jwks(
                format!("{uri} has no usable signing key").into(),
            ));
        }
        Ok(keys)
    }

    async fn discover_jwks_uri(&self) -> Result<String> {
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let discovery: Discovery = get_json(&self.http, &url)
            .await
            .map_err(|err| Error::Jwks(format!("{url}: {err}").into()))?;
        if discovery.issuer != self.config.issuer {
            return Err(Error::Jwks(
                format!(
                    "{url} names the issuer `{}`, but the configured issuer is `{}`",
                    discovery.issuer, self.config.issuer
                )
                .into(),
            ));
        }
        Ok(discovery.jwks_uri)
    }

    fn leeway_ms(&self) -> i64 {
        i64::try_from(self.config.leeway_s.saturating_mul(1000)).unwrap_or(i64::MAX)
    }

    fn check_times(&self, exp_ms: i64, nbf_ms: Option<i64>, now_ms: i64) -> Result<()> {
        let leeway_ms = self.leeway_ms();
        if now_ms > exp_ms.saturating_add(leeway_ms) {
            return Err(Refusal::Expired.into());
        }
        if nbf_ms.is_some_and(|nbf| nbf > now_ms.saturating_add(leeway_ms)) {
            return Err(Refusal::NotYetValid.into());
        }
        Ok(())
    }

    fn principal(&self, claims: &Map<String, Value>) -> Result<Principal> {
        let user = match claim(claims, &self.config.user_claim).or_else(|| claims.get("sub")) {
            Some(Value::String(user)) if !user.is_empty() => user.clone(),
            Some(_) => return Err(Refusal::BadClaim(self.config.user_claim.clone()).into()),
            None => return Err(Refusal::MissingClaim(self.config.user_claim.clone()).into()),
        };
        let groups = match self
            .config
            .groups_claim
            .as_deref()
            .map(|name| (name, claim(claims, name)))
        {
            None | Some((_, None | Some(Value::Null))) => Vec::new(),
            Some((_, Some(Value::String(group)))) => vec![group.clone()],
            Some((name, Some(Value::Array(items)))) => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| Refusal::BadClaim(name.to_owned()))?,
            Some((name, Some(_))) => return Err(Refusal::BadClaim(name.to_owned()).into()),
        };
        let project = match self
            .config
            .project_claim
            .as_deref()
            .map(|name| (name, claim(claims, name)))
        {
            None | Some((_, None | Some(Value::Null))) => None,
            Some((_, Some(Value::String(project)))) => Some(project.clone()),
            Some((name, Some(_))) => return Err(Refusal::BadClaim(name.to_owned()).into()),
        };
        Ok(Principal {
            user,
            groups,
            project,
            key_id: None,
            method: AuthMethod::Oidc,
        })
    }
}

/// Whether `token` has the shape of a JWS compact serialization: three base64url parts joined by dots.
pub(crate) fn looks_like_jwt(token: &str) -> bool {
    let mut parts = token.split('.');
    let shaped = |part: Option<&str>, may_be_empty: bool| {
        part.is_some_and(|part| {
            (may_be_empty || !part.is_empty())
                && part
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
    };
    shaped(parts.next(), false)
        && shaped(parts.next(), false)
        && shaped(parts.next(), true)
        && parts.next().is_none()
}

fn parse_header(token: &str) -> Result<RawHeader> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(Refusal::MalformedToken("longer than 16 KiB").into());
    }
    if !looks_like_jwt(token) {
        return Err(
            Refusal::MalformedToken("expected three base64url parts separated by dots").into(),
        );
    }
    let encoded = token.split('.').next().unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| Refusal::MalformedToken("the header is not base64url"))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| Refusal::MalformedToken("the header is not a JSON object with `alg`").into())
}

/// Turns one JWKS entry into a cached key, or says why it is skipped.
fn usable_key(
    raw: Value,
    accepted: &[Algorithm],
) -> std::result::Result<(String, CachedKey), &'static str> {
    let jwk: Jwk = serde_json::from_value(raw).map_err(|_| "unsupported or malformed key")?;
    if matches!(
        jwk.common.public_key_use,
        Some(PublicKeyUse::Encryption | PublicKeyUse::Other(_))
    ) {
        return Err("not a signature key");
    }
    if jwk
        .common
        .key_operations
        .as_ref()
        .is_some_and(|ops| !ops.contains(&KeyOperations::Verify))
    {
        return Err("not a verification key");
    }
    let family = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => Family::Rsa,
        AlgorithmParameters::EllipticCurve(_) => Family::Ec,
        AlgorithmParameters::OctetKeyPair(_) => Family::Ed,
        AlgorithmParameters::OctetKey(_) => return Err("symmetric keys are never accepted"),
    };
    let alg = match jwk.common.key_algorithm {
        None => None,
        Some(key_alg) => Some(
            Algorithm::from_str(&key_alg.to_string())
                .ok()
                .filter(|alg| accepted.contains(alg) && family_of(*alg) == Some(family))
                .ok_or("its algorithm is not accepted")?,
        ),
    };
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "unusable key material")?;
    let kid = jwk.common.key_id.unwrap_or_default();
    Ok((kid, CachedKey { key, family, alg }))
}

async fn get_json<T: DeserializeOwned>(
    http: &reqwest::Client,
    url: &str,
) -> std::result::Result<T, String> {
    let mut response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|err| err.without_url().to_string())?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("HTTP {status}"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|err| err.without_url().to_string())?
    {
        if body.len() + chunk.len() > MAX_DOCUMENT_BYTES {
            return Err("larger than 1 MiB".to_owned());
        }
        body.extend_from_slice(&chunk);
    }
    serde_json::from_slice(&body).map_err(|err| format!("not the expected JSON: {err}"))
}

/// A claim by name, or by a dotted path into nested objects when no claim has that exact name.
fn claim<'a>(claims: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    if let Some(value) = claims.get(name) {
        return Some(value);
    }
    let mut parts = name.split('.');
    let mut value = claims.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

/// A NumericDate claim (seconds since the epoch, possibly fractional) in milliseconds.
fn numeric_date_ms(claims: &Map<String, Value>, name: &str) -> Result<Option<i64>> {
    match claims.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => match (n.as_i64(), n.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds.saturating_mul(1000))),
            // `as` saturates, which is what an absurd date deserves.
            (None, Some(seconds)) if seconds.is_finite() => Ok(Some((seconds * 1000.0) as i64)),
            _ => Err(Refusal::BadClaim(name.to_owned()).into()),
        },
        Some(_) => Err(Refusal::BadClaim(name.to_owned()).into()),
    }
}

/// Maps a jsonwebtoken failure (signature or `iss`/`aud`) to a refusal.
fn refusal_of(err: &jsonwebtoken::errors::Error) -> Refusal {
    use jsonwebtoken::errors::ErrorKind as Jwt;
    match err.kind() {
        Jwt::InvalidSignature
        | Jwt::InvalidEcdsaKey
        | Jwt::InvalidRsaKey(_)
        | Jwt::InvalidKeyFormat
        | Jwt::Crypto(_) => Refusal::BadSignature,
        Jwt::InvalidIssuer => Refusal::WrongIssuer,
        Jwt::InvalidAudience => Refusal::WrongAudience,
        Jwt::MissingRequiredClaim(claim) => Refusal::MissingClaim(claim.clone()),
        Jwt::ExpiredSignature => Refusal::Expired,
        Jwt::ImmatureSignature => Refusal::NotYetValid,
        Jwt::InvalidAlgorithm | Jwt::InvalidAlgorithmName | Jwt::MissingAlgorithm => {
            Refusal::Algorithm("unsupported".to_owned())
        }
        Jwt::Base64(_) | Jwt::Json(_) | Jwt::Utf8(_) | Jwt::InvalidToken => {
            Refusal::MalformedToken("the payload or signature is not valid base64url JSON")
        }
        _ => Refusal::MalformedToken("cannot be decoded"),
    }
}

/// A token header field made safe to echo: at most 64 characters of `[A-Za-z0-9._:-]`.
fn sanitize(value: &str) -> String {
    value
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-') {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;
