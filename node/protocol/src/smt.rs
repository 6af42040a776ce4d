//! The sparse Merkle tree behind the ledger's `state_root`.
//!
//! The ledger state is a map from 32-byte key hashes to 32-byte value
//! hashes. It is committed by a compressed binary sparse Merkle tree of
//! depth 256, as in Diem's Jellyfish Merkle tree:
//!
//! - A key is a path of 256 bits, most significant bit of byte 0 first
//!   (bit `i` is bit `7 - i % 8` of byte `i / 8`); 0 goes left, 1 right.
//!   Byte-wise order of keys is therefore left-to-right order in the tree.
//! - An empty subtree hashes to [`Hash32::ZERO`].
//! - A subtree holding exactly one leaf is that leaf, placed at the top of
//!   the subtree (no chain of internal nodes above it). Its hash is
//!   [`leaf_hash`]: `hash_with_domain(LEAF_DOMAIN, key || value_hash)`.
//! - A subtree holding two or more leaves is an internal node, hashed by
//!   [`node_hash`]: `hash_with_domain(NODE_DOMAIN, left || right)`. An
//!   internal node may have one empty child (its other child is then another
//!   internal node); only single-leaf subtrees collapse.
//!
//! The shape is a function of the set of leaves alone, so the root does not
//! depend on the order of updates.
//!
//! Nodes are immutable and shared behind [`Arc`]: cloning a tree is O(1),
//! and an update copies only the nodes on its path (O(log n) for n leaves
//! with hashed keys), recomputing their hashes. Every node caches its hash,
//! so [`SparseMerkleTree::root_hash`] is O(1).
//!
//! A [`SmtProof`] proves inclusion (key present with a value hash) or
//! non-inclusion (the key's path ends at an empty subtree or at another
//! key's leaf) against a root; it holds one sibling hash per level, so its
//! size is the depth of the key's position, O(log n).
//!
//! [`crate::smt_paged`] computes the same root and proofs with its leaves in
//! a store: it hashes subtrees below a fixed depth with this module's code
//! (`summary_of` and `summaries_before_after` for roots, without building
//! nodes; `Subtree` for proofs) and joins their summaries by the same
//! collapse rule (`join_rule`), the one copy of it.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::crypto::Hash32;
use crate::encoding::hash_with_domain;

/// Hash domain of leaves.
pub const LEAF_DOMAIN: &str = "points-alliance/smt-leaf/v1";
/// Hash domain of internal nodes.
pub const NODE_DOMAIN: &str = "points-alliance/smt-node/v1";
/// Most siblings a proof can have: one per key bit. Longer proofs are
/// rejected before any hashing.
pub const MAX_PROOF_DEPTH: usize = 256;

/// Hash of a leaf: `hash_with_domain(LEAF_DOMAIN, key || value_hash)`.
pub fn leaf_hash(key: &Hash32, value_hash: &Hash32) -> Hash32 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&key.0);
    buf[32..].copy_from_slice(&value_hash.0);
    hash_with_domain(LEAF_DOMAIN, &buf)
}

/// Hash of an internal node: `hash_with_domain(NODE_DOMAIN, left || right)`,
/// where an empty child is [`Hash32::ZERO`].
pub fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(&left.0);
    buf[32..].copy_from_slice(&right.0);
    hash_with_domain(NODE_DOMAIN, &buf)
}

