//! The `/ui` dashboard's server side: sign-in with the admin token and the session cookie, the page
//! and its files with a strict content security policy, the dashboard's data from the real ledger,
//! background verification, one entry with its inclusion proof, and every refusal in its shape.

use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Harness, Options};

const ADMIN: &str = "ui-admin-secret";

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn with_admin() -> Harness {
    Harness::with(Options {
        env: vec![("TANDEM_ADMIN_TOKEN", ADMIN)],
        ..Options::default()
    })
    .await
}

/// Signs in through the form; returns the `name=value` of the session cookie.
async fn sign_in(h: &Harness) -> String {
    let resp = no_redirects()
        .post(h.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={ADMIN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/ui");
    let cookie = resp.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(cookie.starts_with("tandem_ui="), "{cookie}");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/ui", "Max-Age=43200"] {
        assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
    }
    assert!(
        !cookie.contains(ADMIN),
        "the cookie must not carry the token"
    );
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn signing_in_serves_the_dashboard_and_its_data() {
    let h = with_admin().await;
    for stream in [false, true] {
        let resp = h
            .post(
                "/v1/chat/completions",
                &json!({"model": "scripted", "stream": stream, "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap();
    }
    h.audit_entries();

    // Not signed in: the sign-in page, and the API refuses.
    let resp = h.client.get(h.url("/ui")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    let page = resp.text().await.unwrap();
    assert!(
        page.contains("name=\"token\"") && !page.contains("/ui/app.js"),
        "{page}"
    );
    let resp = h
        .client
        .get(h.url("/ui/api/dashboard"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign in"),
        "{body}"
    );

    // A wrong token: the sign-in page again, with the error, and no cookie.
    let resp = no_redirects()
        .post(h.url("/ui/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("token=guess")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert!(resp.headers().get("set-cookie").is_none());
    assert!(resp.text().await.unwrap().contains("not the admin token"));

    let cookie = sign_in(&h).await;
    let page = h
        .client
        .get(h.url("/ui"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("/ui/app.js") && !page.contains("<!--tandem:data-->"),
        "{page}"
    );
    for (path, kind) in [
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert!(
            resp.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with(kind)
        );
    }

    // The data: both exchanges, on the tier they went to, and the ledger verified in the background.
    let mut verified = Value::Null;
    for _ in 0..100 {
        let resp = h
            .client
            .get(h.url("/ui/api/dashboard?since=7d"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        let body: Value = resp.json().await.unwrap();
        let all = body["report"]["rows"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["class"] == "all" && r["tier"] == "all")
            .cloned()
            .unwrap();
        assert_eq!(all["requests"], 2, "{body}");
        assert_eq!(body["audit"]["size"], 2);
        assert_eq!(body["audit"]["latest"][0]["kind"], "request");
        assert_eq!(body["audit"]["latest"][0]["index"], 1);
        verified = body["audit"].clone();
        if verified["verified"] == true {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(verified["verified"], true, "{verified}");
    assert_eq!(verified["verified_size"], 2);
}

#[tokio::test]
async fn entries_come_with_their_inclusion_proof() {
    let h = with_admin().await;
    for _ in 0..3 {
        let resp = h
            .post(
                "/v1/chat/completions",
                &json!({"model": "scripted", "messages": [{"role": "user", "content": "hi"}]}),
            )
            .await;
        resp.text().await.unwrap();
    }
    h.audit_entries();
    let get = |path: &str| h.client.get(h.url(path)).bearer_auth(ADMIN).send();
    let resp = get("/ui/api/entry/1").await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["index"], 1);
    assert_eq!(body["entry"]["i"], 1);
    assert_eq!(body["entry"]["kind"], "request");
    assert_eq!(body["inclusion"]["size"], 3);
    assert!(!body["inclusion"]["proof"].as_array().unwrap().is_empty());
    assert!(
        body["inclusion"]["checkpoint"]
            .as_str()
            .unwrap()
            .contains('\n')
    );
    assert_eq!(body["attestation"], Value::Null);

    let resp = get("/ui/api/entry/99").await.unwrap();
    assert_eq!(resp.status(), 404);
    let resp = get("/ui/api/entry/first").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("index:")
    );
    let resp = get("/ui/api/dashboard?since=forever").await.unwrap();
    assert_eq!(resp.status(), 400);
    let body: Value = resp.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("since:")
    );
}

#[tokio::test]
async fn forged_and_expired_sessions_are_refused() {
    let h = with_admin().await;
    let cookie = sign_in(&h).await;
    let (name_expiry, mac) = cookie.rsplit_once('.').unwrap();
    let expiry: i64 = name_expiry
        .trim_start_matches("tandem_ui=")
        .parse()
        .unwrap();
    let forged = [
        format!("{name_expiry}.{}", "0".repeat(mac.len())),
        // A later expiry with the old MAC.
        format!("tandem_ui={}.{mac}", expiry + 1000),
        // Already expired, whatever the MAC.
        format!("tandem_ui=1000.{mac}"),
        "tandem_ui=garbage".to_owned(),
    ];
    for cookie in forged {
        let resp = h
            .client
            .get(h.url("/ui/api/dashboard"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 401, "{cookie}");
    }
    // Signing out clears the cookie.
    let resp = no_redirects()
        .post(h.url("/ui/logout"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 303);
    assert!(
        resp.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[tokio::test]
async fn without_an_admin_token_the_dashboard_is_off() {
    let h = Harness::start().await;
    let resp = h.client.get(h.url("/ui")).send().await.unwrap();
    assert_eq!(resp.status(), 404);
    assert!(resp.text().await.unwrap().contains("TANDEM_ADMIN_TOKEN"));
    let resp = no_redirects()
        .post(h.url("/ui/login"))
        .body("token=anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    let resp = h
        .client
        .get(h.url("/ui/api/dashboard"))
        .bearer_auth("anything")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}
