//! The HTTP API (JSON under `/v1`). Every failure is
//! `{"error": {"code": "...", "message": "..."}}` with a 4xx/5xx status.
//! Bound to loopback by default; bodies are size-limited.

use std::sync::Arc;

use alliance_protocol::state::TxOutcome;
use alliance_protocol::{Hash32, PublicKey, Transaction};
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

use crate::runtime::Shared;

/// Largest request body: a transaction is at most 2 KiB encoded, a few
/// times that in JSON.
pub const BODY_BYTES_MAX: usize = 64 * 1024;

/// An API error: status, stable code, human message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    /// Builds an error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> Self {
        match r.status() {
            StatusCode::PAYLOAD_TOO_LARGE => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "too_large", r.body_text())
            }
            _ => ApiError::new(StatusCode::BAD_REQUEST, "malformed", r.body_text()),
        }
    }
}

type ApiResult = Result<Json<Value>, ApiError>;

/// The router over a running node.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/status", get(status))
        .route("/v1/transactions", post(submit))
        .route("/v1/transactions/{hash}", get(tx_status))
        .route("/v1/accounts/{address}", get(account))
        .route("/v1/blocks/{height}", get(block))
        .route("/v1/merchants", get(merchants))
        .route("/v1/settlement", get(settlement))
        .fallback(|| async {
            ApiError::new(StatusCode::NOT_FOUND, "not_found", "no such endpoint")
        })
        .layer(DefaultBodyLimit::max(BODY_BYTES_MAX))
        .with_state(shared)
}

async fn status(State(s): State<Arc<Shared>>) -> ApiResult {
    let (tip, root, validators) = {
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        (
            chain.state().tip(),
            chain.state().state_root(),
            chain.state().validator_set(),
        )
    };
    let st = s.status.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mempool = s.mempool.lock().unwrap_or_else(|e| e.into_inner()).len();
    Ok(Json(json!({
        "chain_id": s.chain_id,
        "height": tip.height,
        "tip_hash": tip.hash,
        "state_root": root,
        "timestamp_ms": tip.timestamp_ms,
        "view": st.view,
        "is_validator": st.is_validator,
        "validators": validators.validators().iter().map(|v| json!({"id": v.id, "key": v.key})).collect::<Vec<_>>(),
        "peers": st.peers.iter().map(|(p, k, m)| json!({"peer_id": p, "key": k, "member": m})).collect::<Vec<_>>(),
        "syncing": st.best_peer_height > tip.height + 2,
        "best_peer_height": st.best_peer_height,
        "mempool": mempool,
        "version": env!("CARGO_PKG_VERSION"),
    })))
}

async fn submit(
    State(s): State<Arc<Shared>>,
    body: Result<Json<Transaction>, JsonRejection>,
) -> ApiResult {
    let Json(tx) = body?;
    match s.submit(tx).await {
        Ok(hash) => Ok(Json(json!({"hash": hash}))),
        Err(e) => {
            let status = match e {
                crate::mempool::AdmitError::Duplicate(_)
                | crate::mempool::AdmitError::NonceConflict(_)
                | crate::mempool::AdmitError::NonceReplayed { .. } => StatusCode::CONFLICT,
                crate::mempool::AdmitError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
                crate::mempool::AdmitError::Full => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNPROCESSABLE_ENTITY,
            };
            Err(ApiError::new(status, e.code(), e.to_string()))
        }
    }
}

fn parse_hash(text: &str) -> Result<Hash32, ApiError> {
    Hash32::from_hex(text).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "a hash is 64 hex characters",
        )
    })
}

async fn tx_status(State(s): State<Arc<Shared>>, Path(hash): Path<String>) -> ApiResult {
    let hash = parse_hash(&hash)?;
    let loc = {
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        chain.store().tx_location(&hash).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e.to_string())
        })?
    };
    if let Some(loc) = loc {
        let result = match &loc.outcome {
            TxOutcome::Applied => json!({"applied": true}),
            TxOutcome::Rejected(e) => {
                json!({"applied": false, "code": e.code(), "reason": e.to_string()})
            }
        };
        return Ok(Json(
            json!({"hash": hash, "status": "committed", "height": loc.height, "index": loc.index, "result": result}),
        ));
    }
    if s.mempool
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&hash)
    {
        return Ok(Json(json!({"hash": hash, "status": "pending"})));
    }
    Err(ApiError::new(
        StatusCode::NOT_FOUND,
        "unknown_transaction",
        format!("transaction {hash} is neither pending nor committed"),
    ))
}

async fn account(State(s): State<Arc<Shared>>, Path(address): Path<String>) -> ApiResult {
    let key: PublicKey = address.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_address",
            format!("`{address}` is not an alliance address: {e}"),
        )
    })?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let account = chain.state().account(&key);
    let mut by_issuer: std::collections::BTreeMap<String, u64> = Default::default();
    for lot in &account.lots {
        *by_issuer.entry(lot.issuer.to_string()).or_default() += lot.amount;
    }
    Ok(Json(json!({
        "address": key,
        "balance": account.balance(),
        "nonce": account.nonce,
        "by_issuer": by_issuer,
        "lots": account.lots,
        "height": chain.state().tip().height,
    })))
}

async fn block(State(s): State<Arc<Shared>>, Path(height): Path<String>) -> ApiResult {
    let height: u64 = height.parse().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "malformed",
            "height must be a number",
        )
    })?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    match chain.store().block(height) {
        Ok(Some(fb)) => Ok(Json(
            json!({"hash": fb.block.hash(), "block": fb.block, "certificate": fb.certificate}),
        )),
        Ok(None) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_block",
            format!("no block at height {height}"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "storage",
            e.to_string(),
        )),
    }
}

async fn merchants(State(s): State<Arc<Shared>>) -> ApiResult {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let list: Vec<Value> = chain
        .state()
        .merchants()
        .into_iter()
        .map(|m| {
            json!({
                "id": m.id, "name": m.name, "key": m.key, "status": format!("{:?}", m.status).to_lowercase(),
                "policy": m.policy,
                "issued": m.stats.issued, "redeemed": m.stats.redeemed, "expired": m.stats.expired,
                "outstanding": m.stats.outstanding(), "redeemed_here": m.stats.redeemed_here,
            })
        })
        .collect();
    Ok(Json(
        json!({"merchants": list, "height": chain.state().tip().height}),
    ))
}

async fn settlement(State(s): State<Arc<Shared>>) -> ApiResult {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let claims: Vec<Value> = chain
        .state()
        .claims()
        .into_iter()
        .map(|(creditor, debtor, c)| {
            json!({
                "creditor": creditor, "debtor": debtor,
                "redeemed_points": c.redeemed_points, "confirmed_points": c.confirmed_points,
                "outstanding_points": c.outstanding_points(),
                "outstanding_value_centiminor": c.outstanding_value_centiminor(),
            })
        })
        .collect();
    Ok(Json(
        json!({"claims": claims, "height": chain.state().tip().height}),
    ))
}
