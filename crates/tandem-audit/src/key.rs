//! The ledger's Ed25519 key: it signs checkpoints (C2SP signed notes) and DSSE attestations, and a
//! key derived from it makes the keyed hashes of prompts and answers.
//!
//! The key file holds the signer key in the `note` format (`PRIVATE+KEY+<name>+<id>+<base64>`), so
//! standard signed-note tooling can read it. Its verifier key (`<name>+<id>+<base64>`) is public:
//! give it to auditors, who check checkpoints with it.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::Signer as _;
use signed_note::{StandardSigner, StandardVerifier};

use crate::error::io;
use crate::{Error, Result};

/// The note signature algorithm byte for Ed25519.
const ALG_ED25519: u8 = 1;

/// The ledger's signing key.
#[derive(Clone)]
pub struct LedgerKey {
    path: PathBuf,
    name: String,
    signer: StandardSigner,
    signing: ed25519_dalek::SigningKey,
    vkey: String,
    content: ContentKey,
}

impl std::fmt::Debug for LedgerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LedgerKey")
            .field("path", &self.path)
            .field("vkey", &self.vkey)
            .finish_non_exhaustive()
    }
}

impl LedgerKey {
    /// Reads the key at `path`, or creates one named `name` (mode 0600) when there is none.
    pub fn load_or_create(path: &Path, name: &str) -> Result<LedgerKey> {
        match std::fs::read_to_string(path) {
            Ok(text) => LedgerKey::parse(path, &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => LedgerKey::create(path, name),
            Err(e) => Err(io("read", path)(e)),
        }
    }

    /// Reads the key at `path`.
    pub fn load(path: &Path) -> Result<LedgerKey> {
        let text = std::fs::read_to_string(path).map_err(io("read", path))?;
        LedgerKey::parse(path, &text)
    }

    fn create(path: &Path, name: &str) -> Result<LedgerKey> {
        if !signed_note::is_key_name_valid(name) {
            return Err(Error::Key {
                path: path.to_owned(),
                message: format!("`{name}` is not a valid key name (no spaces or `+`)"),
            });
        }
        let mut seed = [0u8; 32];
        rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut seed).map_err(|e| {
            Error::Key {
                path: path.to_owned(),
                message: format!("no randomness for a new key: {e}"),
            }
        })?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let public = [
            &[ALG_ED25519],
            signing.verifying_key().as_bytes().as_slice(),
        ]
        .concat();
        let private = [&[ALG_ED25519], seed.as_slice()].concat();
        let text = format!(
            "PRIVATE+KEY+{name}+{:08x}+{}\n",
            signed_note::key_id(name, &public),
            BASE64.encode(private)
        );
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io("create", dir))?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        match options.open(path) {
            Ok(mut file) => {
                std::io::Write::write_all(&mut file, text.as_bytes()).map_err(io("write", path))?;
                file.sync_all().map_err(io("sync", path))?;
                LedgerKey::parse(path, &text)
            }
            // Another process created it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => LedgerKey::load(path),
            Err(e) => Err(io("create", path)(e)),
        }
    }

    fn parse(path: &Path, text: &str) -> Result<LedgerKey> {
        let bad = |message: &str| Error::Key {
            path: path.to_owned(),
            message: message.to_owned(),
        };
        let skey = text.trim();
        let signer =
            StandardSigner::new(skey).map_err(|e| bad(&format!("not a signer key: {e}")))?;
        // PRIVATE+KEY+<name>+<id>+<base64>; the base64 may itself hold `+`.
        let mut fields = skey.splitn(5, '+');
        let name = fields.nth(2).ok_or_else(|| bad("no key name"))?.to_owned();
        let encoded = fields.nth(1).ok_or_else(|| bad("no key"))?;
        let raw = BASE64
            .decode(encoded)
            .map_err(|_| bad("key is not base64"))?;
        let seed: [u8; 32] = raw
            .get(1..)
            .and_then(|s| s.try_into().ok())
            .ok_or_else(|| bad("not an Ed25519 key"))?;
        let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
        let vkey = signed_note::new_ed25519_verifier_key(&name, &signing.verifying_key());
        let content = ContentKey(blake3::derive_key("tandem audit content hash v1", &seed));
        Ok(LedgerKey {
            path: path.to_owned(),
            name,
            signer,
            signing,
            vkey,
            content,
        })
    }

    /// The key name (also the checkpoint origin).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The public verifier key, `<name>+<id>+<base64>`.
    pub fn vkey(&self) -> &str {
        &self.vkey
    }

    /// The signer for checkpoint notes.
    pub(crate) fn signer(&self) -> &StandardSigner {
        &self.signer
    }

    /// The key for keyed hashes of content.
    pub fn content_key(&self) -> &ContentKey {
        &self.content
    }

    /// Signs `payload` as a DSSE envelope (`payloadType`, base64 `payload`, one Ed25519 signature
    /// over the DSSE pre-authentication encoding), with the verifier key as the key id.
    pub fn dsse(&self, payload_type: &str, payload: &[u8]) -> serde_json::Value {
        let signature = self.signing.sign(&dsse_pae(payload_type, payload));
        serde_json::json!({
            "payloadType": payload_type,
            "payload": BASE64.encode(payload),
            "signatures": [{"keyid": self.vkey, "sig": BASE64.encode(signature.to_bytes())}],
        })
    }
}

