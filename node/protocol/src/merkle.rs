//! Binary Merkle tree over transaction ids (the header's `tx_root`).
//!
//! The tree is the one of RFC 6962 / RFC 9162 (Certificate Transparency):
//!
//! - leaf hash: `SHA-256(0x00 || leaf)`, where `leaf` is a transaction id;
//! - node hash: `SHA-256(0x01 || left || right)`;
//! - a list of `n > 1` leaves is split at `k`, the largest power of two
//!   smaller than `n`: the left subtree holds the first `k` leaves. Built
//!   level by level this is the same as promoting a lone last node of a level
//!   unchanged to the next level.
//!
//! The root of the empty list is [`Hash32::ZERO`] (RFC 6962 would use the
//! hash of the empty string; a block with no transactions simply has a zero
//! `tx_root`). The 0x00/0x01 prefixes keep a leaf from ever being taken for
//! an inner node, so a proof cannot pass off an inner node as a transaction.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::Hash32;

/// Hash of a leaf: `SHA-256(0x00 || leaf)`.
fn leaf_hash(leaf: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x00]);
    h.update(leaf.0);
    Hash32(h.finalize().into())
}

/// Hash of an inner node: `SHA-256(0x01 || left || right)`.
fn node_hash(left: &Hash32, right: &Hash32) -> Hash32 {
    let mut h = Sha256::new();
    h.update([0x01]);
    h.update(left.0);
    h.update(right.0);
    Hash32(h.finalize().into())
}

/// The largest power of two strictly smaller than `n` (`n >= 2`).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    1 << (usize::BITS - 1 - (n - 1).leading_zeros())
}

/// Merkle root of a list of leaf hashes (transaction ids, in block order).
/// [`Hash32::ZERO`] for the empty list.
pub fn root(leaves: &[Hash32]) -> Hash32 {
    if leaves.is_empty() {
        return Hash32::ZERO;
    }
    // Level by level, in place; a lone last node moves up unchanged.
    let mut level: Vec<Hash32> = leaves.iter().map(leaf_hash).collect();
    while level.len() > 1 {
        let n = level.len();
        for i in 0..n / 2 {
            level[i] = node_hash(&level[2 * i], &level[2 * i + 1]);
        }
        if n % 2 == 1 {
            level[n / 2] = level[n - 1];
        }
        level.truncate(n.div_ceil(2));
    }
    level[0]
}

