//! The narrow interface between the chain store and its storage engine: an
//! ordered map of byte strings with atomic batches and an explicit
//! durability point. The engines are in [`super::engine`] (fjall is the
//! node's; [`SledKv`] opens older data directories); [`MemKv`] keeps
//! everything in memory and forgets what was not flushed when told to crash
//! (the deterministic simulation and tests use it).
//!
//! Contract, for every engine:
//! - [`Kv::apply`] is atomic: after a crash, all or none of a batch is there;
//! - writes are durable once [`Kv::flush`] returns, and a flush makes every
//!   earlier write durable;
//! - reads see every write made before them, flushed or not;
//! - ranges are in lexicographic key order;
//! - a clean close (dropping the engine) keeps every write.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Arc, Mutex};

/// A storage engine failure.
#[derive(Debug, thiserror::Error)]
pub enum KvError {
    /// The disk or the file system failed (full, read-only, gone).
    #[error("storage I/O: {0}")]
    Io(#[from] std::io::Error),
    /// The engine reported corruption or another internal failure.
    #[error("storage engine: {0}")]
    Engine(String),
    /// Another handle (another process) has the database open.
    #[error("the database is open in another process")]
    InUse,
}

/// An engine's own error, as text (engines other than sled report I/O
/// failures inside their own error types).
pub fn engine_error(e: impl std::fmt::Display) -> KvError {
    KvError::Engine(e.to_string())
}

impl From<sled::Error> for KvError {
    fn from(e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) => KvError::Io(io),
            other => KvError::Engine(other.to_string()),
        }
    }
}

/// One write of a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Write {
    /// Sets a key.
    Put(Vec<u8>, Vec<u8>),
    /// Removes a key (absent keys are fine).
    Delete(Vec<u8>),
}

/// Writes applied together, atomically.
#[derive(Debug, Default, Clone)]
pub struct Batch(pub Vec<Write>);

impl Batch {
    /// Sets `key` to `value`.
    pub fn put(&mut self, key: impl Into<Vec<u8>>, value: impl Into<Vec<u8>>) {
        self.0.push(Write::Put(key.into(), value.into()));
    }
    /// Removes `key`.
    pub fn delete(&mut self, key: impl Into<Vec<u8>>) {
        self.0.push(Write::Delete(key.into()));
    }
    /// Whether nothing is written.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
    /// Adds every write of `other` after this batch's own.
    pub fn extend(&mut self, other: Batch) {
        self.0.extend(other.0);
    }
    /// The writes in key order, a key's writes in the order given (so the
    /// last one still wins): a B-tree engine then walks its pages once, left
    /// to right, instead of jumping between them.
    pub fn into_sorted(mut self) -> Vec<Write> {
        self.0.sort_by(|a, b| a.key().cmp(b.key()));
        self.0
    }
}

impl Write {
    /// The key written.
    pub fn key(&self) -> &[u8] {
        match self {
            Write::Put(k, _) | Write::Delete(k) => k,
        }
    }
}

/// A key-value pair read from a range.
pub type Entry = (Vec<u8>, Vec<u8>);
/// Entries of a range, in order (or in reverse order).
pub type Entries<'a> = Box<dyn Iterator<Item = Result<Entry, KvError>> + 'a>;

/// What [`Kv::for_each_in`] calls on each entry: its key and value as the
/// engine holds them; an error stops the walk.
pub type Visit<'a> = dyn FnMut(&[u8], &[u8]) -> Result<(), KvError> + 'a;

