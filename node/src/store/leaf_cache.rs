//! The state tree's buckets last read from the store, in memory: a bounded
//! cache in front of [`super::state_source::KvSource::leaves`].
//!
//! Executing a block reads every bucket it touches (the leaves of all its
//! keys, to hash the bucket again), and on the node's engine such a read
//! is a range read through every level of the LSM tree: 8.7 % of a node's
//! CPU at 2,500 tx/s on 20,000 accounts (docs/benchmarks.md). A busy
//! account's bucket is read at every block it appears in, while the store
//! changes it only when the state is written (every few dozen blocks).
//!
//! # Same answers as the store
//!
//! A hit returns exactly what a read of the store would return at that
//! moment:
//! - an entry is inserted only if no state write began or ended while it
//!   was read ([`LeafCache::insert`] compares the write epoch taken before
//!   the read);
//! - a state write holds the cache for its whole duration
//!   ([`LeafCache::begin_write`]): it first sets, in every cached bucket
//!   that holds a key it writes, that key's leaf to what the write stores
//!   (or removes it), and nothing is looked up or inserted until the write
//!   is applied; a write that fails empties the cache. So no read sees the
//!   store and the cache disagree.
//!
//! # Bound
//!
//! Two generations of at most `max_bytes / 2` each, counted as the leaves'
//! bytes plus [`ENTRY_OVERHEAD`] per bucket: when the newer one is full it
//! becomes the older one, and the older one is dropped. A bucket read
//! within the last `max_bytes / 2` of insertions stays cached; a hit in the
//! older generation moves the bucket to the newer one.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use alliance_protocol::Hash32;

/// The cache a store keeps: at the smallest memory budget (256 MiB) an
/// eighth of it. On 20,000 accounts every bucket fits; on 10 M accounts
/// about 16,000 buckets of 29 leaves, the busy accounts'.
pub const LEAF_CACHE_BYTES: usize = 32 << 20;

/// Bytes counted per cached bucket besides its leaves (map node, bounds,
/// vector header).
pub const ENTRY_OVERHEAD: usize = 128;

/// Bytes of one leaf, a key hash and a value hash.
const LEAF_BYTES: usize = 64;

/// A bucket's leaves `(key hash, value hash)`, in key order.
#[cfg(test)]
pub(crate) type Leaves = Vec<(Hash32, Hash32)>;

/// One cached bucket: the inclusive upper bound of its key range and its
/// leaves, in key order.
struct Cached {
    high: Hash32,
    leaves: Vec<(Hash32, Hash32)>,
}

impl Cached {
    fn bytes(&self) -> usize {
        ENTRY_OVERHEAD + self.leaves.len() * LEAF_BYTES
    }
}

/// One generation: buckets by the lower bound of their key range.
#[derive(Default)]
struct Generation {
    map: BTreeMap<Hash32, Cached>,
    bytes: usize,
}

impl Generation {
    fn take(&mut self, low: &Hash32, high: &Hash32) -> Option<Cached> {
        if self.map.get(low)?.high != *high {
            return None;
        }
        let cached = self.map.remove(low).expect("present");
        self.bytes -= cached.bytes();
        Some(cached)
    }

    fn put(&mut self, low: Hash32, cached: Cached) {
        self.bytes += cached.bytes();
        if let Some(old) = self.map.insert(low, cached) {
            self.bytes -= old.bytes();
        }
    }

    /// Sets the leaf of `key` to `value` (`None`: removes it) in the cached
    /// bucket whose range holds `key`, if any: the bucket then holds what
    /// the store holds once the write that sets it is applied.
    fn patch(&mut self, key: &Hash32, value: Option<Hash32>) {
        let Some((_, cached)) = self.map.range_mut(..=*key).next_back() else {
            return;
        };
        if *key > cached.high {
            return;
        }
        let before = cached.bytes();
        match (cached.leaves.binary_search_by(|(k, _)| k.cmp(key)), value) {
            (Ok(i), Some(v)) => cached.leaves[i].1 = v,
            (Ok(i), None) => {
                cached.leaves.remove(i);
            }
            (Err(i), Some(v)) => cached.leaves.insert(i, (*key, v)),
            (Err(_), None) => {}
        }
        debug_assert!(cached.leaves.windows(2).all(|w| w[0].0 < w[1].0));
        self.bytes = self.bytes - before + cached.bytes();
    }
}

struct Inner {
    newer: Generation,
    older: Generation,
    /// Bumped at the start and at the end of every state write.
    epoch: u64,
    hits: u64,
    misses: u64,
}

/// A bounded cache of buckets' leaves as the store holds them (see the
/// module documentation for the contract).
pub struct LeafCache {
    inner: Mutex<Inner>,
    generation_bytes: usize,
    /// Lookups miss and reads are not kept ([`LeafCache::set_bypass`]).
    bypass: AtomicBool,
}

/// What [`LeafCache::get`] found.
pub enum Lookup {
    /// The bucket's leaves.
    Hit(Vec<(Hash32, Hash32)>),
    /// Not cached: read the store, then [`LeafCache::insert`] with this
    /// epoch.
    Miss(u64),
}

