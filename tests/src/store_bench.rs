//! `alliance-bench store`: the chain store alone, on one engine, under a
//! validator's write and read pattern, in one process (no consensus, no
//! network), reporting resident memory, disk and throughput as the chain
//! grows (issue #14: which engine keeps a node's memory flat).
//!
//! Per block, in the order a validator's driver does it:
//! `persist_voted_block`, `persist_vote` (notarize, flushed),
//! `journal_certificate` (notarization), `persist_vote` (finalize, flushed),
//! `journal_certificate` (finalization), `Store::commit` (block, tx index,
//! history, state changes, tip; flushed) and `prune_after_finalized` (view
//! window of 512, voted blocks); then reads: blocks by
//! height, transaction locations and account histories at random. Blocks
//! hold transfers of 1 point among a fixed set of funded customers, built
//! and executed by a real [`LedgerState`], so the state changes are real.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use alliance_node::store::{Engine, Store};

use crate::bench::disk_bytes;
use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::state::LedgerState;
use alliance_protocol::{
    FinalizedBlock, Keypair, SignedVote, Transaction, TxBody, VoteData, VoteDomain, VoteKind,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

const CHAIN: &str = "store-bench";
/// The consensus core keeps votes and certificates of this many views
/// (`alliance_consensus::config::VIEW_WINDOW`).
const VIEW_WINDOW: u64 = alliance_consensus::config::VIEW_WINDOW;
/// Points each customer is funded with: enough for a transfer of 1 point
/// every block for 100,000 blocks, under the demo policy's caps (1,000,000 a
/// day per customer, 10^12 outstanding: 10^7 customers at most).
const FUNDING_POINTS: u64 = 100_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct Config {
    /// Engine name ([`Engine::NAMES`]).
    pub engine: String,
    /// Transfers per block.
    pub txs_per_block: usize,
    /// Funded customer accounts.
    pub accounts: usize,
    /// Stop after this many blocks of transfers (0: no limit).
    pub blocks: u64,
    /// Stop after this long (zero: no limit).
    pub duration: Duration,
    /// Print a checkpoint every this many blocks.
    pub every: u64,
    /// Reads of each kind (block, tx location, history) per block.
    pub reads: usize,
    /// Data directory (created; must not hold another engine's data).
    pub dir: PathBuf,
}

/// One checkpoint of a run.
#[derive(Debug, Clone, Serialize)]
pub struct Checkpoint {
    /// Blocks of transfers committed so far (funding blocks excluded).
    pub blocks: u64,
    /// Transfers committed so far.
    pub txs: u64,
    /// Seconds since the first block of transfers.
    pub elapsed_s: f64,
    /// Resident memory (VmRSS), MiB.
    pub rss_mib: f64,
    /// Its anonymous part (heap), MiB.
    pub rss_anon_mib: f64,
    /// Its file-backed part (memory-mapped files), MiB.
    pub rss_file_mib: f64,
    /// Bytes allocated on disk by the data directory.
    pub disk_bytes: u64,
    /// Disk bytes per committed transfer (funding included in the bytes).
    pub disk_bytes_per_tx: f64,
    /// Blocks per second since the previous checkpoint.
    pub blocks_per_s: f64,
    /// Transfers per second since the previous checkpoint.
    pub txs_per_s: f64,
    /// Mean milliseconds per block spent in the store (writes, flushes,
    /// prunes and reads) since the previous checkpoint.
    pub store_ms_per_block: f64,
}

/// A validator's view of the run: the store, the state, the keys.
struct Node {
    genesis: Genesis,
    merchants: Vec<Keypair>,
    customers: Vec<Keypair>,
    store: Store,
    state: LedgerState,
    domain: VoteDomain,
    next_sender: usize,
    rng: ChaCha8Rng,
}

impl Node {
    fn open(config: &Config) -> Node {
        let engine = Engine::from_name(&config.engine).unwrap_or_else(|| {
            panic!(
                "unknown engine {:?}: one of {:?} (lmdb: build with --features extra-engines)",
                config.engine,
                Engine::NAMES.iter().map(|(n, _)| *n).collect::<Vec<_>>()
            )
        });
        let (genesis, merchants) = demo_genesis(CHAIN, 4, 1_700_000_000_000);
        std::fs::create_dir_all(&config.dir).expect("create the data directory");
        let (store, state) = Store::open_with(&config.dir, &genesis, engine).expect("open store");
        let customers = (0..config.accounts)
            .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
            .collect();
        let domain = VoteDomain {
            chain_id: CHAIN.into(),
            validator_set_hash: state.validator_set().hash(),
        };
        Node {
            genesis,
            merchants,
            customers,
            store,
            state,
            domain,
            next_sender: 0,
            rng: ChaCha8Rng::seed_from_u64(14),
        }
    }

    /// Funds every customer from merchant 0, `per_block` issuances a block.
    fn fund(&mut self, per_block: usize) {
        let m = self.merchants[0].clone();
        for chunk in self.customers.clone().chunks(per_block.max(1)) {
            let base = self.state.account(&m.public()).nonce;
            // The time of the block about to be built (see `finalize`).
            let now = self.genesis.genesis_time_ms + (self.state.tip().height + 1) * 1_000;
            let txs = chunk
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let body = TxBody::Issue {
                        to: c.public(),
                        amount: FUNDING_POINTS,
                        reason: "bench".into(),
                        receipt_ref: format!("f{}-{i}", base),
                        receipt_time_ms: now,
                    };
                    Transaction::sign(CHAIN, &m, base + i as u64, body)
                })
                .collect();
            self.finalize(txs);
        }
    }

    /// The next block of transfers: `n` distinct senders, 1 point each.
    fn transfers(&mut self, n: usize) -> Vec<Transaction> {
        let count = self.customers.len();
        let txs = (0..n.min(count))
            .map(|i| {
                let from = &self.customers[(self.next_sender + i) % count];
                let to = self.customers[(self.next_sender + i * 7 + 1) % count].public();
                let nonce = self.state.account(&from.public()).nonce;
                let body = TxBody::Transfer {
                    to,
                    amount: 1,
                    memo: String::new(),
                };
                Transaction::sign(CHAIN, from, nonce, body)
            })
            .collect();
        self.next_sender = (self.next_sender + n) % count;
        txs
    }

    fn vote(&self, kind: VoteKind, view: u64, fb: &FinalizedBlock) -> SignedVote {
        VoteData {
            kind,
            view,
            height: fb.block.header.height,
            block_hash: fb.block.hash(),
        }
        .sign(&self.domain, &self.merchants[1])
    }

    /// Builds, votes for, certifies and commits a block of `txs`, with a
    /// validator's consensus writes around the commit. Returns the time
    /// spent in the store.
    fn finalize(&mut self, txs: Vec<Transaction>) -> Duration {
        let height = self.state.tip().height + 1;
        let view = height;
        let time = self.genesis.genesis_time_ms + height * 1_000;
        let offered = txs.len();
        let (block, exec) = self
            .state
            .build_block(txs, time, self.merchants[0].public());
        assert_eq!(block.txs.len(), offered, "every bench transaction applies");
        let certificate = certify(CHAIN, &block, view, &self.merchants);
        let fb = FinalizedBlock { block, certificate };
        let mut notarization = fb.certificate.clone();
        notarization.kind = VoteKind::Notarize;
        let notarize = self.vote(VoteKind::Notarize, view, &fb);
        let finalize = self.vote(VoteKind::Finalize, view, &fb);

        let start = Instant::now();
        let s = &mut self.store;
        s.persist_voted_block(&fb.block).expect("voted block");
        s.persist_vote(&notarize).expect("notarize vote");
        s.journal_certificate(&notarization).expect("journal");
        s.persist_vote(&finalize).expect("finalize vote");
        s.journal_certificate(&fb.certificate).expect("journal");
        s.commit(exec, &fb, &mut self.state).expect("commit");
        s.prune_after_finalized(view.saturating_sub(VIEW_WINDOW), height)
            .expect("prune");
        start.elapsed()
    }

    /// Random reads a node's API serves: blocks, transaction locations,
    /// account histories.
    fn read(&mut self, reads: usize) -> Duration {
        let start = Instant::now();
        let tip = self.store.tip().height;
        for _ in 0..reads {
            let h = self.rng.gen_range(1..=tip);
            let fb = self.store.block(h).expect("read").expect("block present");
            if let Some(tx) = fb.block.txs.first() {
                let loc = self.store.tx_location(&tx.hash()).expect("read");
                assert_eq!(loc.map(|l| l.height), Some(h), "tx index agrees");
            }
            let who = &self.customers[self.rng.gen_range(0..self.customers.len())];
            self.store
                .history(&who.public(), None, 20)
                .expect("history");
        }
        start.elapsed()
    }
}