/// DSSE's pre-authentication encoding: `DSSEv1 <len> <type> <len> <payload>`.
pub fn dsse_pae(payload_type: &str, payload: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "DSSEv1 {} {} {} ",
        payload_type.len(),
        payload_type,
        payload.len()
    )
    .into_bytes();
    out.extend_from_slice(payload);
    out
}

/// Checks a DSSE envelope's signature against a verifier key; returns the payload.
pub fn verify_dsse(vkey: &str, envelope: &serde_json::Value) -> Result<Vec<u8>> {
    let bad = |m: &str| Error::Invalid(format!("DSSE envelope: {m}"));
    let verifier = parse_vkey(vkey)?;
    let payload_type = envelope["payloadType"]
        .as_str()
        .ok_or_else(|| bad("no payloadType"))?;
    let payload = BASE64
        .decode(
            envelope["payload"]
                .as_str()
                .ok_or_else(|| bad("no payload"))?,
        )
        .map_err(|_| bad("payload is not base64"))?;
    let sig = BASE64
        .decode(
            envelope["signatures"][0]["sig"]
                .as_str()
                .ok_or_else(|| bad("no signature"))?,
        )
        .map_err(|_| bad("signature is not base64"))?;
    let signature =
        ed25519_dalek::Signature::from_slice(&sig).map_err(|_| bad("not an Ed25519 signature"))?;
    verifier
        .verify_strict(&dsse_pae(payload_type, &payload), &signature)
        .map_err(|_| bad("signature does not verify"))?;
    Ok(payload)
}

/// The Ed25519 public key in a verifier key string.
fn parse_vkey(vkey: &str) -> Result<ed25519_dalek::VerifyingKey> {
    let bad = || Error::Invalid(format!("`{vkey}` is not a verifier key"));
    StandardVerifier::new(vkey).map_err(|_| bad())?;
    let raw = BASE64
        .decode(vkey.splitn(3, '+').nth(2).ok_or_else(bad)?)
        .map_err(|_| bad())?;
    let bytes: [u8; 32] = raw
        .get(1..)
        .and_then(|s| s.try_into().ok())
        .ok_or_else(bad)?;
    ed25519_dalek::VerifyingKey::from_bytes(&bytes).map_err(|_| bad())
}

/// The key of the keyed content hashes (BLAKE3 keyed mode), derived from the ledger key.
///
/// Whoever holds the ledger key can check that a given prompt or answer is the one an entry
/// recorded; nobody else can test guesses against the ledger.
#[derive(Clone)]
pub struct ContentKey([u8; 32]);

impl ContentKey {
    /// A keyed hasher, for content that arrives in pieces.
    pub fn hasher(&self) -> blake3::Hasher {
        blake3::Hasher::new_keyed(&self.0)
    }

    /// The keyed hash of `bytes`, hex.
    pub fn hash(&self, bytes: &[u8]) -> String {
        blake3::keyed_hash(&self.0, bytes).to_hex().to_string()
    }
}

impl std::fmt::Debug for ContentKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContentKey(..)")
    }
}
