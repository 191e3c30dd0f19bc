//! Unit tests for key generation, hashing and duration parsing.

use std::time::Duration;

use secrecy::ExposeSecret;

use crate::keys::{KeyStatus, generate_key, hash_key, key_id, looks_like_api_key, parse_duration};

#[test]
fn generated_keys_have_the_documented_shape() {
    let key = generate_key("ana", Some("core"), Some("web"), Some(2_000), 1_000).unwrap();
    let secret = key.secret.expose_secret();
    assert!(secret.starts_with("tdm_"), "{}", key.id);
    assert_eq!(secret.len(), 44);
    assert!(secret[4..].bytes().all(|b| b.is_ascii_alphanumeric()));
    assert!(looks_like_api_key(secret));
    assert_eq!(key.id, format!("key_{}", &secret[4..12]));
    assert_eq!(key.record.id, key.id);
    assert_eq!(key.record.hash, hash_key(secret));
    assert_eq!(key.record.user, "ana");
    assert_eq!(key.record.team.as_deref(), Some("core"));
    assert_eq!(key.record.project.as_deref(), Some("web"));
    assert_eq!(
        (
            key.record.created_at_ms,
            key.record.expires_at_ms,
            key.record.revoked_at_ms
        ),
        (1_000, Some(2_000), None)
    );
}

#[test]
fn generated_keys_differ_and_the_secret_is_not_debug_printed() {
    let a = generate_key("ana", None, None, None, 0).unwrap();
    let b = generate_key("ana", None, None, None, 0).unwrap();
    assert_ne!(a.secret.expose_secret(), b.secret.expose_secret());
    assert_ne!(a.record.hash, b.record.hash);
    let debug = format!("{a:?}");
    assert!(!debug.contains(a.secret.expose_secret()), "{debug}");
}

#[test]
fn the_hash_is_sha256_hex_of_the_whole_key() {
    // printf 'tdm_abc' | sha256sum
    assert_eq!(
        hash_key("tdm_abc"),
        "5d71859f46df090e25a1cdcbeea4738f6bec605081cf0ed83b8db9fb3de10425"
    );
    assert_eq!(
        hash_key(""),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(hash_key("tdm_x").len(), 64);
}

#[test]
fn key_ids_need_well_formed_keys() {
    let body = "A".repeat(40);
    assert_eq!(
        key_id(&format!("tdm_{body}")).as_deref(),
        Some("key_AAAAAAAA")
    );
    assert_eq!(key_id(&format!("tdm_{}", "A".repeat(39))), None);
    assert_eq!(key_id(&format!("tdm_{}!", "A".repeat(39))), None);
    assert_eq!(key_id(&format!("sk_{body}")), None);
}

#[test]
fn status_prefers_revoked_over_expired() {
    let mut record = generate_key("ana", None, None, Some(100), 0)
        .unwrap()
        .record;
    assert_eq!(record.status(99), KeyStatus::Active);
    assert_eq!(record.status(100), KeyStatus::Expired);
    record.revoked_at_ms = Some(50);
    assert_eq!(record.status(49), KeyStatus::Active);
    assert_eq!(record.status(50), KeyStatus::Revoked);
    assert_eq!(record.status(200), KeyStatus::Revoked);
}

#[track_caller]
fn check(input: &str, expect: Result<u64, &str>) {
    let got = parse_duration(input)
        .map(|d| d.as_secs())
        .map_err(|e| e.to_string());
    match (got, expect) {
        (Ok(got), Ok(want)) => assert_eq!(got, want, "{input}"),
        (Err(got), Err(want)) => assert!(got.contains(want), "{input}: {got}"),
        (got, want) => panic!("{input}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn durations() {
    check("30d", Ok(30 * 86_400));
    check("12h", Ok(12 * 3_600));
    check("90m", Ok(90 * 60));
    check("1w", Ok(7 * 86_400));
    check("45s", Ok(45));
    check(" 2d ", Ok(2 * 86_400));
    check("30", Err("missing unit"));
    check("d", Err("expected a number"));
    check("", Err("expected a number"));
    check("-1d", Err("expected a number"));
    check("3y", Err("unknown unit"));
    check("1.5d", Err("unknown unit"));
    check("0d", Err("longer than zero"));
    check("99999999999999999999d", Err("too large"));
    check("99999999999999999w", Err("too large"));
    assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
}
