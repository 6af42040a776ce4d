//! Validating and committing a block of 1,000 transfers: signature checks,
//! state execution (with the state-root update) and the durable sled commit.
//! Also each part alone, to see where the time goes; and a follower's whole
//! path for a block whose transactions it first received by gossip
//! (`follower_path`: the node's own CPU per transaction, without the
//! network's noise; docs/benchmarks.md, issue #19).
//!
//! `cargo bench -p alliance-node --bench block_commit`

use std::sync::Arc;
use std::time::{Duration, Instant};

use alliance_node::chain::Chain;
use alliance_node::mempool::MempoolLimits;
use alliance_node::network::Verdict;
use alliance_node::runtime::{gossip_batches, Shared};
use alliance_node::store::Store;
use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::state::{verify_signatures, LedgerState};
use alliance_protocol::{Block, FinalizedBlock, Keypair, Transaction, TxBody};
use criterion::{criterion_group, criterion_main, Criterion};

const CHAIN: &str = "bench-chain";
const TXS: usize = 1_000;
const CUSTOMERS: usize = 4_000;

/// A leader that pre-funds customers and then builds blocks of transfers.
struct Leader {
    genesis: Genesis,
    merchants: Vec<Keypair>,
    customers: Vec<Keypair>,
    state: LedgerState,
    next_sender: usize,
    funding: Vec<FinalizedBlock>,
}

impl Leader {
    fn new() -> Self {
        let (genesis, merchants) = demo_genesis(CHAIN, 4, 1_700_000_000_000);
        let customers: Vec<Keypair> = (0..CUSTOMERS)
            .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
            .collect();
        let mut leader = Leader {
            state: LedgerState::from_genesis(&genesis),
            genesis,
            merchants,
            customers,
            next_sender: 0,
            funding: vec![],
        };
        // Fund every customer from merchant 0 in blocks of 1,000 issuances.
        for chunk in 0..CUSTOMERS / TXS {
            let m = leader.merchants[0].clone();
            let base = leader.state.account(&m.public()).nonce;
            let txs = (0..TXS)
                .map(|i| {
                    let to = leader.customers[chunk * TXS + i].public();
                    Transaction::sign(
                        CHAIN,
                        &m,
                        base + i as u64,
                        TxBody::Issue {
                            to,
                            amount: 100_000,
                            reason: "bench".into(),
                            receipt_ref: format!("f{chunk}-{i}"),
                            receipt_time_ms: leader.state.tip().timestamp_ms,
                        },
                    )
                })
                .collect();
            let fb = leader.seal(txs);
            leader.funding.push(fb);
        }
        leader
    }

    fn seal(&mut self, txs: Vec<Transaction>) -> FinalizedBlock {
        let time = self.state.tip().timestamp_ms + 500;
        let (block, exec) = self
            .state
            .build_block(txs, time, self.merchants[0].public());
        assert_eq!(block.txs.len(), TXS, "every bench transaction applies");
        self.state.commit(exec);
        let certificate = certify(CHAIN, &block, block.header.height, &self.merchants);
        FinalizedBlock { block, certificate }
    }

    /// The next block: 1,000 transfers from distinct senders.
    fn transfers(&mut self) -> FinalizedBlock {
        let txs = (0..TXS)
            .map(|i| {
                let from = &self.customers[(self.next_sender + i) % CUSTOMERS];
                let to = self.customers[(self.next_sender + i * 7 + 1) % CUSTOMERS].public();
                let nonce = self.state.account(&from.public()).nonce;
                alliance_protocol::fixtures::transfer(CHAIN, from, nonce, to, 1)
            })
            .collect();
        self.next_sender = (self.next_sender + TXS) % CUSTOMERS;
        self.seal(txs)
    }
}

/// A validator with a real sled store, following the leader.
struct Validator {
    _dir: tempfile::TempDir,
    store: Store,
    state: LedgerState,
}

impl Validator {
    fn new(leader: &Leader) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, mut state) = Store::open(&dir.path().join("db"), &leader.genesis).unwrap();
        for fb in &leader.funding {
            let exec = state.execute(&fb.block).unwrap();
            store.commit(exec, fb, &mut state).unwrap();
        }
        Validator {
            _dir: dir,
            store,
            state,
        }
    }
}

/// Transactions per gossip message a follower receives: what a sender's
/// 20 ms gathering window holds at 3,000 tx/s.
const GOSSIP_TXS: usize = 60;

/// A validator as the node runs it: the chain and mempool it shares with
/// its API, fed by gossip.
struct Follower {
    _dir: tempfile::TempDir,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
}

