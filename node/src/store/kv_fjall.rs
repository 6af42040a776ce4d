//! fjall behind [`Kv`]: a log-structured merge tree (pure Rust), the
//! node's engine.
//!
//! A [`Kv::apply`] is one fjall write batch: fjall writes it to its journal
//! as one checksummed record and hands it to the OS, so a killed process
//! keeps it; after a crash, recovery truncates a torn last record, so a
//! batch is there whole or not at all. [`Kv::flush`] fsyncs the journal
//! ([`fjall::PersistMode::SyncAll`]), which makes every earlier batch
//! durable. Memory: the block cache (`cache_bytes`) plus the memtables
//! (at most [`MEMTABLE_BYTES`] each, flushed to tables in the background).

use std::path::Path;

use fjall::config::{CompressionPolicy, PinningPolicy};
use fjall::CompressionType;
use fjall::{KeyspaceCreateOptions, PersistMode};

use super::kv::{Batch, Entries, Kv, KvError, Visit, Write};

/// The size at which a memtable is sealed and written out as a table
/// (fjall's default, 64 MiB, would take a sixteenth of the default memory
/// budget per memtable).
pub const MEMTABLE_BYTES: u64 = 32 << 20;

/// fjall's error as the store's: I/O stays I/O (a full or read-only disk is
/// reported as such), a database locked by another handle is
/// [`KvError::InUse`].
fn engine_error(e: impl Into<fjall::Error>) -> KvError {
    match e.into() {
        fjall::Error::Io(io) => KvError::Io(io),
        fjall::Error::Storage(fjall::LsmError::Io(io)) => KvError::Io(io),
        fjall::Error::Locked => KvError::InUse,
        other => KvError::Engine(other.to_string()),
    }
}

/// fjall, with fsyncs only where the store asks for them.
pub struct FjallKv {
    db: fjall::Database,
    keys: fjall::Keyspace,
}

impl FjallKv {
    /// Opens (or creates) the database directory `path` with a block cache
    /// of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<FjallKv, KvError> {
        let db = fjall::Database::builder(path)
            .cache_size(cache_bytes)
            .open()
            .map_err(engine_error)?;
        let keys = db
            .keyspace("kv", || {
                // Bloom filters and indexes in partitions, with the top
                // level of each table's filter kept in memory: a read on a
                // cache miss loads one small partition, not a table's whole
                // filter (measured on 60 M entries, docs/dependencies.md:
                // whole filters made a query 0.5 ms; all of them pinned made
                // the open 5.4 s). Partitioning applies to tables as they
                // are written. Data blocks are LZ4-compressed at every
                // level (fjall leaves the first two uncompressed, which a
                // busy node writes most): disk bytes per transaction,
                // docs/benchmarks.md.
                KeyspaceCreateOptions::default()
                    .max_memtable_size(MEMTABLE_BYTES)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    .filter_block_partitioning_policy(PinningPolicy::all(true))
                    .index_block_partitioning_policy(PinningPolicy::all(true))
                    .filter_block_pinning_policy(PinningPolicy::all(true))
            })
            .map_err(engine_error)?;
        Ok(FjallKv { db, keys })
    }
}

impl Kv for FjallKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self
            .keys
            .get(key)
            .map_err(engine_error)?
            .map(|v| v.to_vec()))
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        let mut b = self.db.batch();
        for w in batch.0 {
            match w {
                Write::Put(k, v) => b.insert(&self.keys, k, v),
                Write::Delete(k) => b.remove(&self.keys, k),
            }
        }
        b.commit().map_err(engine_error)
    }
    fn flush(&self) -> Result<(), KvError> {
        self.db.persist(PersistMode::SyncAll).map_err(engine_error)
    }
    fn for_each_in(&self, lo: &[u8], hi: &[u8], visit: &mut Visit<'_>) -> Result<(), KvError> {
        for guard in self.keys.range(lo..hi) {
            let (k, v) = guard.into_inner().map_err(engine_error)?;
            visit(&k, &v)?;
        }
        Ok(())
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        let iter = self.keys.range(lo.to_vec()..hi.to_vec());
        let map = |g: fjall::Guard| {
            g.into_inner()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(engine_error)
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }
}
