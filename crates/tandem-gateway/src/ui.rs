//! The web dashboard at `/ui`: the report's figures over time, the routing mix, budget use, the
//! newest audit entries with their provenance, and whether the ledger verifies.
//!
//! Behind the admin token: `POST /ui/login` with the token sets a session cookie (HttpOnly,
//! SameSite=Strict, 12 hours), which is the token's keyed BLAKE3 MAC of its expiry time, so every
//! replica with the same token accepts it and nothing is stored. The API under `/ui/api` also takes
//! the token as `Authorization: Bearer`, like `/admin`. The page's files are compiled in
//! (`tandem_report::ui`) and served with a strict content security policy; nothing comes from
//! elsewhere at run time.
//!
//! The figures are computed on request from the ledger (a consistent copy when it is in PostgreSQL)
//! and the `[report]` repositories, off the async runtime; the last report is shown again for a
//! minute while the ledger has not grown. `verify` runs in the background whenever
//! the ledger has grown and the last check is a minute old; the page shows the last result.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde_json::json;
use tandem_audit::{Entry, Reader, Sealed};
use tandem_protocol::ErrorKind;
use tandem_report::{AuditStatus, BudgetUse, Dashboard, EntryRow};

use crate::AppState;
use crate::admin::{error, same};
use crate::governance::now_ms;

const COOKIE: &str = "tandem_ui";
const SESSION_MS: i64 = 12 * 60 * 60 * 1000;
/// How old a verification may be before the next dashboard load starts another.
const VERIFY_EVERY_MS: i64 = 60_000;
/// Newest entries shown.
const LATEST: usize = 25;
/// Longest period the dashboard accepts, in days.
const MAX_DAYS: i64 = 3660;

const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The last ledger verification, shared by every state of the process.
#[derive(Debug, Default)]
pub(crate) struct Cache {
    verified: Mutex<Verified>,
    running: AtomicBool,
    /// The last report: its period, the ledger size it read, when it was computed, and itself.
    report: Mutex<Option<(String, u64, i64, tandem_report::Report)>>,
}

/// How long a computed report is shown again for the same period while the ledger has not grown
/// (the page refreshes every minute; blaming the repositories is the slow part).
const REPORT_FOR_MS: i64 = 60_000;

#[derive(Clone, Debug, Default)]
struct Verified {
    ok: Option<bool>,
    size: u64,
    at_ms: Option<i64>,
    message: String,
}

fn session_mac(token: &str, expires_ms: i64) -> String {
    let key = blake3::derive_key("tandem ui session v1", token.as_bytes());
    blake3::keyed_hash(&key, expires_ms.to_string().as_bytes())
        .to_hex()
        .to_string()
}

/// Whether the request carries the admin token or a live session cookie made with it.
fn signed_in(state: &AppState, headers: &HeaderMap) -> bool {
    let Some(token) = &state.admin_token else {
        return false;
    };
    let token = token.expose_secret();
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if bearer.is_some_and(|given| same(given.as_bytes(), token.as_bytes())) {
        return true;
    }
    let now = now_ms();
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().strip_prefix("tandem_ui="))
        .any(|value| {
            let Some((expires, mac)) = value.split_once('.') else {
                return false;
            };
            let Ok(expires) = expires.parse::<i64>() else {
                return false;
            };
            expires > now
                && expires <= now.saturating_add(SESSION_MS)
                && same(mac.as_bytes(), session_mac(token, expires).as_bytes())
        })
}

fn html(status: StatusCode, body: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}

fn disabled() -> Response {
    html(
        StatusCode::NOT_FOUND,
        tandem_report::ui::login_page(Some(
            "The dashboard is disabled: set the admin token variable (default TANDEM_ADMIN_TOKEN) and restart.",
        )),
    )
}

/// `GET /ui`: the dashboard, or the sign-in page.
pub(crate) async fn page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if state.admin_token.is_none() {
        return disabled();
    }
    if signed_in(&state, &headers) {
        html(StatusCode::OK, tandem_report::ui::served_page())
    } else {
        html(StatusCode::OK, tandem_report::ui::login_page(None))
    }
}

