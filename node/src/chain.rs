//! The application side of consensus: builds blocks when this node leads,
//! judges proposed blocks, and commits finalized ones through the store.
//!
//! Consensus may ask about a block whose parent is notarized but not yet
//! finalized; `ancestry` (oldest first) names the unfinalized blocks between
//! the last finalized block and the parent. Executions of blocks this node
//! built or verified are cached by hash, so the parent's state is the
//! committed state plus those cached change sets, and a finalized block is
//! never executed twice. The cache is bounded and pruned at each finalization.

use std::collections::HashMap;
use std::sync::Arc;

use alliance_protocol::state::{
    verify_signatures_parallel, BlockError, Execution, LedgerState, TxOutcome,
};
use alliance_protocol::{Block, Certificate, FinalizedBlock, Hash32, PublicKey, Transaction};

use crate::store::{Store, StoreError};

/// Unfinalized executions kept at most. Simplex finalizes within a few views
/// when the network is healthy; 256 covers long partitions of a few nodes
/// without unbounded memory (an execution is a change set, not a state).
pub const PENDING_EXECUTIONS_MAX: usize = 256;

/// Why a proposed block is refused.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The ledger rules refuse it.
    #[error(transparent)]
    Block(#[from] BlockError),
    /// Its timestamp is too far ahead of our clock.
    #[error("timestamp {got} ms is more than {drift} ms ahead of local time {now}")]
    FromTheFuture {
        /// Block time.
        got: u64,
        /// Local time.
        now: u64,
        /// Allowed drift.
        drift: u64,
    },
    /// An unfinalized ancestor changes the validator set: the next block
    /// belongs to the next epoch and waits for that ancestor's finality.
    #[error("ancestor {0} changes the validator set and is not final yet")]
    EpochBoundary(Hash32),
    /// An ancestor is unknown or invalid (consensus should have fetched it).
    #[error("ancestor {0} is not known")]
    UnknownAncestor(Hash32),
}

/// Finalized state plus the store, and speculative executions.
pub struct Chain {
    store: Store,
    state: LedgerState,
    pending: HashMap<Hash32, Execution>,
    work: ChainWork,
}

/// Work a [`Chain`] did since it was last asked ([`Chain::take_work`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChainWork {
    /// Blocks built.
    pub built: u64,
    /// Proposed blocks executed to judge them.
    pub verified: u64,
    /// Blocks executed again (an ancestor or a finalized block whose
    /// execution was not kept).
    pub replayed: u64,
    /// Transaction signatures verified (those not known valid).
    pub signatures: u64,
}

impl Chain {
    /// Wraps an opened store and its state.
    pub fn new(store: Store, state: LedgerState) -> Self {
        Chain {
            store,
            state,
            pending: HashMap::new(),
            work: ChainWork::default(),
        }
    }

    /// The work done since the last call (and resets the count).
    pub fn take_work(&mut self) -> ChainWork {
        std::mem::take(&mut self.work)
    }

    /// The finalized state.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The state after `ancestry` (unfinalized blocks, oldest first) on top
    /// of the finalized state. `None` for the finalized state itself.
    fn state_after(&mut self, ancestry: &[Arc<Block>]) -> Result<Option<LedgerState>, VerifyError> {
        // Ancestors finalized since consensus asked are already in the state.
        let tip = self.state.tip();
        let finalized = ancestry
            .iter()
            .take_while(|b| b.header.height <= tip.height)
            .count();
        if let Some(last) = ancestry[..finalized].last() {
            if last.header.height != tip.height || last.hash() != tip.hash {
                return Err(VerifyError::UnknownAncestor(last.hash()));
            }
        }
        let ancestry = &ancestry[finalized..];
        if ancestry.is_empty() {
            return Ok(None);
        }
        let mut state = self.state.clone();
        let validators = state.validator_set();
        for block in ancestry {
            let hash = block.hash();
            let exec = match self.pending.get(&hash) {
                Some(e) => e.clone(),
                None => {
                    self.work.replayed += 1;
                    self.work.signatures += block.txs.len() as u64;
                    state
                        .execute_verified(block, &verify_signatures_parallel(&block.txs))
                        .map_err(|_| VerifyError::UnknownAncestor(hash))?
                }
            };
            state.commit(exec);
            // One consensus core serves one validator set (an epoch): nothing
            // may build on a block that changes the set until it is final.
            if state.validator_set() != validators {
                return Err(VerifyError::EpochBoundary(hash));
            }
        }
        Ok(Some(state))
    }

