//! The on-disk chain: finalized blocks with certificates, indexes and the
//! ledger state, in one ordered key space of the storage engine ([`kv`]).
//!
//! Key layout (one tree, one-byte prefixes, so that a block commit is a
//! single atomic `apply_batch`):
//!
//! | prefix | key                    | value                                  |
//! |--------|------------------------|----------------------------------------|
//! | `b`    | height (u64 BE)        | [`FinalizedBlock`] (canonical bytes)   |
//! | `h`    | block hash             | height (u64 BE)                        |
//! | `t`    | tx hash                | [`TxLocation`]                         |
//! | `s`    | key hash of a [`StateKey`] | value hash, encoded key and [`StateValue`]: an entry and its state-tree leaf ([`state_source`]) |
//! | `m`    | `genesis` / `tip`      | genesis hash / [`ChainTip`]            |
//! | `v`    | view (u64 BE), kind    | this node's own [`SignedVote`]          |
//! | `a`    | address, height, index | empty: a line of the address's history (before issue #14's disk figure, the tx hash) |
//! | `c`    | height (u64 BE)        | claim changes of that block             |
//! | `e`    | view (u64 BE), signer  | equivocation evidence ([`evidence`])   |
//! | `j`    | view (u64 BE), kind    | consensus certificate journal          |
//! | `u`    | height (u64 BE), hash  | unfinalized block this node voted for  |
//! | `i`    | height (u64 BE)        | outcomes of a block whose `t` and `a` entries are not written yet ([`index`]) |
//! | `q`    | index, then an order key | encoded [`StateKey`]: expiry and receipt queues in time order, claims, proposals ([`state_source`]) |
//! | `p`    | bucket (u32 BE)        | summary of one bucket of the state tree ([`alliance_protocol::smt_paged`]) |
//! | `m`    | `tree_bits`, `state_height` | the state tree's bucket depth; the height whose state `s`, `q`, `p` hold |
//!
//! The ledger state is read from the store ([`state_source::KvSource`]);
//! memory holds only the top of its tree.
//!
//! A commit writes the block, its index entries (as one log record, written
//! out to `t` and `a` every few dozen blocks: [`index`]), the state changes
//! and the new tip in one batch and then fsyncs; only then is it acknowledged. After a
//! crash at any moment, reopening finds either the previous tip or the new
//! one, never a mix. Opening re-checks the tip: its hash link to the parent
//! and the state root recomputed from the stored bucket summaries
//! ([`Store::verify_state`] checks every entry against its leaf).

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alliance_protocol::encoding::{self, DecodeError};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::state::{
    ChainTip, Claim, Execution, LedgerState, StateKey, StateValue, TxOutcome,
};
use alliance_protocol::{Block, Certificate, FinalizedBlock, Hash32, SignedVote, VoteKind};
use alliance_protocol::{MerchantId, PublicKey, TxBody};
use serde::{Deserialize, Serialize};

pub mod bulk;
pub mod engine;
pub mod evidence;
pub mod index;
pub mod kv;
pub mod kv_fjall;
#[cfg(feature = "extra-engines")]
pub mod kv_lmdb;
pub mod kv_redb;
pub mod leaf_cache;
pub mod state_source;

pub use engine::{Engine, StoreKind};
use kv::{scan_prefix, Batch};
pub use kv::{Kv, KvError, MemKv, SledKv};

/// Where a transaction landed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxLocation {
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Applied or rejected, and why.
    pub outcome: TxOutcome,
}

/// Storage failures. Corruption is reported, never repaired silently.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage engine failed (disk full, permissions, I/O).
    #[error("database error: {0}")]
    Db(#[from] KvError),
    /// The store belongs to another chain.
    #[error("this data directory holds chain {stored}, but the genesis file is {given}: use the genesis the node was created with, or a new --home")]
    GenesisMismatch {
        /// Genesis hash in the store.
        stored: Hash32,
        /// Genesis hash given.
        given: Hash32,
    },
    /// The data directory holds another engine's store than the one asked
    /// for.
    #[error("data directory {dir} holds a {found} store, but store_engine is {wanted}: set store_engine = \"{found}\" (or leave it unset), or move the store with `alliance-node migrate-store --to {wanted}`")]
    EngineMismatch {
        /// The data directory.
        dir: String,
        /// The engine whose files it holds.
        found: StoreKind,
        /// The engine asked for.
        wanted: StoreKind,
    },
    /// Another process holds the data directory.
    #[error("data directory {0} is in use by another process: is a node already running with this --home?")]
    InUse(String),
    /// Stored bytes do not decode.
    #[error("corrupt store: {what}: {source}")]
    Decode {
        /// What was being read.
        what: String,
        /// Why it failed.
        source: DecodeError,
    },
    /// Stored data is inconsistent.
    #[error("corrupt store: {0}")]
    Corrupt(String),
    /// An execution of a state held in memory was given to the store, whose
    /// state is on disk (a bug in the caller: execute on the state the
    /// store opened).
    #[error("the execution is of a state held in memory, not of this store's state")]
    NotOnDisk,
    /// A commit that does not extend the tip (a bug in the caller).
    #[error("commit of height {got} does not extend tip {tip}")]
    NotNext {
        /// Current tip.
        tip: u64,
        /// Offered height.
        got: u64,
    },
}

const BLOCK: u8 = b'b';
const HASH: u8 = b'h';
const TX: u8 = b't';
const STATE: u8 = b's';
const VOTE: u8 = b'v';
const JOURNAL: u8 = b'j';
const VOTED_BLOCK: u8 = b'u';
const HISTORY: u8 = b'a';
const CLAIM_DELTA: u8 = b'c';
const INDEX_LOG: u8 = b'i';
/// Metadata keys all start with `m`.
const META_GENESIS: &[u8] = b"mgenesis";
const META_TIP: &[u8] = b"mtip";
/// The height whose state `s`, `q` and `p` hold (u64 BE); absent: the tip.
const META_STATE_HEIGHT: &[u8] = b"mstate_height";

/// The state is written to the store with every this many blocks.
pub const STATE_WRITE_BLOCKS: u64 = 32;
/// ... or sooner, once this many entries have changed since the last write
/// (a bound on the memory that holds them).
pub const STATE_UNWRITTEN_MAX: usize = 200_000;

