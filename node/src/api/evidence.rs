//! `GET /v1/evidence`: equivocations this node has seen and stored (two
//! conflicting votes signed by one validator in one view), newest first.
//! Each record carries both signed votes, so anyone with the validator set
//! can check it without trusting this node.

use std::sync::Arc;

use alliance_protocol::certificate::Equivocation;
use alliance_protocol::SignedVote;
use axum::extract::State;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ApiError;
use crate::runtime::Shared;

/// Records returned at most.
const EVIDENCE_LIMIT_MAX: usize = 500;

/// One signed vote of an equivocation.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceVoteDto {
    /// `Notarize`, `Nullify` or `Finalize`.
    pub kind: String,
    /// Consensus view.
    pub view: u64,
    /// Block height voted on.
    pub height: u64,
    /// Block hash voted on (zero for a nullify).
    pub block_hash: String,
    /// ed25519 signature (hex) over the vote's signing hash.
    pub signature: String,
}

/// Two conflicting votes of one validator.
#[derive(Debug, Serialize, ToSchema)]
pub struct EquivocationDto {
    /// The accused validator's address.
    pub signer: String,
    /// Its merchant id, when it is a current validator.
    pub merchant: Option<String>,
    /// The view of both votes.
    pub view: u64,
    /// The vote seen first.
    pub first: EvidenceVoteDto,
    /// The conflicting vote.
    pub second: EvidenceVoteDto,
    /// Whether the record checks against the current validator set (both
    /// signatures valid, one signer, votes in conflict).
    pub verified: bool,
}

/// `GET /v1/evidence`.
#[derive(Debug, Serialize, ToSchema)]
pub struct EvidenceResponse {
    /// Newest view first.
    pub evidence: Vec<EquivocationDto>,
}

/// Query of the evidence endpoint (no other parameter is accepted).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // describes the query for the OpenAPI document; parsed strictly by hand
pub struct EvidenceQuery {
    /// Records at most (default 100).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<u64>,
}

fn vote_dto(v: &SignedVote) -> EvidenceVoteDto {
    EvidenceVoteDto {
        kind: format!("{:?}", v.data.kind),
        view: v.data.view,
        height: v.data.height,
        block_hash: v.data.block_hash.to_hex(),
        signature: hex::encode(v.signature.0),
    }
}

/// Equivocation evidence recorded by this node, newest first.
#[utoipa::path(get, path = "/v1/evidence", tag = "consensus", params(EvidenceQuery),
    responses((status = 200, body = EvidenceResponse),
        (status = 400, description = "`malformed`: `limit` not 1 to 500, or an unknown or repeated query parameter", body = super::ErrorBody)))]
pub async fn evidence(
    State(s): State<Arc<Shared>>,
    q: super::handlers::RawQuery,
) -> Result<Json<EvidenceResponse>, ApiError> {
    let q = super::handlers::raw_query(q)?;
    let args = super::handlers::query_args(&q, &["limit"])?;
    let limit = super::handlers::parse_limit(args.get("limit").copied(), 100, EVIDENCE_LIMIT_MAX)?;
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let validators = chain.state().validator_set();
    let records: Vec<Equivocation> = chain.store().evidence(limit).map_err(ApiError::storage)?;
    let evidence = records
        .iter()
        .map(|e| EquivocationDto {
            signer: e.signer().to_string(),
            merchant: validators
                .validators()
                .iter()
                .find(|v| v.key == e.signer())
                .map(|v| v.id.to_string()),
            view: e.first.data.view,
            first: vote_dto(&e.first),
            second: vote_dto(&e.second),
            verified: e.verify(&s.chain_id, &validators),
        })
        .collect();
    Ok(Json(EvidenceResponse { evidence }))
}
