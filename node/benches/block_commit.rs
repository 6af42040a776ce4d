//! Validating and committing a block of 1,000 transfers: signature checks,
//! state execution (with the state-root update) and the durable sled commit.
//! Also each part alone, to see where the time goes.
//!
//! `cargo bench -p alliance-node --bench block_commit`

use std::time::{Duration, Instant};

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

fn bench(c: &mut Criterion) {
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

criterion_group!(benches, bench);
criterion_main!(benches);
