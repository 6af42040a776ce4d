//! `POST /v1/transactions/batch`: many signed transactions in one request,
//! for gateways and point-of-sale back ends that forward many customers'
//! transactions (and for the load generator of `scripts/bench.sh`). Each
//! item gets its own result with the same codes as `POST /v1/transactions`;
//! one bad item does not refuse the others. Signatures are verified once,
//! outside every lock, on every core.

use std::sync::Arc;

use alliance_protocol::Transaction;
use axum::extract::rejection::JsonRejection;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;

use super::handlers::submit_error;
use super::{ApiError, ErrorDetail};
use crate::runtime::Shared;

/// Transactions per batch at most.
pub const BATCH_TXS_MAX: usize = 2_000;
/// Largest batch request body (2,000 JSON transactions of ~500 bytes, with
/// headroom). Single submissions keep the smaller [`super::BODY_BYTES_MAX`].
pub const BATCH_BYTES_MAX: usize = 2 * 1024 * 1024;

/// One item's result: `hash` when admitted, `error` otherwise.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemResult {
    /// HTTP status this item would have had alone (200 when admitted).
    pub status: u16,
    /// Transaction id (hex), when admitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    /// Why it was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// `POST /v1/transactions/batch`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchSubmitResponse {
    /// Items admitted.
    pub accepted: usize,
    /// Items refused.
    pub rejected: usize,
    /// One result per item, in request order.
    pub results: Vec<BatchItemResult>,
}

fn refused(e: ApiError) -> BatchItemResult {
    BatchItemResult {
        status: e.status.as_u16(),
        hash: None,
        error: Some(ErrorDetail {
            code: e.code,
            message: e.message,
        }),
    }
}

/// Submit up to 2,000 signed transactions (a JSON array of the protocol's
/// `Transaction`) in one request. Each is checked and admitted as by
/// `POST /v1/transactions`, in order; the response has one result per item.
#[utoipa::path(post, path = "/v1/transactions/batch", tag = "transactions",
    request_body(content = Vec<super::schema::Transaction>, description = "A JSON array of signed transactions (at most 2,000 items, 2 MiB). An item that is not a transaction is refused alone (its result has status 400), not the batch."),
    responses(
        (status = 200, description = "The batch was read: one result per item, in request order. Each result has `status`, the status the item would have had alone (200 admitted; otherwise 400, 409, 413, 422 or 503 with the codes of `POST /v1/transactions`), and either `hash` (admitted) or `error` {code, message} (refused). `accepted` + `rejected` = the number of items. A 200 answer can therefore refuse every item.", body = BatchSubmitResponse),
        (status = 400, description = "`malformed`: not a JSON array, or more than 2,000 items", body = super::ErrorBody),
        (status = 413, description = "`too_large`: body over 2 MiB", body = super::ErrorBody),
        (status = 503, description = "`not_synced`: the node is catching up; retry shortly or use another node", body = super::ErrorBody),
    ))]
pub async fn submit_batch(
    State(s): State<Arc<Shared>>,
    body: Result<Json<Vec<Box<serde_json::value::RawValue>>>, JsonRejection>,
) -> Result<Json<BatchSubmitResponse>, ApiError> {
    let Json(items) = body.map_err(|r| match r.status() {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!("batch body over {BATCH_BYTES_MAX} bytes"),
        ),
        _ => ApiError::from(r),
    })?;
    if items.len() > BATCH_TXS_MAX {
        return Err(ApiError::bad_request(format!(
            "{} transactions in one batch; at most {BATCH_TXS_MAX}",
            items.len()
        )));
    }
    if s.is_syncing() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_synced",
            "this node is catching up with the alliance; retry shortly or use another node",
        ));
    }
    // Parse each item on its own: a malformed one is refused alone. Items
    // are kept as their raw text and parsed once into a transaction (no
    // JSON tree is built for them).
    let mut results: Vec<Option<BatchItemResult>> = Vec::with_capacity(items.len());
    let mut txs = Vec::with_capacity(items.len());
    for item in items {
        match serde_json::from_str::<Transaction>(item.get()) {
            Ok(tx) => {
                txs.push(tx);
                results.push(None);
            }
            Err(e) => results.push(Some(refused(ApiError::bad_request(format!(
                "not a transaction: {e}"
            ))))),
        }
    }
    let mut submitted = s.submit_many(txs).await.into_iter();
    let results: Vec<BatchItemResult> = results
        .into_iter()
        .map(|r| match r {
            Some(r) => r,
            None => match submitted.next() {
                Some(Ok(hash)) => BatchItemResult {
                    status: 200,
                    hash: Some(hash.to_hex()),
                    error: None,
                },
                Some(Err(e)) => {
                    let e = submit_error(e);
                    s.metrics.rejected(&e.code);
                    refused(e)
                }
                None => refused(ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "no result for this item",
                )),
            },
        })
        .collect();
    let accepted = results.iter().filter(|r| r.hash.is_some()).count();
    Ok(Json(BatchSubmitResponse {
        accepted,
        rejected: results.len() - accepted,
        results,
    }))
}
