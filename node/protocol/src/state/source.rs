//! Where a [`LedgerState`](super::LedgerState)'s committed entries live.
//!
//! A state is either held in memory (genesis, auditors, replays, tests: a
//! map and a [`SparseMerkleTree`](crate::smt::SparseMerkleTree)) or read
//! from a [`StateSource`] (a node's store) with only the top of its tree in
//! memory ([`PagedTree`]). A state on a source may carry [`Layers`]: the
//! changes of blocks executed on top of the source but not final, so that a
//! validator can build on a block it has not committed. Reads go through
//! the layers, then the source.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, RwLock};

use super::keys::{StateKey, StateValue};
use super::overlay::ChangeSet;
use crate::crypto::{Hash32, PublicKey};
use crate::merchant::MerchantId;
use crate::smt_paged::{prefix_bounds, LeafStore, PagedTree, TreeDelta};

/// Kinds of entries that [`StateSource::entries_of`] lists whole (they are
/// few: one per merchant pair, one per proposal).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    /// [`StateKey::Claim`] entries.
    Claim,
    /// [`StateKey::Proposal`] entries.
    Proposal,
}

impl EntryKind {
    /// Whether `key` is of this kind.
    pub fn holds(self, key: &StateKey) -> bool {
        matches!(
            (self, key),
            (EntryKind::Claim, StateKey::Claim(..)) | (EntryKind::Proposal, StateKey::Proposal(_))
        )
    }
}

/// The committed state entries and state-tree leaves of one height, read
/// from storage. A node's store implements it; [`MemSource`] is the
/// in-memory one (tests and tools).
///
/// Reads cannot fail: a source that cannot read (an I/O failure, a
/// corrupt record) panics with what failed. The state machine has no way
/// to continue without its state, and a node restarts from its durable
/// store, which is atomic per block.
pub trait StateSource: Send + Sync {
    /// The height whose state the source holds.
    fn height(&self) -> u64;
    /// The entry under `key`.
    fn get(&self, key: &StateKey) -> Option<StateValue>;
    /// Every [`StateKey::Expiry`] key with a time at or before `until_ms`,
    /// in key order.
    fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey>;
    /// The first `limit` keys of a prune queue ([`StateKey::ReceiptQueue`]
    /// or [`StateKey::OrderQueue`]) with a time before `before_ms`, in key
    /// order.
    fn queue_before(&self, queue: PruneQueue, before_ms: u64, limit: usize) -> Vec<StateKey>;
    /// Every entry of `kind`, in key order.
    fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)>;
    /// The state-tree leaves `(key hash, value hash)` with a key hash in
    /// `low ..= high`, in key-hash order.
    fn leaves(&self, low: &Hash32, high: &Hash32) -> Vec<(Hash32, Hash32)>;
}

/// The two queues of references used inside the receipt window, pruned
/// oldest first once the window has passed them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PruneQueue {
    /// [`StateKey::ReceiptQueue`]: issuance receipts.
    Receipt,
    /// [`StateKey::OrderQueue`]: redemption orders.
    Order,
}

impl PruneQueue {
    /// The queue's smallest key.
    fn start(self) -> StateKey {
        // "a" sorts first among merchant ids (1-16 of a-z 0-9 -, starting
        // with a letter) and "" first among strings.
        let a = MerchantId::new("a").expect("a valid merchant id");
        match self {
            PruneQueue::Receipt => StateKey::ReceiptQueue(0, a, String::new()),
            PruneQueue::Order => StateKey::OrderQueue(0, a, String::new()),
        }
    }

    /// Whether `key` is this queue's, with a time before `before_ms`.
    fn holds_before(self, key: &StateKey, before_ms: u64) -> bool {
        match (self, key) {
            (PruneQueue::Receipt, StateKey::ReceiptQueue(t, ..))
            | (PruneQueue::Order, StateKey::OrderQueue(t, ..)) => *t < before_ms,
            _ => false,
        }
    }
}

/// The expiry queue up to `until_ms`, inclusive, as a key range.
fn expiry_range(until_ms: u64) -> std::ops::RangeInclusive<StateKey> {
    StateKey::Expiry(0, PublicKey([0; 32]))..=StateKey::Expiry(until_ms, PublicKey([0xff; 32]))
}