    fn remember(&mut self, hash: Hash32, exec: Execution) {
        if self.pending.len() >= PENDING_EXECUTIONS_MAX {
            // Keep the lowest heights: those are the ones finalization needs next.
            if let Some(worst) = self
                .pending
                .iter()
                .max_by_key(|(_, e)| e.header.height)
                .map(|(h, _)| *h)
            {
                self.pending.remove(&worst);
            }
        }
        self.pending.insert(hash, exec);
    }

    /// Builds the next block on `ancestry` from `candidates` (the leader's
    /// job). The timestamp is `now_ms`, or just after the parent's if our
    /// clock is behind. Candidates come from the mempool, which admits only
    /// transactions whose chain id and signature it verified, so they are
    /// not verified again (a bad one would only get the block refused).
    pub fn build(
        &mut self,
        ancestry: &[Arc<Block>],
        candidates: Vec<Transaction>,
        now_ms: u64,
        proposer: PublicKey,
    ) -> Result<Block, VerifyError> {
        let spec = self.state_after(ancestry)?;
        let base = spec.as_ref().unwrap_or(&self.state);
        let timestamp = now_ms.max(base.tip().timestamp_ms + 1);
        let (block, exec) = base.build_block_verified(candidates, |_| true, timestamp, proposer);
        self.work.built += 1;
        self.remember(block.hash(), exec);
        Ok(block)
    }

    /// Judges a proposed block on `ancestry`: ledger rules, state root, and
    /// a timestamp not too far ahead of our clock.
    pub fn verify(
        &mut self,
        block: &Block,
        ancestry: &[Arc<Block>],
        now_ms: u64,
    ) -> Result<(), VerifyError> {
        self.verify_known(block, ancestry, now_ms, &[])
    }

    /// [`Chain::verify`], where `known_valid[i]` says transaction `i`'s
    /// signature was already verified (it is in the mempool, which admits
    /// only verified transactions): only the others are verified here.
    /// Missing entries count as unknown.
    pub fn verify_known(
        &mut self,
        block: &Block,
        ancestry: &[Arc<Block>],
        now_ms: u64,
        known_valid: &[bool],
    ) -> Result<(), VerifyError> {
        let hash = block.hash();
        if self.pending.contains_key(&hash) {
            return Ok(());
        }
        let spec = self.state_after(ancestry)?;
        let base = spec.as_ref().unwrap_or(&self.state);
        let drift = base.params().timestamp_drift_max_ms;
        if block.header.timestamp_ms > now_ms.saturating_add(drift) {
            return Err(VerifyError::FromTheFuture {
                got: block.header.timestamp_ms,
                now: now_ms,
                drift,
            });
        }
        let unknown = (0..block.txs.len())
            .filter(|&i| !known_valid.get(i).copied().unwrap_or(false))
            .count();
        self.work.verified += 1;
        self.work.signatures += unknown as u64;
        let exec = base.execute_verified(block, &signatures_with(&block.txs, known_valid))?;
        self.remember(hash, exec);
        Ok(())
    }

    /// Commits a finalized block (durably, before returning) and returns its
    /// transaction outcomes and ids. Blocks must come in height order.
    pub fn finalize(
        &mut self,
        block: &Block,
        certificate: Certificate,
    ) -> Result<Finalized, FinalizeError> {
        let hash = block.hash();
        let exec = match self.pending.remove(&hash) {
            Some(e) if e.header.prev_hash == self.state.tip().hash => e,
            _ => {
                self.work.replayed += 1;
                self.work.signatures += block.txs.len() as u64;
                self.state
                    .execute_verified(block, &verify_signatures_parallel(&block.txs))?
            }
        };
        let done = Finalized {
            outcomes: exec.outcomes.clone(),
            tx_ids: exec.tx_ids.clone(),
        };
        let fb = FinalizedBlock {
            block: block.clone(),
            certificate,
        };
        self.store.commit(exec, &fb, &mut self.state)?;
        let height = self.state.tip().height;
        self.pending.retain(|_, e| e.header.height > height);
        Ok(done)
    }
}

/// What committing a finalized block gives back ([`Chain::finalize`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finalized {
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// The transactions' ids, in block order (hashed once per block).
    pub tx_ids: Vec<Hash32>,
}