impl Follower {
    fn new(leader: &Leader) -> Self {
        let v = Validator::new(leader);
        let (gossip, _) = tokio::sync::mpsc::channel(1);
        let shared = Shared::new(
            leader.genesis.clone(),
            Chain::new(v.store, v.state),
            MempoolLimits::default(),
            gossip,
        );
        Follower {
            _dir: v._dir,
            shared,
            runtime: tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .build()
                .unwrap(),
        }
    }

    /// What the node does for a block: admit its transactions from gossip
    /// (decode, verify signatures, mempool), verify the proposal (only
    /// signatures the mempool has not seen), commit it when finalized and
    /// clear the mempool. The driver's steps, in its order.
    fn follow(&self, gossip: &[Vec<u8>], fb: &FinalizedBlock) {
        for bytes in gossip {
            let verdict = self.runtime.block_on(self.shared.admit_gossip(bytes));
            assert_eq!(verdict, Verdict::Accept);
        }
        let block = &fb.block;
        let known: Vec<bool> = {
            let pool = self.shared.mempool.lock().unwrap();
            block.txs.iter().map(|t| pool.holds(t)).collect()
        };
        let mut chain = self.shared.chain.write().unwrap();
        chain
            .verify_known(block, &[], block.header.timestamp_ms, &known)
            .unwrap();
        let done = chain.finalize(block, fb.certificate.clone()).unwrap();
        self.shared.metrics.finalized(done.tx_ids.iter().copied());
        let mut pool = self.shared.mempool.lock().unwrap();
        pool.remove_committed(&block.txs, &done.tx_ids, chain.state());
        assert!(pool.is_empty());
    }
}

fn bench(c: &mut Criterion) {
    follower_path(c);
    let mut leader = Leader::new();
    let mut validator = Validator::new(&leader);
    let mut g = c.benchmark_group("block_of_1000_transfers");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));

    let sample = leader.transfers();
    g.bench_function("verify_signatures_parallel", |b| {
        b.iter(|| alliance_protocol::state::verify_signatures_parallel(&sample.block.txs))
    });
    g.bench_function("verify_signatures", |b| {
        b.iter(|| verify_signatures(&sample.block.txs))
    });
    let unverified: Vec<bool> = vec![true; TXS];
    g.bench_function("execute_without_signatures", |b| {
        b.iter(|| {
            validator
                .state
                .execute_verified(&sample.block, &unverified)
                .unwrap()
        })
    });
    g.bench_function("header_and_tx_root", |b| {
        b.iter(|| Block::compute_tx_root(&sample.block.txs))
    });
    let exec = validator.state.execute(&sample.block).unwrap();
    validator
        .store
        .commit(exec, &sample, &mut validator.state)
        .unwrap();

    // The full path a validator takes for each finalized block, on a chain
    // that keeps growing: verify, execute, persist durably, apply.
    g.bench_function("validate_and_commit", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let fb = leader.transfers();
                let start = Instant::now();
                // The node's path: verdicts on every core, then execution.
                let verdicts = alliance_protocol::state::verify_signatures_parallel(&fb.block.txs);
                let exec = validator
                    .state
                    .execute_verified(&fb.block, &verdicts)
                    .unwrap();
                validator
                    .store
                    .commit(exec, &fb, &mut validator.state)
                    .unwrap();
                timed += start.elapsed();
            }
            timed
        })
    });
    g.finish();
}

/// The CPU time this process has used, on every thread: the figure that
/// matters when four nodes share two cores (wall time hides the signature
/// checks that run in parallel).
fn process_cpu() -> Duration {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `t` is a valid timespec for the call to fill in.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_PROCESS_CPUTIME_ID, &mut t) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_PROCESS_CPUTIME_ID)");
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// A follower's CPU time for one block of 1,000 transfers, from gossip to
/// commit, on all its threads (criterion reports it as the time).
fn follower_path(c: &mut Criterion) {
    let mut leader = Leader::new();
    let follower = Follower::new(&leader);
    let mut g = c.benchmark_group("follower");
    g.sample_size(10)
        .measurement_time(Duration::from_secs(20))
        .warm_up_time(Duration::from_secs(2));
    g.bench_function("follower_path", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                let fb = leader.transfers();
                let gossip: Vec<Vec<u8>> = fb
                    .block
                    .txs
                    .chunks(GOSSIP_TXS)
                    .flat_map(gossip_batches)
                    .collect();
                let start = process_cpu();
                follower.follow(&gossip, &fb);
                timed += process_cpu() - start;
            }
            timed
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
