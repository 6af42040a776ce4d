//! Endpoint handlers. Each is annotated for the OpenAPI document.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::{Arc, OnceLock};

use alliance_protocol::limits::DAY_MS;
use alliance_protocol::state::{LedgerState, Lot, TxError, TxOutcome};
use alliance_protocol::{FinalizedBlock, Hash32, MerchantId, PublicKey, Transaction};
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures::Stream;
use serde::Deserialize;

use super::dto::*;
use super::{ApiError, HISTORY_LIMIT_MAX};
use crate::mempool::AdmitError;
use crate::runtime::{Shared, SubmitError};

type ApiResult<T> = Result<Json<T>, ApiError>;

/// The OpenAPI document, filled in once the router is built.
pub(super) static OPENAPI_JSON: OnceLock<String> = OnceLock::new();

/// A hash in its one text form: 64 lowercase hex characters
/// ([`super::schema::HASH_PATTERN`]).
fn parse_hash(text: &str) -> Result<Hash32, ApiError> {
    let lower_hex = text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    match lower_hex.then(|| Hash32::from_hex(text)) {
        Some(Ok(h)) => Ok(h),
        _ => Err(ApiError::bad_request(format!(
            "`{text}` is not a hash: expected 64 lowercase hex characters"
        ))),
    }
}

/// An address in its one text form (lowercase `pa1…`, checksum, a valid
/// key): `400 bad_address` otherwise.
pub(super) fn parse_address(text: &str) -> Result<PublicKey, ApiError> {
    text.parse().map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_address",
            format!("`{text}` is not an alliance address: {e}"),
        )
    })
}

/// A whole number in its one decimal form: digits only, no sign, no
/// leading zero, at most `u64::MAX`.
pub(super) fn parse_u64(name: &str, text: &str) -> Result<u64, ApiError> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    match canonical.then(|| text.parse::<u64>()) {
        Some(Ok(v)) => Ok(v),
        _ => Err(ApiError::bad_request(format!(
            "{name} `{text}` is not a whole number from 0 to {} (decimal digits, no sign or leading zero)",
            u64::MAX
        ))),
    }
}

/// The query string's parameters, refusing names this endpoint does not
/// take and names given twice (`400 malformed`).
pub(super) fn query_args<'a>(
    q: &'a [(String, String)],
    allowed: &[&str],
) -> Result<BTreeMap<&'a str, &'a str>, ApiError> {
    let mut out = BTreeMap::new();
    for (k, v) in q {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "unknown query parameter `{k}`; this endpoint takes: {}",
                if allowed.is_empty() {
                    "none".to_string()
                } else {
                    allowed.join(", ")
                }
            )));
        }
        if out.insert(k.as_str(), v.as_str()).is_some() {
            return Err(ApiError::bad_request(format!(
                "query parameter `{k}` is given twice"
            )));
        }
    }
    Ok(out)
}

/// The query string as pairs; a string that is not valid form encoding is
/// `400 malformed`.
pub(super) type RawQuery = Result<Query<Vec<(String, String)>>, QueryRejection>;

pub(super) fn raw_query(q: RawQuery) -> Result<Vec<(String, String)>, ApiError> {
    q.map(|Query(v)| v)
        .map_err(|e| ApiError::bad_request(format!("query string: {}", e.body_text())))
}

/// A page size between 1 and `max` (`default` when absent).
pub(super) fn parse_limit(
    text: Option<&str>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    let Some(text) = text else {
        return Ok(default);
    };
    match parse_u64("limit", text) {
        Ok(n) if (1..=max as u64).contains(&n) => Ok(n as usize),
        _ => Err(ApiError::bad_request(format!(
            "limit `{text}` must be a whole number from 1 to {max}"
        ))),
    }
}

fn lot_dto(l: &Lot) -> LotDto {
    LotDto {
        issuer: l.issuer.to_string(),
        expiry_ms: l.expiry_ms,
        amount: l.amount,
    }
}

fn result_dto(outcome: &TxOutcome) -> TxResultDto {
    match outcome {
        TxOutcome::Applied => TxResultDto {
            applied: true,
            code: None,
            reason: None,
        },
        TxOutcome::Rejected(e) => TxResultDto {
            applied: false,
            code: Some(e.code().into()),
            reason: Some(e.to_string()),
        },
    }
}