/// Bit `i` of a key's path (`i < 256`): true means "go right".
#[inline]
pub(crate) fn bit(key: &Hash32, i: usize) -> bool {
    (key.0[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// Whether `a` and `b` agree on their first `bits` path bits (`bits <= 256`).
pub(crate) fn same_prefix(a: &Hash32, b: &Hash32, bits: usize) -> bool {
    let (whole, rest) = (bits / 8, bits % 8);
    if a.0[..whole] != b.0[..whole] {
        return false;
    }
    if rest == 0 {
        return true;
    }
    let mask = 0xffu8 << (8 - rest);
    (a.0[whole] ^ b.0[whole]) & mask == 0
}

// ---- nodes ------------------------------------------------------------------

/// A non-empty subtree. Empty subtrees are `None` in an `Option<Node>`.
#[derive(Clone)]
enum Node {
    Leaf(Arc<LeafNode>),
    Internal(Arc<InternalNode>),
}

struct LeafNode {
    key: Hash32,
    value: Hash32,
    hash: Hash32,
}

/// Invariant: the subtree holds at least two leaves (so at most one child is
/// empty, and a child that is a single leaf is a `Node::Leaf`).
struct InternalNode {
    left: Option<Node>,
    right: Option<Node>,
    hash: Hash32,
}

impl Node {
    fn leaf(key: Hash32, value: Hash32) -> Node {
        Node::Leaf(Arc::new(LeafNode {
            key,
            value,
            hash: leaf_hash(&key, &value),
        }))
    }

    fn internal(left: Option<Node>, right: Option<Node>) -> Node {
        let hash = node_hash(&hash_of(left.as_ref()), &hash_of(right.as_ref()));
        Node::Internal(Arc::new(InternalNode { left, right, hash }))
    }

    fn hash(&self) -> Hash32 {
        match self {
            Node::Leaf(l) => l.hash,
            Node::Internal(n) => n.hash,
        }
    }

    fn ptr_eq(a: Option<&Node>, b: Option<&Node>) -> bool {
        match (a, b) {
            (None, None) => true,
            (Some(Node::Leaf(x)), Some(Node::Leaf(y))) => Arc::ptr_eq(x, y),
            (Some(Node::Internal(x)), Some(Node::Internal(y))) => Arc::ptr_eq(x, y),
            _ => false,
        }
    }
}

fn hash_of(node: Option<&Node>) -> Hash32 {
    node.map_or(Hash32::ZERO, Node::hash)
}

fn kind_of(node: Option<&Node>) -> SubtreeKind {
    match node {
        None => SubtreeKind::Empty,
        Some(Node::Leaf(_)) => SubtreeKind::Leaf,
        Some(Node::Internal(_)) => SubtreeKind::Internal,
    }
}

/// What a canonical subtree is, as far as its parent is concerned: the
/// collapse rule looks at nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum SubtreeKind {
    /// No leaf; hashes to [`Hash32::ZERO`].
    Empty = 0,
    /// Exactly one leaf, placed at the top of the subtree; hashes to its
    /// [`leaf_hash`].
    Leaf = 1,
    /// Two or more leaves; hashes to the [`node_hash`] of its children.
    Internal = 2,
}

/// What the canonical subtree over two canonical children is, by the
/// collapse rule.
pub(crate) enum Joined {
    /// Both children are empty: the subtree is empty.
    Empty,
    /// The subtree is the left child itself (a single leaf, collapsed up).
    Left,
    /// The subtree is the right child itself (a single leaf, collapsed up).
    Right,
    /// An internal node over the two children.
    Internal,
}

/// The collapse rule, the one copy of it: empty if both children are empty,
/// the leaf itself if the only non-empty child is a leaf, an internal node
/// otherwise (an internal node may have one empty child).
pub(crate) fn join_rule(left: SubtreeKind, right: SubtreeKind) -> Joined {
    match (left, right) {
        (SubtreeKind::Empty, SubtreeKind::Empty) => Joined::Empty,
        (SubtreeKind::Leaf, SubtreeKind::Empty) => Joined::Left,
        (SubtreeKind::Empty, SubtreeKind::Leaf) => Joined::Right,
        _ => Joined::Internal,
    }
}

/// [`join_rule`] on (kind, hash) summaries of two canonical children: the
/// summary of the canonical subtree above them.
pub(crate) fn join_summaries(
    left: (SubtreeKind, Hash32),
    right: (SubtreeKind, Hash32),
) -> (SubtreeKind, Hash32) {
    match join_rule(left.0, right.0) {
        Joined::Empty => (SubtreeKind::Empty, Hash32::ZERO),
        Joined::Left => left,
        Joined::Right => right,
        Joined::Internal => (SubtreeKind::Internal, node_hash(&left.1, &right.1)),
    }
}

/// The canonical subtree with these two (canonical) children, by
/// [`join_rule`].
fn join(left: Option<Node>, right: Option<Node>) -> Option<Node> {
    match join_rule(kind_of(left.as_ref()), kind_of(right.as_ref())) {
        Joined::Empty => None,
        Joined::Left => left,
        Joined::Right => right,
        Joined::Internal => Some(Node::internal(left, right)),
    }
}

/// One update: `None` removes the key.
pub(crate) type Update = (Hash32, Option<Hash32>);

/// A batch of updates sorted by key, keys distinct, where each key keeps
/// its last update (so applying the result equals applying the batch one
/// by one).
pub(crate) fn normalize_updates(mut updates: Vec<Update>) -> Vec<Update> {
    // Reverse, then stable sort: for each key its last update comes first,
    // and `dedup_by_key` keeps the first of each run.
    updates.reverse();
    updates.sort_by_key(|u| u.0);
    updates.dedup_by_key(|u| u.0);
    updates
}

/// Applies `updates` to the subtree `node` at `depth` and returns the new
/// subtree. `updates` must be sorted by key with distinct keys, all within
/// the subtree's prefix. Nodes off the updated paths are shared, not copied.
/// `len_delta` counts leaves added minus leaves removed.
///
/// Recursion depth is at most 256: the function only splits a subtree when
/// it holds at least two distinct keys (existing or updated), and two
/// distinct keys share at most 255 bits.
fn update(
    node: Option<&Node>,
    depth: usize,
    updates: &[Update],
    len_delta: &mut isize,
) -> Option<Node> {
    let (left, right): (Option<&Node>, Option<&Node>) = match (node, updates) {
        (_, []) => return node.cloned(),
        (None, [(key, value)]) => {
            return value.map(|v| {
                *len_delta += 1;
                Node::leaf(*key, v)
            });
        }
        (None, _) => (None, None),
        (Some(Node::Leaf(leaf)), [(key, value)]) if leaf.key == *key => {
            return match value {
                Some(v) if *v == leaf.value => node.cloned(),
                Some(v) => Some(Node::leaf(*key, *v)),
                None => {
                    *len_delta -= 1;
                    None
                }
            };
        }
        // Removing a key that is not here.
        (Some(Node::Leaf(_)), [(_, None)]) => return node.cloned(),
        // The leaf moves down next to the new key(s).
        (Some(Node::Leaf(leaf)), _) => {
            if bit(&leaf.key, depth) {
                (None, node)
            } else {
                (node, None)
            }
        }
        (Some(Node::Internal(inner)), _) => (inner.left.as_ref(), inner.right.as_ref()),
    };
    debug_assert!(depth < 256, "two distinct keys share at most 255 bits");
    let mid = updates.partition_point(|(k, _)| !bit(k, depth));
    let new_left = update(left, depth + 1, &updates[..mid], len_delta);
    let new_right = update(right, depth + 1, &updates[mid..], len_delta);
    if let Some(Node::Internal(_)) = node {
        // Nothing changed below (e.g. removals of absent keys): keep the
        // node, and its cached hash.
        if Node::ptr_eq(new_left.as_ref(), left) && Node::ptr_eq(new_right.as_ref(), right) {
            return node.cloned();
        }
    }
    join(new_left, new_right)
}

// ---- the tree -----------------------------------------------------------------

/// A persistent sparse Merkle tree from key hashes to value hashes.
///
/// `Clone` is O(1) (the nodes are shared); updating a clone never affects
/// the original. Two trees compare equal when their roots are equal, which
/// (the hash being collision resistant) means they hold the same entries.
#[derive(Clone, Default)]
pub struct SparseMerkleTree {
    root: Option<Node>,
    len: usize,
}

impl SparseMerkleTree {
    /// An empty tree (root [`Hash32::ZERO`]).
    pub fn new() -> Self {
        Self::default()
    }

    /// The root hash; [`Hash32::ZERO`] when empty. O(1).
    pub fn root_hash(&self) -> Hash32 {
        hash_of(self.root.as_ref())
    }

    /// Number of entries (leaves).
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the tree has no entries.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The value hash stored under `key`, if any.
    pub fn get(&self, key: &Hash32) -> Option<Hash32> {
        let mut node = self.root.as_ref();
        let mut depth = 0;
        loop {
            match node? {
                Node::Leaf(leaf) => return (leaf.key == *key).then_some(leaf.value),
                Node::Internal(inner) => {
                    node = if bit(key, depth) {
                        inner.right.as_ref()
                    } else {
                        inner.left.as_ref()
                    };
                    depth += 1;
                }
            }
        }
    }

    /// Sets `key` to `value_hash` (inserting or replacing).
    pub fn insert(&mut self, key: Hash32, value_hash: Hash32) {
        self.apply_sorted(&[(key, Some(value_hash))]);
    }

    /// Removes `key`; does nothing if it is absent.
    pub fn remove(&mut self, key: &Hash32) {
        self.apply_sorted(&[(*key, None)]);
    }

    /// Applies a batch of updates; `None` removes the key. When a key occurs
    /// more than once, its last update wins, so the result is the same as
    /// applying the updates one by one. Each node on the union of the
    /// updated paths is rebuilt (and hashed) once, which is cheaper than
    /// one-by-one updates when paths share their upper levels.
    pub fn apply<I: IntoIterator<Item = (Hash32, Option<Hash32>)>>(&mut self, updates: I) {
        let updates = normalize_updates(updates.into_iter().collect());
        self.apply_sorted(&updates);
    }

    /// `updates` sorted by key, keys distinct.
    fn apply_sorted(&mut self, updates: &[Update]) {
        let mut len_delta = 0isize;
        self.root = update(self.root.as_ref(), 0, updates, &mut len_delta);
        self.len = self.len.saturating_add_signed(len_delta);
    }

    /// A proof of `key`'s entry: of inclusion if the key is present, of
    /// non-inclusion otherwise. Verify it with [`SmtProof::verify`].
    pub fn prove(&self, key: &Hash32) -> SmtProof {
        prove_from(self.root.as_ref(), 0, key, Vec::new())
    }
}

/// The proof of `key` in the subtree `node` sitting at `depth` on `key`'s
/// path, where `siblings` holds the `depth` siblings above it.
fn prove_from(
    mut node: Option<&Node>,
    mut depth: usize,
    key: &Hash32,
    mut siblings: Vec<Hash32>,
) -> SmtProof {
    debug_assert_eq!(siblings.len(), depth);
    loop {
        match node {
            None => {
                return SmtProof {
                    siblings,
                    leaf: None,
                }
            }
            Some(Node::Leaf(leaf)) => {
                let other = (leaf.key != *key).then_some((leaf.key, leaf.value));
                return SmtProof {
                    siblings,
                    leaf: other,
                };
            }
            Some(Node::Internal(inner)) => {
                let (next, sibling) = if bit(key, depth) {
                    (&inner.right, &inner.left)
                } else {
                    (&inner.left, &inner.right)
                };
                siblings.push(hash_of(sibling.as_ref()));
                node = next.as_ref();
                depth += 1;
            }
        }
    }
}

// ---- subtrees below a position --------------------------------------------------

/// The canonical subtree at one position of depth `depth`, built from the
/// leaves under that position: exactly the nodes, hashes and proofs that a
/// [`SparseMerkleTree`] holding these leaves (and any others outside the
/// position) has below it, because the shape of a subtree is a function of
/// its leaves alone. `smt_paged` keeps the levels above such positions as
/// summaries and builds these subtrees from its leaf store, with this
/// module's code: one copy of every hashing and collapse rule.
pub(crate) struct Subtree {
    root: Option<Node>,
    depth: usize,
}

impl Subtree {
    /// The subtree at `depth` over `leaves`: sorted by key, keys distinct,
    /// all sharing their first `depth` path bits (`depth <= 256`).
    pub(crate) fn build(leaves: &[(Hash32, Hash32)], depth: usize) -> Subtree {
        debug_assert!(depth <= MAX_PROOF_DEPTH);
        debug_assert!(leaves.windows(2).all(|w| w[0].0 < w[1].0));
        debug_assert!(leaves
            .iter()
            .all(|(k, _)| same_prefix(k, &leaves[0].0, depth)));
        let inserts: Vec<Update> = leaves.iter().map(|(k, v)| (*k, Some(*v))).collect();
        let mut tree = Subtree { root: None, depth };
        tree.update(&inserts);
        tree
    }

    /// Applies `updates` (sorted by key, keys distinct, all under this
    /// subtree's position), as [`SparseMerkleTree::apply`] does.
    pub(crate) fn update(&mut self, updates: &[Update]) {
        debug_assert!(updates.windows(2).all(|w| w[0].0 < w[1].0));
        let mut len_delta = 0isize;
        self.root = update(self.root.as_ref(), self.depth, updates, &mut len_delta);
    }

    /// What the subtree is, and its hash ([`Hash32::ZERO`] when empty).
    pub(crate) fn summary(&self) -> (SubtreeKind, Hash32) {
        (kind_of(self.root.as_ref()), hash_of(self.root.as_ref()))
    }

    /// The proof of `key`, whose path goes through this subtree's position,
    /// given the `depth` siblings above the position (root side first).
    pub(crate) fn prove(&self, key: &Hash32, siblings_above: Vec<Hash32>) -> SmtProof {
        prove_from(self.root.as_ref(), self.depth, key, siblings_above)
    }
}

/// The (kind, hash) summary of the canonical subtree at `depth` over
/// `leaves` (sorted by key, keys distinct, all under the position): what
/// [`Subtree::build`] then [`Subtree::summary`] give, computed without
/// building nodes.
pub(crate) fn summary_of(leaves: &[(Hash32, Hash32)], depth: usize) -> (SubtreeKind, Hash32) {
    match leaves {
        [] => (SubtreeKind::Empty, Hash32::ZERO),
        [(key, value)] => (SubtreeKind::Leaf, leaf_hash(key, value)),
        _ => {
            debug_assert!(depth < 256, "two distinct keys share at most 255 bits");
            let mid = leaves.partition_point(|(k, _)| !bit(k, depth));
            join_summaries(
                summary_of(&leaves[..mid], depth + 1),
                summary_of(&leaves[mid..], depth + 1),
            )
        }
    }
}

/// The summaries of the canonical subtree at `depth` over `leaves`, before
/// and after `updates` (both sorted by key, keys distinct, all under the
/// position; a `None` update removes its key): what building the subtree,
/// then [`Subtree::update`], give, without building nodes. A part of the
/// subtree that no update reaches is hashed once, for both.
pub(crate) fn summaries_before_after(
    leaves: &[(Hash32, Hash32)],
    updates: &[Update],
    depth: usize,
) -> ((SubtreeKind, Hash32), (SubtreeKind, Hash32)) {
    if updates.is_empty() {
        let same = summary_of(leaves, depth);
        return (same, same);
    }
    if let [(key, value)] = updates {
        // At most one key before, and the one updated is it (or nothing was
        // there): no split needed.
        let alone = match leaves {
            [] => true,
            [(k, _)] => k == key,
            _ => false,
        };
        if alone {
            let new = value.map_or((SubtreeKind::Empty, Hash32::ZERO), |v| {
                (SubtreeKind::Leaf, leaf_hash(key, &v))
            });
            return (summary_of(leaves, depth), new);
        }
    }
    // Two or more distinct keys among the leaves and the updates: they part
    // at some bit at or below `depth`.
    debug_assert!(depth < 256, "two distinct keys share at most 255 bits");
    let leaf_mid = leaves.partition_point(|(k, _)| !bit(k, depth));
    let update_mid = updates.partition_point(|(k, _)| !bit(k, depth));
    let (left_old, left_new) =
        summaries_before_after(&leaves[..leaf_mid], &updates[..update_mid], depth + 1);
    let (right_old, right_new) =
        summaries_before_after(&leaves[leaf_mid..], &updates[update_mid..], depth + 1);
    let old = join_summaries(left_old, right_old);
    let new = if (left_new, right_new) == (left_old, right_old) {
        old
    } else {
        join_summaries(left_new, right_new)
    };
    (old, new)
}

impl PartialEq for SparseMerkleTree {
    fn eq(&self, other: &Self) -> bool {
        self.root_hash() == other.root_hash()
    }
}

impl Eq for SparseMerkleTree {}

impl fmt::Debug for SparseMerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseMerkleTree")
            .field("root", &self.root_hash())
            .field("len", &self.len)
            .finish()
    }
}

