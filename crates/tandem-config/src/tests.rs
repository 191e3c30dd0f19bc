//! Tests for config loading: the embedded default, precedence, and refusals with clear messages.

use std::path::PathBuf;

use pretty_assertions::assert_eq;
use tandem_providers::UpstreamKind;

use crate::{DEFAULT_UPSTREAM, ModelAlias, ProviderConfig, Source, embedded, load, parse};

fn no_env(_: &str) -> Option<String> {
    None
}

fn check_err(text: &str, expect: &str) {
    let err = parse(text, Source::Embedded, &no_env)
        .unwrap_err()
        .to_string();
    assert!(err.contains(expect), "{err:?} should contain {expect:?}");
}

fn http(config: &crate::Config, i: usize) -> &tandem_providers::HttpProviderConfig {
    match &config.providers[i] {
        ProviderConfig::Http(http) => http,
        ProviderConfig::Local(local) => panic!("provider {i} is local: {local:?}"),
    }
}

#[test]
fn embedded_default_points_at_local_upstream() {
    let config = embedded(&no_env).unwrap();
    assert_eq!(config.source, Source::Embedded);
    assert_eq!(http(&config, 0).base_url, DEFAULT_UPSTREAM);
    assert_eq!(http(&config, 0).kind, UpstreamKind::OpenAi);
    assert_eq!(config.server.state_dir, PathBuf::from(".tandem"));
    assert!(config.warnings.is_empty());
    let custom =
        embedded(&|k| (k == "TANDEM_UPSTREAM_URL").then(|| "http://10.0.0.1:9/v1".into())).unwrap();
    assert_eq!(http(&custom, 0).base_url, "http://10.0.0.1:9/v1");
}

/// A models directory with an "installed" catalog model (the file only has to exist to be chosen).
fn models_dir_with(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(format!("{name}.gguf")), b"GGUF").unwrap();
    dir
}

#[test]
fn embedded_default_serves_an_installed_local_model_when_no_upstream_is_set() {
    let dir = models_dir_with("smollm2-135m");
    let models = dir.path().to_string_lossy().into_owned();
    let env = |k: &str| (k == "TANDEM_MODELS_DIR").then(|| models.clone());
    let config = embedded(&env).unwrap();
    let ProviderConfig::Local(local) = &config.providers[0] else {
        panic!("{:?}", config.providers);
    };
    assert_eq!(local.path, dir.path().join("smollm2-135m.gguf"));
    assert!(local.lookup.is_some());
    // Both tiers use it.
    assert_eq!(config.tiers.len(), 2);
    // An upstream URL wins over the local model.
    let env = |k: &str| match k {
        "TANDEM_MODELS_DIR" => Some(models.clone()),
        "TANDEM_UPSTREAM_URL" => Some("http://10.0.0.1:9/v1".into()),
        _ => None,
    };
    assert_eq!(
        http(&embedded(&env).unwrap(), 0).base_url,
        "http://10.0.0.1:9/v1"
    );
    // TANDEM_LOCAL_MODEL names one explicitly; a model that is not installed is a clear error.
    let env = |k: &str| match k {
        "TANDEM_MODELS_DIR" => Some(models.clone()),
        "TANDEM_LOCAL_MODEL" => Some("qwen2.5-coder-0.5b".into()),
        _ => None,
    };
    let err = embedded(&env).unwrap_err().to_string();
    assert!(
        err.contains("tandem models install qwen2.5-coder-0.5b"),
        "{err}"
    );
}

#[test]
fn local_providers_parse_and_refuse_clearly() {
    let dir = models_dir_with("smollm2-135m");
    let models = dir.path().to_string_lossy().into_owned();
    let env = |k: &str| (k == "TANDEM_MODELS_DIR").then(|| models.clone());
    let text = "[[providers]]\nname = \"edge\"\nkind = \"local\"\nmodel = \"smollm2-135m\"\nthreads = 4\n\
                context_tokens = 2048\nprompt_lookup = false\nmax_queue = 2\n";
    let config = parse(text, Source::Embedded, &env).unwrap();
    let ProviderConfig::Local(local) = &config.providers[0] else {
        panic!("{:?}", config.providers);
    };
    assert_eq!(
        (local.engine.threads, local.engine.context, local.max_queue),
        (4, 2048, 2)
    );
    assert_eq!(local.lookup, None);
    assert_eq!(config.providers[0].name(), "edge");

    let gguf = dir.path().join("smollm2-135m.gguf");
    let by_path = format!(
        "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = {:?}\n",
        gguf.display().to_string()
    );
    assert!(parse(&by_path, Source::Embedded, &no_env).is_ok());

    let cases = [
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\n",
            "needs `model`",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = \"nope\"\n",
            "unknown model `nope`",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = \"/no/such.gguf\"\n",
            "/no/such.gguf",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = \"smollm2-135m\"\nbase_url = \"http://x/v1\"\n",
            "`base_url` does not apply",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = \"smollm2-135m\"\ncontext_tokens = 10\n",
            "context_tokens",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\nthreads = 2\n",
            "only for kind",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"openai\"\n",
            "needs a base_url",
        ),
        (
            "[[providers]]\nname = \"p\"\nkind = \"local\"\nmodel = \"smollm2-135m\"\nengine = \"onnx\"\n",
            "engine `onnx`",
        ),
    ];
    for (text, expect) in cases {
        let err = parse(text, Source::Embedded, &env).unwrap_err().to_string();
        assert!(err.contains(expect), "{err:?} should contain {expect:?}");
    }
}

