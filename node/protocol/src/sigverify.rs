//! Faster signature checks for keys that sign often, with exactly the
//! verdicts of the rule, [`crate::Transaction::verify_signature`]
//! (`PublicKey::verify`: ed25519-dalek `verify_strict` on a key that is a
//! valid point and not of small order).
//!
//! `verify_strict` accepts `(R, s)` on message `M` under key `A` iff `s` is
//! a canonical scalar, `R` decodes to a point that is not of small order,
//! `A` is not of small order, and the canonical encoding of
//! `[s]B - [k]A`, `k = SHA-512(R || A || M) mod L`, equals the bytes of `R`.
//! dalek computes `[s]B - [k]A` with a double-scalar multiplication (about
//! 250 point doublings). For a key seen many times, [`KeyTable`] holds a
//! fixed-base table of `-A` (as dalek's own table of `B`), so `[-k]A` and
//! `[s]B` are table lookups and additions, with no doublings. The point is
//! the same, so its encoding and the verdict are the same; the tests below
//! compare both on valid, altered, malleated, small-order, mixed-order and
//! non-canonical inputs.
//!
//! Why not ed25519 batch verification: see docs/audit.md (it would need a
//! torsion test of every `R` to match `verify_strict`, which costs what the
//! batch saves).

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_TABLE;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsBasepointTable};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::BasepointTable;
use sha2::{Digest, Sha512};

use crate::crypto::{PublicKey, Signature};
use crate::tx::Transaction;

/// A precomputed fixed-base table of `-A` for one valid, non-weak key.
pub struct KeyTable {
    key: PublicKey,
    minus_a: EdwardsBasepointTable,
}

impl KeyTable {
    /// The table of a key, or `None` if the key is not a valid point or is
    /// weak (the rule rejects every signature of such a key).
    pub fn new(key: &PublicKey) -> Option<Self> {
        let vk = key.verifying_key().ok()?;
        Some(KeyTable {
            key: *key,
            minus_a: EdwardsBasepointTable::create(&-vk.to_edwards()),
        })
    }

    /// Exactly `self.key.verify(msg, sig)`.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        let mut r_bytes = [0u8; 32];
        let mut s_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&sig.0[..32]);
        s_bytes.copy_from_slice(&sig.0[32..]);
        let Some(s) = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes)) else {
            return false;
        };
        let Some(r) = CompressedEdwardsY(r_bytes).decompress() else {
            return false;
        };
        if r.is_small_order() {
            return false;
        }
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(self.key.0);
        h.update(msg);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        let expected = ED25519_BASEPOINT_TABLE.mul_base(&s) + self.minus_a.mul_base(&k);
        expected.compress().0 == r_bytes
    }
}

/// Tables for the keys that signed at least [`SignerTables::HOT`]
/// transactions so far, at most `max` of them; others are checked with the
/// rule directly.
pub struct SignerTables {
    seen: HashMap<PublicKey, u32>,
    tables: HashMap<PublicKey, Option<KeyTable>>,
    max: usize,
}

impl SignerTables {
    /// Signatures by one key before a table is built for it (building one
    /// costs about as much as 25 verifications).
    pub const HOT: u32 = 32;

    /// Empty, holding at most `max` tables (about 30 KiB each).
    pub fn new(max: usize) -> Self {
        SignerTables {
            seen: HashMap::new(),
            tables: HashMap::new(),
            max,
        }
    }

    /// Counts the signers of `txs` and builds tables for keys that became hot.
    pub fn observe(&mut self, txs: &[Transaction]) {
        for tx in txs {
            if self.tables.contains_key(&tx.signer) {
                continue;
            }
            let n = self.seen.entry(tx.signer).or_default();
            *n += 1;
            if *n >= Self::HOT && self.tables.len() < self.max {
                self.seen.remove(&tx.signer);
                self.tables.insert(tx.signer, KeyTable::new(&tx.signer));
            }
        }
    }

    /// Exactly [`Transaction::verify_signature`], through a table when the
    /// signer has one.
    pub fn verify(&self, tx: &Transaction) -> bool {
        match self.tables.get(&tx.signer) {
            Some(Some(t)) => t.verify(&tx.signing_hash().0, &tx.signature),
            // Not a valid key: the rule rejects it.
            Some(None) => false,
            None => tx.verify_signature(),
        }
    }