impl LeafCache {
    /// An empty cache of at most `max_bytes` (0: caches nothing).
    pub fn new(max_bytes: usize) -> LeafCache {
        LeafCache {
            inner: Mutex::new(Inner {
                newer: Generation::default(),
                older: Generation::default(),
                epoch: 0,
                hits: 0,
                misses: 0,
            }),
            generation_bytes: max_bytes / 2,
            bypass: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The cache holds no invariant a panicking reader could break
        // halfway (every change is one map operation and its count).
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The leaves of the bucket `low ..= high`, if cached.
    pub fn get(&self, low: &Hash32, high: &Hash32) -> Lookup {
        if self.bypass.load(Ordering::Relaxed) {
            // No write epoch is ever this, so the read is not kept.
            return Lookup::Miss(u64::MAX);
        }
        let mut inner = self.lock();
        let found = match inner.newer.map.get(low) {
            Some(c) if c.high == *high => Some(c.leaves.clone()),
            _ => match inner.older.take(low, high) {
                Some(cached) => {
                    let leaves = cached.leaves.clone();
                    self.put_newer(&mut inner, *low, cached);
                    Some(leaves)
                }
                None => None,
            },
        };
        match found {
            Some(leaves) => {
                inner.hits += 1;
                Lookup::Hit(leaves)
            }
            None => {
                inner.misses += 1;
                Lookup::Miss(inner.epoch)
            }
        }
    }

    /// Keeps the leaves of bucket `low ..= high` read from the store after
    /// [`LeafCache::get`] returned `Miss(epoch)`; ignored if a state write
    /// began since.
    pub fn insert(&self, epoch: u64, low: Hash32, high: Hash32, leaves: &[(Hash32, Hash32)]) {
        let mut inner = self.lock();
        let cached = Cached {
            high,
            leaves: leaves.to_vec(),
        };
        if inner.epoch != epoch || cached.bytes() > self.generation_bytes {
            return;
        }
        self.put_newer(&mut inner, low, cached);
    }

    fn put_newer(&self, inner: &mut Inner, low: Hash32, cached: Cached) {
        if inner.newer.bytes + cached.bytes() > self.generation_bytes {
            inner.older = std::mem::take(&mut inner.newer);
        }
        inner.newer.put(low, cached);
        debug_assert!(inner.newer.bytes <= self.generation_bytes);
    }

    /// Starts a state write that sets the leaves `(key hash, value hash)`
    /// (`None`: removed): changes their cached buckets to what the store
    /// will hold, and holds the cache until the returned guard is dropped
    /// (after the write is applied). A write that fails must call
    /// [`WriteGuard::failed`], which empties the cache.
    ///
    /// Patching instead of dropping keeps a busy account's bucket cached
    /// across state writes: dropping them made every write (every few
    /// dozen blocks) cost the next blocks a range read per bucket
    /// (docs/benchmarks.md).
    pub fn begin_write<'a>(
        &'a self,
        leaves: impl IntoIterator<Item = (Hash32, Option<Hash32>)>,
    ) -> WriteGuard<'a> {
        let mut inner = self.lock();
        inner.epoch += 1;
        for (key, value) in leaves {
            inner.newer.patch(&key, value);
            inner.older.patch(&key, value);
        }
        // New leaves grow their buckets: keep each generation in its bound.
        if inner.newer.bytes > self.generation_bytes {
            inner.older = std::mem::take(&mut inner.newer);
        }
        if inner.older.bytes > self.generation_bytes {
            inner.older = Generation::default();
        }
        WriteGuard { inner }
    }

    /// While `on`, every lookup misses and no read is kept: what a
    /// benchmark sets while it builds a block on the store it then times
    /// (`alliance-bench big-state-run`), so that the timed execution finds
    /// only what earlier timed work left here, as a validator that did not
    /// build the block would.
    pub fn set_bypass(&self, on: bool) {
        self.bypass.store(on, Ordering::Relaxed);
    }

    /// Lookups that hit and that missed since the store was opened.
    pub fn hits_and_misses(&self) -> (u64, u64) {
        let inner = self.lock();
        (inner.hits, inner.misses)
    }

    /// Every cached bucket, `(low, high, leaves)` (tests compare them with
    /// the store).
    #[cfg(test)]
    pub(crate) fn cached(&self) -> Vec<(Hash32, Hash32, Leaves)> {
        let inner = self.lock();
        [&inner.older, &inner.newer]
            .iter()
            .flat_map(|g| g.map.iter())
            .map(|(low, c)| (*low, c.high, c.leaves.clone()))
            .collect()
    }

    /// Bytes held, as counted against the bound.
    pub fn bytes(&self) -> usize {
        let inner = self.lock();
        inner.newer.bytes + inner.older.bytes
    }
}

/// A state write in progress ([`LeafCache::begin_write`]).
pub struct WriteGuard<'a> {
    inner: MutexGuard<'a, Inner>,
}

