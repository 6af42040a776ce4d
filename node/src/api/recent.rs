//! What the explorer's home page shows that no single block holds: the
//! latest transactions whatever their age, and per-minute figures of the
//! last hour (transactions per block, finality latency). Kept in memory by
//! a task that follows the finalized blocks; at start the latest
//! transactions are found by scanning the store back from the tip (bounded).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use alliance_protocol::FinalizedBlock;
use axum::extract::State;
use axum::{Extension, Json};
use serde::Serialize;
use utoipa::ToSchema;

use super::dto::{ErrorBody, HistoryItem};
use super::handlers::{parse_limit, query_args, raw_query, RawQuery};
use super::ApiError;
use crate::runtime::Shared;

/// Latest transactions kept (the most `GET /v1/transactions/latest` serves).
pub const LATEST_TXS_MAX: usize = 100;
/// Blocks scanned back from the tip at start to find the latest
/// transactions: an idle chain makes about one block a second, so a day.
const LATEST_SCAN_BLOCKS_MAX: u64 = 100_000;
/// The window of the block statistics.
pub const STATS_WINDOW_MS: u64 = 3_600_000;
/// Width of one statistics bucket.
pub const STATS_BUCKET_MS: u64 = 60_000;
/// Blocks remembered for the statistics (an hour at 5 blocks a second).
const STATS_BLOCKS_MAX: usize = 18_000;

/// One finalized transaction, as listed.
#[derive(Debug, Clone)]
pub struct RecentTx {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Block time.
    pub timestamp_ms: u64,
    /// The transaction.
    pub tx: alliance_protocol::Transaction,
}

/// One finalized block's figures.
#[derive(Debug, Clone, Copy)]
pub struct BlockFigures {
    /// Height.
    pub height: u64,
    /// Block time (the proposer's clock).
    pub timestamp_ms: u64,
    /// Transactions.
    pub txs: u32,
    /// When this node learnt it was final, ms since the Unix epoch (`None`
    /// for blocks found in the store at start).
    pub finalized_at_ms: Option<u64>,
}

/// The recent past, newest last.
#[derive(Debug, Default)]
pub struct Recent {
    txs: VecDeque<RecentTx>,
    blocks: VecDeque<BlockFigures>,
}

impl Recent {
    /// Notes a finalized block (in height order; a height already seen is
    /// ignored).
    pub fn observe(&mut self, fb: &FinalizedBlock, finalized_at_ms: Option<u64>) {
        let h = &fb.block.header;
        if self.blocks.back().is_some_and(|b| b.height >= h.height) {
            return;
        }
        self.blocks.push_back(BlockFigures {
            height: h.height,
            timestamp_ms: h.timestamp_ms,
            txs: fb.block.txs.len() as u32,
            finalized_at_ms,
        });
        while self.blocks.len() > STATS_BLOCKS_MAX {
            self.blocks.pop_front();
        }
        for (i, tx) in fb.block.txs.iter().enumerate() {
            self.txs.push_back(RecentTx {
                height: h.height,
                index: i as u32,
                timestamp_ms: h.timestamp_ms,
                tx: tx.clone(),
            });
        }
        while self.txs.len() > LATEST_TXS_MAX {
            self.txs.pop_front();
        }
    }

    /// The latest `n` transactions, newest first.
    pub fn latest(&self, n: usize) -> Vec<RecentTx> {
        self.txs.iter().rev().take(n).cloned().collect()
    }

    /// Per-minute figures of the hour before `now_ms`, oldest first: every
    /// bucket is present (empty minutes count zero blocks).
    pub fn buckets(&self, now_ms: u64) -> Vec<BlockStatsBucket> {
        let end = now_ms - now_ms % STATS_BUCKET_MS + STATS_BUCKET_MS;
        let start = end.saturating_sub(STATS_WINDOW_MS);
        let n = (STATS_WINDOW_MS / STATS_BUCKET_MS) as usize;
        let mut out: Vec<BlockStatsBucket> = (0..n as u64)
            .map(|i| BlockStatsBucket {
                start_ms: start + i * STATS_BUCKET_MS,
                ..BlockStatsBucket::default()
            })
            .collect();
        let mut finality_sum = vec![0u64; n];
        for b in &self.blocks {
            if b.timestamp_ms < start || b.timestamp_ms >= end {
                continue;
            }
            let i = ((b.timestamp_ms - start) / STATS_BUCKET_MS) as usize;
            let bucket = &mut out[i];
            bucket.blocks += 1;
            bucket.txs += u64::from(b.txs);
            bucket.txs_per_block_max = bucket.txs_per_block_max.max(b.txs);
            if let Some(at) = b.finalized_at_ms {
                let ms = at.saturating_sub(b.timestamp_ms);
                bucket.finality_samples += 1;
                finality_sum[i] += ms;
                bucket.finality_ms_max = Some(bucket.finality_ms_max.unwrap_or(0).max(ms));
            }
        }
        for (bucket, sum) in out.iter_mut().zip(finality_sum) {
            bucket.finality_ms_mean = sum.checked_div(bucket.finality_samples);
        }
        out
    }
}

