//! The crate's one error type, and [`Refusal`]: why a credential was not accepted.

use tandem_protocol::ErrorKind;

/// A `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in this crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The credential is missing or was refused (401); the message says why and never contains it.
    #[error("{0}")]
    Unauthorized(Refusal),
    /// A duration such as `--expires 30d` could not be parsed.
    #[error("invalid duration `{input}`: {reason}")]
    InvalidDuration {
        /// What was given.
        input: Box<str>,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The OIDC settings are unusable.
    #[error("invalid OIDC configuration: {0}")]
    Config(Box<str>),
    /// The issuer's discovery document or JWKS could not be fetched or read, so a token could not be checked.
    #[error("cannot load the OIDC signing keys: {0}")]
    Jwks(Box<str>),
    /// The key store failed (not: the key is unknown, which is [`Refusal::UnknownKey`]).
    #[error("the API key store failed: {0}")]
    Store(Box<dyn std::error::Error + Send + Sync>),
    /// The operating system's random number generator failed.
    #[error("the operating system's random number generator failed: {0}")]
    Random(Box<str>),
}

impl Error {
    /// The failure category, which the gateway maps to a status code.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Unauthorized(_) => ErrorKind::Unauthorized,
            Error::InvalidDuration { .. } => ErrorKind::BadRequest,
            Error::Jwks(_) => ErrorKind::Unavailable,
            Error::Config(_) | Error::Store(_) | Error::Random(_) => ErrorKind::Internal,
        }
    }

    /// The refusal, when this is one.
    pub fn refusal(&self) -> Option<&Refusal> {
        match self {
            Error::Unauthorized(refusal) => Some(refusal),
            _ => None,
        }
    }
}

impl From<Refusal> for Error {
    fn from(refusal: Refusal) -> Self {
        Error::Unauthorized(refusal)
    }
}

/// Why a request's credential was not accepted.
///
/// Messages are meant for the client: they say what to fix, and contain at most a key id (`key_…`) or a
/// sanitized token header field, never a key or a token.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No credential, and anonymous access is not allowed.
    #[error("missing API key: send Authorization: Bearer <key> or x-api-key")]
    Missing,
    /// A bearer that is neither a `tdm_` key nor a JWT, and anonymous access is not allowed.
    #[error("unrecognized credential: expected a `tdm_` API key or an OIDC bearer token")]
    Unrecognized,
    /// Starts with `tdm_` but is not a well-formed key.
    #[error("malformed API key: expected `tdm_` followed by 40 letters and digits")]
    MalformedKey,
    /// A well-formed key that the store does not know.
    #[error("unknown API key")]
    UnknownKey,
    /// The key (named by its id) has expired.
    #[error("API key {0} has expired")]
    ExpiredKey(String),
    /// The key (named by its id) has been revoked.
    #[error("API key {0} has been revoked")]
    RevokedKey(String),
    /// A `tdm_` key reached a gateway without a key store.
    #[error("API keys are not accepted here")]
    KeysDisabled,
    /// A JWT reached a gateway without OIDC, and anonymous access is not allowed.
    #[error("OIDC bearer tokens are not accepted here")]
    OidcDisabled,
    /// The token is not a well-formed JWT.
    #[error("malformed bearer token: {0}")]
    MalformedToken(&'static str),
    /// The token's `alg` is not accepted (`none`, HS*, or not configured), or does not fit its key.
    #[error("bearer token algorithm `{0}` is not accepted")]
    Algorithm(String),
    /// The token's `kid` is not in the issuer's JWKS, even after refetching it.
    #[error("bearer token signing key `{0}` is unknown")]
    UnknownKid(String),
    /// The signature does not verify with the issuer's key.
    #[error("bearer token signature is invalid")]
    BadSignature,
    /// `exp` is past (with the configured leeway).
    #[error("bearer token has expired")]
    Expired,
    /// `nbf` is in the future (with the configured leeway).
    #[error("bearer token is not valid yet")]
    NotYetValid,
    /// `iss` is not the configured issuer.
    #[error("bearer token was issued by another issuer")]
    WrongIssuer,
    /// `aud` does not contain the configured audience.
    #[error("bearer token is meant for another audience")]
    WrongAudience,
    /// A required claim is absent.
    #[error("bearer token lacks the `{0}` claim")]
    MissingClaim(String),
    /// A claim has the wrong type (for example a number where a string is expected).
    #[error("bearer token claim `{0}` has the wrong type")]
    BadClaim(String),
}
