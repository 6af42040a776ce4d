//! Audit speed: builds (or reuses) an export of a demo chain holding at
//! least `AUDIT_BENCH_TRANSFERS` transfers (default 1,000,000) in blocks of
//! `AUDIT_BENCH_BLOCK_TXS` (default 2,000), then measures in one run:
//!
//! - the raw ed25519 rates on the chain's own signatures: ed25519-dalek's
//!   `verify_strict` and `verify_batch` (batches of 64), each on one core
//!   and on every core; and the protocol's rule (`sigverify`) one by one
//!   and in batches;
//! - the auditor: `audit_stream` over the whole export (decode, batch
//!   signature checks on every core, certificates, re-execution and state
//!   roots), in transactions per second;
//!
//! and prints the ratio auditor / batch rate on every core. Run through
//! `scripts/bench-audit.sh`. The chain is generated directly (signatures on
//! every core, blocks sealed by the ledger, certified by the demo keys), not
//! through consensus.

use std::path::PathBuf;
use std::time::Instant;

use alliance_protocol::audit::audit_stream;
use alliance_protocol::block::{Block, BlockHeader, FinalizedBlock};
use alliance_protocol::export::ChainExport;
use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::sigverify::{verify_txs, KeyCache};
use alliance_protocol::state::LedgerState;
use alliance_protocol::{Hash32, Keypair, PublicKey, Transaction, TxBody};
use ed25519_dalek::{Signature, VerifyingKey};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const CHAIN: &str = "audit-bench";
const T0: u64 = 1_700_000_000_000;
const CUSTOMERS: usize = 2_000;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn threads() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

/// Signs `bodies` (signer index, nonce, body) on every core.
fn sign_all(keys: &[Keypair], bodies: Vec<(usize, u64, TxBody)>) -> Vec<Transaction> {
    let chunk = bodies.len().div_ceil(threads()).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = bodies
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|(k, n, b)| Transaction::sign(CHAIN, &keys[*k], *n, b.clone()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signer thread"))
            .collect()
    })
}

/// Seals `txs` as the next block (signatures are known good: we made them),
/// certifies it with every merchant and commits it.
fn seal(state: &mut LedgerState, merchants: &[Keypair], txs: Vec<Transaction>) -> Vec<u8> {
    let height = state.tip().height + 1;
    let mut header = BlockHeader {
        chain_id: CHAIN.into(),
        height,
        timestamp_ms: T0 + height * 1_000,
        prev_hash: state.tip().hash,
        tx_count: txs.len() as u32,
        tx_root: Block::compute_tx_root(&txs),
        state_root: Hash32::ZERO,
        proposer: merchants[0].public(),
        validator_set_hash: state.validator_set().hash(),
    };
    let ok = vec![true; txs.len()];
    let mut block = Block { header, txs };
    // The first run reports the root; the second checks and keeps it.
    header = block.header.clone();
    header.state_root = match state.execute_verified(&block, &ok) {
        Err(alliance_protocol::state::BlockError::StateRootMismatch { computed, .. }) => computed,
        other => panic!("sealing block {height}: {:?}", other.err()),
    };
    block.header = header;
    let exec = state.execute_verified(&block, &ok).expect("sealed block");
    assert!(
        exec.outcomes
            .iter()
            .all(|o| *o == alliance_protocol::state::TxOutcome::Applied),
        "every synthetic transaction applies"
    );
    state.commit(exec);
    let certificate = certify(CHAIN, &block, height, merchants);
    FinalizedBlock { block, certificate }.to_bytes()
}

