//! The ledger state machine: `(state, block) -> (new state, one outcome per
//! transaction)`. Pure: no clock (time is the header's), no disk, no threads.
//!
//! Executing a block never mutates the state: [`LedgerState::execute`]
//! returns an [`Execution`] (the change set, the outcomes and the new state
//! root), which [`LedgerState::commit`] applies. Validators execute a
//! proposal speculatively and commit only once it is finalized; the store
//! persists exactly the change set.

mod error;
mod keys;
mod overlay;
mod rules;
mod source;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use error::{BlockError, TxError, TxOutcome};
pub use keys::{
    Account, Claim, DailyIssued, Lot, Meta, Proposal, ProposalStatus, StateKey, StateValue,
    UsedOrder, UsedReceipt,
};
pub use overlay::ChangeSet;
pub use rules::expiry_for;
pub use source::{EntryKind, MemSource, PruneQueue, StateSource};

use overlay::Overlay;
use rules::BlockCtx;
use source::{Backing, Layers, Paged};

use crate::block::{Block, BlockHeader};
use crate::crypto::{Hash32, PublicKey};
use crate::encoding;
use crate::genesis::Genesis;
use crate::merchant::{AllianceParams, Merchant, MerchantId};
use crate::smt::{SmtProof, SparseMerkleTree};
use crate::smt_paged::{PagedTree, Summary, TreeDelta};
use crate::tx::Transaction;
use crate::validators::{Validator, ValidatorSet, ValidatorSetError};

/// The last applied block: what the next block must extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChainTip {
    /// Height (0 = genesis).
    pub height: u64,
    /// Block hash (the genesis hash at height 0).
    pub hash: Hash32,
    /// Block time.
    pub timestamp_ms: u64,
}

/// The whole ledger state: an ordered map committed by a sparse Merkle
/// tree. Held in memory ([`LedgerState::from_entries`]) or read from a
/// store with only the top of the tree in memory
/// ([`LedgerState::from_source`]); the rules and the roots are the same.
#[derive(Clone)]
pub struct LedgerState {
    chain_id: String,
    backing: Backing,
    tip: ChainTip,
}

/// The result of executing a block against a state, not yet committed.
#[derive(Clone)]
pub struct Execution {
    /// The block's header (its state_root is [`Execution::state_root`] for a
    /// block built here, and was checked equal for a validated block).
    pub header: BlockHeader,
    /// One outcome per transaction, in block order.
    pub outcomes: Vec<TxOutcome>,
    /// Entries written (`None`: deleted).
    pub changes: ChangeSet,
    /// State root after the block.
    pub state_root: Hash32,
    /// The block's transaction ids, in order (hashed once, when the block
    /// was checked or built; the store's index and the mempool use them).
    pub tx_ids: Vec<Hash32>,
    tree: ExecTree,
}

/// The state tree after an execution.
#[derive(Clone)]
enum ExecTree {
    /// The whole tree (a state in memory).
    Memory(SparseMerkleTree),
    /// A state on a source: the heap entries this block changes (on its
    /// parent's tree) and its leaf changes, `(key hash, value hash)`.
    Paged {
        delta: TreeDelta,
        leaves: Vec<(Hash32, Option<Hash32>)>,
    },
}

impl Execution {
    /// Whether this is an execution of a state on a source (a store's).
    pub fn is_on_source(&self) -> bool {
        matches!(self.tree, ExecTree::Paged { .. })
    }
}

/// What a store writes to bring its state to a state on it
/// ([`LedgerState::writes_with`]): every entry changed since the source's
/// height (`None`: deleted), in key order, and the tree's changed bucket
/// summaries, in bucket order.
#[derive(Debug, Clone, Default)]
pub struct StateWrites {
    /// Changed entries.
    pub entries: Vec<(StateKey, Option<StateValue>)>,
    /// Changed bucket summaries.
    pub buckets: Vec<(u32, Summary)>,
}

impl LedgerState {
    /// The state right after genesis (height 0). The genesis must already be
    /// validated ([`Genesis::validate`]).
    pub fn from_genesis(genesis: &Genesis) -> Self {
        let mut entries = BTreeMap::new();
        let mut meta = Meta::default();
        for gm in &genesis.merchants {
            meta.merchants.push(gm.id.clone());
            entries.insert(
                StateKey::MerchantByKey(gm.key),
                StateValue::MerchantId(gm.id.clone()),
            );
            entries.insert(
                StateKey::Merchant(gm.id.clone()),
                StateValue::Merchant(gm.to_merchant()),
            );
        }
        meta.merchants.sort();
        entries.insert(StateKey::Meta, StateValue::Meta(meta));
        entries.insert(StateKey::Params, StateValue::Params(genesis.params.clone()));
        let tip = ChainTip {
            height: 0,
            hash: genesis.hash(),
            timestamp_ms: genesis.genesis_time_ms,
        };
        Self::from_entries(genesis.chain_id.clone(), tip, entries)
    }

