//! OIDC tokens against a mock issuer: what is accepted, what is refused and why, and JWKS caching.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_auth::{AuthMethod, Error, OidcConfig, OidcValidator, Principal, Refusal};
use tandem_protocol::ErrorKind;

use crate::support::{AUDIENCE, MockIssuer, NOW_MS, NOW_S, claims, raw_token, sign};

fn config(issuer: &MockIssuer) -> OidcConfig {
    let mut config = OidcConfig::new(issuer.url.clone(), AUDIENCE);
    config.groups_claim = Some("groups".to_owned());
    config.project_claim = Some("project".to_owned());
    config.jwks_refresh_min_interval = Duration::ZERO;
    config
}

fn validator(issuer: &MockIssuer) -> OidcValidator {
    OidcValidator::new(config(issuer)).unwrap()
}

#[track_caller]
fn refusal(result: tandem_auth::Result<Principal>) -> Refusal {
    match result {
        Err(Error::Unauthorized(refusal)) => refusal,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[tokio::test]
async fn a_valid_token_maps_its_claims() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let token = sign("rsa-a", Some("rsa-a"), &claims(&issuer.url));
    let principal = validator(&issuer)
        .validate_at(&token, NOW_MS)
        .await
        .unwrap();
    assert_eq!(
        principal,
        Principal {
            user: "user-1".to_owned(),
            groups: vec!["eng".to_owned(), "platform".to_owned()],
            project: Some("web".to_owned()),
            key_id: None,
            method: AuthMethod::Oidc,
        }
    );
    assert_eq!((issuer.discoveries(), issuer.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn claims_are_mapped_by_config() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let mut config = config(&issuer);
    config.user_claim = "email".to_owned();
    config.groups_claim = Some("realm_access.roles".to_owned());
    config.project_claim = None;
    let validator = OidcValidator::new(config).unwrap();
    let mut body = claims(&issuer.url);
    body["realm_access"] = json!({"roles": ["admin"]});
    let principal = validator
        .validate_at(&sign("rsa-a", Some("rsa-a"), &body), NOW_MS)
        .await
        .unwrap();
    assert_eq!(
        (principal.user.as_str(), principal.groups, principal.project),
        ("ana@example.com", vec!["admin".to_owned()], None)
    );

    // Without the user claim, `sub` names the user; a single group may be a string.
    body.as_object_mut().unwrap().remove("email");
    body["realm_access"] = json!({"roles": "ops"});
    let principal = validator
        .validate_at(&sign("rsa-a", Some("rsa-a"), &body), NOW_MS)
        .await
        .unwrap();
    assert_eq!(
        (principal.user.as_str(), principal.groups),
        ("user-1", vec!["ops".to_owned()])
    );

    body["realm_access"] = json!({"roles": [1, 2]});
    let refused = refusal(
        validator
            .validate_at(&sign("rsa-a", Some("rsa-a"), &body), NOW_MS)
            .await,
    );
    assert_eq!(refused, Refusal::BadClaim("realm_access.roles".to_owned()));
}

#[tokio::test]
async fn an_es256_token_is_accepted() {
    let issuer = MockIssuer::start(&["rsa-a", "ec-a"]).await;
    let token = sign("ec-a", Some("ec-a"), &claims(&issuer.url));
    assert_eq!(
        validator(&issuer)
            .validate_at(&token, NOW_MS)
            .await
            .unwrap()
            .user,
        "user-1"
    );
}

#[tokio::test]
async fn forged_signatures_are_refused() {
    let issuer = MockIssuer::start(&["rsa-a", "rsa-b"]).await;
    let validator = validator(&issuer);
    // Signed with another key than the one its `kid` names.
    let forged = sign("rsa-b", Some("rsa-a"), &claims(&issuer.url));
    assert_eq!(
        refusal(validator.validate_at(&forged, NOW_MS).await),
        Refusal::BadSignature
    );

    // A genuine token whose payload was changed (more groups), keeping the signature.
    let genuine = sign("rsa-a", Some("rsa-a"), &claims(&issuer.url));
    let mut parts: Vec<&str> = genuine.split('.').collect();
    let mut tampered_claims = claims(&issuer.url);
    tampered_claims["groups"] = json!(["admin"]);
    let tampered_token = raw_token(
        &json!({"alg": "RS256", "kid": "rsa-a"}),
        &tampered_claims,
        b"",
    );
    let tampered_payload = tampered_token.split('.').nth(1).unwrap().to_owned();
    parts[1] = &tampered_payload;
    assert_eq!(
        refusal(validator.validate_at(&parts.join("."), NOW_MS).await),
        Refusal::BadSignature
    );

    // A flipped signature byte.
    let mut bytes = genuine.into_bytes();
    let last = bytes.len() - 5;
    bytes[last] = if bytes[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(bytes).unwrap();
    assert_eq!(
        refusal(validator.validate_at(&flipped, NOW_MS).await),
        Refusal::BadSignature
    );
}

#[tokio::test]
async fn expiry_and_not_before_are_checked_with_leeway() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    let at = |exp: i64, nbf: i64| {
        let mut body = claims(&issuer.url);
        body["exp"] = json!(exp);
        body["nbf"] = json!(nbf);
        sign("rsa-a", Some("rsa-a"), &body)
    };
    assert_eq!(
        refusal(
            validator
                .validate_at(&at(NOW_S - 31, NOW_S - 600), NOW_MS)
                .await
        ),
        Refusal::Expired
    );
    assert!(
        validator
            .validate_at(&at(NOW_S - 29, NOW_S - 600), NOW_MS)
            .await
            .is_ok(),
        "within the 30 s leeway"
    );
    assert_eq!(
        refusal(
            validator
                .validate_at(&at(NOW_S + 600, NOW_S + 31), NOW_MS)
                .await
        ),
        Refusal::NotYetValid
    );
    assert!(
        validator
            .validate_at(&at(NOW_S + 600, NOW_S + 29), NOW_MS)
            .await
            .is_ok(),
        "within the 30 s leeway"
    );

    let mut body = claims(&issuer.url);
    body.as_object_mut().unwrap().remove("exp");
    let no_exp = sign("rsa-a", Some("rsa-a"), &body);
    assert_eq!(
        refusal(validator.validate_at(&no_exp, NOW_MS).await),
        Refusal::MissingClaim("exp".to_owned())
    );
}

#[tokio::test]
async fn the_system_clock_refuses_an_expired_token() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let mut body = claims(&issuer.url);
    body["exp"] = json!(1_000_000_000); // 2001
    let token = sign("rsa-a", Some("rsa-a"), &body);
    assert_eq!(
        refusal(validator(&issuer).validate(&token).await),
        Refusal::Expired
    );
}

#[tokio::test]
async fn wrong_audience_and_issuer_are_refused() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    let with = |field: &str, value: Value| {
        let mut body = claims(&issuer.url);
        body[field] = value;
        sign("rsa-a", Some("rsa-a"), &body)
    };
    assert_eq!(
        refusal(
            validator
                .validate_at(&with("aud", json!("urn:other")), NOW_MS)
                .await
        ),
        Refusal::WrongAudience
    );
    assert_eq!(
        refusal(
            validator
                .validate_at(&with("aud", json!(["urn:other", "urn:more"])), NOW_MS)
                .await
        ),
        Refusal::WrongAudience
    );
    assert!(
        validator
            .validate_at(&with("aud", json!(["urn:other", AUDIENCE])), NOW_MS)
            .await
            .is_ok()
    );
    assert_eq!(
        refusal(
            validator
                .validate_at(&with("iss", json!("https://evil.example")), NOW_MS)
                .await
        ),
        Refusal::WrongIssuer
    );
    let mut body = claims(&issuer.url);
    body.as_object_mut().unwrap().remove("aud");
    let no_aud = sign("rsa-a", Some("rsa-a"), &body);
    assert_eq!(
        refusal(validator.validate_at(&no_aud, NOW_MS).await),
        Refusal::MissingClaim("aud".to_owned())
    );
}

#[tokio::test]
async fn an_unknown_kid_is_refused_until_the_issuer_rotates_it_in() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    let old = sign("rsa-a", Some("rsa-a"), &claims(&issuer.url));
    let new = sign("rsa-b", Some("rsa-b"), &claims(&issuer.url));
    assert!(validator.validate_at(&old, NOW_MS).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 1);

    // Unknown: one refetch, then refused.
    assert_eq!(
        refusal(validator.validate_at(&new, NOW_MS).await),
        Refusal::UnknownKid("rsa-b".to_owned())
    );
    assert_eq!(issuer.jwks_fetches(), 2);

    // The issuer rotates: the new key is accepted after a refetch, and the old one no longer is.
    issuer.serve_keys(&["rsa-b"]);
    assert_eq!(
        validator.validate_at(&new, NOW_MS).await.unwrap().user,
        "user-1"
    );
    assert_eq!(issuer.jwks_fetches(), 3);
    assert!(validator.validate_at(&new, NOW_MS).await.is_ok());
    assert_eq!(issuer.jwks_fetches(), 3, "a cached kid needs no fetch");
    assert_eq!(
        refusal(validator.validate_at(&old, NOW_MS).await),
        Refusal::UnknownKid("rsa-a".to_owned())
    );
    assert_eq!(
        issuer.discoveries(),
        1,
        "the JWKS location is discovered once"
    );
}