/// VmRSS, RssAnon and RssFile of this process, in MiB.
pub fn rss_mib() -> (f64, f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .map(|kb| kb / 1024.0)
            .unwrap_or(0.0)
    };
    (field("VmRSS:"), field("RssAnon:"), field("RssFile:"))
}

/// Runs the benchmark, printing a line per checkpoint, and returns the
/// checkpoints.
pub fn run(config: &Config) -> Vec<Checkpoint> {
    let mut node = Node::open(config);
    let funding = Instant::now();
    node.fund(config.txs_per_block);
    eprintln!(
        "engine {}: {} accounts funded in {:.1?} ({} blocks); then blocks of {} transfers",
        config.engine,
        config.accounts,
        funding.elapsed(),
        node.store.tip().height,
        config.txs_per_block
    );
    println!(
        "{:>7} {:>10} {:>8} {:>9} {:>9} {:>9} {:>10} {:>8} {:>8} {:>9} {:>9}",
        "blocks",
        "txs",
        "secs",
        "RSS MiB",
        "anon MiB",
        "file MiB",
        "disk MiB",
        "disk B/tx",
        "blk/s",
        "tx/s",
        "store ms"
    );
    let start = Instant::now();
    let mut points = vec![checkpoint(
        config,
        0,
        0,
        Duration::ZERO,
        0.0,
        Duration::ZERO,
        0,
    )];
    let (mut blocks, mut txs) = (0u64, 0u64);
    let (mut last_at, mut store_time) = (Duration::ZERO, Duration::ZERO);
    loop {
        let block_txs = node.transfers(config.txs_per_block);
        txs += block_txs.len() as u64;
        store_time += node.finalize(block_txs);
        store_time += node.read(config.reads);
        blocks += 1;
        let elapsed = start.elapsed();
        let done = (config.blocks > 0 && blocks >= config.blocks)
            || (!config.duration.is_zero() && elapsed >= config.duration);
        if blocks % config.every.max(1) == 0 || done {
            let since = (elapsed - last_at).as_secs_f64();
            let in_window = blocks - points.last().map_or(0, |p| p.blocks);
            let p = checkpoint(config, blocks, txs, elapsed, since, store_time, in_window);
            points.push(p);
            last_at = elapsed;
            store_time = Duration::ZERO;
        }
        if done {
            break;
        }
    }
    points
}