fn json<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or(serde_json::Value::Null)
}

/// Node status: height, tip, state root, validators, peers, sync state.
#[utoipa::path(get, path = "/v1/status", tag = "node", responses((status = 200, body = StatusResponse)))]
pub async fn status(State(s): State<Arc<Shared>>) -> ApiResult<StatusResponse> {
    let (tip, root, validators, params) = {
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        (
            chain.state().tip(),
            chain.state().state_root(),
            chain.state().validator_set(),
            chain.state().params(),
        )
    };
    let st = s.status.read().unwrap_or_else(|e| e.into_inner()).clone();
    let mempool = s.mempool.lock().unwrap_or_else(|e| e.into_inner()).len();
    Ok(Json(StatusResponse {
        chain_id: s.chain_id.clone(),
        genesis_hash: s.genesis.hash().to_hex(),
        height: tip.height,
        tip_hash: tip.hash.to_hex(),
        state_root: root.to_hex(),
        timestamp_ms: tip.timestamp_ms,
        view: st.view,
        is_validator: st.is_validator,
        validators: validators
            .validators()
            .iter()
            .map(|v| ValidatorDto {
                id: v.id.to_string(),
                key: v.key.to_string(),
            })
            .collect(),
        peers: st
            .peers
            .iter()
            .map(|(p, k, m)| PeerDto {
                peer_id: p.clone(),
                key: k.map(|k| k.to_string()),
                member: *m,
            })
            .collect(),
        syncing: s.is_syncing(),
        best_peer_height: st.best_peer_height,
        mempool,
        version: env!("CARGO_PKG_VERSION").to_string(),
        params: json(&params),
    }))
}

pub(super) fn submit_error(e: SubmitError) -> ApiError {
    let status = match &e {
        SubmitError::Admit(a) => match a {
            AdmitError::Duplicate(_)
            | AdmitError::NonceConflict(_)
            | AdmitError::NonceReplayed { .. }
            | AdmitError::NonceGap { .. }
            | AdmitError::NonceTooFarAhead { .. } => StatusCode::CONFLICT,
            AdmitError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AdmitError::Full => StatusCode::SERVICE_UNAVAILABLE,
            AdmitError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
        },
        SubmitError::Rejected(
            TxError::DuplicateReceipt { .. }
            | TxError::NonceReplayed { .. }
            | TxError::NonceSkipped { .. }
            | TxError::AlreadyVoted(_),
        ) => StatusCode::CONFLICT,
        SubmitError::Rejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
    };
    let code = match &e {
        SubmitError::Admit(a) => a.code(),
        SubmitError::Rejected(r) => r.code(),
    };
    ApiError::new(status, code, e.to_string())
}

/// Submit a signed transaction (JSON form of the protocol's `Transaction`).
/// Checked at once against the current state: a transaction that would be
/// rejected is refused with the rule's code. A transaction whose nonce
/// skips ahead of the signer's next nonce (after its pending ones) is
/// refused (`nonce_gap`), never kept waiting: every pending transaction can
/// be included as soon as a block has room.
#[utoipa::path(post, path = "/v1/transactions", tag = "transactions",
    request_body(content = super::schema::Transaction, description = "A signed transaction (at most 64 KiB of JSON, 2 KiB encoded); see docs/protocol.md §4"),
    responses(
        (status = 200, description = "admitted: pending until a block includes it", body = SubmitResponse),
        (status = 400, description = "`malformed`: not JSON, or not a transaction (a field missing, of the wrong type, or not in its one text form: lowercase `pa1…` addresses, lowercase hex)", body = ErrorBody),
        (status = 409, description = "`duplicate` (already pending), `nonce_conflict` (another pending transaction has this nonce), `nonce_replayed` (nonce already used), `nonce_gap` (nonce skips ahead of the signer's next one), `nonce_too_far_ahead` (too many pending from this signer), `duplicate_receipt`, `already_voted`", body = ErrorBody),
        (status = 413, description = "`too_large`: body over 64 KiB, or transaction over 2 KiB encoded", body = ErrorBody),
        (status = 422, description = "`wrong_chain`, `bad_signature`, or the code of the ledger rule that refuses it (docs/protocol.md §5, e.g. `insufficient_balance`, `daily_cap_exceeded`, `receipt_outside_window`, `receipt_in_future`)", body = ErrorBody),
        (status = 503, description = "`not_synced` (the node is catching up) or `mempool_full`: retry later or use another node", body = ErrorBody),
    ))]
