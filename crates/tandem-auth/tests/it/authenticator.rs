//! The authenticator: API keys against an in-memory store, OIDC tokens, and anonymous access.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use pretty_assertions::assert_eq;
use secrecy::ExposeSecret;
use tandem_auth::{
    AuthMethod, Authenticator, AuthenticatorParts, Error, OidcConfig, OidcValidator, Principal,
    Refusal, generate_key,
};
use tandem_protocol::ErrorKind;

use crate::support::{AUDIENCE, MemoryKeyStore, MockIssuer, NOW_MS, claims, sign};

fn with_keys(store: &Arc<MemoryKeyStore>, allow_anonymous: bool) -> Authenticator {
    let keys: Arc<dyn tandem_auth::KeyStore> = store.clone();
    Authenticator::new(AuthenticatorParts {
        keys: Some(keys),
        oidc: None,
        allow_anonymous,
    })
}

#[track_caller]
fn refusal(result: tandem_auth::Result<Principal>) -> Refusal {
    match result {
        Err(Error::Unauthorized(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_key_authenticates_its_owner() {
    let store = Arc::new(MemoryKeyStore::default());
    let key = generate_key("ana", Some("core"), Some("web"), None, NOW_MS).unwrap();
    store.insert(key.record.clone());
    let principal = with_keys(&store, false)
        .authenticate(Some(key.secret.expose_secret()), NOW_MS)
        .await
        .unwrap();
    assert_eq!(
        principal,
        Principal {
            user: "ana".to_owned(),
            groups: vec!["core".to_owned()],
            project: Some("web".to_owned()),
            key_id: Some(key.id.clone()),
            method: AuthMethod::Key,
        }
    );
    // Surrounding whitespace from a header is tolerated.
    let padded = format!(" {} ", key.secret.expose_secret());
    assert!(
        with_keys(&store, false)
            .authenticate(Some(&padded), NOW_MS)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_at_once() {
    let store = Arc::new(MemoryKeyStore::default());
    let auth = with_keys(&store, true);
    let key = generate_key("ana", None, None, None, NOW_MS).unwrap();
    store.insert(key.record.clone());
    let secret = key.secret.expose_secret();
    assert!(auth.authenticate(Some(secret), NOW_MS).await.is_ok());
    store.revoke(&key.id, NOW_MS + 1);
    let err = auth
        .authenticate(Some(secret), NOW_MS + 1)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Unauthorized(Refusal::RevokedKey(id)) if *id == key.id),
        "{err}"
    );
    assert_eq!(
        err.to_string(),
        format!("API key {} has been revoked", key.id)
    );
    assert!(!err.to_string().contains(secret));
    assert_eq!(err.kind().http_status(), 401);
}

#[tokio::test]
async fn an_expired_key_is_refused() {
    let store = Arc::new(MemoryKeyStore::default());
    let expires = NOW_MS + Duration::from_secs(3600).as_millis() as i64;
    let key = generate_key("ana", None, None, Some(expires), NOW_MS).unwrap();
    store.insert(key.record.clone());
    let auth = with_keys(&store, true);
    assert!(
        auth.authenticate(Some(key.secret.expose_secret()), expires - 1)
            .await
            .is_ok()
    );
    let refused = refusal(
        auth.authenticate(Some(key.secret.expose_secret()), expires)
            .await,
    );
    assert_eq!(refused, Refusal::ExpiredKey(key.id.clone()));
    assert_eq!(
        refused.to_string(),
        format!("API key {} has expired", key.id)
    );
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_refused_without_echoing_them() {
    let store = Arc::new(MemoryKeyStore::default());
    let auth = with_keys(&store, true);
    let unknown = generate_key("ana", None, None, None, NOW_MS).unwrap();
    let err = auth
        .authenticate(Some(unknown.secret.expose_secret()), NOW_MS)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "unknown API key");
    for malformed in [
        "tdm_",
        "tdm_short",
        "tdm_0123456789012345678901234567890123456789x",
        "tdm_01234567890123456789012345678901234567-9",
    ] {
        let err = auth
            .authenticate(Some(malformed), NOW_MS)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::Unauthorized(Refusal::MalformedKey)),
            "{malformed}: {err}"
        );
        assert!(
            malformed == "tdm_" || !err.to_string().contains(malformed),
            "{err}"
        );
    }
}

#[tokio::test]
async fn keys_without_a_store_and_store_failures() {
    let key = generate_key("ana", None, None, None, NOW_MS).unwrap();
    let auth = Authenticator::new(AuthenticatorParts {
        keys: None,
        oidc: None,
        allow_anonymous: true,
    });
    assert_eq!(
        refusal(
            auth.authenticate(Some(key.secret.expose_secret()), NOW_MS)
                .await
        ),
        Refusal::KeysDisabled
    );

    let store = Arc::new(MemoryKeyStore::default());
    store.insert(key.record.clone());
    store.fail.store(true, Ordering::SeqCst);
    let err = with_keys(&store, true)
        .authenticate(Some(key.secret.expose_secret()), NOW_MS)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Store(_)), "{err}");
    assert_eq!(err.kind(), ErrorKind::Internal);
}

