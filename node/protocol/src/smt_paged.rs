//! A two-tier sparse Merkle tree: the same root and proofs as
//! [`SparseMerkleTree`](crate::smt::SparseMerkleTree), with the leaves
//! outside memory.
//!
//! # The two tiers
//!
//! A [`PagedTree`] of bucket depth `D` (`0 ..= MAX_BUCKET_BITS`) splits the
//! tree of [`crate::smt`] at depth `D`:
//!
//! - **Buckets** (lower tier, outside memory). The positions at depth `D`
//!   are the `2^D` buckets; bucket `b` holds the leaves whose key hash
//!   starts with the `D` bits of `b`. The leaves themselves, `(key_hash,
//!   value_hash)` pairs, live in a [`LeafStore`] ordered by key hash (the
//!   node's is a range of its key-value store; [`BTreeMap<Hash32, Hash32>`]
//!   is one too). A bucket's subtree is never kept: when a bucket changes,
//!   or a proof goes through it, its leaves are read once and its subtree
//!   is built by `crate::smt`'s own code.
//! - **Heap** (upper tier, in memory). For every position of depths
//!   `0 ..= D`, a complete binary heap of `2^(D+1) - 1` entries holds a
//!   [`Summary`] of the canonical subtree there: [`SubtreeKind::Empty`]
//!   (hash [`Hash32::ZERO`]), [`SubtreeKind::Leaf`] (exactly one leaf,
//!   collapsed to this position; hash its leaf hash) or
//!   [`SubtreeKind::Internal`] (hash of the internal node). Entry `i` of
//!   depth `d` is at index `2^d - 1 + i`; the children of index `p` are
//!   `2p + 1` and `2p + 2`. The heap is two flat vectors (hashes, kinds),
//!   no allocation per node.
//!
//! # Memory bound
//!
//! [`SUMMARY_BYTES`] (33) bytes per heap entry, so `33 * (2^(D+1) - 1)`
//! bytes whatever the number of leaves, plus, transiently, one bucket's
//! leaves and subtree at a time. `D = 16`: 4.3 MB; `D = 20`: 66 MiB;
//! `D = 21`: 132 MiB. Choose `D` so that buckets hold a few tens of leaves:
//! apply and prove read and hash whole buckets.
//!
//! # Contract with the leaf store
//!
//! [`PagedTree::apply`] is given the store as it is **before** the batch:
//! it reads each touched bucket once, applies the batch's updates to the
//! bucket's subtree, recomputes the heap on the touched paths, and returns
//! the buckets whose summary changed. The tree does not write the store:
//! the caller then writes the same leaf changes to its store (and, for a
//! node, the changed bucket summaries, in the same atomic batch as the
//! block). Between two calls, the store must hold exactly the leaves the
//! tree summarises. A bucket read whose leaves do not rebuild the summary
//! the heap holds is refused ([`PagedTreeError::Inconsistent`]), and a
//! failed `apply` leaves the tree unchanged.
//!
//! # Persistence
//!
//! [`PagedTree::to_bytes`] / [`PagedTree::from_bytes`] save and load the
//! whole heap (fixed-size records, no hashing to load; structure checked,
//! [`PagedTree::verify_hashes`] rehashes). A node rather persists one
//! [`Summary`] per bucket, those returned by `apply` at each block, and
//! opens with [`PagedTree::from_bucket_summaries`], which rebuilds the upper
//! levels with at most `2^D - 1` node hashes. [`PagedTree::from_leaves`]
//! builds from scratch out of every leaf, in key order, one bucket in
//! memory at a time.
//!
//! # Why the root is [`SparseMerkleTree`](crate::smt::SparseMerkleTree)'s
//!
//! The canonical tree is a function of the leaf set, and so is each of its
//! subtrees: the subtree at a position depends only on the leaves whose key
//! starts with the position's path. A bucket's summary is built from
//! exactly those leaves by `crate::smt`'s update code, placed at depth `D`,
//! so it is the kind and hash of the canonical tree's subtree at that
//! position. Each upper entry is the join of its two children by the
//! collapse rule and [`node_hash`](crate::smt::node_hash) of `crate::smt`
//! (the same `join_rule` its nodes use), so by induction from depth `D` up
//! every heap entry, the root included, is the summary of the canonical
//! subtree at its position. Proofs walk the heap as
//! [`SparseMerkleTree::prove`](crate::smt::SparseMerkleTree::prove) walks
//! internal nodes, pushing the same sibling hashes, and finish with
//! `crate::smt`'s proof code on the subtree built where the walk stops (an
//! empty position, a collapsed leaf, or a bucket), so they are equal.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::fmt;

use crate::crypto::Hash32;
use crate::smt::{
    bit, join_rule, join_summaries, normalize_updates, same_prefix, summaries_before_after,
    summary_of, Joined, SmtProof, Subtree, SubtreeKind,
};

/// Largest bucket depth `D`: `2^24` buckets, a heap of 1.03 GiB.
pub const MAX_BUCKET_BITS: usize = 24;

/// Threads [`PagedTree::apply_over`] reads and rebuilds buckets on, at
/// most.
const PARALLEL_THREADS_MAX: usize = 4;

/// Touched buckets from which [`PagedTree::apply_over`] spreads them over
/// the cores (below, a thread costs more than it saves).
const PARALLEL_BUCKETS_MIN: usize = 256;

/// Bytes of one summary record, in memory and on disk: a kind byte, then
/// the hash.
pub const SUMMARY_BYTES: usize = 33;

/// Start of [`PagedTree::to_bytes`]: a magic and format version, then one
/// byte for `D`.
const MAGIC: [u8; 4] = *b"PTS1";

/// Bytes before the first record in [`PagedTree::to_bytes`].
pub const HEADER_BYTES: usize = MAGIC.len() + 1;

// ---- summaries ------------------------------------------------------------------

/// What the canonical subtree at one position is: its kind and hash.
///
/// Invariant: the hash is [`Hash32::ZERO`] exactly when the kind is
/// [`SubtreeKind::Empty`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Summary {
    kind: SubtreeKind,
    hash: Hash32,
}

impl Summary {
    /// The empty subtree.
    pub const EMPTY: Summary = Summary {
        kind: SubtreeKind::Empty,
        hash: Hash32::ZERO,
    };

    /// The subtree's kind.
    pub fn kind(&self) -> SubtreeKind {
        self.kind
    }

    /// The subtree's hash ([`Hash32::ZERO`] when empty).
    pub fn hash(&self) -> Hash32 {
        self.hash
    }

    /// The fixed-size record: kind byte (0 empty, 1 leaf, 2 internal), then
    /// the hash.
    pub fn to_bytes(&self) -> [u8; SUMMARY_BYTES] {
        let mut out = [0u8; SUMMARY_BYTES];
        out[0] = self.kind as u8;
        out[1..].copy_from_slice(&self.hash.0);
        out
    }

