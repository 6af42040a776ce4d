//! The mempool: transactions waiting for a block. Bounded in total count,
//! total bytes and per signer; deduplicated by hash; first seen wins for a
//! (signer, nonce). Admission checks what can be checked without executing:
//! size, chain id, signature and nonce. Pure data structure: the node
//! calls it from its event loop.
//!
//! **No nonce gaps.** Each signer's pending transactions are one run of
//! consecutive nonces starting at its next nonce on chain, so every pending
//! transaction can be included as soon as a block has room. A transaction
//! that skips ahead (its nonce above the end of that run) is refused with
//! `nonce_gap` instead of waiting, possibly forever, for transactions that
//! may never come; and when a committed block breaks a run (a pending
//! transaction was included but rejected, so the chain's nonce did not
//! move), the transactions after the break leave the pool
//! ([`Mempool::remove_committed`]). Nothing pending can linger: it is
//! included, or evicted when it can no longer apply
//! ([`Mempool::evict_invalid`]).

use std::collections::{BTreeMap, HashMap};

use alliance_protocol::limits::TX_BYTES_MAX;
use alliance_protocol::state::LedgerState;
use alliance_protocol::tx::TxCheckError;
use alliance_protocol::{Hash32, PublicKey, Transaction};

/// Mempool bounds.
#[derive(Debug, Clone, Copy)]
pub struct MempoolLimits {
    /// Transactions held at most. 50,000 is 25 blocks of 2,000: enough to
    /// ride out a view change at target load without unbounded memory.
    pub txs_max: usize,
    /// Encoded bytes held at most (50,000 x ~250 bytes, with headroom).
    pub bytes_max: usize,
    /// Transactions per signer at most: one key cannot fill the pool.
    pub per_signer_max: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            txs_max: 50_000,
            bytes_max: 32 * 1024 * 1024,
            per_signer_max: 64,
        }
    }
}

/// Why a transaction was not admitted. `code()` is what APIs report.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AdmitError {
    /// Already in the pool.
    #[error("transaction {0} is already pending")]
    Duplicate(Hash32),
    /// Over the size limit.
    #[error("transaction is {0} bytes, over the {TX_BYTES_MAX}-byte limit")]
    TooLarge(usize),
    /// Chain or signature check failed.
    #[error(transparent)]
    Invalid(#[from] TxCheckError),
    /// Nonce already used on chain.
    #[error("nonce {got} was already used; the next nonce is {expected}")]
    NonceReplayed {
        /// Next nonce on chain.
        expected: u64,
        /// Offered.
        got: u64,
    },
    /// Nonce too far ahead of the chain.
    #[error("nonce {got} is too far ahead; the next nonce is {expected} and at most {window} may be pending")]
    NonceTooFarAhead {
        /// Next nonce on chain.
        expected: u64,
        /// Offered.
        got: u64,
        /// Per-signer pending limit.
        window: usize,
    },
    /// The nonce skips ahead of the signer's next free nonce (its next
    /// nonce on chain plus its pending transactions).
    #[error("nonce {got} skips ahead: this signer's next nonce is {next} (its next nonce on chain, after its pending transactions); sign with nonce {next}")]
    NonceGap {
        /// The nonce the signer's next transaction must have.
        next: u64,
        /// Offered.
        got: u64,
    },
    /// Another transaction with this signer and nonce is pending.
    #[error("another transaction with nonce {0} from this signer is already pending")]
    NonceConflict(u64),
    /// The pool is full.
    #[error("mempool is full; retry later")]
    Full,
}

impl AdmitError {
    /// Stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            AdmitError::Duplicate(_) => "duplicate",
            AdmitError::TooLarge(_) => "too_large",
            AdmitError::Invalid(TxCheckError::WrongChain { .. }) => "wrong_chain",
            AdmitError::Invalid(TxCheckError::BadSignature) => "bad_signature",
            AdmitError::NonceReplayed { .. } => "nonce_replayed",
            AdmitError::NonceTooFarAhead { .. } => "nonce_too_far_ahead",
            AdmitError::NonceGap { .. } => "nonce_gap",
            AdmitError::NonceConflict(_) => "nonce_conflict",
            AdmitError::Full => "mempool_full",
        }
    }
}

struct Entry {
    tx: Transaction,
    bytes: usize,
    seq: u64,
}

/// Pending transactions.
pub struct Mempool {
    chain_id: String,
    limits: MempoolLimits,
    by_hash: HashMap<Hash32, Entry>,
    by_signer: BTreeMap<PublicKey, BTreeMap<u64, Hash32>>,
    bytes: usize,
    next_seq: u64,
    /// The signer whose head [`Mempool::evict_invalid`] checked last.
    evict_cursor: Option<PublicKey>,
}

