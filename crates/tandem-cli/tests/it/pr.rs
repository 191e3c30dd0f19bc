//! `tandem pr`: the description from a tandem branch's commits and trailers, then the branch pushed
//! to a local bare repository and the pull request opened on a Gitea-compatible fake forge.

use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::HeaderMap;
use serde_json::{Value, json};

use crate::support::{git, init_repo};

type Seen = Arc<Mutex<Vec<(String, String, Value)>>>;

async fn fake_forge(seen: Seen) -> String {
    async fn pulls(
        State(seen): State<Seen>,
        uri: axum::http::Uri,
        headers: HeaderMap,
        axum::Json(body): axum::Json<Value>,
    ) -> (axum::http::StatusCode, axum::Json<Value>) {
        let auth = headers["authorization"].to_str().unwrap().to_owned();
        seen.lock()
            .unwrap()
            .push((uri.path().to_owned(), auth, body));
        (
            axum::http::StatusCode::CREATED,
            axum::Json(json!({"number": 7, "html_url": "http://forge.test/acme/tool/pulls/7"})),
        )
    }
    let app = axum::Router::new()
        .route(
            "/api/v1/repos/{owner}/{repo}/pulls",
            axum::routing::post(pulls),
        )
        .route("/repos/{owner}/{repo}/pulls", axum::routing::post(pulls))
        .with_state(seen);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/api/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tandem_branch_becomes_a_pull_request_with_its_provenance() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("work");
    let remote = dir.path().join("remote.git");
    std::fs::create_dir(&root).unwrap();
    git(
        dir.path(),
        &["init", "-q", "--bare", remote.to_str().unwrap()],
    );
    init_repo(&root);
    git(
        &root,
        &["remote", "add", "origin", remote.to_str().unwrap()],
    );
    std::fs::write(root.join("lib.rs"), "41\n").unwrap();
    git(&root, &["add", "."]);
    git(&root, &["commit", "-q", "-m", "start"]);
    git(&root, &["push", "-q", "origin", "main"]);
    git(&root, &["switch", "-q", "-c", "tandem/make-it-42"]);
    std::fs::write(root.join("lib.rs"), "42\n").unwrap();
    git(&root, &["add", "."]);
    git(
        &root,
        &[
            "commit",
            "-q",
            "-m",
            "make it 42\n\nInitiated by Ada with `tandem edit`.\n\nGates:\n- test: passed in 12 ms\n\nAssisted-by: tandem:live/tk/m\nTandem-Task: 0193abc\nTandem-Ledger: 17\n",
        ],
    );
    git(&root, &["switch", "-q", "main"]);
    let tandem = env!("CARGO_BIN_EXE_tandem");

    let printed = Command::new(tandem)
        .args(["pr", "tandem/make-it-42"])
        .current_dir(&root)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&printed.stdout);
    assert!(
        printed.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&printed.stderr)
    );
    assert!(text.starts_with("# make it 42\n"), "{text}");
    assert!(text.contains("- test: passed"), "{text}");
    assert!(
        text.contains("| tandem:live/tk/m | 0193abc | 17 |"),
        "{text}"
    );
    assert!(
        !text.contains("Tandem-Ledger:"),
        "trailers become the table: {text}"
    );

    let seen_all: Seen = Arc::default();
    let api = fake_forge(Arc::clone(&seen_all)).await;
    let opened = tokio::process::Command::new(tandem)
        .args([
            "pr",
            "tandem/make-it-42",
            "--forge",
            "gitea",
            "--repo",
            "acme/tool",
            "--api",
            &api,
        ])
        .env("TANDEM_FORGE_TOKEN", "s3cret")
        .current_dir(&root)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&opened.stdout);
    assert!(
        opened.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    assert!(
        text.contains("opened http://forge.test/acme/tool/pulls/7"),
        "{text}"
    );
    let seen = seen_all.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    let (path, auth, body) = &seen[0];
    assert_eq!(path, "/api/v1/repos/acme/tool/pulls");
    assert_eq!(auth, "token s3cret");
    assert_eq!(body["title"], "make it 42");
    assert_eq!(
        (body["head"].as_str(), body["base"].as_str()),
        (Some("tandem/make-it-42"), Some("main"))
    );
    assert!(body["body"].as_str().unwrap().contains("| 17 |"));
    // The branch was pushed before the pull request was opened.
    assert!(
        !git(&remote, &["rev-parse", "refs/heads/tandem/make-it-42"])
            .trim()
            .is_empty()
    );

    // GitHub's API: no `/api/v1`, a bearer token, owner and name from the remote's URL.
    git(
        &root,
        &[
            "remote",
            "add",
            "github",
            "https://github.com/acme/tool.git",
        ],
    );
    git(
        &root,
        &["config", "remote.github.pushurl", remote.to_str().unwrap()],
    );
    let github = api.trim_end_matches("/api/v1").to_owned();
    let opened = tokio::process::Command::new(tandem)
        .args([
            "pr",
            "tandem/make-it-42",
            "--remote",
            "github",
            "--api",
            &github,
        ])
        .env("TANDEM_FORGE_TOKEN", "ghtoken")
        .current_dir(&root)
        .output()
        .await
        .unwrap();
    assert!(
        opened.status.success(),
        "{}",
        String::from_utf8_lossy(&opened.stderr)
    );
    let (path, auth, _) = seen_all.lock().unwrap().last().cloned().unwrap();
    assert_eq!(path, "/repos/acme/tool/pulls");
    assert_eq!(auth, "Bearer ghtoken");
}