#[tokio::test]
async fn unknown_kids_refetch_at_most_once_per_interval() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let mut config = config(&issuer);
    config.jwks_refresh_min_interval = Duration::from_secs(3600);
    let validator = OidcValidator::new(config).unwrap();
    assert!(
        validator
            .validate_at(&sign("rsa-a", Some("rsa-a"), &claims(&issuer.url)), NOW_MS)
            .await
            .is_ok()
    );
    issuer.serve_keys(&["rsa-a", "rsa-b"]);
    for kid in ["rsa-b", "forged-1", "forged-2"] {
        let token = sign("rsa-b", Some(kid), &claims(&issuer.url));
        assert_eq!(
            refusal(validator.validate_at(&token, NOW_MS).await),
            Refusal::UnknownKid(kid.to_owned())
        );
    }
    assert_eq!(
        issuer.jwks_fetches(),
        1,
        "refetching waits for the minimum interval"
    );
    // An explicit refresh (as at start-up) is not rate-limited.
    assert_eq!(validator.refresh_keys().await.unwrap(), 2);
    assert!(
        validator
            .validate_at(&sign("rsa-b", Some("rsa-b"), &claims(&issuer.url)), NOW_MS)
            .await
            .is_ok()
    );
}

#[tokio::test]
async fn concurrent_first_requests_fetch_the_jwks_once() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = Arc::new(validator(&issuer));
    let token = Arc::new(sign("rsa-a", Some("rsa-a"), &claims(&issuer.url)));
    let tasks: Vec<_> = (0..16)
        .map(|_| {
            let (validator, token) = (Arc::clone(&validator), Arc::clone(&token));
            tokio::spawn(async move { validator.validate_at(&token, NOW_MS).await })
        })
        .collect();
    for task in tasks {
        assert!(task.await.unwrap().is_ok());
    }
    assert_eq!((issuer.discoveries(), issuer.jwks_fetches()), (1, 1));
}

