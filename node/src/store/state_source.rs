//! The ledger state on disk: the node's [`StateSource`].
//!
//! The state lives in the store, not in memory. Four key spaces hold it
//! (see the table in [`super`]):
//!
//! - `s`: every entry, encoded key to encoded value (point reads);
//! - `q`: the two time-ordered queues (expiry, receipt pruning) with keys
//!   that sort as the state keys do, for the range reads of
//!   [`StateSource::expiry_keys_until`] and
//!   [`StateSource::receipts_before`] (the canonical encoding is little
//!   endian, so `s` keys do not sort by time);
//! - `l`: the state tree's leaves, key hash to value hash;
//! - `p`: the summary of each non-empty bucket of the tree's top
//!   ([`PagedTree`]), from which the top is rebuilt at open.
//!
//! Memory holds only the top of the tree (`33 × 2^(D+1)` bytes for bucket
//! depth `D`) and the engine's page cache, whatever the number of entries.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use alliance_protocol::encoding;
use alliance_protocol::smt_paged::{PagedTree, Summary};
use alliance_protocol::state::{EntryKind, StateKey, StateSource, StateValue};
use alliance_protocol::{Hash32, MerchantId};

use super::kv::{scan_prefix, Batch, Kv};
use super::{decode, key, StoreError, STATE};

/// Prefix of the tree's leaves.
pub(super) const LEAF: u8 = b'l';
/// Prefix of the time-ordered queue keys.
pub(super) const QUEUE: u8 = b'q';
/// Prefix of the bucket summaries.
pub(super) const BUCKET: u8 = b'p';
/// The bucket depth `D` of the store's tree (one byte).
pub(super) const META_TREE_BITS: &[u8] = b"mtree_bits";

/// Bucket depth of a new store's tree: 65,536 buckets, 4.3 MB in memory,
/// a few leaves a bucket up to about a million entries. A store meant for
/// tens of millions of entries is created deeper
/// ([`super::Store::open_on_with_bits`]): `D ≈ log2(entries / 12)`.
pub const DEFAULT_TREE_BITS: usize = 16;

const QUEUE_EXPIRY: u8 = 0;
const QUEUE_RECEIPT: u8 = 1;

/// The `q` key of a queue entry: sorts as [`StateKey`]'s order (time,
/// then owner; time, then merchant, then receipt reference). `None` for
/// other keys.
pub(super) fn queue_key(k: &StateKey) -> Option<Vec<u8>> {
    match k {
        StateKey::Expiry(t, owner) => {
            let mut out = Vec::with_capacity(2 + 8 + 32);
            out.extend_from_slice(&[QUEUE, QUEUE_EXPIRY]);
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(&owner.0);
            Some(out)
        }
        StateKey::ReceiptQueue(t, merchant, receipt) => {
            // Merchant ids hold no zero byte, so the separator keeps a
            // shorter id first, as string order does.
            let mut out = Vec::with_capacity(2 + 8 + merchant.as_str().len() + 1 + receipt.len());
            out.extend_from_slice(&[QUEUE, QUEUE_RECEIPT]);
            out.extend_from_slice(&t.to_be_bytes());
            out.extend_from_slice(merchant.as_str().as_bytes());
            out.push(0);
            out.extend_from_slice(receipt.as_bytes());
            Some(out)
        }
        _ => None,
    }
}

/// The `l` key of a leaf.
pub(super) fn leaf_key(hash: &Hash32) -> Vec<u8> {
    key(LEAF, &hash.0)
}

/// The `p` key of a bucket.
pub(super) fn bucket_key(bucket: u32) -> Vec<u8> {
    key(BUCKET, &bucket.to_be_bytes())
}

/// Adds the queue and leaf writes of one state entry (`None`: deleted).
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
}

/// A read the state machine cannot do without failed: see
/// [`StateSource`]'s contract.
fn fatal(what: &str, e: impl std::fmt::Display) -> ! {
    panic!("ledger state on disk: {what}: {e}; the node stops, and restarts from its last durable block")
}