#[test]
fn full_file_parses() {
    let config = parse(
        r#"
[server]
listen = "127.0.0.1:0"
max_body_bytes = 1024
state_dir = "/tmp/x"
[[providers]]
name = "tk"
kind = "openai"
base_url = "http://127.0.0.1:1/v1"
api_key_env = "KEY"
[[providers]]
name = "tka"
kind = "anthropic"
base_url = "http://127.0.0.1:1/v1"
[[models]]
name = "tandem-live"
provider = "tk"
model = "scripted"
"#,
        Source::Embedded,
        &|k| (k == "KEY").then(|| "secret".into()),
    )
    .unwrap();
    assert_eq!(config.server.max_body_bytes, 1024);
    assert_eq!(config.providers.len(), 2);
    assert!(http(&config, 0).api_key.is_some());
    assert!(format!("{:?}", http(&config, 0)).contains("REDACTED"));
    assert_eq!(
        config.models,
        vec![ModelAlias {
            name: "tandem-live".into(),
            provider: "tk".into(),
            model: "scripted".into()
        }]
    );
}

#[test]
fn refusals_name_the_problem() {
    let p = "[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n";
    check_err("[server]\nlisten = \"nope\"\n", "server.listen `nope`");
    check_err("[server]\nbogus = 1\n", "unknown field `bogus`");
    check_err("", "at least one [[providers]]");
    check_err(&format!("{p}{p}"), "provider `a` is defined twice");
    check_err(
        &p.replace("http://x/v1", "ftp://x"),
        "must start with http://",
    );
    check_err(&p.replace("openai", "gemini"), "unknown variant `gemini`");
    check_err(
        &format!("{p}[[models]]\nname = \"m\"\nprovider = \"b\"\nmodel = \"x\"\n"),
        "provider `b`, which is not defined",
    );
}

#[test]
fn missing_key_variable_is_a_warning() {
    let config = parse(
        "[[providers]]\nname = \"a\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\napi_key_env = \"NOPE\"\n",
        Source::Embedded,
        &no_env,
    )
    .unwrap();
    assert_eq!(config.warnings.len(), 1);
    assert!(config.warnings[0].contains("NOPE"));
}

#[test]
fn explicit_path_wins_over_env() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.toml");
    std::fs::write(
        &file,
        "[[providers]]\nname = \"filep\"\nkind = \"openai\"\nbase_url = \"http://x/v1\"\n",
    )
    .unwrap();
    let config = load(Some(&file), &|k| {
        (k == "TANDEM_CONFIG").then(|| "/nonexistent.toml".into())
    })
    .unwrap();
    assert_eq!(config.providers[0].name(), "filep");
    let err = load(None, &|k| {
        (k == "TANDEM_CONFIG").then(|| "/nonexistent.toml".into())
    })
    .unwrap_err();
    assert!(err.to_string().contains("/nonexistent.toml"));
}