#[tokio::test]
async fn unsigned_and_symmetric_tokens_are_refused() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    let body = claims(&issuer.url);
    let none = raw_token(&json!({"alg": "none", "kid": "rsa-a"}), &body, b"");
    assert_eq!(
        refusal(validator.validate_at(&none, NOW_MS).await),
        Refusal::Algorithm("none".to_owned())
    );
    let none = raw_token(&json!({"alg": "none"}), &body, b"");
    assert_eq!(
        refusal(validator.validate_at(&none, NOW_MS).await),
        Refusal::Algorithm("none".to_owned())
    );

    // The classic confusion attack: HS256 keyed with the issuer's public key material.
    let public = serde_json::to_vec(&crate::support::public_jwk("rsa-a")).unwrap();
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some("rsa-a".to_owned());
    let hs = jsonwebtoken::encode(&header, &body, &EncodingKey::from_secret(&public)).unwrap();
    assert_eq!(
        refusal(validator.validate_at(&hs, NOW_MS).await),
        Refusal::Algorithm("HS256".to_owned())
    );

    // An accepted algorithm that does not fit the key its `kid` names.
    let es_on_rsa = raw_token(&json!({"alg": "ES256", "kid": "rsa-a"}), &body, &[0; 64]);
    assert_eq!(
        refusal(validator.validate_at(&es_on_rsa, NOW_MS).await),
        Refusal::Algorithm("ES256".to_owned())
    );
    // An algorithm that is not configured.
    let rs512 = raw_token(&json!({"alg": "RS512", "kid": "rsa-a"}), &body, &[0; 256]);
    assert_eq!(
        refusal(validator.validate_at(&rs512, NOW_MS).await),
        Refusal::Algorithm("RS512".to_owned())
    );
}