/// [`StateSource::expiry_keys_until`] over an ordered map.
pub(crate) fn map_expiry_keys_until<V>(
    map: &BTreeMap<StateKey, V>,
    until_ms: u64,
) -> Vec<StateKey> {
    map.range(expiry_range(until_ms))
        .map(|(k, _)| k.clone())
        .collect()
}

/// [`StateSource::queue_before`] over an ordered map.
pub(crate) fn map_queue_before<V>(
    map: &BTreeMap<StateKey, V>,
    queue: PruneQueue,
    before_ms: u64,
    limit: usize,
) -> Vec<StateKey> {
    map.range(queue.start()..)
        .map(|(k, _)| k)
        .take_while(|k| queue.holds_before(k, before_ms))
        .take(limit)
        .cloned()
        .collect()
}

/// Changes of blocks executed on top of a [`StateSource`] and not in it:
/// their entries, their tree leaves, and the tree's heap entries they
/// changed.
#[derive(Clone, Default)]
pub(crate) struct Layer {
    pub(crate) entries: ChangeSet,
    pub(crate) leaves: BTreeMap<Hash32, Option<Hash32>>,
    pub(crate) delta: TreeDelta,
}

impl Layer {
    fn is_empty(&self) -> bool {
        self.entries.is_empty() && self.leaves.is_empty() && self.delta.is_empty()
    }

    fn add(
        &mut self,
        changes: ChangeSet,
        leaves: Vec<(Hash32, Option<Hash32>)>,
        delta: &TreeDelta,
    ) {
        self.entries.extend(changes);
        self.leaves.extend(leaves);
        self.delta.extend(delta);
    }
}

/// The layers of a state on a source, in two parts so that a speculative
/// copy is cheap: `shared` (the final state's unwritten blocks, shared by
/// every copy) under `own` (the blocks this copy added while `shared` was
/// shared). A commit goes into `shared` while this state is its only
/// holder and `own` is empty, into `own` otherwise.
#[derive(Clone, Default)]
pub(crate) struct Layers {
    shared: Arc<Layer>,
    own: Layer,
}

impl Layers {
    /// The two parts, the older first.
    pub(crate) fn parts(&self) -> [&Layer; 2] {
        [&self.shared, &self.own]
    }

    /// The tree deltas, the older first.
    pub(crate) fn deltas(&self) -> [&TreeDelta; 2] {
        [&self.shared.delta, &self.own.delta]
    }

    /// The entry under `key` if the layers change it (`Some(None)`:
    /// deleted).
    pub(crate) fn get(&self, key: &StateKey) -> Option<&Option<StateValue>> {
        self.own
            .entries
            .get(key)
            .or_else(|| self.shared.entries.get(key))
    }

    /// Entries changed (an upper bound: a key in both parts counts twice).
    pub(crate) fn len(&self) -> usize {
        self.shared.entries.len() + self.own.entries.len()
    }

    /// Adds a block's changes on top.
    pub(crate) fn add(
        &mut self,
        changes: ChangeSet,
        leaves: Vec<(Hash32, Option<Hash32>)>,
        delta: &TreeDelta,
    ) {
        if self.own.is_empty() {
            if let Some(shared) = Arc::get_mut(&mut self.shared) {
                shared.add(changes, leaves, delta);
                return;
            }
        }
        self.own.add(changes, leaves, delta);
    }

    /// Every changed entry, the later change winning.
    pub(crate) fn merged_entries(&self) -> ChangeSet {
        let mut out = self.shared.entries.clone();
        out.extend(self.own.entries.iter().map(|(k, v)| (k.clone(), v.clone())));
        out
    }

    /// The two deltas as one.
    pub(crate) fn merged_delta(&self) -> TreeDelta {
        let mut out = self.shared.delta.clone();
        out.extend(&self.own.delta);
        out
    }
}

/// A state on a source: the source, the top of its tree, and the layers of
/// unfinal blocks on top.
#[derive(Clone)]
pub(crate) struct Paged {
    pub(crate) source: Arc<dyn StateSource>,
    pub(crate) tree: Arc<PagedTree>,
    pub(crate) layers: Layers,
}

