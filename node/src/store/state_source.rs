//! The ledger state on disk: the node's [`StateSource`].
//!
//! The state lives in the store, not in memory. Three key spaces hold it
//! (see the table in [`super`]):
//!
//! - `s`: one record per entry, keyed by the entry's key hash (its path in
//!   the state tree): the value hash, then the encoded key and value
//!   ([`state_record`]). Keyed by hash, the records are also the tree's
//!   leaves in key-hash order, so a bucket of the tree is one range read
//!   and a changed entry is one write;
//! - `q`: an ordered index of the entries read by range or by kind: the
//!   two time-ordered queues (expiry, receipt pruning), with keys that sort
//!   as the state keys do (the canonical encoding is little endian, so
//!   encoded keys do not sort by time), and the claims and proposals;
//! - `p`: the summary of each non-empty bucket of the tree's top
//!   ([`PagedTree`]), from which the top is rebuilt at open.
//!
//! Memory holds only the top of the tree (`33 × 2^(D+1)` bytes for bucket
//! depth `D`) and the engine's page cache, whatever the number of entries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use alliance_protocol::encoding;
use alliance_protocol::smt_paged::{PagedTree, Summary};
use alliance_protocol::state::{EntryKind, PruneQueue, StateKey, StateSource, StateValue};
use alliance_protocol::Hash32;
use alliance_protocol::MerchantId;

use super::kv::{scan_prefix, Batch, Kv};
use super::leaf_cache::{LeafCache, Lookup};
use super::{decode, key, StoreError, STATE};

/// Prefix of the ordered index.
pub(super) const QUEUE: u8 = b'q';
/// Prefix of the bucket summaries.
pub(super) const BUCKET: u8 = b'p';
/// The bucket depth `D` of the store's tree (one byte).
pub(super) const META_TREE_BITS: &[u8] = b"mtree_bits";

/// Bucket depth of a new store's tree: 65,536 buckets, 4.3 MB in memory,
/// a few leaves a bucket up to about a million entries. A store meant for
/// tens of millions of entries is created deeper by a bulk load
/// ([`super::bulk::NewStore`]): `D ≈ log2(entries / 12)`.
pub const DEFAULT_TREE_BITS: usize = 16;

const QUEUE_EXPIRY: u8 = 0;
const QUEUE_RECEIPT: u8 = 1;
const INDEX_CLAIM: u8 = 2;
const INDEX_PROPOSAL: u8 = 3;
const QUEUE_ORDER: u8 = 4;
/// One more than the largest index number.
const INDEXES: usize = 5;

/// The `q` key of an indexed entry: the queues sort as [`StateKey`]'s
/// order (time, then owner; time, then merchant, then receipt reference);
/// claims and proposals are listed by kind. `None` for other keys.
pub(super) fn queue_key(k: &StateKey) -> Option<Vec<u8>> {
    match k {
        StateKey::Claim(..) => {
            let mut out = vec![QUEUE, INDEX_CLAIM];
            out.extend_from_slice(&encoding::encode(k));
            Some(out)
        }
        StateKey::Proposal(id) => {
            let mut out = vec![QUEUE, INDEX_PROPOSAL];
            out.extend_from_slice(&id.to_be_bytes());
            Some(out)
        }
        StateKey::Expiry(t, owner) => {
            let mut out = Vec::with_capacity(2 + 8 + 32);
            out.extend_from_slice(&[QUEUE, QUEUE_EXPIRY]);
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&owner.0);
            Some(out)
        }
        StateKey::ReceiptQueue(t, merchant, reference) => {
            Some(prune_queue_key(QUEUE_RECEIPT, *t, merchant, reference))
        }
        StateKey::OrderQueue(t, merchant, reference) => {
            Some(prune_queue_key(QUEUE_ORDER, *t, merchant, reference))
        }
        _ => None,
    }
}