#[test]
fn dlp_is_on_by_default_and_refuses_bad_settings() {
    let config = embedded(&no_env).unwrap();
    assert!(config.dlp.enabled);
    assert!(config.dlp.responses);
    assert!(!config.dlp.restore);
    let base =
        "[[providers]]\nname = \"p\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n";
    check_err(
        &format!("{base}[dlp]\nsecrets = \"shred\"\n"),
        "dlp.secrets",
    );
    check_err(
        &format!("{base}[dlp]\ndetect_pii = [\"ssn\"]\n"),
        "dlp.detect_pii: `ssn`",
    );
    check_err(
        &format!("{base}[dlp.actions]\n\"no-such-rule\" = \"block\"\n"),
        "no-such-rule",
    );
    check_err(
        &format!("{base}[dlp]\nrules = \"/nonexistent/rules.toml\"\n"),
        "/nonexistent/rules.toml",
    );
    check_err(&format!("{base}[dlp]\nbogus = 1\n"), "bogus");
    let ok = parse(
        &format!("{base}[dlp]\ndetect_pii = [\"email\"]\npii = \"log\"\n[dlp.actions]\n\"pii-email\" = \"block\"\n\"github-pat\" = \"log\"\n"),
        Source::Embedded,
        &no_env,
    )
    .unwrap();
    assert!(ok.dlp.scanner.rule_count() > 79);
}

#[test]
fn dlp_key_is_created_once_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let first = crate::dlp_key(dir.path()).unwrap();
    let again = crate::dlp_key(dir.path()).unwrap();
    assert_eq!(first, again);
    assert_ne!(first, [0u8; 32]);
}

const ONE_PROVIDER: &str =
    "[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://127.0.0.1:1/v1\"\n";

#[test]
fn telemetry_defaults_and_settings() {
    use secrecy::ExposeSecret;

    use crate::LogFormat;

    let config = parse(ONE_PROVIDER, Source::Embedded, &no_env).unwrap();
    let t = &config.telemetry;
    assert_eq!(t.otlp_endpoint, None, "traces are off without an endpoint");
    assert_eq!(t.service_name, "tandem");
    assert_eq!(t.sample_ratio, 1.0);
    assert!(t.metrics_token.is_none(), "/metrics is open by default");
    assert_eq!(t.log_format, LogFormat::Text);

    let from_env =
        |k: &str| (k == "OTEL_EXPORTER_OTLP_ENDPOINT").then(|| "http://collector:4318/".to_owned());
    let config = parse(ONE_PROVIDER, Source::Embedded, &from_env).unwrap();
    assert_eq!(
        config.telemetry.otlp_endpoint.as_deref(),
        Some("http://collector:4318")
    );

    let text = format!(
        "{ONE_PROVIDER}[telemetry]\notlp_endpoint = \"http://127.0.0.1:4318\"\nservice_name = \"gw\"\n\
         sample_ratio = 0.25\nmetrics_token = \"s3cret\"\nlog_format = \"json\"\n"
    );
    let config = parse(&text, Source::Embedded, &from_env).unwrap();
    let t = &config.telemetry;
    assert_eq!(
        t.otlp_endpoint.as_deref(),
        Some("http://127.0.0.1:4318"),
        "the file wins over the environment"
    );
    assert_eq!(t.service_name, "gw");
    assert_eq!(t.sample_ratio, 0.25);
    assert_eq!(
        t.metrics_token
            .as_ref()
            .map(|s| s.expose_secret().to_owned()),
        Some("s3cret".to_owned())
    );
    assert_eq!(t.log_format, LogFormat::Json);
    assert!(
        !format!("{t:?}").contains("s3cret"),
        "the token is never printed"
    );
}

#[test]
fn telemetry_refusals() {
    for (table, expect) in [
        ("sample_ratio = 1.5", "telemetry.sample_ratio"),
        ("otlp_endpoint = \"collector:4318\"", "must start with http"),
        ("log_format = \"xml\"", "xml"),
        ("service_name = \" \"", "telemetry.service_name"),
        ("endpoint = \"http://x\"", "unknown field `endpoint`"),
    ] {
        check_err(&format!("{ONE_PROVIDER}[telemetry]\n{table}\n"), expect);
    }
}

