//! The DLP benchmark's corpus: the repository's own Rust source, cut to size, with synthetic secrets and hard
//! negatives planted as new lines at seeded random places, and the manifest of what was planted where.
//!
//! Every planted secret is random and format-valid (prefixes, lengths, alphabets, GitHub/npm CRC32 checksums,
//! a decodable JWT header and payload) and was never a live credential.

use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use serde::Serialize;

/// Substrings that mark a source file as holding secret-like test data; such files stay out of the base text
/// so that every secret in the corpus is a planted one.
const MARKERS: &[&str] = &[
    "AKIA",
    "ghp_",
    "github_pat_",
    "glpat-",
    "xox",
    "hooks.slack.com",
    "sk_live_",
    "sk-proj-",
    "sk-ant-",
    "AIza",
    "hf_",
    "npm_",
    "pypi-",
    "eyJ",
    "PRIVATE KEY",
    "postgres://",
    "postgresql://",
    "SG.",
    "dapi",
];

/// A small deterministic generator (SplitMix64); the corpus must not depend on the `rand` crate's version.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub(crate) fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            return 0;
        }
        // The modulo bias is below 2^-40 for the sizes used here.
        (self.next_u64() % n as u64) as usize
    }

    /// `len` characters drawn from `alphabet` (ASCII).
    pub(crate) fn string(&mut self, len: usize, alphabet: &str) -> String {
        let bytes = alphabet.as_bytes();
        (0..len)
            .map(|_| char::from(bytes[self.below(bytes.len())]))
            .collect()
    }

    pub(crate) fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

const ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const UPPER_B32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const UPPER_ALNUM: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const LETTERS: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const DIGITS: &str = "0123456789";
const HEX: &str = "0123456789abcdef";
const B64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const B64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// CRC-32 (IEEE 802.3, as zlib's `crc32`).
pub(crate) fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            let mask = (crc & 1).wrapping_neg();
            crc = (crc >> 1) ^ (0xEDB8_8320 & mask);
        }
    }
    !crc
}

/// `value` in base 62 (`0-9A-Za-z`), left-padded with `0` to six characters.
pub(crate) fn base62_6(mut value: u32) -> String {
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8_lossy(&digits).into_owned()
}

/// A GitHub-style token: `prefix` + 30 random base62 characters + the base62 CRC32 of those 30.
pub(crate) fn checksummed_token(rng: &mut Rng, prefix: &str) -> String {
    let body = rng.string(30, ALNUM);
    let check = base62_6(crc32(body.as_bytes()));
    format!("{prefix}{body}{check}")
}

/// Base64 of `data`, standard alphabet with padding, or URL-safe without padding.
pub(crate) fn base64(data: &[u8], url: bool) -> String {
    let alphabet = if url { B64URL } else { B64 }.as_bytes();
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..4 {
            if i < chars {
                out.push(char::from(alphabet[((n >> (18 - 6 * i)) & 63) as usize]));
            } else if !url {
                out.push('=');
            }
        }
    }
    out
}

/// Whether a planted line is a secret (a finding there counts towards recall) or a hard negative (a finding
/// there is a false positive).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PlantKind {
    Secret,
    Negative,
}

/// One planted item: its type and the 1-based lines it covers in the planted corpus.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Plant {
    pub(crate) kind: PlantKind,
    pub(crate) label: &'static str,
    pub(crate) first_line: usize,
    pub(crate) last_line: usize,
    pub(crate) text: String,
}

