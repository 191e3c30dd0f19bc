//! The side endpoints (`/healthz`, `/v1/models`, `/testkit/*`), request capture and shutdown.

use serde_json::{Value, json};

use crate::support::{openai_body, post, server, url};

#[tokio::test]
async fn health_models_and_unknown_paths() {
    let server = server().await;
    let client = reqwest::Client::new();
    let response = client.get(url(&server, "/healthz")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let models: Value = client
        .get(url(&server, "/v1/models"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(models["object"], "list");
    assert_eq!(models["data"][0]["id"], "testkit");

    let response = client.get(url(&server, "/nope")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "not_found_error");
    let response = client
        .get(url(&server, "/v1/chat/completions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 405);
}

#[tokio::test]
async fn stats_and_requests_endpoints() {
    let server = server().await;
    post(
        &server,
        "/v1/chat/completions",
        &openai_body("m?tokens=2", true),
    )
    .await
    .text()
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let stats: Value = client
        .get(url(&server, "/testkit/stats"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats,
        json!({"requests": 1, "streams_started": 1, "streams_completed": 1, "streams_cancelled": 0, "tokens_sent": 2})
    );
    let requests: Value = client
        .get(url(&server, "/testkit/requests"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let captured = &requests[0];
    assert_eq!(captured["method"], "POST");
    assert_eq!(captured["path"], "/v1/chat/completions");
    assert_eq!(captured["headers"]["authorization"], "Bearer sk-test");
    assert_eq!(captured["body"], openai_body("m?tokens=2", true));
    assert_eq!(server.requests(), vec![openai_body("m?tokens=2", true)]);
}

#[tokio::test]
async fn captured_requests_are_bounded() {
    let server = server().await;
    for i in 0..260 {
        let mut body = openai_body("m", false);
        body["n"] = json!(i);
        post(&server, "/v1/chat/completions", &body)
            .await
            .bytes()
            .await
            .unwrap();
    }
    let requests = server.requests();
    assert_eq!(requests.len(), 256);
    assert_eq!(requests[0]["n"], 4);
    assert_eq!(requests[255]["n"], 259);
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let server = server().await;
    let addr = server.addr();
    server.shutdown().await;
    let result = reqwest::Client::new()
        .get(format!("http://{addr}/healthz"))
        .send()
        .await;
    assert!(result.is_err());
}

#[tokio::test]
async fn run_serves_until_shutdown() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let config = tandem_testkit::Config {
        listen: addr,
        ..crate::support::config()
    };
    let task = tokio::spawn(tandem_testkit::run(config, async move {
        stopped.await.ok();
    }));
    let client = reqwest::Client::new();
    let mut healthy = false;
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("http://{addr}/healthz")).send().await {
            healthy = response.status() == 200;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(healthy);
    stop.send(()).unwrap();
    task.await.unwrap().unwrap();
}