pub async fn submit(
    State(s): State<Arc<Shared>>,
    body: Result<Json<Transaction>, JsonRejection>,
) -> ApiResult<SubmitResponse> {
    let Json(tx) = body?;
    if s.is_syncing() {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "not_synced",
            "this node is catching up with the alliance; retry shortly or use another node",
        ));
    }
    let hash = s.submit(tx).await.map_err(|e| {
        let err = submit_error(e);
        s.metrics.rejected(&err.code);
        err
    })?;
    Ok(Json(SubmitResponse {
        hash: hash.to_hex(),
    }))
}

/// A transaction's status: pending, or committed with its result. A node
/// knows pending transactions only while they are in its mempool (not
/// across a restart); committed ones for good.
#[utoipa::path(get, path = "/v1/transactions/{hash}", tag = "transactions",
    params(("hash" = String, Path, description = "transaction id: 64 lowercase hex characters", pattern = "^[0-9a-f]{64}$",
        example = "a9d701608a03de79f724581d99457750e5fb4f2e7dd64dbfc8dbd48787195c4e")),
    responses((status = 200, body = TxStatusResponse),
        (status = 400, description = "`malformed`: not 64 lowercase hex characters", body = ErrorBody),
        (status = 404, description = "`unknown_transaction`: neither pending here nor committed", body = ErrorBody)))]
pub async fn tx_status(
    State(s): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> ApiResult<TxStatusResponse> {
    let hash = parse_hash(&hash)?;
    let loc = {
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        chain
            .store()
            .tx_location(&hash)
            .map_err(ApiError::storage)?
    };
    if let Some(loc) = loc {
        return Ok(Json(TxStatusResponse {
            hash: hash.to_hex(),
            status: "committed".into(),
            height: Some(loc.height),
            index: Some(loc.index),
            result: Some(result_dto(&loc.outcome)),
        }));
    }
    if s.mempool
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .contains(&hash)
    {
        return Ok(Json(TxStatusResponse {
            hash: hash.to_hex(),
            status: "pending".into(),
            height: None,
            index: None,
            result: None,
        }));
    }
    Err(ApiError::not_found(
        "unknown_transaction",
        format!("transaction {hash} is neither pending nor committed"),
    ))
}

/// An account: balance by issuer, lots with expiry, nonce, points expiring
/// within 30 days.
#[utoipa::path(get, path = "/v1/accounts/{address}", tag = "accounts",
    params(("address" = String, Path, description = "address: lowercase `pa1…` (bech32m, checksum checked)", pattern = "^pa1[02-9ac-hj-np-z]{58}$",
        example = "pa1vmjtypyryzk4rsvck6294jkseffg9ew2h8r5q9vqwuj2vktcr0hs0v9pmn")),
    responses((status = 200, description = "the account (an address that never held points has balance 0, nonce 0)", body = AccountResponse),
        (status = 400, description = "`bad_address`: not an address (pattern, checksum, or not a valid ed25519 key)", body = ErrorBody)))]
pub async fn account(
    State(s): State<Arc<Shared>>,
    Path(address): Path<String>,
) -> ApiResult<AccountResponse> {
    let key = parse_address(&address)?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let tip = chain.state().tip();
    let account = chain.state().account(&key);
    let mut by_issuer: BTreeMap<String, u64> = BTreeMap::new();
    for lot in &account.lots {
        *by_issuer.entry(lot.issuer.to_string()).or_default() += lot.amount;
    }
    let soon = tip.timestamp_ms.saturating_add(30 * DAY_MS);
    Ok(Json(AccountResponse {
        address: key.to_string(),
        balance: account.balance(),
        nonce: account.nonce,
        by_issuer,
        lots: account.lots.iter().map(lot_dto).collect(),
        expiring_soon: account
            .lots
            .iter()
            .filter(|l| l.expiry_ms.is_some_and(|e| e <= soon))
            .map(lot_dto)
            .collect(),
        height: tip.height,
    }))
}