/// The `q` key of a prune queue's entry: time, merchant, reference.
fn prune_queue_key(queue: u8, t: u64, merchant: &MerchantId, reference: &str) -> Vec<u8> {
    // Merchant ids hold no zero byte, so the separator keeps a shorter id
    // first, as string order does.
    let mut out = Vec::with_capacity(2 + 8 + merchant.as_str().len() + 1 + reference.len());
    out.extend_from_slice(&[QUEUE, queue]);
    out.extend_from_slice(&t.to_be_bytes());
    out.extend_from_slice(merchant.as_str().as_bytes());
    out.push(0);
    out.extend_from_slice(reference.as_bytes());
    out
}

/// The `s` key of an entry: its key hash.
pub fn state_record_key(k: &StateKey) -> Vec<u8> {
    record_key(&k.tree_key())
}

/// The `s` record key of the entry whose key hash is `key_hash`.
fn record_key(key_hash: &Hash32) -> Vec<u8> {
    key(STATE, &key_hash.0)
}

/// The `s` record of an entry: its value hash (the tree leaf's), then the
/// canonical encoding of `(key, value)`.
pub fn state_record(k: &StateKey, v: &StateValue) -> Vec<u8> {
    state_record_hashed(&v.tree_value(), k, v)
}

/// [`state_record`] with the value hash already computed.
pub fn state_record_hashed(value_hash: &Hash32, k: &StateKey, v: &StateValue) -> Vec<u8> {
    let mut out = value_hash.0.to_vec();
    out.extend_from_slice(&encoding::encode(&(k, v)));
    out
}

/// An `s` record's entry (the hash is not checked: [`super::Store::verify_state`]
/// checks it).
pub fn parse_state_record(record: &[u8]) -> Result<(StateKey, StateValue), StoreError> {
    let body = record
        .get(32..)
        .ok_or_else(|| StoreError::Corrupt("state record shorter than its hash".into()))?;
    decode(body, "state record")
}

/// The writes of one state entry (`None`: deleted): its record and its
/// index key. Returns the entry's tree leaf: its key hash, and its value
/// hash (`None`: no leaf any more).
pub(super) fn write_entry(
    batch: &mut Batch,
    k: &StateKey,
    v: Option<&StateValue>,
) -> (Hash32, Option<Hash32>) {
    let key_hash = k.tree_key();
    let value_hash = match v {
        Some(v) => {
            let value_hash = v.tree_value();
            batch.put(
                record_key(&key_hash),
                state_record_hashed(&value_hash, k, v),
            );
            Some(value_hash)
        }
        None => {
            batch.delete(record_key(&key_hash));
            None
        }
    };
    entry_writes(batch, k, v);
    (key_hash, value_hash)
}

/// The `p` key of a bucket.
pub(super) fn bucket_key(bucket: u32) -> Vec<u8> {
    key(BUCKET, &bucket.to_be_bytes())
}

/// Adds the index write of one state entry (`None`: deleted).
pub(super) fn entry_writes(batch: &mut Batch, k: &StateKey, v: Option<&StateValue>) {
    if let Some(q) = queue_key(k) {
        match v {
            Some(_) => batch.put(q, encoding::encode(k)),
            None => batch.delete(q),
        }
    }
}

/// Adds the bucket summary writes (an empty bucket's record is removed).
pub(super) fn bucket_writes(batch: &mut Batch, buckets: &[(u32, Summary)]) {
    for (bucket, summary) in buckets {
        if *summary == Summary::EMPTY {
            batch.delete(bucket_key(*bucket));
        } else {
            batch.put(bucket_key(*bucket), &summary.to_bytes()[..]);
        }
    }
}

/// The store's state as a [`StateSource`]. Reads see the store's last
/// commit; the height is the store's tip, moved by the store's commit.
pub struct KvSource {
    pub(super) db: Arc<dyn Kv>,
    pub(super) height: Arc<AtomicU64>,
    /// Buckets last read, shared with the store, whose state writes drop
    /// the buckets they change.
    pub(super) leaf_cache: Arc<LeafCache>,
    /// What the last reads of the two time-ordered queues found.
    pub(super) floors: QueueFloors,
}

/// The time below which a time-ordered queue (expiry, receipt pruning) is
/// known to hold no key, at a given height of the source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Floor {
    height: u64,
    below: u64,
}