#[tokio::test]
async fn malformed_tokens_are_refused_without_echoing_them() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    for token in [
        "not-a-jwt",
        "a.b",
        "eyJhbGciOiJSUzI1NiJ9.!!!.sig",
        "e30.e30.e30",
    ] {
        let err = validator.validate_at(token, NOW_MS).await.unwrap_err();
        assert!(
            matches!(err, Error::Unauthorized(Refusal::MalformedToken(_))),
            "{token}: {err}"
        );
        assert_eq!(err.kind(), ErrorKind::Unauthorized);
        assert_eq!(err.kind().http_status(), 401);
    }
    let token = sign("rsa-b", Some("rsa-b"), &claims(&issuer.url));
    let err = validator.validate_at(&token, NOW_MS).await.unwrap_err();
    let signature = token.rsplit('.').next().unwrap();
    assert!(!err.to_string().contains(signature), "{err}");
    let hostile = raw_token(
        &json!({"alg": "RS256", "kid": "<img src=x>\n"}),
        &claims(&issuer.url),
        &[0; 256],
    );
    assert_eq!(
        refusal(validator.validate_at(&hostile, NOW_MS).await),
        Refusal::UnknownKid("?img?src?x??".to_owned())
    );
}

#[tokio::test]
async fn a_token_without_kid_uses_the_only_key() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let validator = validator(&issuer);
    let token = sign("rsa-a", None, &claims(&issuer.url));
    assert!(validator.validate_at(&token, NOW_MS).await.is_ok());
    issuer.serve_keys(&["rsa-a", "rsa-b"]);
    validator.refresh_keys().await.unwrap();
    assert!(matches!(
        refusal(validator.validate_at(&token, NOW_MS).await),
        Refusal::MalformedToken(_)
    ));
}

#[tokio::test]
async fn symmetric_and_encryption_keys_in_the_jwks_are_ignored() {
    let issuer = MockIssuer::start(&[]).await;
    issuer.serve_jwks(json!({"keys": [
        {"kty": "oct", "kid": "shared", "k": "c2VjcmV0"},
        {"kty": "RSA", "kid": "future", "use": "sig", "n": "AQAB", "e": "AQAB", "alg": "RS256", "x5c": "odd"},
        {"kty": "OKP", "crv": "X25519", "kid": "enc", "use": "enc", "x": "AAAA"},
        crate::support::public_jwk("rsa-a"),
    ]}));
    let validator = validator(&issuer);
    assert_eq!(validator.refresh_keys().await.unwrap(), 1);
    let hs = jsonwebtoken::encode(
        &Header {
            kid: Some("shared".to_owned()),
            ..Header::new(Algorithm::HS256)
        },
        &claims(&issuer.url),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    assert_eq!(
        refusal(validator.validate_at(&hs, NOW_MS).await),
        Refusal::Algorithm("HS256".to_owned())
    );
}

#[tokio::test]
async fn an_explicit_jwks_uri_skips_discovery() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    let mut config = config(&issuer);
    config.jwks_uri = Some(format!("{}/jwks", issuer.url));
    let validator = OidcValidator::new(config).unwrap();
    assert!(
        validator
            .validate_at(&sign("rsa-a", Some("rsa-a"), &claims(&issuer.url)), NOW_MS)
            .await
            .is_ok()
    );
    assert_eq!((issuer.discoveries(), issuer.jwks_fetches()), (0, 1));
}