/// Query of the history endpoint (no other parameter is accepted).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document; parsed strictly by hand
pub struct HistoryQuery {
    /// Page size (default 20).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u64>,
    /// Cursor from a previous page's `next` (`HEIGHT:INDEX`).
    #[param(
        pattern = "^(0|[1-9][0-9]{0,19}):(0|[1-9][0-9]{0,9})$",
        example = "47:0"
    )]
    before: Option<String>,
}

/// A history cursor `HEIGHT:INDEX`.
fn parse_cursor(c: &str) -> Result<(u64, u32), ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "cursor `{c}` is not HEIGHT:INDEX from a previous page's `next`"
        ))
    };
    let (h, i) = c.split_once(':').ok_or_else(bad)?;
    let h = parse_u64("cursor height", h).map_err(|_| bad())?;
    let i = parse_u64("cursor index", i).map_err(|_| bad())?;
    Ok((h, u32::try_from(i).map_err(|_| bad())?))
}

/// An account's transactions (sent and received), newest first.
#[utoipa::path(get, path = "/v1/accounts/{address}/history", tag = "accounts",
    params(("address" = String, Path, description = "address: lowercase `pa1…`", pattern = "^pa1[02-9ac-hj-np-z]{58}$",
        example = "pa1vmjtypyryzk4rsvck6294jkseffg9ew2h8r5q9vqwuj2vktcr0hs0v9pmn"), HistoryQuery),
    responses((status = 200, body = HistoryResponse),
        (status = 400, description = "`bad_address`: not an address; `malformed`: `limit` not 1 to 200, a bad cursor, or an unknown or repeated query parameter", body = ErrorBody)))]
pub async fn history(
    State(s): State<Arc<Shared>>,
    Path(address): Path<String>,
    q: RawQuery,
) -> ApiResult<HistoryResponse> {
    let key = parse_address(&address)?;
    let q = raw_query(q)?;
    let args = query_args(&q, &["limit", "before"])?;
    let limit = parse_limit(args.get("limit").copied(), 20, HISTORY_LIMIT_MAX)?;
    let before = args.get("before").map(|c| parse_cursor(c)).transpose()?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let entries = chain
        .store()
        .history(&key, before, limit + 1)
        .map_err(ApiError::storage)?;
    let more = entries.len() > limit;
    let mut items = Vec::new();
    let mut cache: Option<FinalizedBlock> = None;
    for (height, index) in entries.into_iter().take(limit) {
        if cache.as_ref().map(|b| b.block.header.height) != Some(height) {
            cache = chain.store().block(height).map_err(ApiError::storage)?;
        }
        let Some(fb) = &cache else { continue };
        let Some(tx) = fb.block.txs.get(index as usize) else {
            continue;
        };
        let hash = tx.hash();
        let loc = chain
            .store()
            .tx_location(&hash)
            .map_err(ApiError::storage)?;
        let result = loc.map(|l| result_dto(&l.outcome)).unwrap_or(TxResultDto {
            applied: false,
            code: None,
            reason: None,
        });
        items.push(HistoryItem {
            hash: hash.to_hex(),
            height,
            index,
            timestamp_ms: fb.block.header.timestamp_ms,
            kind: tx.body.kind().into(),
            signer: tx.signer.to_string(),
            body: json(&tx.body),
            applied: result.applied,
            code: result.code,
        });
    }
    let next = if more {
        items.last().map(|i| format!("{}:{}", i.height, i.index))
    } else {
        None
    };
    Ok(Json(HistoryResponse { items, next }))
}

fn block_response(fb: FinalizedBlock) -> BlockResponse {
    BlockResponse {
        hash: fb.block.hash().to_hex(),
        height: fb.block.header.height,
        header: json(&fb.block.header),
        txs: fb
            .block
            .txs
            .iter()
            .map(|t| {
                let mut v = json(t);
                if let serde_json::Value::Object(m) = &mut v {
                    m.insert("hash".into(), serde_json::Value::String(t.hash().to_hex()));
                }
                v
            })
            .collect(),
        certificate: json(&fb.certificate),
    }
}