    /// Parses a [`Summary::to_bytes`] record; refuses any other length, an
    /// unknown kind, and a hash that is zero for a non-empty kind or
    /// non-zero for the empty kind.
    pub fn from_bytes(bytes: &[u8]) -> Result<Summary, SummaryError> {
        if bytes.len() != SUMMARY_BYTES {
            return Err(SummaryError::BadLength {
                expected: SUMMARY_BYTES,
                got: bytes.len(),
            });
        }
        let kind = match bytes[0] {
            0 => SubtreeKind::Empty,
            1 => SubtreeKind::Leaf,
            2 => SubtreeKind::Internal,
            byte => return Err(SummaryError::BadKind { byte }),
        };
        let mut hash = Hash32::ZERO;
        hash.0.copy_from_slice(&bytes[1..]);
        if (kind == SubtreeKind::Empty) != (hash == Hash32::ZERO) {
            return Err(SummaryError::BadHash);
        }
        Ok(Summary { kind, hash })
    }

    fn from_pair((kind, hash): (SubtreeKind, Hash32)) -> Summary {
        debug_assert_eq!(kind == SubtreeKind::Empty, hash == Hash32::ZERO);
        Summary { kind, hash }
    }

    fn pair(self) -> (SubtreeKind, Hash32) {
        (self.kind, self.hash)
    }
}

/// Why a summary, a saved heap or a set of bucket summaries is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// `D` is above [`MAX_BUCKET_BITS`].
    #[error("bucket depth {bits} is above {MAX_BUCKET_BITS}")]
    BitsOutOfRange {
        /// The depth asked for.
        bits: usize,
    },
    /// The bytes have the wrong length for their `D` (or for one record).
    #[error("expected {expected} bytes, got {got}")]
    BadLength {
        /// Length required.
        expected: usize,
        /// Length given.
        got: usize,
    },
    /// The saved heap does not start with the format's magic.
    #[error("not a saved paged tree (bad magic)")]
    BadMagic,
    /// A record's kind byte is not 0, 1 or 2.
    #[error("unknown subtree kind byte {byte}")]
    BadKind {
        /// The byte found.
        byte: u8,
    },
    /// A record's hash is zero for a non-empty kind, or non-zero for the
    /// empty kind.
    #[error("subtree hash does not match its kind")]
    BadHash,
    /// A heap entry is not the join of its two children (at heap index
    /// `position`).
    #[error("heap entry {position} is not the join of its children")]
    Inconsistent {
        /// Heap index of the entry.
        position: usize,
    },
    /// A bucket index is not below `2^D`.
    #[error("bucket {bucket} is out of range for {buckets} buckets")]
    BucketOutOfRange {
        /// The bucket index given.
        bucket: u32,
        /// Number of buckets, `2^D`.
        buckets: usize,
    },
    /// Bucket summaries must come in strictly increasing bucket order.
    #[error("bucket {bucket} comes after a bucket not below it")]
    BucketsNotIncreasing {
        /// The bucket out of order.
        bucket: u32,
    },
    /// Leaves must come in strictly increasing key order (so keys are
    /// distinct).
    #[error("leaf keys are not strictly increasing")]
    LeavesNotIncreasing,
}

/// Why an operation reading the leaf store failed. The tree is unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PagedTreeError<E> {
    /// The store failed to read a bucket.
    #[error("leaf store: {0}")]
    Store(E),
    /// The store returned, for a bucket, keys outside the bucket or not in
    /// strictly increasing order.
    #[error("the leaf store returned a malformed bucket {bucket}")]
    BadBucket {
        /// The bucket read.
        bucket: u32,
    },
    /// The store's leaves for a bucket do not rebuild the summary the tree
    /// holds: the store and the tree are out of step.
    #[error("the leaf store's bucket {bucket} does not match the tree")]
    Inconsistent {
        /// The bucket read.
        bucket: u32,
    },
}

// ---- the leaf store -------------------------------------------------------------

/// The leaves of a [`PagedTree`], ordered by key hash.
pub trait LeafStore {
    /// A failure to read.
    type Error;

    /// The `(key_hash, value_hash)` leaves whose key hash starts with the
    /// first `bits` bits of `prefix` (the others bits of `prefix` are zero,
    /// `bits <= 24`), sorted by key hash: the keys between the two bounds of
    /// [`prefix_bounds`], inclusive.
    fn bucket_leaves(
        &self,
        prefix: &Hash32,
        bits: usize,
    ) -> Result<Vec<(Hash32, Hash32)>, Self::Error>;
}

/// The in-memory leaf store (tests, tools).
impl LeafStore for BTreeMap<Hash32, Hash32> {
    type Error = Infallible;

    fn bucket_leaves(
        &self,
        prefix: &Hash32,
        bits: usize,
    ) -> Result<Vec<(Hash32, Hash32)>, Infallible> {
        let (low, high) = prefix_bounds(prefix, bits);
        Ok(self.range(low..=high).map(|(k, v)| (*k, *v)).collect())
    }
}

/// The smallest and largest keys starting with the first `bits` bits of
/// `prefix` (`bits` above 256 counts as 256): the inclusive range of a
/// bucket in a store ordered by key.
pub fn prefix_bounds(prefix: &Hash32, bits: usize) -> (Hash32, Hash32) {
    let bits = bits.min(256);
    let (mut low, mut high) = (*prefix, *prefix);
    for i in 0..32 {
        // Bits of byte i that lie past the prefix.
        let kept = bits.saturating_sub(i * 8).min(8);
        let free = if kept == 8 { 0 } else { 0xffu8 >> kept };
        low.0[i] &= !free;
        high.0[i] |= free;
    }
    (low, high)
}

/// The buckets a batch changed, in bucket order, with their new summaries.
pub type ChangedBuckets = Vec<BucketChange>;

/// One bucket's new summary.
pub type BucketChange = (u32, Summary);

/// One leaf update: key hash, new value hash (`None` removes).
type LeafUpdate = (Hash32, Option<Hash32>);

// ---- the tree -----------------------------------------------------------------

/// A sparse Merkle tree with the root and proofs of
/// [`SparseMerkleTree`](crate::smt::SparseMerkleTree), holding in memory
/// only a summary of its top `D` levels; the leaves are in a [`LeafStore`].
/// See the [module documentation](self).
///
/// Two trees are equal when their heaps are.
#[derive(Clone, PartialEq, Eq)]
pub struct PagedTree {
    /// `D`, at most [`MAX_BUCKET_BITS`].
    bits: usize,
    /// Invariant: both have `2^(D+1) - 1` entries; entry `p` of both is one
    /// [`Summary`] (hash zero exactly when empty); every entry above depth
    /// `D` is the join of its children.
    hashes: Vec<Hash32>,
    kinds: Vec<SubtreeKind>,
}

/// Entries of a heap of depth `bits`: `2^(bits+1) - 1`.
fn heap_len(bits: usize) -> usize {
    (2usize << bits) - 1
}

/// Heap index of the first position of depth `depth`.
fn level_start(depth: usize) -> usize {
    (1usize << depth) - 1
}

impl PagedTree {
    /// An empty tree of bucket depth `bits` (`D`, at most
    /// [`MAX_BUCKET_BITS`]); root [`Hash32::ZERO`].
    pub fn new(bits: usize) -> Result<PagedTree, SummaryError> {
        if bits > MAX_BUCKET_BITS {
            return Err(SummaryError::BitsOutOfRange { bits });
        }
        let len = heap_len(bits);
        let tree = PagedTree {
            bits,
            hashes: vec![Hash32::ZERO; len],
            kinds: vec![SubtreeKind::Empty; len],
        };
        assert_eq!(tree.hashes.len(), tree.kinds.len());
        Ok(tree)
    }