#[test]
fn gates_defaults_and_settings() {
    let config = parse(ONE_PROVIDER, Source::Embedded, &no_env).unwrap();
    let gates = &config.gates;
    assert!(!gates.live);
    assert!(gates.task);
    assert_eq!(gates.gates.test, None);
    assert_eq!(gates.gates.timeout, std::time::Duration::from_secs(600));
    assert!(gates.gates.dlp.is_some());
    assert_eq!(
        gates.gates.dependencies.unknown_license(),
        tandem_gates::UnknownLicense::Deny
    );

    let text = format!(
        r#"{ONE_PROVIDER}
[gates]
test = "cargo nextest run"
lint = "cargo clippy -- -D warnings"
typecheck = "cargo check"
timeout_secs = 30
live = true
task = false
dlp = false
[gates.dependencies]
allow_licenses = ["MIT", "Apache-2.0", "Apache-2.0 WITH LLVM-exception"]
deny_licenses = ["GPL-3.0-only", "AGPL-3.0-or-later"]
deny_packages = ["left-pad", "npm:event-stream", "cargo:openssl-sys", "pypi:Py_Yaml"]
allow_packages = []
unknown_license = "warn"
"#
    );
    let config = parse(&text, Source::Embedded, &no_env).unwrap();
    let gates = &config.gates;
    assert!(gates.live);
    assert!(!gates.task);
    assert_eq!(gates.gates.test.as_deref(), Some("cargo nextest run"));
    assert_eq!(
        gates.gates.lint.as_deref(),
        Some("cargo clippy -- -D warnings")
    );
    assert_eq!(gates.gates.typecheck.as_deref(), Some("cargo check"));
    assert_eq!(gates.gates.timeout, std::time::Duration::from_secs(30));
    assert!(gates.gates.dlp.is_none());
    let policy = &gates.gates.dependencies;
    assert_eq!(policy.unknown_license(), tandem_gates::UnknownLicense::Warn);
    let dep = |ecosystem, name: &str| tandem_gates::Dependency {
        ecosystem,
        name: name.to_owned(),
        version: None,
    };
    use tandem_gates::Ecosystem::{Cargo, Npm, Pypi};
    assert!(!policy.check(&dep(Cargo, "openssl-sys"), Some("MIT")).passed);
    assert!(policy.check(&dep(Npm, "openssl-sys"), Some("MIT")).passed);
    assert!(!policy.check(&dep(Pypi, "left-pad"), Some("MIT")).passed);
    assert!(!policy.check(&dep(Pypi, "py-yaml"), Some("MIT")).passed);
    assert!(!policy.check(&dep(Cargo, "x"), Some("GPL-3.0-only")).passed);
    assert!(
        policy
            .check(&dep(Cargo, "x"), Some("MIT OR GPL-3.0-only"))
            .passed
    );
}

#[test]
fn gates_refusals() {
    let check = |gates: &str, expect: &str| check_err(&format!("{ONE_PROVIDER}\n{gates}"), expect);
    check(
        "[gates]\ntimeout_secs = 0",
        "gates.timeout_secs must be at least 1",
    );
    check("[gates]\ntest = \"  \"", "gates.test must be a command");
    check("[gates]\nformat = \"x\"", "unknown field `format`");
    check(
        "[gates.dependencies]\nallow_licenses = [\"Beerware-Deluxe\"]",
        "gates.dependencies: `Beerware-Deluxe` is not an SPDX license identifier",
    );
    check(
        "[gates.dependencies]\ndeny_packages = [\"maven:log4j\"]",
        "gates.dependencies: package `maven:log4j`: the prefix must be",
    );
    check(
        "[gates.dependencies]\nunknown_license = \"ignore\"",
        "gates.dependencies.unknown_license `ignore`: expected `deny` or `warn`",
    );
    check(
        "[gates.dependencies]\nallow = [\"MIT\"]",
        "unknown field `allow`",
    );
}

#[test]
fn a_project_file_with_only_gates_gives_the_agent_its_gates() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.toml");
    std::fs::write(&path, "[gates]\nlive = true\ntest = \"cargo test\"\n").unwrap();
    let gates = crate::load_project(Some(&path)).unwrap().gates;
    assert!(gates.live);
    assert_eq!(gates.gates.test.as_deref(), Some("cargo test"));
    assert!(gates.gates.dlp.is_some(), "the DLP gate is on by default");
    let defaults = crate::load_project(None).unwrap().gates;
    assert!(!defaults.live && defaults.gates.test.is_none());
    std::fs::write(&path, "[gates]\nlive = 3\n").unwrap();
    assert!(crate::load_project(Some(&path)).is_err());
}

#[test]
fn a_project_sandbox_section_lists_allowed_domains() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tandem.toml");
    std::fs::write(
        &path,
        "[sandbox]\nallow_domains = [\"registry.npmjs.org\", \"*.crates.io\"]\n",
    )
    .unwrap();
    let sandbox = crate::load_project(Some(&path)).unwrap().sandbox;
    assert_eq!(
        sandbox.allow_domains,
        vec!["registry.npmjs.org", "*.crates.io"]
    );
    assert!(
        crate::load_project(None)
            .unwrap()
            .sandbox
            .allow_domains
            .is_empty()
    );
    std::fs::write(&path, "[sandbox]\nallow = []\n").unwrap();
    assert!(crate::load_project(Some(&path)).is_err());
}