/// One minute of [`BlockStatsResponse`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct BlockStatsBucket {
    /// Start of the minute (ms since the Unix epoch).
    pub start_ms: u64,
    /// Finalized blocks whose time falls in it.
    pub blocks: u64,
    /// Their transactions.
    pub txs: u64,
    /// The most transactions in one of them.
    pub txs_per_block_max: u32,
    /// Blocks with a finality measurement (the mean's divisor; not served).
    #[serde(skip)]
    pub finality_samples: u64,
    /// Mean finality latency (from the block's time to its finalization at
    /// this node), ms; null when no block of the minute was seen finalized
    /// live (before this node started, or none).
    pub finality_ms_mean: Option<u64>,
    /// The largest of them, ms.
    pub finality_ms_max: Option<u64>,
}

/// Starts following `shared`'s finalized blocks into a [`Recent`] (on the
/// current tokio runtime; none outside one, as in unit tests), after
/// scanning the store back from the tip for the latest transactions.
pub fn follow(shared: &Arc<Shared>) -> Arc<Mutex<Recent>> {
    let recent = Arc::new(Mutex::new(Recent::default()));
    let Ok(rt) = tokio::runtime::Handle::try_current() else {
        return recent;
    };
    // Subscribe before the scan, so no block falls between the two.
    let mut rx = shared.finalized.subscribe();
    let (shared, out) = (shared.clone(), recent.clone());
    rt.spawn(async move {
        let scan_shared = shared.clone();
        let found = tokio::task::spawn_blocking(move || scan_back(&scan_shared))
            .await
            .unwrap_or_default();
        {
            let mut r = out.lock().unwrap_or_else(|e| e.into_inner());
            for fb in &found {
                r.observe(fb, None);
            }
        }
        loop {
            match rx.recv().await {
                Ok(fb) => out
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .observe(&fb, Some(crate::runtime::now_ms())),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    recent
}

/// Finalized blocks back from the tip, oldest first: those of the last
/// hour, and at least back to the [`LATEST_TXS_MAX`]th latest transaction,
/// within [`LATEST_SCAN_BLOCKS_MAX`] blocks. Empty blocks of the older part
/// are left out (only their transactions matter). The chain lock is taken
/// per block, so the driver is never held up for long.
fn scan_back(shared: &Shared) -> Vec<FinalizedBlock> {
    let tip = shared.tip_height();
    let since_ms = crate::runtime::now_ms().saturating_sub(STATS_WINDOW_MS);
    let mut found = Vec::new();
    let mut txs = 0;
    let mut height = tip;
    while height >= 1 && tip - height < LATEST_SCAN_BLOCKS_MAX {
        let block = {
            let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
            chain.store().block(height)
        };
        let Ok(Some(fb)) = block else { break };
        let recent = fb.block.header.timestamp_ms >= since_ms;
        if !recent && txs >= LATEST_TXS_MAX {
            break;
        }
        txs += fb.block.txs.len();
        if recent || !fb.block.txs.is_empty() {
            found.push(fb);
        }
        height -= 1;
    }
    found.reverse();
    found
}

// ---- endpoints -------------------------------------------------------------

/// The recent past the endpoints read.
pub type RecentState = Extension<Arc<Mutex<Recent>>>;

/// `GET /v1/transactions/latest`.
#[derive(Debug, Serialize, ToSchema)]
pub struct LatestTransactionsResponse {
    /// Newest first, whatever their age (at most `limit`).
    pub items: Vec<HistoryItem>,
    /// The finalized height when answered.
    pub height: u64,
}

/// `GET /v1/stats/blocks`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockStatsResponse {
    /// Width of the window, ms (one hour).
    pub window_ms: u64,
    /// Width of a bucket, ms (one minute).
    pub bucket_ms: u64,
    /// Every minute of the window, oldest first.
    pub buckets: Vec<BlockStatsBucket>,
}

/// The latest finalized transactions, newest first, however long ago they
/// were finalized (the explorer's home page).
#[utoipa::path(get, path = "/v1/transactions/latest", tag = "transactions",
    params(("limit" = Option<u64>, Query, description = "how many (default 20)", minimum = 1, maximum = 100)),
    responses((status = 200, body = LatestTransactionsResponse),
        (status = 400, description = "`malformed`: `limit` not 1 to 100, or an unknown or repeated query parameter", body = ErrorBody)))]
pub async fn latest_transactions(
    State(s): State<Arc<Shared>>,
    Extension(recent): RecentState,
    q: RawQuery,
) -> Result<Json<LatestTransactionsResponse>, ApiError> {
    let q = raw_query(q)?;
    let args = query_args(&q, &["limit"])?;
    let limit = parse_limit(args.get("limit").copied(), 20, LATEST_TXS_MAX)?;
    let latest = recent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .latest(limit);
    let chain = s.chain.read().unwrap_or_else(|e| e.into_inner());
    let mut items = Vec::with_capacity(latest.len());
    for t in latest {
        let hash = t.tx.hash();
        let outcome = chain
            .store()
            .tx_location(&hash)
            .map_err(ApiError::storage)?
            .map(|l| l.outcome);
        let (applied, code) = match outcome {
            Some(alliance_protocol::state::TxOutcome::Applied) => (true, None),
            Some(alliance_protocol::state::TxOutcome::Rejected(e)) => {
                (false, Some(e.code().to_string()))
            }
            None => (false, None),
        };
        items.push(HistoryItem {
            hash: hash.to_hex(),
            height: t.height,
            index: t.index,
            timestamp_ms: t.timestamp_ms,
            kind: t.tx.body.kind().into(),
            signer: t.tx.signer.to_string(),
            body: serde_json::to_value(&t.tx.body).unwrap_or_default(),
            applied,
            code,
        });
    }
    Ok(Json(LatestTransactionsResponse {
        items,
        height: chain.state().tip().height,
    }))
}

/// Per-minute block figures of the last hour: blocks, transactions per
/// block, finality latency (the explorer's charts).
#[utoipa::path(get, path = "/v1/stats/blocks", tag = "blocks",
    responses((status = 200, body = BlockStatsResponse),
        (status = 400, description = "`malformed`: a query parameter (this endpoint takes none)", body = ErrorBody)))]
