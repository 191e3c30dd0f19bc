//! `tandem.toml`: the strict file format, the embedded default, and conversion into typed configs.
//!
//! Precedence, lowest first: the embedded default (used only when no file is found) < the config file
//! (`--config PATH`, else `$TANDEM_CONFIG`, else `./tandem.toml` when it exists) < command-line flags
//! such as `--listen`, which the CLI applies to the returned [`Config`].
//!
//! The embedded default serves one OpenAI-compatible upstream at `$TANDEM_UPSTREAM_URL`, or
//! `http://127.0.0.1:8080/v1` (the default port of llama.cpp's `llama-server` and of `tandem testkit`),
//! with the key in `$TANDEM_UPSTREAM_API_KEY` if set, and keeps its state in `.tandem/`.

mod error;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tandem_providers::{HttpProviderConfig, UpstreamKind};

pub use error::{Error, Result};

/// Default listen address of `tandem serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
/// Default upstream of the embedded configuration.
pub const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8080/v1";

/// Where the configuration came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// A file.
    File(PathBuf),
    /// No file was found: the embedded default.
    Embedded,
}

/// Settings of the HTTP server.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Largest request body accepted; larger ones get 413.
    pub max_body_bytes: usize,
    /// Directory of the embedded state (SQLite).
    pub state_dir: PathBuf,
}

/// A model name clients may use, bound to a provider and an upstream model.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModelAlias {
    /// The name clients send.
    pub name: String,
    /// The provider that serves it.
    pub provider: String,
    /// The model name sent upstream.
    pub model: String,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// Server settings.
    pub server: ServerConfig,
    /// Upstreams, in file order; the first one serves model names nothing else matches.
    pub providers: Vec<HttpProviderConfig>,
    /// Model aliases.
    pub models: Vec<ModelAlias>,
    /// Things worth telling the operator that do not stop the server (e.g. an unset key variable).
    pub warnings: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigToml {
    #[serde(default)]
    server: ServerToml,
    #[serde(default)]
    providers: Vec<ProviderToml>,
    #[serde(default)]
    models: Vec<ModelToml>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerToml {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    state_dir: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderToml {
    name: String,
    kind: KindToml,
    base_url: String,
    api_key_env: Option<String>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum KindToml {
    Openai,
    Anthropic,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelToml {
    name: String,
    provider: String,
    model: String,
}

/// Find and load the configuration (see the crate docs for the order), reading variables through `env`.
pub fn load(explicit: Option<&Path>, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let path = match explicit {
        Some(path) => Some(path.to_owned()),
        None => match env("TANDEM_CONFIG").filter(|p| !p.is_empty()) {
            Some(path) => Some(PathBuf::from(path)),
            None => Some(PathBuf::from("tandem.toml")).filter(|p| p.exists()),
        },
    };
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            parse(&text, Source::File(path), env)
        }
        None => embedded(env),
    }
}

/// The configuration used when no file is found.
pub fn embedded(env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let base_url = env("TANDEM_UPSTREAM_URL").unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned());
    let text = format!(
        "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = {base_url:?}\napi_key_env = \"TANDEM_UPSTREAM_API_KEY\"\n"
    );
    let mut config = parse(&text, Source::Embedded, env)?;
    // An unset key is normal for a local upstream.
    config.warnings.clear();
    Ok(config)
}

/// Parse and validate a config file's text.
pub fn parse(text: &str, source: Source, env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let raw: ConfigToml = toml::from_str(text).map_err(|err| Error::Parse {
        source_name: source_name(&source),
        message: err.to_string(),
    })?;
    let invalid = |message: String| Error::Invalid {
        source_name: source_name(&source),
        message,
    };
    let listen_text = raw.server.listen.as_deref().unwrap_or(DEFAULT_LISTEN);
    let listen: SocketAddr = listen_text.parse().map_err(|_| {
        invalid(format!(
            "server.listen `{listen_text}` is not an address like 127.0.0.1:4000"
        ))
    })?;
    let max_body_bytes = raw.server.max_body_bytes.unwrap_or(32 * 1024 * 1024);
    if max_body_bytes == 0 {
        return Err(invalid("server.max_body_bytes must be positive".into()));
    }
    let server = ServerConfig {
        listen,
        max_body_bytes,
        state_dir: raw
            .server
            .state_dir
            .unwrap_or_else(|| PathBuf::from(".tandem")),
    };
    if raw.providers.is_empty() {
        return Err(invalid(
            "at least one [[providers]] entry is required".into(),
        ));
    }
    let mut warnings = Vec::new();
    let mut names = HashSet::new();
    let mut providers = Vec::with_capacity(raw.providers.len());
    for p in raw.providers {
        if p.name.is_empty() || p.name.contains('/') {
            return Err(invalid(format!(
                "provider name `{}` must be non-empty and contain no `/`",
                p.name
            )));
        }
        if !names.insert(p.name.clone()) {
            return Err(invalid(format!("provider `{}` is defined twice", p.name)));
        }
        if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
            return Err(invalid(format!(
                "provider `{}`: base_url `{}` must start with http:// or https://",
                p.name, p.base_url
            )));
        }
        let api_key = match &p.api_key_env {
            None => None,
            Some(var) => match env(var).filter(|v| !v.is_empty()) {
                Some(value) => Some(SecretString::from(value)),
                None => {
                    warnings.push(format!(
                        "provider `{}`: environment variable `{var}` is not set; calling it without a key",
                        p.name
                    ));
                    None
                }
            },
        };
        providers.push(HttpProviderConfig {
            name: p.name,
            kind: match p.kind {
                KindToml::Openai => UpstreamKind::OpenAi,
                KindToml::Anthropic => UpstreamKind::Anthropic,
            },
            base_url: p.base_url,
            api_key,
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.unwrap_or(5_000)),
            first_byte_timeout: Duration::from_millis(p.first_byte_timeout_ms.unwrap_or(120_000)),
            idle_timeout: Duration::from_millis(p.idle_timeout_ms.unwrap_or(120_000)),
            max_response_bytes: p.max_response_bytes.unwrap_or(64 * 1024 * 1024),
        });
    }
    let mut aliases = HashSet::new();
    let mut models = Vec::with_capacity(raw.models.len());
    for m in raw.models {
        if !names.contains(&m.provider) {
            return Err(invalid(format!(
                "model `{}` names provider `{}`, which is not defined",
                m.name, m.provider
            )));
        }
        if !aliases.insert(m.name.clone()) {
            return Err(invalid(format!("model `{}` is defined twice", m.name)));
        }
        models.push(ModelAlias {
            name: m.name,
            provider: m.provider,
            model: m.model,
        });
    }
    Ok(Config {
        source,
        server,
        providers,
        models,
        warnings,
    })
}

fn source_name(source: &Source) -> String {
    match source {
        Source::File(path) => path.display().to_string(),
        Source::Embedded => "embedded default".to_owned(),
    }
}

#[cfg(test)]
mod tests;