impl Mempool {
    /// An empty pool for `chain_id`.
    pub fn new(chain_id: &str, limits: MempoolLimits) -> Self {
        Mempool {
            chain_id: chain_id.to_string(),
            limits,
            by_hash: HashMap::new(),
            by_signer: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
            evict_cursor: None,
        }
    }

    /// Pending transactions.
    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// Encoded bytes pending.
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// Whether a transaction is pending.
    pub fn contains(&self, hash: &Hash32) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Whether this very transaction (every field, the signature too) is
    /// pending: found by its signer and nonce and compared, not hashed.
    pub fn holds(&self, tx: &Transaction) -> bool {
        self.by_signer
            .get(&tx.signer)
            .and_then(|m| m.get(&tx.nonce))
            .and_then(|h| self.by_hash.get(h))
            .is_some_and(|e| e.tx == *tx)
    }

    /// Checks and admits a transaction against the committed `state`.
    /// Signature verification is the expensive part, so cheap checks go first.
    pub fn admit(&mut self, tx: Transaction, state: &LedgerState) -> Result<Hash32, AdmitError> {
        self.admit_checked(tx, state, false)
    }

    /// Like [`Mempool::admit`]; `signature_checked` says the caller already
    /// verified the chain id and signature (`Transaction::verify_for_chain`),
    /// so it is not verified a second time.
    pub fn admit_checked(
        &mut self,
        tx: Transaction,
        state: &LedgerState,
        signature_checked: bool,
    ) -> Result<Hash32, AdmitError> {
        let bytes = alliance_protocol::encoding::encoded_len(&tx);
        if bytes > TX_BYTES_MAX {
            return Err(AdmitError::TooLarge(bytes));
        }
        let hash = tx.hash();
        if self.by_hash.contains_key(&hash) {
            return Err(AdmitError::Duplicate(hash));
        }
        let expected = state.account(&tx.signer).nonce;
        if tx.nonce < expected {
            return Err(AdmitError::NonceReplayed {
                expected,
                got: tx.nonce,
            });
        }
        let pending = self.by_signer.get(&tx.signer);
        if pending.is_some_and(|m| m.contains_key(&tx.nonce)) {
            return Err(AdmitError::NonceConflict(tx.nonce));
        }
        let next = next_free_nonce(expected, pending);
        if tx.nonce > next {
            return Err(AdmitError::NonceGap {
                next,
                got: tx.nonce,
            });
        }
        let window = self.limits.per_signer_max;
        if tx.nonce - expected >= window as u64 {
            return Err(AdmitError::NonceTooFarAhead {
                expected,
                got: tx.nonce,
                window,
            });
        }
        if self.by_hash.len() >= self.limits.txs_max || self.bytes + bytes > self.limits.bytes_max {
            return Err(AdmitError::Full);
        }
        if !signature_checked {
            tx.verify_for_chain(&self.chain_id)?;
        }
        self.by_signer
            .entry(tx.signer)
            .or_default()
            .insert(tx.nonce, hash);
        self.by_hash.insert(
            hash,
            Entry {
                tx,
                bytes,
                seq: self.next_seq,
            },
        );
        self.next_seq += 1;
        self.bytes += bytes;
        Ok(hash)
    }

    /// Candidates for the next block, at most `txs_max`: for each signer, its
    /// pending transactions with consecutive nonces from its next nonce;
    /// signers served in order of their oldest pending transaction.
    pub fn candidates(&self, state: &LedgerState, txs_max: usize) -> Vec<Transaction> {
        let mut signers: Vec<(u64, &PublicKey, &BTreeMap<u64, Hash32>)> = self
            .by_signer
            .iter()
            .filter_map(|(k, m)| {
                m.values()
                    .map(|h| self.by_hash[h].seq)
                    .min()
                    .map(|s| (s, k, m))
            })
            .collect();
        signers.sort_by_key(|(seq, _, _)| *seq);
        let mut out = Vec::new();
        for (_, signer, pending) in signers {
            let mut next = state.account(signer).nonce;
            while let Some(h) = pending.get(&next) {
                if out.len() >= txs_max {
                    return out;
                }
                out.push(self.by_hash[h].tx.clone());
                next += 1;
            }
        }
        out
    }