    /// Builds the tree of `leaves` (sorted by key, keys distinct), reading
    /// them once and holding one bucket in memory at a time.
    pub fn from_leaves<I: IntoIterator<Item = (Hash32, Hash32)>>(
        bits: usize,
        leaves: I,
    ) -> Result<PagedTree, SummaryError> {
        let mut tree = PagedTree::new(bits)?;
        let mut bucket_leaves: Vec<(Hash32, Hash32)> = Vec::new();
        let mut bucket = 0u32;
        let mut last: Option<Hash32> = None;
        for (key, value) in leaves {
            if last.is_some_and(|l| l >= key) {
                return Err(SummaryError::LeavesNotIncreasing);
            }
            last = Some(key);
            let b = tree.bucket_of(&key);
            if b != bucket && !bucket_leaves.is_empty() {
                tree.set_bucket_from_leaves(bucket, &bucket_leaves);
                bucket_leaves.clear();
            }
            bucket = b;
            bucket_leaves.push((key, value));
        }
        if !bucket_leaves.is_empty() {
            tree.set_bucket_from_leaves(bucket, &bucket_leaves);
        }
        tree.rebuild_upper();
        Ok(tree)
    }

    /// `leaves`: sorted, distinct, all in `bucket`.
    fn set_bucket_from_leaves(&mut self, bucket: u32, leaves: &[(Hash32, Hash32)]) {
        let summary = Summary::from_pair(summary_of(leaves, self.bits));
        self.set(self.bucket_position(bucket), summary);
    }

    /// Rebuilds the tree from the summaries of its non-empty buckets (as
    /// returned by [`PagedTree::apply`] and [`PagedTree::bucket_summaries`]),
    /// given in strictly increasing bucket order; absent buckets are
    /// empty. At most `2^D - 1` node hashes.
    pub fn from_bucket_summaries<I: IntoIterator<Item = (u32, Summary)>>(
        bits: usize,
        buckets: I,
    ) -> Result<PagedTree, SummaryError> {
        let mut tree = PagedTree::new(bits)?;
        let mut previous: Option<u32> = None;
        for (bucket, summary) in buckets {
            if bucket as usize >= tree.bucket_count() {
                return Err(SummaryError::BucketOutOfRange {
                    bucket,
                    buckets: tree.bucket_count(),
                });
            }
            if previous.is_some_and(|p| p >= bucket) {
                return Err(SummaryError::BucketsNotIncreasing { bucket });
            }
            previous = Some(bucket);
            tree.set(tree.bucket_position(bucket), summary);
        }
        tree.rebuild_upper();
        Ok(tree)
    }

