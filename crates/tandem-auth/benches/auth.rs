//! `Authenticator::authenticate` per request: an API key against an in-memory store of 10,000 keys, and
//! RS256 and ES256 OIDC tokens whose signing key is cached, both the first time a token is seen (full
//! signature verification, `*_first_sight`) and when the client sends it again (`*_repeat`, the steady
//! state: clients reuse a token until it expires).
//!
//! Run with `cargo bench -p tandem-auth`; auth, policy and budget together must stay under 100 µs per
//! request. The JWKS is served once by a tiny HTTP responder on 127.0.0.1 and then answered from the cache.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::{Arc, RwLock};
use std::time::{SystemTime, UNIX_EPOCH};

use criterion::{Criterion, criterion_group, criterion_main};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use secrecy::ExposeSecret;
use serde_json::json;
use tandem_auth::{
    Authenticator, AuthenticatorParts, KeyRecord, KeyStore, OidcConfig, OidcValidator, generate_key,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const ISSUER: &str = "https://issuer.bench";
const AUDIENCE: &str = "urn:tandem";

/// A key store like the gateway's: a map behind a lock, looked up by hash.
struct MemoryKeyStore(RwLock<HashMap<String, KeyRecord>>);

impl KeyStore for MemoryKeyStore {
    fn find_by_hash(&self, hash: &str) -> tandem_auth::Result<Option<KeyRecord>> {
        let records = self
            .0
            .read()
            .map_err(|_| tandem_auth::Error::Store("poisoned".into()))?;
        Ok(records.get(hash).cloned())
    }
}

/// Serves `body` as JSON to every request on 127.0.0.1, for as long as the runtime lives.
async fn serve_json(body: String) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/jwks", listener.local_addr()?);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    Ok(url)
}

#[expect(clippy::expect_used, reason = "benchmark setup on fixed test keys")]
fn bench_authenticate(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;

    let store = MemoryKeyStore(RwLock::new(HashMap::new()));
    let mut secret = None;
    for i in 0..10_000 {
        let key = generate_key(
            &format!("user-{i}"),
            Some("team"),
            Some("project"),
            None,
            now_ms,
        )
        .expect("key");
        if i == 5_000 {
            secret = Some(key.secret.expose_secret().to_owned());
        }
        store
            .0
            .write()
            .expect("lock")
            .insert(key.record.hash.clone(), key.record);
    }
    let secret = secret.expect("a key");

    let jwks = json!({"keys": [
        serde_json::from_str::<serde_json::Value>(include_str!("../tests/it/fixtures/rsa-a.jwk.json")).expect("jwk"),
        serde_json::from_str::<serde_json::Value>(include_str!("../tests/it/fixtures/ec-a.jwk.json")).expect("jwk"),
    ]});
    let jwks_uri = rt
        .block_on(serve_json(jwks.to_string()))
        .expect("jwks responder");
    let mut config = OidcConfig::new(ISSUER, AUDIENCE);
    config.jwks_uri = Some(jwks_uri);
    config.groups_claim = Some("groups".to_owned());
    let mut uncached_config = config.clone();
    uncached_config.token_cache_capacity = 0;
    let oidc = OidcValidator::new(config).expect("oidc");
    rt.block_on(oidc.refresh_keys()).expect("jwks");
    let uncached = OidcValidator::new(uncached_config).expect("oidc");
    rt.block_on(uncached.refresh_keys()).expect("jwks");

    let keys: Arc<dyn KeyStore> = Arc::new(store);
    let auth = Authenticator::new(AuthenticatorParts {
        keys: Some(keys),
        oidc: Some(oidc),
        allow_anonymous: false,
    });
    // Remembers no token, so every call verifies the signature as on a token's first request.
    let first_sight = Authenticator::new(AuthenticatorParts {
        keys: None,
        oidc: Some(uncached),
        allow_anonymous: false,
    });

    let claims = json!({
        "iss": ISSUER, "aud": AUDIENCE, "sub": "ana", "groups": ["eng", "platform"],
        "iat": now_ms / 1000, "exp": now_ms / 1000 + 3600,
    });
    let sign = |alg: Algorithm, kid: &str, key: EncodingKey| {
        let header = Header {
            kid: Some(kid.to_owned()),
            ..Header::new(alg)
        };
        jsonwebtoken::encode(&header, &claims, &key).expect("token")
    };
    let rs256 = sign(
        Algorithm::RS256,
        "rsa-a",
        EncodingKey::from_rsa_pem(include_bytes!("../tests/it/fixtures/rsa-a.pem")).expect("pem"),
    );
    let es256 = sign(
        Algorithm::ES256,
        "ec-a",
        EncodingKey::from_ec_pem(include_bytes!("../tests/it/fixtures/ec-a.pem")).expect("pem"),
    );
    let cases = [
        ("api_key", &auth, secret.as_str()),
        ("oidc_rs256_repeat", &auth, rs256.as_str()),
        ("oidc_es256_repeat", &auth, es256.as_str()),
        ("oidc_rs256_first_sight", &first_sight, rs256.as_str()),
        ("oidc_es256_first_sight", &first_sight, es256.as_str()),
    ];
    for (_, authenticator, token) in cases {
        rt.block_on(authenticator.authenticate(Some(token), now_ms))
            .expect("the bench credentials are valid");
    }

    let mut group = c.benchmark_group("authenticate");
    for (name, authenticator, token) in cases {
        group.bench_function(name, |b| {
            b.to_async(&rt).iter(|| async {
                black_box(
                    authenticator
                        .authenticate(Some(black_box(token)), now_ms)
                        .await,
                )
            });
        });
    }
    group.finish();
}

criterion_group!(benches, bench_authenticate);
criterion_main!(benches);
