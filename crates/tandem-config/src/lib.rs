//! `tandem.toml`: the strict file format, the embedded default, and conversion into typed configs.
//!
//! Precedence, lowest first: the embedded default (used only when no file is found) < the config file
//! (`--config PATH`, else `$TANDEM_CONFIG`, else `./tandem.toml` when it exists) < command-line flags
//! such as `--listen`, which the CLI applies to the returned [`Config`].
//!
//! The embedded default keeps its state in `.tandem/` and has a `live` and a `deep` tier, so `tandem-live`,
//! `tandem-deep` and `auto` work out of the box. Its one provider is, in this order:
//! - the OpenAI-compatible upstream at `$TANDEM_UPSTREAM_URL`, with the key in `$TANDEM_UPSTREAM_API_KEY` if set
//!   (upstream models `$TANDEM_LIVE_MODEL`, default `live`, and `$TANDEM_DEEP_MODEL`, default `deep`);
//! - else the local model `$TANDEM_LOCAL_MODEL` (a catalog name or a GGUF path), or the first installed catalog
//!   model (`tandem models install`), served in-process: no upstream, no key, no network;
//! - else `http://127.0.0.1:8080/v1` (the default port of llama.cpp's `llama-server` and of `tandem testkit`).

mod error;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;
use tandem_local::{EngineKind, EngineOptions, LocalConfig, lookup::LookupSettings};
use tandem_providers::{HttpProviderConfig, UpstreamKind};

pub use error::{Error, Result};

/// Default listen address of `tandem serve`.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:4000";
/// Default upstream of the embedded configuration.
pub const DEFAULT_UPSTREAM: &str = "http://127.0.0.1:8080/v1";

/// One upstream: an HTTP API or a model served in-process.
#[derive(Clone, Debug)]
pub enum ProviderConfig {
    /// An OpenAI-compatible or Anthropic HTTP upstream.
    Http(HttpProviderConfig),
    /// A GGUF model served in-process (`kind = "local"`).
    Local(LocalConfig),
}

impl ProviderConfig {
    /// The provider's name.
    pub fn name(&self) -> &str {
        match self {
            ProviderConfig::Http(http) => &http.name,
            ProviderConfig::Local(local) => &local.name,
        }
    }

    /// Where it is: the base URL, or the model file.
    pub fn location(&self) -> String {
        match self {
            ProviderConfig::Http(http) => http.base_url.clone(),
            ProviderConfig::Local(local) => local.path.display().to_string(),
        }
    }
}

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
    /// How long requests and streams in flight may still take after SIGTERM before they are ended.
    pub drain_timeout: Duration,
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

/// One target of a tier.
#[derive(Clone, Debug, PartialEq)]
pub struct TargetConfig {
    /// Provider name.
    pub provider: String,
    /// Upstream model.
    pub model: String,
    /// Share of first attempts among healthy targets (0 = fallback only).
    pub weight: u32,
    /// Extra attempts on this target after a retryable failure.
    pub retries: u32,
    /// Limit on the time to the first token.
    pub first_token_timeout: Option<Duration>,
    /// Consecutive failures that open the circuit breaker.
    pub breaker_failures: u32,
    /// How long the breaker stays open.
    pub breaker_cooldown: Duration,
}

/// A tier: aliases clients use, targets in fallback order, and an optional tier to fall back to.
#[derive(Clone, Debug, PartialEq)]
pub struct TierConfig {
    /// Tier name.
    pub name: String,
    /// Model names that select it (default `tandem-<name>`).
    pub aliases: Vec<String>,
    /// Targets in fallback order.
    pub targets: Vec<TargetConfig>,
    /// Tier tried when all targets fail.
    pub fallback_tier: Option<String>,
}

/// Router settings.
#[derive(Clone, Debug)]
pub struct RouterSettings {
    /// The router itself.
    pub router: tandem_router::RouterConfig,
    /// Session memory lifetime.
    pub session_ttl: Duration,
    /// Most sessions remembered.
    pub max_sessions: usize,
}

/// Authentication settings.
#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// Requests without credentials pass as `anonymous` (true when the file has no [auth] table).
    pub anonymous: bool,
    /// Tandem API keys are accepted.
    pub api_keys: bool,
    /// OIDC bearer tokens are accepted.
    pub oidc: Option<tandem_auth::OidcConfig>,
    /// The admin API token; the admin API is off without one.
    pub admin_token: Option<SecretString>,
}

/// The validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// Where it came from.
    pub source: Source,
    /// Server settings.
    pub server: ServerConfig,
    /// Upstreams, in file order; the first one serves model names nothing else matches.
    pub providers: Vec<ProviderConfig>,
    /// Model aliases.
    pub models: Vec<ModelAlias>,
    /// Tiers, in file order.
    pub tiers: Vec<TierConfig>,
    /// The `auto` router, when tiers are configured.
    pub router: Option<RouterSettings>,
    /// Who may call.
    pub auth: AuthSettings,
    /// The Cedar policy file, when configured (reloaded by the server when it changes).
    pub policy_file: Option<PathBuf>,
    /// The policy in force at load: the file's, or the embedded allow-all default.
    pub policy: std::sync::Arc<tandem_policy::Policy>,
    /// Token and cost budgets.
    pub budgets: Vec<tandem_budget::BudgetRule>,
    /// Rate limits.
    pub limits: Vec<tandem_budget::RateRule>,
    /// Prices per `provider/model` (`provider/*` and `*` as fallbacks).
    pub prices: std::collections::HashMap<String, tandem_budget::Price>,
    /// Data loss prevention.
    pub dlp: DlpSettings,
    /// Traces, metrics and logs.
    pub telemetry: TelemetrySettings,
    /// The audit ledger.
    pub audit: AuditSettings,
    /// Shared state for several replicas (PostgreSQL, Redis); embedded SQLite without it.
    pub storage: StorageSettings,
    /// The agent's quality gates.
    pub gates: GatesSettings,
    /// What `tandem report` and the dashboard read besides the ledger (`[report]`).
    pub report: ReportSettings,
    /// Things worth telling the operator that do not stop the server (e.g. an unset key variable).
    pub warnings: Vec<String>,
}