pub async fn block_stats(
    Extension(recent): RecentState,
    q: RawQuery,
) -> Result<Json<BlockStatsResponse>, ApiError> {
    let q = raw_query(q)?;
    query_args(&q, &[])?;
    let buckets = recent
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .buckets(crate::runtime::now_ms());
    Ok(Json(BlockStatsResponse {
        window_ms: STATS_WINDOW_MS,
        bucket_ms: STATS_BUCKET_MS,
        buckets,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
    use alliance_protocol::state::LedgerState;
    use alliance_protocol::{Transaction, TxBody};

    #[test]
    fn latest_transactions_and_minute_buckets() {
        let (genesis, keys) = demo_genesis("recent", 4, 1_700_000_000_000);
        let mut state = LedgerState::from_genesis(&genesis);
        let mut r = Recent::default();
        let alice = demo_customer_key("recent", "alice").public();
        let t0 = 1_700_000_020_000; // 40 s into a minute
        for h in 1..=130u64 {
            // Transactions only in blocks 1 and 2, then empty blocks.
            let txs = if h <= 2 {
                vec![Transaction::sign(
                    "recent",
                    &keys[0],
                    h - 1,
                    TxBody::Issue {
                        to: alice,
                        amount: 5,
                        reason: String::new(),
                        receipt_ref: format!("r{h}"),
                        receipt_time_ms: t0,
                    },
                )]
            } else {
                vec![]
            };
            let (block, exec) = state.build_block(txs, t0 + h * 1_000, keys[0].public());
            state.commit(exec);
            let fb = FinalizedBlock {
                certificate: certify("recent", &block, h, &keys),
                block,
            };
            r.observe(&fb, Some(t0 + h * 1_000 + 300));
            r.observe(&fb, None); // a repeat is ignored
        }
        // Two minutes of empty blocks later, the latest transactions remain.
        let latest = r.latest(20);
        assert_eq!(
            latest.iter().map(|t| t.height).collect::<Vec<_>>(),
            vec![2, 1]
        );
        let now = t0 + 130_000;
        let b = r.buckets(now);
        assert_eq!(b.len(), 60);
        assert_eq!(b.iter().map(|x| x.blocks).sum::<u64>(), 130);
        assert_eq!(b.iter().map(|x| x.txs).sum::<u64>(), 2);
        let first = b.iter().find(|x| x.blocks > 0).unwrap();
        assert_eq!(
            first.blocks, 19,
            "blocks at 41 s .. 59 s of the first minute"
        );
        assert_eq!(first.finality_ms_mean, Some(300));
        assert_eq!(first.txs_per_block_max, 1);
        assert!(b
            .windows(2)
            .all(|w| w[1].start_ms == w[0].start_ms + 60_000));
    }
}