    /// The verdicts of a block's transactions on every core (scoped threads,
    /// as [`crate::state::verify_signatures_parallel`]): the same verdicts as
    /// [`crate::state::verify_signatures`].
    pub fn verify_all(&mut self, txs: &[Transaction]) -> Vec<bool> {
        self.observe(txs);
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1);
        if txs.len() < 64 || threads < 2 {
            return txs.iter().map(|t| self.verify(t)).collect();
        }
        let chunk = txs.len().div_ceil(threads);
        let this = &*self;
        std::thread::scope(|scope| {
            let handles: Vec<_> = txs
                .chunks(chunk)
                .map(|c| scope.spawn(move || c.iter().map(|t| this.verify(t)).collect::<Vec<_>>()))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use curve25519_dalek::traits::IsIdentity;
    use curve25519_dalek::EdwardsPoint;
    use proptest::prelude::*;

    fn both(key: &PublicKey, msg: &[u8], sig: &Signature) -> (bool, bool) {
        let fast = KeyTable::new(key).is_some_and(|t| t.verify(msg, sig));
        (fast, key.verify(msg, sig))
    }

    fn same(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
        let (fast, rule) = both(key, msg, sig);
        assert_eq!(fast, rule, "key {key} sig {sig:?}");
        rule
    }

    proptest! {
        #[test]
        fn same_verdicts_on_valid_and_altered_signatures(
            seed in any::<[u8; 32]>(),
            msg in proptest::collection::vec(any::<u8>(), 0..64),
            byte in 0usize..64,
            bit in 0u8..8,
        ) {
            let k = Keypair::from_seed(seed);
            let sig = k.sign(&msg);
            prop_assert!(same(&k.public(), &msg, &sig));
            let mut bad = sig;
            bad.0[byte] ^= 1 << bit;
            prop_assert!(!same(&k.public(), &msg, &bad));
            let mut other = msg.clone();
            other.push(1);
            prop_assert!(!same(&k.public(), &other, &sig));
        }
    }

    /// s + L: the same equation, a non-canonical scalar.
    #[test]
    fn malleated_s_is_rejected_by_both() {
        let k = Keypair::from_label("m");
        let mut sig = k.sign(b"m");
        let s = Scalar::from_canonical_bytes(sig.0[32..].try_into().unwrap()).unwrap();
        let l_plus_s = {
            // L + s as little-endian bytes (fits: s < L < 2^253).
            const L: [u8; 32] = [
                0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
                0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
            ];
            let (mut out, mut carry) = ([0u8; 32], 0u16);
            for (i, o) in out.iter_mut().enumerate() {
                let v = s.as_bytes()[i] as u16 + L[i] as u16 + carry;
                *o = v as u8;
                carry = v >> 8;
            }
            out
        };
        sig.0[32..].copy_from_slice(&l_plus_s);
        assert!(!same(&k.public(), b"m", &sig));
    }

    /// Small-order and non-canonical R encodings, a mixed-order R.
    #[test]
    fn special_r_values_get_the_same_verdicts() {
        let k = Keypair::from_label("r");
        let sig = k.sign(b"x");
        for t in EIGHT_TORSION.iter() {
            // R a small-order point.
            let mut s1 = sig;
            s1.0[..32].copy_from_slice(&t.compress().0);
            assert!(!same(&k.public(), b"x", &s1));
            // R plus a torsion point: not small order, but not the point of
            // the equation; both reject (unless t is the identity).
            let r = CompressedEdwardsY(sig.0[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            let mut s2 = sig;
            s2.0[..32].copy_from_slice(&(r + t).compress().0);
            assert_eq!(same(&k.public(), b"x", &s2), t.is_identity());
        }
        // A non-canonical encoding of the identity (y = 1 + p).
        let mut nc = [0xffu8; 32];
        nc[0] = 0xee;
        nc[31] = 0x7f;
        let mut s3 = sig;
        s3.0[..32].copy_from_slice(&nc);
        assert!(!same(&k.public(), b"x", &s3));
    }

    /// A mixed-order key (valid, not small order, not in the prime-order
    /// subgroup) with a signature crafted so that `verify_strict` accepts
    /// it: the table must accept it too.
    #[test]
    fn a_mixed_order_key_with_an_accepted_signature() {
        let a = Scalar::from_bytes_mod_order([3u8; 32]);
        let t = EIGHT_TORSION[1];
        let big_a = EdwardsPoint::mul_base(&a) + t;
        let key = PublicKey(big_a.compress().0);
        assert!(key.verifying_key().is_ok(), "mixed order is not weak");
        let msg = b"crafted";
        let mut found = None;
        'search: for attempt in 0u64..4_096 {
            let r = Scalar::from(attempt + 1);
            for j in 0..8u8 {
                // R = [r]B - [j]T; accepted iff k = j (mod 8) and s = r + k a.
                let big_r = EdwardsPoint::mul_base(&r) - t * Scalar::from(j);
                let r_bytes = big_r.compress().0;
                let mut h = Sha512::new();
                h.update(r_bytes);
                h.update(key.0);
                h.update(msg);
                let mut hash = [0u8; 64];
                hash.copy_from_slice(&h.finalize());
                let k = Scalar::from_bytes_mod_order_wide(&hash);
                if k.as_bytes()[0] % 8 == j {
                    let s = r + k * a;
                    let mut sig = [0u8; 64];
                    sig[..32].copy_from_slice(&r_bytes);
                    sig[32..].copy_from_slice(s.as_bytes());
                    found = Some(Signature(sig));
                    break 'search;
                }
            }
        }
        let sig = found.expect("a crafted signature within 4096 tries");
        assert!(same(&key, msg, &sig), "both accept");
    }

    #[test]
    fn weak_keys_and_block_verdicts() {
        let mut id = [0u8; 32];
        id[0] = 1;
        assert!(KeyTable::new(&PublicKey(id)).is_none());
        // A block where one hot signer has a bad signature at index 70.
        let k = Keypair::from_label("hot");
        let to = Keypair::from_label("to").public();
        let mut txs: Vec<Transaction> = (0..100)
            .map(|n| {
                Transaction::sign(
                    "c",
                    &k,
                    n,
                    crate::tx::TxBody::Transfer {
                        to,
                        amount: 1,
                        memo: String::new(),
                    },
                )
            })
            .collect();
        txs[70].signature.0[5] ^= 1;
        let mut tables = SignerTables::new(8);
        let verdicts = tables.verify_all(&txs);
        assert_eq!(verdicts, crate::state::verify_signatures(&txs));
        assert!(tables.tables.contains_key(&k.public()));
        assert_eq!(verdicts.iter().filter(|v| !**v).count(), 1);
    }
}