fn load_block(s: &Shared, height: u64) -> ApiResult<BlockResponse> {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    match chain.store().block(height).map_err(ApiError::storage)? {
        Some(fb) => Ok(Json(block_response(fb))),
        None => Err(ApiError::not_found(
            "unknown_block",
            format!(
                "no finalized block at height {height} (tip is {})",
                chain.state().tip().height
            ),
        )),
    }
}

/// The latest finalized block with its certificate.
#[utoipa::path(get, path = "/v1/blocks/latest", tag = "blocks", responses((status = 200, body = BlockResponse),
    (status = 404, description = "`unknown_block`: no block finalized yet", body = ErrorBody)))]
pub async fn latest_block(State(s): State<Arc<Shared>>) -> ApiResult<BlockResponse> {
    let height = s
        .chain
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .state()
        .tip()
        .height;
    load_block(&s, height)
}

/// A finalized block by height.
#[utoipa::path(get, path = "/v1/blocks/{height}", tag = "blocks",
    params(("height" = u64, Path, description = "block height (1 = first block): decimal digits, no sign or leading zero", example = 1)),
    responses((status = 200, body = BlockResponse),
        (status = 400, description = "`malformed`: not a whole number from 0 to 18446744073709551615", body = ErrorBody),
        (status = 404, description = "`unknown_block`: no finalized block at that height (yet)", body = ErrorBody)))]
pub async fn block_by_height(
    State(s): State<Arc<Shared>>,
    Path(height): Path<String>,
) -> ApiResult<BlockResponse> {
    let height = parse_u64("height", &height)?;
    load_block(&s, height)
}

/// A finalized block by hash.
#[utoipa::path(get, path = "/v1/blocks/hash/{hash}", tag = "blocks",
    params(("hash" = String, Path, description = "block hash: 64 lowercase hex characters", pattern = "^[0-9a-f]{64}$",
        example = "0f4c33353b8dcddf1e2c3a0a9553faea53f67f6eb51551a00e9bac6c0bd1a4ae")),
    responses((status = 200, body = BlockResponse),
        (status = 400, description = "`malformed`: not 64 lowercase hex characters", body = ErrorBody),
        (status = 404, description = "`unknown_block`: no finalized block has that hash", body = ErrorBody)))]
pub async fn block_by_hash(
    State(s): State<Arc<Shared>>,
    Path(hash): Path<String>,
) -> ApiResult<BlockResponse> {
    let hash = parse_hash(&hash)?;
    let height = s
        .chain
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .store()
        .height_of(&hash)
        .map_err(ApiError::storage)?;
    match height {
        Some(h) => load_block(&s, h),
        None => Err(ApiError::not_found(
            "unknown_block",
            format!("no finalized block with hash {hash}"),
        )),
    }
}

fn merchant_dto(state: &LedgerState, m: &alliance_protocol::Merchant) -> MerchantDto {
    let height = state.tip().height;
    let acceptance = state.acceptance(&m.id).settled(height);
    MerchantDto {
        acceptance: AcceptanceDto {
            rates: json(&acceptance.terms.rates),
            conversions: json(&acceptance.terms.conversions),
            next: acceptance
                .next
                .map(|(effective_height, terms)| AcceptanceChangeDto {
                    effective_height,
                    rates: json(&terms.rates),
                    conversions: json(&terms.conversions),
                }),
        },
        id: m.id.to_string(),
        name: m.name.clone(),
        key: m.key.to_string(),
        status: format!("{:?}", m.status).to_lowercase(),
        policy: json(&m.policy),
        issued: m.stats.issued,
        redeemed: m.stats.redeemed,
        expired: m.stats.expired,
        outstanding: m.stats.outstanding(),
        redeemed_here: m.stats.redeemed_here,
        circulation_rate: if m.stats.issued == 0 {
            0.0
        } else {
            m.stats.redeemed as f64 / m.stats.issued as f64
        },
    }
}

/// Every merchant with its policy and issued / redeemed / expired /
/// outstanding points.
#[utoipa::path(get, path = "/v1/merchants", tag = "merchants", responses((status = 200, body = MerchantsResponse)))]
pub async fn merchants(State(s): State<Arc<Shared>>) -> ApiResult<MerchantsResponse> {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    Ok(Json(MerchantsResponse {
        merchants: chain
            .state()
            .merchants()
            .iter()
            .map(|m| merchant_dto(chain.state(), m))
            .collect(),
        height: chain.state().tip().height,
    }))
}

