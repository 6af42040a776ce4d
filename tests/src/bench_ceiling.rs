//! The machine's ceiling for an alliance, measured in the same run as the
//! load: how fast one core verifies ed25519 signatures (ed25519-dalek one by
//! one and batched; the protocol's rule one by one and in the batches the
//! node uses), and how fast the node's storage engine (fjall) writes durable
//! batches. Every validator
//! verifies every transaction once and all of them share the same cores, so
//! `cores x batch rate / validators` bounds the alliance's throughput from
//! signatures alone.

use std::time::{Duration, Instant};

use alliance_node::store::kv::Batch;
use alliance_node::store::Engine;
use alliance_protocol::{Keypair, Transaction, TxBody};
use serde::Serialize;

/// What one core and the disk can do.
#[derive(Debug, Clone, Serialize)]
pub struct Ceiling {
    /// Cores available to this process.
    pub cores: usize,
    /// Signatures per second on one core with ed25519-dalek's
    /// `verify_strict`, one by one (the reference rate).
    pub strict_per_s: f64,
    /// Transaction signatures verified per second on one core with the
    /// protocol's rule one by one (`Transaction::verify_signature`).
    pub verify_per_s: f64,
    /// Signatures per second with ed25519-dalek's batch verification on
    /// one core (batches of 64).
    pub batch_verify_per_s: f64,
    /// Transaction signatures per second on one core through the node's
    /// path: the protocol's batch verification
    /// (`sigverify::verify_txs_on_this_thread`, every signer distinct, keys
    /// decoded per call).
    pub rule_batch_per_s: f64,
    /// The node's storage engine (fjall, through `store::Kv`): records per
    /// second written in batches of 1,000 (~200-byte values, the size of a
    /// transaction and its index entries), each batch applied atomically
    /// and flushed (fsync).
    pub store_records_per_s: f64,
    /// The node's storage engine: flushed batches per second (the
    /// per-block fsync cost).
    pub store_batches_per_s: f64,
}

impl Ceiling {
    /// Signature ceiling of an alliance of `validators` on this machine:
    /// every validator verifies each transaction once, on shared cores.
    pub fn alliance_tps(&self, validators: usize) -> f64 {
        self.cores as f64 * self.rule_batch_per_s / validators as f64
    }
}

fn sample_txs(n: usize) -> Vec<Transaction> {
    let to = Keypair::from_label("ceiling/to").public();
    (0..n)
        .map(|i| {
            let k = Keypair::from_label(&format!("ceiling/{i}"));
            Transaction::sign(
                "ceiling",
                &k,
                i as u64,
                TxBody::Transfer {
                    to,
                    amount: 1,
                    memo: String::new(),
                },
            )
        })
        .collect()
}

/// Runs `f` repeatedly for at least `min` and returns items per second,
/// where one call handles `items`.
fn rate(min: Duration, items: usize, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0usize;
    while calls == 0 || start.elapsed() < min {
        f();
        calls += 1;
    }
    (calls * items) as f64 / start.elapsed().as_secs_f64()
}

/// Measures the ceiling (about `seconds` x 3 of wall time).
pub fn measure(seconds: f64) -> Ceiling {
    let min = Duration::from_secs_f64(seconds);
    let txs = sample_txs(1_024);
    let verify_per_s = rate(min, txs.len(), || {
        assert!(txs.iter().all(Transaction::verify_signature));
    });

    let rule_batch_per_s = rate(min, txs.len(), || {
        let mut keys = alliance_protocol::sigverify::KeyCache::new(txs.len());
        let ok = alliance_protocol::sigverify::verify_txs_on_this_thread(&txs, &mut keys);
        assert!(ok.iter().all(|v| *v));
    });

    let hashes: Vec<[u8; 32]> = txs.iter().map(|t| t.signing_hash().0).collect();
    let sigs: Vec<ed25519_dalek::Signature> = txs
        .iter()
        .map(|t| ed25519_dalek::Signature::from_bytes(&t.signature.0))
        .collect();
    let keys: Vec<ed25519_dalek::VerifyingKey> = txs
        .iter()
        .map(|t| t.signer.verifying_key().expect("valid key"))
        .collect();
    let strict_per_s = rate(min, txs.len(), || {
        for ((h, s), k) in hashes.iter().zip(&sigs).zip(&keys) {
            k.verify_strict(h, s).expect("valid signature");
        }
    });
    const BATCH: usize = 64;
    let batch_verify_per_s = rate(min, txs.len(), || {
        for i in (0..txs.len()).step_by(BATCH) {
            let msgs: Vec<&[u8]> = hashes[i..i + BATCH].iter().map(|h| &h[..]).collect();
            ed25519_dalek::verify_batch(&msgs, &sigs[i..i + BATCH], &keys[i..i + BATCH])
                .expect("valid batch");
        }
    });

    let dir = tempfile::tempdir().expect("temp dir");
    let db = Engine::default().open(dir.path()).expect("open the store");
    let value = vec![0xabu8; 200];
    let mut key = 0u64;
    const RECORDS: usize = 1_000;
    let store_records_per_s = rate(min, RECORDS, || {
        let mut batch = Batch::default();
        for _ in 0..RECORDS {
            key += 1;
            batch.put(key.to_be_bytes(), value.as_slice());
        }
        db.apply(batch).expect("store batch");
        db.flush().expect("store flush");
    });
    let store_batches_per_s = store_records_per_s / RECORDS as f64;
    Ceiling {
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
        strict_per_s,
        verify_per_s,
        batch_verify_per_s,
        rule_batch_per_s,
        store_records_per_s,
        store_batches_per_s,
    }
}
