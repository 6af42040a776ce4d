//! The transaction index and the address histories, written in batches.
//!
//! Each transaction adds an entry to the transaction index (keyed by its
//! hash: a random place in an index as long as the chain) and one or two to
//! address histories (at the end of each involved address's range). In a
//! copy-on-write B-tree every such insert copies a page, so writing them
//! block by block cost a page copy per entry, and the pages missed the cache
//! as the chain grew (docs/benchmarks.md, "A node's memory over 30
//! minutes"). So a block's entries are kept in memory ([`PendingIndex`]),
//! with a log record under its height holding the one thing the block does
//! not: its transactions' outcomes (a few bytes each, one sequential write
//! in the block's own atomic batch); every [`INDEX_BATCH_BLOCKS`] blocks
//! the pending entries are written to the index and the histories in one
//! sorted batch, with the same commit, and their log records deleted.
//!
//! Nothing is lost in a crash: the log records are as durable as their
//! blocks, and opening derives the pending entries again from each logged
//! block and its outcomes ([`BlockIndex::of_block`], the one derivation). Reads consult the pending entries
//! first; they are newer than everything in the index.

use std::collections::{BTreeSet, HashMap};

use alliance_protocol::state::TxOutcome;
use alliance_protocol::{encoding, Hash32, PublicKey, Transaction};

use super::kv::Batch;
use super::TxLocation;

/// Blocks whose entries wait in memory before they are written together.
pub const INDEX_BATCH_BLOCKS: usize = 32;
/// Pending entries (transactions plus history lines) past which they are
/// written at once, whatever the number of blocks: bounds the memory the
/// pending entries take (about 150 bytes each).
pub const PENDING_ENTRIES_MAX: usize = 200_000;

/// The index entries of one block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockIndex {
    /// Each transaction's hash and location.
    pub txs: Vec<(Hash32, TxLocation)>,
    /// History lines: address, position in the block.
    pub history: Vec<(PublicKey, u32)>,
}

impl BlockIndex {
    /// The entries of the block at `height` holding `txs`, whose ids are
    /// `ids` and whose outcomes were `outcomes` (one each, in order).
    pub fn of_block(
        height: u64,
        txs: &[Transaction],
        ids: &[Hash32],
        outcomes: &[TxOutcome],
    ) -> BlockIndex {
        assert_eq!(txs.len(), outcomes.len(), "one outcome per transaction");
        assert_eq!(txs.len(), ids.len(), "one id per transaction");
        let mut entries = BlockIndex::default();
        for (i, ((tx, outcome), hash)) in txs.iter().zip(outcomes).zip(ids).enumerate() {
            let hash = *hash;
            let loc = TxLocation {
                height,
                index: i as u32,
                outcome: outcome.clone(),
            };
            entries.txs.push((hash, loc));
            for addr in super::involved(tx) {
                entries.history.push((addr, i as u32));
            }
        }
        entries
    }

    fn len(&self) -> usize {
        self.txs.len() + self.history.len()
    }
}

/// Index entries of committed blocks not yet written to the index (see the
/// module documentation).
#[derive(Debug, Default)]
pub struct PendingIndex {
    txs: HashMap<Hash32, TxLocation>,
    /// History lines by their store key (same order as in the store).
    history: BTreeSet<Vec<u8>>,
    /// Heights whose entries are here, ascending.
    heights: Vec<u64>,
}

impl PendingIndex {
    /// Adds the entries of the block at `height` (above every pending one).
    pub fn add(&mut self, height: u64, block: BlockIndex) {
        debug_assert!(self.heights.last().is_none_or(|h| *h < height));
        for (hash, loc) in block.txs {
            self.txs.insert(hash, loc);
        }
        for (address, index) in block.history {
            self.history
                .insert(super::history_key(&address, height, index));
        }
        self.heights.push(height);
    }

    /// Whether adding `next` must write everything out now.
    pub fn must_write_with(&self, next: &BlockIndex) -> bool {
        self.heights.len() + 1 >= INDEX_BATCH_BLOCKS
            || self.txs.len() + self.history.len() + next.len() >= PENDING_ENTRIES_MAX
    }

    /// Adds to `batch` every pending entry and `next` (the block at
    /// `height`) as index and history writes, and the deletion of the
    /// pending blocks' log records. Call [`PendingIndex::clear`] once the
    /// batch is committed.
    pub fn write_with(&self, height: u64, next: &BlockIndex, batch: &mut Batch) {
        for (hash, loc) in self.txs.iter().chain(next.txs.iter().map(|(h, l)| (h, l))) {
            batch.put(super::key(super::TX, &hash.0), encoding::encode(loc));
        }
        // A history line is its key (address, height, position): the
        // value is empty (the transaction's hash is in its block).
        for k in &self.history {
            batch.put(k.clone(), Vec::new());
        }
        for (address, index) in &next.history {
            batch.put(super::history_key(address, height, *index), Vec::new());
        }
        for h in &self.heights {
            batch.delete(log_key(*h));
        }
    }

    /// Forgets every pending entry (they are in the index now).
    pub fn clear(&mut self) {
        *self = PendingIndex::default();
    }

    /// A pending transaction's location.
    pub fn tx_location(&self, hash: &Hash32) -> Option<&TxLocation> {
        self.txs.get(hash)
    }

    /// Pending history lines with `lo <= key < hi`, newest first.
    pub fn history_desc<'a>(
        &'a self,
        lo: &[u8],
        hi: &[u8],
    ) -> impl Iterator<Item = &'a Vec<u8>> + 'a {
        self.history.range(lo.to_vec()..hi.to_vec()).rev()
    }

    /// Pending entries (transactions plus history lines).
    pub fn len(&self) -> usize {
        self.txs.len() + self.history.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.heights.is_empty()
    }
}

/// The store key of the log record of the block at `height`.
pub fn log_key(height: u64) -> Vec<u8> {
    super::key(super::INDEX_LOG, &height.to_be_bytes())
}
