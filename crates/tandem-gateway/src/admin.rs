//! The admin API under `/admin`: API keys, budget usage and the policy. Authenticated with the admin token
//! (`Authorization: Bearer $TANDEM_ADMIN_TOKEN`); without a configured token every admin route answers 404.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use secrecy::ExposeSecret;
use serde::Deserialize;
use serde_json::{Value, json};
use tandem_protocol::ErrorKind;
use tandem_translate::openai_chat;

use crate::AppState;
use crate::governance::{key_row, now_ms};

pub(crate) fn error(kind: ErrorKind, message: &str) -> Response {
    let status =
        StatusCode::from_u16(kind.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(openai_chat::error_body(kind, message))).into_response()
}

/// Compare in time independent of where the first difference is.
pub(crate) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The refusal to send, unless the request carries the admin token.
pub(crate) fn refusal(state: &AppState, headers: &HeaderMap) -> Option<Response> {
    let Some(token) = &state.admin_token else {
        return Some(error(
            ErrorKind::NotFound,
            "the admin API is disabled: set the admin token variable (default TANDEM_ADMIN_TOKEN)",
        ));
    };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if same(given.as_bytes(), token.expose_secret().as_bytes()) {
        None
    } else {
        Some(error(
            ErrorKind::Unauthorized,
            "admin token missing or wrong",
        ))
    }
}

fn key_json(row: &tandem_store::KeyRow) -> Value {
    json!({
        "id": row.id, "user": row.user, "team": row.team, "project": row.project,
        "created_at_ms": row.created_at_ms, "expires_at_ms": row.expires_at_ms,
        "revoked_at_ms": row.revoked_at_ms,
    })
}

/// `GET /admin/keys`: every key, without secrets or hashes.
pub(crate) async fn list_keys(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    match state.store.list_keys() {
        Ok(rows) => axum::Json(json!({"keys": rows.iter().map(key_json).collect::<Vec<_>>()}))
            .into_response(),
        Err(err) => error(ErrorKind::Internal, &err.to_string()),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewKey {
    user: String,
    team: Option<String>,
    project: Option<String>,
    /// `30d`, `12h`, …
    expires: Option<String>,
}

/// `POST /admin/keys`: create a key; the secret is in this answer only.
pub(crate) async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    let body = match crate::handler::read_body(body, &headers, state.max_body_bytes).await {
        Ok(body) => body,
        Err((kind, message)) => return error(kind, &message),
    };
    let new: NewKey = match serde_json::from_slice(&body) {
        Ok(new) => new,
        Err(err) => return error(ErrorKind::BadRequest, &format!("invalid body: {err}")),
    };
    match create(
        &state.store,
        &new.user,
        new.team.as_deref(),
        new.project.as_deref(),
        new.expires.as_deref(),
    ) {
        Ok((row, secret)) => {
            let mut body = key_json(&row);
            body["key"] = Value::String(secret);
            (StatusCode::CREATED, axum::Json(body)).into_response()
        }
        Err((kind, message)) => error(kind, &message),
    }
}

/// Create and store a key; returns the stored row and the secret (to show once).
pub fn create(
    store: &tandem_store::Store,
    user: &str,
    team: Option<&str>,
    project: Option<&str>,
    expires: Option<&str>,
) -> Result<(tandem_store::KeyRow, String), (ErrorKind, String)> {
    if user.trim().is_empty() {
        return Err((ErrorKind::BadRequest, "`user` must not be empty".to_owned()));
    }
    let now = now_ms();
    let expires_at_ms = match expires {
        None => None,
        Some(text) => {
            let d = tandem_auth::parse_duration(text).map_err(|e| (e.kind(), e.to_string()))?;
            Some(now.saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)))
        }
    };
    let new = tandem_auth::generate_key(user, team, project, expires_at_ms, now)
        .map_err(|e| (e.kind(), e.to_string()))?;
    let row = key_row(&new.record);
    store
        .insert_key(&row)
        .map_err(|e| (ErrorKind::Internal, e.to_string()))?;
    Ok((row, new.secret.expose_secret().to_owned()))
}

/// `DELETE /admin/keys/{id}`: revoke at once.
pub(crate) async fn revoke_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    match state.store.revoke_key(&id, now_ms()) {
        Ok(true) => axum::Json(json!({"id": id, "revoked": true})).into_response(),
        Ok(false) => error(ErrorKind::NotFound, &format!("no live key `{id}`")),
        Err(err) => error(ErrorKind::Internal, &err.to_string()),
    }
}

/// `GET /admin/budgets`: every budget and rate limit with its use in the current window.
pub(crate) async fn budgets(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    axum::Json(json!({"usage": state.core.ledger().usage(now_ms())})).into_response()
}

/// `GET /admin/policy`: the ids of the policies in force.
pub(crate) async fn get_policy(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    axum::Json(json!({"policies": state.core.policy().ids()})).into_response()
}

/// `PUT /admin/policy`: replace the policy with the Cedar text in the body, if it validates.
/// A bad policy is refused with the validator's message and the current one stays in force.
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Some(denied) = refusal(&state, &headers) {
        return denied;
    }
    let body = match crate::handler::read_body(body, &headers, state.max_body_bytes).await {
        Ok(body) => body,
        Err((kind, message)) => return error(kind, &message),
    };
    let Ok(text) = std::str::from_utf8(&body) else {
        return error(ErrorKind::BadRequest, "policy must be UTF-8 Cedar text");
    };
    match tandem_policy::Policy::parse(text, "admin upload") {
        Ok(policy) => {
            let ids = policy.ids();
            state.core.set_policy(Arc::new(policy));
            // Stored, so every replica sharing the database takes it up within a few seconds.
            crate::governance::store_policy(
                &state.store,
                text,
                "admin upload",
                &state.policy_version,
            );
            tracing::info!(
                policies = ids.len(),
                "policy replaced through the admin API"
            );
            axum::Json(json!({"policies": ids})).into_response()
        }
        Err(err) => error(ErrorKind::BadRequest, &err.to_string()),
    }
}