/// Largest value the store decodes (a block plus certificate).
const VALUE_BYTES_MAX: usize = alliance_protocol::limits::BLOCK_BYTES_MAX + 64 * 1024;

fn key(prefix: u8, rest: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + rest.len());
    k.push(prefix);
    k.extend_from_slice(rest);
    k
}

fn history_key(address: &PublicKey, height: u64, index: u32) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 32 + 12);
    k.push(HISTORY);
    k.extend_from_slice(&address.0);
    k.extend_from_slice(&height.to_be_bytes());
    k.extend_from_slice(&index.to_be_bytes());
    k
}

/// Addresses a transaction concerns: its signer and any recipient.
fn involved(tx: &alliance_protocol::Transaction) -> Vec<PublicKey> {
    let mut v = vec![tx.signer];
    match &tx.body {
        TxBody::Issue { to, .. } | TxBody::Transfer { to, .. } if *to != tx.signer => v.push(*to),
        _ => {}
    }
    v
}

/// The key of a vote or certificate: prefix, view (u64 BE), kind byte.
fn view_kind_key(prefix: u8, view: u64, kind: VoteKind) -> Vec<u8> {
    let kind = match kind {
        VoteKind::Notarize => 0u8,
        VoteKind::Nullify => 1,
        VoteKind::Finalize => 2,
    };
    let mut k = vec![prefix];
    k.extend_from_slice(&view.to_be_bytes());
    k.push(kind);
    k
}

fn decode<T: serde::de::DeserializeOwned>(
    bytes: &[u8],
    what: impl Into<String>,
) -> Result<T, StoreError> {
    encoding::decode(bytes, VALUE_BYTES_MAX).map_err(|source| StoreError::Decode {
        what: what.into(),
        source,
    })
}

/// The chain store of one node.
pub struct Store {
    db: Arc<dyn Kv>,
    /// The height whose state is written, shared with the state's
    /// [`state_source::KvSource`].
    state_height: Arc<AtomicU64>,
    genesis_hash: Hash32,
    tip: ChainTip,
    /// Index entries of recent blocks, not yet in `t` and `a`.
    pending: index::PendingIndex,
    /// Buckets of the state tree last read, shared with the state's
    /// source: a state write drops those it changes.
    leaf_cache: Arc<leaf_cache::LeafCache>,
}

impl Store {
    /// Opens (or creates) the store at `path` for `genesis`, and returns it
    /// with the ledger state at the stored tip, checked against the tip
    /// header's state root.
    ///
    /// The state reads the store ([`state_source::KvSource`]), so it keeps
    /// the database open too: drop both to close it. The engine is the one
    /// whose files `path` holds, or fjall for a new directory
    /// ([`Engine::for_dir`]).
    pub fn open(path: &Path, genesis: &Genesis) -> Result<(Store, LedgerState), StoreError> {
        let engine = Engine::for_dir(path, None, engine::DEFAULT_MEMORY_BUDGET_BYTES)?;
        Store::open_with(path, genesis, engine)
    }

    /// [`Store::open`] on a given engine and configuration (the node's
    /// settings; the benchmark of issue #14 compares engines).
    pub fn open_with(
        path: &Path,
        genesis: &Genesis,
        engine: Engine,
    ) -> Result<(Store, LedgerState), StoreError> {
        Store::open_on(engine.open(path)?, genesis)
    }

