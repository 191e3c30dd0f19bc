//! The OpenAPI document (`openapi.json`, served at `/openapi.json`) stays true to the router and the decoders.
//!
//! The router cannot list its routes, so [`ROUTES`] lists them once and is checked both ways: against the
//! document's operations and against the `.route(` calls in `lib.rs`. The top-level request fields the
//! decoders accept (read from serde's "expected one of" message) must be the document's properties.
//! `tests/clients/test_openapi.py` fuzzes the running server against the same document with schemathesis.

use std::collections::BTreeSet;

use pretty_assertions::assert_eq;
use serde_json::Value;

use crate::support::{Harness, Options};

/// Every (method, path) that `tandem_gateway::app` serves.
const ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/chat/completions"),
    ("POST", "/v1/responses"),
    ("POST", "/v1/messages"),
    ("GET", "/v1/models"),
    ("POST", "/v1/tandem/changes"),
    ("GET", "/healthz"),
    ("GET", "/readyz"),
    ("GET", "/metrics"),
    ("GET", "/openapi.json"),
    ("GET", "/admin/keys"),
    ("POST", "/admin/keys"),
    ("DELETE", "/admin/keys/{id}"),
    ("GET", "/admin/budgets"),
    ("GET", "/admin/policy"),
    ("PUT", "/admin/policy"),
    ("GET", "/ui"),
    ("POST", "/ui/login"),
    ("POST", "/ui/logout"),
    ("GET", "/ui/app.js"),
    ("GET", "/ui/app.css"),
    ("GET", "/ui/api/dashboard"),
    ("GET", "/ui/api/entry/{index}"),
];

const METHODS: &[&str] = &[
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

fn document() -> Value {
    serde_json::from_str(tandem_gateway::OPENAPI).expect("openapi.json is JSON")
}

fn routes() -> BTreeSet<(String, String)> {
    ROUTES
        .iter()
        .map(|(method, path)| ((*method).to_owned(), (*path).to_owned()))
        .collect()
}

/// The (method, path) of every operation in the document.
fn operations(doc: &Value) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("path item").keys() {
            assert!(METHODS.contains(&method.as_str()), "{path}: `{method}`");
            found.insert((method.to_uppercase(), path.clone()));
        }
    }
    found
}

/// The (method, path) of every `.route(` call in `lib.rs`: the path is its first string literal, the methods
/// are the `get(`, `post(`, ... method routers inside it.
fn routes_in_source(source: &str) -> BTreeSet<(String, String)> {
    let mut found = BTreeSet::new();
    for (start, _) in source.match_indices(".route(") {
        let call = balanced(&source[start + ".route".len()..]);
        let path = call.split('"').nth(1).expect("a route path literal");
        let mut methods = 0;
        for method in METHODS {
            let needle = format!("{method}(");
            for (at, _) in call.match_indices(&needle) {
                let before = call[..at].chars().next_back().unwrap_or(' ');
                if !(before.is_alphanumeric() || before == '_') {
                    found.insert((method.to_uppercase(), path.to_owned()));
                    methods += 1;
                }
            }
        }
        assert!(methods > 0, "no method router in `.route{call}`");
    }
    found
}

/// The parenthesised text at the start of `text`, parentheses included.
fn balanced(text: &str) -> &str {
    let mut depth = 0;
    for (i, c) in text.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &text[..=i];
                }
            }
            _ => {}
        }
    }
    panic!("unbalanced parentheses in {text}");
}

#[test]
fn document_has_exactly_the_routes_of_the_router() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(operations(&doc), routes());
}

#[test]
fn route_list_matches_the_router_source() {
    let source = include_str!("../../src/lib.rs");
    let app = source
        .split("pub fn app(")
        .nth(1)
        .expect("lib.rs defines `app`");
    for hidden in [".nest(", ".merge(", ".route_service(", ".nest_service("] {
        assert!(
            !app.contains(hidden),
            "`app` uses `{hidden}`: teach this test to read it"
        );
    }
    assert_eq!(routes_in_source(source), routes());
}

#[test]
fn every_reference_resolves() {
    fn walk(value: &Value, doc: &Value, at: &str) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    let pointer = target
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("{at}: external $ref {target}"));
                    assert!(doc.pointer(pointer).is_some(), "{at}: dangling {target}");
                }
                for (key, inner) in map {
                    walk(inner, doc, &format!("{at}/{key}"));
                }
            }
            Value::Array(items) => {
                for (i, inner) in items.iter().enumerate() {
                    walk(inner, doc, &format!("{at}/{i}"));
                }
            }
            _ => {}
        }
    }
    let doc = document();
    walk(&doc, &doc, "#");
}