/// RFC 6962 `MTH` of a non-empty list.
fn subtree_root(leaves: &[Hash32]) -> Hash32 {
    match leaves {
        [] => Hash32::ZERO,
        [one] => leaf_hash(one),
        _ => {
            let k = split_point(leaves.len());
            node_hash(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// Proof that a transaction id is the `index`-th leaf of a tree of
/// `leaf_count` leaves (an RFC 9162 inclusion proof / audit path).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerkleProof {
    /// Position of the leaf, from 0.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes from the leaf up to the root (RFC 6962 audit path
    /// order: `path[0]` is the leaf's sibling, the last entry is a child of
    /// the root). Promoted levels contribute no entry.
    pub path: Vec<Hash32>,
}

/// Inclusion proof for `leaves[index]`; `None` if `index` is out of range.
pub fn prove(leaves: &[Hash32], index: usize) -> Option<MerkleProof> {
    if index >= leaves.len() {
        return None;
    }
    // RFC 6962 PATH(m, D[n]), built root first, then reversed to leaf first.
    let mut path = Vec::new();
    let (mut lo, mut hi, m) = (0usize, leaves.len(), index);
    while hi - lo > 1 {
        let k = lo + split_point(hi - lo);
        if m < k {
            path.push(subtree_root(&leaves[k..hi]));
            hi = k;
        } else {
            path.push(subtree_root(&leaves[lo..k]));
            lo = k;
        }
    }
    path.reverse();
    Some(MerkleProof {
        index: index as u64,
        leaf_count: leaves.len() as u64,
        path,
    })
}

impl MerkleProof {
    /// Checks that `leaf` (a transaction id) is leaf number `self.index` of
    /// a `self.leaf_count`-leaf tree with root `root`. Safe on untrusted
    /// proofs: an index out of range, a path of the wrong length or any
    /// wrong hash gives `false`, and the work is bounded by 64 hashes.
    pub fn verify(&self, root: &Hash32, leaf: &Hash32) -> bool {
        // RFC 9162, section 2.1.3.2.
        if self.index >= self.leaf_count {
            return false;
        }
        let mut f = self.index;
        let mut s = self.leaf_count - 1;
        let mut r = leaf_hash(leaf);
        for p in &self.path {
            if s == 0 {
                return false; // path longer than the tree is deep
            }
            if f & 1 == 1 || f == s {
                r = node_hash(p, &r);
                // The right edge: skip the levels where this node was
                // promoted without a sibling.
                while f & 1 == 0 && f != 0 {
                    f >>= 1;
                    s >>= 1;
                }
            } else {
                r = node_hash(&r, p);
            }
            f >>= 1;
            s >>= 1;
        }
        s == 0 && r == *root
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(parts: &[&[u8]]) -> Hash32 {
        let mut h = Sha256::new();
        for p in parts {
            h.update(p);
        }
        Hash32(h.finalize().into())
    }
    fn l(x: &Hash32) -> Hash32 {
        sha(&[&[0], &x.0])
    }
    fn n(a: &Hash32, b: &Hash32) -> Hash32 {
        sha(&[&[1], &a.0, &b.0])
    }
    fn ids(count: usize) -> Vec<Hash32> {
        (0..count)
            .map(|i| sha(&[b"tx", &(i as u64).to_le_bytes()]))
            .collect()
    }

    /// RFC 6962 MTH, written straight from the RFC's definition.
    fn reference(d: &[Hash32]) -> Hash32 {
        if d.is_empty() {
            return Hash32::ZERO;
        }
        if d.len() == 1 {
            return l(&d[0]);
        }
        let mut k = 1;
        while k * 2 < d.len() {
            k *= 2;
        }
        n(&reference(&d[..k]), &reference(&d[k..]))
    }

    #[test]
    fn split_points() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }

    #[test]
    fn known_small_trees() {
        let d = ids(5);
        let (a, b, c, e, f) = (l(&d[0]), l(&d[1]), l(&d[2]), l(&d[3]), l(&d[4]));
        assert_eq!(root(&[]), Hash32::ZERO);
        assert_eq!(root(&d[..1]), a);
        assert_eq!(root(&d[..2]), n(&a, &b));
        assert_eq!(root(&d[..3]), n(&n(&a, &b), &c));
        assert_eq!(root(&d[..5]), n(&n(&n(&a, &b), &n(&c, &e)), &f));
    }

    #[test]
    fn pinned_vector() {
        // One all-zero id: SHA-256 of 33 zero bytes.
        assert_eq!(
            root(&[Hash32::ZERO]).to_hex(),
            "7f9c9e31ac8256ca2f258583df262dbc7d6f68f2a03043d5c99a4ae5a7396ce9"
        );
    }

    #[test]
    fn root_matches_rfc_definition() {
        for count in 0..=70 {
            let d = ids(count);
            assert_eq!(root(&d), reference(&d), "{count} leaves");
        }
    }

    #[test]
    fn known_proofs() {
        let d = ids(5);
        let (a, b, c, e) = (l(&d[0]), l(&d[1]), l(&d[2]), l(&d[3]));
        let p = prove(&d, 4).unwrap();
        assert_eq!(p.path, vec![n(&n(&a, &b), &n(&c, &e))]);
        let p = prove(&d, 2).unwrap();
        assert_eq!(p.path, vec![e, n(&a, &b), l(&d[4])]);
        let p = prove(&d[..1], 0).unwrap();
        assert!(p.path.is_empty());
        assert!(p.verify(&root(&d[..1]), &d[0]));
    }

    #[test]
    fn every_index_proves_and_verifies() {
        for count in 1..=33 {
            let d = ids(count);
            let r = root(&d);
            for i in 0..count {
                let p = prove(&d, i).unwrap();
                assert_eq!(p.index, i as u64);
                assert_eq!(p.leaf_count, count as u64);
                assert!(p.verify(&r, &d[i]), "{count} leaves, index {i}");
                // Round trip through both encodings.
                let bin = crate::encoding::encode(&p);
                assert_eq!(
                    crate::encoding::decode::<MerkleProof>(&bin, 1 << 16).unwrap(),
                    p
                );
                let json = serde_json::to_string(&p).unwrap();
                assert_eq!(serde_json::from_str::<MerkleProof>(&json).unwrap(), p);
            }
            assert!(prove(&d, count).is_none());
        }
        assert!(prove(&[], 0).is_none());
    }

    #[test]
    fn wrong_leaf_index_root_or_shape_fails() {
        for count in 1..=33 {
            let d = ids(count);
            let r = root(&d);
            let other = ids(40)[39];
            for i in 0..count {
                let p = prove(&d, i).unwrap();
                // Wrong leaf: another leaf of the tree and one not in it.
                assert!(!p.verify(&r, &d[(i + 1) % count]) || count == 1);
                assert!(!p.verify(&r, &other));
                // Wrong root.
                assert!(!p.verify(&Hash32::ZERO, &d[i]));
                assert!(!p.verify(&root(&d[..count - 1]), &d[i]));
                // Wrong index (in range and out of range).
                for j in 0..count as u64 + 2 {
                    if j != i as u64 {
                        let q = MerkleProof {
                            index: j,
                            ..p.clone()
                        };
                        assert!(!q.verify(&r, &d[i]), "{count} leaves, {i} as {j}");
                    }
                }
                // Impossible leaf counts. (A different plausible count can
                // verify: the root does not commit to the count, see
                // `leaf_count_is_not_committed`.)
                for c in [0, i as u64, u64::MAX] {
                    let q = MerkleProof {
                        leaf_count: c,
                        ..p.clone()
                    };
                    assert!(!q.verify(&r, &d[i]));
                }
                // Path tampered, lengthened, shortened.
                for k in 0..p.path.len() {
                    let mut q = p.clone();
                    q.path[k].0[0] ^= 1;
                    assert!(!q.verify(&r, &d[i]));
                }
                let mut q = p.clone();
                q.path.push(r);
                assert!(!q.verify(&r, &d[i]));
                if !p.path.is_empty() {
                    let mut q = p.clone();
                    q.path.pop();
                    assert!(!q.verify(&r, &d[i]));
                }
            }
        }
    }

    #[test]
    fn inner_node_is_not_a_leaf() {
        // A two-leaf tree's root must not verify as a one-leaf tree whose
        // leaf is the concatenation's hash (second-preimage attempt).
        let d = ids(2);
        let r = root(&d);
        let fake = MerkleProof {
            index: 0,
            leaf_count: 1,
            path: vec![],
        };
        assert!(!fake.verify(&r, &n(&l(&d[0]), &l(&d[1]))));
    }

    #[test]
    fn leaf_count_is_not_committed() {
        // Leaf 2 of a 3-leaf tree also verifies as leaf 1 of a 2-leaf tree
        // with the same root: index and count are only meaningful when the
        // verifier knows the true count from elsewhere.
        let d = ids(3);
        let p = prove(&d, 2).unwrap();
        let q = MerkleProof {
            index: 1,
            leaf_count: 2,
            path: p.path.clone(),
        };
        assert!(q.verify(&root(&d), &d[2]));
    }

    #[test]
    fn hostile_proofs_do_not_panic() {
        let r = root(&ids(3));
        let leaf = ids(3)[0];
        for (index, leaf_count) in [
            (0, 0),
            (u64::MAX, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (0, u64::MAX),
        ] {
            let p = MerkleProof {
                index,
                leaf_count,
                path: vec![Hash32::ZERO; 200],
            };
            assert!(!p.verify(&r, &leaf));
        }
    }
}
