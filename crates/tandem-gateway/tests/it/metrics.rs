//! `GET /metrics`: counters, token totals, latency histograms, upstream errors and budget gauges move with real
//! exchanges, unknown models fold into `other`, and the scrape token is enforced.
//!
//! The recorder is global to the test process, so this test uses a tier and a provider of its own (`obs`) and
//! compares scrapes before and after.

use std::collections::BTreeMap;

use serde_json::json;

use crate::support::{Harness, Options};

const TOKEN: &str = "scrape-secret";
const MODEL: &str = "scripted?tokens=5";

fn options() -> Options {
    Options {
        extra_toml: format!(
            r#"
[[providers]]
name = "obs"
kind = "openai"
base_url = "{{url}}"
[tiers.obs]
aliases = ["tandem-obs"]
[[tiers.obs.targets]]
provider = "obs"
model = "{MODEL}"
[telemetry]
metrics_token = "{TOKEN}"
[[budgets]]
name = "team-daily"
applies_to = "team:*"
period = "day"
max_tokens = 1000000
[[budgets]]
name = "user-daily"
applies_to = "user:*"
period = "day"
max_tokens = 2000000
[prices."obs/*"]
input_per_mtok = 1.0
output_per_mtok = 2.0
"#
        ),
        ..Options::default()
    }
}

/// A parsed scrape: samples by metric name, each with its labels.
struct Scrape {
    text: String,
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Scrape {
    fn parse(text: String) -> Scrape {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').unwrap();
            let value: f64 = value.parse().unwrap();
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (name, rest.strip_suffix('}').unwrap()),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once("=\"").unwrap();
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            samples.push((name.to_owned(), labels, value));
        }
        Scrape { text, samples }
    }

    /// The samples of `name` whose labels include `labels`.
    fn matching<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(&str, &str)],
    ) -> impl Iterator<Item = f64> + 'a {
        self.samples
            .iter()
            .filter(move |(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| *v)
    }

    /// The sum of the samples of `name` whose labels include `labels`.
    fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.matching(name, labels).sum()
    }

    /// The value of the one sample of `name` whose labels include `labels`; 0 when there is none.
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        let found: Vec<f64> = self.matching(name, labels).collect();
        assert!(
            found.len() <= 1,
            "{name} {labels:?} matches {} samples",
            found.len()
        );
        found.first().copied().unwrap_or(0.0)
    }
}