    /// [`Store::open`] on any storage engine (the simulation uses
    /// [`MemKv`]).
    pub fn open_on(db: Box<dyn Kv>, genesis: &Genesis) -> Result<(Store, LedgerState), StoreError> {
        let db: Arc<dyn Kv> = Arc::from(db);
        let given = genesis.hash();
        let mut fresh = false;
        let tip =
            match db.get(META_GENESIS)? {
                None => {
                    let state = LedgerState::from_genesis(genesis);
                    let entries = state.entries().expect("the genesis state is in memory");
                    state_source::write_entries(db.as_ref(), entries.clone())?;
                    db.insert(META_TIP.to_vec(), encoding::encode(&state.tip()))?;
                    fresh = true;
                    state.tip()
                }
                Some(stored) => {
                    let stored =
                        Hash32(stored.as_slice().try_into().map_err(|_| {
                            StoreError::Corrupt("genesis hash is not 32 bytes".into())
                        })?);
                    if stored != given {
                        return Err(StoreError::GenesisMismatch { stored, given });
                    }
                    match db.get(META_TIP)? {
                        Some(b) => decode(&b, "tip")?,
                        None => return Err(StoreError::Corrupt("tip record missing".into())),
                    }
                }
            };
        let tree = match state_source::stored_bits(db.as_ref())? {
            None => {
                let bits = state_source::DEFAULT_TREE_BITS;
                if fresh {
                    let tree = state_source::rebucket(db.as_ref(), bits)?;
                    // Last, so that a store is either whole or absent.
                    let mut batch = Batch::default();
                    batch.put(META_STATE_HEIGHT, &0u64.to_be_bytes()[..]);
                    batch.put(META_GENESIS, &given.0[..]);
                    db.apply_durable(batch)?;
                    tree
                } else {
                    // A store from before the state moved to disk.
                    state_source::migrate_legacy(db.as_ref(), bits)?
                }
            }
            Some(stored) => state_source::load_tree(db.as_ref(), stored)?,
        };
        // The state is written every few dozen blocks: the blocks since
        // are executed again, from the store (the state machine is
        // deterministic), and their changes held in memory until the next
        // write.
        let written = match db.get(META_STATE_HEIGHT)? {
            Some(b) => u64::from_be_bytes(
                b.as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("state height record".into()))?,
            ),
            None => tip.height,
        };
        if written > tip.height {
            return Err(StoreError::Corrupt(format!(
                "the state is written at height {written}, past the tip {}",
                tip.height
            )));
        }
        let state_height = Arc::new(AtomicU64::new(written));
        let leaf_cache = Arc::new(leaf_cache::LeafCache::new(leaf_cache::LEAF_CACHE_BYTES));
        let source = Arc::new(state_source::KvSource::new(
            db.clone(),
            state_height.clone(),
            leaf_cache.clone(),
        ));
        let mut store = Store {
            db,
            state_height,
            genesis_hash: given,
            tip,
            pending: index::PendingIndex::default(),
            leaf_cache,
        };
        let written_tip = match written {
            0 => LedgerState::from_genesis(genesis).tip(),
            h => {
                let fb = store
                    .block(h)?
                    .ok_or_else(|| StoreError::Corrupt(format!("block {h} missing")))?;
                ChainTip {
                    height: h,
                    hash: fb.block.hash(),
                    timestamp_ms: fb.block.header.timestamp_ms,
                }
            }
        };
        let mut state =
            LedgerState::from_source(genesis.chain_id.clone(), written_tip, source, tree);
        for height in written + 1..=tip.height {
            let fb = store
                .block(height)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {height} missing")))?;
            let verdicts = alliance_protocol::state::verify_signatures_parallel(&fb.block.txs);
            let exec = state.execute_verified(&fb.block, &verdicts).map_err(|e| {
                StoreError::Corrupt(format!(
                    "block {height} does not apply on the state written at height {written} (the stored state does not match the state root): {e}"
                ))
            })?;
            state.commit(exec);
        }
        store.pending = store.pending_from_log()?;
        store.check_tip(&state, genesis)?;
        Ok((store, state))
    }

    /// Checks every stored state entry against the state tree's leaves and
    /// index, and the leaves' root against the state root of the height
    /// they hold ([`Store::state_height`]). Reads the whole state once, in
    /// bounded memory (opening checks only the top of the tree).
    pub fn verify_state(&self, genesis: &Genesis) -> Result<(), StoreError> {
        let bits = state_source::stored_bits(self.db.as_ref())?
            .ok_or_else(|| StoreError::Corrupt("no state tree depth".into()))?;
        let root = state_source::verify_records(self.db.as_ref(), bits)?;
        let height = self.state_height();
        let expected = match height {
            0 => LedgerState::from_genesis(genesis).state_root(),
            h => {
                self.block(h)?
                    .ok_or_else(|| StoreError::Corrupt(format!("block {h} missing")))?
                    .block
                    .header
                    .state_root
            }
        };
        if root != expected {
            return Err(StoreError::Corrupt(format!(
                "the stored entries give state root {root}, block {height} has {expected}"
            )));
        }
        Ok(())
    }

    /// The index entries of the blocks whose outcomes are logged (not yet
    /// written to the index), derived again from each block.
    fn pending_from_log(&self) -> Result<index::PendingIndex, StoreError> {
        let mut pending = index::PendingIndex::default();
        for item in scan_prefix(self.db.as_ref(), &[INDEX_LOG]) {
            let (k, v) = item?;
            let height = k
                .get(1..9)
                .and_then(|b| b.try_into().ok())
                .map(u64::from_be_bytes)
                .filter(|h| *h <= self.tip.height && k.len() == 9)
                .ok_or_else(|| StoreError::Corrupt("index log key".into()))?;
            let outcomes: Vec<TxOutcome> = decode(&v, format!("outcomes of block {height}"))?;
            let block = self.block(height)?.ok_or_else(|| {
                StoreError::Corrupt(format!("outcomes of block {height} without the block"))
            })?;
            if block.block.txs.len() != outcomes.len() {
                return Err(StoreError::Corrupt(format!(
                    "block {height} has {} transactions but {} outcomes",
                    block.block.txs.len(),
                    outcomes.len()
                )));
            }
            pending.add(
                height,
                index::BlockIndex::of_block(
                    height,
                    &block.block.txs,
                    &Block::ids_of(&block.block.txs),
                    &outcomes,
                ),
            );
        }
        Ok(pending)
    }

    /// Re-checks the tip: the stored block's hash is the tip hash, it links
    /// to its parent, and its state root is the stored state's root.
    fn check_tip(&self, state: &LedgerState, genesis: &Genesis) -> Result<(), StoreError> {
        let tip = self.tip;
        if tip.height == 0 {
            if tip.hash != self.genesis_hash {
                return Err(StoreError::Corrupt(
                    "tip at height 0 is not the genesis".into(),
                ));
            }
            if state.state_root() != LedgerState::from_genesis(genesis).state_root() {
                return Err(StoreError::Corrupt(
                    "stored state at height 0 differs from the genesis state".into(),
                ));
            }
            return Ok(());
        }
        let fb = self
            .block(tip.height)?
            .ok_or_else(|| StoreError::Corrupt(format!("tip block {} missing", tip.height)))?;
        if fb.block.hash() != tip.hash {
            return Err(StoreError::Corrupt(format!(
                "block {} hash differs from the tip record",
                tip.height
            )));
        }
        let parent_hash = if tip.height == 1 {
            self.genesis_hash
        } else {
            self.block(tip.height - 1)?
                .ok_or_else(|| StoreError::Corrupt(format!("block {} missing", tip.height - 1)))?
                .block
                .hash()
        };
        if fb.block.header.prev_hash != parent_hash {
            return Err(StoreError::Corrupt(format!(
                "block {} does not link to its parent",
                tip.height
            )));
        }
        if fb.block.header.state_root != state.state_root() {
            return Err(StoreError::Corrupt(format!(
                "stored state root {} differs from block {}'s state_root {}",
                state.state_root(),
                tip.height,
                fb.block.header.state_root
            )));
        }
        Ok(())
    }

    /// The last committed block.
    pub fn tip(&self) -> ChainTip {
        self.tip
    }

    /// The genesis hash this store was created with.
    pub fn genesis_hash(&self) -> Hash32 {
        self.genesis_hash
    }

    /// Commits a finalized block and applies it to `state` (the state this
    /// store opened): block, certificate, indexes and tip, atomically, then
    /// fsyncs; returns only once durable. The state's changes are written
    /// with every [`STATE_WRITE_BLOCKS`]th block (or sooner, past
    /// [`STATE_UNWRITTEN_MAX`] changed entries), in that block's batch;
    /// until then they are held by `state`, and after a crash the blocks
    /// since the last write are executed again at open.
    pub fn commit(
        &mut self,
        exec: Execution,
        block: &FinalizedBlock,
        state: &mut LedgerState,
    ) -> Result<(), StoreError> {
        let h = &block.block.header;
        if h.height != self.tip.height + 1 || h.prev_hash != self.tip.hash {
            return Err(StoreError::NotNext {
                tip: self.tip.height,
                got: h.height,
            });
        }
        if !exec.is_on_source() || state.tip() != self.tip {
            return Err(StoreError::NotOnDisk);
        }
        debug_assert_eq!(exec.header, *h, "execution belongs to this block");
        let hash = block.block.hash();
        let mut batch = Batch::default();
        batch.put(key(BLOCK, &h.height.to_be_bytes()), block.to_bytes());
        batch.put(key(HASH, &hash.0), &h.height.to_be_bytes()[..]);
        let entries =
            index::BlockIndex::of_block(h.height, &block.block.txs, &exec.tx_ids, &exec.outcomes);
        let write_index = self.pending.must_write_with(&entries);
        if write_index {
            self.pending.write_with(h.height, &entries, &mut batch);
        } else {
            batch.put(index::log_key(h.height), encoding::encode(&exec.outcomes));
        }
        let deltas = claim_deltas(&exec, state)?;
        if !deltas.is_empty() {
            batch.put(
                key(CLAIM_DELTA, &h.height.to_be_bytes()),
                encoding::encode(&deltas),
            );
        }
        let write_state = h.height.is_multiple_of(STATE_WRITE_BLOCKS)
            || state.unwritten_entries() + exec.changes.len() >= STATE_UNWRITTEN_MAX;
        let mut state_written_keys = Vec::new();
        if write_state {
            let writes = state
                .writes_with(&exec)
                .expect("an execution of a state on a source");
            for (k, v) in &writes.entries {
                state_written_keys.push(state_source::write_entry(&mut batch, k, v.as_ref()));
            }
            state_source::bucket_writes(&mut batch, &writes.buckets);
            batch.put(META_STATE_HEIGHT, &h.height.to_be_bytes()[..]);
        }
        let tip = ChainTip {
            height: h.height,
            hash,
            timestamp_ms: h.timestamp_ms,
        };
        batch.put(META_TIP, encoding::encode(&tip));
        // A state write changes the leaves of the entries it writes: their
        // cached buckets are changed likewise, and no bucket is read through
        // the cache until the write is applied (leaf_cache.rs).
        let cache_guard = write_state.then(|| {
            self.leaf_cache
                .begin_write(state_written_keys.iter().copied())
        });
        if let Err(e) = self.db.apply_durable(batch) {
            if let Some(guard) = cache_guard {
                guard.failed();
            }
            return Err(e.into());
        }
        drop(cache_guard);
        if write_index {
            self.pending.clear();
        } else {
            self.pending.add(h.height, entries);
        }
        self.tip = tip;
        if write_state {
            self.state_height.store(tip.height, Ordering::Release);
        }
        state.commit(exec);
        Ok(())
    }

    /// The height whose state is written in the store (the tip's, or a few
    /// dozen blocks before: see [`Store::commit`]).
    pub fn state_height(&self) -> u64 {
        self.state_height.load(Ordering::Acquire)
    }

    /// The cache of the state tree's buckets in front of the store: its
    /// hits and size, and its bypass for benchmarks.
    pub fn leaf_cache(&self) -> &leaf_cache::LeafCache {
        &self.leaf_cache
    }

    /// Claim changes summed over blocks `from..=to`: the settlement of a period.
    pub fn claims_between(
        &self,
        from: u64,
        to: u64,
    ) -> Result<Vec<(MerchantId, MerchantId, Claim)>, StoreError> {
        let mut sum: BTreeMap<(MerchantId, MerchantId), Claim> = BTreeMap::new();
        let lo = key(CLAIM_DELTA, &from.to_be_bytes());
        let hi = key(CLAIM_DELTA, &to.saturating_add(1).to_be_bytes());
        for item in self.db.range(&lo, &hi, false) {
            let (_, v) = item?;
            let deltas: Vec<(MerchantId, MerchantId, Claim)> = decode(&v, "claim deltas")?;
            for (c, d, delta) in deltas {
                let e = sum.entry((c, d)).or_default();
                e.redeemed_points += delta.redeemed_points;
                e.redeemed_value_centiminor += delta.redeemed_value_centiminor;
                e.confirmed_points += delta.confirmed_points;
                e.confirmed_value_centiminor += delta.confirmed_value_centiminor;
            }
        }
        Ok(sum
            .into_iter()
            .map(|((c, d), claim)| (c, d, claim))
            .collect())
    }

    /// An address's transactions, newest first: up to `limit` entries
    /// strictly before `(height, index)` when given. Returns each one's
    /// location, (height, index in the block).
    pub fn history(
        &self,
        address: &PublicKey,
        before: Option<(u64, u32)>,
        limit: usize,
    ) -> Result<Vec<(u64, u32)>, StoreError> {
        let lo = key(HISTORY, &address.0);
        let hi = match before {
            Some((h, i)) => history_key(address, h, i),
            None => history_key(address, u64::MAX, u32::MAX),
        };
        // The location is in the key. The value is empty (stores written
        // before held the transaction's hash there: ignored).
        let parse = |k: &[u8]| -> Result<(u64, u32), StoreError> {
            // Prefix and address, then height and position.
            let Some(rest) = k
                .get(1 + 32..)
                .and_then(|rest| <[u8; 12]>::try_from(rest).ok())
            else {
                return Err(StoreError::Corrupt("history entry".into()));
            };
            let (height, index) = rest.split_at(8);
            Ok((
                u64::from_be_bytes(height.try_into().expect("8 bytes")),
                u32::from_be_bytes(index.try_into().expect("4 bytes")),
            ))
        };
        // Pending lines are newer than any written one: they come first.
        let mut out = Vec::new();
        for k in self.pending.history_desc(&lo, &hi).take(limit) {
            out.push(parse(k)?);
        }
        for item in self.db.range(&lo, &hi, true).take(limit - out.len()) {
            let (k, _) = item?;
            out.push(parse(&k)?);
        }
        Ok(out)
    }

    /// A finalized block by height.
    pub fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StoreError> {
        match self.db.get(&key(BLOCK, &height.to_be_bytes()))? {
            Some(b) => Ok(Some(decode(&b, format!("block {height}"))?)),
            None => Ok(None),
        }
    }

    /// The height of a block hash.
    pub fn height_of(&self, hash: &Hash32) -> Result<Option<u64>, StoreError> {
        match self.db.get(&key(HASH, &hash.0))? {
            Some(b) => {
                let arr: [u8; 8] = b
                    .as_slice()
                    .try_into()
                    .map_err(|_| StoreError::Corrupt("bad height index".into()))?;
                Ok(Some(u64::from_be_bytes(arr)))
            }
            None => Ok(None),
        }
    }

    /// Where a transaction was committed.
    pub fn tx_location(&self, hash: &Hash32) -> Result<Option<TxLocation>, StoreError> {
        if let Some(loc) = self.pending.tx_location(hash) {
            return Ok(Some(loc.clone()));
        }
        match self.db.get(&key(TX, &hash.0))? {
            Some(b) => Ok(Some(decode(&b, "tx location")?)),
            None => Ok(None),
        }
    }

    /// The certificate of a committed block.
    pub fn certificate(&self, height: u64) -> Result<Option<Certificate>, StoreError> {
        Ok(self.block(height)?.map(|fb| fb.certificate))
    }

    /// Makes one of this node's own consensus votes durable (fsync) before
    /// it is sent: after a restart the consensus core rereads them and never
    /// signs anything conflicting.
    pub fn persist_vote(&self, vote: &SignedVote) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        batch.put(
            view_kind_key(VOTE, vote.data.view, vote.data.kind),
            encoding::encode(vote),
        );
        self.db.apply_durable(batch)?;
        Ok(())
    }

    /// This node's persisted votes, by view.
    pub fn votes(&self) -> Result<Vec<SignedVote>, StoreError> {
        let mut out = Vec::new();
        for item in scan_prefix(self.db.as_ref(), &[VOTE]) {
            let (_, v) = item?;
            out.push(decode(&v, "persisted vote")?);
        }
        Ok(out)
    }

    /// Forgets own votes of views below `view` (they can no longer conflict
    /// with anything: those views are behind a finalized block).
    pub fn prune_votes_below(&self, view: u64) -> Result<(), StoreError> {
        self.remove_below(VOTE, view)
    }

    /// Deletes of every key under `prefix` whose big-endian u64 after the
    /// prefix (a view or a height) is below `below`, added to `batch`.
    fn delete_below(&self, prefix: u8, below: u64, batch: &mut Batch) -> Result<(), StoreError> {
        let mut end = vec![prefix];
        end.extend_from_slice(&below.to_be_bytes());
        for item in self.db.range(&[prefix], &end, false) {
            batch.delete(item?.0);
        }
        Ok(())
    }

    /// Removes, in one batch, every key under `prefix` whose big-endian u64
    /// after the prefix is below `below`.
    fn remove_below(&self, prefix: u8, below: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        self.delete_below(prefix, below, &mut batch)?;
        if !batch.is_empty() {
            self.db.apply(batch)?;
        }
        Ok(())
    }

    /// After a finalization: forgets own votes and journaled certificates
    /// of views below `view`, and voted blocks at or below `height`, in one
    /// write (see [`Store::prune_consensus_below`] and
    /// [`Store::prune_voted_blocks_through`]).
    pub fn prune_after_finalized(&self, view: u64, height: u64) -> Result<(), StoreError> {
        let mut batch = Batch::default();
        self.delete_below(VOTE, view, &mut batch)?;
        self.delete_below(JOURNAL, view, &mut batch)?;
        self.delete_below(VOTED_BLOCK, height.saturating_add(1), &mut batch)?;
        if !batch.is_empty() {
            self.db.apply(batch)?;
        }
        Ok(())
    }

    /// Journals a consensus certificate (notarization, nullification or
    /// finalization) by view and kind. Not flushed here: the next vote or
    /// commit flushes it, and a certificate lost in a crash is fetched
    /// again from peers by the consensus resolver.
    pub fn journal_certificate(&self, cert: &Certificate) -> Result<(), StoreError> {
        let k = view_kind_key(JOURNAL, cert.view, cert.kind);
        self.db.insert(k, encoding::encode(cert))?;
        Ok(())
    }

    /// Keeps a block this node is about to vote for (not finalized yet).
    /// Not flushed here: the vote's [`Store::persist_vote`] that follows
    /// flushes both.
    pub fn persist_voted_block(&self, block: &Block) -> Result<(), StoreError> {
        let mut k = vec![VOTED_BLOCK];
        k.extend_from_slice(&block.header.height.to_be_bytes());
        k.extend_from_slice(&block.hash().0);
        self.db.insert(k, encoding::encode(block))?;
        Ok(())
    }

    /// The blocks kept by [`Store::persist_voted_block`] above height
    /// `above` (the consensus core takes them back at restart).
    pub fn voted_blocks(&self, above: u64) -> Result<Vec<Block>, StoreError> {
        let mut start = vec![VOTED_BLOCK];
        start.extend_from_slice(&(above.saturating_add(1)).to_be_bytes());
        let mut out = Vec::new();
        for item in self.db.range(&start, &[VOTED_BLOCK + 1], false) {
            let (_, v) = item?;
            out.push(decode(&v, "voted block")?);
        }
        Ok(out)
    }

    /// Forgets voted blocks at or below `height` (finalized, or orphaned
    /// by a finalized sibling).
    pub fn prune_voted_blocks_through(&self, height: u64) -> Result<(), StoreError> {
        self.remove_below(VOTED_BLOCK, height.saturating_add(1))
    }

    /// The journaled certificates, by view (the consensus core verifies
    /// them again when it re-applies them).
    pub fn journaled_certificates(&self) -> Result<Vec<Certificate>, StoreError> {
        let mut out = Vec::new();
        for item in scan_prefix(self.db.as_ref(), &[JOURNAL]) {
            let (_, v) = item?;
            out.push(decode(&v, "journaled certificate")?);
        }
        Ok(out)
    }

    /// Forgets own votes and journaled certificates of views below `view`
    /// (they can no longer matter: those views are behind a finalized
    /// block).
    pub fn prune_consensus_below(&self, view: u64) -> Result<(), StoreError> {
        self.prune_votes_below(view)?;
        self.remove_below(JOURNAL, view)
    }

    /// Writes raw bytes under a block key. Only for tamper tests and tools
    /// that must simulate corruption.
    #[doc(hidden)]
    pub fn raw_db(&self) -> &dyn Kv {
        self.db.as_ref()
    }
}