/// An ordered key-value engine (see the module contract).
pub trait Kv: Send + Sync {
    /// The value of `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError>;
    /// Sets one key (not durable until [`Kv::flush`]).
    fn insert(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.put(key, value);
        self.apply(b)
    }
    /// Removes one key.
    fn remove(&self, key: Vec<u8>) -> Result<(), KvError> {
        let mut b = Batch::default();
        b.delete(key);
        self.apply(b)
    }
    /// Applies `batch` atomically (not durable until [`Kv::flush`]).
    fn apply(&self, batch: Batch) -> Result<(), KvError>;
    /// Makes every write so far durable.
    fn flush(&self) -> Result<(), KvError>;
    /// Applies `batch` atomically and makes it, with every write before
    /// it, durable: [`Kv::apply`] then [`Kv::flush`], which an engine may do
    /// in one transaction (redb does: one commit instead of two).
    fn apply_durable(&self, batch: Batch) -> Result<(), KvError> {
        self.apply(batch)?;
        self.flush()
    }
    /// Entries with `lo <= key < hi`, ascending, or descending with
    /// `reverse`.
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_>;
    /// Calls `visit` on every entry with `lo <= key < hi`, ascending, with
    /// the engine's own key and value bytes (no copy): [`Kv::range`] for
    /// hot paths that read many small entries and keep a few bytes of
    /// each. Stops at the first error, the engine's or `visit`'s.
    fn for_each_in(&self, lo: &[u8], hi: &[u8], visit: &mut Visit<'_>) -> Result<(), KvError> {
        for item in self.range(lo, hi, false) {
            let (k, v) = item?;
            visit(&k, &v)?;
        }
        Ok(())
    }
}

/// The first key after every key that starts with `prefix` (None when no
/// such key exists: the prefix is all 0xff).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Entries whose key starts with `prefix`, ascending.
pub fn scan_prefix<'a>(kv: &'a dyn Kv, prefix: &[u8]) -> Entries<'a> {
    match prefix_end(prefix) {
        Some(end) => kv.range(prefix, &end, false),
        None => kv.range(prefix, &[0xff; 64], false),
    }
}

/// sled, with flushes only where the store asks for them.
pub struct SledKv {
    db: sled::Db,
}

impl SledKv {
    /// Wraps an opened sled database.
    pub fn from_db(db: sled::Db) -> SledKv {
        SledKv { db }
    }
}

