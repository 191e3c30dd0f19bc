//! A real `tandem serve` process for end-to-end tests: started on a free port with its state in a
//! temporary directory, its stderr collected, stopped with SIGTERM or killed.

use std::io::BufRead as _;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Longest wait for anything in these tests.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A running `tandem serve`, killed when dropped; its stderr lines are collected.
pub struct Serve {
    pub child: Child,
    pub base: String,
    pub logs: Arc<Mutex<Vec<String>>>,
    dir: tempfile::TempDir,
}

impl Serve {
    /// Starts `tandem serve` with `[server]` (a free loopback port, state in a fresh temporary
    /// directory) followed by `config`, which must set `[telemetry] log_format = "json"`: the
    /// listening address is read from the JSON log.
    pub async fn start(config: &str, env: &[(&str, &str)]) -> Serve {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tandem.toml");
        let server = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\nstate_dir = {:?}\n",
            dir.path().join("state").display().to_string()
        );
        std::fs::write(&path, server + config).unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_tandem"));
        command
            .args(["serve", "--config"])
            .arg(&path)
            .env_remove("TANDEM_CONFIG")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().unwrap();
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&logs);
        std::thread::spawn(move || {
            for line in std::io::BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + PATIENCE;
        let addr = loop {
            let found = logs.lock().unwrap().iter().find_map(|line| {
                let log: Value = serde_json::from_str(line).ok()?;
                (log["fields"]["message"] == "tandem serve listening")
                    .then(|| log["fields"]["addr"].as_str().map(str::to_owned))
                    .flatten()
            });
            if let Some(addr) = found {
                break addr;
            }
            assert!(
                Instant::now() < deadline && child.try_wait().unwrap().is_none(),
                "tandem serve did not start: {:#?}",
                logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        Serve {
            child,
            base: format!("http://{addr}"),
            logs,
            dir,
        }
    }

    /// The directory holding the config and `state/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGTERM, then wait (bounded) for a clean exit.
    pub async fn stop(&mut self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "tandem serve exited with {status}");
                return;
            }
            assert!(Instant::now() < deadline, "tandem serve did not stop");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGKILL: no chance to flush or clean up.
    pub fn kill(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Serve {
    /// Sends `signal` (`TERM`, `HUP`, …) without waiting.
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits (bounded) for the process to exit; its status.
    pub async fn wait_exit(&mut self) -> std::process::ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "tandem serve did not exit: {:#?}",
                self.logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The JSON log lines so far whose message is `message` and that `also` accepts.
    pub fn logged(&self, message: &str, also: impl Fn(&Value) -> bool) -> Vec<Value> {
        self.logs
            .lock()
            .unwrap()
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(|log| log["fields"]["message"] == message && also(log))
            .collect()
    }

    /// Waits (bounded) until a JSON log line with `message` that `also` accepts has been written; the first one.
    pub async fn wait_logged(&self, message: &str, also: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(log) = self.logged(message, &also).into_iter().next() {
                return log;
            }
            assert!(
                Instant::now() < deadline,
                "no log line `{message}`: {:#?}",
                self.logs.lock().unwrap()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Serve {
    /// `tandem serve` with one OpenAI-compatible provider, `tk`, on the test upstream.
    pub async fn with_upstream(upstream: &tandem_testkit::Server) -> Serve {
        Serve::start(
            &format!(
                "[[providers]]\nname = \"tk\"\nkind = \"openai\"\nbase_url = \"http://{}/v1\"\n[telemetry]\nlog_format = \"json\"\n",
                upstream.addr()
            ),
            &[],
        )
        .await
    }
}

/// The test upstream at full speed.
pub async fn upstream() -> tandem_testkit::Server {
    tandem_testkit::spawn(tandem_testkit::Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        tokens_per_sec: 0.0,
        default_tokens: 16,
    })
    .await
    .unwrap()
}

/// Waits (bounded by [`PATIENCE`]) until the test upstream has streamed at least `tokens` tokens.
pub async fn wait_for_tokens(upstream: &tandem_testkit::Server, tokens: u64) {
    let deadline = Instant::now() + PATIENCE;
    while upstream.stats().tokens_sent < tokens {
        assert!(Instant::now() < deadline, "the stream never started");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Runs git in `repo`; its standard output.
pub fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// A new repository on `main`, committing as Ada.
pub fn init_repo(root: &Path) {
    git(root, &["init", "-q", "-b", "main"]);
    git(root, &["config", "user.name", "Ada"]);
    git(root, &["config", "user.email", "ada@example.com"]);
}

/// Commits everything in the work tree as `start`.
pub fn commit_all(root: &Path) {
    git(root, &["add", "."]);
    git(root, &["commit", "-q", "-m", "start"]);
}

/// Percent-encodes everything but unreserved characters (for `scripted?say=…` model strings).
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