fn checkpoint(
    config: &Config,
    blocks: u64,
    txs: u64,
    elapsed: Duration,
    window_s: f64,
    store_time: Duration,
    window_blocks: u64,
) -> Checkpoint {
    let (rss, anon, file) = rss_mib();
    let disk = disk_bytes(&config.dir);
    let per_block = window_blocks.max(1) as f64;
    let rate = |n: f64| if window_s > 0.0 { n / window_s } else { 0.0 };
    let p = Checkpoint {
        blocks,
        txs,
        elapsed_s: elapsed.as_secs_f64(),
        rss_mib: rss,
        rss_anon_mib: anon,
        rss_file_mib: file,
        disk_bytes: disk,
        disk_bytes_per_tx: if txs > 0 {
            disk as f64 / txs as f64
        } else {
            0.0
        },
        blocks_per_s: rate(window_blocks as f64),
        txs_per_s: rate(window_blocks as f64 * config.txs_per_block as f64),
        store_ms_per_block: store_time.as_secs_f64() * 1e3 / per_block,
    };
    println!(
        "{:>7} {:>10} {:>8.1} {:>9.1} {:>9.1} {:>9.1} {:>10.1} {:>9.0} {:>8.2} {:>9.0} {:>9.1}",
        p.blocks,
        p.txs,
        p.elapsed_s,
        p.rss_mib,
        p.rss_anon_mib,
        p.rss_file_mib,
        p.disk_bytes as f64 / (1 << 20) as f64,
        p.disk_bytes_per_tx,
        p.blocks_per_s,
        p.txs_per_s,
        p.store_ms_per_block
    );
    p
}

/// RSS growth in MiB per 1,000 blocks between the checkpoint a third into
/// the run (past the warm-up) and the last one.
pub fn growth_per_1000_blocks(points: &[Checkpoint]) -> f64 {
    let (Some(last), Some(first)) = (points.last(), points.get(points.len() / 3)) else {
        return 0.0;
    };
    if last.blocks <= first.blocks {
        return 0.0;
    }
    (last.rss_mib - first.rss_mib) * 1_000.0 / (last.blocks - first.blocks) as f64
}