/// Data loss prevention settings (`[dlp]`). On by default: secrets found by the default rules are
/// redacted in requests and answers; personal data detection is opt-in.
#[derive(Clone, Debug)]
pub struct DlpSettings {
    /// Whether requests and answers are scanned at all.
    pub enabled: bool,
    /// The compiled rules (the defaults, or `rules`' file) and the personal-data detectors.
    pub scanner: std::sync::Arc<tandem_dlp::Scanner>,
    /// What to do with each finding.
    pub actions: tandem_dlp::Actions,
    /// Whether answers (streamed or not) are scanned too.
    pub responses: bool,
    /// Whether placeholders in answers are replaced by the real values before they reach the client
    /// (reversible redaction: the model never sees the value, the local side gets it back).
    pub restore: bool,
    /// The gitleaks-format rule file, when configured.
    pub rules_file: Option<PathBuf>,
}

/// Observability settings (`[telemetry]`): OTLP traces, the `/metrics` token and the log format.
#[derive(Clone, Debug)]
pub struct TelemetrySettings {
    /// OTLP/HTTP collector base URL (`http://127.0.0.1:4318`; spans go to `{endpoint}/v1/traces`): the file's
    /// `otlp_endpoint`, else `$OTEL_EXPORTER_OTLP_ENDPOINT`. Traces are off without one.
    pub otlp_endpoint: Option<String>,
    /// The `service.name` resource attribute of exported spans.
    pub service_name: String,
    /// Share of new traces sampled, 0 to 1 (a sampled parent from `traceparent` is always followed).
    pub sample_ratio: f64,
    /// When set, `GET /metrics` needs `Authorization: Bearer <token>`.
    pub metrics_token: Option<SecretString>,
    /// How log lines are written to stderr.
    pub log_format: LogFormat,
}

/// What `tandem report` and the `/ui` dashboard read besides the audit ledger (`[report]`).
#[derive(Clone, Debug, Default)]
pub struct ReportSettings {
    /// Repositories whose main branch the report joins with the ledger (relative paths are
    /// relative to the config file).
    pub repositories: Vec<PathBuf>,
    /// The branch read as the main branch; each repository's `HEAD` when unset.
    pub branch: Option<String>,
}

/// Where state lives (`[storage]`). Without a PostgreSQL URL, keys, budgets, policy versions and
/// records are in the embedded SQLite database; without a Redis URL, budget and rate-limit counters
/// are kept in each process's memory. Several replicas need both.
#[derive(Clone, Debug, Default)]
pub struct StorageSettings {
    /// `postgres://…`: the file's `postgres_url`, else `$TANDEM_POSTGRES_URL`.
    pub postgres_url: Option<SecretString>,
    /// `redis://…`: the file's `redis_url`, else `$TANDEM_REDIS_URL`.
    pub redis_url: Option<SecretString>,
    /// Prefix of every Redis key (default `tandem:`), so several deployments can share a server.
    pub redis_prefix: String,
    /// What budgets and rate limits do while Redis cannot be reached.
    pub redis_fail: FailMode,
    /// Connections in the PostgreSQL pool.
    pub postgres_pool: usize,
}

/// What shared counters do while their server is unreachable.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FailMode {
    /// Refuse requests that a budget or rate limit applies to (503) until the server is back.
    #[default]
    Closed,
    /// Enforce each limit in this process alone until the server is back: across N replicas the
    /// spend during the outage can reach N times a limit.
    Open,
}

/// Audit ledger settings (`[audit]`). On by default: every exchange is appended to a signed,
/// tamper-evident ledger under the state directory.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditSettings {
    /// Whether exchanges are recorded in the ledger.
    pub enabled: bool,
    /// The ledger directory (default `<state_dir>/audit`).
    pub dir: PathBuf,
    /// Key name and checkpoint origin of a new ledger.
    pub name: String,
    /// Keep one signed checkpoint per this many entries (the newest is always kept).
    pub checkpoint_every: u64,
    /// `fdatasync` the journal before each answer (survives power loss, costs a disk flush).
    pub fsync: bool,
    /// Store prompt and answer text in the separate content store.
    pub capture: bool,
    /// Days captured content is kept (0 keeps it until `tandem audit purge`).
    pub retention_days: u64,
}

/// Quality gate settings (`[gates]`): which gates a proposed change must pass, and when the agent
/// runs them.
#[derive(Clone, Debug)]
pub struct GatesSettings {
    /// Run the command gates after every edit in live (interactive) mode (default off).
    pub live: bool,
    /// Run them before a task's change is accepted (default on).
    pub task: bool,
    /// The gates themselves; the DLP gate uses the `[dlp]` rules and detectors.
    pub gates: tandem_gates::GatesConfig,
}

/// The sections of a project's `tandem.toml` that the agent reads ([`load_project`]).
#[derive(Clone, Debug)]
pub struct ProjectSettings {
    /// `[gates]`.
    pub gates: GatesSettings,
    /// `[sandbox]`.
    pub sandbox: SandboxSettings,
}

