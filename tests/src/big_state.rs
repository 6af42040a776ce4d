//! `alliance-bench big-state`: issue #14's generated chain. A ledger state
//! of millions of accounts and receipts is written straight into a store
//! ([`alliance_node::store::bulk`], no consensus), then a second process
//! opens it as a node does, serves balance queries and proofs from it, and
//! commits blocks of transfers on it, measuring the open time, the query
//! and proof latency, the commit time per block and the resident memory,
//! all in the same run.
//!
//! The state: `accounts` accounts, each holding one lot of one of the four
//! demo merchants' points, expiring on one of the next 365 days (so one
//! expiry-queue entry each); `receipts` used receipts, each with its
//! receipt-queue entry, spread over the receipt window. The first `signers`
//! accounts have the demo customer keys (they send the transfers); the
//! others have keys derived from their index (they receive).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alliance_node::store::bulk;
use alliance_node::store::{Engine, Store};
use alliance_protocol::encoding;
use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::light::EntryProof;
use alliance_protocol::state::{
    verify_signatures_parallel, Account, LedgerState, Lot, StateKey, StateValue, UsedReceipt,
};
use alliance_protocol::{Block, BlockHeader, FinalizedBlock, Keypair, MerchantId, PublicKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use serde_json::{json, Value};

use crate::store_bench::rss_mib;

const CHAIN: &str = "big-state";
const GENESIS_MS: u64 = 1_700_000_000_000;
const DAY_MS: u64 = 86_400_000;
/// Points of a receiving account's lot.
const POINTS: u64 = 1_000;
/// Points of a signer's lot: a transfer of 1 point a block for a long run.
const SIGNER_POINTS: u64 = 1_000_000;

/// What to generate (the options of `alliance-bench big-state-generate`).
#[derive(Debug, Clone, clap::Args)]
pub struct GenConfig {
    /// Data directory of the new store (must not exist or be empty).
    #[arg(long)]
    pub dir: PathBuf,
    /// Accounts.
    #[arg(long, default_value_t = 10_000_000)]
    pub accounts: u64,
    /// Used receipts (each with its receipt-queue entry).
    #[arg(long, default_value_t = 20_000_000)]
    pub receipts: u64,
    /// Accounts with signing keys (the senders of `big-state-run`).
    #[arg(long, default_value_t = 20_000)]
    pub signers: u64,
    /// Bucket depth of the state tree (about log2(entries / 12)).
    #[arg(long, default_value_t = 21)]
    pub bits: usize,
    /// Storage engine (fjall, the node's; redb; lmdb with
    /// `--features extra-engines`).
    #[arg(long, default_value = "fjall")]
    pub engine: String,
}

/// What to measure on a generated store (the options of `alliance-bench
/// big-state-run`).
#[derive(Debug, Clone, clap::Args)]
pub struct RunConfig {
    /// The generated store's data directory.
    #[arg(long)]
    pub dir: PathBuf,
    /// Accounts it was generated with.
    #[arg(long, default_value_t = 10_000_000)]
    pub accounts: u64,
    /// Signers it was generated with.
    #[arg(long, default_value_t = 20_000)]
    pub signers: u64,
    /// Blocks of transfers to commit.
    #[arg(long, default_value_t = 96)]
    pub blocks: u64,
    /// Transfers per block.
    #[arg(long, default_value_t = 1_000)]
    pub txs_per_block: usize,
    /// Balance queries and proofs to serve.
    #[arg(long, default_value_t = 10_000)]
    pub queries: usize,
    /// Resident-memory budget to report against, MiB.
    #[arg(long, default_value_t = 1024.0)]
    pub budget_mib: f64,
    /// Storage engine it was generated with.
    #[arg(long, default_value = "fjall")]
    pub engine: String,
}

/// The engine named `name`, with its cache at the node's default budget
/// (or `BIG_STATE_CACHE_MIB`).
fn engine(name: &str) -> Engine {
    let cache = std::env::var("BIG_STATE_CACHE_MIB")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map(|m| m << 20);
    match (Engine::from_name(name), cache) {
        (Some(Engine::Redb { .. }), Some(cache_bytes)) => Engine::Redb { cache_bytes },
        (Some(Engine::Fjall { .. }), Some(cache_bytes)) => Engine::Fjall { cache_bytes },
        (Some(e), _) => e,
        (None, _) => panic!(
            "unknown engine {name:?}: one of {:?} (lmdb: build with --features extra-engines)",
            Engine::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>()
        ),
    }
}

fn genesis() -> (Genesis, Vec<Keypair>) {
    demo_genesis(CHAIN, 4, GENESIS_MS)
}

/// Account `i`'s key.
fn account_key(i: u64, signers: u64) -> PublicKey {
    if i < signers {
        demo_customer_key(CHAIN, &format!("c{i}")).public()
    } else {
        PublicKey(encoding::hash_with_domain("big-state/account", &i.to_le_bytes()).0)
    }
}

/// The UTC midnight `1 + i % 365` days after the genesis day.
fn expiry_of(i: u64) -> u64 {
    (GENESIS_MS / DAY_MS + 1 + i % 365) * DAY_MS
}

fn merchant_of(ids: &[MerchantId], i: u64) -> MerchantId {
    ids[(i % ids.len() as u64) as usize].clone()
}

/// Writes the generated state and its block. Prints progress to stderr.
pub fn generate(config: &GenConfig) -> Value {
    let (genesis, keys) = genesis();
    let base = LedgerState::from_genesis(&genesis);
    let ids: Vec<MerchantId> = genesis.merchants.iter().map(|m| m.id.clone()).collect();
    // The merchants' issued totals match the lots (conservation).
    let mut issued = vec![0u64; ids.len()];
    for i in 0..config.accounts {
        issued[(i % ids.len() as u64) as usize] += if i < config.signers {
            SIGNER_POINTS
        } else {
            POINTS
        };
    }
    let mut head: Vec<(StateKey, StateValue)> = base
        .entries()
        .expect("the genesis state is in memory")
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    for (k, v) in head.iter_mut() {
        if let (StateKey::Merchant(id), StateValue::Merchant(m)) = (k, v) {
            let at = ids
                .iter()
                .position(|x| x == id)
                .expect("a genesis merchant");
            m.stats.issued = issued[at];
        }
    }
    let (signers, accounts, head_len) = (config.signers, config.accounts, head.len() as u64);
    // Entry `i`: the genesis entries, then two per account (the account,
    // its expiry-queue entry), then two per receipt (the receipt, its
    // receipt-queue entry).
    let entry_at = |i: u64| -> (StateKey, StateValue) {
        if i < head_len {
            return head[i as usize].clone();
        }
        let j = i - head_len;
        if j < 2 * accounts {
            let a = j / 2;
            let owner = account_key(a, signers);
            let expiry = expiry_of(a);
            if j.is_multiple_of(2) {
                let lot = Lot {
                    issuer: merchant_of(&ids, a),
                    expiry_ms: Some(expiry),
                    amount: if a < signers { SIGNER_POINTS } else { POINTS },
                };
                (
                    StateKey::Account(owner),
                    StateValue::Account(Account {
                        nonce: 0,
                        lots: vec![lot],
                    }),
                )
            } else {
                (StateKey::Expiry(expiry, owner), StateValue::Expiry)
            }
        } else {
            let r = (j - 2 * accounts) / 2;
            let merchant = merchant_of(&ids, r);
            let receipt_ref = format!("r{r:010}");
            // Spread over the 89 days before the genesis (inside the window).
            let time = GENESIS_MS - (r % 89) * DAY_MS - (r % 1_000);
            if (j - 2 * accounts).is_multiple_of(2) {
                (
                    StateKey::Receipt(merchant, receipt_ref),
                    StateValue::Receipt(UsedReceipt {
                        height: 1,
                        receipt_time_ms: time,
                    }),
                )
            } else {
                (
                    StateKey::ReceiptQueue(time, merchant, receipt_ref),
                    StateValue::ReceiptQueue,
                )
            }
        }
    };
    let total = head_len + 2 * config.accounts + 2 * config.receipts;
    let start = Instant::now();
    let mut last_print = Instant::now();
    let loaded = bulk::bulk_load(
        bulk::NewStore {
            path: &config.dir,
            engine: engine(&config.engine),
            bits: config.bits,
        },
        &genesis,
        total,
        entry_at,
        |root| tip_block(&genesis, &keys, root),
        |written| {
            if last_print.elapsed() > Duration::from_secs(10) {
                eprintln!(
                    "{written} of {total} records, {:.0} s",
                    start.elapsed().as_secs_f64()
                );
                last_print = Instant::now();
            }
        },
    )
    .expect("bulk load");
    let secs = start.elapsed().as_secs_f64();
    let disk = crate::bench::disk_bytes(&config.dir);
    eprintln!(
        "wrote {} entries in {secs:.0} s; {:.2} GB on disk; state root {}",
        loaded.entries,
        disk as f64 / 1e9,
        loaded.state_root
    );
    json!({
        "engine": config.engine,
        "accounts": config.accounts,
        "receipts": config.receipts,
        "signers": config.signers,
        "bits": config.bits,
        "entries": loaded.entries,
        "seconds": secs,
        "disk_bytes": disk,
        "state_root": loaded.state_root.to_string(),
    })
}

/// The empty block at height 1 that carries the loaded state's root.
fn tip_block(
    genesis: &Genesis,
    keys: &[Keypair],
    root: alliance_protocol::Hash32,
) -> FinalizedBlock {
    let state = LedgerState::from_genesis(genesis);
    let block = Block {
        header: BlockHeader {
            chain_id: CHAIN.into(),
            height: 1,
            timestamp_ms: GENESIS_MS + 1_000,
            prev_hash: genesis.hash(),
            tx_count: 0,
            tx_root: Block::compute_tx_root(&[]),
            state_root: root,
            proposer: keys[0].public(),
            validator_set_hash: state.validator_set().hash(),
        },
        txs: vec![],
    };
    let certificate = certify(CHAIN, &block, 1, keys);
    FinalizedBlock { block, certificate }
}

/// Milliseconds of a duration.
fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Percentile `p` (0..=100) of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((sorted.len() - 1) as f64 * p / 100.0).round() as usize;
    sorted[at]
}

