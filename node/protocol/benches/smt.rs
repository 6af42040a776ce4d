//! Sparse Merkle tree costs at ledger scale: one block's worth of updates
//! (1,000 transfers touch about 3,000 state entries) applied to a state of
//! 100,000 entries, and one proof.

use std::hint::black_box;

use alliance_protocol::encoding::hash_with_domain;
use alliance_protocol::smt::SparseMerkleTree;
use alliance_protocol::Hash32;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const LEAVES: u64 = 100_000;
const UPDATES: u64 = 3_000;

fn key(i: u64) -> Hash32 {
    hash_with_domain("bench/key", &i.to_le_bytes())
}

fn value(i: u64, round: u64) -> Hash32 {
    hash_with_domain(
        "bench/value",
        &[i.to_le_bytes(), round.to_le_bytes()].concat(),
    )
}

fn base_tree() -> SparseMerkleTree {
    let mut t = SparseMerkleTree::new();
    t.apply((0..LEAVES).map(|i| (key(i), Some(value(i, 0)))));
    t
}

/// 2,000 changed existing entries (balances) and 1,000 new ones (new
/// accounts), spread over the key space.
fn block_updates() -> Vec<(Hash32, Option<Hash32>)> {
    let existing = (0..2 * UPDATES / 3).map(|j| {
        let i = (j * 48_271) % LEAVES;
        (key(i), Some(value(i, 1)))
    });
    let fresh = (0..UPDATES / 3).map(|j| (key(LEAVES + j), Some(value(LEAVES + j, 1))));
    existing.chain(fresh).collect()
}

fn bench(c: &mut Criterion) {
    let base = base_tree();
    let updates = block_updates();
    let mut g = c.benchmark_group("smt_100k");

    g.bench_function("apply_3000_batch", |b| {
        b.iter_batched(
            || base.clone(),
            |mut t| {
                t.apply(updates.iter().copied());
                black_box(t.root_hash());
                t
            },
            BatchSize::SmallInput,
        )
    });

    g.bench_function("insert_3000_one_by_one", |b| {
        b.iter_batched(
            || base.clone(),
            |mut t| {
                for (k, v) in &updates {
                    if let Some(v) = v {
                        t.insert(*k, *v);
                    }
                }
                black_box(t.root_hash());
                t
            },
            BatchSize::SmallInput,
        )
    });

    let k = key(12_345);
    g.bench_function("prove_one", |b| {
        b.iter(|| black_box(base.prove(black_box(&k))))
    });

    let proof = base.prove(&k);
    let root = base.root_hash();
    let v = value(12_345, 0);
    g.bench_function("verify_one", |b| {
        b.iter(|| black_box(proof.verify(&root, black_box(&k), Some(&v))))
    });

    g.sample_size(10);
    g.bench_function("build_100k_from_empty", |b| {
        b.iter(|| black_box(base_tree().root_hash()))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