    /// The whole heap: [`HEADER_BYTES`] (a magic, then `D`), then one
    /// [`Summary::to_bytes`] record per heap entry in heap order;
    /// `HEADER_BYTES + 33 * (2^(D+1) - 1)` bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_BYTES + SUMMARY_BYTES * self.hashes.len());
        out.extend_from_slice(&MAGIC);
        out.push(self.bits as u8);
        for p in 0..self.hashes.len() {
            out.extend_from_slice(&self.summary_at(p).to_bytes());
        }
        out
    }

    /// Loads [`PagedTree::to_bytes`]. Refuses a bad magic, `D` out of
    /// range, any length but the exact one for `D`, a bad record, and an
    /// entry that is not the join of its children by kind (no hashing:
    /// internal hashes are taken as saved; [`PagedTree::verify_hashes`]
    /// checks them).
    pub fn from_bytes(bytes: &[u8]) -> Result<PagedTree, SummaryError> {
        if bytes.len() < HEADER_BYTES {
            return Err(SummaryError::BadLength {
                expected: HEADER_BYTES,
                got: bytes.len(),
            });
        }
        if bytes[..MAGIC.len()] != MAGIC {
            return Err(SummaryError::BadMagic);
        }
        let bits = bytes[MAGIC.len()] as usize;
        if bits > MAX_BUCKET_BITS {
            return Err(SummaryError::BitsOutOfRange { bits });
        }
        let expected = HEADER_BYTES + SUMMARY_BYTES * heap_len(bits);
        if bytes.len() != expected {
            return Err(SummaryError::BadLength {
                expected,
                got: bytes.len(),
            });
        }
        let mut tree = PagedTree::new(bits)?;
        for (p, record) in bytes[HEADER_BYTES..]
            .chunks_exact(SUMMARY_BYTES)
            .enumerate()
        {
            tree.set(p, Summary::from_bytes(record)?);
        }
        for p in 0..level_start(bits) {
            let (here, left, right) = (
                tree.summary_at(p),
                tree.summary_at(2 * p + 1),
                tree.summary_at(2 * p + 2),
            );
            let ok = match join_rule(left.kind, right.kind) {
                Joined::Empty => here == Summary::EMPTY,
                Joined::Left => here == left,
                Joined::Right => here == right,
                Joined::Internal => here.kind == SubtreeKind::Internal,
            };
            if !ok {
                return Err(SummaryError::Inconsistent { position: p });
            }
        }
        Ok(tree)
    }

    /// Rehashes every entry above the buckets and checks it: up to
    /// `2^D - 1` node hashes.
    pub fn verify_hashes(&self) -> Result<(), SummaryError> {
        for p in 0..level_start(self.bits) {
            if self.joined_children(p) != self.summary_at(p) {
                return Err(SummaryError::Inconsistent { position: p });
            }
        }
        Ok(())
    }

    /// `D`: buckets are the positions of this depth.
    pub fn bits(&self) -> usize {
        self.bits
    }

    /// Number of buckets, `2^D`.
    pub fn bucket_count(&self) -> usize {
        1usize << self.bits
    }

    /// Bytes held by the heap: [`SUMMARY_BYTES`] × `(2^(D+1) - 1)`.
    pub fn summary_bytes(&self) -> usize {
        self.hashes.len() * std::mem::size_of::<Hash32>()
            + self.kinds.len() * std::mem::size_of::<SubtreeKind>()
    }

    /// The root hash; [`Hash32::ZERO`] when empty. Equal to
    /// [`SparseMerkleTree::root_hash`](crate::smt::SparseMerkleTree::root_hash)
    /// over the same leaves.
    pub fn root_hash(&self) -> Hash32 {
        self.hashes[0]
    }

    /// The bucket of `key`: its first `D` bits.
    pub fn bucket_of(&self, key: &Hash32) -> u32 {
        if self.bits == 0 {
            return 0;
        }
        let top = u32::from_be_bytes([key.0[0], key.0[1], key.0[2], key.0[3]]);
        top >> (32 - self.bits)
    }

    /// The summary of bucket `bucket`; `None` if it is not below `2^D`.
    pub fn bucket_summary(&self, bucket: u32) -> Option<Summary> {
        ((bucket as usize) < self.bucket_count())
            .then(|| self.summary_at(self.bucket_position(bucket)))
    }

    /// The non-empty buckets' summaries, in bucket order: what
    /// [`PagedTree::from_bucket_summaries`] needs.
    pub fn bucket_summaries(&self) -> impl Iterator<Item = (u32, Summary)> + '_ {
        let start = level_start(self.bits);
        (0..self.bucket_count())
            .filter(move |b| self.kinds[start + b] != SubtreeKind::Empty)
            .map(move |b| (b as u32, self.summary_at(start + b)))
    }

    /// Applies a batch of updates (`None` removes the key; a key's last
    /// update wins), as
    /// [`SparseMerkleTree::apply`](crate::smt::SparseMerkleTree::apply).
    ///
    /// `store` must hold the leaves as they are **before** the batch. Each
    /// touched bucket is read once (a bucket summarised as empty is not
    /// read), rebuilt, checked against its summary, and updated; then the
    /// heap entries on the touched paths are recomputed. Returns the
    /// buckets whose summary changed, in bucket order, with their new
    /// summaries: what to persist. The caller then writes the leaf changes
    /// to its store. On error the tree is unchanged.
    pub fn apply<S, I>(
        &mut self,
        store: &S,
        updates: I,
    ) -> Result<Vec<(u32, Summary)>, PagedTreeError<S::Error>>
    where
        S: LeafStore + Sync + ?Sized,
        S::Error: Send,
        I: IntoIterator<Item = (Hash32, Option<Hash32>)>,
    {
        let (delta, changed) = self.apply_over(&[], store, updates)?;
        self.merge(&delta);
        Ok(changed)
    }

    /// [`PagedTree::apply`] on the tree as `deltas` change it (in order,
    /// a later one winning), without changing anything: returns the delta
    /// of this batch alone (the heap entries it changes, with their new
    /// summaries) and the buckets it changed. `store` must hold the leaves
    /// of the tree as `deltas` change it, before the batch. This is how a
    /// node executes blocks whose state is not written yet: the tree stays
    /// the written state's, and each block's delta applies on its parent's.
    pub fn apply_over<S, I>(
        &self,
        deltas: &[&TreeDelta],
        store: &S,
        updates: I,
    ) -> Result<(TreeDelta, ChangedBuckets), PagedTreeError<S::Error>>
    where
        S: LeafStore + Sync + ?Sized,
        S::Error: Send,
        I: IntoIterator<Item = (Hash32, Option<Hash32>)>,
    {
        let updates = normalize_updates(updates.into_iter().collect());
        let view = View {
            tree: self,
            deltas,
            own: None,
        };
        // Phase 1, reads only: the new summaries of the touched buckets.
        let mut groups: Vec<(u32, &[LeafUpdate])> = Vec::new();
        let mut rest = &updates[..];
        while let Some((first, _)) = rest.first() {
            let bucket = self.bucket_of(first);
            // Sorted keys: the bucket's updates are a prefix of `rest`.
            let n = rest.partition_point(|(k, _)| self.bucket_of(k) == bucket);
            let (group, tail) = rest.split_at(n);
            rest = tail;
            groups.push((bucket, group));
        }
        let rebuild = |(bucket, group): &(u32, &[LeafUpdate])| {
            let old = view.summary_at(self.bucket_position(*bucket));
            let leaves = if old.kind == SubtreeKind::Empty {
                Vec::new()
            } else {
                self.read_bucket(store, *bucket)?
            };
            let (before, after) = summaries_before_after(&leaves, group, self.bits);
            if Summary::from_pair(before) != old {
                return Err(PagedTreeError::Inconsistent { bucket: *bucket });
            }
            let new = Summary::from_pair(after);
            Ok((new != old).then_some((*bucket, new)))
        };
        // Buckets are independent: a large batch reads and rebuilds them on
        // every core (a store read is most of a bucket's cost).
        let threads = crate::cores::available().min(PARALLEL_THREADS_MAX);
        let results: Vec<Result<Option<BucketChange>, PagedTreeError<S::Error>>> = if threads > 1
            && groups.len() >= PARALLEL_BUCKETS_MIN
        {
            let rebuild = &rebuild;
            std::thread::scope(|scope| {
                let workers: Vec<_> = groups
                    .chunks(groups.len().div_ceil(threads))
                    .map(|chunk| scope.spawn(move || chunk.iter().map(rebuild).collect::<Vec<_>>()))
                    .collect();
                workers
                    .into_iter()
                    .flat_map(|w| w.join().expect("a bucket rebuild does not panic"))
                    .collect()
            })
        } else {
            groups.iter().map(rebuild).collect()
        };
        let mut changed = Vec::new();
        for result in results {
            if let Some(c) = result? {
                changed.push(c);
            }
        }
        // Phase 2, infallible: the buckets, then their paths up to the root.
        let mut out = TreeDelta::default();
        for (bucket, summary) in &changed {
            out.entries.insert(self.bucket_position(*bucket), *summary);
        }
        let mut indices: Vec<usize> = changed.iter().map(|(b, _)| *b as usize).collect();
        for depth in (0..self.bits).rev() {
            for i in indices.iter_mut() {
                *i >>= 1;
            }
            indices.dedup();
            for i in &indices {
                let p = level_start(depth) + i;
                let joined = View {
                    tree: self,
                    deltas,
                    own: Some(&out),
                }
                .joined_children(p);
                out.entries.insert(p, joined);
            }
        }
        Ok((out, changed))
    }

    /// Writes `delta` (from [`PagedTree::apply_over`] on this tree) into
    /// the tree.
    pub fn merge(&mut self, delta: &TreeDelta) {
        for (p, summary) in &delta.entries {
            self.set(*p, *summary);
        }
    }

    /// The root hash of the tree as `deltas` change it.
    pub fn root_hash_over(&self, deltas: &[&TreeDelta]) -> Hash32 {
        View {
            tree: self,
            deltas,
            own: None,
        }
        .summary_at(0)
        .hash
    }

    /// The buckets `delta` changes, in bucket order, with their summaries
    /// in it: what a node persists when the delta's blocks become final.
    pub fn delta_buckets(&self, delta: &TreeDelta) -> Vec<(u32, Summary)> {
        let start = level_start(self.bits);
        let mut out: Vec<(u32, Summary)> = delta
            .entries
            .iter()
            .filter(|(p, _)| **p >= start)
            .map(|(p, s)| ((p - start) as u32, *s))
            .collect();
        out.sort_unstable_by_key(|(b, _)| *b);
        out
    }

    /// The value hash stored under `key`, if any (reads `key`'s bucket
    /// unless it is summarised as empty).
    pub fn get<S: LeafStore + ?Sized>(
        &self,
        store: &S,
        key: &Hash32,
    ) -> Result<Option<Hash32>, PagedTreeError<S::Error>> {
        let bucket = self.bucket_of(key);
        if self.kinds[self.bucket_position(bucket)] == SubtreeKind::Empty {
            return Ok(None);
        }
        let leaves = self.read_bucket(store, bucket)?;
        Ok(leaves
            .binary_search_by(|(k, _)| k.cmp(key))
            .ok()
            .map(|i| leaves[i].1))
    }

    /// A proof of `key`'s entry, equal to
    /// [`SparseMerkleTree::prove`](crate::smt::SparseMerkleTree::prove)'s
    /// over the same leaves: inclusion if present, non-inclusion otherwise.
    /// Reads at most one bucket: the key's, or the one holding the leaf
    /// collapsed onto the key's path.
    pub fn prove<S: LeafStore + ?Sized>(
        &self,
        store: &S,
        key: &Hash32,
    ) -> Result<SmtProof, PagedTreeError<S::Error>> {
        self.prove_over(&[], store, key)
    }

    /// [`PagedTree::prove`] on the tree as `deltas` change it (`store`
    /// holding the leaves as they change them).
    pub fn prove_over<S: LeafStore + ?Sized>(
        &self,
        deltas: &[&TreeDelta],
        store: &S,
        key: &Hash32,
    ) -> Result<SmtProof, PagedTreeError<S::Error>> {
        let view = View {
            tree: self,
            deltas,
            own: None,
        };
        let mut siblings = Vec::new();
        let (mut position, mut depth) = (0usize, 0usize);
        // Down the heap through internal nodes, as SparseMerkleTree::prove.
        while depth < self.bits && view.summary_at(position).kind == SubtreeKind::Internal {
            let (next, sibling) = if bit(key, depth) {
                (2 * position + 2, 2 * position + 1)
            } else {
                (2 * position + 1, 2 * position + 2)
            };
            siblings.push(view.summary_at(sibling).hash);
            position = next;
            depth += 1;
        }
        // The walk stops here: an empty position, a collapsed leaf, or an
        // internal bucket. The rest of the proof is the subtree's.
        let here = view.summary_at(position);
        let (leaves, bucket) = match here.kind {
            SubtreeKind::Empty => (Vec::new(), None),
            SubtreeKind::Leaf | SubtreeKind::Internal => {
                let bucket = view.bucket_below(position, depth);
                (self.read_bucket(store, bucket)?, Some(bucket))
            }
        };
        let subtree = Subtree::build(&leaves, depth);
        if Summary::from_pair(subtree.summary()) != here {
            return Err(PagedTreeError::Inconsistent {
                bucket: bucket.unwrap_or(0),
            });
        }
        Ok(subtree.prove(key, siblings))
    }

    // ---- internals ----------------------------------------------------------

    fn summary_at(&self, position: usize) -> Summary {
        Summary {
            kind: self.kinds[position],
            hash: self.hashes[position],
        }
    }

    fn set(&mut self, position: usize, summary: Summary) {
        self.kinds[position] = summary.kind;
        self.hashes[position] = summary.hash;
    }

    /// The join of the children of `position` (above the buckets).
    fn joined_children(&self, position: usize) -> Summary {
        View {
            tree: self,
            deltas: &[],
            own: None,
        }
        .joined_children(position)
    }

    fn bucket_position(&self, bucket: u32) -> usize {
        debug_assert!((bucket as usize) < self.bucket_count());
        level_start(self.bits) + bucket as usize
    }

    /// Bucket `bucket`'s leaves from `store`, checked: every key in the
    /// bucket, keys strictly increasing.
    fn read_bucket<S: LeafStore + ?Sized>(
        &self,
        store: &S,
        bucket: u32,
    ) -> Result<Vec<(Hash32, Hash32)>, PagedTreeError<S::Error>> {
        let prefix = self.bucket_prefix(bucket);
        let leaves = store
            .bucket_leaves(&prefix, self.bits)
            .map_err(PagedTreeError::Store)?;
        let in_bucket = leaves
            .iter()
            .all(|(k, _)| same_prefix(k, &prefix, self.bits));
        let increasing = leaves.windows(2).all(|w| w[0].0 < w[1].0);
        if !in_bucket || !increasing {
            return Err(PagedTreeError::BadBucket { bucket });
        }
        Ok(leaves)
    }

    /// The key whose first `D` bits are `bucket`'s, the others zero.
    fn bucket_prefix(&self, bucket: u32) -> Hash32 {
        let mut prefix = Hash32::ZERO;
        if self.bits > 0 {
            prefix.0[..4].copy_from_slice(&(bucket << (32 - self.bits)).to_be_bytes());
        }
        prefix
    }

    /// Recomputes every entry above the buckets, bottom up.
    fn rebuild_upper(&mut self) {
        for p in (0..level_start(self.bits)).rev() {
            let joined = self.joined_children(p);
            self.set(p, joined);
        }
    }
}

