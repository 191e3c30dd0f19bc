//! `GET /metrics`: the Prometheus exporter (text format 0.0.4), installed once per process, plus budget gauges read from
//! the ledger at scrape time.
//!
//! The pipeline emits its metrics through the `metrics` facade (`tandem_core::metrics`); this module installs the
//! recorder those calls reach and renders it. Open by default, as Prometheus expects; with `[telemetry] metrics_token`
//! set, a scrape needs `Authorization: Bearer <token>`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use secrecy::ExposeSecret;
use tandem_budget::{BudgetRule, RateRule, ScopePattern, UsageRow};

use crate::AppState;

/// The Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// How often histogram samples are folded into buckets when nobody scrapes.
pub(crate) const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Budget use per scope, rule and unit in the current window.
pub const BUDGET_USED: &str = "tandem_budget_used";
/// The limit of a budget or rate limit per scope, rule and unit.
pub const BUDGET_LIMIT: &str = "tandem_budget_limit";

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's Prometheus recorder, installed on first use; `None` when another recorder was installed first.
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let installed = PrometheusBuilder::new()
                .set_buckets_for_metric(
                    Matcher::Suffix("_seconds".to_owned()),
                    tandem_core::metrics::LATENCY_BUCKETS,
                )
                .and_then(PrometheusBuilder::install_recorder);
            match installed {
                Ok(handle) => {
                    tandem_core::metrics::describe();
                    Some(handle)
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot install the Prometheus recorder; /metrics stays empty");
                    None
                }
            }
        })
        .as_ref()
}

/// Budget rules whose use may be exported per scope: team and project scopes, and scopes named exactly in the
/// configuration. Per-user and per-key use (unbounded label values) stays in `/admin/budgets`.
#[derive(Clone, Debug, Default)]
pub(crate) struct Exported {
    exact_rules: HashSet<String>,
}

impl Exported {
    pub(crate) fn new(budgets: &[BudgetRule], limits: &[RateRule]) -> Exported {
        let exact = |name: &str, pattern: &ScopePattern| {
            matches!(pattern, ScopePattern::Exact(_)).then(|| name.to_owned())
        };
        Exported {
            exact_rules: budgets
                .iter()
                .filter_map(|b| exact(&b.name, &b.applies_to))
                .chain(limits.iter().filter_map(|r| exact(&r.name, &r.applies_to)))
                .collect(),
        }
    }

    fn includes(&self, row: &UsageRow) -> bool {
        row.scope.starts_with("team:")
            || row.scope.starts_with("project:")
            || self.exact_rules.contains(&row.rule)
    }
}

/// `GET /metrics`.
pub(crate) async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(token) = &state.metrics_token {
        let given = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !crate::admin::same(given.as_bytes(), token.expose_secret().as_bytes()) {
            let mut response =
                (StatusCode::UNAUTHORIZED, "metrics token missing or wrong\n").into_response();
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }
    let mut text = handle().map(PrometheusHandle::render).unwrap_or_default();
    // The cost is an f64 that only grows: a counter, though the facade only has f64 gauges.
    let cost = tandem_core::metrics::COST;
    text = text.replace(
        &format!("# TYPE {cost} gauge"),
        &format!("# TYPE {cost} counter"),
    );
    let rows = state.core.ledger().usage(crate::governance::now_ms());
    render_budgets(
        &mut text,
        rows.iter().filter(|r| state.exported.includes(r)),
    );
    let mut response = text.into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    response
}

/// Append the budget gauges: use and limit per scope, rule and unit (`tokens`, `usd`, `requests`).
fn render_budgets<'a>(out: &mut String, rows: impl Iterator<Item = &'a UsageRow>) {
    let mut used = String::new();
    let mut limit = String::new();
    for row in rows {
        let minute = row.window == tandem_budget::WindowKind::Minute;
        let sample = |to: &mut String, name: &str, unit: &str, value: f64| {
            let _ = writeln!(
                to,
                "{name}{{scope=\"{}\",rule=\"{}\",unit=\"{unit}\"}} {value}",
                escape(&row.scope),
                escape(&row.rule),
            );
        };
        sample(&mut used, BUDGET_USED, "tokens", row.used_tokens as f64);
        if minute {
            sample(&mut used, BUDGET_USED, "requests", row.requests as f64);
        } else {
            sample(&mut used, BUDGET_USED, "usd", row.used_cost_usd);
        }
        if let Some(max) = row.max_tokens {
            sample(&mut limit, BUDGET_LIMIT, "tokens", max as f64);
        }
        if let Some(max) = row.max_cost_usd {
            sample(&mut limit, BUDGET_LIMIT, "usd", max);
        }
        if let Some(max) = row.max_requests {
            sample(&mut limit, BUDGET_LIMIT, "requests", max as f64);
        }
    }
    if !used.is_empty() {
        let _ = writeln!(
            out,
            "# HELP {BUDGET_USED} Settled use of a budget (day or month) or rate limit (sliding minute) per scope."
        );
        let _ = writeln!(out, "# TYPE {BUDGET_USED} gauge");
        out.push_str(&used);
    }
    if !limit.is_empty() {
        let _ = writeln!(
            out,
            "# HELP {BUDGET_LIMIT} The configured limit of a budget or rate limit per scope."
        );
        let _ = writeln!(out, "# TYPE {BUDGET_LIMIT} gauge");
        out.push_str(&limit);
    }
}

/// Escape a label value for the text format.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
