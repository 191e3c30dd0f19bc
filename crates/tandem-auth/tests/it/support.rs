//! Test support: a mock OIDC issuer on loopback, token minting with the fixture keys, an in-memory key store.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tandem_auth::{KeyRecord, KeyStore};
use tokio::net::TcpListener;

/// The fixed time of the tests, in seconds and milliseconds since the epoch.
pub const NOW_S: i64 = 1_800_000_000;
pub const NOW_MS: i64 = NOW_S * 1000;
pub const AUDIENCE: &str = "urn:tandem";

/// A test key pair from `fixtures/`: its private PEM and public JWK (whose `kid` is the name).
pub fn fixture(name: &str) -> (&'static [u8], &'static str) {
    match name {
        "rsa-a" => (
            include_bytes!("fixtures/rsa-a.pem"),
            include_str!("fixtures/rsa-a.jwk.json"),
        ),
        "rsa-b" => (
            include_bytes!("fixtures/rsa-b.pem"),
            include_str!("fixtures/rsa-b.jwk.json"),
        ),
        "ec-a" => (
            include_bytes!("fixtures/ec-a.pem"),
            include_str!("fixtures/ec-a.jwk.json"),
        ),
        other => panic!("no fixture key {other}"),
    }
}

pub fn public_jwk(name: &str) -> Value {
    serde_json::from_str(fixture(name).1).unwrap()
}

/// A JWT over `claims` signed with fixture key `key`, with `kid` in the header.
pub fn sign(key: &str, kid: Option<&str>, claims: &Value) -> String {
    let pem = fixture(key).0;
    let (alg, encoding) = if key.starts_with("ec") {
        (Algorithm::ES256, EncodingKey::from_ec_pem(pem).unwrap())
    } else {
        (Algorithm::RS256, EncodingKey::from_rsa_pem(pem).unwrap())
    };
    let mut header = Header::new(alg);
    header.kid = kid.map(str::to_owned);
    jsonwebtoken::encode(&header, claims, &encoding).unwrap()
}

/// Standard claims for `issuer`: audience `urn:tandem`, valid from a minute before [`NOW_S`] for ten minutes.
pub fn claims(issuer: &str) -> Value {
    json!({
        "iss": issuer,
        "aud": AUDIENCE,
        "sub": "user-1",
        "email": "ana@example.com",
        "groups": ["eng", "platform"],
        "project": "web",
        "iat": NOW_S - 60,
        "nbf": NOW_S - 60,
        "exp": NOW_S + 600,
    })
}

/// A token with arbitrary header and payload JSON and the given signature part, base64url-encoded.
pub fn raw_token(header: &Value, payload: &Value, signature: &[u8]) -> String {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    format!(
        "{}.{}.{}",
        b64.encode(serde_json::to_vec(header).unwrap()),
        b64.encode(serde_json::to_vec(payload).unwrap()),
        b64.encode(signature)
    )
}

/// A mock OIDC issuer on 127.0.0.1: discovery at `/.well-known/openid-configuration`, the JWKS at `/jwks`.
pub struct MockIssuer {
    pub url: String,
    state: Arc<IssuerState>,
    task: tokio::task::JoinHandle<()>,
}

struct IssuerState {
    url: String,
    jwks: Mutex<Value>,
    jwks_fetches: AtomicUsize,
    discoveries: AtomicUsize,
}

impl MockIssuer {
    /// Starts an issuer serving the public keys of the named fixtures.
    pub async fn start(keys: &[&str]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(IssuerState {
            url: url.clone(),
            jwks: Mutex::new(Value::Null),
            jwks_fetches: AtomicUsize::new(0),
            discoveries: AtomicUsize::new(0),
        });
        let issuer_state = Arc::clone(&state);
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let state = Arc::clone(&issuer_state);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = Arc::clone(&state);
                        async move { Ok::<_, Infallible>(state.answer(&request)) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let issuer = MockIssuer { url, state, task };
        issuer.serve_keys(keys);
        issuer
    }

    /// From now on, the JWKS holds the public keys of these fixtures (key rotation).
    pub fn serve_keys(&self, keys: &[&str]) {
        self.serve_jwks(json!({"keys": keys.iter().map(|k| public_jwk(k)).collect::<Vec<_>>()}));
    }

    pub fn serve_jwks(&self, jwks: Value) {
        *self.state.jwks.lock().unwrap() = jwks;
    }

    /// How often `/jwks` was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.state.jwks_fetches.load(Ordering::SeqCst)
    }

    /// How often the discovery document was fetched.
    pub fn discoveries(&self) -> usize {
        self.state.discoveries.load(Ordering::SeqCst)
    }
}

impl Drop for MockIssuer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl IssuerState {
    fn answer(&self, request: &Request<Incoming>) -> Response<Full<Bytes>> {
        let body = match request.uri().path() {
            "/.well-known/openid-configuration" => {
                self.discoveries.fetch_add(1, Ordering::SeqCst);
                json!({"issuer": self.url, "jwks_uri": format!("{}/jwks", self.url)})
            }
            "/jwks" => {
                self.jwks_fetches.fetch_add(1, Ordering::SeqCst);
                self.jwks.lock().unwrap().clone()
            }
            _ => {
                let mut response = Response::new(Full::new(Bytes::from_static(b"not found")));
                *response.status_mut() = StatusCode::NOT_FOUND;
                return response;
            }
        };
        let mut response =
            Response::new(Full::new(Bytes::from(serde_json::to_vec(&body).unwrap())));
        response
            .headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        response
    }
}

/// An in-memory key store, keyed by hash, whose records tests can change (revoke) while it is in use.
#[derive(Default)]
pub struct MemoryKeyStore {
    records: Mutex<HashMap<String, KeyRecord>>,
    pub fail: std::sync::atomic::AtomicBool,
}

impl MemoryKeyStore {
    pub fn insert(&self, record: KeyRecord) {
        self.records
            .lock()
            .unwrap()
            .insert(record.hash.clone(), record);
    }

    pub fn revoke(&self, id: &str, at_ms: i64) {
        for record in self.records.lock().unwrap().values_mut() {
            if record.id == id {
                record.revoked_at_ms = Some(at_ms);
            }
        }
    }
}

impl KeyStore for MemoryKeyStore {
    fn find_by_hash(&self, hash: &str) -> tandem_auth::Result<Option<KeyRecord>> {
        if self.fail.load(Ordering::SeqCst) {
            return Err(tandem_auth::Error::Store("database is locked".into()));
        }
        Ok(self.records.lock().unwrap().get(hash).cloned())
    }
}
