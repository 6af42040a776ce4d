//! The paged sparse Merkle tree (`smt_paged`) at 1,000,000 leaves in the
//! in-memory leaf store, against `SparseMerkleTree` on the same leaves: one
//! block's updates (1,000 transfers: 2,000 changed entries, 1,000 new
//! ones), one proof, and reopening from the bucket summaries or the saved
//! heap. D = 16 gives ~15 leaves per bucket, D = 15 ~31, D = 18 ~4. The
//! summary's size and the one-off build times are printed on stderr.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use alliance_protocol::encoding::hash_with_domain;
use alliance_protocol::smt::SparseMerkleTree;
use alliance_protocol::smt_paged::PagedTree;
use alliance_protocol::Hash32;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const LEAVES: u64 = 1_000_000;
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
    let store: BTreeMap<Hash32, Hash32> = (0..LEAVES).map(|i| (key(i), value(i, 0))).collect();
    let updates = block_updates();
    let started = Instant::now();
    let mut smt = SparseMerkleTree::new();
    smt.apply(store.iter().map(|(k, v)| (*k, Some(*v))));
    eprintln!(
        "SparseMerkleTree of {LEAVES} leaves built in {:?}",
        started.elapsed()
    );
    let mut after = smt.clone();
    after.apply(updates.iter().copied());
    let probe = key(12_345);

    for bits in [16usize, 15, 18] {
        let started = Instant::now();
        let paged = PagedTree::from_leaves(bits, store.iter().map(|(k, v)| (*k, *v))).unwrap();
        eprintln!(
            "D = {bits}: from_leaves {:?}, summary {} bytes, {:.1} leaves per bucket",
            started.elapsed(),
            paged.summary_bytes(),
            LEAVES as f64 / paged.bucket_count() as f64
        );
        assert_eq!(paged.root_hash(), smt.root_hash());
        let mut check = paged.clone();
        let changed = check.apply(&store, updates.iter().copied()).unwrap();
        assert_eq!(check.root_hash(), after.root_hash());
        assert_eq!(paged.prove(&store, &probe).unwrap(), smt.prove(&probe));
        eprintln!("D = {bits}: the block changes {} buckets", changed.len());

        let mut g = c.benchmark_group(format!("smt_paged_1m_d{bits}"));
        g.sample_size(20);
        g.bench_function("apply_3000", |b| {
            b.iter_batched(
                || paged.clone(),
                |mut t| {
                    black_box(t.apply(&store, updates.iter().copied()).unwrap());
                    t
                },
                BatchSize::LargeInput,
            )
        });
        g.bench_function("prove_one", |b| {
            b.iter(|| black_box(paged.prove(&store, black_box(&probe)).unwrap()))
        });
        let summaries: Vec<_> = paged.bucket_summaries().collect();
        g.bench_function("from_bucket_summaries", |b| {
            b.iter(|| {
                black_box(
                    PagedTree::from_bucket_summaries(bits, summaries.iter().copied()).unwrap(),
                )
            })
        });
        let bytes = paged.to_bytes();
        g.bench_function("from_bytes", |b| {
            b.iter(|| black_box(PagedTree::from_bytes(black_box(&bytes)).unwrap()))
        });
        g.finish();
    }

    let mut g = c.benchmark_group("smt_1m");
    g.sample_size(20);
    g.bench_function("apply_3000", |b| {
        b.iter_batched(
            || smt.clone(),
            |mut t| {
                t.apply(updates.iter().copied());
                black_box(t.root_hash());
                t
            },
            BatchSize::LargeInput,
        )
    });
    g.bench_function("prove_one", |b| {
        b.iter(|| black_box(smt.prove(black_box(&probe))))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
