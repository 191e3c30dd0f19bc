//! Test harness: a test upstream plus a gateway in front of it, both on ephemeral loopback ports.

use std::time::Duration;

use serde_json::Value;
use tandem_config::Source;
use tandem_gateway::AppState;
use tandem_store::{RequestRecord, Store};
use tokio::net::TcpListener;

/// A running upstream and gateway.
pub struct Harness {
    pub upstream: tandem_testkit::Server,
    pub base: String,
    pub client: reqwest::Client,
    state: AppState,
    state_dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// Extra lines for the `[server]` table and provider timeouts.
#[derive(Default)]
pub struct Options {
    pub max_body_bytes: Option<usize>,
    pub provider_extra: &'static str,
    /// Replace the upstream URL (e.g. to point at a closed port).
    pub upstream_url: Option<String>,
    /// More TOML appended to the config (tiers, router); `{url}` is replaced by the upstream URL.
    pub extra_toml: String,
    /// Environment variables the config sees.
    pub env: Vec<(&'static str, &'static str)>,
    /// Serve with these client deadlines (`tandem_gateway::serve::serve`) instead of `tandem_gateway::run`.
    pub timeouts: Option<tandem_gateway::serve::Timeouts>,
}

impl Harness {
    pub async fn start() -> Harness {
        Harness::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Harness {
        let upstream = tandem_testkit::spawn(tandem_testkit::Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            tokens_per_sec: 0.0,
            default_tokens: 16,
        })
        .await
        .unwrap();
        let url = options
            .upstream_url
            .clone()
            .unwrap_or_else(|| format!("http://{}/v1", upstream.addr()));
        let state_dir = tempfile::tempdir().unwrap();
        let max_body = options.max_body_bytes.unwrap_or(1 << 20);
        let extra = options.provider_extra;
        let text = format!(
            r#"
[server]
max_body_bytes = {max_body}
state_dir = {state:?}
[[providers]]
name = "tk"
kind = "openai"
base_url = "{url}"
{extra}
[[providers]]
name = "tka"
kind = "anthropic"
base_url = "{url}"
{extra}
[[models]]
name = "scripted-alias"
provider = "tk"
model = "scripted"
{more}
"#,
            state = state_dir.path().display().to_string(),
            more = options.extra_toml.replace("{url}", &url),
        );
        let env = options.env.clone();
        let lookup = move |name: &str| {
            env.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        };
        let config = tandem_config::parse(&text, Source::Embedded, &lookup).unwrap();
        let state = AppState::from_config(&config).await.unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let served = state.clone();
        let stopped = async move {
            let _ = stopped.await;
        };
        match options.timeouts {
            None => tokio::spawn(async move {
                tandem_gateway::run(listener, served, stopped)
                    .await
                    .unwrap();
            }),
            Some(timeouts) => tokio::spawn(async move {
                let app = tandem_gateway::app(served);
                tandem_gateway::serve::serve(listener, app, timeouts, stopped)
                    .await
                    .unwrap();
            }),
        };
        Harness {
            upstream,
            base: format!("http://{addr}"),
            client: reqwest::Client::new(),
            state,
            state_dir,
            stop: Some(stop),
        }
    }

    /// The gateway's address.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.post_with(path, body, &[]).await
    }

    pub async fn post_with(
        &self,
        path: &str,
        body: &Value,
        headers: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url(path)).json(body);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.unwrap()
    }

    /// POST and read the whole SSE body as text.
    pub async fn post_text(&self, path: &str, body: &Value) -> (u16, String) {
        let resp = self.post(path, body).await;
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// The gateway's state (pipeline and store).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The routing memory of a session.
    pub fn state_session(&self, key: &str) -> tandem_core::SessionState {
        self.state.core().session(key)
    }

    /// The records written so far, oldest first.
    pub fn records(&self) -> Vec<RequestRecord> {
        self.state.core().flush().unwrap();
        let store = Store::open(self.state_dir.path()).unwrap();
        let mut records = store.recent(10_000).unwrap();
        records.reverse();
        records
    }

    /// The audit ledger's entries so far (sealed first), oldest first.
    pub fn audit_entries(&self) -> Vec<tandem_audit::Sealed> {
        self.state.core().flush().unwrap();
        let reader = tandem_audit::Reader::open(&self.state_dir.path().join("audit")).unwrap();
        let mut out = Vec::new();
        reader
            .entries(&tandem_audit::Filter::default(), |e| {
                out.push(e.sealed);
                Ok(())
            })
            .unwrap();
        out
    }

    /// The audit ledger directory.
    pub fn audit_dir(&self) -> std::path::PathBuf {
        self.state_dir.path().join("audit")
    }

    /// Wait until `cond` holds on the upstream stats, up to `limit`.
    pub async fn wait_stats(
        &self,
        limit: Duration,
        cond: impl Fn(&tandem_testkit::Stats) -> bool,
    ) -> tandem_testkit::Stats {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let stats = self.upstream.stats();
            if cond(&stats) || tokio::time::Instant::now() > deadline {
                return stats;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// The JSON payloads of an SSE body (`data:` lines), `[DONE]` kept as a string.
pub fn sse_data(text: &str) -> Vec<Value> {
    text.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap_or_else(|_| Value::String(d.to_owned())))
        .collect()
}

/// The `event:` names of an SSE body.
pub fn sse_events(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|l| l.strip_prefix("event: "))
        .map(str::to_owned)
        .collect()
}
