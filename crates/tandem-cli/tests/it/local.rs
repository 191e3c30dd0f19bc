//! `tandem serve` answering from a local model in-process (SmolLM2-135M, installed by `tandem models install
//! smollm2-135m`; `cargo xtask ci` installs it and sets TANDEM_MODELS_DIR), through each client API, and on
//! the embedded default with no upstream, no key and no config file.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::{PATIENCE, Serve};

fn models_dir() -> String {
    let env = |k: &str| std::env::var(k).ok();
    let dir = tandem_local::catalog::models_dir(&env);
    assert!(
        dir.join("smollm2-135m.gguf").is_file(),
        "the test model is not installed in {}: run `cargo run --bin tandem -- models install smollm2-135m` \
         (`cargo xtask ci` does), or set TANDEM_MODELS_DIR",
        dir.display()
    );
    dir.display().to_string()
}

async fn post(base: &str, path: &str, body: Value) -> (u16, reqwest::header::HeaderMap, String) {
    let response = reqwest::Client::new()
        .post(format!("{base}{path}"))
        .header("x-api-key", "unused")
        .json(&body)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn serve_answers_from_a_local_model_through_every_api() {
    let models = models_dir();
    let mut serve = Serve::start(
        "[[providers]]\nname = \"edge\"\nkind = \"local\"\nmodel = \"smollm2-135m\"\nthreads = 2\ncontext_tokens = 2048\n\
         [telemetry]\nlog_format = \"json\"\n",
        &[("TANDEM_MODELS_DIR", &models)],
    )
    .await;
    let base = serve.base.clone();

    let (status, headers, body) = post(
        &base,
        "/v1/chat/completions",
        json!({"model": "edge/smollm2", "max_tokens": 24,
               "messages": [{"role": "user", "content": "Write a haiku about Rust."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tandem-target"], "edge/smollm2");
    let answer: Value = serde_json::from_str(&body).unwrap();
    assert!(
        !answer["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .is_empty(),
        "{answer}"
    );
    assert!(
        answer["usage"]["prompt_tokens"].as_u64().unwrap() > 5,
        "{answer}"
    );
    assert!(
        answer["usage"]["completion_tokens"].as_u64().unwrap() <= 24,
        "{answer}"
    );

    // Responses, streamed: Codex CLI's shape, ending with its usage in response.completed, or in
    // response.incomplete when the token limit cut the answer.
    let (status, _, body) = post(
        &base,
        "/v1/responses",
        json!({"model": "edge/smollm2", "stream": true, "max_output_tokens": 16,
               "input": [{"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Say hello."}]}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("response.output_text.delta"), "{body}");
    let completed = body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .find(|e| {
            e["type"] == "response.completed"
                || (e["type"] == "response.incomplete"
                    && e["response"]["incomplete_details"]["reason"] == "max_output_tokens")
        })
        .unwrap_or_else(|| panic!("no response.completed: {body}"));
    assert!(
        completed["response"]["usage"]["output_tokens"]
            .as_u64()
            .unwrap()
            > 0
    );

    // Anthropic Messages.
    let (status, _, body) = post(
        &base,
        "/v1/messages",
        json!({"model": "edge/smollm2", "max_tokens": 16,
               "messages": [{"role": "user", "content": "Name a colour."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let message: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(message["content"][0]["type"], "text", "{message}");

    // A prompt larger than the context window is the client's error, in the API's own shape.
    let (status, _, body) = post(
        &base,
        "/v1/chat/completions",
        json!({"model": "edge/smollm2", "messages": [{"role": "user", "content": "word ".repeat(4000)}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let error: Value = serde_json::from_str(&body).unwrap();
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("context"),
        "{error}"
    );
    serve.stop().await;
}

#[tokio::test]
async fn the_embedded_default_answers_with_no_upstream_and_no_config() {
    let models = models_dir();
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tandem"))
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .current_dir(dir.path())
        .env_remove("TANDEM_CONFIG")
        .env_remove("TANDEM_UPSTREAM_URL")
        .env_remove("TANDEM_UPSTREAM_API_KEY")
        .env("TANDEM_LOCAL_MODEL", "smollm2-135m")
        .env("TANDEM_MODELS_DIR", &models)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await
            && r.status().is_success()
        {
            break;
        }
        assert!(
            Instant::now() < deadline && child.try_wait().unwrap().is_none(),
            "tandem serve did not start"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, headers, body) = post(
        &base,
        "/v1/chat/completions",
        json!({"model": "tandem-live", "max_tokens": 12, "stream": true,
               "messages": [{"role": "user", "content": "Say hi."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(headers["x-tandem-tier"], "live");
    assert!(body.trim_end().ends_with("data: [DONE]"), "{body}");
    assert!(body.contains("\"content\":"), "{body}");
    let _ = child.kill();
    let _ = child.wait();
}