/// `POST /ui/login`: a form with the admin token; sets the session cookie.
pub(crate) async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let Some(token) = &state.admin_token else {
        return disabled();
    };
    let body = match crate::handler::read_body(body, &headers, 8 * 1024).await {
        Ok(body) => body,
        Err((kind, message)) => {
            let status =
                StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::BAD_REQUEST);
            return html(status, tandem_report::ui::login_page(Some(&message)));
        }
    };
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let given = form.get("token").map_or("", String::as_str);
    if given.is_empty() || !same(given.as_bytes(), token.expose_secret().as_bytes()) {
        return html(
            StatusCode::UNAUTHORIZED,
            tandem_report::ui::login_page(Some("That is not the admin token.")),
        );
    }
    let expires = now_ms().saturating_add(SESSION_MS);
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    let cookie = format!(
        "{COOKIE}={expires}.{}; Path=/ui; HttpOnly; SameSite=Strict; Max-Age={}{}",
        session_mac(token.expose_secret(), expires),
        SESSION_MS / 1000,
        if secure { "; Secure" } else { "" }
    );
    redirect(&cookie)
}

/// `POST /ui/logout`: clears the session cookie.
pub(crate) async fn logout() -> Response {
    redirect(&format!(
        "{COOKIE}=; Path=/ui; HttpOnly; SameSite=Strict; Max-Age=0"
    ))
}