    /// Rebuilds a state from stored entries (the store's restart path). The
    /// caller checks the resulting root against the tip header.
    pub fn from_entries(
        chain_id: String,
        tip: ChainTip,
        entries: BTreeMap<StateKey, StateValue>,
    ) -> Self {
        let mut tree = SparseMerkleTree::new();
        tree.apply(
            entries
                .iter()
                .map(|(k, v)| (k.tree_key(), Some(v.tree_value()))),
        );
        LedgerState {
            chain_id,
            backing: Backing::Memory { entries, tree },
            tip,
        }
    }

    /// A state read from `source` (a node's store, at `tip`), whose tree is
    /// `tree` over the source's leaves. The caller checks the root against
    /// the tip header. Executions on it carry [`Execution::tree_writes`],
    /// which the store persists with the block; [`LedgerState::commit`] of
    /// a block the source already holds only updates the tree's top, and of
    /// any other block keeps its changes in memory (a block not final yet).
    pub fn from_source(
        chain_id: String,
        tip: ChainTip,
        source: Arc<dyn StateSource>,
        tree: PagedTree,
    ) -> Self {
        LedgerState {
            chain_id,
            backing: Backing::Paged(Paged {
                source,
                tree: Arc::new(tree),
                layers: Layers::default(),
            }),
            tip,
        }
    }

    /// The chain id.
    pub fn chain_id(&self) -> &str {
        &self.chain_id
    }

    /// The last applied block.
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// Root of the state tree.
    pub fn state_root(&self) -> Hash32 {
        match &self.backing {
            Backing::Memory { tree, .. } => tree.root_hash(),
            Backing::Paged(p) => p.tree.root_hash_over(&p.layers.deltas()),
        }
    }

    /// Entries changed since the source's height (0 for a state in
    /// memory): what [`LedgerState::writes_with`] would write.
    pub fn unwritten_entries(&self) -> usize {
        match &self.backing {
            Backing::Memory { .. } => 0,
            Backing::Paged(p) => p.layers.len(),
        }
    }

    /// The writes that bring this state's source to the state after
    /// `exec` (the next block): the changes of every block committed on the
    /// state since the source's height, and `exec`'s. `None` for a state in
    /// memory or an execution of one.
    pub fn writes_with(&self, exec: &Execution) -> Option<StateWrites> {
        let (Backing::Paged(p), ExecTree::Paged { delta, .. }) = (&self.backing, &exec.tree) else {
            return None;
        };
        let mut entries = p.layers.merged_entries();
        entries.extend(exec.changes.iter().map(|(k, v)| (k.clone(), v.clone())));
        let mut all = p.layers.merged_delta();
        all.extend(delta);
        Some(StateWrites {
            entries: entries.into_iter().collect(),
            buckets: p.tree.delta_buckets(&all),
        })
    }

    /// Every entry, in key order (for storage, export and audits), of a
    /// state held in memory; `None` for a state on a source (read the
    /// source).
    pub fn entries(&self) -> Option<&BTreeMap<StateKey, StateValue>> {
        match &self.backing {
            Backing::Memory { entries, .. } => Some(entries),
            Backing::Paged(_) => None,
        }
    }

    /// A key's entry with a proof against [`LedgerState::state_root`].
    pub fn prove(&self, key: &StateKey) -> (Option<StateValue>, SmtProof) {
        match &self.backing {
            Backing::Memory { entries, tree } => {
                (entries.get(key).cloned(), tree.prove(&key.tree_key()))
            }
            Backing::Paged(p) => {
                let proof = p
                    .tree
                    .prove_over(&p.layers.deltas(), &p.leaf_store(), &key.tree_key())
                    .unwrap_or_else(|e| panic!("state tree and store out of step: {e}"));
                (p.get(key).map(|v| v.into_owned()), proof)
            }
        }
    }

    /// The entry under `key`.
    pub fn get(&self, key: &StateKey) -> Option<StateValue> {
        self.backing.get(key).map(|v| v.into_owned())
    }