/// Heap entries of a [`PagedTree`] changed by batches not merged into it
/// (a node's blocks whose state is not written yet): heap index to
/// summary. [`PagedTree::apply_over`] returns one batch's;
/// [`TreeDelta::extend`] stacks them; [`PagedTree::merge`] writes one into
/// the tree.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TreeDelta {
    entries: HashMap<usize, Summary>,
}

impl TreeDelta {
    /// Adds `later`'s entries, which win over this delta's.
    pub fn extend(&mut self, later: &TreeDelta) {
        self.entries
            .extend(later.entries.iter().map(|(p, s)| (*p, *s)));
    }

    /// Whether it changes nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Heap entries it changes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }
}

/// A tree as deltas change it (read only): `own` (the batch being
/// applied), then `deltas` from the last, then the tree.
struct View<'a> {
    tree: &'a PagedTree,
    deltas: &'a [&'a TreeDelta],
    own: Option<&'a TreeDelta>,
}

impl View<'_> {
    fn summary_at(&self, position: usize) -> Summary {
        if let Some(s) = self.own.and_then(|d| d.entries.get(&position)) {
            return *s;
        }
        for d in self.deltas.iter().rev() {
            if let Some(s) = d.entries.get(&position) {
                return *s;
            }
        }
        self.tree.summary_at(position)
    }

    /// The join of the children of `position` (above the buckets).
    fn joined_children(&self, position: usize) -> Summary {
        debug_assert!(position < level_start(self.tree.bits));
        let (left, right) = (
            self.summary_at(2 * position + 1),
            self.summary_at(2 * position + 2),
        );
        Summary::from_pair(join_summaries(left.pair(), right.pair()))
    }

    /// The bucket holding the leaves of the non-empty `position` of depth
    /// `depth`: itself at depth `D`; above, `position` is a collapsed leaf,
    /// and the leaf sits in the one bucket below reached through
    /// non-empty children.
    fn bucket_below(&self, mut position: usize, mut depth: usize) -> u32 {
        debug_assert!(
            depth == self.tree.bits || self.summary_at(position).kind == SubtreeKind::Leaf
        );
        while depth < self.tree.bits {
            let left = 2 * position + 1;
            position = if self.summary_at(left).kind != SubtreeKind::Empty {
                left
            } else {
                left + 1
            };
            depth += 1;
        }
        (position - level_start(self.tree.bits)) as u32
    }
}