fn redirect(cookie: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, HeaderValue::from_static("/ui"));
    if let Ok(value) = HeaderValue::from_str(cookie) {
        headers.insert(header::SET_COOKIE, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /ui/app.js`.
pub(crate) async fn script() -> Response {
    asset("text/javascript; charset=utf-8", tandem_report::ui::APP_JS)
}

/// `GET /ui/app.css`.
pub(crate) async fn styles() -> Response {
    asset("text/css; charset=utf-8", tandem_report::ui::APP_CSS)
}

fn unauthorized(state: &AppState) -> Response {
    if state.admin_token.is_none() {
        return error(
            ErrorKind::NotFound,
            "the dashboard is disabled: set the admin token variable (default TANDEM_ADMIN_TOKEN)",
        );
    }
    error(
        ErrorKind::Unauthorized,
        "sign in at /ui, or send the admin token as a bearer token",
    )
}

/// `30d`, `12w`, `48h` as milliseconds.
fn period_ms(text: &str) -> Option<i64> {
    let unit = text.chars().last()?;
    let digits = &text[..text.len() - unit.len_utf8()];
    let n: i64 = digits.parse().ok().filter(|n| *n > 0)?;
    let hours = match unit {
        'h' => n,
        'd' => n.checked_mul(24)?,
        'w' => n.checked_mul(24 * 7)?,
        _ => return None,
    };
    (hours <= MAX_DAYS * 24).then_some(hours * 3_600_000)
}

/// A ledger opened for reading, with the copy it reads when the ledger is in PostgreSQL.
struct Opened {
    reader: Option<Reader>,
    _copy: Option<tempfile::TempDir>,
}

fn open_ledger(state: &AppState) -> Result<Opened, String> {
    let config = &state.config;
    if !config.audit.enabled {
        return Ok(Opened {
            reader: None,
            _copy: None,
        });
    }
    if let Some(url) = &config.storage.postgres_url {
        let copy = tempfile::tempdir().map_err(|e| format!("creating a directory: {e}"))?;
        tandem_audit::snapshot_postgres(url.expose_secret(), copy.path())
            .map_err(|e| format!("copying the audit ledger: {e}"))?;
        let reader = Reader::open(copy.path()).map_err(|e| e.to_string())?;
        return Ok(Opened {
            reader: Some(reader),
            _copy: Some(copy),
        });
    }
    if !config.audit.dir.join("ledger.db").exists() {
        return Ok(Opened {
            reader: None,
            _copy: None,
        });
    }
    let reader = Reader::open(&config.audit.dir).map_err(|e| e.to_string())?;
    Ok(Opened {
        reader: Some(reader),
        _copy: None,
    })
}

/// `GET /ui/api/dashboard?since=30d`.
pub(crate) async fn dashboard(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if !signed_in(&state, &headers) {
        return unauthorized(&state);
    }
    let since = query.get("since").map_or("30d", String::as_str);
    let Some(period) = period_ms(since) else {
        return error(
            ErrorKind::BadRequest,
            &format!(
                "since: `{since}` is not a period such as 30d, 12w or 48h (at most {MAX_DAYS} days)"
            ),
        );
    };
    let now = now_ms();
    let params = tandem_report::Params {
        since_ms: now - period,
        now_ms: now,
    };
    let worker = state.clone();
    let period = since.to_owned();
    match tokio::task::spawn_blocking(move || build(&worker, &period, &params)).await {
        Ok(Ok(dashboard)) => axum::Json(dashboard).into_response(),
        Ok(Err(message)) => error(ErrorKind::Internal, &message),
        Err(join) => error(ErrorKind::Internal, &format!("the report failed: {join}")),
    }
}

fn build(
    state: &AppState,
    period: &str,
    params: &tandem_report::Params,
) -> Result<Dashboard, String> {
    let opened = open_ledger(state)?;
    let entries = match &opened.reader {
        Some(reader) => tandem_report::entries(reader).map_err(|e| e.to_string())?,
        None => Vec::new(),
    };
    let size = entries.len() as u64;
    let cached = state.ui.report.lock().ok().and_then(|slot| {
        slot.as_ref()
            .filter(|(p, s, at, _)| p == period && *s == size && params.now_ms - at < REPORT_FOR_MS)
            .map(|(_, _, _, report)| report.clone())
    });
    let report = match cached {
        Some(report) => report,
        None => {
            let settings = &state.config.report;
            let report = tandem_report::report(
                &entries,
                &settings.repositories,
                settings.branch.as_deref(),
                params,
                true,
            )
            .map_err(|e| e.to_string())?;
            if let Ok(mut slot) = state.ui.report.lock() {
                *slot = Some((period.to_owned(), size, params.now_ms, report.clone()));
            }
            report
        }
    };
    if opened.reader.is_some() {
        maybe_verify(state, size);
    }
    let verified = state
        .ui
        .verified
        .lock()
        .map(|v| v.clone())
        .unwrap_or_default();
    let audit = AuditStatus {
        size,
        verified: verified.ok,
        verified_size: verified.size,
        verified_at_ms: verified.at_ms,
        message: verified.message,
        latest: entries.iter().rev().take(LATEST).map(row).collect(),
    };
    Ok(Dashboard {
        report,
        budgets: budgets(state, params.now_ms),
        audit,
    })
}

/// Starts a verification in the background when the ledger grew and the last one is old enough.
fn maybe_verify(state: &AppState, size: u64) {
    let due = state.ui.verified.lock().is_ok_and(|v| {
        v.at_ms.is_none()
            || (v.size != size && v.at_ms.is_some_and(|at| now_ms() - at >= VERIFY_EVERY_MS))
    });
    if !due || state.ui.running.swap(true, Ordering::SeqCst) {
        return;
    }
    let worker = state.clone();
    let spawned = std::thread::Builder::new()
        .name("tandem-ui-verify".into())
        .spawn(move || {
            let state = worker;
            let result = open_ledger(&state).and_then(|opened| match &opened.reader {
                Some(reader) => reader
                    .verify(&tandem_audit::VerifyOptions::default())
                    .map_err(|e| e.to_string()),
                None => Err("no ledger yet".to_owned()),
            });
            let verified = match result {
                Ok(report) if report.ok() => Verified {
                    ok: Some(true),
                    size: report.entries,
                    at_ms: Some(now_ms()),
                    message: format!(
                        "{} entries and {} checkpoints verified",
                        report.entries, report.checkpoints
                    ),
                },
                Ok(report) => Verified {
                    ok: Some(false),
                    size: report.entries,
                    at_ms: Some(now_ms()),
                    message: report
                        .problems
                        .first()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                },
                Err(message) => Verified {
                    ok: Some(false),
                    size: 0,
                    at_ms: Some(now_ms()),
                    message,
                },
            };
            if !verified.ok.unwrap_or(false) {
                tracing::warn!(message = %verified.message, "audit ledger verification failed");
            }
            if let Ok(mut slot) = state.ui.verified.lock() {
                *slot = verified;
            }
            state.ui.running.store(false, Ordering::SeqCst);
        });
    if spawned.is_err() {
        state.ui.running.store(false, Ordering::SeqCst);
    }
}

fn budgets(state: &AppState, now: i64) -> Vec<BudgetUse> {
    let mut out = Vec::new();
    for row in state.core.ledger().usage(now) {
        let window = match row.window {
            tandem_budget::WindowKind::Day => "day",
            tandem_budget::WindowKind::Month => "month",
            tandem_budget::WindowKind::Minute => "minute",
        };
        let mut push = |unit: &str, used: f64, limit: f64| {
            out.push(BudgetUse {
                rule: row.rule.clone(),
                scope: row.scope.clone(),
                window: window.to_owned(),
                unit: unit.to_owned(),
                used,
                limit,
            });
        };
        if let Some(limit) = row.max_tokens {
            push(
                "tokens",
                (row.used_tokens + row.reserved_tokens) as f64,
                limit as f64,
            );
        }
        if let Some(limit) = row.max_cost_usd {
            push("usd", row.used_cost_usd + row.reserved_cost_usd, limit);
        }
        if let Some(limit) = row.max_requests {
            push("requests", row.requests as f64, limit as f64);
        }
    }
    out
}

fn row(sealed: &Sealed) -> EntryRow {
    let mut row = EntryRow {
        index: sealed.i,
        ts_ms: sealed.ts,
        kind: sealed.entry.kind().to_owned(),
        user: sealed.entry.principal().user.clone(),
        ..EntryRow::default()
    };
    match &sealed.entry {
        Entry::Request(r) => {
            row.tier.clone_from(&r.tier);
            row.class.clone_from(&r.class);
            row.summary = format!(
                "{} {} {} · {} tokens",
                r.model,
                r.status,
                r.outcome,
                r.tokens.input.saturating_add(r.tokens.output)
            );
            row.task.clone_from(&r.session);
        }
        Entry::Change(c) => {
            row.tier.clone_from(&c.tier);
            row.class.clone_from(&c.class);
            let files: Vec<&str> = c.files.iter().map(|f| f.path.as_str()).collect();
            let checks = c.checks.iter().filter(|k| k.passed).count();
            row.summary = format!(
                "{} {} · gates {checks}/{} passed",
                if c.accepted { "accepted" } else { "rejected" },
                files.join(", "),
                c.checks.len()
            );
            row.task = Some(c.task.clone());
            row.commit.clone_from(&c.commit);
        }
    }
    row
}

/// `GET /ui/api/entry/{index}`: one sealed entry, its inclusion proof, and a change's provenance.
pub(crate) async fn entry(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(index): Path<String>,
) -> Response {
    if !signed_in(&state, &headers) {
        return unauthorized(&state);
    }
    let Ok(index) = index.parse::<u64>() else {
        return error(
            ErrorKind::BadRequest,
            &format!("index: `{index}` is not an entry index"),
        );
    };
    let worker = state.clone();
    let found =
        tokio::task::spawn_blocking(move || -> Result<Option<serde_json::Value>, String> {
            let opened = open_ledger(&worker)?;
            let Some(reader) = &opened.reader else {
                return Ok(None);
            };
            let Some(stored) = reader.entry(index).map_err(|e| e.to_string())? else {
                return Ok(None);
            };
            let entry: serde_json::Value =
                serde_json::from_slice(&stored.body).map_err(|e| e.to_string())?;
            let proof = reader
                .prove_inclusion(index, None)
                .map_err(|e| e.to_string())?;
            let checkpoint = reader.checkpoint().map_err(|e| e.to_string())?;
            Ok(Some(json!({
                "index": index,
                "ts_ms": stored.sealed.ts,
                "entry": entry,
                "inclusion": {
                    "size": proof.size,
                    "leaf_hash": proof.leaf,
                    "root": proof.root,
                    "proof": proof.proof,
                    "checkpoint": checkpoint,
                },
                "attestation": Reader::provenance(&stored),
            })))
        })
        .await;
    match found {
        Ok(Ok(Some(body))) => axum::Json(body).into_response(),
        Ok(Ok(None)) => error(ErrorKind::NotFound, &format!("no ledger entry {index}")),
        Ok(Err(message)) => error(ErrorKind::Internal, &message),
        Err(join) => error(
            ErrorKind::Internal,
            &format!("reading the entry failed: {join}"),
        ),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn periods_parse_and_are_bounded() {
        assert_eq!(super::period_ms("30d"), Some(30 * 86_400_000));
        assert_eq!(super::period_ms("2w"), Some(14 * 86_400_000));
        assert_eq!(super::period_ms("48h"), Some(48 * 3_600_000));
        for bad in [
            "",
            "d",
            "0d",
            "-3d",
            "30",
            "30y",
            "99999d",
            "9223372036854775807w",
        ] {
            assert_eq!(super::period_ms(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_session_mac_depends_on_the_token_and_the_expiry() {
        let a = super::session_mac("token", 1);
        assert_eq!(a, super::session_mac("token", 1));
        assert_ne!(a, super::session_mac("token", 2));
        assert_ne!(a, super::session_mac("other", 1));
    }
}
