//! Unit tests for the token helpers: shape, header fields, claims, dates and the JWKS entry filter.

use jsonwebtoken::Algorithm;
use serde_json::{Map, Value, json};

use crate::error::{Error, Refusal};
use crate::oidc::{
    OidcConfig, OidcValidator, claim, looks_like_jwt, numeric_date_ms, parse_header, sanitize,
    usable_key,
};

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

#[test]
fn jwt_shape() {
    assert!(looks_like_jwt("eyJh.eyJz.c2ln"));
    assert!(
        looks_like_jwt("eyJh.eyJz."),
        "unsigned tokens have the shape, and are refused by `alg`"
    );
    assert!(!looks_like_jwt("eyJh.eyJz"));
    assert!(!looks_like_jwt("a.b.c.d"));
    assert!(!looks_like_jwt(".eyJz.c2ln"));
    assert!(!looks_like_jwt("eyJh.eyJz.c2=n"));
    assert!(!looks_like_jwt("sk-dummy"));
}

#[test]
fn headers_name_their_problem() {
    let refusal = |token: &str| match parse_header(token) {
        Err(Error::Unauthorized(refusal)) => refusal,
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("accepted {token}"),
    };
    assert_eq!(
        refusal("e30.e30.x"),
        Refusal::MalformedToken("the header is not a JSON object with `alg`")
    );
    assert_eq!(
        refusal("e3.e30.x"),
        Refusal::MalformedToken("the header is not base64url")
    );
    assert!(matches!(
        refusal(&"a".repeat(20_000)),
        Refusal::MalformedToken(_)
    ));
    // {"alg":"none"}
    let header = parse_header("eyJhbGciOiJub25lIn0.e30.").unwrap();
    assert_eq!((header.alg.as_str(), header.kid), ("none", None));
}

#[test]
fn echoed_header_fields_are_sanitized() {
    assert_eq!(sanitize("key-2024.01_a:b"), "key-2024.01_a:b");
    assert_eq!(sanitize("<script>\n"), "?script??");
    assert_eq!(sanitize(&"k".repeat(100)).len(), 64);
}

#[test]
fn claims_by_name_then_by_path() {
    let claims = object(json!({
        "https://example.com/groups": ["a"],
        "realm_access": {"roles": ["admin"]},
        "sub": "u1",
    }));
    assert_eq!(
        claim(&claims, "https://example.com/groups"),
        Some(&json!(["a"]))
    );
    assert_eq!(
        claim(&claims, "realm_access.roles"),
        Some(&json!(["admin"]))
    );
    assert_eq!(claim(&claims, "realm_access.missing"), None);
    assert_eq!(claim(&claims, "sub.x"), None);
}

#[test]
fn numeric_dates() {
    let claims = object(json!({"exp": 10, "nbf": 1.5, "iat": "soon"}));
    assert_eq!(numeric_date_ms(&claims, "exp").unwrap(), Some(10_000));
    assert_eq!(numeric_date_ms(&claims, "nbf").unwrap(), Some(1_500));
    assert_eq!(numeric_date_ms(&claims, "absent").unwrap(), None);
    assert!(
        matches!(numeric_date_ms(&claims, "iat"), Err(Error::Unauthorized(Refusal::BadClaim(name))) if name == "iat")
    );
}

#[test]
fn jwks_entries_that_cannot_verify_are_skipped() {
    let accepted = [Algorithm::RS256, Algorithm::ES256];
    let rsa: Value =
        serde_json::from_str(include_str!("../../tests/it/fixtures/rsa-a.jwk.json")).unwrap();
    assert!(usable_key(rsa.clone(), &accepted).is_ok());
    let mut enc = rsa.clone();
    enc["use"] = json!("enc");
    assert_eq!(
        usable_key(enc, &accepted).err(),
        Some("not a signature key")
    );
    let mut other_alg = rsa.clone();
    other_alg["alg"] = json!("RS512");
    assert_eq!(
        usable_key(other_alg, &accepted).err(),
        Some("its algorithm is not accepted")
    );
    let mut oaep = rsa;
    oaep["alg"] = json!("RSA-OAEP");
    assert_eq!(
        usable_key(oaep, &accepted).err(),
        Some("its algorithm is not accepted")
    );
    let oct = json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0"});
    assert_eq!(
        usable_key(oct, &accepted).err(),
        Some("symmetric keys are never accepted")
    );
    assert_eq!(
        usable_key(json!({"kty": "XYZ"}), &accepted).err(),
        Some("unsupported or malformed key")
    );
}

#[test]
fn symmetric_algorithms_and_empty_settings_are_refused() {
    let mut config = OidcConfig::new("https://issuer.example", "urn:tandem");
    config.algorithms = vec![Algorithm::RS256, Algorithm::HS256];
    let err = OidcValidator::new(config).unwrap_err();
    assert!(err.to_string().contains("HS256 is symmetric"), "{err}");
    assert!(OidcValidator::new(OidcConfig::new("", "urn:tandem")).is_err());
    assert!(OidcValidator::new(OidcConfig::new("https://issuer.example", " ")).is_err());
    let mut config = OidcConfig::new("https://issuer.example", "urn:tandem");
    config.algorithms.clear();
    assert!(OidcValidator::new(config).is_err());
}