/// Signature verdicts for `txs`: `true` where `known_valid` says so, the
/// others verified on every core.
fn signatures_with(txs: &[Transaction], known_valid: &[bool]) -> Vec<bool> {
    let unknown: Vec<usize> = (0..txs.len())
        .filter(|&i| !known_valid.get(i).copied().unwrap_or(false))
        .collect();
    if unknown.len() == txs.len() {
        return verify_signatures_parallel(txs);
    }
    let to_check: Vec<Transaction> = unknown.iter().map(|&i| txs[i].clone()).collect();
    let mut out = vec![true; txs.len()];
    for (i, ok) in unknown
        .into_iter()
        .zip(verify_signatures_parallel(&to_check))
    {
        out[i] = ok;
    }
    out
}

/// Why a finalized block could not be committed. Either is fatal for the
/// node: consensus finalized a block this node cannot apply or persist.
#[derive(Debug, thiserror::Error)]
pub enum FinalizeError {
    /// The finalized block does not apply (a bug, or a Byzantine quorum).
    #[error("finalized block does not apply: {0}")]
    Block(#[from] BlockError),
    /// The store failed (disk full, read-only...).
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::{certify, demo_customer_key, demo_genesis};
    use alliance_protocol::TxBody;

    #[test]
    fn parallel_verdicts_equal_sequential_ones() {
        let (_, keys) = demo_genesis("chain-test", 1, 1_700_000_000_000);
        let alice = demo_customer_key("chain-test", "alice");
        let mut txs: Vec<Transaction> = (0..300)
            .map(|i| {
                Transaction::sign(
                    "chain-test",
                    &keys[0],
                    i,
                    TxBody::Issue {
                        to: alice.public(),
                        amount: 1,
                        reason: String::new(),
                        receipt_ref: format!("p{i}"),
                        receipt_time_ms: 1_700_000_000_000,
                    },
                )
            })
            .collect();
        for i in [0, 77, 150, 299] {
            txs[i].signature.0[3] ^= 1;
        }
        assert_eq!(
            verify_signatures_parallel(&txs),
            alliance_protocol::state::verify_signatures(&txs)
        );
        assert_eq!(
            verify_signatures_parallel(&txs)
                .iter()
                .filter(|ok| !**ok)
                .count(),
            4
        );
    }

    #[test]
    fn build_verify_and_finalize_across_unfinalized_ancestry() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, keys) = demo_genesis("chain-test", 4, 1_700_000_000_000);
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        let mut leader = Chain::new(store, state);
        let dir2 = tempfile::tempdir().unwrap();
        let (store2, state2) = Store::open(dir2.path(), &genesis).unwrap();
        let mut follower = Chain::new(store2, state2);
        let alice = demo_customer_key("chain-test", "alice");
        let now = 1_700_000_100_000;

        // Three blocks, each on the previous, none finalized yet.
        let mut ancestry: Vec<Arc<Block>> = vec![];
        for i in 0..3u64 {
            let tx = Transaction::sign(
                "chain-test",
                &keys[0],
                i,
                TxBody::Issue {
                    to: alice.public(),
                    amount: 10,
                    reason: String::new(),
                    receipt_ref: format!("r{i}"),
                    receipt_time_ms: now,
                },
            );
            let block = leader
                .build(&ancestry, vec![tx], now + i, keys[0].public())
                .unwrap();
            assert_eq!(block.header.height, i + 1);
            follower.verify(&block, &ancestry, now + i).unwrap();
            ancestry.push(Arc::new(block));
        }
        // A block from the future is refused; a tampered one too.
        let mut late = (*ancestry[0]).clone();
        late.header.timestamp_ms = now + 60_000;
        assert!(matches!(
            follower.verify(&late, &[], now),
            Err(VerifyError::FromTheFuture { .. }) | Err(VerifyError::Block(_))
        ));

        for block in &ancestry {
            let cert = certify("chain-test", block, block.header.height, &keys);
            let out = follower.finalize(block, cert.clone()).unwrap();
            assert_eq!(out.outcomes, vec![TxOutcome::Applied]);
            assert_eq!(out.tx_ids, vec![block.txs[0].hash()]);
            leader.finalize(block, cert).unwrap();
        }
        assert_eq!(follower.state().account(&alice.public()).balance(), 30);
        assert_eq!(follower.state().state_root(), leader.state().state_root());
        assert!(follower.pending.is_empty());
    }
}