impl Kv for SledKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }
    fn insert(&self, key: Vec<u8>, value: Vec<u8>) -> Result<(), KvError> {
        self.db.insert(key, value)?;
        Ok(())
    }
    fn remove(&self, key: Vec<u8>) -> Result<(), KvError> {
        self.db.remove(key)?;
        Ok(())
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        let mut b = sled::Batch::default();
        for w in batch.0 {
            match w {
                Write::Put(k, v) => b.insert(k, v),
                Write::Delete(k) => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        Ok(())
    }
    fn flush(&self) -> Result<(), KvError> {
        self.db.flush()?;
        Ok(())
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        let iter = self.db.range(lo.to_vec()..hi.to_vec());
        let map = |r: Result<(sled::IVec, sled::IVec), sled::Error>| {
            r.map(|(k, v)| (k.to_vec(), v.to_vec()))
                .map_err(KvError::from)
        };
        if reverse {
            Box::new(iter.rev().map(map))
        } else {
            Box::new(iter.map(map))
        }
    }
}

/// What a [`MemKv`] holds: the live map and the durable one.
#[derive(Debug, Default)]
struct MemMaps {
    live: BTreeMap<Vec<u8>, Vec<u8>>,
    durable: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Batches applied since the last flush, in order.
    unflushed: Vec<Batch>,
}

/// An in-memory engine with the same contract as a disk engine, and a
/// [`MemKv::crash`] that forgets every write since the last flush. Clones
/// share the same maps (the "disk" outlives a crashed node).
#[derive(Debug, Default, Clone)]
pub struct MemKv {
    maps: Arc<Mutex<MemMaps>>,
}

impl MemKv {
    /// An empty engine.
    pub fn new() -> MemKv {
        MemKv::default()
    }

    /// Loses what was not flushed: the state a process would find after a
    /// power cut.
    pub fn crash(&self) {
        let mut m = self.lock();
        m.live = m.durable.clone();
        m.unflushed.clear();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, MemMaps> {
        self.maps.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn apply_to(map: &mut BTreeMap<Vec<u8>, Vec<u8>>, batch: &Batch) {
    for w in &batch.0 {
        match w {
            Write::Put(k, v) => {
                map.insert(k.clone(), v.clone());
            }
            Write::Delete(k) => {
                map.remove(k);
            }
        }
    }
}

impl Kv for MemKv {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, KvError> {
        Ok(self.lock().live.get(key).cloned())
    }
    fn apply(&self, batch: Batch) -> Result<(), KvError> {
        let mut m = self.lock();
        apply_to(&mut m.live, &batch);
        m.unflushed.push(batch);
        Ok(())
    }
    fn flush(&self) -> Result<(), KvError> {
        let mut m = self.lock();
        let batches = std::mem::take(&mut m.unflushed);
        for b in &batches {
            apply_to(&mut m.durable, b);
        }
        Ok(())
    }
    fn range(&self, lo: &[u8], hi: &[u8], reverse: bool) -> Entries<'_> {
        let m = self.lock();
        let bounds = (Bound::Included(lo.to_vec()), Bound::Excluded(hi.to_vec()));
        let mut entries: Vec<Entry> = m
            .live
            .range::<Vec<u8>, _>(bounds)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if reverse {
            entries.reverse();
        }
        Box::new(entries.into_iter().map(Ok))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::store::Engine;

    /// Engines by name.
    type Named = Vec<(&'static str, Box<dyn Kv>)>;

    /// Every engine the store can open, each in its own directory.
    fn engines() -> (tempfile::TempDir, Named) {
        let dir = tempfile::tempdir().unwrap();
        let engines = Engine::NAMES
            .iter()
            .map(|(name, _)| {
                let engine = Engine::from_name(name).unwrap();
                (*name, engine.open(&dir.path().join(name)).unwrap())
            })
            .collect();
        (dir, engines)
    }

    #[test]
    fn engines_agree_on_reads_ranges_and_batches() {
        let (_dir, engines) = engines();
        for (name, kv) in &engines {
            let mut b = Batch::default();
            for k in [
                b"a1".to_vec(),
                b"a2".to_vec(),
                b"b1".to_vec(),
                vec![b'a', 0xff],
            ] {
                b.put(k.clone(), k);
            }
            b.delete(b"a2".to_vec());
            kv.apply(b).unwrap();
            kv.insert(b"a3".to_vec(), b"x".to_vec()).unwrap();
            assert_eq!(kv.get(b"a1").unwrap(), Some(b"a1".to_vec()), "{name}");
            assert_eq!(kv.get(b"a2").unwrap(), None, "{name}");
            let keys: Vec<Vec<u8>> = scan_prefix(kv.as_ref(), b"a")
                .map(|e| e.unwrap().0)
                .collect();
            assert_eq!(
                keys,
                vec![b"a1".to_vec(), b"a3".to_vec(), vec![b'a', 0xff]],
                "{name}"
            );
            let rev: Vec<Vec<u8>> = kv.range(b"a", b"b2", true).map(|e| e.unwrap().0).collect();
            assert_eq!(rev.first(), Some(&b"b1".to_vec()), "{name}");
            assert_eq!(rev.len(), 4, "{name}");
            kv.remove(b"a3".to_vec()).unwrap();
            assert_eq!(kv.get(b"a3").unwrap(), None, "{name}");
        }
    }

    #[test]
    fn long_ranges_are_complete_and_ordered_both_ways() {
        // More entries than any engine reads per page, with unflushed
        // writes and deletes among them.
        let (_dir, engines) = engines();
        let key = |i: u32| [b"r".as_slice(), &i.to_be_bytes()].concat();
        for (name, kv) in &engines {
            let mut b = Batch::default();
            for i in 0..1_000u32 {
                b.put(key(i), i.to_le_bytes().to_vec());
            }
            kv.apply(b).unwrap();
            kv.flush().unwrap();
            let mut b = Batch::default();
            for i in (0..1_000u32).filter(|i| i % 3 == 0) {
                b.delete(key(i));
            }
            b.put(key(1_000), b"last".to_vec());
            kv.apply(b).unwrap();
            let want: Vec<Vec<u8>> = (0..=1_000u32).filter(|i| i % 3 != 0).map(key).collect();
            let fwd: Vec<Vec<u8>> = scan_prefix(kv.as_ref(), b"r")
                .map(|e| e.unwrap().0)
                .collect();
            assert_eq!(fwd, want, "{name}");
            let mut back: Vec<Vec<u8>> = kv
                .range(&key(0), b"s", true)
                .map(|e| e.unwrap().0)
                .collect();
            back.reverse();
            assert_eq!(back, want, "{name}");
            // The visitor sees the same entries, values included, and stops
            // at its own error.
            let mut visited = Vec::new();
            kv.for_each_in(&key(0), b"s", &mut |k, v| {
                visited.push((k.to_vec(), v.to_vec()));
                Ok(())
            })
            .unwrap();
            let ranged: Vec<Entry> = kv.range(&key(0), b"s", false).map(|e| e.unwrap()).collect();
            assert_eq!(visited, ranged, "{name}");
            let mut seen = 0;
            let stopped = kv.for_each_in(&key(0), b"s", &mut |_, _| {
                seen += 1;
                if seen == 5 {
                    return Err(KvError::Engine("enough".into()));
                }
                Ok(())
            });
            assert!(matches!(stopped, Err(KvError::Engine(_))), "{name}");
            assert_eq!(seen, 5, "{name}");
            let some: Vec<Vec<u8>> = kv
                .range(&key(10), &key(20), false)
                .map(|e| e.unwrap().0)
                .collect();
            assert_eq!(
                some,
                (10..20u32)
                    .filter(|i| i % 3 != 0)
                    .map(key)
                    .collect::<Vec<_>>(),
                "{name}"
            );
        }
    }

    #[test]
    fn flushed_writes_survive_a_reopen_on_every_disk_engine() {
        let dir = tempfile::tempdir().unwrap();
        for (name, _) in Engine::NAMES.iter().filter(|(n, _)| *n != "mem") {
            let engine = Engine::from_name(name).unwrap();
            let path = dir.path().join(name);
            {
                let kv = engine.open(&path).unwrap();
                let mut b = Batch::default();
                b.put(b"k1".to_vec(), b"v1".to_vec());
                b.put(b"k2".to_vec(), b"v2".to_vec());
                kv.apply(b).unwrap();
                kv.insert(b"k3".to_vec(), b"v3".to_vec()).unwrap();
                kv.remove(b"k2".to_vec()).unwrap();
                kv.flush().unwrap();
            }
            let kv = engine.open(&path).unwrap();
            let all: Vec<Entry> = scan_prefix(kv.as_ref(), b"k").map(|e| e.unwrap()).collect();
            assert_eq!(
                all,
                vec![
                    (b"k1".to_vec(), b"v1".to_vec()),
                    (b"k3".to_vec(), b"v3".to_vec())
                ],
                "{name}"
            );
        }
    }

    #[test]
    fn a_memory_crash_keeps_exactly_what_was_flushed() {
        let kv = MemKv::new();
        kv.insert(b"durable".to_vec(), b"1".to_vec()).unwrap();
        kv.flush().unwrap();
        kv.insert(b"lost".to_vec(), b"2".to_vec()).unwrap();
        kv.remove(b"durable".to_vec()).unwrap();
        kv.crash();
        assert_eq!(kv.get(b"durable").unwrap(), Some(b"1".to_vec()));
        assert_eq!(kv.get(b"lost").unwrap(), None);
    }

    #[test]
    fn prefix_end_skips_trailing_ff() {
        assert_eq!(prefix_end(b"a"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[b'a', 0xff]), Some(b"b".to_vec()));
        assert_eq!(prefix_end(&[0xff, 0xff]), None);
    }
}