    fn view(&self) -> Overlay<'_> {
        Overlay::new(&self.backing)
    }

    /// For a state on a source and a large batch, the accounts the
    /// transactions read, fetched ahead on every core (the rules then read
    /// them from memory). A hint: what it misses is read on demand.
    fn prefetch<'t>(
        &self,
        txs: impl Iterator<Item = &'t Transaction>,
    ) -> Option<overlay::Prefetched> {
        let Backing::Paged(p) = &self.backing else {
            return None;
        };
        let mut keys = std::collections::HashSet::new();
        for tx in txs {
            keys.insert(StateKey::Account(tx.signer));
            if let crate::tx::TxBody::Issue { to, .. } | crate::tx::TxBody::Transfer { to, .. } =
                &tx.body
            {
                keys.insert(StateKey::Account(*to));
            }
        }
        (keys.len() >= PREFETCH_KEYS_MIN).then(|| p.prefetch(keys.into_iter().collect()))
    }

    /// Alliance parameters.
    pub fn params(&self) -> AllianceParams {
        self.view().params()
    }

    /// The earliest receipt time (ms) an issuance in a block at
    /// `timestamp_ms` on this state may carry: `timestamp_ms` minus
    /// `receipt_window_days`, or the window's floor if later
    /// ([`Meta::receipt_floor_ms`]).
    pub fn receipt_window_start(&self, timestamp_ms: u64) -> u64 {
        rules::receipt_window_start(&self.view(), timestamp_ms)
    }

    /// An account (empty if never used).
    pub fn account(&self, key: &PublicKey) -> Account {
        self.view().account(key)
    }

    /// A merchant.
    pub fn merchant(&self, id: &MerchantId) -> Option<Merchant> {
        self.view().merchant(id)
    }

    /// The merchant a key belongs to.
    pub fn merchant_by_key(&self, key: &PublicKey) -> Option<Merchant> {
        self.view().merchant_by_key(key)
    }

    /// A merchant's acceptance policy: the rates in force and any announced
    /// change (the default, every issuer at 100 %, when it set none).
    pub fn acceptance(&self, merchant: &MerchantId) -> crate::redemption::Acceptance {
        self.view().acceptance(merchant)
    }

    /// Every merchant, by id.
    pub fn merchants(&self) -> Vec<Merchant> {
        let v = self.view();
        v.meta()
            .merchants
            .iter()
            .filter_map(|id| v.merchant(id))
            .collect()
    }

    /// Every claim (creditor, debtor, claim), in key order.
    pub fn claims(&self) -> Vec<(MerchantId, MerchantId, Claim)> {
        self.backing
            .entries_of(EntryKind::Claim)
            .into_iter()
            .filter_map(|(k, v)| match (k, v) {
                (StateKey::Claim(c, d), StateValue::Claim(claim)) => Some((c, d, claim)),
                _ => None,
            })
            .collect()
    }

    /// Every proposal, by id.
    pub fn proposals(&self) -> Vec<Proposal> {
        self.backing
            .entries_of(EntryKind::Proposal)
            .into_iter()
            .filter_map(|(_, v)| match v {
                StateValue::Proposal(p) => Some(p),
                _ => None,
            })
            .collect()
    }

    /// The validators of the next height: every active merchant.
    pub fn validator_set(&self) -> ValidatorSet {
        self.try_validator_set()
            .expect("state invariant: at least one active merchant, unique keys")
    }

    /// [`LedgerState::validator_set`] without the invariant's panic, for a
    /// partial state rebuilt from untrusted proofs (`crate::light`).
    pub fn try_validator_set(&self) -> Result<ValidatorSet, ValidatorSetError> {
        let validators = rules::active_merchants(&self.view())
            .into_iter()
            .map(|m| Validator {
                id: m.id,
                key: m.key,
            })
            .collect();
        ValidatorSet::new(validators)
    }

    /// Executes transactions on top of this state as block `height` at
    /// `timestamp_ms`. `signatures_ok[i]` says whether transaction i's
    /// signature verified (see [`verify_signatures`]).
    fn run(
        &self,
        height: u64,
        timestamp_ms: u64,
        txs: &[Transaction],
        signatures_ok: &[bool],
    ) -> (Vec<TxOutcome>, ChangeSet) {
        let ctx = BlockCtx {
            chain_id: &self.chain_id,
            height,
            timestamp_ms,
        };
        let prefetched = self.prefetch(txs.iter());
        let mut o = Overlay::with_prefetched(&self.backing, prefetched.as_ref());
        rules::begin_block(&mut o, timestamp_ms);
        let mut outcomes = Vec::with_capacity(txs.len());
        for (tx, sig_ok) in txs.iter().zip(signatures_ok) {
            match rules::apply_tx(&mut o, ctx, tx, *sig_ok) {
                Ok(()) => {
                    o.commit_tx();
                    outcomes.push(TxOutcome::Applied);
                }
                Err(e) => {
                    o.rollback_tx();
                    outcomes.push(TxOutcome::Rejected(e));
                }
            }
        }
        (outcomes, o.into_changes())
    }

    fn tree_after(&self, changes: &ChangeSet) -> ExecTree {
        let leaves: Vec<(Hash32, Option<Hash32>)> = changes
            .iter()
            .map(|(k, v)| (k.tree_key(), v.as_ref().map(StateValue::tree_value)))
            .collect();
        match &self.backing {
            Backing::Memory { tree, .. } => {
                let mut tree = tree.clone();
                tree.apply(leaves);
                ExecTree::Memory(tree)
            }
            Backing::Paged(p) => {
                let (delta, _) = p
                    .tree
                    .apply_over(&p.layers.deltas(), &p.leaf_store(), leaves.iter().copied())
                    .unwrap_or_else(|e| panic!("state tree and store out of step: {e}"));
                ExecTree::Paged { delta, leaves }
            }
        }
    }

    fn root_of(&self, tree: &ExecTree) -> Hash32 {
        match (tree, &self.backing) {
            (ExecTree::Memory(t), _) => t.root_hash(),
            (ExecTree::Paged { delta, .. }, Backing::Paged(p)) => {
                let [shared, own] = p.layers.deltas();
                p.tree.root_hash_over(&[shared, own, delta])
            }
            (ExecTree::Paged { .. }, Backing::Memory { .. }) => {
                unreachable!("a paged execution comes from a state on a source")
            }
        }
    }

    /// Dry run: would `tx` apply as the next transaction of the next block
    /// (at `timestamp_ms`) on this state? The same rules as execution, on a
    /// throwaway overlay; the state is unchanged. Used to answer a wallet at
    /// once instead of letting a doomed transaction wait in a mempool.
    pub fn check_tx(&self, tx: &Transaction, timestamp_ms: u64) -> Result<(), TxError> {
        self.check_tx_verified(tx, timestamp_ms, tx.verify_signature())
    }

    /// [`LedgerState::check_tx`] with the signature verdict given by the
    /// caller (a mempool holds only transactions whose signatures it
    /// verified; checking them again cost a tenth of a loaded node's CPU).
    pub fn check_tx_verified(
        &self,
        tx: &Transaction,
        timestamp_ms: u64,
        signature_ok: bool,
    ) -> Result<(), TxError> {
        let ctx = BlockCtx {
            chain_id: &self.chain_id,
            height: self.tip.height + 1,
            timestamp_ms,
        };
        let mut o = self.view();
        // Expiry changes balances, so it runs; receipt pruning is skipped:
        // it cannot change a verdict (see `rules::prune_receipts`) and may
        // cost thousands of deletions, too much for every submission.
        rules::sweep_expired(&mut o, timestamp_ms);
        rules::apply_tx(&mut o, ctx, tx, signature_ok)
    }

    /// Checks everything about a block's header that does not need
    /// execution: chain, height, parent, time, size, tx_root, validators.
    /// Returns the transactions' ids.
    pub fn check_header(&self, block: &Block) -> Result<Vec<Hash32>, BlockError> {
        let h = &block.header;
        if h.chain_id != self.chain_id {
            return Err(BlockError::WrongChain {
                expected: self.chain_id.clone(),
                got: h.chain_id.clone(),
            });
        }
        if h.height != self.tip.height + 1 {
            return Err(BlockError::WrongHeight {
                expected: self.tip.height + 1,
                got: h.height,
            });
        }
        if h.prev_hash != self.tip.hash {
            return Err(BlockError::WrongParent {
                expected: self.tip.hash,
                got: h.prev_hash,
            });
        }
        if h.timestamp_ms <= self.tip.timestamp_ms {
            return Err(BlockError::TimestampNotIncreasing {
                parent: self.tip.timestamp_ms,
                got: h.timestamp_ms,
            });
        }
        let params = self.params();
        if block.txs.len() > params.block_txs_max as usize {
            return Err(BlockError::TooLarge(format!(
                "{} transactions, limit {}",
                block.txs.len(),
                params.block_txs_max
            )));
        }
        let bytes: usize = block.txs.iter().map(encoding::encoded_len).sum();
        if bytes > params.block_bytes_max as usize {
            return Err(BlockError::TooLarge(format!(
                "{bytes} bytes of transactions, limit {}",
                params.block_bytes_max
            )));
        }
        let validators = self.validator_set();
        if h.validator_set_hash != validators.hash() {
            return Err(BlockError::ValidatorSetMismatch);
        }
        if !validators.contains(&h.proposer) {
            return Err(BlockError::ProposerNotValidator(h.proposer.to_string()));
        }
        block.body_ids().ok_or(BlockError::TxRootMismatch)
    }

    /// Validates a block as the next block and executes it, verifying
    /// signatures one by one. See [`LedgerState::execute_verified`].
    pub fn execute(&self, block: &Block) -> Result<Execution, BlockError> {
        self.execute_verified(block, &verify_signatures(&block.txs))
    }

    /// Validates a block as the next block and executes it, with signature
    /// results computed by the caller (in parallel or batched; the rule is
    /// [`Transaction::verify_signature`]). The state is unchanged; pass the
    /// result to [`LedgerState::commit`].
    pub fn execute_verified(
        &self,
        block: &Block,
        signatures_ok: &[bool],
    ) -> Result<Execution, BlockError> {
        assert_eq!(
            signatures_ok.len(),
            block.txs.len(),
            "one signature verdict per transaction"
        );
        let tx_ids = self.check_header(block)?;
        let (outcomes, changes) = self.run(
            block.header.height,
            block.header.timestamp_ms,
            &block.txs,
            signatures_ok,
        );
        let tree = self.tree_after(&changes);
        let state_root = self.root_of(&tree);
        if state_root != block.header.state_root {
            return Err(BlockError::StateRootMismatch {
                header: block.header.state_root,
                computed: state_root,
            });
        }
        Ok(Execution {
            header: block.header.clone(),
            outcomes,
            changes,
            state_root,
            tx_ids,
            tree,
        })
    }

    /// Builds the next block from candidate transactions (a leader's job):
    /// keeps those that apply, up to the block limits, and fills in tx_root
    /// and state_root. Returns the block and its execution.
    pub fn build_block(
        &self,
        candidates: Vec<Transaction>,
        timestamp_ms: u64,
        proposer: PublicKey,
    ) -> (Block, Execution) {
        self.build_block_verified(
            candidates,
            Transaction::verify_signature,
            timestamp_ms,
            proposer,
        )
    }

    /// [`LedgerState::build_block`] with the signature rule answered by the
    /// caller: a node whose mempool admitted only verified transactions need
    /// not verify them again (the rule is [`Transaction::verify_signature`]).
    pub fn build_block_verified(
        &self,
        candidates: Vec<Transaction>,
        signature_ok: impl Fn(&Transaction) -> bool,
        timestamp_ms: u64,
        proposer: PublicKey,
    ) -> (Block, Execution) {
        let params = self.params();
        let height = self.tip.height + 1;
        let ctx = BlockCtx {
            chain_id: &self.chain_id,
            height,
            timestamp_ms,
        };
        let prefetched = self.prefetch(candidates.iter());
        let mut o = Overlay::with_prefetched(&self.backing, prefetched.as_ref());
        rules::begin_block(&mut o, timestamp_ms);
        let mut txs = Vec::new();
        let mut bytes = 0usize;
        for tx in candidates {
            if txs.len() >= params.block_txs_max as usize {
                break;
            }
            let size = encoding::encoded_len(&tx);
            if bytes + size > params.block_bytes_max as usize {
                continue;
            }
            match rules::apply_tx(&mut o, ctx, &tx, signature_ok(&tx)) {
                Ok(()) => {
                    o.commit_tx();
                    bytes += size;
                    txs.push(tx);
                }
                Err(_) => o.rollback_tx(),
            }
        }
        let changes = o.into_changes();
        let outcomes = vec![TxOutcome::Applied; txs.len()];
        self.seal(txs, timestamp_ms, proposer, outcomes, changes)
    }

    /// Seals the given transactions, as they are, into the next block,
    /// including any that will be rejected (their outcomes say why). Used by
    /// tests and by tools that need blocks a careful leader would not build.
    pub fn seal_block(
        &self,
        txs: Vec<Transaction>,
        timestamp_ms: u64,
        proposer: PublicKey,
    ) -> (Block, Execution) {
        let height = self.tip.height + 1;
        let (outcomes, changes) = self.run(height, timestamp_ms, &txs, &verify_signatures(&txs));
        self.seal(txs, timestamp_ms, proposer, outcomes, changes)
    }

    /// The next block's header and execution for already-run transactions.
    fn seal(
        &self,
        txs: Vec<Transaction>,
        timestamp_ms: u64,
        proposer: PublicKey,
        outcomes: Vec<TxOutcome>,
        changes: ChangeSet,
    ) -> (Block, Execution) {
        let tree = self.tree_after(&changes);
        let tx_ids = Block::ids_of(&txs);
        let header = BlockHeader {
            chain_id: self.chain_id.clone(),
            height: self.tip.height + 1,
            timestamp_ms,
            prev_hash: self.tip.hash,
            tx_count: txs.len() as u32,
            tx_root: crate::merkle::root(&tx_ids),
            state_root: self.root_of(&tree),
            proposer,
            validator_set_hash: self.validator_set().hash(),
        };
        let exec = Execution {
            header: header.clone(),
            outcomes,
            changes,
            state_root: header.state_root,
            tx_ids,
            tree,
        };
        (Block { header, txs }, exec)
    }

    /// Applies an execution of a block on top of this state. Panics if the
    /// execution was not made from this state (a bug, not an input error).
    pub fn commit(&mut self, exec: Execution) {
        assert_eq!(
            exec.header.height,
            self.tip.height + 1,
            "execution is for another height"
        );
        assert_eq!(
            exec.header.prev_hash, self.tip.hash,
            "execution does not extend this state"
        );
        match (&mut self.backing, exec.tree) {
            (Backing::Memory { entries, tree }, ExecTree::Memory(after)) => {
                for (k, v) in exec.changes {
                    match v {
                        Some(v) => entries.insert(k, v),
                        None => entries.remove(&k),
                    };
                }
                *tree = after;
            }
            (Backing::Paged(p), ExecTree::Paged { delta, leaves }) => {
                if p.source.height() >= exec.header.height {
                    // The source holds the state after this block (the store
                    // wrote it with the changes of the blocks before it
                    // since its last write): only the top of the tree moves.
                    assert_eq!(
                        p.source.height(),
                        exec.header.height,
                        "the source is past the block committed"
                    );
                    let tree = Arc::make_mut(&mut p.tree);
                    for unwritten in p.layers.deltas() {
                        tree.merge(unwritten);
                    }
                    tree.merge(&delta);
                    p.layers = Layers::default();
                } else {
                    // The source is behind: the changes stay in memory
                    // (a block not final yet, or whose state the store
                    // writes later).
                    p.layers.add(exec.changes, leaves, &delta);
                }
            }
            _ => unreachable!("an execution is committed to the kind of state it came from"),
        }
        debug_assert_eq!(self.state_root(), exec.state_root);
        self.tip = ChainTip {
            height: exec.header.height,
            hash: exec.header.hash(),
            timestamp_ms: exec.header.timestamp_ms,
        };
    }

    /// Validates, executes and commits a block. Returns the outcomes.
    pub fn apply_block(&mut self, block: &Block) -> Result<Vec<TxOutcome>, BlockError> {
        let exec = self.execute(block)?;
        let outcomes = exec.outcomes.clone();
        self.commit(exec);
        Ok(outcomes)
    }
}

/// Signature verdicts for a list of transactions, one by one.
/// Callers with many transactions can compute the same verdicts in
/// parallel: the rule is [`Transaction::verify_signature`].
pub fn verify_signatures(txs: &[Transaction]) -> Vec<bool> {
    txs.iter().map(Transaction::verify_signature).collect()
}

/// Accounts from which a block's execution on a source reads them ahead.
const PREFETCH_KEYS_MIN: usize = 64;

/// Signer keys one [`verify_signatures_parallel`] call decodes at most once.
const PARALLEL_VERIFY_KEYS: usize = 4_096;

/// The same verdicts as [`verify_signatures`], by batch verification spread
/// over every core ([`crate::sigverify::verify_txs`]: signature checks are
/// the largest cost of validating a block). The result does not depend on
/// the scheduling.
pub fn verify_signatures_parallel(txs: &[Transaction]) -> Vec<bool> {
    crate::sigverify::verify_txs(
        txs,
        &mut crate::sigverify::KeyCache::new(PARALLEL_VERIFY_KEYS),
    )
}
