//! `POST /v1/tandem/changes`: Tandem's own agent records a change it made (files, diff hash, checks,
//! decision) in the audit ledger. The caller authenticates like any API client and becomes the
//! change's principal; the answer is the ledger index, which the agent puts in the commit trailer.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;
use tandem_protocol::ErrorKind;

use crate::AppState;
use crate::error::ApiError;
use crate::format::Chat;

pub(crate) async fn record(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let id = uuid::Uuid::now_v7().simple().to_string();
    let fail = |kind: ErrorKind, message: String| {
        ApiError::new::<Chat>(kind, message, &id).into_response()
    };
    let principal = match crate::handler::authenticate(&state, &headers).await {
        Ok(p) => p,
        Err(err) => return fail(err.kind(), err.to_string()),
    };
    let body = match crate::handler::read_body(body, &headers, state.max_body_bytes).await {
        Ok(body) => body,
        Err((kind, message)) => return fail(kind, message),
    };
    let mut change: tandem_audit::ChangeEntry = match serde_json::from_slice(&body) {
        Ok(change) => change,
        Err(err) => return fail(ErrorKind::BadRequest, format!("change record: {err}")),
    };
    change.principal = tandem_audit::Principal {
        user: principal.user,
        teams: principal.groups,
        project: principal.project,
        key_id: principal.key_id,
    };
    let Some(ledger) = state.core.audit_ledger() else {
        return fail(
            ErrorKind::NotFound,
            "the audit ledger is off on this server".into(),
        );
    };
    match ledger.append(&tandem_audit::Entry::Change(change), None) {
        Ok(index) => (
            StatusCode::CREATED,
            axum::Json(json!({"index": index, "vkey": ledger.key().vkey()})),
        )
            .into_response(),
        Err(err) => fail(ErrorKind::Internal, format!("audit ledger: {err}")),
    }
}