/// Lines inserted together (an AWS key id and its secret sit on neighbouring lines, as in a credentials file).
#[derive(Debug)]
struct Group {
    items: Vec<(PlantKind, &'static str, Vec<String>)>,
}

impl Group {
    fn one(kind: PlantKind, label: &'static str, line: String) -> Group {
        Group {
            items: vec![(kind, label, vec![line])],
        }
    }
}

/// The secret types, in the order of the report.
pub(crate) const SECRET_TYPES: &[&str] = &[
    "aws-access-key-id",
    "aws-secret-access-key",
    "github-pat-classic",
    "github-pat-fine-grained",
    "gitlab-pat",
    "slack-bot-token",
    "slack-webhook",
    "stripe-live-key",
    "openai-project-key",
    "anthropic-api-key",
    "gcp-api-key",
    "huggingface-token",
    "npm-token",
    "pypi-token",
    "jwt",
    "pem-private-key",
    "postgres-url-password",
    "password-assignment",
    "twilio-api-key",
    "sendgrid-api-key",
    "databricks-token",
];

/// The hard-negative types, in the order of the report.
pub(crate) const NEGATIVE_TYPES: &[&str] = &[
    "uuid",
    "git-sha",
    "sha256-hex",
    "sri-sha512",
    "base64-blob",
    "password-from-call",
    "postgres-url-no-password",
    "postgres-url-env-password",
    "aws-documented-key-id",
    "aws-documented-secret",
    "placeholder",
    "env-lookup",
    "md5-hex",
    "trace-id",
    "masked-value",
];

fn secret_groups(rng: &mut Rng, variant: usize) -> Vec<Group> {
    use PlantKind::Secret as S;
    let v = variant.is_multiple_of(2);
    let mut groups = Vec::new();

    let key_id = format!("AKIA{}", rng.string(16, UPPER_B32));
    let secret = rng.string(40, B64);
    groups.push(Group {
        items: if v {
            vec![
                (
                    S,
                    "aws-access-key-id",
                    vec![format!("aws_access_key_id = \"{key_id}\"")],
                ),
                (
                    S,
                    "aws-secret-access-key",
                    vec![format!("aws_secret_access_key = \"{secret}\"")],
                ),
            ]
        } else {
            vec![
                (
                    S,
                    "aws-access-key-id",
                    vec![format!("export AWS_ACCESS_KEY_ID={key_id}")],
                ),
                (
                    S,
                    "aws-secret-access-key",
                    vec![format!("export AWS_SECRET_ACCESS_KEY={secret}")],
                ),
            ]
        },
    });

    let ghp = checksummed_token(rng, "ghp_");
    groups.push(Group::one(
        S,
        "github-pat-classic",
        if v {
            format!("let token = \"{ghp}\";")
        } else {
            format!("GITHUB_TOKEN={ghp}")
        },
    ));

    let pat = format!(
        "github_pat_11{}_{}",
        rng.string(20, UPPER_ALNUM),
        rng.string(59, ALNUM)
    );
    groups.push(Group::one(
        S,
        "github-pat-fine-grained",
        if v {
            format!(".bearer_auth(\"{pat}\")")
        } else {
            format!("github_token: {pat}")
        },
    ));

    let glpat = format!("glpat-{}", rng.string(20, ALNUM));
    groups.push(Group::one(
        S,
        "gitlab-pat",
        if v {
            format!("gitlab_token = \"{glpat}\"")
        } else {
            format!("let client = Gitlab::new(\"gitlab.com\", \"{glpat}\")?;")
        },
    ));

    let xoxb = format!(
        "xoxb-{}-{}-{}",
        rng.string(12, DIGITS),
        rng.string(13, DIGITS),
        rng.string(24, ALNUM)
    );
    groups.push(Group::one(
        S,
        "slack-bot-token",
        if v {
            format!("slack_bot_token = \"{xoxb}\"")
        } else {
            format!(".header(\"Authorization\", \"Bearer {xoxb}\")")
        },
    ));

    let hook = format!(
        "https://hooks.slack.com/services/T{}/B{}/{}",
        rng.string(10, UPPER_ALNUM),
        rng.string(10, UPPER_ALNUM),
        rng.string(24, ALNUM)
    );
    groups.push(Group::one(
        S,
        "slack-webhook",
        if v {
            format!("const ALERTS_WEBHOOK: &str = \"{hook}\";")
        } else {
            format!("webhook_url: {hook}")
        },
    ));

    let stripe = format!("sk_live_{}", rng.string(24, ALNUM));
    groups.push(Group::one(
        S,
        "stripe-live-key",
        if v {
            format!("STRIPE_SECRET_KEY={stripe}")
        } else {
            format!("let stripe = stripe::Client::new(\"{stripe}\");")
        },
    ));

    let openai = format!(
        "sk-proj-{}T3BlbkFJ{}",
        rng.string(74, ALNUM),
        rng.string(74, ALNUM)
    );
    groups.push(Group::one(
        S,
        "openai-project-key",
        if v {
            format!("OPENAI_API_KEY={openai}")
        } else {
            format!("api_key = \"{openai}\"")
        },
    ));

    let anthropic = format!("sk-ant-api03-{}AA", rng.string(93, ALNUM));
    groups.push(Group::one(
        S,
        "anthropic-api-key",
        if v {
            format!("ANTHROPIC_API_KEY={anthropic}")
        } else {
            format!(".header(\"x-api-key\", \"{anthropic}\")")
        },
    ));

    let gcp = format!("AIza{}", rng.string(35, ALNUM));
    groups.push(Group::one(
        S,
        "gcp-api-key",
        if v {
            format!("let maps_key = \"{gcp}\";")
        } else {
            format!("GOOGLE_API_KEY: \"{gcp}\"")
        },
    ));

    let hf = format!("hf_{}", rng.string(34, LETTERS));
    groups.push(Group::one(
        S,
        "huggingface-token",
        if v {
            format!("HF_TOKEN={hf}")
        } else {
            format!("token = \"{hf}\"")
        },
    ));

    let npm = checksummed_token(rng, "npm_");
    groups.push(Group::one(
        S,
        "npm-token",
        if v {
            format!("//registry.npmjs.org/:_authToken={npm}")
        } else {
            format!("NPM_TOKEN={npm}")
        },
    ));

    let pypi = format!("pypi-AgEIcHlwaS5vcmc{}", rng.string(120, B64URL));
    groups.push(Group::one(
        S,
        "pypi-token",
        if v {
            format!("password = {pypi}")
        } else {
            format!("TWINE_PASSWORD={pypi}")
        },
    ));

    let payload = format!(
        "{{\"sub\":\"{}\",\"name\":\"{}\",\"iat\":17{}}}",
        rng.string(8, DIGITS),
        rng.string(7, LOWER),
        rng.string(8, DIGITS)
    );
    let jwt = format!(
        "{}.{}.{}",
        base64(br#"{"alg":"HS256","typ":"JWT"}"#, true),
        base64(payload.as_bytes(), true),
        rng.string(43, B64URL)
    );
    groups.push(Group::one(
        S,
        "jwt",
        if v {
            format!("let auth = \"Bearer {jwt}\";")
        } else {
            format!("session_token = \"{jwt}\"")
        },
    ));

    let (begin, end, der_prefix, body_len) = if v {
        (
            "-----BEGIN EC PRIVATE KEY-----",
            "-----END EC PRIVATE KEY-----",
            "MHcCAQEEI",
            164,
        )
    } else {
        (
            "-----BEGIN RSA PRIVATE KEY-----",
            "-----END RSA PRIVATE KEY-----",
            "MIIEowIBAAKCAQEA",
            640,
        )
    };
    let body = format!(
        "{der_prefix}{}",
        rng.string(body_len - der_prefix.len(), B64)
    );
    let mut pem = vec![format!("const SIGNING_KEY: &str = \"{begin}")];
    let chars: Vec<char> = body.chars().collect();
    pem.extend(chars.chunks(64).map(|c| c.iter().collect::<String>()));
    pem.push(format!("{end}\";"));
    groups.push(Group {
        items: vec![(S, "pem-private-key", pem)],
    });

    let pg_password = rng.string(16, ALNUM);
    groups.push(Group::one(
        S,
        "postgres-url-password",
        if v {
            format!("DATABASE_URL=postgres://app:{pg_password}@db.internal:5432/orders")
        } else {
            format!("let url = \"postgresql://svc_user:{pg_password}@10.0.3.7/analytics\";")
        },
    ));

    let password = rng.string(16, ALNUM);
    groups.push(Group::one(
        S,
        "password-assignment",
        if v {
            format!("password = \"{password}\"")
        } else {
            format!("let password = \"{password}\";")
        },
    ));

    let twilio = format!("SK{}", rng.string(32, HEX));
    groups.push(Group::one(
        S,
        "twilio-api-key",
        if v {
            format!("TWILIO_API_KEY={twilio}")
        } else {
            format!("twilio_key = \"{twilio}\"")
        },
    ));

    let sendgrid = format!("SG.{}.{}", rng.string(22, B64URL), rng.string(43, B64URL));
    groups.push(Group::one(
        S,
        "sendgrid-api-key",
        if v {
            format!("SENDGRID_API_KEY={sendgrid}")
        } else {
            format!("let mailer = SendGrid::new(\"{sendgrid}\");")
        },
    ));

    let dapi = format!("dapi{}", rng.string(32, HEX));
    groups.push(Group::one(
        S,
        "databricks-token",
        if v {
            format!("DATABRICKS_TOKEN={dapi}")
        } else {
            format!("token = \"{dapi}\"")
        },
    ));
    groups
}

fn negative_groups(rng: &mut Rng, variant: usize) -> Vec<Group> {
    use PlantKind::Negative as N;
    let v = variant.is_multiple_of(2);
    let uuid = format!(
        "{}-{}-4{}-{}{}-{}",
        rng.string(8, HEX),
        rng.string(4, HEX),
        rng.string(3, HEX),
        rng.string(1, "89ab"),
        rng.string(3, HEX),
        rng.string(12, HEX)
    );
    let sha1 = rng.string(40, HEX);
    let sha256 = rng.string(64, HEX);
    let mut digest = [0u8; 64];
    for byte in &mut digest {
        *byte = (rng.next_u64() & 0xff) as u8;
    }
    let sri = format!("sha512-{}", base64(&digest, false));
    let blob = format!("iVBORw0KGgoAAAANSUhEUgAA{}", rng.string(96, B64));
    let md5 = rng.string(32, HEX);
    let trace = rng.string(32, HEX);
    let span = rng.string(16, HEX);
    let lines: [(&'static str, String); 15] = [
        (
            "uuid",
            if v {
                format!("let request_id = \"{uuid}\";")
            } else {
                format!("id = \"{uuid}\"")
            },
        ),
        (
            "git-sha",
            if v {
                format!(
                    "tandem = {{ git = \"https://github.com/example/tandem\", rev = \"{sha1}\" }}"
                )
            } else {
                format!("let commit = \"{sha1}\";")
            },
        ),
        (
            "sha256-hex",
            if v {
                format!("checksum = \"{sha256}\"")
            } else {
                format!("let digest = \"{sha256}\";")
            },
        ),
        (
            "sri-sha512",
            if v {
                format!("\"integrity\": \"{sri}\",")
            } else {
                format!("integrity = \"{sri}\"")
            },
        ),
        (
            "base64-blob",
            if v {
                format!("const ICON_PNG: &str = \"{blob}\";")
            } else {
                format!("data: \"{blob}\"")
            },
        ),
        (
            "password-from-call",
            if v {
                "password = get_password()".to_owned()
            } else {
                "let password = prompt_password(\"Password: \")?;".to_owned()
            },
        ),
        (
            "postgres-url-no-password",
            if v {
                "DATABASE_URL=postgres://localhost/db".to_owned()
            } else {
                "let url = \"postgres://localhost:5432/app\";".to_owned()
            },
        ),
        (
            "postgres-url-env-password",
            if v {
                "url = \"postgres://user:${PASSWORD}@host/db\"".to_owned()
            } else {
                "DATABASE_URL=postgres://app:$DB_PASSWORD@db:5432/app".to_owned()
            },
        ),
        (
            "aws-documented-key-id",
            if v {
                "aws_access_key_id = AKIAIOSFODNN7EXAMPLE".to_owned()
            } else {
                "let key_id = \"AKIAIOSFODNN7EXAMPLE\";".to_owned()
            },
        ),
        (
            "aws-documented-secret",
            if v {
                "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".to_owned()
            } else {
                "let secret = \"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\";".to_owned()
            },
        ),
        (
            "placeholder",
            if v {
                "api_key = \"<your-api-key>\"".to_owned()
            } else {
                "OPENAI_API_KEY=sk-...".to_owned()
            },
        ),
        (
            "env-lookup",
            if v {
                "let token = std::env::var(\"GITHUB_TOKEN\")?;".to_owned()
            } else {
                "api_key = os.environ[\"OPENAI_API_KEY\"]".to_owned()
            },
        ),
        (
            "md5-hex",
            if v {
                format!("md5 = \"{md5}\"")
            } else {
                format!("etag = \"{md5}\"")
            },
        ),
        (
            "trace-id",
            if v {
                format!("traceparent: 00-{trace}-{span}-01")
            } else {
                format!("trace_id = \"{trace}\"")
            },
        ),
        (
            "masked-value",
            if v {
                "password = \"********\"".to_owned()
            } else {
                "secret = \"<redacted>\"".to_owned()
            },
        ),
    ];
    lines
        .into_iter()
        .map(|(label, line)| Group::one(N, label, line))
        .collect()
}

/// The base text: ordinary source files, and what was left out.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Source {
    /// Paths relative to the repository root, in the order they were concatenated.
    pub(crate) files: Vec<String>,
    /// Files left out because they hold secret-like test data (see [`MARKERS`]) or belong to the scanner.
    pub(crate) excluded: Vec<String>,
    #[serde(skip)]
    pub(crate) text: String,
}

/// Reads `root/crates/**/*.rs` in path order, leaving out `crates/tandem-dlp`, this benchmark's own files and
/// any file that contains a [`MARKERS`] substring.
pub(crate) fn read_source(root: &Path) -> anyhow::Result<Source> {
    let crates = root.join("crates");
    if !crates.is_dir() {
        bail!(
            "{} is not a directory; run from the repository root or pass --repo",
            crates.display()
        );
    }
    let mut paths = Vec::new();
    collect_rs(&crates, &mut paths)?;
    paths.sort();
    let mut source = Source {
        files: Vec::new(),
        excluded: Vec::new(),
        text: String::new(),
    };
    for path in paths {
        let relative = path
            .strip_prefix(root)
            .unwrap_or(&path)
            .to_string_lossy()
            .into_owned();
        if relative.starts_with("crates/tandem-dlp/")
            || relative.starts_with("crates/tandem-bench/src/dlp")
        {
            source.excluded.push(relative);
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        if MARKERS.iter().any(|m| text.contains(m)) {
            source.excluded.push(relative);
            continue;
        }
        source.text.push_str(&text);
        if !text.ends_with('\n') {
            source.text.push('\n');
        }
        source.files.push(relative);
    }
    if source.text.is_empty() {
        bail!("no Rust source found under {}", crates.display());
    }
    Ok(source)
}

fn collect_rs(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let entries = std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("listing {}", dir.display()))?;
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || name == "target" {
            continue;
        }
        let kind = entry
            .file_type()
            .with_context(|| format!("reading {}", path.display()))?;
        if kind.is_dir() {
            collect_rs(&path, out)?;
        } else if kind.is_file() && name.ends_with(".rs") {
            out.push(path);
        }
    }
    Ok(())
}

/// The lines of `text` repeated until `bytes` is reached, cut at a line end.
fn base_lines(text: &str, bytes: usize) -> Vec<&str> {
    let all: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut size = 0;
    if all.is_empty() {
        return out;
    }
    for line in all.iter().cycle() {
        if size + line.len() + 1 > bytes {
            break;
        }
        size += line.len() + 1;
        out.push(*line);
    }
    out
}

/// The two corpora of one run.
#[derive(Debug)]
pub(crate) struct Corpus {
    /// Source with the planted lines.
    pub(crate) planted: String,
    /// Source only, about the same size.
    pub(crate) clean: String,
    pub(crate) plants: Vec<Plant>,
}

/// Builds the planted and clean corpora of about `bytes` bytes from `source`, planting two of each secret type
/// and two of each hard negative at positions drawn from `seed`.
pub(crate) fn build(source: &str, bytes: usize, seed: u64) -> Corpus {
    let mut rng = Rng::new(seed);
    let mut groups = Vec::new();
    for variant in 0..2 {
        groups.extend(secret_groups(&mut rng, variant));
        groups.extend(negative_groups(&mut rng, variant));
    }
    rng.shuffle(&mut groups);
    let planted_size: usize = groups
        .iter()
        .flat_map(|g| &g.items)
        .flat_map(|(_, _, lines)| lines)
        .map(|l| l.len() + 9)
        .sum();
    let base = base_lines(source, bytes.saturating_sub(planted_size));

    // One group per stretch of the base, at a random line inside it.
    let stretch = (base.len() / groups.len().max(1)).max(1);
    let mut planted = String::with_capacity(bytes + 4096);
    let mut plants = Vec::new();
    let mut line_no = 0usize;
    let mut next_group = 0usize;
    let mut insert_at = rng.below(stretch);
    for (index, line) in base.iter().enumerate() {
        while next_group < groups.len() && index == insert_at {
            let indent: String = line
                .chars()
                .take_while(|c| *c == ' ' || *c == '\t')
                .collect();
            emit(
                &groups[next_group],
                &indent,
                &mut planted,
                &mut plants,
                &mut line_no,
            );
            next_group += 1;
            insert_at = next_group * stretch + rng.below(stretch);
        }
        planted.push_str(line);
        planted.push('\n');
        line_no += 1;
    }
    // Only a corpus shorter than the number of groups leaves some over.
    for group in &groups[next_group..] {
        emit(group, "", &mut planted, &mut plants, &mut line_no);
    }
    let mut clean = String::with_capacity(bytes);
    for line in base_lines(source, bytes) {
        clean.push_str(line);
        clean.push('\n');
    }
    Corpus {
        planted,
        clean,
        plants,
    }
}

/// Appends the lines of `group` (the first line of each item indented by `indent`) and records its plants.
fn emit(
    group: &Group,
    indent: &str,
    out: &mut String,
    plants: &mut Vec<Plant>,
    line_no: &mut usize,
) {
    for (kind, label, lines) in &group.items {
        let first_line = *line_no + 1;
        for (i, text) in lines.iter().enumerate() {
            if i == 0 {
                out.push_str(indent);
            }
            out.push_str(text);
            out.push('\n');
            *line_no += 1;
        }
        plants.push(Plant {
            kind: *kind,
            label,
            first_line,
            last_line: *line_no,
            text: lines.join("\n"),
        });
    }
}

/// Line numbers (1-based) of byte offsets in one text.
#[derive(Debug)]
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &[u8]) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(
            text.iter()
                .enumerate()
                .filter(|(_, b)| **b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { starts }
    }

    /// The line holding byte `offset`: the newlines before it, plus one.
    pub(crate) fn line(&self, offset: usize) -> usize {
        self.starts.partition_point(|&start| start <= offset)
    }
}