#[tokio::test]
async fn anonymous_access_when_allowed() {
    let store = Arc::new(MemoryKeyStore::default());
    let open = with_keys(&store, true);
    let closed = with_keys(&store, false);
    for bearer in [
        None,
        Some(""),
        Some("  "),
        Some("sk-placeholder"),
        Some("eyJh.eyJz.c2ln"),
    ] {
        assert_eq!(
            open.authenticate(bearer, NOW_MS).await.unwrap(),
            Principal::anonymous(),
            "{bearer:?}"
        );
    }
    let missing = closed.authenticate(None, NOW_MS).await.unwrap_err();
    assert_eq!(
        missing.to_string(),
        "missing API key: send Authorization: Bearer <key> or x-api-key"
    );
    assert_eq!(missing.kind(), ErrorKind::Unauthorized);
    assert_eq!(
        refusal(closed.authenticate(Some(" "), NOW_MS).await),
        Refusal::Missing
    );
    assert_eq!(
        refusal(closed.authenticate(Some("sk-placeholder"), NOW_MS).await),
        Refusal::Unrecognized
    );
    assert_eq!(
        refusal(closed.authenticate(Some("eyJh.eyJz.c2ln"), NOW_MS).await),
        Refusal::OidcDisabled
    );
    // A bad key of ours is never downgraded to anonymous.
    assert_eq!(
        refusal(open.authenticate(Some("tdm_nope"), NOW_MS).await),
        Refusal::MalformedKey
    );
}

#[tokio::test]
async fn oidc_tokens_go_to_the_validator_and_keys_to_the_store() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let mut config = OidcConfig::new(issuer.url.clone(), AUDIENCE);
    config.groups_claim = Some("groups".to_owned());
    let store = Arc::new(MemoryKeyStore::default());
    let key = generate_key("ana", None, None, None, NOW_MS).unwrap();
    store.insert(key.record.clone());
    let keys: Arc<dyn tandem_auth::KeyStore> = store.clone();
    let auth = Authenticator::new(AuthenticatorParts {
        keys: Some(keys),
        oidc: Some(OidcValidator::new(config).unwrap()),
        allow_anonymous: true,
    });
    let token = sign("rsa-a", Some("rsa-a"), &claims(&issuer.url));
    let principal = auth.authenticate(Some(&token), NOW_MS).await.unwrap();
    assert_eq!(
        (principal.user.as_str(), principal.method),
        ("user-1", AuthMethod::Oidc)
    );
    assert_eq!(
        auth.authenticate(Some(key.secret.expose_secret()), NOW_MS)
            .await
            .unwrap()
            .method,
        AuthMethod::Key
    );
    // A JWT that fails validation is refused even where anonymous access is allowed.
    let forged = sign("rsa-b", Some("rsa-a"), &claims(&issuer.url));
    assert_eq!(
        refusal(auth.authenticate(Some(&forged), NOW_MS).await),
        Refusal::BadSignature
    );
}