    /// Drops what a committed block made obsolete: its transactions, any
    /// pending transaction whose nonce the chain has passed, and the
    /// transactions that no longer continue the signer's run from its next
    /// nonce (their predecessor was included but rejected, so they could
    /// never apply). Call after committing, with the new state and the
    /// block's transaction ids. Returns how many pending transactions were
    /// dropped besides the block's own.
    pub fn remove_committed(
        &mut self,
        txs: &[Transaction],
        ids: &[Hash32],
        state: &LedgerState,
    ) -> usize {
        assert_eq!(txs.len(), ids.len(), "one id per transaction");
        let mut signers: Vec<PublicKey> = txs.iter().map(|t| t.signer).collect();
        signers.sort();
        signers.dedup();
        for id in ids {
            self.remove(id);
        }
        let mut dropped = 0;
        for signer in signers {
            let expected = state.account(&signer).nonce;
            let Some(m) = self.by_signer.get(&signer) else {
                continue;
            };
            let next = next_free_nonce(expected, Some(m));
            let out_of_run: Vec<Hash32> = m
                .iter()
                .filter(|(n, _)| **n < expected || **n >= next)
                .map(|(_, h)| *h)
                .collect();
            dropped += out_of_run.len();
            for h in out_of_run {
                self.remove(&h);
            }
        }
        dropped
    }

    /// Evicts each signer's next transaction if it can no longer apply on
    /// `state` (e.g. the balance was spent meanwhile), with the signer's later
    /// ones, which depend on it. Checks at most `signers_max` signers' heads
    /// per call to bound the work per block, going round the signers in key
    /// order from where the last call stopped, so that every signer's head is
    /// checked in turn. Returns the evicted count.
    pub fn evict_invalid(&mut self, state: &LedgerState, now_ms: u64, signers_max: usize) -> usize {
        use std::ops::Bound::{Excluded, Included, Unbounded};
        let cursor = self.evict_cursor;
        // From after the cursor to the end, then from the start to it.
        let rest = (cursor.map_or(Unbounded, Excluded), Unbounded);
        let wrapped = (
            Unbounded,
            cursor.map_or(Excluded(PublicKey([0; 32])), Included),
        );
        let mut heads: Vec<(PublicKey, Hash32)> = Vec::new();
        let mut last = None;
        for (k, m) in self
            .by_signer
            .range(rest)
            .chain(self.by_signer.range(wrapped))
        {
            if heads.len() >= signers_max {
                break;
            }
            last = Some(*k);
            if let Some(h) = m.get(&state.account(k).nonce) {
                heads.push((*k, *h));
            }
        }
        self.evict_cursor = last;
        let mut evicted = 0;
        for (signer, head) in heads {
            let doomed = match self.by_hash.get(&head) {
                // Admitted entries passed the signature check.
                Some(e) => state.check_tx_verified(&e.tx, now_ms, true).is_err(),
                None => false,
            };
            if doomed {
                let all: Vec<Hash32> = self
                    .by_signer
                    .get(&signer)
                    .map(|m| m.values().copied().collect())
                    .unwrap_or_default();
                evicted += all.len();
                for h in all {
                    self.remove(&h);
                }
            }
        }
        evicted
    }

    fn remove(&mut self, hash: &Hash32) {
        if let Some(e) = self.by_hash.remove(hash) {
            self.bytes -= e.bytes;
            if let Some(m) = self.by_signer.get_mut(&e.tx.signer) {
                m.remove(&e.tx.nonce);
                if m.is_empty() {
                    self.by_signer.remove(&e.tx.signer);
                }
            }
        }
    }
}