/// A chain of one funding block then blocks of `per_block` transfers.
fn build(transfers: usize, per_block: usize) -> (Genesis, ChainExport) {
    let (genesis, merchants) = demo_genesis(CHAIN, 4, T0);
    let customers: Vec<Keypair> = (0..CUSTOMERS)
        .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
        .collect();
    let mut state = LedgerState::from_genesis(&genesis);
    let mut blocks = Vec::new();
    // Block 1: every customer gets 1,000,000 points.
    let funding = (0..CUSTOMERS)
        .map(|j| {
            (
                j % merchants.len(),
                (j / merchants.len()) as u64,
                TxBody::Issue {
                    to: customers[j].public(),
                    amount: 1_000_000,
                    reason: "bench".into(),
                    receipt_ref: format!("f{j}"),
                    receipt_time_ms: T0,
                },
            )
        })
        .collect();
    blocks.push(seal(&mut state, &merchants, sign_all(&merchants, funding)));
    let mut rng = ChaCha8Rng::seed_from_u64(7);
    let mut done = 0;
    let mut nonces = vec![0u64; CUSTOMERS];
    let started = Instant::now();
    while done < transfers {
        let n = per_block.min(transfers - done);
        let bodies: Vec<(usize, u64, TxBody)> = (0..n)
            .map(|i| {
                let from = (done + i) % CUSTOMERS;
                let nonce = nonces[from];
                nonces[from] += 1;
                let to = customers[rng.gen_range(0..CUSTOMERS)].public();
                (
                    from,
                    nonce,
                    TxBody::Transfer {
                        to,
                        amount: rng.gen_range(1..10),
                        memo: String::new(),
                    },
                )
            })
            .collect();
        let txs = sign_all(&customers, bodies);
        blocks.push(seal(&mut state, &merchants, txs));
        done += n;
        if blocks.len() % 50 == 0 {
            eprintln!(
                "  built {done} transfers in {} blocks ({:.0} s)",
                blocks.len(),
                started.elapsed().as_secs_f64()
            );
        }
    }
    let export = ChainExport {
        genesis_json: genesis.to_json().into_bytes(),
        blocks,
    };
    (genesis, export)
}

/// `(message, signature, key)` of one transaction.
type Signed = ([u8; 32], [u8; 64], [u8; 32]);
/// The first `n` transactions' [`Signed`].
type Sample = Vec<Signed>;

fn sample(export: &ChainExport, n: usize) -> Sample {
    let mut out = Vec::with_capacity(n);
    for bytes in &export.blocks[1..] {
        let fb = FinalizedBlock::from_bytes(bytes).expect("block decodes");
        for tx in &fb.block.txs {
            if out.len() == n {
                return out;
            }
            out.push((tx.signing_hash().0, tx.signature.0, tx.signer.0));
        }
    }
    out
}

/// Signatures per second of `f` over `sample`, on `threads` threads.
fn rate(sample: &Sample, threads: usize, f: fn(&[Signed])) -> f64 {
    let chunk = sample.len().div_ceil(threads);
    let t = Instant::now();
    std::thread::scope(|s| {
        for c in sample.chunks(chunk) {
            s.spawn(move || f(c));
        }
    });
    sample.len() as f64 / t.elapsed().as_secs_f64()
}

fn strict(c: &[Signed]) {
    for (m, s, k) in c {
        let vk = VerifyingKey::from_bytes(k).expect("key");
        assert!(!vk.is_weak());
        vk.verify_strict(m, &Signature::from_bytes(s))
            .expect("valid signature");
    }
}

fn rule(c: &[Signed]) {
    for (m, s, k) in c {
        assert!(PublicKey(*k).verify(m, &alliance_protocol::Signature(*s)));
    }
}