/// What the agent's sandboxed commands may reach (`[sandbox]` of a project's `tandem.toml`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SandboxSettings {
    /// Domains reachable over HTTP(S) through the policy proxy (`example.org`, `*.example.org`);
    /// empty is no network at all.
    pub allow_domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct SandboxToml {
    #[serde(default)]
    allow_domains: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatesToml {
    /// Shell commands, run with `sh -c` in the workspace.
    test: Option<String>,
    lint: Option<String>,
    typecheck: Option<String>,
    timeout_secs: Option<u64>,
    live: Option<bool>,
    task: Option<bool>,
    /// The built-in scan of the diff's added lines.
    dlp: Option<bool>,
    #[serde(default)]
    dependencies: GatesDependenciesToml,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct GatesDependenciesToml {
    #[serde(default)]
    allow_licenses: Vec<String>,
    #[serde(default)]
    deny_licenses: Vec<String>,
    #[serde(default)]
    allow_packages: Vec<String>,
    #[serde(default)]
    deny_packages: Vec<String>,
    /// `deny` (default) or `warn`.
    unknown_license: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditToml {
    enabled: Option<bool>,
    /// Relative paths are relative to the config file.
    dir: Option<PathBuf>,
    name: Option<String>,
    checkpoint_every: Option<u64>,
    fsync: Option<bool>,
    capture: Option<bool>,
    retention_days: Option<u64>,
}

/// The log line format.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines (the default).
    Text,
    /// One JSON object per line, with the fields of the current span and its parents.
    Json,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetryToml {
    otlp_endpoint: Option<String>,
    service_name: Option<String>,
    sample_ratio: Option<f64>,
    metrics_token: Option<String>,
    log_format: Option<LogFormat>,
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
    /// Tiers by name, in file order.
    #[serde(default)]
    tiers: toml::Table,
    #[serde(default)]
    router: Option<RouterToml>,
    #[serde(default)]
    auth: Option<AuthToml>,
    #[serde(default)]
    policy: Option<PolicyToml>,
    #[serde(default)]
    budgets: Vec<tandem_budget::BudgetRule>,
    #[serde(default)]
    limits: Vec<tandem_budget::RateRule>,
    #[serde(default)]
    prices: std::collections::HashMap<String, tandem_budget::Price>,
    #[serde(default)]
    dlp: Option<DlpToml>,
    #[serde(default)]
    telemetry: Option<TelemetryToml>,
    #[serde(default)]
    audit: Option<AuditToml>,
    #[serde(default)]
    gates: Option<GatesToml>,
    #[serde(default)]
    sandbox: Option<SandboxToml>,
    #[serde(default)]
    storage: Option<StorageToml>,
    #[serde(default)]
    report: Option<ReportToml>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ReportToml {
    #[serde(default)]
    repositories: Vec<PathBuf>,
    branch: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct StorageToml {
    postgres_url: Option<String>,
    redis_url: Option<String>,
    redis_prefix: Option<String>,
    redis_fail: Option<FailMode>,
    postgres_pool: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DlpToml {
    enabled: Option<bool>,
    /// gitleaks-format rule file; relative paths are relative to the config file.
    rules: Option<PathBuf>,
    /// Action for secrets: block, redact or log.
    secrets: Option<String>,
    /// Action for personal data.
    pii: Option<String>,
    /// Personal-data detectors to run: any of email, phone, card, iban, or "all".
    detect_pii: Option<Vec<String>>,
    responses: Option<bool>,
    restore: Option<bool>,
    /// Per-rule actions.
    #[serde(default)]
    actions: std::collections::BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthToml {
    /// Let requests without credentials through as the `anonymous` user.
    anonymous: Option<bool>,
    /// Accept Tandem API keys (`tdm_…`).
    api_keys: Option<bool>,
    /// Environment variable holding the admin API token.
    admin_token_env: Option<String>,
    oidc: Option<OidcToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct OidcToml {
    issuer: String,
    audience: String,
    jwks_uri: Option<String>,
    user_claim: Option<String>,
    groups_claim: Option<String>,
    project_claim: Option<String>,
    leeway_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyToml {
    /// Cedar policy file; relative paths are relative to the config file.
    file: PathBuf,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TierToml {
    aliases: Option<Vec<String>>,
    fallback_tier: Option<String>,
    #[serde(default)]
    targets: Vec<TargetToml>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TargetToml {
    provider: String,
    model: String,
    weight: Option<u32>,
    retries: Option<u32>,
    first_token_timeout_ms: Option<u64>,
    breaker_failures: Option<u32>,
    breaker_cooldown_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RouterToml {
    live_tier: Option<String>,
    deep_tier: Option<String>,
    deep_threshold: Option<f64>,
    rules: Option<Vec<tandem_router::RuleConfig>>,
    /// Path of a learned scorer's weights (JSON written by `tandem route eval --train`).
    scorer: Option<PathBuf>,
    session_ttl_s: Option<u64>,
    max_sessions: Option<usize>,
}

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ServerToml {
    listen: Option<String>,
    max_body_bytes: Option<usize>,
    state_dir: Option<PathBuf>,
    drain_timeout_s: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProviderToml {
    name: String,
    kind: KindToml,
    base_url: Option<String>,
    api_key_env: Option<String>,
    connect_timeout_ms: Option<u64>,
    first_byte_timeout_ms: Option<u64>,
    idle_timeout_ms: Option<u64>,
    max_response_bytes: Option<usize>,
    // kind = "local"
    model: Option<String>,
    engine: Option<String>,
    threads: Option<usize>,
    context_tokens: Option<u32>,
    gpu_layers: Option<u32>,
    prompt_lookup: Option<bool>,
    max_queue: Option<usize>,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
enum KindToml {
    Openai,
    Anthropic,
    Local,
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

/// The agent's view of a project's `tandem.toml`: its `[gates]` (with the DLP gate built from its
/// `[dlp]`) and its `[sandbox]`. Other sections are checked for syntax only, so a project file
/// needs no `[[providers]]`. Without a file, the defaults. Sandbox domain patterns are checked
/// when the sandbox is built.
pub fn load_project(path: Option<&Path>) -> Result<ProjectSettings> {
    let (raw, source) = read_project(path)?;
    let invalid = |message: String| Error::Invalid {
        source_name: source_name(&source),
        message,
    };
    let base_dir = match &source {
        Source::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        Source::Embedded => PathBuf::new(),
    };
    let dlp = parse_dlp(raw.dlp, &base_dir, &invalid)?;
    Ok(ProjectSettings {
        gates: parse_gates(raw.gates.unwrap_or_default(), &dlp, &invalid)?,
        sandbox: SandboxSettings {
            allow_domains: raw.sandbox.map(|s| s.allow_domains).unwrap_or_default(),
        },
    })
}

/// A project's `tandem.toml` read for the agent's sections: syntax and field names are checked,
/// nothing is required. Without a file, an empty one.
fn read_project(path: Option<&Path>) -> Result<(ConfigToml, Source)> {
    let (text, source) = match path {
        Some(path) => (
            std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.to_owned(),
                source,
            })?,
            Source::File(path.to_owned()),
        ),
        None => (String::new(), Source::Embedded),
    };
    let raw: ConfigToml = toml::from_str(&text).map_err(|err| Error::Parse {
        source_name: source_name(&source),
        message: err.to_string(),
    })?;
    Ok((raw, source))
}

/// The configuration used when no file is found (see the module documentation).
pub fn embedded(env: &dyn Fn(&str) -> Option<String>) -> Result<Config> {
    let url = env("TANDEM_UPSTREAM_URL").filter(|u| !u.is_empty());
    let local_model = match &url {
        Some(_) => None,
        None => env("TANDEM_LOCAL_MODEL")
            .filter(|m| !m.is_empty())
            .or_else(|| {
                tandem_local::catalog::installed(&tandem_local::catalog::models_dir(env))
                    .first()
                    .map(|m| m.name.to_owned())
            }),
    };
    let provider = match local_model {
        Some(model) => {
            format!("[[providers]]\nname = \"local\"\nkind = \"local\"\nmodel = {model:?}\n")
        }
        None => {
            let base_url = url.unwrap_or_else(|| DEFAULT_UPSTREAM.to_owned());
            format!(
                "[[providers]]\nname = \"local\"\nkind = \"openai\"\nbase_url = {base_url:?}\napi_key_env = \"TANDEM_UPSTREAM_API_KEY\"\n"
            )
        }
    };
    let live = env("TANDEM_LIVE_MODEL").unwrap_or_else(|| "live".to_owned());
    let deep = env("TANDEM_DEEP_MODEL").unwrap_or_else(|| "deep".to_owned());
    let text = format!(
        "{provider}[tiers.live]\nfallback_tier = \"deep\"\n[[tiers.live.targets]]\nprovider = \"local\"\nmodel = {live:?}\n\
         [tiers.deep]\n[[tiers.deep.targets]]\nprovider = \"local\"\nmodel = {deep:?}\n"
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
        drain_timeout: Duration::from_secs(raw.server.drain_timeout_s.unwrap_or(30)),
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
        if let KindToml::Local = p.kind {
            providers.push(ProviderConfig::Local(local_provider(p, env, &invalid)?));
            continue;
        }
        if let Some(field) = local_only_field(&p) {
            return Err(invalid(format!(
                "provider `{}`: `{field}` is only for kind = \"local\"",
                p.name
            )));
        }
        let Some(base_url) = p.base_url else {
            return Err(invalid(format!("provider `{}` needs a base_url", p.name)));
        };
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(invalid(format!(
                "provider `{}`: base_url `{base_url}` must start with http:// or https://",
                p.name
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
        providers.push(ProviderConfig::Http(HttpProviderConfig {
            name: p.name,
            kind: match p.kind {
                KindToml::Anthropic => UpstreamKind::Anthropic,
                KindToml::Openai | KindToml::Local => UpstreamKind::OpenAi,
            },
            base_url,
            api_key,
            connect_timeout: Duration::from_millis(p.connect_timeout_ms.unwrap_or(5_000)),
            first_byte_timeout: Duration::from_millis(p.first_byte_timeout_ms.unwrap_or(120_000)),
            idle_timeout: Duration::from_millis(p.idle_timeout_ms.unwrap_or(120_000)),
            max_response_bytes: p.max_response_bytes.unwrap_or(64 * 1024 * 1024),
        }));
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
    let tiers = parse_tiers(raw.tiers, &names, &invalid)?;
    let router = parse_router(raw.router, &tiers, &invalid)?;
    let auth = parse_auth(raw.auth, env, &mut warnings, &invalid)?;
    let base_dir = match &source {
        Source::File(path) => path.parent().map(Path::to_path_buf).unwrap_or_default(),
        Source::Embedded => PathBuf::new(),
    };
    let policy_file = raw.policy.map(|p| base_dir.join(p.file));
    let policy = match &policy_file {
        Some(path) => load_policy(path)?,
        None => {
            tandem_policy::Policy::parse(tandem_policy::DEFAULT_POLICY, "embedded default policy")
                .map_err(|err| invalid(format!("embedded policy: {err}")))?
        }
    };
    tandem_budget::Ledger::new(raw.budgets.clone(), raw.limits.clone())
        .map_err(|err| invalid(format!("budgets/limits: {err}")))?;
    for (backend, price) in &raw.prices {
        price
            .validate()
            .map_err(|err| invalid(format!("prices.\"{backend}\": {err}")))?;
    }
    let dlp = parse_dlp(raw.dlp, &base_dir, &invalid)?;
    let telemetry = parse_telemetry(raw.telemetry, env, &invalid)?;
    let audit = parse_audit(
        raw.audit.unwrap_or_default(),
        &server.state_dir,
        &base_dir,
        &invalid,
    )?;
    let gates = parse_gates(raw.gates.unwrap_or_default(), &dlp, &invalid)?;
    let storage = parse_storage(raw.storage.unwrap_or_default(), env, &invalid)?;
    let report = raw.report.unwrap_or_default();
    let report = ReportSettings {
        repositories: report
            .repositories
            .into_iter()
            .map(|p| base_dir.join(p))
            .collect(),
        branch: report.branch.filter(|b| !b.is_empty()),
    };
    Ok(Config {
        source,
        server,
        providers,
        models,
        tiers,
        router,
        auth,
        policy_file,
        policy: std::sync::Arc::new(policy),
        budgets: raw.budgets,
        limits: raw.limits,
        prices: raw.prices,
        dlp,
        telemetry,
        audit,
        storage,
        gates,
        report,
        warnings,
    })
}

/// `[storage]`, with the URLs from the environment when the file does not set them.
fn parse_storage(
    raw: StorageToml,
    env: &dyn Fn(&str) -> Option<String>,
    invalid: &dyn Fn(String) -> Error,
) -> Result<StorageSettings> {
    let url = |given: Option<String>, var: &str, schemes: &[&str], field: &str| {
        let Some(url) = given.or_else(|| env(var)).filter(|u| !u.is_empty()) else {
            return Ok(None);
        };
        if !schemes.iter().any(|s| url.starts_with(s)) {
            // Never echo the URL: it may hold a password.
            return Err(invalid(format!(
                "storage.{field} must start with {}",
                schemes.join(" or ")
            )));
        }
        Ok(Some(SecretString::from(url)))
    };
    let postgres_url = url(
        raw.postgres_url,
        "TANDEM_POSTGRES_URL",
        &["postgres://", "postgresql://"],
        "postgres_url",
    )?;
    let redis_url = url(
        raw.redis_url,
        "TANDEM_REDIS_URL",
        &["redis://", "rediss://"],
        "redis_url",
    )?;
    let postgres_pool = raw.postgres_pool.unwrap_or(16);
    if postgres_pool == 0 {
        return Err(invalid("storage.postgres_pool must be positive".into()));
    }
    Ok(StorageSettings {
        postgres_url,
        redis_url,
        redis_prefix: raw.redis_prefix.unwrap_or_else(|| "tandem:".to_owned()),
        redis_fail: raw.redis_fail.unwrap_or_default(),
        postgres_pool,
    })
}

/// A `kind = "local"` provider: its model resolved to an installed GGUF file.
fn local_provider(
    p: ProviderToml,
    env: &dyn Fn(&str) -> Option<String>,
    invalid: &dyn Fn(String) -> Error,
) -> Result<LocalConfig> {
    let name = p.name;
    let http_only = [
        ("base_url", p.base_url.is_some()),
        ("api_key_env", p.api_key_env.is_some()),
        ("connect_timeout_ms", p.connect_timeout_ms.is_some()),
        ("first_byte_timeout_ms", p.first_byte_timeout_ms.is_some()),
        ("idle_timeout_ms", p.idle_timeout_ms.is_some()),
        ("max_response_bytes", p.max_response_bytes.is_some()),
    ];
    if let Some((field, _)) = http_only.iter().find(|(_, set)| *set) {
        return Err(invalid(format!(
            "provider `{name}`: `{field}` does not apply to kind = \"local\""
        )));
    }
    let Some(model) = p.model else {
        return Err(invalid(format!(
            "provider `{name}`: kind = \"local\" needs `model`, a catalog name ({}) or a path to a .gguf file",
            tandem_local::catalog::names().join(", ")
        )));
    };
    let path = tandem_local::catalog::resolve(&model, &tandem_local::catalog::models_dir(env))
        .map_err(|err| invalid(format!("provider `{name}`: {err}")))?;
    let kind = match p.engine.as_deref() {
        None | Some("llama.cpp") => EngineKind::LlamaCpp,
        Some("candle") => EngineKind::Candle,
        Some(other) => {
            return Err(invalid(format!(
                "provider `{name}`: engine `{other}` is not one of \"llama.cpp\", \"candle\""
            )));
        }
    };
    if !kind.available() {
        return Err(invalid(format!(
            "provider `{name}`: this build has no candle engine; build with `--features tandem-local/candle`"
        )));
    }
    let defaults = EngineOptions::default();
    let engine = EngineOptions {
        threads: p.threads.unwrap_or(defaults.threads),
        context: p.context_tokens.unwrap_or(defaults.context),
        batch: defaults.batch,
        gpu_layers: p.gpu_layers.unwrap_or(defaults.gpu_layers),
    };
    if engine.context != 0 && engine.context < 256 {
        return Err(invalid(format!(
            "provider `{name}`: context_tokens must be 0 (the model's own) or at least 256"
        )));
    }
    let max_queue = p.max_queue.unwrap_or(16);
    if max_queue == 0 {
        return Err(invalid(format!(
            "provider `{name}`: max_queue must be positive"
        )));
    }
    Ok(LocalConfig {
        name,
        path,
        kind,
        engine,
        lookup: p
            .prompt_lookup
            .unwrap_or(true)
            .then(LookupSettings::default),
        max_queue,
    })
}

/// The first `kind = "local"` field set on an HTTP provider.
fn local_only_field(p: &ProviderToml) -> Option<&'static str> {
    [
        ("model", p.model.is_some()),
        ("engine", p.engine.is_some()),
        ("threads", p.threads.is_some()),
        ("context_tokens", p.context_tokens.is_some()),
        ("gpu_layers", p.gpu_layers.is_some()),
        ("prompt_lookup", p.prompt_lookup.is_some()),
        ("max_queue", p.max_queue.is_some()),
    ]
    .into_iter()
    .find_map(|(field, set)| set.then_some(field))
}

fn parse_audit(
    raw: AuditToml,
    state_dir: &Path,
    base_dir: &Path,
    invalid: &dyn Fn(String) -> Error,
) -> Result<AuditSettings> {
    let name = raw.name.unwrap_or_else(|| "tandem/audit".to_owned());
    if name.is_empty() || name.contains('+') || name.chars().any(char::is_whitespace) {
        return Err(invalid(format!(
            "audit.name `{name}` must be non-empty, without spaces or `+`"
        )));
    }
    let checkpoint_every = raw.checkpoint_every.unwrap_or(1024);
    if checkpoint_every == 0 {
        return Err(invalid("audit.checkpoint_every must be at least 1".into()));
    }
    Ok(AuditSettings {
        enabled: raw.enabled.unwrap_or(true),
        dir: raw
            .dir
            .map_or_else(|| state_dir.join("audit"), |d| base_dir.join(d)),
        name,
        checkpoint_every,
        fsync: raw.fsync.unwrap_or(false),
        capture: raw.capture.unwrap_or(false),
        retention_days: raw.retention_days.unwrap_or(30),
    })
}

fn parse_gates(
    raw: GatesToml,
    dlp: &DlpSettings,
    invalid: &dyn Fn(String) -> Error,
) -> Result<GatesSettings> {
    let command = |what: &str, value: Option<String>| -> Result<Option<String>> {
        match value {
            Some(command) if command.trim().is_empty() => Err(invalid(format!(
                "gates.{what} must be a command, or left out"
            ))),
            value => Ok(value),
        }
    };
    let timeout_secs = raw.timeout_secs.unwrap_or(600);
    if timeout_secs == 0 {
        return Err(invalid("gates.timeout_secs must be at least 1".into()));
    }
    let deps = raw.dependencies;
    let unknown_license = match deps.unknown_license.as_deref() {
        None | Some("deny") => tandem_gates::UnknownLicense::Deny,
        Some("warn") => tandem_gates::UnknownLicense::Warn,
        Some(other) => {
            return Err(invalid(format!(
                "gates.dependencies.unknown_license `{other}`: expected `deny` or `warn`"
            )));
        }
    };
    let lists = tandem_gates::DependencyLists {
        allow_licenses: deps.allow_licenses,
        deny_licenses: deps.deny_licenses,
        allow_packages: deps.allow_packages,
        deny_packages: deps.deny_packages,
    };
    let dependencies = tandem_gates::DependencyPolicy::new(&lists, unknown_license)
        .map_err(|err| invalid(format!("gates.dependencies: {err}")))?;
    Ok(GatesSettings {
        live: raw.live.unwrap_or(false),
        task: raw.task.unwrap_or(true),
        gates: tandem_gates::GatesConfig {
            test: command("test", raw.test)?,
            lint: command("lint", raw.lint)?,
            typecheck: command("typecheck", raw.typecheck)?,
            timeout: Duration::from_secs(timeout_secs),
            dlp: raw
                .dlp
                .unwrap_or(true)
                .then(|| std::sync::Arc::clone(&dlp.scanner)),
            dependencies,
        },
    })
}

fn parse_telemetry(
    raw: Option<TelemetryToml>,
    env: &dyn Fn(&str) -> Option<String>,
    invalid: &dyn Fn(String) -> Error,
) -> Result<TelemetrySettings> {
    let raw = raw.unwrap_or(TelemetryToml {
        otlp_endpoint: None,
        service_name: None,
        sample_ratio: None,
        metrics_token: None,
        log_format: None,
    });
    let otlp_endpoint = raw
        .otlp_endpoint
        .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
        .map(|e| e.trim().trim_end_matches('/').to_owned())
        .filter(|e| !e.is_empty());
    if let Some(endpoint) = &otlp_endpoint
        && !(endpoint.starts_with("http://") || endpoint.starts_with("https://"))
    {
        return Err(invalid(format!(
            "telemetry.otlp_endpoint `{endpoint}` must start with http:// or https://"
        )));
    }
    let sample_ratio = raw.sample_ratio.unwrap_or(1.0);
    if !(0.0..=1.0).contains(&sample_ratio) {
        return Err(invalid(format!(
            "telemetry.sample_ratio {sample_ratio} must be between 0 and 1"
        )));
    }
    let service_name = raw.service_name.unwrap_or_else(|| "tandem".to_owned());
    if service_name.trim().is_empty() {
        return Err(invalid("telemetry.service_name must not be empty".into()));
    }
    Ok(TelemetrySettings {
        otlp_endpoint,
        service_name,
        sample_ratio,
        metrics_token: raw
            .metrics_token
            .filter(|t| !t.is_empty())
            .map(SecretString::from),
        log_format: raw.log_format.unwrap_or(LogFormat::Text),
    })
}

fn parse_dlp(
    raw: Option<DlpToml>,
    base_dir: &Path,
    invalid: &dyn Fn(String) -> Error,
) -> Result<DlpSettings> {
    let raw = raw.unwrap_or(DlpToml {
        enabled: None,
        rules: None,
        secrets: None,
        pii: None,
        detect_pii: None,
        responses: None,
        restore: None,
        actions: Default::default(),
    });
    let action = |what: &str, value: Option<&str>| -> Result<tandem_dlp::Action> {
        value.unwrap_or("redact").parse().map_err(|_| {
            invalid(format!(
                "dlp.{what}: an action is `block`, `redact` or `log`"
            ))
        })
    };
    let mut actions = tandem_dlp::Actions::new(
        action("secrets", raw.secrets.as_deref())?,
        action("pii", raw.pii.as_deref())?,
    );
    let rules_file = raw.rules.map(|p| base_dir.join(p));
    let rules = match &rules_file {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            tandem_dlp::Rules::from_toml(&text)
                .map_err(|err| invalid(format!("dlp.rules {}: {err}", path.display())))?
        }
        None => tandem_dlp::Rules::builtin()
            .map_err(|err| invalid(format!("built-in DLP rules: {err}")))?,
    };
    let mut pii = tandem_dlp::PiiConfig::none();
    for kind in raw.detect_pii.unwrap_or_default() {
        pii.enable(&kind)
            .map_err(|err| invalid(format!("dlp.detect_pii: {err}")))?;
    }
    for (rule, value) in &raw.actions {
        let known = rules.ids().any(|id| id == rule)
            || [
                tandem_dlp::PiiKind::Email,
                tandem_dlp::PiiKind::Phone,
                tandem_dlp::PiiKind::Card,
                tandem_dlp::PiiKind::Iban,
            ]
            .iter()
            .any(|k| k.rule_id() == rule);
        if !known {
            return Err(invalid(format!("dlp.actions: no rule has the id `{rule}`")));
        }
        actions = actions.with_rule(
            rule.clone(),
            action(&format!("actions.\"{rule}\""), Some(value))?,
        );
    }
    let scanner = tandem_dlp::Scanner::new(&rules, &pii)
        .map_err(|err| invalid(format!("dlp.rules: {err}")))?;
    Ok(DlpSettings {
        enabled: raw.enabled.unwrap_or(true),
        scanner: std::sync::Arc::new(scanner),
        actions,
        responses: raw.responses.unwrap_or(true),
        restore: raw.restore.unwrap_or(false),
        rules_file,
    })
}

/// The key of the DLP placeholder hashes, kept in `<state_dir>/dlp.key` (created on first use, mode
/// 0600) so that the same value keeps the same placeholder across restarts.
pub fn dlp_key(state_dir: &Path) -> Result<[u8; 32]> {
    let path = state_dir.join("dlp.key");
    let read = |path: &Path| -> Result<Option<[u8; 32]>> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(<[u8; 32]>::try_from(bytes.as_slice()).ok()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(Error::Read {
                path: path.to_owned(),
                source,
            }),
        }
    };
    if let Some(key) = read(&path)? {
        return Ok(key);
    }
    let mut key = [0u8; 32];
    rand::TryRng::try_fill_bytes(&mut rand::rngs::SysRng, &mut key).map_err(|e| {
        Error::Invalid {
            source_name: path.display().to_string(),
            message: format!("no randomness for the DLP key: {e}"),
        }
    })?;
    let write = || -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        std::io::Write::write_all(&mut options.open(&path)?, &key)
    };
    match write() {
        Ok(()) => Ok(key),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            read(&path)?.ok_or_else(|| Error::Invalid {
                source_name: path.display().to_string(),
                message: "the DLP key file must hold exactly 32 bytes".into(),
            })
        }
        Err(source) => Err(Error::Read { path, source }),
    }
}

/// Read and validate a Cedar policy file.
pub fn load_policy(path: &Path) -> Result<tandem_policy::Policy> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Read {
        path: path.to_owned(),
        source,
    })?;
    tandem_policy::Policy::parse(&text, &path.display().to_string()).map_err(|err| Error::Invalid {
        source_name: path.display().to_string(),
        message: err.to_string(),
    })
}

fn parse_auth(
    raw: Option<AuthToml>,
    env: &dyn Fn(&str) -> Option<String>,
    warnings: &mut Vec<String>,
    invalid: &dyn Fn(String) -> Error,
) -> Result<AuthSettings> {
    let Some(raw) = raw else {
        return Ok(AuthSettings {
            anonymous: true,
            api_keys: true,
            oidc: None,
            admin_token: env("TANDEM_ADMIN_TOKEN")
                .filter(|t| !t.is_empty())
                .map(SecretString::from),
        });
    };
    let admin_var = raw
        .admin_token_env
        .unwrap_or_else(|| "TANDEM_ADMIN_TOKEN".to_owned());
    let admin_token = env(&admin_var)
        .filter(|t| !t.is_empty())
        .map(SecretString::from);
    if admin_token.is_none() {
        warnings.push(format!(
            "auth: `{admin_var}` is not set; the admin API is disabled"
        ));
    }
    let oidc = match raw.oidc {
        None => None,
        Some(o) => {
            if !(o.issuer.starts_with("http://") || o.issuer.starts_with("https://")) {
                return Err(invalid(format!(
                    "auth.oidc.issuer `{}` must be an http(s) URL",
                    o.issuer
                )));
            }
            let mut config = tandem_auth::OidcConfig::new(o.issuer, o.audience);
            config.jwks_uri = o.jwks_uri;
            if let Some(claim) = o.user_claim {
                config.user_claim = claim;
            }
            config.groups_claim = o.groups_claim;
            config.project_claim = o.project_claim;
            if let Some(leeway) = o.leeway_s {
                config.leeway_s = leeway;
            }
            Some(config)
        }
    };
    Ok(AuthSettings {
        anonymous: raw.anonymous.unwrap_or(false),
        api_keys: raw.api_keys.unwrap_or(true),
        oidc,
        admin_token,
    })
}

fn parse_tiers(
    raw: toml::Table,
    providers: &HashSet<String>,
    invalid: &dyn Fn(String) -> Error,
) -> Result<Vec<TierConfig>> {
    let mut tiers = Vec::with_capacity(raw.len());
    for (name, value) in raw {
        let tier: TierToml = value
            .try_into()
            .map_err(|err| invalid(format!("tiers.{name}: {err}")))?;
        if tier.targets.is_empty() {
            return Err(invalid(format!(
                "tiers.{name} needs at least one [[tiers.{name}.targets]]"
            )));
        }
        let mut targets = Vec::with_capacity(tier.targets.len());
        for (i, t) in tier.targets.into_iter().enumerate() {
            if !providers.contains(&t.provider) {
                return Err(invalid(format!(
                    "tiers.{name}.targets[{i}] names provider `{}`, which is not defined",
                    t.provider
                )));
            }
            targets.push(TargetConfig {
                provider: t.provider,
                model: t.model,
                weight: t.weight.unwrap_or(1),
                retries: t.retries.unwrap_or(0),
                first_token_timeout: t.first_token_timeout_ms.map(Duration::from_millis),
                breaker_failures: t.breaker_failures.unwrap_or(5).max(1),
                breaker_cooldown: Duration::from_millis(t.breaker_cooldown_ms.unwrap_or(30_000)),
            });
        }
        tiers.push(TierConfig {
            aliases: tier
                .aliases
                .unwrap_or_else(|| vec![format!("tandem-{name}")]),
            name,
            targets,
            fallback_tier: tier.fallback_tier,
        });
    }
    let mut aliases = HashSet::new();
    for tier in &tiers {
        if let Some(fallback) = &tier.fallback_tier
            && !tiers.iter().any(|t| &t.name == fallback)
        {
            return Err(invalid(format!(
                "tiers.{}.fallback_tier `{fallback}` is not a tier",
                tier.name
            )));
        }
        for alias in &tier.aliases {
            if !aliases.insert(alias.clone()) {
                return Err(invalid(format!("tier alias `{alias}` is used twice")));
            }
        }
    }
    Ok(tiers)
}

fn parse_router(
    raw: Option<RouterToml>,
    tiers: &[TierConfig],
    invalid: &dyn Fn(String) -> Error,
) -> Result<Option<RouterSettings>> {
    let has = |name: &str| tiers.iter().any(|t| t.name == name);
    let raw = match raw {
        Some(raw) => raw,
        // Without a [router] table, `auto` works when the two default tiers exist.
        None if has("live") && has("deep") => RouterToml {
            live_tier: None,
            deep_tier: None,
            deep_threshold: None,
            rules: None,
            scorer: None,
            session_ttl_s: None,
            max_sessions: None,
        },
        None => return Ok(None),
    };
    let live_tier = raw.live_tier.unwrap_or_else(|| "live".to_owned());
    let deep_tier = raw.deep_tier.unwrap_or_else(|| "deep".to_owned());
    for name in [&live_tier, &deep_tier] {
        if !has(name) {
            return Err(invalid(format!(
                "router: tier `{name}` is not defined under [tiers]"
            )));
        }
    }
    let scorer = match raw.scorer {
        None => None,
        Some(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Read {
                path: path.clone(),
                source,
            })?;
            let scorer = tandem_router::LogisticScorer::from_json(&text)
                .map_err(|err| invalid(format!("router.scorer {}: {err}", path.display())))?;
            Some(tandem_router::ScorerConfig::Logistic(Box::new(scorer)))
        }
    };
    let router = tandem_router::RouterConfig {
        rules: raw
            .rules
            .unwrap_or_else(|| tandem_router::default_rules_for(&live_tier, &deep_tier)),
        live_tier,
        deep_tier,
        tiers: tiers.iter().map(|t| t.name.clone()).collect(),
        scorer,
        deep_threshold: raw.deep_threshold.unwrap_or(0.5),
    };
    tandem_router::Router::new(router.clone()).map_err(|err| invalid(format!("router: {err}")))?;
    Ok(Some(RouterSettings {
        router,
        session_ttl: Duration::from_secs(raw.session_ttl_s.unwrap_or(3600)),
        max_sessions: raw.max_sessions.unwrap_or(100_000),
    }))
}

fn source_name(source: &Source) -> String {
    match source {
        Source::File(path) => path.display().to_string(),
        Source::Embedded => "embedded default".to_owned(),
    }
}

#[cfg(test)]
mod tests;