#[tokio::test]
async fn an_unreachable_or_inconsistent_issuer_is_a_gateway_failure() {
    let issuer = MockIssuer::start(&["rsa-a"]).await;
    // The discovery document names the issuer without the trailing slash.
    let mut slashed = config(&issuer);
    slashed.issuer = format!("{}/", issuer.url);
    let validator = OidcValidator::new(slashed).unwrap();
    let err = validator
        .validate_at(&sign("rsa-a", Some("rsa-a"), &claims(&issuer.url)), NOW_MS)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Jwks(_)), "{err}");
    assert!(err.to_string().contains("names the issuer"), "{err}");

    let mut unreachable = OidcConfig::new("http://127.0.0.1:9", AUDIENCE);
    unreachable.jwks_refresh_min_interval = Duration::from_secs(3600);
    let validator = OidcValidator::new(unreachable).unwrap();
    let token = sign("rsa-a", Some("rsa-a"), &claims("http://127.0.0.1:9"));
    let err = validator.validate_at(&token, NOW_MS).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable, "{err}");
    // Within the interval the failure is answered from memory, without another attempt.
    let again = validator.validate_at(&token, NOW_MS).await.unwrap_err();
    assert!(matches!(again, Error::Jwks(_)), "{again}");

    issuer.serve_jwks(json!({"keys": []}));
    let err = OidcValidator::new(config(&issuer))
        .unwrap()
        .refresh_keys()
        .await
        .unwrap_err();
    assert!(err.to_string().contains("no usable signing key"), "{err}");
}

#[tokio::test]
async fn a_remembered_token_still_expires_and_still_needs_its_key() {
    let issuer = MockIssuer::start(&["rsa-a", "rsa-b"]).await;
    let mut config = config(&issuer);
    config.token_cache_capacity = 2;
    let validator = OidcValidator::new(config).unwrap();
    let token = sign("rsa-a", Some("rsa-a"), &claims(&issuer.url));
    assert!(validator.validate_at(&token, NOW_MS).await.is_ok());
    assert!(validator.validate_at(&token, NOW_MS).await.is_ok());
    let after_expiry = (NOW_S + 600 + 31) * 1000;
    assert_eq!(
        refusal(validator.validate_at(&token, after_expiry).await),
        Refusal::Expired
    );
    let before_nbf = (NOW_S - 60 - 31) * 1000;
    assert_eq!(
        refusal(validator.validate_at(&token, before_nbf).await),
        Refusal::NotYetValid
    );

    // More distinct tokens than the capacity: all still validate.
    for sub in ["u2", "u3", "u4"] {
        let mut body = claims(&issuer.url);
        body["sub"] = json!(sub);
        let principal = validator
            .validate_at(&sign("rsa-b", Some("rsa-b"), &body), NOW_MS)
            .await
            .unwrap();
        assert_eq!(principal.user, sub);
    }

    // The issuer withdraws rsa-a: once the JWKS is reloaded, the remembered token no longer passes.
    assert!(validator.validate_at(&token, NOW_MS).await.is_ok());
    issuer.serve_keys(&["rsa-b"]);
    validator.refresh_keys().await.unwrap();
    assert_eq!(
        refusal(validator.validate_at(&token, NOW_MS).await),
        Refusal::UnknownKid("rsa-a".to_owned())
    );
}
