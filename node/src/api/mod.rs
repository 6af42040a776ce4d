//! The HTTP API: JSON under `/v1`, described by an OpenAPI 3 document at
//! `/v1/openapi.json` generated from these handlers (utoipa): every route is
//! registered through `routes!`, so none can be served undocumented.
//!
//! Every failure is `{"error": {"code": "...", "message": "..."}}` with the
//! right status: 400 malformed, 404 unknown, 409 conflict (nonce, duplicate),
//! 413 too large, 422 rule violation, 503 not yet synced or overloaded.
//! Bound to loopback by default; request bodies are size-limited.

mod batch;
mod dto;
mod evidence;
mod handlers;
mod proof;
pub mod recent;
pub mod schema;
pub mod server;

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use batch::{BatchItemResult, BatchSubmitResponse, BATCH_BYTES_MAX, BATCH_TXS_MAX};
pub use dto::*;

use crate::runtime::Shared;

/// Largest request body: a transaction is at most 2 KiB encoded, a few
/// times that as JSON.
pub const BODY_BYTES_MAX: usize = 64 * 1024;
/// Concurrent event-stream subscribers at most (each holds a task and a
/// buffer).
pub const EVENT_STREAMS_MAX: usize = 64;
/// History page size at most.
pub const HISTORY_LIMIT_MAX: usize = 200;

/// An API error: status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: String,
    message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: impl Into<String>, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.into(),
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "malformed", message)
    }

    fn not_found(code: &str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::NOT_FOUND, code, message)
    }

    fn storage(e: impl std::fmt::Display) -> Self {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
            },
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body over {BODY_BYTES_MAX} bytes"),
            ),
            StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::new(
                StatusCode::BAD_REQUEST,
                "malformed",
                "send JSON with Content-Type: application/json",
            ),
            _ => ApiError::bad_request(r.body_text()),
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Points Alliance node API",
        description = "Wallets, merchants and auditors reach the alliance through this API.\n\nEvery error answer is JSON, `{\"error\": {\"code\", \"message\"}}` (schema `ErrorBody`), with a stable snake_case `code`; each operation lists the statuses it answers and, in each error's description, the codes it may carry. On any path: an unknown endpoint is `404 not_found`, a wrong method `405 method_not_allowed`, a request not read in time `408 request_timeout`.\n\nInputs have one accepted form each: addresses lowercase `pa1…`, hashes 64 lowercase hex characters, whole numbers decimal digits with no sign or leading zero (`uint64`: 0 to 18446744073709551615). An endpoint that takes query parameters (it documents a 400 answer) refuses one it does not take, or one given twice, with `400 malformed`."
    ),
    components(schemas(ErrorBody, ErrorDetail))
)]
struct ApiDoc;

/// The router and its OpenAPI document.
pub fn router_and_doc(shared: Arc<Shared>) -> (Router, utoipa::openapi::OpenApi) {
    let (router, doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(handlers::status))
        .routes(routes!(handlers::submit))
        .routes(routes!(recent::latest_transactions))
        .routes(routes!(handlers::tx_status))
        .routes(routes!(handlers::account))
        .routes(routes!(handlers::history))
        .routes(routes!(proof::account_proof))
        .routes(routes!(handlers::latest_block))
        .routes(routes!(handlers::block_by_height))
        .routes(routes!(handlers::block_by_hash))
        .routes(routes!(handlers::block_raw))
        .routes(routes!(recent::block_stats))
        .routes(routes!(handlers::merchants))
        .routes(routes!(handlers::merchant))
        .routes(routes!(handlers::settlement))
        .routes(routes!(handlers::proposals))
        .routes(routes!(handlers::genesis))
        .routes(routes!(handlers::events))
        .routes(routes!(handlers::openapi))
        .routes(routes!(handlers::metrics))
        .routes(routes!(evidence::evidence))
        .merge(
            // Batches have their own, larger body limit.
            OpenApiRouter::new()
                .routes(routes!(batch::submit_batch))
                .route_layer(DefaultBodyLimit::max(batch::BATCH_BYTES_MAX)),
        )
        .split_for_parts();
    let _ = handlers::OPENAPI_JSON.set(doc.to_json().unwrap_or_default());
    let recent = recent::follow(&shared);
    let router = router
        .layer(axum::Extension(recent))
        .merge(crate::explorer::router())
        .fallback(|| async {
            ApiError::not_found("not_found", "no such endpoint; see /v1/openapi.json")
        })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .layer(axum::middleware::from_fn(server::request_timeout))
        .layer(axum::middleware::from_fn(server::json_errors))
        .with_state(shared);
    (router, doc)
}

/// The router over a running node.
pub fn router(shared: Arc<Shared>) -> Router {
    router_and_doc(shared).0
}