// ---- proofs -------------------------------------------------------------------

/// A proof that a key maps to a value hash, or is absent, under a root.
///
/// The proof describes the key's path from the root down to the position
/// where the path stops: a leaf (the key's own for inclusion, another key's
/// for non-inclusion) or an empty subtree (non-inclusion). The position's
/// depth is `siblings.len()`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SmtProof {
    /// Sibling hashes from the root side down to the proven position:
    /// `siblings[i]` is the hash of the child of the depth-`i` node on the
    /// key's path that is *not* on the path (the side opposite to key bit
    /// `i`), [`Hash32::ZERO`] for an empty sibling.
    pub siblings: Vec<Hash32>,
    /// For non-inclusion: the other leaf (key, value_hash) occupying the
    /// position, if any. `None` in an inclusion proof, and in a
    /// non-inclusion proof ending at an empty subtree.
    pub leaf: Option<(Hash32, Hash32)>,
}

/// Why a [`SmtProof`] does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtProofError {
    /// More siblings than key bits ([`MAX_PROOF_DEPTH`]).
    #[error("proof has {siblings} siblings, more than {MAX_PROOF_DEPTH}")]
    TooDeep {
        /// Number of siblings in the proof.
        siblings: usize,
    },
    /// An inclusion was checked but the proof carries another leaf: it is a
    /// non-inclusion proof.
    #[error("an inclusion proof must not carry another leaf")]
    UnexpectedLeaf,
    /// A non-inclusion was checked but the proof's leaf has the very key
    /// being proven absent.
    #[error("the proof's leaf is the key itself, which is not absence")]
    KeyPresent,
    /// The proof's leaf does not share the key's path down to the proven
    /// position, so it cannot sit there.
    #[error("the proof's leaf key is not on the key's path")]
    LeafKeyMismatch,
    /// The hashes do not lead to the expected root (wrong value, wrong
    /// sibling, wrong leaf or wrong root).
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