impl WriteGuard<'_> {
    /// The write was not applied: the patched buckets no longer match the
    /// store, so nothing cached is kept.
    pub fn failed(mut self) {
        self.inner.newer = Generation::default();
        self.inner.older = Generation::default();
    }
}

impl Drop for WriteGuard<'_> {
    fn drop(&mut self) {
        self.inner.epoch += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(b: u8) -> Hash32 {
        Hash32([b; 32])
    }

    fn leaves(n: usize, b: u8) -> Vec<(Hash32, Hash32)> {
        (0..n).map(|i| (h(b), h(i as u8))).collect()
    }

    fn hit(c: &LeafCache, low: u8, high: u8) -> Option<Vec<(Hash32, Hash32)>> {
        match c.get(&h(low), &h(high)) {
            Lookup::Hit(l) => Some(l),
            Lookup::Miss(_) => None,
        }
    }

    fn fill(c: &LeafCache, low: u8, high: u8, l: &[(Hash32, Hash32)]) {
        let Lookup::Miss(epoch) = c.get(&h(low), &h(high)) else {
            panic!("already cached");
        };
        c.insert(epoch, h(low), h(high), l);
    }

    #[test]
    fn a_write_changes_the_cached_buckets_it_touches_to_the_new_leaves() {
        let c = LeafCache::new(1 << 20);
        fill(&c, 10, 19, &[(h(12), h(1)), (h(14), h(2))]);
        fill(&c, 20, 29, &[(h(25), h(3))]);
        // Another range with the same lower bound is not this bucket.
        assert_eq!(hit(&c, 10, 11), None);
        // A changed leaf, a new one, a removed one, and one outside every
        // cached range.
        drop(c.begin_write([
            (h(14), Some(h(9))),
            (h(11), Some(h(8))),
            (h(25), None),
            (h(5), Some(h(7))),
        ]));
        assert_eq!(
            hit(&c, 10, 19),
            Some(vec![(h(11), h(8)), (h(12), h(1)), (h(14), h(9))])
        );
        assert_eq!(hit(&c, 20, 29), Some(vec![]));
        assert_eq!(hit(&c, 0, 9), None);
        assert_eq!(c.bytes(), 2 * ENTRY_OVERHEAD + 3 * LEAF_BYTES);
        // A write that failed leaves nothing cached.
        c.begin_write([(h(12), None)]).failed();
        assert_eq!(hit(&c, 10, 19), None);
        assert_eq!(c.bytes(), 0);
    }

    /// Leaves a write adds to cached buckets count against the bound.
    #[test]
    fn a_write_that_grows_buckets_stays_within_the_bound() {
        let per = ENTRY_OVERHEAD + 2 * LEAF_BYTES;
        let c = LeafCache::new(2 * 2 * per);
        fill(&c, 10, 19, &[(h(12), h(1)), (h(14), h(2))]);
        fill(&c, 20, 29, &[(h(22), h(1)), (h(24), h(2))]);
        assert_eq!(c.bytes(), 2 * per);
        let grown: Vec<(Hash32, Option<Hash32>)> = (0..5)
            .flat_map(|i| [(h(15 + i), Some(h(3))), (h(25 + i), Some(h(3)))])
            .collect();
        drop(c.begin_write(grown));
        assert!(c.bytes() <= 2 * 2 * per, "{} bytes", c.bytes());
    }

    #[test]
    fn a_read_that_overlapped_a_write_is_not_kept() {
        let c = LeafCache::new(1 << 20);
        let Lookup::Miss(epoch) = c.get(&h(10), &h(19)) else {
            panic!("empty cache");
        };
        // The store is written while the read is under way: the leaves read
        // may be the old ones.
        drop(c.begin_write([(h(11), Some(h(1)))]));
        c.insert(epoch, h(10), h(19), &leaves(1, 11));
        assert_eq!(hit(&c, 10, 19), None);
        // A read that began after the write is kept.
        fill(&c, 10, 19, &leaves(2, 11));
        assert_eq!(hit(&c, 10, 19), Some(leaves(2, 11)));
    }

    #[test]
    fn memory_stays_within_two_generations() {
        let per = ENTRY_OVERHEAD + 4 * LEAF_BYTES;
        let c = LeafCache::new(2 * 10 * per);
        for b in 0..100u8 {
            fill(&c, 2 * b, 2 * b + 1, &leaves(4, 2 * b));
            assert!(c.bytes() <= 2 * 10 * per, "{} bytes", c.bytes());
        }
        // The newest buckets are there, the oldest are not.
        assert!(hit(&c, 198, 199).is_some());
        assert!(hit(&c, 0, 1).is_none());
        // A hit in the older generation survives the next turnover.
        assert!(hit(&c, 2 * 85, 2 * 85 + 1).is_some());
        for b in 100..110u8 {
            fill(&c, 2 * b, 2 * b + 1, &leaves(4, 2 * b));
        }
        assert!(hit(&c, 2 * 85, 2 * 85 + 1).is_some());
        // A cache of no size keeps nothing.
        let none = LeafCache::new(0);
        fill(&none, 1, 2, &leaves(1, 1));
        assert!(hit(&none, 1, 2).is_none());
    }
}