impl KvSource {
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
        let bytes = self
            .db
            .get(&key(STATE, &encoding::encode(k)))
            .unwrap_or_else(|e| fatal("read", e))?;
        Some(decode(&bytes, "state value").unwrap_or_else(|e| fatal("state value", e)))
    }

    fn expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        self.queue_keys(QUEUE_EXPIRY, until_ms.checked_add(1), usize::MAX)
    }

    fn receipts_before(&self, before_ms: u64, limit: usize) -> Vec<StateKey> {
        self.queue_keys(QUEUE_RECEIPT, Some(before_ms), limit)
    }

    fn entries_of(&self, kind: EntryKind) -> Vec<(StateKey, StateValue)> {
        let sample = match kind {
            EntryKind::Claim => {
                let m = MerchantId::new("a").expect("a valid merchant id");
                StateKey::Claim(m.clone(), m)
            }
            EntryKind::Proposal => StateKey::Proposal(0),
        };
        // The canonical encoding starts with the variant's index (4 bytes).
        let prefix = key(STATE, &encoding::encode(&sample)[..4]);
        let mut out: Vec<(StateKey, StateValue)> = scan_prefix(self.db.as_ref(), &prefix)
            .map(|item| {
                let (k, v) = item.unwrap_or_else(|e| fatal("scan", e));
                let k: StateKey = decode(&k[1..], "state key").unwrap_or_else(|e| fatal("key", e));
                let v = decode(&v, "state value").unwrap_or_else(|e| fatal("value", e));
                (k, v)
            })
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    fn leaves(&self, low: &Hash32, high: &Hash32) -> Vec<(Hash32, Hash32)> {
        let lo = leaf_key(low);
        let mut hi = leaf_key(high);
        hi.push(0); // inclusive of `high`
        self.db
            .range(&lo, &hi, false)
            .map(|item| {
                let (k, v) = item.unwrap_or_else(|e| fatal("leaf read", e));
                match (hash_at(&k, 1), hash_at(&v, 0)) {
                    (Some(k), Some(v)) => (k, v),
                    _ => fatal("leaf record", "not two 32-byte hashes"),
                }
            })
            .collect()
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

/// Writes the queue keys, leaves and bucket summaries of every entry in
/// `s` (a new store, or one written before the state moved to disk), for a
/// tree of depth `bits`, and returns the tree. Reads every entry once.
pub(super) fn build_tree_records(db: &dyn Kv, bits: usize) -> Result<PagedTree, StoreError> {
    let mut batch = Batch::default();
    // Old records of another depth or a partial build go first.
    for prefix in [LEAF, QUEUE, BUCKET] {
        for item in scan_prefix(db, &[prefix]) {
            batch.delete(item?.0);
        }
    }
    let mut leaves = Vec::new();
    for item in scan_prefix(db, &[STATE]) {
        let (k, v) = item?;
        let sk: StateKey = decode(&k[1..], "state key")?;
        let sv: StateValue = decode(&v, format!("state value of {sk:?}"))?;
        entry_writes(&mut batch, &sk, Some(&sv));
        leaves.push((sk.tree_key(), sv.tree_value()));
    }
    leaves.sort_unstable();
    for (k, v) in &leaves {
        batch.put(leaf_key(k), &v.0[..]);
    }
    let tree = PagedTree::from_leaves(bits, leaves)
        .map_err(|e| StoreError::Corrupt(format!("state tree: {e}")))?;
    let buckets: Vec<(u32, Summary)> = tree.bucket_summaries().collect();
    bucket_writes(&mut batch, &buckets);
    batch.put(META_TREE_BITS, vec![bits as u8]);
    db.apply_durable(batch)?;
    Ok(tree)
}

/// The tree of depth `bits` over the leaves in `l`, read once in key order
/// (one bucket in memory at a time), and how many leaves there are.
fn tree_of_stored_leaves(db: &dyn Kv, bits: usize) -> Result<(PagedTree, u64), StoreError> {
    let (mut leaves, mut bad) = (0u64, None);
    let tree = PagedTree::from_leaves(
        bits,
        scan_prefix(db, &[LEAF]).map_while(|item| {
            let pair = item.map_err(StoreError::from).and_then(|(k, v)| {
                match (hash_at(&k, 1), hash_at(&v, 0)) {
                    (Some(k), Some(v)) => Ok((k, v)),
                    _ => Err(StoreError::Corrupt("leaf record".into())),
                }
            });
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

/// Rebuilds the tree of depth `bits` from the leaves in `l` (a change of
/// depth, or a bulk load), rewriting the bucket summaries. Reads every leaf
/// once, in bounded memory.
pub(super) fn rebucket(db: &dyn Kv, bits: usize) -> Result<PagedTree, StoreError> {
    let (tree, _) = tree_of_stored_leaves(db, bits)?;
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

/// Checks that the stored entries, leaves and queue keys agree, and returns
/// the root of the leaves. Reads everything once, in bounded memory
/// (`alliance-node verify`; opening checks only the tree's top against the
/// tip).
pub(super) fn verify_records(db: &dyn Kv, bits: usize) -> Result<Hash32, StoreError> {
    let (mut entries, mut queued) = (0u64, 0u64);
    for item in scan_prefix(db, &[STATE]) {
        let (k, v) = item?;
        let sk: StateKey = decode(&k[1..], "state key")?;
        let sv: StateValue = decode(&v, format!("state value of {sk:?}"))?;
        if let Some(q) = queue_key(&sk) {
            if db.get(&q)?.is_none() {
                return Err(StoreError::Corrupt(format!("{sk:?} is not queued")));
            }
            queued += 1;
        }
        let leaf = db.get(&leaf_key(&sk.tree_key()))?;
        if leaf.as_deref() != Some(&sv.tree_value().0[..]) {
            return Err(StoreError::Corrupt(format!(
                "the entry {sk:?} differs from its leaf in the state tree: the stored state no longer matches the state root"
            )));
        }
        entries += 1;
    }
    let (tree, leaves) = tree_of_stored_leaves(db, bits)?;
    if leaves != entries {
        return Err(StoreError::Corrupt(format!(
            "{entries} entries but {leaves} tree leaves"
        )));
    }
    if scan_prefix(db, &[QUEUE]).count() as u64 != queued {
        return Err(StoreError::Corrupt(
            "the queues hold keys that are not entries".into(),
        ));
    }
    Ok(tree.root_hash())
}
