//! `/healthz`, `/readyz`, `/openapi.json` and `/docs/errors`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use serde_json::json;

use crate::error::{ApiError, ApiResult, ok};
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub(crate) async fn healthz() -> Response {
    ok(&json!({ "status": "ok" }))
}

/// `GET /readyz`: the store reads and the engine runs; 503 otherwise.
pub(crate) async fn readyz(State(state): State<AppState>) -> ApiResult {
    let store_ok = state.store().ready_depth(1).is_ok();
    let engine_ok = state.engine().is_running();
    if store_ok && engine_ok {
        Ok(ok(
            &json!({ "status": "ready", "store": true, "engine": true }),
        ))
    } else {
        Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "NOT_READY",
            format!(
                "not ready: store {}, engine {}",
                if store_ok { "ok" } else { "unavailable" },
                if engine_ok { "running" } else { "stopped" }
            ),
        )
        .retry_after(1))
    }
}

/// `GET /openapi.json`: the spec itself (not enveloped: tools read it as is).
pub(crate) async fn openapi(State(state): State<AppState>) -> Response {
    let spec = crate::openapi::spec(state.settings().public_base_url.as_deref());
    axum::response::IntoResponse::into_response(axum::Json(spec))
}

/// The error catalogue (docs/errors.md), built in so that every error's `docs` link resolves
/// on the gateway that answered it.
pub(crate) const ERRORS_MD: &str = include_str!("../../../docs/errors.md");

/// `GET /docs/errors`: the error catalogue, as Markdown (not enveloped: it is a document).
pub(crate) async fn errors_doc() -> Response {
    axum::response::IntoResponse::into_response((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/markdown; charset=utf-8",
        )],
        ERRORS_MD,
    ))
}