/// How each claim changed in a block: new value minus the value in
/// `state`, the state the block applies to.
fn claim_deltas(
    exec: &Execution,
    state: &LedgerState,
) -> Result<Vec<(MerchantId, MerchantId, Claim)>, StoreError> {
    let mut out = Vec::new();
    for (k, v) in &exec.changes {
        let (StateKey::Claim(creditor, debtor), Some(StateValue::Claim(new))) = (k, v) else {
            continue;
        };
        let old = match state.get(k) {
            Some(StateValue::Claim(c)) => c,
            Some(_) => return Err(StoreError::Corrupt("claim key holds another value".into())),
            None => Claim::default(),
        };
        let delta = Claim {
            redeemed_points: new.redeemed_points - old.redeemed_points,
            redeemed_value_centiminor: new.redeemed_value_centiminor
                - old.redeemed_value_centiminor,
            confirmed_points: new.confirmed_points - old.confirmed_points,
            confirmed_value_centiminor: new.confirmed_value_centiminor
                - old.confirmed_value_centiminor,
        };
        out.push((creditor.clone(), debtor.clone(), delta));
    }
    Ok(out)
}

/// Replays every stored block from genesis in memory, verifying hash links,
/// certificates (against each height's validator set) and state roots, and
/// returns the resulting state. This is what an auditor does with a node's
/// data; the store uses it in tests to prove a reopened store equals a
/// replay.
pub fn replay(store: &Store, genesis: &Genesis) -> Result<LedgerState, String> {
    let mut state = LedgerState::from_genesis(genesis);
    for height in 1..=store.tip().height {
        let fb = store
            .block(height)
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("block {height} missing"))?;
        let validators = state.validator_set();
        fb.certificate
            .verify(&genesis.chain_id, &validators, height, &fb.block.hash())
            .map_err(|e| format!("block {height}: {e}"))?;
        state
            .apply_block(&fb.block)
            .map_err(|e| format!("block {height}: {e}"))?;
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Synth;
    use alliance_protocol::fixtures::demo_genesis;

    fn chain(dir: &Path, blocks: u64) -> (Genesis, Hash32) {
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let (mut store, mut state) = Store::open(dir, &genesis).unwrap();
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        for _ in 0..blocks {
            let (fb, exec) = synth.next_block(&state, 40, genesis.genesis_time_ms);
            store.commit(exec, &fb, &mut state).unwrap();
        }
        (genesis, state.state_root())
    }

    #[test]
    fn reopen_resumes_at_the_tip_with_the_same_state() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, root) = chain(dir.path(), 5);
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        assert_eq!(store.tip().height, 5);
        assert_eq!(state.state_root(), root);
        let fb = store.block(3).unwrap().unwrap();
        assert_eq!(store.height_of(&fb.block.hash()).unwrap(), Some(3));
        let tx = &fb.block.txs[0];
        let loc = store.tx_location(&tx.hash()).unwrap().unwrap();
        assert_eq!((loc.height, loc.index), (3, 0));
        assert_eq!(replay(&store, &genesis).unwrap().state_root(), root);
    }

    /// Across state writes, every bucket in the leaf cache holds what the
    /// store holds: a write patches the buckets it changes.
    #[test]
    fn the_leaf_cache_matches_the_store_across_state_writes() {
        use alliance_protocol::state::StateSource;
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let (mut store, mut state) = Store::open(dir.path(), &genesis).unwrap();
        let uncached = state_source::KvSource::new(
            store.db.clone(),
            store.state_height.clone(),
            Arc::new(leaf_cache::LeafCache::new(0)),
        );
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        let mut compared = 0;
        for _ in 0..(2 * STATE_WRITE_BLOCKS + 3) {
            let (fb, exec) = synth.next_block(&state, 40, genesis.genesis_time_ms);
            store.commit(exec, &fb, &mut state).unwrap();
            for (low, high, leaves) in store.leaf_cache().cached() {
                assert_eq!(
                    leaves,
                    uncached.leaves(&low, &high),
                    "bucket {low:?} at height {}",
                    store.tip().height
                );
                compared += 1;
            }
        }
        assert!(store.state_height() >= 2 * STATE_WRITE_BLOCKS);
        assert!(compared > 0, "the blocks read buckets through the cache");
    }

    #[test]
    fn every_engine_reopens_at_the_same_tip_with_the_same_reads() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        for (name, _) in Engine::NAMES.iter().filter(|(n, _)| *n != "mem") {
            let engine = Engine::from_name(name).unwrap();
            let path = dir.path().join(name);
            let root = {
                let (mut store, mut state) = Store::open_with(&path, &genesis, engine).unwrap();
                for _ in 0..6 {
                    let (fb, exec) = synth.next_block(&state, 40, genesis.genesis_time_ms);
                    store.persist_voted_block(&fb.block).unwrap();
                    store.journal_certificate(&fb.certificate).unwrap();
                    store.commit(exec, &fb, &mut state).unwrap();
                    store
                        .prune_voted_blocks_through(fb.block.header.height)
                        .unwrap();
                }
                state.state_root()
            };
            let (store, state) = Store::open_with(&path, &genesis, engine).unwrap();
            assert_eq!(
                (store.tip().height, state.state_root()),
                (6, root),
                "{name}"
            );
            assert_eq!(
                replay(&store, &genesis).unwrap().state_root(),
                root,
                "{name}"
            );
            assert!(store.voted_blocks(0).unwrap().is_empty(), "{name}");
            assert_eq!(store.journaled_certificates().unwrap().len(), 6, "{name}");
            let tx = store.block(4).unwrap().unwrap().block.txs[0].clone();
            let loc = store.tx_location(&tx.hash()).unwrap().unwrap();
            assert_eq!((loc.height, loc.index), (4, 0), "{name}");
            let history = store.history(&tx.signer, None, 100).unwrap();
            assert!(history.contains(&(4, 0)), "{name}");
            assert_eq!(
                store.claims_between(1, 6).unwrap(),
                state.claims(),
                "{name}"
            );
        }
    }

    #[test]
    fn votes_persist_and_prune() {
        use alliance_protocol::{Keypair, VoteData};
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let key = Keypair::from_label("voter");
        {
            let (store, _) = Store::open(dir.path(), &genesis).unwrap();
            for view in [3u64, 7, 300] {
                let data = VoteData {
                    kind: VoteKind::Notarize,
                    view,
                    height: 1,
                    block_hash: Hash32([1; 32]),
                };
                let domain = alliance_protocol::VoteDomain {
                    chain_id: "store-test".into(),
                    validator_set_hash: Hash32::ZERO,
                };
                store.persist_vote(&data.sign(&domain, &key)).unwrap();
            }
            store.prune_votes_below(7).unwrap();
        }
        let (store, _) = Store::open(dir.path(), &genesis).unwrap();
        let views: Vec<u64> = store.votes().unwrap().iter().map(|v| v.data.view).collect();
        assert_eq!(
            views,
            vec![7, 300],
            "durable across reopen, ordered by view, pruned below 7"
        );
    }

    #[test]
    fn certificate_journal_survives_reopen_and_prunes_with_the_votes() {
        use alliance_protocol::{Certificate, Keypair};
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let key = Keypair::from_label("voter");
        let cert = |kind, view| {
            Certificate::from_votes(
                kind,
                view,
                0,
                Hash32::ZERO,
                [(key.public(), key.sign(b"x"))],
            )
        };
        {
            let (store, _) = Store::open(dir.path(), &genesis).unwrap();
            for view in [3u64, 7, 300] {
                store
                    .journal_certificate(&cert(VoteKind::Nullify, view))
                    .unwrap();
                store
                    .journal_certificate(&cert(VoteKind::Notarize, view))
                    .unwrap();
            }
            // Journaling the same (view, kind) again replaces, never duplicates.
            store
                .journal_certificate(&cert(VoteKind::Nullify, 7))
                .unwrap();
            store.prune_consensus_below(7).unwrap();
            store.raw_db().flush().unwrap();
        }
        let (store, _) = Store::open(dir.path(), &genesis).unwrap();
        let got: Vec<(u64, VoteKind)> = store
            .journaled_certificates()
            .unwrap()
            .iter()
            .map(|c| (c.view, c.kind))
            .collect();
        assert_eq!(
            got,
            vec![
                (7, VoteKind::Notarize),
                (7, VoteKind::Nullify),
                (300, VoteKind::Notarize),
                (300, VoteKind::Nullify)
            ]
        );
    }

    #[test]
    fn history_and_period_claims() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = chain(dir.path(), 12);
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        // Period claims over the whole chain equal the state's claims.
        let all = store.claims_between(1, 12).unwrap();
        let current: Vec<_> = state.claims();
        assert_eq!(all, current);
        assert!(
            !all.is_empty(),
            "the synthetic chain has cross-merchant redemptions"
        );
        let (a, b) = (
            store.claims_between(1, 6).unwrap(),
            store.claims_between(7, 12).unwrap(),
        );
        let total = |v: &[(MerchantId, MerchantId, Claim)]| {
            v.iter().map(|(_, _, c)| c.redeemed_points).sum::<u64>()
        };
        assert_eq!(total(&a) + total(&b), total(&all));
        // History: newest first, paginated without overlap.
        let who = store.block(3).unwrap().unwrap().block.txs[0].signer;
        let page1 = store.history(&who, None, 3).unwrap();
        assert!(!page1.is_empty());
        assert!(page1
            .windows(2)
            .all(|w| (w[0].0, w[0].1) > (w[1].0, w[1].1)));
        let last = page1.last().unwrap();
        let page2 = store.history(&who, Some((last.0, last.1)), 3).unwrap();
        assert!(page2.iter().all(|e| (e.0, e.1) < (last.0, last.1)));
        for (h, i) in page1.iter().chain(&page2) {
            let tx = &store.block(*h).unwrap().unwrap().block.txs[*i as usize];
            assert!(involved(tx).contains(&who));
        }
    }

    /// Every transaction's location and every address's history, read
    /// back through the store, against the blocks themselves: while the
    /// entries of the last blocks are pending (in memory and in their log
    /// records), after a reopen, and once they are written out.
    #[test]
    fn index_entries_pending_or_written_read_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let blocks = index::INDEX_BATCH_BLOCKS as u64 + 13;
        let (genesis, _) = chain(dir.path(), blocks);
        let log_records = |store: &Store| scan_prefix(store.db.as_ref(), &[INDEX_LOG]).count();
        let check = |store: &Store| {
            let mut expected: BTreeMap<PublicKey, Vec<(u64, u32)>> = BTreeMap::new();
            for height in 1..=store.tip().height {
                let fb = store.block(height).unwrap().unwrap();
                for (i, tx) in fb.block.txs.iter().enumerate() {
                    let loc = store.tx_location(&tx.hash()).unwrap().expect("indexed");
                    assert_eq!((loc.height, loc.index), (height, i as u32));
                    for addr in involved(tx) {
                        expected.entry(addr).or_default().push((height, i as u32));
                    }
                }
            }
            for (addr, mut lines) in expected {
                lines.reverse();
                // Read in pages of 7, across the pending/written boundary.
                let mut got = Vec::new();
                let mut before = None;
                loop {
                    let page = store.history(&addr, before, 7).unwrap();
                    let Some(last) = page.last() else { break };
                    before = Some((last.0, last.1));
                    got.extend(page);
                }
                assert_eq!(got, lines, "history of {addr:?}");
            }
        };
        let (mut store, mut state) = Store::open(dir.path(), &genesis).unwrap();
        assert_eq!(log_records(&store), 13, "the last 13 blocks are pending");
        assert!(!store.pending.is_empty());
        check(&store);
        // Commit until the pending entries are written out.
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        while log_records(&store) > 0 {
            let (fb, exec) = synth.next_block(&state, 40, genesis.genesis_time_ms);
            store.commit(exec, &fb, &mut state).unwrap();
        }
        assert!(store.pending.is_empty());
        assert_eq!(store.tip().height, 2 * index::INDEX_BATCH_BLOCKS as u64);
        check(&store);
        drop((store, state));
        let (store, _) = Store::open(dir.path(), &genesis).unwrap();
        check(&store);
    }

    #[test]
    fn another_genesis_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        chain(dir.path(), 1);
        let (other, _) = demo_genesis("another-chain", 4, 1_700_000_000_000);
        assert!(matches!(
            Store::open(dir.path(), &other),
            Err(StoreError::GenesisMismatch { .. })
        ));
    }

    /// A stored account with points, and a copy of it 1,000 points richer.
    fn richer_account(store: &Store) -> (StateKey, StateValue, Hash32) {
        scan_prefix(store.raw_db(), &[STATE])
            .find_map(|item| {
                let (_, record) = item.unwrap();
                match state_source::parse_state_record(&record).unwrap() {
                    (k, StateValue::Account(mut a)) if !a.lots.is_empty() => {
                        let hash = StateValue::Account(a.clone()).tree_value();
                        a.lots[0].amount += 1_000;
                        Some((k, StateValue::Account(a), hash))
                    }
                    _ => None,
                }
            })
            .unwrap()
    }

    #[test]
    fn an_altered_balance_is_caught_by_the_state_root() {
        let dir = tempfile::tempdir().unwrap();
        // Long enough for the state to be written at the tip.
        let (genesis, _) = chain(dir.path(), STATE_WRITE_BLOCKS);
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        store.verify_state(&genesis).unwrap();
        let (k, richer, old_hash) = richer_account(&store);
        let db = store.raw_db();
        let record = state_source::state_record_key(&k);
        db.insert(
            record.clone(),
            state_source::state_record_hashed(&old_hash, &k, &richer),
        )
        .unwrap();
        // The entry no longer matches its leaf.
        match store.verify_state(&genesis) {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("leaf"), "{why}"),
            other => panic!("tampering not detected: {other:?}"),
        }
        // Its leaf altered to match: the leaves no longer give the root.
        db.insert(record, state_source::state_record(&k, &richer))
            .unwrap();
        match store.verify_state(&genesis) {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("state root"), "{why}"),
            other => panic!("tampering not detected: {other:?}"),
        }
        // The bucket summary altered too: opening refuses the root.
        let bits = state_source::stored_bits(db).unwrap().unwrap();
        let bucket = state_source::bucket_key(
            alliance_protocol::smt_paged::PagedTree::new(bits)
                .unwrap()
                .bucket_of(&k.tree_key()),
        );
        let mut summary = db.get(&bucket).unwrap().expect("the account's bucket");
        summary[1] ^= 1;
        db.insert(bucket, summary).unwrap();
        db.flush().unwrap();
        drop((store, state));
        match Store::open(dir.path(), &genesis) {
            Err(StoreError::Corrupt(why)) => assert!(why.contains("state root"), "{why}"),
            other => panic!("tampering not detected: {:?}", other.map(|(s, _)| s.tip())),
        }
    }

    #[test]
    fn the_state_is_written_every_few_dozen_blocks_and_the_rest_replayed_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = chain(dir.path(), STATE_WRITE_BLOCKS + 8);
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        for round in 0..2u64 {
            let (mut store, mut state) = Store::open(dir.path(), &genesis).unwrap();
            let tip = store.tip().height;
            assert_eq!(tip, STATE_WRITE_BLOCKS + 8 + round * STATE_WRITE_BLOCKS);
            assert_eq!(
                store.state_height(),
                tip / STATE_WRITE_BLOCKS * STATE_WRITE_BLOCKS
            );
            assert_eq!(state.tip(), store.tip());
            store.verify_state(&genesis).unwrap();
            let replayed = replay(&store, &genesis).unwrap();
            assert_eq!(state.state_root(), replayed.state_root());
            assert_eq!(state.claims(), replayed.claims());
            for _ in 0..STATE_WRITE_BLOCKS {
                let (fb, exec) = synth.next_block(&state, 40, genesis.genesis_time_ms);
                store.commit(exec, &fb, &mut state).unwrap();
            }
        }
    }

    #[test]
    fn a_store_from_before_the_state_moved_to_disk_is_converted_at_open() {
        // The old layout, written by hand: every entry under its encoded
        // key, no index and no tree records; blocks and tip as ever.
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        let mut memory = LedgerState::from_genesis(&genesis);
        let db = MemKv::default();
        let mut batch = Batch::default();
        for _ in 0..5 {
            let (fb, exec) = synth.next_block(&memory, 30, genesis.genesis_time_ms);
            let h = fb.block.header.height;
            batch.put(key(BLOCK, &h.to_be_bytes()), fb.to_bytes());
            batch.put(key(HASH, &fb.block.hash().0), &h.to_be_bytes()[..]);
            memory.commit(exec);
        }
        for (k, v) in memory.entries().unwrap() {
            batch.put(key(STATE, &encoding::encode(k)), encoding::encode(v));
        }
        batch.put(META_TIP, encoding::encode(&memory.tip()));
        batch.put(META_GENESIS, &genesis.hash().0[..]);
        db.apply_durable(batch).unwrap();
        let (store, state) = Store::open_on(Box::new(db.clone()), &genesis).unwrap();
        assert_eq!(state.tip(), memory.tip());
        assert_eq!(state.state_root(), memory.state_root());
        assert_eq!(state.claims(), memory.claims());
        for (k, v) in memory.entries().unwrap() {
            assert_eq!(state.get(k).as_ref(), Some(v));
        }
        store.verify_state(&genesis).unwrap();
        drop((store, state));
        // Converted once: the next open reads the new layout.
        let (_, state) = Store::open_on(Box::new(db), &genesis).unwrap();
        assert_eq!(state.state_root(), memory.state_root());
    }

    #[test]
    fn a_commit_that_does_not_extend_the_tip_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("store-test", 4, 1_700_000_000_000);
        let (mut store, mut state) = Store::open(dir.path(), &genesis).unwrap();
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        let (fb, exec) = synth.next_block(&state, 10, genesis.genesis_time_ms);
        store.commit(exec.clone(), &fb, &mut state).unwrap();
        assert!(matches!(
            store.commit(exec, &fb, &mut state),
            Err(StoreError::NotNext { tip: 1, got: 1 })
        ));
    }
}