#[test]
fn authenticated_operations_document_401_and_every_operation_an_answer() {
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                // A success, or a redirect for the dashboard's sign-in form.
                responses
                    .keys()
                    .any(|status| status.starts_with('2') || status == "303"),
                "{method} {path} documents no success"
            );
            let security = operation["security"]
                .as_array()
                .unwrap_or_else(|| panic!("{method} {path} states no security"));
            let required = !security.is_empty()
                && security
                    .iter()
                    .all(|alternative| !alternative.as_object().unwrap().is_empty());
            if required {
                assert!(responses.contains_key("401"), "{method} {path} lacks 401");
            }
        }
    }
}

/// The top-level fields a strict decoder accepts, from serde's `unknown field ..., expected one of ...` message.
fn accepted_fields(message: &str) -> BTreeSet<String> {
    let (_, list) = message
        .split_once("expected one of ")
        .unwrap_or_else(|| panic!("not an unknown-field message: {message}"));
    list.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_owned)
        .collect()
}

/// The documented properties of a request body schema.
fn documented_fields(doc: &Value, schema: &str) -> BTreeSet<String> {
    let body = &doc["components"]["schemas"][schema];
    assert_eq!(
        body["additionalProperties"], false,
        "{schema} must refuse unknown fields, as its decoder does"
    );
    body["properties"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

#[test]
fn request_schemas_list_exactly_the_fields_the_decoders_accept() {
    let doc = document();
    let unknown = br#"{"not_a_field": 1}"#;
    let cases = [
        (
            "ChatCompletionRequest",
            tandem_translate::openai_chat::decode_request(unknown),
        ),
        (
            "ResponsesRequest",
            tandem_translate::openai_responses::decode_request(unknown),
        ),
        (
            "AnthropicMessagesRequest",
            tandem_translate::anthropic::decode_request(unknown),
        ),
    ];
    for (schema, decoded) in cases {
        let err = decoded.expect_err("an unknown field is refused");
        assert_eq!(
            documented_fields(&doc, schema),
            accepted_fields(&err.to_string()),
            "{schema}"
        );
    }
}

#[tokio::test]
async fn openapi_json_is_served_without_credentials() {
    let h = Harness::with(Options {
        extra_toml: "[auth]\nanonymous = false\n".to_owned(),
        env: vec![("TANDEM_ADMIN_TOKEN", "admin-secret")],
        ..Options::default()
    })
    .await;
    let resp = h.client.get(h.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    assert_eq!(resp.text().await.unwrap(), tandem_gateway::OPENAPI);

    // The new-key body is strict too, and its schema lists its fields.
    let resp = h
        .client
        .post(h.url("/admin/keys"))
        .bearer_auth("admin-secret")
        .body(r#"{"user": "u", "not_a_field": 1}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert_eq!(
        documented_fields(&document(), "NewKey"),
        accepted_fields(message)
    );
}

/// Regression: the admin API and `/v1/tandem/changes` read their bodies under `server.max_body_bytes` and refuse
/// a larger one with a documented 413 in OpenAI's error shape (they used axum's own 2 MB limit and answered in
/// plain text).
#[tokio::test]
async fn bodies_over_the_limit_are_413_in_the_documented_shape_on_every_route() {
    let h = Harness::with(Options {
        max_body_bytes: Some(1024),
        env: vec![("TANDEM_ADMIN_TOKEN", "admin-secret")],
        ..Options::default()
    })
    .await;
    let big = format!(r#"{{"user": "{}"}}"#, "x".repeat(4096));
    for (method, path) in [
        ("POST", "/admin/keys"),
        ("PUT", "/admin/policy"),
        ("POST", "/v1/tandem/changes"),
        ("POST", "/v1/chat/completions"),
    ] {
        let mut request = h
            .client
            .request(method.parse().unwrap(), h.url(path))
            .body(big.clone());
        if path.starts_with("/admin/") {
            request = request.bearer_auth("admin-secret");
        }
        let resp = request.send().await.unwrap();
        assert_eq!(resp.status(), 413, "{method} {path}");
        assert_eq!(resp.headers()["content-type"], "application/json");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(
            body["error"]["code"], "request_too_large",
            "{method} {path}"
        );
    }
}

#[tokio::test]
async fn undocumented_methods_are_405_allowing_the_documented_ones() {
    let h = Harness::start().await;
    let doc = document();
    for (path, item) in doc["paths"].as_object().unwrap() {
        let documented: BTreeSet<String> = item
            .as_object()
            .unwrap()
            .keys()
            .map(|method| method.to_uppercase())
            .collect();
        let url = h.url(&path.replace("{id}", "some-id"));
        for method in ["GET", "POST", "PUT", "DELETE", "PATCH"] {
            if documented.contains(method) {
                continue;
            }
            let resp = h
                .client
                .request(method.parse().unwrap(), &url)
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 405, "{method} {path}");
            let allow: BTreeSet<String> = resp.headers()["allow"]
                .to_str()
                .unwrap()
                .split(',')
                .map(|method| method.trim().to_owned())
                .filter(|method| method != "HEAD")
                .collect();
            assert_eq!(allow, documented, "{method} {path}");
        }
    }
}