/// One merchant.
#[utoipa::path(get, path = "/v1/merchants/{id}", tag = "merchants",
    params(("id" = String, Path, description = "merchant id: 1-16 of `a-z 0-9 -`, starting with a letter", pattern = "^[a-z][a-z0-9-]{0,15}$", example = "coffee")),
    responses((status = 200, body = MerchantDto),
        (status = 400, description = "`malformed`: not a merchant id", body = ErrorBody),
        (status = 404, description = "`unknown_merchant`: no merchant with that id", body = ErrorBody)))]
pub async fn merchant(
    State(s): State<Arc<Shared>>,
    Path(id): Path<String>,
) -> ApiResult<MerchantDto> {
    let id: MerchantId = id
        .parse()
        .map_err(|e: alliance_protocol::merchant::BadMerchantId| {
            ApiError::bad_request(e.to_string())
        })?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    match chain.state().merchant(&id) {
        Some(m) => Ok(Json(merchant_dto(chain.state(), &m))),
        None => Err(ApiError::not_found(
            "unknown_merchant",
            format!("no merchant `{id}`"),
        )),
    }
}

/// Query of the settlement endpoint (no other parameter is accepted).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// First height of the period (inclusive; default 1).
    from: Option<u64>,
    /// Last height of the period (inclusive; default the tip).
    to: Option<u64>,
}

/// Who owes whom: claims between merchants, cumulative or for a period of
/// heights.
#[utoipa::path(get, path = "/v1/settlement", tag = "settlement", params(PeriodQuery),
    responses((status = 200, body = SettlementResponse),
        (status = 400, description = "`malformed`: `from` or `to` not a whole number from 0 to 18446744073709551615, `from` after `to`, or an unknown or repeated query parameter", body = ErrorBody)))]
pub async fn settlement(
    State(s): State<Arc<Shared>>,
    q: RawQuery,
) -> ApiResult<SettlementResponse> {
    let q = raw_query(q)?;
    let args = query_args(&q, &["from", "to"])?;
    let q = PeriodQuery {
        from: args.get("from").map(|v| parse_u64("from", v)).transpose()?,
        to: args.get("to").map(|v| parse_u64("to", v)).transpose()?,
    };
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let height = chain.state().tip().height;
    let claims = if q.from.is_none() && q.to.is_none() {
        chain.state().claims()
    } else {
        let (from, to) = (q.from.unwrap_or(1), q.to.unwrap_or(height));
        if from > to {
            return Err(ApiError::bad_request(format!(
                "from ({from}) is after to ({to})"
            )));
        }
        chain
            .store()
            .claims_between(from, to)
            .map_err(ApiError::storage)?
    };
    let claims = claims
        .into_iter()
        .map(|(c, d, claim)| ClaimDto {
            creditor: c.to_string(),
            debtor: d.to_string(),
            redeemed_points: claim.redeemed_points,
            redeemed_value_centiminor: claim.redeemed_value_centiminor,
            confirmed_points: claim.confirmed_points,
            confirmed_value_centiminor: claim.confirmed_value_centiminor,
            outstanding_points: claim.redeemed_points as i128 - claim.confirmed_points as i128,
            outstanding_value_centiminor: claim.redeemed_value_centiminor as i128
                - claim.confirmed_value_centiminor as i128,
        })
        .collect();
    Ok(Json(SettlementResponse {
        claims,
        from: q.from,
        to: q.to,
        height,
    }))
}

/// Governance proposals with their votes and status.
#[utoipa::path(get, path = "/v1/proposals", tag = "governance", responses((status = 200, body = ProposalsResponse)))]
pub async fn proposals(State(s): State<Arc<Shared>>) -> ApiResult<ProposalsResponse> {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let height = chain.state().tip().height;
    let proposals = chain
        .state()
        .proposals()
        .iter()
        .map(|p| {
            let mut v = json(p);
            let open = p.status == alliance_protocol::state::ProposalStatus::Open;
            if let serde_json::Value::Object(m) = &mut v {
                let label = if open && height > p.deadline_height {
                    "Expired".to_string()
                } else {
                    format!("{:?}", p.status)
                };
                m.insert("status_label".into(), serde_json::Value::String(label));
            }
            v
        })
        .collect();
    Ok(Json(ProposalsResponse { proposals, height }))
}