impl fmt::Debug for PagedTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PagedTree")
            .field("root", &self.root_hash())
            .field("bits", &self.bits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use proptest::test_runner::TestCaseError;

    use super::*;
    use crate::encoding::hash_with_domain;
    use crate::smt::{leaf_hash, node_hash, SparseMerkleTree};

    type Store = BTreeMap<Hash32, Hash32>;

    fn h(label: &str, i: u64) -> Hash32 {
        hash_with_domain(label, &i.to_le_bytes())
    }

    fn key_with(fill: u8, pos: usize, byte: u8) -> Hash32 {
        let mut k = [fill; 32];
        k[pos] = byte;
        Hash32(k)
    }

    fn smt_of(store: &Store) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new();
        t.apply(store.iter().map(|(k, v)| (*k, Some(*v))));
        t
    }

    fn paged_of(bits: usize, store: &Store) -> PagedTree {
        PagedTree::from_leaves(bits, store.iter().map(|(k, v)| (*k, *v))).unwrap()
    }

    /// Writes a batch to the store as the caller of `apply` does, in order.
    fn write(store: &mut Store, updates: &[(Hash32, Option<Hash32>)]) {
        for (k, v) in updates {
            match v {
                Some(v) => store.insert(*k, *v),
                None => store.remove(k),
            };
        }
    }

    /// Everything a paged tree over `store` must share with the
    /// SparseMerkleTree over the same leaves, and every way of rebuilding it.
    fn check(t: &PagedTree, store: &Store, probes: &[Hash32]) -> Result<(), TestCaseError> {
        let smt = smt_of(store);
        let root = smt.root_hash();
        prop_assert_eq!(t.root_hash(), root);
        prop_assert_eq!(&paged_of(t.bits(), store), t);
        prop_assert_eq!(&PagedTree::from_bytes(&t.to_bytes()).unwrap(), t);
        prop_assert_eq!(
            &PagedTree::from_bucket_summaries(t.bits(), t.bucket_summaries()).unwrap(),
            t
        );
        prop_assert_eq!(t.verify_hashes(), Ok(()));
        for key in store.keys().chain(probes) {
            let proof = t.prove(store, key).unwrap();
            prop_assert_eq!(&proof, &smt.prove(key));
            let value = store.get(key);
            prop_assert_eq!(t.get(store, key).unwrap(), value.copied());
            prop_assert_eq!(proof.verify(&root, key, value), Ok(()));
            let wrong = match value {
                Some(_) => None,
                None => Some(h("v", 999)),
            };
            prop_assert!(proof.verify(&root, key, wrong.as_ref()).is_err());
        }
        Ok(())
    }

    // ---- examples ---------------------------------------------------------------

    #[test]
    fn empty_tree_at_every_depth() {
        let store = Store::new();
        for bits in 0..=8 {
            let mut t = PagedTree::new(bits).unwrap();
            assert_eq!(t.root_hash(), Hash32::ZERO);
            assert_eq!(t.bucket_count(), 1 << bits);
            assert_eq!(t.summary_bytes(), SUMMARY_BYTES * ((2 << bits) - 1));
            assert_eq!(
                t.to_bytes().len(),
                HEADER_BYTES + SUMMARY_BYTES * ((2 << bits) - 1)
            );
            assert_eq!(t.bucket_summaries().count(), 0);
            let changed = t
                .apply(&store, [(h("k", 1), None), (h("k", 2), None)])
                .unwrap();
            assert!(changed.is_empty());
            check(&t, &store, &[h("k", 1), Hash32::ZERO, Hash32([0xff; 32])]).unwrap();
        }
    }

    #[test]
    fn single_leaf_collapses_to_the_root() {
        let (k, v) = (key_with(0x5c, 31, 1), h("v", 1));
        let store: Store = [(k, v)].into();
        let t = paged_of(8, &store);
        assert_eq!(t.root_hash(), leaf_hash(&k, &v));
        // Every entry on the leaf's path is that leaf; the rest is empty.
        assert_eq!(
            t.bucket_summaries().collect::<Vec<_>>(),
            vec![(
                0x5c,
                Summary {
                    kind: SubtreeKind::Leaf,
                    hash: leaf_hash(&k, &v)
                }
            )]
        );
        assert_eq!(t.kinds[0], SubtreeKind::Leaf);
        assert_eq!(
            t.kinds.iter().filter(|k| **k == SubtreeKind::Leaf).count(),
            9
        );
        assert_eq!(t.prove(&store, &k).unwrap().siblings, vec![]);
        // Another key: the proof carries the leaf, from depth 0.
        let other = Hash32([0xff; 32]);
        let p = t.prove(&store, &other).unwrap();
        assert_eq!(p.siblings, vec![]);
        assert_eq!(p.leaf, Some((k, v)));
        check(&t, &store, &[other, key_with(0x5c, 31, 2)]).unwrap();
    }

    #[test]
    fn two_leaves_across_and_within_buckets() {
        // Split at bit 0: two buckets, an internal root over two leaves.
        let (a, b) = (Hash32([0x00; 32]), Hash32([0x80; 32]));
        let store: Store = [(a, h("v", 1)), (b, h("v", 2))].into();
        let t = paged_of(4, &store);
        assert_eq!(
            t.root_hash(),
            node_hash(&leaf_hash(&a, &h("v", 1)), &leaf_hash(&b, &h("v", 2)))
        );
        check(&t, &store, &[Hash32([0x40; 32])]).unwrap();
        // Split at the last bit: one bucket, 256-sibling proofs.
        let (c, d) = (key_with(0xa5, 31, 0xa4), key_with(0xa5, 31, 0xa5));
        let store: Store = [(c, h("v", 1)), (d, h("v", 2))].into();
        for bits in [0, 1, 8] {
            let t = paged_of(bits, &store);
            assert_eq!(t.prove(&store, &c).unwrap().siblings.len(), 256);
            check(
                &t,
                &store,
                &[key_with(0xa5, 31, 0xa6), key_with(0xa5, 0, 0x25)],
            )
            .unwrap();
        }
    }

    #[test]
    fn apply_reports_changed_buckets_and_removal_collapses() {
        // Two keys in bucket 0 (D = 1), one in bucket 1.
        let keys = [
            key_with(0, 0, 0x00),
            key_with(0, 0, 0x01),
            key_with(0, 0, 0x80),
        ];
        let mut store: Store = keys.iter().map(|k| (*k, h("v", 0))).collect();
        let mut t = paged_of(1, &store);
        let updates = [(keys[1], None)];
        let changed = t.apply(&store, updates).unwrap();
        write(&mut store, &updates);
        assert_eq!(
            changed,
            vec![(
                0,
                Summary {
                    kind: SubtreeKind::Leaf,
                    hash: leaf_hash(&keys[0], &h("v", 0))
                }
            )]
        );
        assert_eq!(t.prove(&store, &keys[0]).unwrap().siblings.len(), 1);
        check(&t, &store, &keys).unwrap();
        // Same value again, removal of an absent key: nothing changes.
        let root = t.root_hash();
        let changed = t
            .apply(&store, [(keys[0], Some(h("v", 0))), (keys[1], None)])
            .unwrap();
        assert!(changed.is_empty());
        assert_eq!(t.root_hash(), root);
        // Remove the rest: empty buckets are reported, and the root is zero.
        let updates = [(keys[0], None), (keys[2], None)];
        let changed = t.apply(&store, updates).unwrap();
        write(&mut store, &updates);
        assert_eq!(changed, vec![(0, Summary::EMPTY), (1, Summary::EMPTY)]);
        assert_eq!(t.root_hash(), Hash32::ZERO);
        assert_eq!(t, PagedTree::new(1).unwrap());
    }

    #[test]
    fn bucket_of_and_prefix_bounds() {
        let t = PagedTree::new(12).unwrap();
        let k = Hash32([0xab; 32]);
        assert_eq!(t.bucket_of(&k), 0xaba);
        assert_eq!(PagedTree::new(0).unwrap().bucket_of(&k), 0);
        assert_eq!(PagedTree::new(8).unwrap().bucket_of(&k), 0xab);
        let prefix = t.bucket_prefix(0xaba);
        let (low, high) = prefix_bounds(&prefix, 12);
        assert_eq!(&low.0[..2], &[0xab, 0xa0]);
        assert!(low.0[2..].iter().all(|b| *b == 0));
        assert_eq!(&high.0[..2], &[0xab, 0xaf]);
        assert!(high.0[2..].iter().all(|b| *b == 0xff));
        assert_eq!(prefix_bounds(&k, 0), (Hash32::ZERO, Hash32([0xff; 32])));
        assert_eq!(prefix_bounds(&k, 256), (k, k));
        assert_eq!(prefix_bounds(&k, 1000), (k, k));
        // The store returns exactly the bucket.
        let store: Store = [
            (key_with(0xff, 0, 0xab), h("v", 0)),
            (Hash32([0xab; 32]), h("v", 1)),
            (key_with(0x00, 0, 0xab), h("v", 2)),
        ]
        .into();
        let got = store.bucket_leaves(&prefix, 12).unwrap();
        assert_eq!(got, vec![(Hash32([0xab; 32]), h("v", 1))]);
    }

    #[test]
    fn saved_heap_is_refused_unless_exact() {
        let store: Store = (0..40).map(|i| (h("k", i), h("v", i))).collect();
        let t = paged_of(5, &store);
        let bytes = t.to_bytes();
        assert_eq!(PagedTree::from_bytes(&bytes).unwrap(), t);
        // Lengths.
        for len in [0, 4, bytes.len() - 1] {
            assert!(matches!(
                PagedTree::from_bytes(&bytes[..len]),
                Err(SummaryError::BadLength { .. })
            ));
        }
        let mut long = bytes.clone();
        long.push(0);
        assert!(matches!(
            PagedTree::from_bytes(&long),
            Err(SummaryError::BadLength { .. })
        ));
        // Header.
        let mut bad = bytes.clone();
        bad[0] ^= 1;
        assert_eq!(PagedTree::from_bytes(&bad), Err(SummaryError::BadMagic));
        let mut bad = bytes.clone();
        bad[4] = 25;
        assert_eq!(
            PagedTree::from_bytes(&bad),
            Err(SummaryError::BitsOutOfRange { bits: 25 })
        );
        let mut bad = bytes.clone();
        bad[4] = 6;
        assert!(matches!(
            PagedTree::from_bytes(&bad),
            Err(SummaryError::BadLength { .. })
        ));
        // Records: the root's kind byte and hash.
        let mut bad = bytes.clone();
        bad[HEADER_BYTES] = 3;
        assert_eq!(
            PagedTree::from_bytes(&bad),
            Err(SummaryError::BadKind { byte: 3 })
        );
        let mut bad = bytes.clone();
        bad[HEADER_BYTES] = 0;
        assert_eq!(PagedTree::from_bytes(&bad), Err(SummaryError::BadHash));
        let mut bad = bytes.clone();
        bad[HEADER_BYTES + 1..HEADER_BYTES + SUMMARY_BYTES].fill(0);
        assert_eq!(PagedTree::from_bytes(&bad), Err(SummaryError::BadHash));
        // Structure: the root made a leaf over an internal pair.
        let mut bad = bytes.clone();
        bad[HEADER_BYTES] = 1;
        assert_eq!(
            PagedTree::from_bytes(&bad),
            Err(SummaryError::Inconsistent { position: 0 })
        );
        // A wrong internal hash loads (no hashing) but fails verification.
        let mut bad = bytes.clone();
        bad[HEADER_BYTES + 1] ^= 1;
        let loaded = PagedTree::from_bytes(&bad).unwrap();
        assert_eq!(
            loaded.verify_hashes(),
            Err(SummaryError::Inconsistent { position: 0 })
        );
        // One summary record.
        let s = t.bucket_summaries().next().unwrap().1;
        assert_eq!(Summary::from_bytes(&s.to_bytes()), Ok(s));
        assert_eq!(
            Summary::from_bytes(&Summary::EMPTY.to_bytes()),
            Ok(Summary::EMPTY)
        );
        assert!(matches!(
            Summary::from_bytes(&s.to_bytes()[1..]),
            Err(SummaryError::BadLength { .. })
        ));
    }

    #[test]
    fn constructors_refuse_bad_input() {
        assert_eq!(
            PagedTree::new(MAX_BUCKET_BITS + 1),
            Err(SummaryError::BitsOutOfRange { bits: 25 })
        );
        assert_eq!(
            PagedTree::from_leaves(usize::MAX, []),
            Err(SummaryError::BitsOutOfRange { bits: usize::MAX })
        );
        let leaf = Summary {
            kind: SubtreeKind::Leaf,
            hash: h("x", 0),
        };
        assert_eq!(
            PagedTree::from_bucket_summaries(3, [(8, leaf)]),
            Err(SummaryError::BucketOutOfRange {
                bucket: 8,
                buckets: 8
            })
        );
        assert_eq!(
            PagedTree::from_bucket_summaries(3, [(2, leaf), (2, leaf)]),
            Err(SummaryError::BucketsNotIncreasing { bucket: 2 })
        );
        assert_eq!(
            PagedTree::from_bucket_summaries(3, [(2, leaf), (1, leaf)]),
            Err(SummaryError::BucketsNotIncreasing { bucket: 1 })
        );
        let (a, b) = (h("k", 1).min(h("k", 2)), h("k", 1).max(h("k", 2)));
        assert_eq!(
            PagedTree::from_leaves(3, [(b, a), (a, a)]),
            Err(SummaryError::LeavesNotIncreasing)
        );
        assert_eq!(
            PagedTree::from_leaves(3, [(a, a), (a, b)]),
            Err(SummaryError::LeavesNotIncreasing)
        );
    }

    enum Fault {
        Fail,
        Foreign,
        Unsorted,
        Forgetful,
    }

    struct FaultyStore {
        inner: Store,
        fault: Fault,
    }

    impl LeafStore for FaultyStore {
        type Error = String;

        fn bucket_leaves(
            &self,
            prefix: &Hash32,
            bits: usize,
        ) -> Result<Vec<(Hash32, Hash32)>, String> {
            let mut leaves = self.inner.bucket_leaves(prefix, bits).unwrap();
            match self.fault {
                Fault::Fail => return Err("disk on fire".into()),
                Fault::Foreign => leaves.push((key_with(prefix.0[0] ^ 0x80, 1, 0), h("v", 0))),
                Fault::Unsorted => leaves.reverse(),
                Fault::Forgetful => {
                    leaves.pop();
                }
            }
            Ok(leaves)
        }
    }

    #[test]
    fn misbehaving_stores_give_errors_and_leave_the_tree_unchanged() {
        // Bucket 0x5c holds three keys; 0xff.. is alone in its bucket.
        let inner: Store = [1u8, 2, 3]
            .iter()
            .map(|b| (key_with(0x5c, 31, *b), h("v", *b as u64)))
            .chain([(Hash32([0xff; 32]), h("v", 9))])
            .collect();
        let t = paged_of(8, &inner);
        let probe = key_with(0x5c, 31, 2);
        // The new key's bucket (0x01) is empty, so not read.
        let updates = [
            (probe, Some(h("v", 7))),
            (key_with(0x01, 31, 0), Some(h("v", 0))),
        ];
        for (fault, expected) in [
            (
                Fault::Fail,
                PagedTreeError::Store("disk on fire".to_string()),
            ),
            (Fault::Foreign, PagedTreeError::BadBucket { bucket: 0x5c }),
            (Fault::Unsorted, PagedTreeError::BadBucket { bucket: 0x5c }),
            (
                Fault::Forgetful,
                PagedTreeError::Inconsistent { bucket: 0x5c },
            ),
        ] {
            let store = FaultyStore {
                inner: inner.clone(),
                fault,
            };
            let mut u = t.clone();
            assert_eq!(u.apply(&store, updates), Err(expected.clone()));
            assert_eq!(u, t);
            assert_eq!(u.prove(&store, &probe), Err(expected.clone()));
            if !matches!(store.fault, Fault::Forgetful) {
                assert_eq!(u.get(&store, &probe), Err(expected));
            }
        }
        // A store missing a collapsed leaf: its proofs fail, not panic.
        let store = FaultyStore {
            inner: inner.clone(),
            fault: Fault::Forgetful,
        };
        assert_eq!(
            t.prove(&store, &Hash32([0xfe; 32])),
            Err(PagedTreeError::Inconsistent { bucket: 0xff })
        );
    }

    // ---- properties ------------------------------------------------------------

    /// Keys: random; families sharing long prefixes (down to the last bit);
    /// keys all in one bucket for D <= 8; keys splitting in the first byte,
    /// around bucket boundaries.
    fn key() -> impl Strategy<Value = Hash32> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(Hash32),
            any::<u8>().prop_map(|b| key_with(0, 31, b)),
            (0usize..32, 0u8..4).prop_map(|(pos, b)| key_with(0xaa, pos, b)),
            any::<[u8; 32]>().prop_map(|mut k| {
                k[0] = 0x5c;
                Hash32(k)
            }),
            any::<u8>().prop_map(|b| key_with(0x33, 0, b)),
        ]
    }

    fn value() -> impl Strategy<Value = Hash32> {
        (0u64..6).prop_map(|i| h("v", i))
    }

    /// An update: of an existing key (selector 0, when there is one) or of
    /// a key from `key()`; `None` removes.
    type Op = (u8, prop::sample::Index, Hash32, Option<Hash32>);

    fn op() -> impl Strategy<Value = Op> {
        (
            0u8..3,
            any::<prop::sample::Index>(),
            key(),
            prop::option::weighted(0.7, value()),
        )
    }

    fn resolve(store: &Store, batch: &[Op]) -> Vec<(Hash32, Option<Hash32>)> {
        let keys: Vec<Hash32> = store.keys().copied().collect();
        batch
            .iter()
            .map(|(mode, index, key, value)| {
                let k = if *mode == 0 && !keys.is_empty() {
                    *index.get(&keys)
                } else {
                    *key
                };
                (k, *value)
            })
            .collect()
    }

    /// Runs batches through a paged tree of depth `bits`, a
    /// SparseMerkleTree and a map, as a node would: apply against the store
    /// before the batch, then write the leaves and persist the changed
    /// bucket summaries.
    fn run(
        bits: usize,
        initial: Store,
        batches: Vec<Vec<Op>>,
        probes: Vec<Hash32>,
    ) -> Result<(), TestCaseError> {
        let mut store = initial;
        let mut tree = paged_of(bits, &store);
        let mut smt = smt_of(&store);
        let mut persisted: BTreeMap<u32, Summary> = tree.bucket_summaries().collect();
        // The same batches over a delta, the first tree left as it is (how
        // a node executes blocks that are not final).
        let unmerged = tree.clone();
        let mut delta = TreeDelta::default();
        check(&tree, &store, &probes)?;
        for batch in batches {
            let updates = resolve(&store, &batch);
            let before = tree.clone();
            let (own, changed_over) = unmerged
                .apply_over(&[&delta], &store, updates.iter().copied())
                .unwrap();
            delta.extend(&own);
            let changed = tree.apply(&store, updates.iter().copied()).unwrap();
            prop_assert_eq!(&changed_over, &changed);
            write(&mut store, &updates);
            smt.apply(updates.iter().copied());
            prop_assert_eq!(tree.root_hash(), smt.root_hash());
            // Exactly the buckets whose summary changed, in order.
            let expected: Vec<(u32, Summary)> = (0..tree.bucket_count() as u32)
                .filter(|b| before.bucket_summary(*b) != tree.bucket_summary(*b))
                .map(|b| (b, tree.bucket_summary(b).unwrap()))
                .collect();
            prop_assert_eq!(&changed, &expected);
            for (b, s) in changed {
                if s == Summary::EMPTY {
                    persisted.remove(&b);
                } else {
                    persisted.insert(b, s);
                }
            }
            prop_assert_eq!(
                &PagedTree::from_bucket_summaries(bits, persisted.clone()).unwrap(),
                &tree
            );
            let mut probes = probes.clone();
            probes.extend(updates.iter().map(|(k, _)| *k));
            check(&tree, &store, &probes)?;
            prop_assert_eq!(unmerged.root_hash_over(&[&delta]), tree.root_hash());
            for key in &probes {
                prop_assert_eq!(
                    unmerged.prove_over(&[&delta], &store, key).unwrap(),
                    tree.prove(&store, key).unwrap()
                );
            }
            let mut merged = unmerged.clone();
            merged.merge(&delta);
            prop_assert_eq!(&merged, &tree);
            let mut from_buckets = unmerged.clone();
            for (b, s) in unmerged.delta_buckets(&delta) {
                from_buckets.set(from_buckets.bucket_position(b), s);
            }
            from_buckets.rebuild_upper();
            prop_assert_eq!(&from_buckets, &tree);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(192))]

        #[test]
        fn same_root_and_proofs_as_sparse_merkle_tree(
            bits in 0usize..=8,
            initial in prop::collection::btree_map(key(), value(), 0..40),
            batches in prop::collection::vec(prop::collection::vec(op(), 0..24), 1..5),
            probes in prop::collection::vec(key(), 0..6),
        ) {
            run(bits, initial, batches, probes)?;
        }

        #[test]
        fn small_trees(
            bits in 0usize..=8,
            initial in prop::collection::btree_map(key(), value(), 0..3),
            batches in prop::collection::vec(prop::collection::vec(op(), 0..4), 1..6),
            probes in prop::collection::vec(key(), 0..4),
        ) {
            run(bits, initial, batches, probes)?;
        }

        #[test]
        fn all_keys_in_one_bucket(
            bits in 0usize..=8,
            initial in prop::collection::btree_map(
                any::<[u8; 30]>().prop_map(|t| {
                    let mut k = [0x5c; 32];
                    k[2..].copy_from_slice(&t);
                    Hash32(k)
                }),
                value(),
                0..30,
            ),
            batches in prop::collection::vec(prop::collection::vec(op(), 0..16), 1..4),
        ) {
            run(bits, initial, batches, vec![Hash32([0x5c; 32])])?;
        }
    }
}
