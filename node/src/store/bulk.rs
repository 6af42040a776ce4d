//! A large ledger state written straight into a new store, without
//! consensus or execution: the generated chains of issue #14's benchmark
//! (millions of accounts and receipts), as [`crate::synth`] makes small
//! chains block by block.
//!
//! The entries go in in chunks (record and index key), then the top
//! of the state tree is built from the leaves in one ordered scan, then one
//! block at height 1 carries the resulting state root (the caller builds and
//! certifies it from the root). The store then opens as any other.

use std::path::Path;

use alliance_protocol::encoding;
use alliance_protocol::genesis::Genesis;
use alliance_protocol::state::{ChainTip, StateKey, StateValue};
use alliance_protocol::{FinalizedBlock, Hash32};

use super::kv::Batch;
use super::{key, state_source, Engine, StoreError, BLOCK, HASH, META_GENESIS, META_TIP};

/// Entries written per engine transaction.
const CHUNK_ENTRIES: usize = 200_000;

/// What [`bulk_load`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// State entries.
    pub entries: u64,
    /// The state root of height 1.
    pub state_root: Hash32,
}

/// Writes `entries` (distinct keys, any order; the whole state, the
/// genesis entries included) into a new store at `path` with a state tree
/// of bucket depth `bits`, then the block that `tip` makes from the state
/// root (height 1, extending the genesis, with its certificate). Calls
/// `progress` with the number of entries written after each chunk.
pub fn bulk_load<I>(
    path: &Path,
    engine: Engine,
    genesis: &Genesis,
    entries: I,
    bits: usize,
    tip: impl FnOnce(Hash32) -> FinalizedBlock,
    mut progress: impl FnMut(u64),
) -> Result<Loaded, StoreError>
where
    I: IntoIterator<Item = (StateKey, StateValue)>,
{
    let db = engine.open(path)?;
    if db.get(META_GENESIS)?.is_some() {
        return Err(StoreError::Corrupt(format!(
            "{} already holds a chain: bulk loading needs a new store",
            path.display()
        )));
    }
    let mut batch = Batch::default();
    let (mut written, mut in_batch) = (0u64, 0usize);
    for (k, v) in entries {
        batch.put(
            state_source::state_record_key(&k),
            state_source::state_record(&k, &v),
        );
        state_source::entry_writes(&mut batch, &k, Some(&v));
        written += 1;
        in_batch += 1;
        if in_batch == CHUNK_ENTRIES {
            // Durable chunks: a copy-on-write engine (redb) reuses the pages
            // a chunk frees only after a durable commit.
            db.apply_durable(std::mem::take(&mut batch))?;
            in_batch = 0;
            progress(written);
        }
    }
    db.apply(batch)?;
    progress(written);
    let tree = state_source::rebucket(db.as_ref(), bits)?;
    let fb = tip(tree.root_hash());
    let h = &fb.block.header;
    if h.height != 1 || h.prev_hash != genesis.hash() || h.state_root != tree.root_hash() {
        return Err(StoreError::Corrupt(
            "the loaded state's block must be height 1 on the genesis, with the state root".into(),
        ));
    }
    let hash = fb.block.hash();
    let mut batch = Batch::default();
    batch.put(key(BLOCK, &1u64.to_be_bytes()), fb.to_bytes());
    batch.put(key(HASH, &hash.0), &1u64.to_be_bytes()[..]);
    let tip = ChainTip {
        height: 1,
        hash,
        timestamp_ms: h.timestamp_ms,
    };
    batch.put(META_TIP, encoding::encode(&tip));
    batch.put(META_GENESIS, &genesis.hash().0[..]);
    db.apply_durable(batch)?;
    Ok(Loaded {
        entries: written,
        state_root: tree.root_hash(),
    })
}