/// A stream (Server-Sent Events) of newly finalized blocks: one `block`
/// event per block with its height, hash, time and transaction count.
#[utoipa::path(get, path = "/v1/events", tag = "blocks",
    responses((status = 200, description = "text/event-stream of `block` events: {height, hash, timestamp_ms, txs}", content_type = "text/event-stream"),
              (status = 503, description = "`too_many_streams`: too many subscribers, retry later", body = ErrorBody)))]
pub async fn events(
    State(s): State<Arc<Shared>>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let permit = s.event_streams.clone().try_acquire_owned().map_err(|_| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "too_many_streams",
            "too many event-stream subscribers; retry later",
        )
    })?;
    let rx = s.finalized.subscribe();
    let stream = futures::stream::unfold((rx, permit), |(mut rx, permit)| async move {
        loop {
            match rx.recv().await {
                Ok(fb) => {
                    let data = serde_json::json!({
                        "height": fb.block.header.height,
                        "hash": fb.block.hash(),
                        "timestamp_ms": fb.block.header.timestamp_ms,
                        "txs": fb.block.txs.len(),
                    });
                    let event = Event::default().event("block").data(data.to_string());
                    return Some((Ok(event), (rx, permit)));
                }
                // A slow subscriber skips ahead rather than holding memory.
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// This API's OpenAPI 3 document (generated from the handlers).
#[utoipa::path(get, path = "/v1/openapi.json", tag = "node", responses((status = 200, description = "OpenAPI 3 document", content_type = "application/json"),
    (status = 503, description = "`starting`: the document is not built yet", body = ErrorBody)))]
pub async fn openapi() -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    let doc = OPENAPI_JSON.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "starting",
            "API document not ready",
        )
    })?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        doc,
    ))
}

/// Prometheus metrics: the node's `alliance_*` series and the network's
/// `libp2p_*` series (swarm, gossipsub, identify, ping), in OpenMetrics
/// text (docs/operations.md).
#[utoipa::path(get, path = "/metrics", tag = "node", responses((status = 200, description = "OpenMetrics text 1.0.0 (Prometheus scrapes it)", content_type = "application/openmetrics-text")))]
pub async fn metrics(
    State(s): State<Arc<Shared>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            crate::metrics::CONTENT_TYPE,
        )],
        s.metrics.render(),
    )
}

/// A finalized block by height as its canonical bytes
/// (`alliance_protocol::FinalizedBlock`, docs/protocol.md): what an auditor
/// verifies without trusting this node's JSON rendering.
#[utoipa::path(get, path = "/v1/blocks/{height}/raw", tag = "blocks",
    params(("height" = u64, Path, description = "block height (1 = first block): decimal digits, no sign or leading zero", example = 1)),
    responses((status = 200, description = "canonical FinalizedBlock bytes", content_type = "application/octet-stream"),
        (status = 400, description = "`malformed`: not a whole number from 0 to 18446744073709551615", body = ErrorBody),
        (status = 404, description = "`unknown_block`: no finalized block at that height (yet)", body = ErrorBody)))]
pub async fn block_raw(
    State(s): State<Arc<Shared>>,
    Path(height): Path<String>,
) -> Result<([(axum::http::HeaderName, &'static str); 1], Vec<u8>), ApiError> {
    let height = parse_u64("height", &height)?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    match chain.store().block(height).map_err(ApiError::storage)? {
        Some(fb) => Ok((
            [(axum::http::header::CONTENT_TYPE, "application/octet-stream")],
            fb.to_bytes(),
        )),
        None => Err(ApiError::not_found(
            "unknown_block",
            format!(
                "no finalized block at height {height} (tip is {})",
                chain.state().tip().height
            ),
        )),
    }
}

/// The genesis this node runs (JSON). An auditor compares its hash with
/// its own trusted copy before auditing.
#[utoipa::path(get, path = "/v1/genesis", tag = "node",
    responses((status = 200, description = "the genesis file", content_type = "application/json")))]
pub async fn genesis(
    State(s): State<Arc<Shared>>,
) -> ([(axum::http::HeaderName, &'static str); 1], String) {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        s.genesis.to_json(),
    )
}
