//! fjall behind [`Kv`]: a log-structured merge tree (pure Rust), the
//! node's engine.
//!
//! A [`Kv::apply`] is one fjall write batch: fjall writes it to its journal
//! as one checksummed record and hands it to the OS, so a killed process
//! keeps it; after a crash, recovery truncates a torn last record, so a
//! batch is there whole or not at all. [`Kv::flush`] fsyncs the journal
//! ([`fjall::PersistMode::SyncAll`]), which makes every earlier batch
//! durable. Memory: the block cache (`cache_bytes`) plus the memtables
//! (at most [`MEMTABLE_BYTES`] in a one-tree directory; with a tree per busy
//! table, [`BLOCK_MEMTABLE_BYTES`] and [`TABLE_MEMTABLE_BYTES`] each),
//! flushed to tables in the background.

use std::path::Path;

use fjall::config::{CompressionPolicy, PinningPolicy};
use fjall::CompressionType;
use fjall::{KeyspaceCreateOptions, PersistMode};

use super::kv::{Batch, Entries, Kv, KvError, Visit, Write};

/// The size at which a memtable is sealed and written out as a table, in
/// a directory with every key in one tree (fjall's default, 64 MiB, would
/// take a sixteenth of the default memory budget per memtable).
pub const MEMTABLE_BYTES: u64 = 32 << 20;
/// The same for the blocks' tree in a directory with a tree per busy table
/// (blocks are most of the bytes written).
pub const BLOCK_MEMTABLE_BYTES: u64 = 16 << 20;
/// The same for each other tree there: eight trees of 8 MiB and the blocks'
/// 16 MiB hold at most 80 MiB, and a slow table's memtable does not hold
/// memory for long before it is written out.
pub const TABLE_MEMTABLE_BYTES: u64 = 8 << 20;

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

/// Key prefixes (a key's first byte, the store's table) that get an LSM
/// tree of their own in a new data directory: blocks by height and claim
/// deltas by height are written in key order, so their tables never
/// overlap and compaction moves them without rewriting; the indexes keyed
/// by hash or address (transactions, block hashes, account history) and the
/// state records and buckets are written at random places, and compact only
/// against themselves. In one tree, every flush held keys of every table,
/// so each compaction rewrote block bodies too (docs/benchmarks.md, the
/// compaction measurement).
const OWN_KEYSPACES: &[u8] = b"abchpst";
/// The keyspace of the first table in [`OWN_KEYSPACES`]: a directory that
/// has it is laid out with a tree per busy table; one without it (written
/// before) keeps every key in one tree. Created, with the others, only in
/// a new directory.
fn own_keyspace_name(prefix: u8) -> String {
    format!("kv_{}", prefix as char)
}

/// fjall, with fsyncs only where the store asks for them.
pub struct FjallKv {
    db: fjall::Database,
    /// Keys of every other table (and all keys of a one-tree directory).
    keys: fjall::Keyspace,
    /// Per first byte, the index in `own` of its keyspace (or none).
    route: [Option<u8>; 256],
    own: Vec<fjall::Keyspace>,
}