fn batch(c: &[Signed]) {
    for b in c.chunks(64) {
        let msgs: Vec<&[u8]> = b.iter().map(|(m, _, _)| &m[..]).collect();
        let sigs: Vec<Signature> = b.iter().map(|(_, s, _)| Signature::from_bytes(s)).collect();
        let keys: Vec<VerifyingKey> = b
            .iter()
            .map(|(_, _, k)| VerifyingKey::from_bytes(k).expect("key"))
            .collect();
        ed25519_dalek::verify_batch(&msgs, &sigs, &keys).expect("valid batch");
    }
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --all-targets` runs this
    // binary without it, where a million-transaction chain has no place.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("audit benchmark: run with `cargo bench` (scripts/bench-audit.sh)");
        return;
    }
    let transfers = env_or("AUDIT_BENCH_TRANSFERS", 1_000_000);
    let per_block = env_or("AUDIT_BENCH_BLOCK_TXS", 2_000);
    let path = std::env::var("AUDIT_BENCH_EXPORT")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            std::env::temp_dir().join(format!("audit-bench-{transfers}x{per_block}.paexport"))
        });
    let export = match std::fs::read(&path) {
        Ok(bytes) => {
            eprintln!("reusing {}", path.display());
            ChainExport::decode(&bytes).expect("a valid export")
        }
        Err(_) => {
            eprintln!("building {transfers} transfers in blocks of {per_block}...");
            let t = Instant::now();
            let (_, export) = build(transfers, per_block);
            let secs = t.elapsed().as_secs_f64();
            let tmp = path.with_extension("tmp");
            std::fs::write(&tmp, export.encode()).expect("write export");
            std::fs::rename(&tmp, &path).expect("rename export");
            eprintln!("built and wrote {} in {secs:.1} s", path.display());
            export
        }
    };
    let genesis = export.genesis().expect("genesis");
    let cores = threads();

    // Raw rates before and after the audit, so that a change of machine load
    // during the run shows instead of skewing the ratio silently.
    let s = sample(&export, 50_000);
    let raw = |s: &Sample| {
        [
            rate(s, 1, strict),
            rate(s, cores, strict),
            rate(s, 1, batch),
            rate(s, cores, batch),
        ]
    };
    let before = raw(&s);
    // The protocol's rule: one by one on one core, and the auditor's batch
    // path (every core, decoded keys kept).
    let rule_1 = rate(&s, 1, rule);
    let rule_txs: Vec<Transaction> = export.blocks[1..]
        .iter()
        .flat_map(|b| FinalizedBlock::from_bytes(b).expect("block").block.txs)
        .take(s.len())
        .collect();
    let rule_batch = {
        let mut keys = KeyCache::new(65_536);
        let t = Instant::now();
        assert!(verify_txs(&rule_txs, &mut keys).iter().all(|ok| *ok));
        rule_txs.len() as f64 / t.elapsed().as_secs_f64()
    };
    let total_txs: usize = export
        .blocks
        .iter()
        .map(|b| {
            FinalizedBlock::from_bytes(b)
                .expect("block")
                .block
                .txs
                .len()
        })
        .sum();
    // Where an auditor's time goes, on one core: decoding and execution of
    // the first 50 blocks (signature verdicts given), without signatures.
    let (decode_us, exec_us) = {
        let mut a = alliance_protocol::audit::Auditor::new(&genesis);
        let (mut dec, mut exe, mut n) = (0.0, 0.0, 0usize);
        for bytes in export.blocks.iter().take(51) {
            let t = Instant::now();
            let fb = FinalizedBlock::from_bytes(bytes).expect("block");
            dec += t.elapsed().as_secs_f64();
            let ok = vec![true; fb.block.txs.len()];
            let t = Instant::now();
            a.check_block(&fb, &ok).expect("valid block");
            exe += t.elapsed().as_secs_f64();
            n += fb.block.txs.len();
        }
        (dec * 1e6 / n as f64, exe * 1e6 / n as f64)
    };
    let mut blocks = export.blocks;
    let count = blocks.len() as u64;
    let t = Instant::now();
    let (report, failure) = audit_stream(
        &genesis,
        count,
        |i| Ok::<_, ()>(std::mem::take(&mut blocks[i as usize])),
        || {},
    )
    .expect("no I/O errors");
    let secs = t.elapsed().as_secs_f64();
    assert!(failure.is_none(), "the chain verifies: {failure:?}");
    assert_eq!(report.transactions as usize, total_txs);
    let audit_rate = total_txs as f64 / secs;

    let after = raw(&s);
    println!(
        "chain: {count} blocks, {total_txs} transactions ({} transfers), export {}",
        total_txs - CUSTOMERS,
        path.display()
    );
    println!("cores: {cores}; raw rates measured before / after the audit");
    let names = [
        "ed25519 verify_strict, 1 core".to_string(),
        format!("ed25519 verify_strict, {cores} cores"),
        "ed25519 batch (64), 1 core".to_string(),
        format!("ed25519 batch (64), {cores} cores"),
    ];
    for (i, name) in names.iter().enumerate() {
        println!("{name:<34} {:>8.0} / {:>8.0} sig/s", before[i], after[i]);
    }
    println!(
        "{:<34} {rule_1:>8.0} / {rule_batch:>8.0} sig/s (one by one on 1 core / batches on {cores} cores, before the audit)",
        "the protocol's rule (sigverify)"
    );
    println!(
        "{:<34} {audit_rate:>8.0} tx/s ({secs:.1} s for {total_txs} transactions)",
        format!("auditor (audit_stream), {cores} cores")
    );
    println!(
        "per transaction on one core, without signatures: decode {decode_us:.1} us, execute (header, rules, state root, certificate) {exec_us:.1} us"
    );
    let batch_n = (before[3] + after[3]) / 2.0;
    let strict_n = (before[1] + after[1]) / 2.0;
    println!(
        "ratio auditor / batch on {cores} cores: {:.1}%; auditor / verify_strict on {cores} cores: {:.1}% (means of before and after)",
        100.0 * audit_rate / batch_n,
        100.0 * audit_rate / strict_n
    );
}