impl Paged {
    pub(crate) fn get(&self, key: &StateKey) -> Option<Cow<'_, StateValue>> {
        match self.layers.get(key) {
            Some(v) => v.as_ref().map(Cow::Borrowed),
            None => self.source.get(key).map(Cow::Owned),
        }
    }

    pub(crate) fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        let mut keys: BTreeSet<StateKey> = self
            .source
            .expiry_keys_until(until_ms)
            .into_iter()
            .collect();
        for layer in self.layers.parts() {
            for (k, v) in layer.entries.range(expiry_range(until_ms)) {
                match v {
                    Some(_) => keys.insert(k.clone()),
                    None => keys.remove(k),
                };
            }
        }
        keys.into_iter().collect()
    }

    pub(crate) fn queue_before(
        &self,
        queue: PruneQueue,
        before_ms: u64,
        limit: usize,
    ) -> Vec<StateKey> {
        // The older part first, so that the later change of a key wins.
        let layered: Vec<(&StateKey, bool)> = self
            .layers
            .parts()
            .into_iter()
            .flat_map(|layer| {
                layer
                    .entries
                    .range(queue.start()..)
                    .take_while(|(k, _)| queue.holds_before(k, before_ms))
                    .map(|(k, v)| (k, v.is_some()))
            })
            .collect();
        // The layers delete at most this many of the source's first keys.
        let deleted = layered.iter().filter(|(_, present)| !present).count();
        let mut keys: BTreeSet<StateKey> = self
            .source
            .queue_before(queue, before_ms, limit.saturating_add(deleted))
            .into_iter()
            .collect();
        for (k, present) in layered {
            if present {
                keys.insert(k.clone());
            } else {
                keys.remove(k);
            }
        }
        keys.into_iter().take(limit).collect()
    }

    pub(crate) fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)> {
        let mut map: BTreeMap<StateKey, StateValue> =
            self.source.entries_of(kind).into_iter().collect();
        for layer in self.layers.parts() {
            for (k, v) in layer.entries.iter().filter(|(k, _)| kind.holds(k)) {
                match v {
                    Some(v) => map.insert(k.clone(), v.clone()),
                    None => map.remove(k),
                };
            }
        }
        map.into_iter().collect()
    }

    /// The entries of `keys` (distinct), read on every core: a store read
    /// is most of the cost of executing a transaction on a large state.
    pub(crate) fn prefetch(&self, keys: Vec<StateKey>) -> super::overlay::Prefetched {
        let threads = crate::cores::available().min(4);
        let read = |chunk: &[StateKey]| -> Vec<(StateKey, Option<StateValue>)> {
            chunk
                .iter()
                .map(|k| (k.clone(), self.get(k).map(Cow::into_owned)))
                .collect()
        };
        if threads < 2 || keys.len() < 64 {
            return read(&keys).into_iter().collect();
        }
        let read = &read;
        std::thread::scope(|scope| {
            let workers: Vec<_> = keys
                .chunks(keys.len().div_ceil(threads))
                .map(|chunk| scope.spawn(move || read(chunk)))
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a prefetch does not panic"))
                .collect()
        })
    }

    /// The tree's leaves as the layers change them.
    pub(crate) fn leaf_store(&self) -> LayeredLeaves<'_> {
        let [shared, own] = self.layers.parts();
        LayeredLeaves {
            source: self.source.as_ref(),
            changes: [&shared.leaves, &own.leaves],
        }
    }
}

/// A source's leaves with the layers' changes on top: the leaf store of a
/// state on a source.
pub(crate) struct LayeredLeaves<'a> {
    source: &'a dyn StateSource,
    /// The layers' leaf changes, the older first.
    changes: [&'a BTreeMap<Hash32, Option<Hash32>>; 2],
}

impl LeafStore for LayeredLeaves<'_> {
    type Error = std::convert::Infallible;

    fn bucket_leaves(
        &self,
        prefix: &Hash32,
        bits: usize,
    ) -> Result<Vec<(Hash32, Hash32)>, Self::Error> {
        let (low, high) = prefix_bounds(prefix, bits);
        let stored = self.source.leaves(&low, &high);
        if self
            .changes
            .iter()
            .all(|changes| changes.range(low..=high).next().is_none())
        {
            // Most buckets a block touches in a large state: no unwritten
            // block changed them.
            return Ok(stored);
        }
        let mut leaves: BTreeMap<Hash32, Hash32> = stored.into_iter().collect();
        for changes in self.changes {
            for (k, v) in changes.range(low..=high) {
                match v {
                    Some(v) => leaves.insert(*k, *v),
                    None => leaves.remove(k),
                };
            }
        }
        Ok(leaves.into_iter().collect())
    }
}