/// What the reads of the two time-ordered queues found, so that a read of
/// a queue's head that the last read showed empty costs no range read.
///
/// Every block reads both heads (the expiry sweep and the receipt pruning),
/// and nearly always finds nothing due. An LSM engine's range read opens
/// and seeks every table and the memtable whatever the range holds: under
/// sustained load the empty expiry read alone took 6.5 % of a node's CPU
/// (docs/benchmarks.md). The source changes only when the store's state
/// height moves, so a floor holds for the height it was read at.
#[derive(Default)]
pub(super) struct QueueFloors {
    floors: Mutex<[Option<Floor>; INDEXES]>,
}

impl QueueFloors {
    /// Whether the queue is known to hold no key below `below` at `height`.
    fn empty_below(&self, queue: u8, height: u64, below: u64) -> bool {
        let floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
        floors[queue as usize].is_some_and(|f| f.height == height && below <= f.below)
    }

    /// Records that the queue holds no key below `below` at `height`.
    fn record(&self, queue: u8, height: u64, below: u64) {
        let mut floors = self.floors.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut floors[queue as usize];
        match slot {
            Some(f) if f.height == height && f.below >= below => {}
            _ => *slot = Some(Floor { height, below }),
        }
    }
}

/// The time of a time-ordered queue's key.
fn queue_time(k: &StateKey) -> Option<u64> {
    match k {
        StateKey::Expiry(t, _) | StateKey::ReceiptQueue(t, ..) | StateKey::OrderQueue(t, ..) => {
            Some(*t)
        }
        _ => None,
    }
}

/// A read the state machine cannot do without failed: see
/// [`StateSource`]'s contract.
fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("ledger state on disk: {what}: {e}; the node stops, and restarts from its last durable block")
}

impl KvSource {
    /// The source of the store `db` at `height`.
    pub(super) fn new(db: Arc<dyn Kv>, height: Arc<AtomicU64>, leaf_cache: Arc<LeafCache>) -> Self {
        KvSource {
            db,
            height,
            leaf_cache,
            floors: QueueFloors::default(),
        }
    }

    /// The first `limit` keys of a time-ordered queue with a time below
    /// `below`, skipping the read when the queue's floor shows none.
    fn queue_head(&self, queue: u8, below: u64, limit: usize) -> Vec<StateKey> {
        // Read the height first: a commit moves it after its writes, so a
        // read that races one is recorded at the older height and not used
        // once the height has moved.
        let height = self.height.load(Ordering::Acquire);
        if limit == 0 || self.floors.empty_below(queue, height, below) {
            return Vec::new();
        }
        let keys = self.queue_keys(queue, Some(below), limit);
        let floor = match keys.first() {
            None => below,
            Some(first) => queue_time(first).expect("a time-ordered queue's key"),
        };
        self.floors.record(queue, height, floor);
        keys
    }

    fn queue_keys(&self, queue: u8, below: Option<u64>, limit: usize) -> Vec<StateKey> {
        let lo = [QUEUE, queue];
        let hi = match below {
            Some(t) => {
                let mut hi = vec![QUEUE, queue];
                hi.extend_from_slice(&t.to_be_bytes());
                hi
            }
            None => vec![QUEUE, queue + 1],
        };
        self.db
            .range(&lo, &hi, false)
            .take(limit)
            .map(|item| {
                let (_, v) = item.unwrap_or_else(|e| fatal("queue read", e));
                decode(&v, "queue key").unwrap_or_else(|e| fatal("queue key", e))
            })
            .collect()
    }
}

impl StateSource for KvSource {
    fn height(&self) -> u64 {
        self.height.load(Ordering::Acquire)
    }

    fn get(&self, k: &StateKey) -> Option<StateValue> {
        read_entry(self.db.as_ref(), k).unwrap_or_else(|e| fatal("read", e))
    }

    fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        match until_ms.checked_add(1) {
            Some(below) => self.queue_head(QUEUE_EXPIRY, below, usize::MAX),
            None => self.queue_keys(QUEUE_EXPIRY, None, usize::MAX),
        }
    }

    fn queue_before(&self, queue: PruneQueue, before_ms: u64, limit: usize) -> Vec<StateKey> {
        let index = match queue {
            PruneQueue::Receipt => QUEUE_RECEIPT,
            PruneQueue::Order => QUEUE_ORDER,
        };
        self.queue_head(index, before_ms, limit)
    }

    fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)> {
        let index = match kind {
            EntryKind::Claim => INDEX_CLAIM,
            EntryKind::Proposal => INDEX_PROPOSAL,
        };
        let mut out: Vec<(StateKey, StateValue)> = self
            .queue_keys(index, None, usize::MAX)
            .into_iter()
            .map(|k| {
                let v = self
                    .get(&k)
                    .unwrap_or_else(|| fatal("index", format!("{k:?} is indexed but absent")));
                (k, v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn leaves(&self, low: &Hash32, high: &Hash32) -> Vec<(Hash32, Hash32)> {
        let epoch = match self.leaf_cache.get(low, high) {
            Lookup::Hit(leaves) => return leaves,
            Lookup::Miss(epoch) => epoch,
        };
        let lo = key(STATE, &low.0);
        let mut hi = key(STATE, &high.0);
        hi.push(0); // inclusive of `high`
        let mut out = Vec::new();
        self.db
            .for_each_in(&lo, &hi, &mut |k, v| {
                out.push(leaf_of(k, v).unwrap_or_else(|e| fatal("state record", e)));
                Ok(())
            })
            .unwrap_or_else(|e| fatal("leaf read", e));
        self.leaf_cache.insert(epoch, *low, *high, &out);
        out
    }
}

/// The entry under `k`, read from its record (whose key must be `k`).
pub(super) fn read_entry(db: &dyn Kv, k: &StateKey) -> Result<Option<StateValue>, StoreError> {
    let Some(record) = db.get(&state_record_key(k))? else {
        return Ok(None);
    };
    let (stored, value) = parse_state_record(&record)?;
    if stored != *k {
        return Err(StoreError::Corrupt(format!(
            "the record of {k:?} holds {stored:?}"
        )));
    }
    Ok(Some(value))
}

/// The tree leaf of an `s` record: its key hash and value hash.
fn leaf_of(k: &[u8], v: &[u8]) -> Result<(Hash32, Hash32), StoreError> {
    match (hash_at(k, 1), v.get(..32).and_then(|h| hash_at(h, 0))) {
        (Some(k), Some(v)) => Ok((k, v)),
        _ => Err(StoreError::Corrupt("state record key or hash".into())),
    }
}

/// The 32 bytes of `bytes` from `at`, if exactly that many remain.
fn hash_at(bytes: &[u8], at: usize) -> Option<Hash32> {
    let rest = bytes.get(at..)?;
    Some(Hash32(rest.try_into().ok()?))
}

/// The tree's bucket depth recorded in the store, if any.
pub(super) fn stored_bits(db: &dyn Kv) -> Result<Option<usize>, StoreError> {
    match db.get(META_TREE_BITS)? {
        None => Ok(None),
        Some(b) if b.len() == 1 => Ok(Some(b[0] as usize)),
        Some(_) => Err(StoreError::Corrupt("tree depth record".into())),
    }
}

/// The top of the tree from the bucket summaries.
pub(super) fn load_tree(db: &dyn Kv, bits: usize) -> Result<PagedTree, StoreError> {
    let mut buckets = Vec::new();
    for item in scan_prefix(db, &[BUCKET]) {
        let (k, v) = item?;
        let bucket = k
            .get(1..)
            .and_then(|b| <[u8; 4]>::try_from(b).ok())
            .map(u32::from_be_bytes)
            .ok_or_else(|| StoreError::Corrupt("bucket key".into()))?;
        let summary = Summary::from_bytes(&v)
            .map_err(|e| StoreError::Corrupt(format!("bucket {bucket}: {e}")))?;
        buckets.push((bucket, summary));
    }
    PagedTree::from_bucket_summaries(bits, buckets)
        .map_err(|e| StoreError::Corrupt(format!("bucket summaries: {e}")))
}

/// Moves a store written before the state moved to disk (entries in `s`
/// keyed by their encoded key, no index, no tree records) to this layout,
/// with a tree of depth `bits`, and returns the tree: one atomic batch, so
/// a crash leaves the old layout or the new one. Such stores held their
/// whole state in memory, so this holds it in memory once too.
pub(super) fn migrate_legacy(db: &dyn Kv, bits: usize) -> Result<PagedTree, StoreError> {
    let mut batch = Batch::default();
    let mut leaves = Vec::new();
    for prefix in [QUEUE, BUCKET] {
        for item in scan_prefix(db, &[prefix]) {
            batch.delete(item?.0);
        }
    }
    for item in scan_prefix(db, &[STATE]) {
        let (k, v) = item?;
        let sk: StateKey = decode(&k[1..], "state key")?;
        let sv: StateValue = decode(&v, format!("state value of {sk:?}"))?;
        batch.delete(k);
        write_entry(&mut batch, &sk, Some(&sv));
        leaves.push((sk.tree_key(), sv.tree_value()));
    }
    leaves.sort_unstable();
    let tree = PagedTree::from_leaves(bits, leaves)
        .map_err(|e| StoreError::Corrupt(format!("state tree: {e}")))?;
    let buckets: Vec<(u32, Summary)> = tree.bucket_summaries().collect();
    bucket_writes(&mut batch, &buckets);
    batch.put(META_TREE_BITS, vec![bits as u8]);
    // A legacy key is deleted and its record put under another key; the
    // batch keeps each key's writes in order, and the two never collide
    // (a record key is a key hash).
    db.apply_durable(batch)?;
    Ok(tree)
}

/// Writes `entries` (a new store's) as records and index keys, not yet
/// durably; [`rebucket`] then builds the tree and makes it all durable.
pub(super) fn write_entries(
    db: &dyn Kv,
    entries: impl IntoIterator<Item = (StateKey, StateValue)>,
) -> Result<(), StoreError> {
    let mut batch = Batch::default();
    for (k, v) in entries {
        write_entry(&mut batch, &k, Some(&v));
    }
    db.apply(batch)?;
    Ok(())
}

/// The tree of depth `bits` over the records in `s`, read once in key-hash
/// order (one bucket in memory at a time), and how many there are.
/// `check` sees each record first and may refuse it.
fn tree_of_records(
    db: &dyn Kv,
    bits: usize,
    mut check: impl FnMut(&[u8], &[u8]) -> Result<(), StoreError>,
) -> Result<(PagedTree, u64), StoreError> {
    let (mut leaves, mut bad) = (0u64, None);
    let tree = PagedTree::from_leaves(
        bits,
        scan_prefix(db, &[STATE]).map_while(|item| {
            let pair = item
                .map_err(StoreError::from)
                .and_then(|(k, v)| check(&k, &v).and_then(|()| leaf_of(&k, &v)));
            match pair {
                Ok(pair) => {
                    leaves += 1;
                    Some(pair)
                }
                Err(e) => {
                    bad = Some(e);
                    None
                }
            }
        }),
    )
    .map_err(|e| StoreError::Corrupt(format!("state tree leaves: {e}")))?;
    match bad {
        Some(e) => Err(e),
        None => Ok((tree, leaves)),
    }
}

/// Rebuilds the tree of depth `bits` from the records in `s` (a new store
/// or a bulk load), rewriting the bucket summaries,
/// durably. Reads every record once, in bounded memory.
pub(super) fn rebucket(db: &dyn Kv, bits: usize) -> Result<PagedTree, StoreError> {
    let (tree, _) = tree_of_records(db, bits, |_, _| Ok(()))?;
    let mut batch = Batch::default();
    for item in scan_prefix(db, &[BUCKET]) {
        batch.delete(item?.0);
    }
    let buckets: Vec<(u32, Summary)> = tree.bucket_summaries().collect();
    bucket_writes(&mut batch, &buckets);
    batch.put(META_TREE_BITS, vec![bits as u8]);
    db.apply_durable(batch)?;
    Ok(tree)
}

/// Checks every `s` record (its key hash and value hash are its entry's,
/// its index key is there) and that the index holds nothing else, and
/// returns the root of the records' leaves. Reads everything once, in
/// bounded memory (`alliance-node verify`; opening checks only the tree's
/// top against the tip).
pub(super) fn verify_records(db: &dyn Kv, bits: usize) -> Result<Hash32, StoreError> {
    let mut indexed = 0u64;
    let (tree, _) = tree_of_records(db, bits, |k, record| {
        let (sk, sv) = parse_state_record(record)?;
        let (key_hash, value_hash) = leaf_of(k, record)?;
        if key_hash != sk.tree_key() || value_hash != sv.tree_value() {
            return Err(StoreError::Corrupt(format!(
                "the entry {sk:?} differs from its leaf in the state tree: the stored state no longer matches the state root"
            )));
        }
        if let Some(q) = queue_key(&sk) {
            if db.get(&q)?.is_none() {
                return Err(StoreError::Corrupt(format!("{sk:?} is not indexed")));
            }
            indexed += 1;
        }
        Ok(())
    })?;
    if scan_prefix(db, &[QUEUE]).count() as u64 != indexed {
        return Err(StoreError::Corrupt(
            "the index holds keys that are not entries".into(),
        ));
    }
    Ok(tree.root_hash())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemKv;
    use alliance_protocol::Keypair;

    fn source() -> (Arc<MemKv>, KvSource) {
        let db = Arc::new(MemKv::default());
        let source = KvSource::new(
            db.clone(),
            Arc::new(AtomicU64::new(1)),
            Arc::new(LeafCache::new(1 << 20)),
        );
        (db, source)
    }

    fn put(db: &MemKv, k: StateKey, v: StateValue) {
        let mut batch = Batch::default();
        write_entry(&mut batch, &k, Some(&v));
        db.apply_durable(batch).unwrap();
    }

    /// A queue read that found nothing due is not repeated at the same
    /// height, and is repeated once the height moves: what a state write
    /// added is then found.
    #[test]
    fn an_empty_queue_head_is_read_again_only_after_the_height_moves() {
        let (db, source) = source();
        let (a, b) = (
            Keypair::from_label("a").public(),
            Keypair::from_label("b").public(),
        );
        put(&db, StateKey::Expiry(100, a), StateValue::Expiry);
        assert!(source.expiry_keys_until(50).is_empty());
        assert_eq!(
            source.expiry_keys_until(100),
            vec![StateKey::Expiry(100, a)]
        );
        // The floor is the first due key's time: a read below it is skipped,
        // so a key written without moving the height is not seen...
        put(&db, StateKey::Expiry(10, b), StateValue::Expiry);
        assert!(source.expiry_keys_until(50).is_empty());
        // ...and is, once the store's commit moves the height.
        source.height.store(2, Ordering::Release);
        assert_eq!(source.expiry_keys_until(50), vec![StateKey::Expiry(10, b)]);
        assert_eq!(
            source.expiry_keys_until(100),
            vec![StateKey::Expiry(10, b), StateKey::Expiry(100, a)]
        );
    }

    /// The receipt queue's floor respects the read's limit: a limited read
    /// that returned keys says nothing of the keys after them.
    #[test]
    fn a_limited_receipt_read_keeps_what_it_did_not_return() {
        let (db, source) = source();
        let m = MerchantId::new("coffee").unwrap();
        for t in [5u64, 6, 7] {
            let k = StateKey::ReceiptQueue(t, m.clone(), format!("r{t}"));
            put(&db, k, StateValue::ReceiptQueue);
        }
        let receipts = |before, limit| source.queue_before(PruneQueue::Receipt, before, limit);
        assert_eq!(receipts(10, 0), vec![]);
        assert_eq!(receipts(10, 1).len(), 1);
        assert_eq!(receipts(10, 5).len(), 3);
        assert_eq!(receipts(6, 5).len(), 1);
        assert!(receipts(5, 5).is_empty());
        // The order queue is another queue with its own floor.
        let order = StateKey::OrderQueue(3, m.clone(), "r3".into());
        put(&db, order.clone(), StateValue::OrderQueue);
        assert_eq!(source.queue_before(PruneQueue::Order, 10, 5), vec![order]);
    }
}
