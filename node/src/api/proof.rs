//! `GET /v1/accounts/{address}/proof`: an account proven against the latest
//! finalized header, with every validator-set change since genesis, so a
//! light client checks it from the genesis file alone
//! (`alliance_protocol::light`, docs/audit.md).
//!
//! The store keeps only the current state, so the proofs of past validator
//! sets come from a replay of this node's own blocks. They never change once
//! made, so they are cached per chain: each request only scans the headers
//! finalized since the last one (a change at block `c` shows as header
//! `c + 1` naming another `validator_set_hash`), and replays from genesis
//! only when a new change appears (rare: a governance vote). Long work runs
//! on a blocking thread and takes the chain lock one block at a time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use alliance_protocol::audit::Auditor;
use alliance_protocol::light::{
    AccountProof, CertifiedHeader, EntryProof, EpochChange, EpochRecorder,
};
use alliance_protocol::state::{verify_signatures_parallel, StateKey};
use alliance_protocol::{FinalizedBlock, Hash32, PublicKey, VoteKind};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;

use super::dto::{AccountProofResponse, ErrorBody};
use super::ApiError;
use crate::runtime::Shared;

/// What is known of one chain's validator-set history.
#[derive(Default)]
struct EpochCache {
    /// Headers `1..=scanned` were examined.
    scanned: u64,
    /// Hash of block `scanned` (to notice a different chain).
    scanned_hash: Hash32,
    /// `validator_set_hash` of header `scanned`.
    last_set_hash: Option<Hash32>,
    /// Heights whose state changed the set, in order.
    change_heights: Vec<u64>,
    /// Proofs of those changes (a prefix of `change_heights`).
    changes: Vec<EpochChange>,
}

/// Caches by genesis hash (one per chain this process serves).
fn caches() -> &'static Mutex<HashMap<Hash32, EpochCache>> {
    static CACHES: OnceLock<Mutex<HashMap<Hash32, EpochCache>>> = OnceLock::new();
    CACHES.get_or_init(Default::default)
}

fn block(s: &Shared, height: u64) -> Result<FinalizedBlock, ApiError> {
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    chain
        .store()
        .block(height)
        .map_err(ApiError::storage)?
        .ok_or_else(|| ApiError::storage(format!("finalized block {height} is missing")))
}

/// Brings `cache` up to `tip` and returns the epoch changes before it.
fn epochs_up_to(
    s: &Shared,
    cache: &mut EpochCache,
    tip: u64,
) -> Result<Vec<EpochChange>, ApiError> {
    // Another chain with the same genesis (tests run several in-process).
    if cache.scanned > 0 && block(s, cache.scanned)?.block.hash() != cache.scanned_hash {
        *cache = EpochCache::default();
    }
    for h in cache.scanned + 1..=tip {
        let fb = block(s, h)?;
        let vsh = fb.block.header.validator_set_hash;
        if cache.last_set_hash.is_some_and(|last| last != vsh) {
            cache.change_heights.push(h - 1);
        }
        cache.last_set_hash = Some(vsh);
        cache.scanned = h;
        cache.scanned_hash = fb.block.hash();
    }
    if cache.changes.len() < cache.change_heights.len() {
        cache.changes = replay_changes(s, *cache.change_heights.last().unwrap_or(&0))?;
        if cache.changes.len() != cache.change_heights.len() {
            return Err(ApiError::storage(
                "replay and headers disagree on validator-set changes",
            ));
        }
    }
    // A concurrent request may have scanned past `tip`.
    Ok(cache
        .changes
        .iter()
        .take_while(|c| c.at.header.height < tip)
        .cloned()
        .collect())
}

/// Replays this node's blocks `1..=to` with the auditor and records the
/// validator-set changes.
fn replay_changes(s: &Shared, to: u64) -> Result<Vec<EpochChange>, ApiError> {
    let mut auditor = Auditor::new(&s.genesis);
    let mut recorder = EpochRecorder::new(&s.genesis);
    for h in 1..=to {
        let fb = block(s, h)?;
        auditor
            .check_block(&fb, &verify_signatures_parallel(&fb.block.txs))
            .map_err(|e| ApiError::storage(format!("own chain does not replay: {e}")))?;
        recorder.observe(&fb, auditor.state());
    }
    Ok(recorder.into_changes())
}

fn build(s: &Shared, address: PublicKey) -> Result<AccountProofResponse, ApiError> {
    // The account and the header it is proven against, read together.
    let (header, account) = {
        let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
        let tip = chain.state().tip();
        if tip.height == 0 {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "no_finalized_block",
                "no block is finalized yet: retry shortly",
            ));
        }
        let fb = chain
            .store()
            .block(tip.height)
            .map_err(ApiError::storage)?
            .ok_or_else(|| ApiError::storage("tip block missing"))?;
        if fb.certificate.kind != VoteKind::Finalize {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "proof_unavailable",
                "the latest block has no finalize certificate yet: retry shortly",
            ));
        }
        (
            CertifiedHeader::of(&fb),
            EntryProof::of(chain.state(), StateKey::Account(address)),
        )
    };
    let epochs = {
        let mut caches = caches().lock().unwrap_or_else(|e| e.into_inner());
        let cache = caches.entry(s.genesis.hash()).or_default();
        epochs_up_to(s, cache, header.header.height)?
    };
    let height = header.header.height;
    let block_hash = header.header.hash().to_hex();
    let proof = AccountProof {
        epochs,
        header,
        account,
    };
    Ok(AccountProofResponse {
        address: address.to_string(),
        height,
        block_hash,
        proof: serde_json::to_value(&proof).map_err(ApiError::storage)?,
    })
}

/// An account's state with a sparse-Merkle proof against the state root of
/// the latest finalized header, that header and its finalize certificate,
/// and every validator-set change since genesis (each with its certified
/// header and the proven merchant records): what `alliance balance ADDRESS
/// --verify` checks from the genesis file alone.
#[utoipa::path(get, path = "/v1/accounts/{address}/proof", tag = "accounts",
    params(("address" = String, Path, description = "address: lowercase `pa1…`", pattern = "^pa1[02-9ac-hj-np-z]{58}$",
        example = "pa1vmjtypyryzk4rsvck6294jkseffg9ew2h8r5q9vqwuj2vktcr0hs0v9pmn")),
    responses((status = 200, body = AccountProofResponse),
        (status = 400, description = "`bad_address`: not an address (pattern, checksum, or not a valid ed25519 key)", body = ErrorBody),
        (status = 503, description = "`proof_unavailable`: the tip has no finalize certificate yet; retry", body = ErrorBody)))]
pub async fn account_proof(
    State(s): State<Arc<Shared>>,
    Path(address): Path<String>,
) -> Result<Json<AccountProofResponse>, ApiError> {
    let address = super::handlers::parse_address(&address)?;
    tokio::task::spawn_blocking(move || build(&s, address))
        .await
        .map_err(|e| ApiError::storage(format!("proof task failed: {e}")))?
        .map(Json)
}