impl FjallKv {
    /// Opens (or creates) the database directory `path` with a block cache
    /// of `cache_bytes`.
    pub fn open(path: &Path, cache_bytes: u64) -> Result<FjallKv, KvError> {
        let db = fjall::Database::builder(path)
            .cache_size(cache_bytes)
            .open()
            .map_err(engine_error)?;
        let options = |memtable_bytes: u64| {
            move || {
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
                    .max_memtable_size(memtable_bytes)
                    .data_block_compression_policy(CompressionPolicy::all(CompressionType::Lz4))
                    .filter_block_partitioning_policy(PinningPolicy::all(true))
                    .index_block_partitioning_policy(PinningPolicy::all(true))
                    .filter_block_pinning_policy(PinningPolicy::all(true))
            }
        };
        // A new directory gets a tree per busy table; an existing one keeps
        // the layout it was written with.
        let fresh = !db.keyspace_exists("kv");
        let per_table = fresh || db.keyspace_exists(&own_keyspace_name(OWN_KEYSPACES[0]));
        let mut route = [None; 256];
        let mut own = Vec::new();
        if per_table {
            for (i, prefix) in OWN_KEYSPACES.iter().enumerate() {
                let memtable = match *prefix {
                    b'b' => BLOCK_MEMTABLE_BYTES,
                    _ => TABLE_MEMTABLE_BYTES,
                };
                own.push(
                    db.keyspace(&own_keyspace_name(*prefix), options(memtable))
                        .map_err(engine_error)?,
                );
                route[*prefix as usize] = Some(i as u8);
            }
        }
        let shared_memtable = if per_table {
            TABLE_MEMTABLE_BYTES
        } else {
            MEMTABLE_BYTES
        };
        let keys = db
            .keyspace("kv", options(shared_memtable))
            .map_err(engine_error)?;
        Ok(FjallKv {
            db,
            keys,
            route,
            own,
        })
    }

    /// The keyspace that holds keys starting with `first`.
    fn keyspace(&self, first: u8) -> &fjall::Keyspace {
        match self.route[first as usize] {
            Some(i) => &self.own[i as usize],
            None => &self.keys,
        }
    }

    /// The keyspace holding every key of `[lo, hi)`, when one does: both
    /// ends in one table, or `hi` the first key after `lo`'s table.
    fn keyspace_of_range(&self, lo: &[u8], hi: &[u8]) -> Option<&fjall::Keyspace> {
        if self.own.is_empty() {
            return Some(&self.keys);
        }
        let first = *lo.first()?;
        let same = match hi {
            [h] => *h == first || (first < 0xff && *h == first + 1),
            [h, ..] => *h == first,
            [] => false,
        };
        same.then(|| self.keyspace(first))
    }

    /// `[lo, hi)` split into per-first-byte pieces, each with its keyspace,
    /// in key order: a range across tables (a whole-store scan) reads each
    /// table's keyspace in turn, so the order is the one tree's.
    fn pieces(&self, lo: &[u8], hi: &[u8]) -> Vec<(&fjall::Keyspace, Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        let start = lo.first().copied().unwrap_or(0);
        let end = hi.first().copied().unwrap_or(0);
        for b in start..=end {
            let piece_lo = if b == start { lo.to_vec() } else { vec![b] };
            let piece_hi = if b == end {
                hi.to_vec()
            } else if b < 0xff {
                vec![b + 1]
            } else {
                vec![0xff; 64]
            };
            if piece_lo < piece_hi {
                out.push((self.keyspace(b), piece_lo, piece_hi));
            }
        }
        out
    }
}