/// The nonce a signer's next transaction must have: `expected` (its next
/// nonce on chain), after its run of consecutive pending nonces.
fn next_free_nonce(expected: u64, pending: Option<&BTreeMap<u64, Hash32>>) -> u64 {
    let mut next = expected;
    if let Some(m) = pending {
        // Bounded by the per-signer limit.
        while m.contains_key(&next) {
            next += 1;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::{demo_customer_key, demo_genesis};
    use alliance_protocol::{Block, Keypair, TxBody};

    const CHAIN: &str = "mempool-test";

    fn setup() -> (LedgerState, Vec<Keypair>) {
        let (g, merchants) = demo_genesis(CHAIN, 2, 1_700_000_000_000);
        (LedgerState::from_genesis(&g), merchants)
    }

    fn transfer(k: &Keypair, nonce: u64, amount: u64) -> Transaction {
        let to = demo_customer_key(CHAIN, "bob").public();
        Transaction::sign(
            CHAIN,
            k,
            nonce,
            TxBody::Transfer {
                to,
                amount,
                memo: String::new(),
            },
        )
    }

    #[test]
    fn holds_only_the_very_transaction_pending() {
        let (state, _) = setup();
        let alice = demo_customer_key(CHAIN, "alice");
        let mut pool = Mempool::new(CHAIN, MempoolLimits::default());
        let t0 = transfer(&alice, 0, 1);
        pool.admit(t0.clone(), &state).unwrap();
        assert!(pool.holds(&t0));
        // Same signer and nonce, another body; the same with a bad signature.
        assert!(!pool.holds(&transfer(&alice, 0, 2)));
        let mut forged = t0.clone();
        forged.signature.0[0] ^= 1;
        assert!(!pool.holds(&forged));
        assert!(!pool.holds(&transfer(&alice, 1, 1)));
    }

    #[test]
    fn admission_checks_and_errors() {
        let (state, _) = setup();
        let alice = demo_customer_key(CHAIN, "alice");
        let mut pool = Mempool::new(
            CHAIN,
            MempoolLimits {
                txs_max: 3,
                bytes_max: 1 << 20,
                per_signer_max: 2,
            },
        );
        let t0 = transfer(&alice, 0, 1);
        let h0 = pool.admit(t0.clone(), &state).unwrap();
        assert_eq!(pool.admit(t0, &state), Err(AdmitError::Duplicate(h0)));
        assert_eq!(
            pool.admit(transfer(&alice, 0, 2), &state),
            Err(AdmitError::NonceConflict(0))
        );
        assert_eq!(
            pool.admit(transfer(&alice, 2, 1), &state),
            Err(AdmitError::NonceGap { next: 1, got: 2 })
        );
        let mut bad = transfer(&alice, 1, 1);
        bad.signature.0[0] ^= 1;
        assert_eq!(pool.admit(bad, &state).unwrap_err().code(), "bad_signature");
        let other_chain = Transaction::sign(
            "other",
            &alice,
            1,
            TxBody::Transfer {
                to: alice.public(),
                amount: 1,
                memo: String::new(),
            },
        );
        assert_eq!(
            pool.admit(other_chain, &state).unwrap_err().code(),
            "wrong_chain"
        );
        pool.admit(transfer(&alice, 1, 1), &state).unwrap();
        // Two pending from alice: the per-signer limit.
        assert_eq!(
            pool.admit(transfer(&alice, 2, 1), &state),
            Err(AdmitError::NonceTooFarAhead {
                expected: 0,
                got: 2,
                window: 2
            })
        );
        pool.admit(transfer(&demo_customer_key(CHAIN, "carol"), 0, 1), &state)
            .unwrap();
        assert_eq!(
            pool.admit(transfer(&demo_customer_key(CHAIN, "dave"), 0, 1), &state),
            Err(AdmitError::Full)
        );
        assert_eq!(pool.len(), 3);
    }

    #[test]
    fn candidates_are_consecutive_per_signer_and_committed_ones_leave() {
        let (mut state, merchants) = setup();
        let alice = demo_customer_key(CHAIN, "alice");
        let carol = demo_customer_key(CHAIN, "carol");
        // Fund alice so her transfers apply.
        let fund = Transaction::sign(
            CHAIN,
            &merchants[0],
            0,
            TxBody::Issue {
                to: alice.public(),
                amount: 100,
                reason: String::new(),
                receipt_ref: "r".into(),
                receipt_time_ms: 1_700_000_000_000,
            },
        );
        let (b, e) = state.build_block(vec![fund], 1_700_000_001_000, merchants[0].public());
        state.commit(e);
        let mut pool = Mempool::new(CHAIN, MempoolLimits::default());
        pool.admit(transfer(&alice, 0, 1), &state).unwrap();
        pool.admit(transfer(&carol, 0, 1), &state).unwrap();
        pool.admit(transfer(&alice, 1, 1), &state).unwrap();
        let c = pool.candidates(&state, 10);
        assert_eq!(
            c.iter().map(|t| t.nonce).collect::<Vec<_>>(),
            vec![0, 1, 0],
            "alice first (oldest), in nonce order"
        );
        let (b2, e2) = state.build_block(c, b.header.timestamp_ms + 1_000, merchants[0].public());
        assert_eq!(
            b2.txs.len(),
            2,
            "carol has no points: her transfer does not apply"
        );
        state.commit(e2);
        pool.remove_committed(&b2.txs, &Block::ids_of(&b2.txs), &state);
        assert_eq!(pool.len(), 1);
        assert!(pool.contains(&transfer(&carol, 0, 1).hash()));
        // Carol has no points: her transfer can never apply as things stand.
        assert_eq!(
            pool.evict_invalid(&state, b2.header.timestamp_ms + 1, 100),
            1
        );
        assert!(pool.is_empty());
    }

    /// Issue 18: a transaction whose nonce skips ahead (next + 7) was
    /// admitted and stayed pending forever. It is refused with `nonce_gap`
    /// and the nonce to use; so is one after a gap in the pending run.
    #[test]
    fn a_nonce_gap_is_refused_with_the_next_nonce() {
        let (state, _) = setup();
        let alice = demo_customer_key(CHAIN, "alice");
        let mut pool = Mempool::new(CHAIN, MempoolLimits::default());
        let err = pool.admit(transfer(&alice, 7, 1), &state).unwrap_err();
        assert_eq!(err, AdmitError::NonceGap { next: 0, got: 7 });
        assert_eq!(err.code(), "nonce_gap");
        assert!(err.to_string().contains("sign with nonce 0"), "{err}");
        assert!(pool.is_empty());
        pool.admit(transfer(&alice, 0, 1), &state).unwrap();
        pool.admit(transfer(&alice, 1, 1), &state).unwrap();
        assert_eq!(
            pool.admit(transfer(&alice, 3, 1), &state),
            Err(AdmitError::NonceGap { next: 2, got: 3 })
        );
        pool.admit(transfer(&alice, 2, 1), &state).unwrap();
        assert_eq!(pool.len(), 3);
    }

    /// A pending transaction included in a block but rejected there leaves
    /// the signer's nonce where it was: the pending transactions after it
    /// can never apply, and leave the pool with it.
    #[test]
    fn a_broken_run_leaves_the_pool() {
        let (mut state, merchants) = setup();
        let alice = demo_customer_key(CHAIN, "alice");
        let mut pool = Mempool::new(CHAIN, MempoolLimits::default());
        // Alice has no points: her transfers are rejected when included.
        for n in 0..3 {
            pool.admit(transfer(&alice, n, 5), &state).unwrap();
        }
        let head = pool.candidates(&state, 1);
        assert_eq!(head.len(), 1);
        // Another leader (or a stale view of the balance) put it in a block.
        let (b, e) = state.seal_block(head, 1_700_000_001_000, merchants[0].public());
        assert!(matches!(
            e.outcomes[..],
            [alliance_protocol::state::TxOutcome::Rejected(_)]
        ));
        state.commit(e);
        assert_eq!(
            state.account(&alice.public()).nonce,
            0,
            "a rejection changes nothing"
        );
        assert_eq!(
            pool.remove_committed(&b.txs, &Block::ids_of(&b.txs), &state),
            2
        );
        assert!(pool.is_empty(), "nonces 1 and 2 cannot apply without 0");
        // Alice can start again from nonce 0.
        pool.admit(transfer(&alice, 0, 1), &state).unwrap();
    }

    /// Eviction goes round the signers: a signer whose head stays valid
    /// does not keep the check from reaching the others.
    #[test]
    fn eviction_checks_every_signer_in_turn() {
        let (mut state, merchants) = setup();
        let keys: Vec<Keypair> = (0..4)
            .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
            .collect();
        // Fund every signer; then one of them, by key order not the first,
        // will have spent its points in a block the pool did not see.
        let funds: Vec<Transaction> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                Transaction::sign(
                    CHAIN,
                    &merchants[0],
                    i as u64,
                    TxBody::Issue {
                        to: k.public(),
                        amount: 10,
                        reason: String::new(),
                        receipt_ref: format!("r{i}"),
                        receipt_time_ms: 1_700_000_000_000,
                    },
                )
            })
            .collect();
        let (_, e) = state.build_block(funds, 1_700_000_001_000, merchants[0].public());
        state.commit(e);
        let mut pool = Mempool::new(CHAIN, MempoolLimits::default());
        for k in &keys {
            pool.admit(transfer(k, 0, 10), &state).unwrap();
        }
        let mut by_key: Vec<&Keypair> = keys.iter().collect();
        by_key.sort_by_key(|k| k.public());
        let spender = by_key[2];
        // The spender's balance goes elsewhere (another node's transaction).
        let elsewhere = transfer(spender, 0, 10);
        let (b, e) = state.build_block(vec![elsewhere], 1_700_000_002_000, merchants[0].public());
        state.commit(e);
        pool.remove_committed(&b.txs, &Block::ids_of(&b.txs), &state);
        // Its next transaction can no longer apply: nothing left to send.
        let doomed = transfer(spender, 1, 10);
        pool.admit(doomed.clone(), &state).unwrap();
        let mut evicted = 0;
        for _ in 0..by_key.len() {
            evicted += pool.evict_invalid(&state, 1_700_000_003_000, 1);
        }
        assert_eq!(evicted, 1, "the spender's head is found within one round");
        assert!(!pool.holds(&doomed));
        assert_eq!(pool.len(), 3, "the valid heads stay");
    }
}
