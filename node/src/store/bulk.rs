//! A large ledger state written straight into a new store, without
//! consensus or execution: the generated chains of issue #14's benchmark
//! (millions of accounts and receipts), as [`crate::synth`] makes small
//! chains block by block.
//!
//! The records go in in key order, then the index keys in theirs, then the
//! top of the state tree is built from the records in one ordered scan, then
//! one block at height 1 carries the resulting state root (the caller builds
//! and certifies it from the root). The store then opens as any other.

use std::path::Path;

use alliance_protocol::encoding;
use alliance_protocol::genesis::Genesis;
use alliance_protocol::state::{ChainTip, StateKey, StateValue};
use alliance_protocol::{FinalizedBlock, Hash32};

use super::kv::Batch;
use super::{
    key, state_source, Engine, StoreError, BLOCK, HASH, META_GENESIS, META_STATE_HEIGHT, META_TIP,
};

/// Records written per engine transaction.
const CHUNK_ENTRIES: usize = 500_000;

/// What [`bulk_load`] wrote.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    /// State entries.
    pub entries: u64,
    /// The state root of height 1.
    pub state_root: Hash32,
}

/// Entry `i` of `count` in the parallel passes below, on every core.
fn par_map<T: Send>(count: u64, f: impl Fn(u64) -> T + Sync) -> Vec<T> {
    let threads = alliance_protocol::cores::available() as u64;
    let per = count.div_ceil(threads.max(1));
    let f = &f;
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let range = (t * per).min(count)..((t + 1) * per).min(count);
                scope.spawn(move || range.map(f).collect::<Vec<T>>())
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("a bulk-load worker does not panic"))
            .collect()
    })
}

/// Where [`bulk_load`] writes: a new store's directory, its engine, and the
/// bucket depth of its state tree.
#[derive(Debug, Clone)]
pub struct NewStore<'a> {
    /// Data directory (empty or absent).
    pub path: &'a Path,
    /// Storage engine.
    pub engine: Engine,
    /// Bucket depth of the state tree.
    pub bits: usize,
}

/// Writes the `count` entries that `entry_at(0..count)` makes (distinct
/// keys; the whole state, the genesis entries included) into a new store
/// (`to`), then the block that
/// `tip` makes from the state root (height 1, extending the genesis, with
/// its certificate). The records and the index keys go in in key order
/// (each sorted first, by key hash and index key, holding only the key and
/// the entry's number), so that a B-tree engine appends instead of
/// inserting at random: hours become minutes at tens of millions of
/// entries. Calls `progress` with the records written so far.
pub fn bulk_load(
    to: NewStore<'_>,
    genesis: &Genesis,
    count: u64,
    entry_at: impl Fn(u64) -> (StateKey, StateValue) + Sync,
    tip: impl FnOnce(Hash32) -> FinalizedBlock,
    mut progress: impl FnMut(u64),
) -> Result<Loaded, StoreError> {
    let (path, bits) = (to.path, to.bits);
    let db = to.engine.open(path)?;
    if db.get(META_GENESIS)?.is_some() {
        return Err(StoreError::Corrupt(format!(
            "{} already holds a chain: bulk loading needs a new store",
            path.display()
        )));
    }
    let mut written = 0u64;
    // The records, in key-hash order.
    let mut order: Vec<(Hash32, u64)> = par_map(count, |i| (entry_at(i).0.tree_key(), i));
    order.sort_unstable();
    let mut batch = Batch::default();
    for chunk in order.chunks(CHUNK_ENTRIES) {
        let records = par_map(chunk.len() as u64, |j| {
            let (k, v) = entry_at(chunk[j as usize].1);
            (
                state_source::state_record_key(&k),
                state_source::state_record(&k, &v),
            )
        });
        for (k, v) in records {
            batch.put(k, v);
        }
        // Durable chunks: a copy-on-write engine (redb) reuses the pages
        // a chunk frees only after a durable commit; fjall's journal is
        // released once its memtables are written out.
        db.apply_durable(std::mem::take(&mut batch))?;
        written += chunk.len() as u64;
        progress(written);
    }
    drop(order);
    // The index keys, in their own order.
    let mut index: Vec<(Vec<u8>, u64)> = par_map(count, |i| {
        state_source::queue_key(&entry_at(i).0).map(|q| (q, i))
    })
    .into_iter()
    .flatten()
    .collect();
    index.sort_unstable();
    for chunk in index.chunks(CHUNK_ENTRIES) {
        for (q, i) in chunk {
            batch.put(q.clone(), encoding::encode(&entry_at(*i).0));
        }
        db.apply_durable(std::mem::take(&mut batch))?;
    }
    drop(index);
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
    batch.put(META_STATE_HEIGHT, &1u64.to_be_bytes()[..]);
    batch.put(META_GENESIS, &genesis.hash().0[..]);
    db.apply_durable(batch)?;
    Ok(Loaded {
        entries: written,
        state_root: tree.root_hash(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Store;
    use crate::synth::Synth;
    use alliance_protocol::fixtures::{certify, demo_genesis};
    use alliance_protocol::state::LedgerState;
    use alliance_protocol::{Block, BlockHeader};

    #[test]
    fn a_loaded_state_opens_with_its_root_and_every_entry() {
        let (genesis, keys) = demo_genesis("bulk-test", 4, 1_700_000_000_000);
        // A state with accounts, lots, queues and receipts: a few blocks.
        let synth = Synth::new(&genesis.chain_id, 4, 50);
        let mut memory = LedgerState::from_genesis(&genesis);
        for _ in 0..4 {
            let (_, exec) = synth.next_block(&memory, 40, genesis.genesis_time_ms);
            memory.commit(exec);
        }
        let entries: Vec<(StateKey, StateValue)> = memory
            .entries()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let validators = LedgerState::from_genesis(&genesis).validator_set().hash();
        let tip = |root| {
            let block = Block {
                header: BlockHeader {
                    chain_id: genesis.chain_id.clone(),
                    height: 1,
                    timestamp_ms: genesis.genesis_time_ms + 1_000,
                    prev_hash: genesis.hash(),
                    tx_count: 0,
                    tx_root: Block::compute_tx_root(&[]),
                    state_root: root,
                    proposer: keys[0].public(),
                    validator_set_hash: validators,
                },
                txs: vec![],
            };
            let certificate = certify(&genesis.chain_id, &block, 1, &keys);
            FinalizedBlock { block, certificate }
        };
        let loaded = bulk_load(
            NewStore {
                path: dir.path(),
                engine: Engine::default(),
                bits: 4,
            },
            &genesis,
            entries.len() as u64,
            |i| entries[i as usize].clone(),
            tip,
            |_| {},
        )
        .unwrap();
        assert_eq!(loaded.entries, entries.len() as u64);
        assert_eq!(loaded.state_root, memory.state_root());
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        assert_eq!(state.tip().height, 1);
        assert_eq!(state.state_root(), memory.state_root());
        assert_eq!(state.claims(), memory.claims());
        for (k, v) in &entries {
            assert_eq!(state.get(k).as_ref(), Some(v));
        }
        store.verify_state(&genesis).unwrap();
        drop((store, state));
        // A second load into the same directory is refused.
        assert!(matches!(
            bulk_load(
            NewStore {
                path: dir.path(),
                engine: Engine::default(),
                bits: 4,
            },
            &genesis,
            0,
            |i| entries[i as usize].clone(),
            |_| unreachable!(),
            |_| {},
            ),
            Err(StoreError::Corrupt(why)) if why.contains("already holds a chain")
        ));
    }
}
