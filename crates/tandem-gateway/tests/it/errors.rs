//! Bad input and failing upstreams: every error is in the client API's own shape, and recorded.

use pretty_assertions::assert_eq;
use serde_json::{Value, json};
use tandem_store::Outcome;

use crate::support::{Harness, Options};

async fn status_and_body(h: &Harness, path: &str, body: &[u8]) -> (u16, Value) {
    let resp = h
        .client
        .post(h.url(path))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

#[tokio::test]
async fn malformed_and_unknown_fields_are_400_naming_the_field() {
    let h = Harness::start().await;
    let cases: [(&str, &[u8], &str); 6] = [
        ("/v1/chat/completions", b"{\"model\":", "EOF"),
        (
            "/v1/chat/completions",
            br#"{"model":"m","messages":[],"temprature":1}"#,
            "temprature",
        ),
        (
            "/v1/chat/completions",
            br#"{"model":"m","messages":[{"role":"user","content":5}]}"#,
            "messages[0]",
        ),
        (
            "/v1/responses",
            br#"{"model":"m","input":"x","foo":1}"#,
            "foo",
        ),
        (
            "/v1/responses",
            br#"{"model":"m","input":"x","previous_response_id":"r"}"#,
            "previous_response_id",
        ),
        (
            "/v1/messages",
            br#"{"model":"m","messages":[]}"#,
            "max_tokens",
        ),
    ];
    for (path, body, needle) in cases {
        let (status, v) = status_and_body(&h, path, body).await;
        assert_eq!(status, 400, "{path} {v}");
        let message = if path == "/v1/messages" {
            assert_eq!(v["type"], "error");
            assert_eq!(v["error"]["type"], "invalid_request_error");
            v["error"]["message"].as_str().unwrap().to_owned()
        } else {
            assert_eq!(v["error"]["type"], "invalid_request_error");
            v["error"]["message"].as_str().unwrap().to_owned()
        };
        assert!(
            message.contains(needle),
            "{message:?} should name {needle:?}"
        );
    }
    let records = h.records();
    assert_eq!(records.len(), 6);
    assert!(
        records
            .iter()
            .all(|r| r.outcome == Outcome::Error && r.status == 400)
    );
}

#[tokio::test]
async fn oversized_body_is_413_with_or_without_content_length() {
    let h = Harness::with(Options {
        max_body_bytes: Some(1024),
        ..Options::default()
    })
    .await;
    let big = json!({"model": "tk/scripted", "messages": [{"role": "user", "content": "x".repeat(4096)}]});
    let (status, v) = status_and_body(&h, "/v1/chat/completions", big.to_string().as_bytes()).await;
    assert_eq!(status, 413);
    assert_eq!(v["error"]["code"], "request_too_large");
    // Chunked body without Content-Length.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        vec![Ok(vec![b' '; 800]), Ok(vec![b' '; 800])];
    let resp = h
        .client
        .post(h.url("/v1/messages"))
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["type"], "request_too_large");
}

#[tokio::test]
async fn upstream_status_errors_map_to_gateway_errors() {
    let h = Harness::start().await;
    for (model, expect) in [
        ("tk/x?status=500", 502),
        ("tka/x?status=503", 502),
        ("tk/x?status=400", 400),
    ] {
        for stream in [false, true] {
            let resp = h
                .post(
                    "/v1/chat/completions",
                    &json!({"model": model, "stream": stream,
                    "messages": [{"role": "user", "content": "hi"}]}),
                )
                .await;
            assert_eq!(resp.status().as_u16(), expect, "{model} stream={stream}");
            let v: Value = resp.json().await.unwrap();
            assert!(
                v["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains("returned HTTP"),
                "{v}"
            );
        }
    }
}

#[tokio::test]
async fn unreachable_upstream_is_502_and_slow_one_504() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", closed.local_addr().unwrap());
    drop(closed);
    let h = Harness::with(Options {
        upstream_url: Some(url),
        ..Options::default()
    })
    .await;
    let resp = h
        .post("/v1/responses", &json!({"model": "tk/m", "input": "hi"}))
        .await;
    assert_eq!(resp.status(), 502);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{v}"
    );

    let h = Harness::with(Options {
        provider_extra: "first_byte_timeout_ms = 200",
        ..Options::default()
    })
    .await;
    let resp = h
        .post(
            "/v1/messages",
            &json!({"model": "tk/x?delay_ms=2000", "max_tokens": 10,
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(resp.status(), 504);
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["type"], "error");
    let records = h.records();
    assert_eq!(
        (records[0].status, records[0].outcome),
        (504, Outcome::Error)
    );
}

#[tokio::test]
async fn unknown_route_is_json_404() {
    let h = Harness::start().await;
    let resp = h.client.get(h.url("/v2/nothing")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    let v: Value = resp.json().await.unwrap();
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("/v2/nothing")
    );
}
