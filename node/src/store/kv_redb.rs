//! redb behind [`Kv`]: a copy-on-write B-tree in one file (pure Rust).
//!
//! Each [`Kv::apply`] is one write transaction committed with
//! [`redb::Durability::None`]: atomic and visible at once, not yet durable.
//! [`Kv::flush`] commits an empty transaction with
//! [`redb::Durability::Immediate`], which makes every earlier commit durable
//! (redb's documented rule); [`Kv::apply_durable`] does both in one
//! transaction committed with `Immediate`. Writes go in in key order. After
//! a crash redb reopens at the last durable commit, so a batch is there whole
//! or not at all.

use std::path::Path;

use redb::{Durability, ReadableDatabase, TableDefinition};

use super::kv::{Batch, Entries, Kv, KvError, Visit, Write};

/// A key or value read from the table.
type Guard<'a> = redb::AccessGuard<'a, &'static [u8]>;

/// redb's error as the store's: I/O stays I/O (a full or read-only disk is
/// reported as such), an open database elsewhere is [`KvError::InUse`].
fn engine_error(e: impl Into<redb::Error>) -> KvError {
    match e.into() {
        redb::Error::Io(io) => KvError::Io(io),
        redb::Error::DatabaseAlreadyOpen => KvError::InUse,
        other => KvError::Engine(other.to_string()),
    }
}

/// The one table holding every key of the store.
const TABLE: TableDefinition<&[u8], &[u8]> = TableDefinition::new("kv");

/// redb, with durability only where the store asks for it.
pub struct RedbKv {
    db: redb::Database,
}

impl RedbKv {
    /// Opens (or creates) the database file at `path` with a page cache of
    /// `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: usize) -> Result<RedbKv, KvError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let db = redb::Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(engine_error)?;
        // Create the table once, durably, so that readers always find it.
        let txn = db.begin_write().map_err(engine_error)?;
        txn.open_table(TABLE).map_err(engine_error)?;
        txn.commit().map_err(engine_error)?;
        Ok(RedbKv { db })
    }
}

impl RedbKv {
    /// One write transaction holding `batch`, in key order, committed with
    /// `durability`.
    fn commit(&self, batch: Batch, durability: Durability) -> Result<(), KvError> {
        let mut txn = self.db.begin_write().map_err(engine_error)?;
        txn.set_durability(durability).map_err(engine_error)?;
        {
            let mut table = txn.open_table(TABLE).map_err(engine_error)?;
            for w in batch.into_sorted() {
                match w {
                    Write::Put(k, v) => {
                        table
                            .insert(k.as_slice(), v.as_slice())
                            .map_err(engine_error)?;
                    }
                    Write::Delete(k) => {
                        table.remove(k.as_slice()).map_err(engine_error)?;
                    }
                }
            }
        }
        txn.commit().map_err(engine_error)
    }
}

impl Kv for RedbKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
        let table = txn.open_table(TABLE).map_err(engine_error)?;
        Ok(table
            .get(key)
            .map_err(engine_error)?
            .map(|v| v.value().to_vec()))
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        self.commit(batch, Durability::None)
    }
    fn flush(&self) -> Result<(), KvError> {
        self.commit(Batch::default(), Durability::Immediate)
    }
    fn apply_durable(&self, batch: Batch) -> Result<(), KvError> {
        self.commit(batch, Durability::Immediate)
    }
    fn for_each_in(&self, lo: &[u8], hi: &[u8], visit: &mut Visit<'_>) -> Result<(), KvError> {
        let txn = self.db.begin_read().map_err(engine_error)?;
        let table = txn.open_table(TABLE).map_err(engine_error)?;
        for item in table.range(lo..hi).map_err(engine_error)? {
            let (k, v) = item.map_err(engine_error)?;
            visit(k.value(), v.value())?;
        }
        Ok(())
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        let iter = (|| {
            let txn = self.db.begin_read().map_err(engine_error)?;
            let table = txn.open_table(TABLE).map_err(engine_error)?;
            // The range holds the read transaction alive by itself.
            table.range(lo..hi).map_err(engine_error)
        })();
        let iter = match iter {
            Ok(iter) => iter,
            Err(e) => return Box::new(std::iter::once(Err(e))),
        };
        let map = |r: Result<(Guard<'_>, Guard<'_>), _>| {
            r.map(|(k, v)| (k.value().to_vec(), v.value().to_vec()))
                .map_err(engine_error)
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }
}