impl SmtProof {
    /// Checks that under `root`, `key` maps to `value_hash` (`Some`) or is
    /// absent (`None`).
    ///
    /// Safe on untrusted input: at most [`MAX_PROOF_DEPTH`] + 1 hashes, no
    /// panics. Sound given a collision-resistant hash: leaves and internal
    /// nodes are hashed under different domains, so the recomputed path
    /// can match `root` only if every hash on it is the real node at that
    /// position, and the node at the proven position is then either the
    /// key's leaf with this value, an empty subtree, or the single leaf of a
    /// subtree on the key's path holding another key.
    pub fn verify(
        &self,
        root: &Hash32,
        key: &Hash32,
        value_hash: Option<&Hash32>,
    ) -> Result<(), SmtProofError> {
        let depth = self.siblings.len();
        if depth > MAX_PROOF_DEPTH {
            return Err(SmtProofError::TooDeep { siblings: depth });
        }
        let mut acc = match (value_hash, &self.leaf) {
            (Some(value), None) => leaf_hash(key, value),
            (Some(_), Some(_)) => return Err(SmtProofError::UnexpectedLeaf),
            (None, None) => Hash32::ZERO,
            (None, Some((other_key, other_value))) => {
                if other_key == key {
                    return Err(SmtProofError::KeyPresent);
                }
                if !same_prefix(key, other_key, depth) {
                    return Err(SmtProofError::LeafKeyMismatch);
                }
                leaf_hash(other_key, other_value)
            }
        };
        for (i, sibling) in self.siblings.iter().enumerate().rev() {
            acc = if bit(key, i) {
                node_hash(sibling, &acc)
            } else {
                node_hash(&acc, sibling)
            };
        }
        if acc == *root {
            Ok(())
        } else {
            Err(SmtProofError::RootMismatch)
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;
    use sha2::{Digest, Sha256};

    use super::*;

    fn h(label: &str, i: u64) -> Hash32 {
        hash_with_domain(label, &i.to_le_bytes())
    }

    /// Naive reference: recursive over sorted, distinct leaves, written from
    /// the hashing rule without using the tree code.
    fn reference_root(map: &BTreeMap<Hash32, Hash32>) -> Hash32 {
        fn go(leaves: &[(Hash32, Hash32)], depth: usize) -> Hash32 {
            match leaves {
                [] => Hash32::ZERO,
                [(k, v)] => hash_with_domain("points-alliance/smt-leaf/v1", &[k.0, v.0].concat()),
                _ => {
                    let mid = leaves
                        .partition_point(|(k, _)| k.0[depth / 8] & (0x80 >> (depth % 8)) == 0);
                    let l = go(&leaves[..mid], depth + 1);
                    let r = go(&leaves[mid..], depth + 1);
                    hash_with_domain("points-alliance/smt-node/v1", &[l.0, r.0].concat())
                }
            }
        }
        let leaves: Vec<(Hash32, Hash32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
        go(&leaves, 0)
    }

    fn tree_of(map: &BTreeMap<Hash32, Hash32>) -> SparseMerkleTree {
        let mut t = SparseMerkleTree::new();
        for (k, v) in map {
            t.insert(*k, *v);
        }
        t
    }

    fn key_with(fill: u8, pos: usize, byte: u8) -> Hash32 {
        let mut k = [fill; 32];
        k[pos] = byte;
        Hash32(k)
    }

    /// Checks every way a proof must and must not verify for `key`.
    fn check_proof(t: &SparseMerkleTree, key: &Hash32) {
        let root = t.root_hash();
        let proof = t.prove(key);
        assert!(proof.siblings.len() <= MAX_PROOF_DEPTH);
        let other_value = h("other-value", 0);
        match t.get(key) {
            Some(v) => {
                assert_eq!(proof.leaf, None);
                assert_eq!(proof.verify(&root, key, Some(&v)), Ok(()));
                assert!(proof.verify(&root, key, None).is_err());
                assert!(proof.verify(&root, key, Some(&other_value)).is_err());
            }
            None => {
                assert_eq!(proof.verify(&root, key, None), Ok(()));
                assert!(proof.verify(&root, key, Some(&other_value)).is_err());
                if let Some((k, v)) = proof.leaf {
                    // The other leaf is really there...
                    assert_eq!(t.get(&k), Some(v));
                    // ...and forging its value breaks the proof.
                    let forged = SmtProof {
                        leaf: Some((k, other_value)),
                        ..proof.clone()
                    };
                    assert!(forged.verify(&root, key, None).is_err());
                }
            }
        }
        let value = t.get(key);
        // A tampered sibling fails (every one near the root and the bottom,
        // a sample in between: a 256-deep proof costs 257 hashes per try).
        let n = proof.siblings.len();
        for i in (0..n).filter(|i| *i < 8 || *i + 8 >= n || i % 16 == 0) {
            let mut p = proof.clone();
            p.siblings[i].0[31] ^= 0x40;
            assert_eq!(
                p.verify(&root, key, value.as_ref()),
                Err(SmtProofError::RootMismatch)
            );
        }
        // A different root fails.
        let mut bad_root = root;
        bad_root.0[0] ^= 1;
        assert_eq!(
            proof.verify(&bad_root, key, value.as_ref()),
            Err(SmtProofError::RootMismatch)
        );
        // One sibling more or less fails.
        let mut p = proof.clone();
        p.siblings.push(Hash32::ZERO);
        assert!(p.verify(&root, key, value.as_ref()).is_err());
        if !proof.siblings.is_empty() {
            let mut p = proof.clone();
            p.siblings.pop();
            assert!(p.verify(&root, key, value.as_ref()).is_err());
        }
    }

    #[test]
    fn empty_tree() {
        let t = SparseMerkleTree::new();
        assert_eq!(t.root_hash(), Hash32::ZERO);
        assert!(t.is_empty());
        assert_eq!(t.len(), 0);
        assert_eq!(t.get(&h("k", 1)), None);
        let p = t.prove(&h("k", 1));
        assert_eq!(
            p,
            SmtProof {
                siblings: vec![],
                leaf: None
            }
        );
        assert_eq!(p.verify(&Hash32::ZERO, &h("k", 1), None), Ok(()));
        assert_eq!(
            p.verify(&Hash32::ZERO, &h("k", 1), Some(&h("v", 1))),
            Err(SmtProofError::RootMismatch)
        );
        let mut t2 = t.clone();
        t2.remove(&h("k", 1));
        assert_eq!(t2.root_hash(), Hash32::ZERO);
        assert_eq!(t2.len(), 0);
    }

    #[test]
    fn pinned_single_leaf_vector() {
        // Independent of hash_with_domain: SHA-256(domain || 0x00 || key || value).
        let (k, v) = (Hash32([1; 32]), Hash32([2; 32]));
        let mut t = SparseMerkleTree::new();
        t.insert(k, v);
        let mut sha = Sha256::new();
        sha.update(b"points-alliance/smt-leaf/v1");
        sha.update([0u8]);
        sha.update(k.0);
        sha.update(v.0);
        assert_eq!(t.root_hash(), Hash32(sha.finalize().into()));
        assert_eq!(t.len(), 1);
        assert_eq!(t.get(&k), Some(v));
        assert_eq!(t.prove(&k).siblings, vec![]);
        check_proof(&t, &k);
        check_proof(&t, &Hash32([3; 32]));
    }

    #[test]
    fn two_leaves_split_at_first_bit() {
        let (a, b) = (Hash32([0x00; 32]), Hash32([0x80; 32]));
        let (va, vb) = (h("v", 1), h("v", 2));
        let mut t = SparseMerkleTree::new();
        t.insert(b, vb);
        t.insert(a, va);
        assert_eq!(
            t.root_hash(),
            node_hash(&leaf_hash(&a, &va), &leaf_hash(&b, &vb))
        );
        // 0x40.. goes left at bit 0, where a's leaf sits: non-inclusion by
        // another leaf.
        let c = Hash32([0x40; 32]);
        let p = t.prove(&c);
        assert_eq!(p.siblings, vec![leaf_hash(&b, &vb)]);
        assert_eq!(p.leaf, Some((a, va)));
        assert_eq!(p.verify(&t.root_hash(), &c, None), Ok(()));
        // Precise errors.
        let as_key = SmtProof {
            leaf: Some((c, va)),
            ..p.clone()
        };
        assert_eq!(
            as_key.verify(&t.root_hash(), &c, None),
            Err(SmtProofError::KeyPresent)
        );
        let off_path = SmtProof {
            leaf: Some((b, vb)),
            ..p.clone()
        };
        assert_eq!(
            off_path.verify(&t.root_hash(), &c, None),
            Err(SmtProofError::LeafKeyMismatch)
        );
        assert_eq!(
            p.verify(&t.root_hash(), &c, Some(&va)),
            Err(SmtProofError::UnexpectedLeaf)
        );
        // a's own proof is an inclusion proof that cannot show absence.
        let pa = t.prove(&a);
        assert_eq!(pa.leaf, None);
        assert_eq!(pa.verify(&t.root_hash(), &a, Some(&va)), Ok(()));
        assert_eq!(
            pa.verify(&t.root_hash(), &a, None),
            Err(SmtProofError::RootMismatch)
        );
        // And the non-inclusion proof for c cannot be reused as a's.
        assert!(p.verify(&t.root_hash(), &a, None).is_err());
    }

    #[test]
    fn internal_node_with_one_empty_child_stays() {
        // 0x00.. and 0x01.. share 7 bits; 0x80.. splits at bit 0.
        let keys = [
            key_with(0, 0, 0x00),
            key_with(0, 0, 0x01),
            key_with(0, 0, 0x80),
        ];
        let map: BTreeMap<Hash32, Hash32> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, h("v", i as u64)))
            .collect();
        let t = tree_of(&map);
        assert_eq!(t.root_hash(), reference_root(&map));
        // 0x40.. (path 01...) ends in the empty right child of the depth-1 node.
        let probe = key_with(0, 0, 0x40);
        let p = t.prove(&probe);
        assert_eq!(p.leaf, None);
        assert_eq!(p.siblings.len(), 2);
        assert_eq!(p.verify(&t.root_hash(), &probe, None), Ok(()));
        // The two deep keys have 8 siblings each.
        assert_eq!(t.prove(&keys[0]).siblings.len(), 8);
        for k in keys.iter().chain([&probe]) {
            check_proof(&t, k);
        }
    }

    #[test]
    fn removal_collapses_single_leaf_upwards() {
        let keys = [
            key_with(0, 0, 0x00),
            key_with(0, 0, 0x01),
            key_with(0, 0, 0x80),
        ];
        let mut t = SparseMerkleTree::new();
        for (i, k) in keys.iter().enumerate() {
            t.insert(*k, h("v", i as u64));
        }
        t.remove(&keys[1]);
        // 0x00.. is now alone on the left: a leaf right under the root.
        let expected = node_hash(
            &leaf_hash(&keys[0], &h("v", 0)),
            &leaf_hash(&keys[2], &h("v", 2)),
        );
        assert_eq!(t.root_hash(), expected);
        assert_eq!(t.prove(&keys[0]).siblings.len(), 1);
        assert_eq!(t.len(), 2);
        t.remove(&keys[2]);
        assert_eq!(t.root_hash(), leaf_hash(&keys[0], &h("v", 0)));
        t.remove(&keys[0]);
        assert_eq!(t.root_hash(), Hash32::ZERO);
        assert!(t.is_empty());
    }

    #[test]
    fn deepest_position_has_256_siblings() {
        // Keys differing only in the last bit.
        let (a, b) = (key_with(0xa5, 31, 0xa4), key_with(0xa5, 31, 0xa5));
        let mut t = SparseMerkleTree::new();
        t.insert(a, h("v", 1));
        t.insert(b, h("v", 2));
        let p = t.prove(&a);
        assert_eq!(p.siblings.len(), 256);
        assert_eq!(p.verify(&t.root_hash(), &a, Some(&h("v", 1))), Ok(()));
        check_proof(&t, &a);
        check_proof(&t, &b);
        // A key leaving the shared path at the last bit... and earlier.
        check_proof(&t, &key_with(0xa5, 31, 0xa6));
        check_proof(&t, &key_with(0xa5, 0, 0x25));
        // 257 siblings: rejected before hashing.
        let mut long = p.clone();
        long.siblings.push(Hash32::ZERO);
        assert_eq!(
            long.verify(&t.root_hash(), &a, Some(&h("v", 1))),
            Err(SmtProofError::TooDeep { siblings: 257 })
        );
        let huge = SmtProof {
            siblings: vec![Hash32::ZERO; 1 << 20],
            leaf: None,
        };
        assert_eq!(
            huge.verify(&t.root_hash(), &a, None),
            Err(SmtProofError::TooDeep { siblings: 1 << 20 })
        );
        // A 256-sibling non-inclusion proof naming another leaf can never
        // pass the prefix check.
        let at_bottom = SmtProof {
            siblings: p.siblings.clone(),
            leaf: Some((b, h("v", 2))),
        };
        assert_eq!(
            at_bottom.verify(&t.root_hash(), &a, None),
            Err(SmtProofError::LeafKeyMismatch)
        );
        t.remove(&a);
        assert_eq!(t.root_hash(), leaf_hash(&b, &h("v", 2)));
    }

    #[test]
    fn clone_is_unaffected_by_updates() {
        let map: BTreeMap<Hash32, Hash32> = (0..200).map(|i| (h("k", i), h("v", i))).collect();
        let mut t = tree_of(&map);
        let snapshot = t.clone();
        let root = t.root_hash();
        t.insert(h("k", 1000), h("v", 1000));
        t.insert(h("k", 5), h("v", 99));
        t.remove(&h("k", 6));
        t.apply((0..50).map(|i| (h("k", i), None)));
        assert_ne!(t.root_hash(), root);
        assert_eq!(snapshot.root_hash(), root);
        assert_eq!(snapshot.root_hash(), reference_root(&map));
        assert_eq!(snapshot.len(), 200);
        for (k, v) in &map {
            assert_eq!(snapshot.get(k), Some(*v));
        }
        assert_eq!(snapshot.get(&h("k", 1000)), None);
        // And updates of the clone do not leak into the original.
        let mut s2 = snapshot.clone();
        s2.remove(&h("k", 7));
        assert_eq!(snapshot.root_hash(), root);
        assert_eq!(t.get(&h("k", 7)), None);
        assert_eq!(t.get(&h("k", 100)), Some(h("v", 100)));
    }

    #[test]
    fn thousands_of_keys_match_reference_and_prove() {
        let mut map = BTreeMap::new();
        let mut t = SparseMerkleTree::new();
        for i in 0..3000u64 {
            map.insert(h("k", i), h("v", i));
        }
        t.apply(map.iter().map(|(k, v)| (*k, Some(*v))));
        assert_eq!(t.len(), 3000);
        assert_eq!(t.root_hash(), reference_root(&map));
        assert_eq!(t, tree_of(&map));
        for i in (0..3000).step_by(7) {
            check_proof(&t, &h("k", i));
            check_proof(&t, &h("absent", i));
        }
        // Proofs stay logarithmic with hashed keys.
        let deepest = (0..3000).map(|i| t.prove(&h("k", i)).siblings.len()).max();
        assert!(deepest < Some(40), "{deepest:?}");
    }

    #[test]
    fn proof_round_trips_through_encodings() {
        let map: BTreeMap<Hash32, Hash32> = (0..50).map(|i| (h("k", i), h("v", i))).collect();
        let t = tree_of(&map);
        for key in [h("k", 3), h("absent", 3)] {
            let p = t.prove(&key);
            let bin = crate::encoding::encode(&p);
            assert_eq!(
                crate::encoding::decode::<SmtProof>(&bin, 1 << 16).unwrap(),
                p
            );
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(serde_json::from_str::<SmtProof>(&json).unwrap(), p);
        }
    }

    #[test]
    fn apply_last_update_wins() {
        let mut t = SparseMerkleTree::new();
        let k = h("k", 1);
        t.apply([
            (k, Some(h("v", 1))),
            (k, None),
            (k, Some(h("v", 2))),
            (h("k", 2), None),
        ]);
        assert_eq!(t.get(&k), Some(h("v", 2)));
        assert_eq!(t.len(), 1);
        t.apply([(k, Some(h("v", 3))), (k, None)]);
        assert!(t.is_empty());
        assert_eq!(t.root_hash(), Hash32::ZERO);
        t.apply(std::iter::empty());
        assert_eq!(t.root_hash(), Hash32::ZERO);
    }

    #[test]
    fn unchanged_values_keep_nodes() {
        let map: BTreeMap<Hash32, Hash32> = (0..100).map(|i| (h("k", i), h("v", i))).collect();
        let mut t = tree_of(&map);
        let before = t.clone();
        t.apply((0..100).map(|i| (h("k", i), Some(h("v", i)))));
        t.apply((0..100).map(|i| (h("absent", i), None)));
        assert!(Node::ptr_eq(t.root.as_ref(), before.root.as_ref()));
        assert_eq!(t.len(), 100);
    }

    // ---- property tests ---------------------------------------------------

    /// Keys: fully random, or from small families sharing long prefixes
    /// (down to the last bit), so that deep paths and collisions occur.
    fn key() -> impl Strategy<Value = Hash32> {
        prop_oneof![
            any::<[u8; 32]>().prop_map(Hash32),
            any::<u8>().prop_map(|b| key_with(0, 31, b)),
            (0usize..32, 0u8..4).prop_map(|(pos, b)| key_with(0xaa, pos, b)),
        ]
    }

    fn value() -> impl Strategy<Value = Hash32> {
        (0u64..8).prop_map(|i| h("v", i))
    }

    fn entries() -> impl Strategy<Value = BTreeMap<Hash32, Hash32>> {
        prop::collection::btree_map(key(), value(), 0..48)
    }

    fn ops() -> impl Strategy<Value = Vec<(Hash32, Option<Hash32>)>> {
        prop::collection::vec((key(), prop::option::weighted(0.7, value())), 0..64)
    }

    proptest! {
        #[test]
        fn root_is_independent_of_order(map in entries(), seed in any::<u64>()) {
            let items: Vec<(Hash32, Hash32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
            let forward = tree_of(&map);
            let mut backward = SparseMerkleTree::new();
            for (k, v) in items.iter().rev() {
                backward.insert(*k, *v);
            }
            // A seeded rotation and interleaving.
            let n = items.len().max(1);
            let start = (seed as usize) % n;
            let mut rotated = SparseMerkleTree::new();
            for i in 0..items.len() {
                let (k, v) = items[(start + i * 7) % n];
                rotated.insert(k, v);
            }
            for (k, v) in &items {
                rotated.insert(*k, *v);
            }
            prop_assert_eq!(forward.root_hash(), backward.root_hash());
            prop_assert_eq!(forward.root_hash(), rotated.root_hash());
            prop_assert_eq!(forward.root_hash(), reference_root(&map));
            prop_assert_eq!(forward.len(), map.len());
            prop_assert_eq!(rotated.len(), map.len());
        }

        #[test]
        fn insert_then_remove_restores_root(map in entries(), extra in prop::collection::vec((key(), value()), 1..8)) {
            let mut t = tree_of(&map);
            let root = t.root_hash();
            let fresh: BTreeMap<Hash32, Hash32> =
                extra.into_iter().filter(|(k, _)| !map.contains_key(k)).collect();
            for (k, v) in &fresh {
                t.insert(*k, *v);
            }
            prop_assert_eq!(t.len(), map.len() + fresh.len());
            for k in fresh.keys() {
                t.remove(k);
            }
            prop_assert_eq!(t.root_hash(), root);
            prop_assert_eq!(t.len(), map.len());
            // Remove everything: back to ZERO.
            for k in map.keys() {
                t.remove(k);
            }
            prop_assert_eq!(t.root_hash(), Hash32::ZERO);
            prop_assert!(t.is_empty());
        }

        #[test]
        fn summaries_without_nodes_equal_the_built_subtree(
            map in entries(),
            ops in ops(),
            prefix_bits in 0usize..12,
        ) {
            // All keys under one position of depth `prefix_bits` (the first
            // bits forced to 1), as a paged tree's bucket is.
            let under = |mut k: Hash32| {
                for i in 0..prefix_bits {
                    k.0[i / 8] |= 0x80 >> (i % 8);
                }
                k
            };
            let map: BTreeMap<Hash32, Hash32> = map.into_iter().map(|(k, v)| (under(k), v)).collect();
            let ops = normalize_updates(ops.into_iter().map(|(k, v)| (under(k), v)).collect());
            let leaves: Vec<(Hash32, Hash32)> = map.iter().map(|(k, v)| (*k, *v)).collect();
            let mut built = Subtree::build(&leaves, prefix_bits);
            let before = built.summary();
            built.update(&ops);
            let after = built.summary();
            prop_assert_eq!(summary_of(&leaves, prefix_bits), before);
            prop_assert_eq!(summaries_before_after(&leaves, &ops, prefix_bits), (before, after));
            if prefix_bits == 0 {
                let mut model = map.clone();
                for (k, v) in &ops {
                    match v {
                        Some(v) => model.insert(*k, *v),
                        None => model.remove(k),
                    };
                }
                prop_assert_eq!(before.1, reference_root(&map));
                prop_assert_eq!(after.1, reference_root(&model));
            }
        }

        #[test]
        fn apply_equals_sequential(map in entries(), ops in ops()) {
            let base = tree_of(&map);
            let mut seq = base.clone();
            let mut model = map.clone();
            for (k, v) in &ops {
                match v {
                    Some(v) => { seq.insert(*k, *v); model.insert(*k, *v); }
                    None => { seq.remove(k); model.remove(k); }
                }
            }
            let mut batch = base.clone();
            batch.apply(ops.iter().copied());
            prop_assert_eq!(batch.root_hash(), seq.root_hash());
            prop_assert_eq!(batch.root_hash(), reference_root(&model));
            prop_assert_eq!(batch.len(), model.len());
            prop_assert_eq!(seq.len(), model.len());
            for (k, v) in &model {
                prop_assert_eq!(batch.get(k), Some(*v));
            }
            for (k, _) in &ops {
                prop_assert_eq!(batch.get(k), model.get(k).copied());
            }
            // The base is untouched.
            prop_assert_eq!(base.root_hash(), reference_root(&map));
        }

        #[test]
        fn proofs_verify_and_resist_tampering(map in entries(), absent in prop::collection::vec(key(), 1..8)) {
            let t = tree_of(&map);
            for k in map.keys() {
                check_proof(&t, k);
            }
            for k in &absent {
                check_proof(&t, k);
            }
        }

        #[test]
        fn proof_of_one_key_never_verifies_for_another_claim(map in entries(), k in key(), v in value()) {
            let t = tree_of(&map);
            let root = t.root_hash();
            let p = t.prove(&k);
            let truth = t.get(&k);
            // Every claim other than the truth fails.
            for claim in [None, Some(v), Some(h("v", 1000))] {
                if claim != truth {
                    prop_assert!(p.verify(&root, &k, claim.as_ref()).is_err());
                }
            }
            // Proofs of other keys do not prove this key.
            for other in map.keys().filter(|o| **o != k).take(4) {
                let q = t.prove(other);
                prop_assert!(q.verify(&root, &k, truth.as_ref()).is_err());
            }
        }
    }
}