impl Kv for FjallKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        let ks = key.first().map_or(&self.keys, |b| self.keyspace(*b));
        Ok(ks.get(key).map_err(engine_error)?.map(|v| v.to_vec()))
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        let mut b = self.db.batch();
        for w in batch.0 {
            match w {
                Write::Put(k, v) => {
                    let ks = k.first().map_or(&self.keys, |f| self.keyspace(*f));
                    b.insert(ks, k, v)
                }
                Write::Delete(k) => {
                    let ks = k.first().map_or(&self.keys, |f| self.keyspace(*f));
                    b.remove(ks, k)
                }
            }
        }
        b.commit().map_err(engine_error)
    }
    fn flush(&self) -> Result<(), KvError> {
        self.db.persist(PersistMode::SyncAll).map_err(engine_error)
    }
    fn for_each_in(&self, lo: &[u8], hi: &[u8], visit: &mut Visit<'_>) -> Result<(), KvError> {
        let pieces = match self.keyspace_of_range(lo, hi) {
            Some(ks) => vec![(ks, lo.to_vec(), hi.to_vec())],
            None => self.pieces(lo, hi),
        };
        for (ks, lo, hi) in pieces {
            for guard in ks.range(lo..hi) {
                let (k, v) = guard.into_inner().map_err(engine_error)?;
                visit(&k, &v)?;
            }
        }
        Ok(())
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        let map = |g: fjall::Guard| {
            g.into_inner()
                .map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(engine_error)
        };
        if let Some(ks) = self.keyspace_of_range(lo, hi) {
            let iter = ks.range(lo.to_vec()..hi.to_vec());
            return if reverse {
                Box::new(iter.rev().map(map))
            } else {
                Box::new(iter.map(map))
            };
        }
        let mut pieces = self.pieces(lo, hi);
        if reverse {
            pieces.reverse();
        }
        Box::new(pieces.into_iter().flat_map(move |(ks, lo, hi)| {
            let iter = ks.range(lo..hi);
            let it: Entries<'_> = if reverse {
                Box::new(iter.rev().map(map))
            } else {
                Box::new(iter.map(map))
            };
            it
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::kv::scan_prefix;

    fn keys(kv: &FjallKv, lo: &[u8], hi: &[u8], reverse: bool) -> Vec<Vec<u8>> {
        kv.range(lo, hi, reverse).map(|e| e.unwrap().0).collect()
    }

    /// Keys of tables with a tree of their own and of the shared tree come
    /// back in one key order, whole-store scans and cross-table ranges
    /// included, in both directions.
    #[test]
    fn a_new_directory_has_a_tree_per_busy_table_and_one_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let kv = FjallKv::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(kv.own.len(), OWN_KEYSPACES.len());
        let all: Vec<Vec<u8>> = [&b"a1"[..], b"b1", b"b2", b"m1", b"q1", b"s1", b"t1", b"z1"]
            .iter()
            .map(|k| k.to_vec())
            .collect();
        let mut batch = Batch::default();
        for k in all.iter().rev() {
            batch.put(k.clone(), k.clone());
        }
        kv.apply(batch).unwrap();
        kv.flush().unwrap();
        let scanned: Vec<Vec<u8>> = scan_prefix(&kv, &[]).map(|e| e.unwrap().0).collect();
        assert_eq!(scanned, all);
        assert_eq!(keys(&kv, b"b2", b"t", false), all[2..6].to_vec());
        let mut back = keys(&kv, b"a", b"z", true);
        back.reverse();
        assert_eq!(back, all[..7].to_vec());
        assert_eq!(keys(&kv, b"b", b"c", false), all[1..3].to_vec());
        assert_eq!(kv.get(b"t1").unwrap(), Some(b"t1".to_vec()));
        drop(kv);
        // Reopened: the same layout and the same keys.
        let kv = FjallKv::open(dir.path(), 1 << 20).unwrap();
        assert_eq!(kv.own.len(), OWN_KEYSPACES.len());
        let scanned: Vec<Vec<u8>> = scan_prefix(&kv, &[]).map(|e| e.unwrap().0).collect();
        assert_eq!(scanned, all);
    }

    /// A directory written with every key in one tree keeps that layout.
    #[test]
    fn a_one_tree_directory_stays_one_tree() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = fjall::Database::builder(dir.path()).open().unwrap();
            let ks = db.keyspace("kv", KeyspaceCreateOptions::default).unwrap();
            ks.insert(b"b1", b"block").unwrap();
            db.persist(PersistMode::SyncAll).unwrap();
        }
        let kv = FjallKv::open(dir.path(), 1 << 20).unwrap();
        assert!(kv.own.is_empty(), "no tree per table in an old directory");
        assert_eq!(kv.get(b"b1").unwrap(), Some(b"block".to_vec()));
        kv.insert(b"t1".to_vec(), b"tx".to_vec()).unwrap();
        assert_eq!(
            keys(&kv, b"a", b"z", false),
            vec![b"b1".to_vec(), b"t1".to_vec()]
        );
    }
}