async fn scrape(h: &Harness) -> Scrape {
    let resp = h
        .client
        .get(h.url("/metrics"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    Scrape::parse(resp.text().await.unwrap())
}

#[tokio::test]
async fn scrape_follows_requests_tokens_latency_errors_and_budgets() {
    let h = Harness::with(options()).await;
    let (_, key) =
        tandem_gateway::admin::create(h.state().store(), "alice", Some("payments"), None, None)
            .unwrap();
    let auth = format!("Bearer {key}");
    let ok = [
        ("api", "chat"),
        ("tier", "obs"),
        ("provider", "obs"),
        ("model", MODEL),
        ("outcome", "ok"),
        ("status", "200"),
    ];
    let latency = [("api", "chat"), ("tier", "obs"), ("model", MODEL)];
    let tokens = |direction| [("direction", direction), ("tier", "obs"), ("model", MODEL)];
    let before = scrape(&h).await;

    let body = json!({"model": "tandem-obs", "messages": [{"role": "user", "content": "hi"}]});
    let resp = h
        .post_with("/v1/chat/completions", &body, &[("authorization", &auth)])
        .await;
    assert_eq!(resp.status(), 200);
    let answer: serde_json::Value = resp.json().await.unwrap();
    let input = answer["usage"]["prompt_tokens"].as_u64().unwrap() as f64;
    let output = answer["usage"]["completion_tokens"].as_u64().unwrap() as f64;
    assert_eq!(output, 5.0);

    let mid = scrape(&h).await;
    assert_eq!(
        mid.get("tandem_requests_total", &ok) - before.get("tandem_requests_total", &ok),
        1.0
    );
    let duration = "tandem_request_duration_seconds_count";
    let ttft = "tandem_time_to_first_token_seconds_count";
    assert_eq!(
        mid.get(duration, &latency) - before.get(duration, &latency),
        1.0
    );
    assert_eq!(
        mid.get(ttft, &latency) - before.get(ttft, &latency),
        0.0,
        "a non-streamed answer has no first token"
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    streamed["stream_options"] = json!({"include_usage": true});
    let resp = h
        .post_with(
            "/v1/chat/completions",
            &streamed,
            &[("authorization", &auth)],
        )
        .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");

    // A model no tier or alias names is counted as `other`; an upstream failure is counted per provider and kind.
    let direct =
        json!({"model": "obs/scripted?tokens=2", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(h.post("/v1/chat/completions", &direct).await.status(), 200);
    let failing = json!({"model": "obs/scripted?status=503", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(h.post("/v1/chat/completions", &failing).await.status(), 502);

    let after = scrape(&h).await;
    let delta =
        |name: &str, labels: &[(&str, &str)]| after.get(name, labels) - before.get(name, labels);
    assert_eq!(delta("tandem_requests_total", &ok), 2.0);
    assert_eq!(delta("tandem_tokens_total", &tokens("input")), 2.0 * input);
    assert_eq!(
        delta("tandem_tokens_total", &tokens("output")),
        2.0 * output
    );
    assert_eq!(delta(duration, &latency), 2.0);
    assert_eq!(
        delta(ttft, &latency),
        1.0,
        "the streamed answer's first token"
    );
    assert!(
        after.get(
            "tandem_time_to_first_token_seconds_bucket",
            &[latency[0], latency[1], latency[2], ("le", "+Inf")]
        ) >= 1.0
    );
    let cost = delta(
        "tandem_cost_usd_total",
        &[("tier", "obs"), ("model", MODEL)],
    );
    let expected = 2.0 * (input * 1.0 + output * 2.0) / 1e6;
    assert!(
        (cost - expected).abs() < 1e-12,
        "cost {cost}, expected {expected}"
    );
    assert!(
        after.text.contains("# TYPE tandem_cost_usd_total counter"),
        "{}",
        after.text
    );

    let other = [
        ("tier", ""),
        ("provider", "obs"),
        ("model", "other"),
        ("outcome", "ok"),
    ];
    assert_eq!(delta("tandem_requests_total", &other), 1.0);
    assert!(
        !after.text.contains("scripted?tokens=2"),
        "an unconfigured model never becomes a label"
    );
    assert_eq!(
        delta(
            "tandem_upstream_errors_total",
            &[("provider", "obs"), ("kind", "http_5xx")]
        ),
        1.0
    );
    // A request no upstream answered has no tier, provider or model label; the registry is the process's, so
    // other tests' 502s may land in the same series or, in a different API's, beside it: sum them.
    let failed = [("api", "chat"), ("outcome", "error"), ("status", "502")];
    let failed_delta =
        after.sum("tandem_requests_total", &failed) - before.sum("tandem_requests_total", &failed);
    assert!(failed_delta >= 1.0, "{}", after.text);

    // Budget use per team, read from the ledger at scrape time; per-user budgets are not exported.
    let team = [("scope", "team:payments"), ("rule", "team-daily")];
    let used = after.get(
        "tandem_budget_used",
        &[team[0], team[1], ("unit", "tokens")],
    );
    assert_eq!(used, 2.0 * (input + output));
    assert_eq!(
        after.get(
            "tandem_budget_limit",
            &[team[0], team[1], ("unit", "tokens")]
        ),
        1_000_000.0
    );
    assert!(after.get("tandem_budget_used", &[team[0], team[1], ("unit", "usd")]) > 0.0);
    assert!(!after.text.contains("user-daily"), "{}", after.text);
    assert!(!after.text.contains("user:alice"), "{}", after.text);
}

#[tokio::test]
async fn scrape_token_is_required_when_configured() {
    let h = Harness::with(options()).await;
    let get = |token: Option<&str>| {
        let mut request = h.client.get(h.url("/metrics"));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some("wrong")).await.unwrap().status(), 401);
    assert_eq!(get(Some(TOKEN)).await.unwrap().status(), 200);

    let open = Harness::start().await;
    let resp = open.client.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200, "open by default, as Prometheus expects");
}