/// One block's figures.
#[derive(Debug, Clone, Serialize)]
struct BlockPoint {
    height: u64,
    /// Verify, execute, commit to the store and apply: the whole path.
    commit_ms: f64,
    verify_ms: f64,
    execute_ms: f64,
    /// Commit to the store and apply to the state (one call).
    store_ms: f64,
    rss_mib: f64,
}

/// Opens the generated store and measures (see the module documentation).
pub fn run(config: &RunConfig) -> Value {
    let (genesis, keys) = genesis();
    let (rss_before, _, _) = rss_mib();
    let start = Instant::now();
    let (mut store, mut state) = Store::open_with(&config.dir, &genesis, engine(&config.engine))
        .expect("open the generated store");
    let open_s = start.elapsed().as_secs_f64();
    let (rss_open, _, _) = rss_mib();
    eprintln!(
        "opened at height {} in {open_s:.2} s, RSS {rss_open:.0} MiB (before: {rss_before:.0})",
        state.tip().height
    );

    // Balance queries and proofs of random accounts, checked.
    let mut rng = ChaCha8Rng::seed_from_u64(14);
    let root = state.state_root();
    let (mut query_ms, mut proof_ms) = (Vec::new(), Vec::new());
    for _ in 0..config.queries {
        let key = account_key(rng.gen_range(0..config.accounts), config.signers);
        let t = Instant::now();
        let account = state.account(&key);
        query_ms.push(ms(t.elapsed()));
        assert!(account.balance() > 0, "a generated account holds points");
        let t = Instant::now();
        let proof = EntryProof::of(&state, StateKey::Account(key));
        proof_ms.push(ms(t.elapsed()));
        proof
            .verify(&root)
            .expect("the proof verifies against the root");
    }
    query_ms.sort_by(f64::total_cmp);
    proof_ms.sort_by(f64::total_cmp);
    eprintln!(
        "{} balance queries: p50 {:.3} ms, p99 {:.3} ms; proofs: p50 {:.3} ms, p99 {:.3} ms",
        config.queries,
        percentile(&query_ms, 50.0),
        percentile(&query_ms, 99.0),
        percentile(&proof_ms, 50.0),
        percentile(&proof_ms, 99.0)
    );

    // Blocks of transfers from the signers to random accounts: the time of
    // what a validator does for each final block (verify, execute, commit
    // durably, apply), as `cargo bench --bench block_commit` measures it.
    let senders: Vec<Keypair> = (0..config.signers)
        .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
        .collect();
    let mut next = 0usize;
    let mut points = Vec::new();
    let mut rss_max = rss_open;
    for _ in 0..config.blocks {
        let mut txs = Vec::with_capacity(config.txs_per_block);
        for _ in 0..config.txs_per_block.min(senders.len()) {
            let from = &senders[next % senders.len()];
            next += 1;
            let to = account_key(rng.gen_range(0..config.accounts), config.signers);
            let nonce = state.account(&from.public()).nonce;
            txs.push(alliance_protocol::fixtures::transfer(
                CHAIN, from, nonce, to, 1,
            ));
        }
        let time = state.tip().timestamp_ms + 1_000;
        // Built with the store's bucket cache bypassed: the timed execution
        // below finds only what earlier timed blocks left in it, as a
        // validator that did not build the block would.
        store.leaf_cache().set_bypass(true);
        let (block, _) = state.seal_block(txs, time, keys[0].public());
        store.leaf_cache().set_bypass(false);
        let view = block.header.height;
        let certificate = certify(CHAIN, &block, view, &keys);
        let fb = FinalizedBlock { block, certificate };
        let t = Instant::now();
        let verdicts = verify_signatures_parallel(&fb.block.txs);
        let verified = Instant::now();
        let exec = state
            .execute_verified(&fb.block, &verdicts)
            .expect("the block executes");
        let executed = Instant::now();
        assert!(exec
            .outcomes
            .iter()
            .all(|o| *o == alliance_protocol::state::TxOutcome::Applied));
        store.commit(exec, &fb, &mut state).expect("commit");
        let stored = Instant::now();
        let (rss, _, _) = rss_mib();
        rss_max = rss_max.max(rss);
        points.push(BlockPoint {
            height: state.tip().height,
            commit_ms: ms(stored - t),
            verify_ms: ms(verified - t),
            execute_ms: ms(executed - verified),
            store_ms: ms(stored - executed),
            rss_mib: rss,
        });
    }
    let mut commit: Vec<f64> = points.iter().map(|p| p.commit_ms).collect();
    let mean = commit.iter().sum::<f64>() / commit.len().max(1) as f64;
    let phase =
        |f: fn(&BlockPoint) -> f64| points.iter().map(f).sum::<f64>() / points.len().max(1) as f64;
    let phases = json!({
        "verify_ms": phase(|p| p.verify_ms),
        "execute_ms": phase(|p| p.execute_ms),
        "store_ms": phase(|p| p.store_ms),
    });
    eprintln!("mean per block: {phases}");
    commit.sort_by(f64::total_cmp);
    eprintln!(
        "{} blocks of {} transfers: mean {mean:.1} ms a block (p50 {:.1}, p99 {:.1}); RSS at most {rss_max:.0} MiB of {:.0}",
        points.len(),
        config.txs_per_block,
        percentile(&commit, 50.0),
        percentile(&commit, 99.0),
        config.budget_mib
    );
    let (hits, misses) = store.leaf_cache().hits_and_misses();
    json!({
        "engine": config.engine,
        "open_s": open_s,
        "leaf_cache_hits": hits,
        "leaf_cache_misses": misses,
        "rss_after_open_mib": rss_open,
        "rss_max_mib": rss_max,
        "budget_mib": config.budget_mib,
        "queries": config.queries,
        "query_ms_p50": percentile(&query_ms, 50.0),
        "query_ms_p99": percentile(&query_ms, 99.0),
        "proof_ms_p50": percentile(&proof_ms, 50.0),
        "proof_ms_p99": percentile(&proof_ms, 99.0),
        "txs_per_block": config.txs_per_block,
        "commit_ms_mean": mean,
        "commit_ms_p50": percentile(&commit, 50.0),
        "commit_ms_p99": percentile(&commit, 99.0),
        "phases_mean": phases,
        "blocks": points,
    })
}
