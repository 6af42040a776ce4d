//! LMDB (through heed) behind [`Kv`]: a memory-mapped copy-on-write B-tree
//! (C library, compiled from source by `lmdb-master-sys`).
//!
//! An LMDB write transaction is durable when it commits (two fsyncs), so
//! committing one per [`Kv::apply`] would fsync writes the store never asks
//! to be durable (the certificate journal, voted blocks, prunes). Instead a
//! batch waits in memory and [`Kv::flush`] commits every waiting batch in one
//! transaction: all of them or none are there after a crash, and reads see
//! them meanwhile. A range that covers a waiting write commits first (earlier
//! durability is allowed by the contract), and so does a backlog of
//! [`PENDING_WRITES_MAX`] writes.

use std::collections::VecDeque;
use std::ops::Bound;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use heed::types::Bytes;
use heed::{Database, Env, EnvOpenOptions, WithoutTls};

use super::kv::{engine_error, Batch, Entries, Entry, Kv, KvError, Write};

/// Address space reserved for the map: LMDB's file grows only as pages are
/// used, so this is a ceiling on the store's size, not an allocation.
const MAP_BYTES: usize = 1 << 40;
/// Writes kept in memory before a commit is forced, whatever the caller.
const PENDING_WRITES_MAX: usize = 100_000;
/// Entries read per read transaction while iterating a range.
const RANGE_PAGE: usize = 256;

/// LMDB, with its commits grouped at the store's flushes.
pub struct LmdbKv {
    env: Env<WithoutTls>,
    db: Database<Bytes, Bytes>,
    /// Writes applied since the last commit, in order.
    pending: Mutex<Vec<Write>>,
}

impl LmdbKv {
    /// Opens (or creates) the environment in directory `path`.
    pub fn open(path: &Path) -> Result<LmdbKv, KvError> {
        std::fs::create_dir_all(path)?;
        // SAFETY: heed's requirement is that one process does not open the
        // same environment twice; the store opens each data directory once
        // per process.
        let env = unsafe {
            EnvOpenOptions::new()
                .read_txn_without_tls()
                .map_size(MAP_BYTES)
                .max_dbs(1)
                .open(path)
                .map_err(engine_error)?
        };
        let mut txn = env.write_txn().map_err(engine_error)?;
        let db = env
            .create_database::<Bytes, Bytes>(&mut txn, None)
            .map_err(engine_error)?;
        txn.commit().map_err(engine_error)?;
        Ok(LmdbKv {
            env,
            db,
            pending: Mutex::new(Vec::new()),
        })
    }

    fn pending(&self) -> MutexGuard<'_, Vec<Write>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits the waiting writes in one durable transaction.
    fn commit(&self, pending: &mut Vec<Write>) -> Result<(), KvError> {
        if pending.is_empty() {
            return Ok(());
        }
        let mut txn = self.env.write_txn().map_err(engine_error)?;
        for w in pending.iter() {
            match w {
                Write::Put(k, v) => self.db.put(&mut txn, k, v).map_err(engine_error)?,
                Write::Delete(k) => {
                    self.db.delete(&mut txn, k).map_err(engine_error)?;
                }
            }
        }
        txn.commit().map_err(engine_error)?;
        pending.clear();
        Ok(())
    }

    /// Up to [`RANGE_PAGE`] entries within the bounds, from the low end or
    /// (with `reverse`) the high end.
    fn page(
        &self,
        lo: Bound<&[u8]>,
        hi: Bound<&[u8]>,
        reverse: bool,
    ) -> Result<Vec<Entry>, KvError> {
        let txn = self.env.read_txn().map_err(engine_error)?;
        let own = |r: heed::Result<(&[u8], &[u8])>| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(engine_error)
        };
        if reverse {
            let iter = self.db.rev_range(&txn, &(lo, hi)).map_err(engine_error)?;
            iter.take(RANGE_PAGE).map(own).collect()
        } else {
            let iter = self.db.range(&txn, &(lo, hi)).map_err(engine_error)?;
            iter.take(RANGE_PAGE).map(own).collect()
        }
    }
}

impl Kv for LmdbKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        {
            let pending = self.pending();
            for w in pending.iter().rev() {
                match w {
                    Write::Put(k, v) if k == key => return Ok(Some(v.clone())),
                    Write::Delete(k) if k == key => return Ok(None),
                    _ => {}
                }
            }
        }
        let txn = self.env.read_txn().map_err(engine_error)?;
        Ok(self
            .db
            .get(&txn, key)
            .map_err(engine_error)?
            .map(<[u8]>::to_vec))
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        let mut pending = self.pending();
        pending.extend(batch.0);
        if pending.len() >= PENDING_WRITES_MAX {
            self.commit(&mut pending)?;
        }
        Ok(())
    }
    fn flush(&self) -> Result<(), KvError> {
        let mut pending = self.pending();
        self.commit(&mut pending)?;
        // Commits are synchronous already; this also covers a file system
        // that reordered the last commit's writes.
        self.env.force_sync().map_err(engine_error)
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        {
            let mut pending = self.pending();
            let covered = pending.iter().any(|w| {
                let k = match w {
                    Write::Put(k, _) | Write::Delete(k) => k.as_slice(),
                };
                lo <= k && k < hi
            });
            if covered {
                if let Err(e) = self.commit(&mut pending) {
                    return Box::new(std::iter::once(Err(e)));
                }
            }
        }
        Box::new(Pages {
            kv: self,
            lo: Bound::Included(lo.to_vec()),
            hi: Bound::Excluded(hi.to_vec()),
            reverse,
            buf: VecDeque::new(),
            done: false,
        })
    }
}

impl Drop for LmdbKv {
    /// A clean close keeps every write, as the other engines do on drop.
    fn drop(&mut self) {
        let mut pending = self.pending();
        if let Err(e) = self.commit(&mut pending) {
            tracing::error!(error = %e, "LMDB: writes since the last flush lost at close");
        }
    }
}

/// A range read page by page, each page in its own read transaction (a heed
/// iterator borrows its transaction, which cannot outlive this call).
struct Pages<'a> {
    kv: &'a LmdbKv,
    lo: Bound<Vec<u8>>,
    hi: Bound<Vec<u8>>,
    reverse: bool,
    buf: VecDeque<Entry>,
    done: bool,
}

impl Iterator for Pages<'_> {
    type Item = Result<Entry, KvError>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() && !self.done {
            let page = self
                .kv
                .page(as_ref(&self.lo), as_ref(&self.hi), self.reverse);
            let page = match page {
                Ok(page) => page,
                Err(e) => {
                    self.done = true;
                    return Some(Err(e));
                }
            };
            self.done = page.len() < RANGE_PAGE;
            if let Some((last, _)) = page.last() {
                let after = Bound::Excluded(last.clone());
                if self.reverse {
                    self.hi = after;
                } else {
                    self.lo = after;
                }
            }
            self.buf = page.into();
        }
        self.buf.pop_front().map(Ok)
    }
}

fn as_ref(b: &Bound<Vec<u8>>) -> Bound<&[u8]> {
    match b {
        Bound::Included(k) => Bound::Included(k.as_slice()),
        Bound::Excluded(k) => Bound::Excluded(k.as_slice()),
        Bound::Unbounded => Bound::Unbounded,
    }
}