/// A [`StateSource`] in memory: what a node's store holds, as maps (tests
/// and tools; [`MemSource::write`] plays the store's commit).
#[derive(Default)]
pub struct MemSource {
    inner: RwLock<MemInner>,
}

#[derive(Default)]
struct MemInner {
    height: u64,
    entries: BTreeMap<StateKey, StateValue>,
    leaves: BTreeMap<Hash32, Hash32>,
}

impl MemSource {
    /// A source holding `entries` at `height`.
    pub fn new(height: u64, entries: BTreeMap<StateKey, StateValue>) -> MemSource {
        let leaves = entries
            .iter()
            .map(|(k, v)| (k.tree_key(), v.tree_value()))
            .collect();
        MemSource {
            inner: RwLock::new(MemInner {
                height,
                entries,
                leaves,
            }),
        }
    }

    /// Every leaf, in key-hash order (to build the tree of a new source).
    pub fn all_leaves(&self) -> Vec<(Hash32, Hash32)> {
        let inner = self.inner.read().expect("lock");
        inner.leaves.iter().map(|(k, v)| (*k, *v)).collect()
    }

    /// Writes the changes of the blocks up to `height` (from
    /// [`LedgerState::writes_with`](super::LedgerState::writes_with)) and
    /// moves to that height, as a store's commit does.
    pub fn write(&self, height: u64, changes: &[(StateKey, Option<StateValue>)]) {
        let mut inner = self.inner.write().expect("lock");
        for (k, v) in changes {
            match v {
                Some(v) => {
                    inner.leaves.insert(k.tree_key(), v.tree_value());
                    inner.entries.insert(k.clone(), v.clone());
                }
                None => {
                    inner.leaves.remove(&k.tree_key());
                    inner.entries.remove(k);
                }
            }
        }
        inner.height = height;
    }
}

impl StateSource for MemSource {
    fn height(&self) -> u64 {
        self.inner.read().expect("lock").height
    }
    fn get(&self, key: &StateKey) -> Option<StateValue> {
        self.inner.read().expect("lock").entries.get(key).cloned()
    }
    fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        map_expiry_keys_until(&self.inner.read().expect("lock").entries, until_ms)
    }
    fn queue_before(&self, queue: PruneQueue, before_ms: u64, limit: usize) -> Vec<StateKey> {
        map_queue_before(
            &self.inner.read().expect("lock").entries,
            queue,
            before_ms,
            limit,
        )
    }
    fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)> {
        let inner = self.inner.read().expect("lock");
        inner
            .entries
            .iter()
            .filter(|(k, _)| kind.holds(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
    fn leaves(&self, low: &Hash32, high: &Hash32) -> Vec<(Hash32, Hash32)> {
        let inner = self.inner.read().expect("lock");
        inner
            .leaves
            .range(*low..=*high)
            .map(|(k, v)| (*k, *v))
            .collect()
    }
}

/// Where a state's committed entries are: in memory, or on a source.
#[derive(Clone)]
pub(crate) enum Backing {
    /// Every entry and the whole tree in memory.
    Memory {
        entries: BTreeMap<StateKey, StateValue>,
        tree: crate::smt::SparseMerkleTree,
    },
    /// Entries and leaves on a source, the top of the tree in memory.
    Paged(Paged),
}

impl Backing {
    pub(crate) fn get(&self, key: &StateKey) -> Option<Cow<'_, StateValue>> {
        match self {
            Backing::Memory { entries, .. } => entries.get(key).map(Cow::Borrowed),
            Backing::Paged(p) => p.get(key),
        }
    }

    pub(crate) fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        match self {
            Backing::Memory { entries, .. } => map_expiry_keys_until(entries, until_ms),
            Backing::Paged(p) => p.expiry_keys_until(until_ms),
        }
    }

    pub(crate) fn queue_before(
        &self,
        queue: PruneQueue,
        before_ms: u64,
        limit: usize,
    ) -> Vec<StateKey> {
        match self {
            Backing::Memory { entries, .. } => map_queue_before(entries, queue, before_ms, limit),
            Backing::Paged(p) => p.queue_before(queue, before_ms, limit),
        }
    }

    pub(crate) fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)> {
        match self {
            Backing::Memory { entries, .. } => entries
                .iter()
                .filter(|(k, _)| kind.holds(k))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            Backing::Paged(p) => p.entries_of(kind),
        }
    }
}
