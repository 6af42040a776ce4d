//! The signature rule, and batch verification with exactly its verdicts.
//!
//! **The rule** ([`verify`], which [`PublicKey::verify`] and so
//! [`Transaction::verify_signature`] and every certificate check call):
//! an ed25519 signature `(R, s)` on `M` under key `A` is valid iff
//!
//! 1. `s` is a canonical scalar (`s < L`: no `s + L` malleability);
//! 2. `A` is the canonical encoding of a point (RFC 8032 §5.1.3: `y < p`)
//!    that is not of small order (no weak keys);
//! 3. `R` is the canonical encoding of a point that is not of small order;
//! 4. `[8]([s]B - [k]A - R)` is the identity, `k = SHA-512(R || A || M) mod L`.
//!
//! Items 2 and 3 ([`decode_point`]) give every point one encoding: the 19
//! encodings with `y ≥ p` (`y = p + t`, an alias of the point with
//! coordinate `t`) are refused, whatever the order of that point. The
//! other non-canonical form RFC 8032 refuses, `x = 0` with the sign bit
//! set, only exists for `y = ±1`, points of order 1 and 2, which the
//! small-order test refuses.
//!
//! Item 4 is the *cofactored* equation of RFC 8032 §5.1.7 (as in ZIP 215
//! and the `ed25519-consensus` crate). What the rule accepts and
//! ed25519-dalek's `verify_strict` (cofactorless: `[s]B = R + [k]A`)
//! refuses is exactly the signatures for which `[s]B - [k]A - R` is a
//! non-zero point of small order: a torsion component in `R`, in `A`
//! (a mixed-order key), or in both, that does not cancel out. Only the
//! holder of the key's secret scalar can make one (the prime-order parts
//! must still match), so it gives an outsider no forgery, and moving `R`
//! by a torsion point changes `k`, so it gives no malleation either. Why it
//! and not the cofactorless `verify_strict`: only the cofactored equation
//! lets a random linear combination of many signatures (batch
//! verification) give the same verdict as checking them one by one. With
//! the cofactorless one, a torsion component in one `R` is missed by the
//! batch whenever its random coefficient is even, so a batch and a single
//! check could disagree on the same chain (docs/audit.md).
//!
//! **Batches** ([`verify_txs`]): transactions go in groups of
//! [`BATCH`]; a group passes iff
//! `[8](Σ zᵢRᵢ + Σ (zᵢkᵢ)Aᵢ − (Σ zᵢsᵢ)B)` is the identity, with 128-bit
//! coefficients `zᵢ` drawn from a SHA-512 transcript of the whole group
//! (an attacker cannot choose signatures after seeing them). One
//! multi-scalar multiplication replaces `BATCH` double-scalar ones. A group
//! that fails is checked one by one, so the verdicts name the bad
//! signatures. A valid group always passes; a group with an invalid
//! signature passes with probability below 2⁻¹²⁰.

use std::collections::HashMap;

use curve25519_dalek::constants::ED25519_BASEPOINT_POINT;
use curve25519_dalek::edwards::{CompressedEdwardsY, EdwardsPoint};
use curve25519_dalek::scalar::Scalar;
use curve25519_dalek::traits::{IsIdentity, VartimeMultiscalarMul};
use sha2::{Digest, Sha512};

use crate::crypto::{PublicKey, Signature};
use crate::tx::Transaction;

/// Signatures per batch equation: large enough to amortise the
/// multi-scalar multiplication, small enough that a bad signature costs
/// little re-checking.
pub const BATCH: usize = 64;

/// Below this many transactions one thread verifies (spawning costs more).
const PARALLEL_MIN: usize = 64;

/// A point as the rule sees it (items 2 and 3): `None` unless `bytes` is
/// the canonical encoding of a point that is not of small order.
/// Canonical: the 255-bit `y` is below `p = 2^255 - 19`; "negative zero"
/// (`x = 0`, sign bit set) needs `y = ±1`, both of small order.
pub fn decode_point(bytes: &[u8; 32]) -> Option<EdwardsPoint> {
    if !is_canonical_y(bytes) {
        return None;
    }
    CompressedEdwardsY(*bytes)
        .decompress()
        .filter(|p| !p.is_small_order())
}

/// Whether the low 255 bits of `bytes` (little endian) are below
/// `p = 2^255 - 19`: false exactly for `y` in `p ..= 2^255 - 1`, whose
/// bytes are `ed..ff`, then thirty `ff`, then `7f` (sign bit aside).
fn is_canonical_y(bytes: &[u8; 32]) -> bool {
    !(bytes[0] >= 0xed && bytes[1..31].iter().all(|b| *b == 0xff) && bytes[31] & 0x7f == 0x7f)
}

/// A key as the rule sees it (item 2).
fn decode_key(key: &PublicKey) -> Option<EdwardsPoint> {
    decode_point(&key.0)
}

/// Whether `key` can sign at all under the rule: a canonical encoding of a
/// point not of small order. Address parsing refuses every other key.
pub fn is_valid_key(key: &PublicKey) -> bool {
    decode_key(key).is_some()
}

/// A signature with its scalars and `R` decoded, ready for the equation;
/// `None` if it fails item 1 or 3.
struct Prepared {
    /// The encodings of `A` and `R`, for the batch transcript.
    a_bytes: [u8; 32],
    r_bytes: [u8; 32],
    a: EdwardsPoint,
    r: EdwardsPoint,
    s: Scalar,
    k: Scalar,
}

impl Prepared {
    fn new(key: &PublicKey, a: EdwardsPoint, msg: &[u8], sig: &Signature) -> Option<Self> {
        let mut s_bytes = [0u8; 32];
        s_bytes.copy_from_slice(&sig.0[32..]);
        let s = Option::<Scalar>::from(Scalar::from_canonical_bytes(s_bytes))?;
        let mut r_bytes = [0u8; 32];
        r_bytes.copy_from_slice(&sig.0[..32]);
        let r = decode_point(&r_bytes)?;
        let mut h = Sha512::new();
        h.update(r_bytes);
        h.update(key.0);
        h.update(msg);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h.finalize());
        let k = Scalar::from_bytes_mod_order_wide(&wide);
        Some(Prepared {
            a_bytes: key.0,
            r_bytes,
            a,
            r,
            s,
            k,
        })
    }

    /// Item 4 for this signature alone.
    fn check(&self) -> bool {
        let sb_minus_ka =
            EdwardsPoint::vartime_double_scalar_mul_basepoint(&self.k, &-self.a, &self.s);
        (sb_minus_ka - self.r).mul_by_cofactor().is_identity()
    }
}

/// The rule: is `sig` a valid signature of `msg` under `key`? (See the
/// module documentation.)
pub fn verify(key: &PublicKey, msg: &[u8], sig: &Signature) -> bool {
    decode_key(key)
        .and_then(|a| Prepared::new(key, a, msg, sig))
        .is_some_and(|p| p.check())
}

/// Item 4 for a whole group at once (see the module documentation).
fn check_batch(group: &[Prepared]) -> bool {
    let mut transcript = Sha512::new();
    transcript.update(b"alliance/sigverify/batch/v1");
    for p in group {
        transcript.update(p.r_bytes);
        transcript.update(p.a_bytes);
        transcript.update(p.s.as_bytes());
        transcript.update(p.k.as_bytes());
    }
    let seed = transcript.finalize();
    let z: Vec<Scalar> = (0..group.len() as u32)
        .map(|i| {
            let mut h = Sha512::new();
            h.update(seed);
            h.update(i.to_le_bytes());
            let mut z = [0u8; 16];
            z.copy_from_slice(&h.finalize()[..16]);
            Scalar::from(u128::from_le_bytes(z))
        })
        .collect();
    let b_coefficient: Scalar = group.iter().zip(&z).map(|(p, z)| z * p.s).sum();
    let scalars = std::iter::once(-b_coefficient)
        .chain(z.iter().copied())
        .chain(group.iter().zip(&z).map(|(p, z)| z * p.k));
    let points = std::iter::once(ED25519_BASEPOINT_POINT)
        .chain(group.iter().map(|p| p.r))
        .chain(group.iter().map(|p| p.a));
    EdwardsPoint::vartime_multiscalar_mul(scalars, points)
        .mul_by_cofactor()
        .is_identity()
}

/// Decoded signer keys, so that a frequent signer's key is decoded (a
/// square root) once rather than per signature. Bounded, in two
/// generations: when the newer one holds `max` keys it becomes the older
/// one and the previous older one is dropped, so a key in use within the
/// last `max` new keys stays decoded, and at most `2 * max` are held.
pub struct KeyCache {
    keys: HashMap<PublicKey, Option<EdwardsPoint>>,
    older: HashMap<PublicKey, Option<EdwardsPoint>>,
    max: usize,
}

impl KeyCache {
    /// Empty, holding at most `2 * max` keys (about 200 bytes each).
    pub fn new(max: usize) -> Self {
        KeyCache {
            keys: HashMap::new(),
            older: HashMap::new(),
            max,
        }
    }

    /// Decodes and keeps the signers of `txs` not yet known.
    pub fn learn(&mut self, txs: &[Transaction]) {
        if self.max == 0 {
            return;
        }
        for tx in txs {
            if self.keys.contains_key(&tx.signer) {
                continue;
            }
            if self.keys.len() >= self.max {
                self.older = std::mem::take(&mut self.keys);
            }
            let point = match self.older.remove(&tx.signer) {
                Some(point) => point,
                None => decode_key(&tx.signer),
            };
            self.keys.insert(tx.signer, point);
        }
        debug_assert!(self.keys.len() <= self.max && self.older.len() <= self.max);
    }

    /// Keys held (both generations).
    pub fn len(&self) -> usize {
        self.keys.len() + self.older.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn key(&self, key: &PublicKey) -> Option<EdwardsPoint> {
        match self.keys.get(key).or_else(|| self.older.get(key)) {
            Some(point) => *point,
            None => decode_key(key),
        }
    }

    /// Verdicts of `txs` on this thread, batch by batch.
    fn verify_chunk(&self, txs: &[Transaction]) -> Vec<bool> {
        let mut verdicts = Vec::with_capacity(txs.len());
        for batch in txs.chunks(BATCH) {
            let hashes: Vec<_> = batch.iter().map(Transaction::signing_hash).collect();
            let items: Vec<(&PublicKey, &[u8], &Signature)> = batch
                .iter()
                .zip(&hashes)
                .map(|(tx, h)| (&tx.signer, &h.0[..], &tx.signature))
                .collect();
            let group = self.verify_group(&items);
            // A second signature (a merchant's over an order) is rare:
            // checked alone, and only where the signer's holds.
            verdicts.extend(
                group
                    .into_iter()
                    .zip(batch)
                    .map(|(ok, tx)| ok && tx.cosignature_ok()),
            );
        }
        verdicts
    }

    /// Verdicts of at most [`BATCH`] signatures: one batch equation, and
    /// one by one only if it fails.
    fn verify_group(&self, items: &[(&PublicKey, &[u8], &Signature)]) -> Vec<bool> {
        debug_assert!(items.len() <= BATCH);
        let mut verdicts = vec![false; items.len()];
        let mut group = Vec::with_capacity(items.len());
        let mut at = Vec::with_capacity(items.len());
        for (i, (key, msg, sig)) in items.iter().enumerate() {
            // Items 1-3 failed: invalid, whatever the equation says.
            if let Some(p) = self.key(key).and_then(|a| Prepared::new(key, a, msg, sig)) {
                group.push(p);
                at.push(i);
            }
        }
        if check_batch(&group) {
            for i in at {
                verdicts[i] = true;
            }
        } else {
            for (p, i) in group.iter().zip(at) {
                verdicts[i] = p.check();
            }
        }
        verdicts
    }
}

/// The verdicts of [`verify`] for `(key, message, signature)` items, by
/// batch verification in groups of [`BATCH`] on this thread: the path
/// transactions take, for any message (the conformance tests run the
/// public Ed25519 test suites through it).
pub fn verify_batch(items: &[(PublicKey, &[u8], Signature)]) -> Vec<bool> {
    let cache = KeyCache::new(0);
    let mut verdicts = Vec::with_capacity(items.len());
    for batch in items.chunks(BATCH) {
        let refs: Vec<(&PublicKey, &[u8], &Signature)> =
            batch.iter().map(|(k, m, s)| (k, *m, s)).collect();
        verdicts.extend(cache.verify_group(&refs));
    }
    verdicts
}

/// [`verify_txs`] on the calling thread only (for measurements of one core,
/// and for callers that run their own threads).
pub fn verify_txs_on_this_thread(txs: &[Transaction], cache: &mut KeyCache) -> Vec<bool> {
    cache.learn(txs);
    cache.verify_chunk(txs)
}

/// The verdicts of [`Transaction::verify_signature`] for `txs`, by batch
/// verification on every core (scoped threads). The same verdicts as
/// one by one, whatever the scheduling; `cache` keeps decoded signer keys
/// across calls.
pub fn verify_txs(txs: &[Transaction], cache: &mut KeyCache) -> Vec<bool> {
    cache.learn(txs);
    let threads = crate::cores::available();
    if txs.len() < PARALLEL_MIN || threads < 2 {
        return verify_txs_on_this_thread(txs, cache);
    }
    // Whole batches per thread.
    let chunk = txs.len().div_ceil(threads).div_ceil(BATCH) * BATCH;
    let cache = &*cache;
    std::thread::scope(|scope| {
        let handles: Vec<_> = txs
            .chunks(chunk)
            .map(|c| scope.spawn(move || cache.verify_chunk(c)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::tests::add_order_to_s;
    use crate::crypto::Keypair;
    use crate::tx::TxBody;
    use curve25519_dalek::constants::EIGHT_TORSION;
    use proptest::prelude::*;

    fn hram(r: &[u8; 32], key: &PublicKey, msg: &[u8]) -> Scalar {
        let mut h = Sha512::new();
        h.update(r);
        h.update(key.0);
        h.update(msg);
        let mut wide = [0u8; 64];
        wide.copy_from_slice(&h.finalize());
        Scalar::from_bytes_mod_order_wide(&wide)
    }

    /// A signature made by hand with secret scalar `a` and nonce point
    /// `[r]B + extra` (a key holder can put torsion into `R`).
    fn crafted(
        a: Scalar,
        key: &PublicKey,
        r: Scalar,
        extra: EdwardsPoint,
        msg: &[u8],
    ) -> Signature {
        let big_r = (EdwardsPoint::mul_base(&r) + extra).compress().0;
        let s = r + hram(&big_r, key, msg) * a;
        let mut sig = [0u8; 64];
        sig[..32].copy_from_slice(&big_r);
        sig[32..].copy_from_slice(s.as_bytes());
        Signature(sig)
    }

    /// Transactions of several signers, one tampered in each listed way.
    fn block(n: u64) -> Vec<Transaction> {
        let keys: Vec<Keypair> = (0..5)
            .map(|i| Keypair::from_label(&format!("k{i}")))
            .collect();
        let to = Keypair::from_label("to").public();
        (0..n)
            .map(|i| {
                Transaction::sign(
                    "c",
                    &keys[(i % 5) as usize],
                    i,
                    TxBody::Transfer {
                        to,
                        amount: 1,
                        memo: String::new(),
                    },
                )
            })
            .collect()
    }

    fn one_by_one(txs: &[Transaction]) -> Vec<bool> {
        txs.iter().map(Transaction::verify_signature).collect()
    }

    /// The rule accepts what dalek's `verify_strict` accepts: ordinary
    /// signatures made by ed25519-dalek.
    #[test]
    fn dalek_signatures_are_valid_and_altered_ones_are_not() {
        let k = Keypair::from_label("alice");
        let sig = k.sign(b"m");
        assert!(verify(&k.public(), b"m", &sig));
        assert!(!verify(&k.public(), b"n", &sig));
        assert!(!verify(&Keypair::from_label("bob").public(), b"m", &sig));
    }

    /// s + L: the same equation, a non-canonical scalar (item 1).
    #[test]
    fn malleated_s_is_rejected() {
        let k = Keypair::from_label("m");
        let mut sig = k.sign(b"m");
        add_order_to_s(&mut sig);
        assert!(!verify(&k.public(), b"m", &sig));
        let mut txs = block(70);
        add_order_to_s(&mut txs[3].signature);
        let v = verify_txs(&txs, &mut KeyCache::new(8));
        assert_eq!(v, one_by_one(&txs));
        assert!(!v[3]);
    }

    /// Weak keys (item 2) and small-order or undecodable R (item 3), even
    /// when the key holder makes the equation hold.
    #[test]
    fn weak_keys_and_small_order_r_are_rejected() {
        let mut identity = [0u8; 32];
        identity[0] = 1;
        let k = Keypair::from_label("r");
        assert!(!verify(&PublicKey(identity), b"x", &k.sign(b"x")));
        let a = Scalar::from_bytes_mod_order([7u8; 32]);
        let key = PublicKey(EdwardsPoint::mul_base(&a).compress().0);
        for t in EIGHT_TORSION.iter() {
            // R = t: r = 0 with torsion; the equation holds (cofactored).
            let sig = crafted(a, &key, Scalar::ZERO, *t, b"x");
            assert!(!verify(&key, b"x", &sig), "small-order R {t:?}");
        }
        // A non-canonical encoding of the identity (y = 1 + p).
        let mut nc = [0xffu8; 32];
        nc[0] = 0xee;
        nc[31] = 0x7f;
        let mut sig = k.sign(b"x");
        sig.0[..32].copy_from_slice(&nc);
        assert!(!verify(&k.public(), b"x", &sig));
    }

    /// The encodings `(canonical, alias)` of the points with `y = t` for
    /// small `t`, either sign, that are on the curve and not of small
    /// order, where `alias` has `y = p + t` (`y ≥ p`: not canonical). For
    /// the canonical-form rules of keys, `R` and addresses.
    pub(crate) fn ordinary_point_aliases() -> Vec<([u8; 32], [u8; 32])> {
        let mut out = Vec::new();
        for t in 0u8..19 {
            for sign in [0u8, 0x80] {
                let mut canonical = [0u8; 32];
                canonical[0] = t;
                canonical[31] = sign;
                let mut alias = [0xffu8; 32];
                alias[0] = 0xed + t;
                alias[31] = 0x7f | sign;
                let ordinary = CompressedEdwardsY(canonical)
                    .decompress()
                    .is_some_and(|p| !p.is_small_order());
                if ordinary {
                    out.push((canonical, alias));
                }
            }
        }
        assert!(!out.is_empty(), "some t gives an ordinary point");
        out
    }

    /// Items 2 and 3 refuse the encodings with `y ≥ p` of points that are
    /// not of small order (the aliases `y = p + t`), as keys and as `R`;
    /// the canonical encoding of the same point decodes.
    #[test]
    fn non_canonical_encodings_of_ordinary_points_are_refused() {
        for (canonical, alias) in ordinary_point_aliases() {
            let t = canonical[0];
            // The alias decompresses to the same point (curve25519-dalek
            // reduces y mod p): only the rule's canonical test refuses it.
            assert_eq!(
                CompressedEdwardsY(alias).decompress(),
                CompressedEdwardsY(canonical).decompress()
            );
            assert!(decode_point(&canonical).is_some(), "t = {t}");
            assert!(decode_point(&alias).is_none(), "alias of t = {t}");
            assert!(!is_valid_key(&PublicKey(alias)));
            // As a key and as R, with a well-formed signature otherwise.
            let k = Keypair::from_label("nc");
            let mut sig = k.sign(b"m");
            assert!(!verify(&PublicKey(alias), b"m", &sig));
            sig.0[..32].copy_from_slice(&alias);
            assert!(!verify(&k.public(), b"m", &sig));
            let v = verify_batch(&[
                (PublicKey(alias), &b"m"[..], k.sign(b"m")),
                (k.public(), &b"m"[..], sig),
            ]);
            assert_eq!(v, vec![false, false]);
        }
    }

    /// The one difference from `verify_strict`: a key holder's signature
    /// whose R carries torsion is valid (cofactored equation), in a batch
    /// and alone; a third party adding torsion to someone's R is not.
    #[test]
    fn torsion_in_r_by_the_key_holder_is_accepted_by_both_paths() {
        let a = Scalar::from_bytes_mod_order([3u8; 32]);
        let key = PublicKey(EdwardsPoint::mul_base(&a).compress().0);
        let mut txs = block(64);
        for (j, t) in EIGHT_TORSION.iter().enumerate() {
            let sig = crafted(a, &key, Scalar::from(j as u64 + 11), *t, b"t");
            assert!(verify(&key, b"t", &sig));
            // Third party: same s, R shifted by torsion: k changes, rejected.
            let mut moved = sig;
            let r = CompressedEdwardsY(sig.0[..32].try_into().unwrap())
                .decompress()
                .unwrap();
            moved.0[..32].copy_from_slice(&(r + EIGHT_TORSION[1]).compress().0);
            assert!(!verify(&key, b"t", &moved));
            // In a batch, as a transaction signed by hand.
            let tx = &mut txs[j * 7];
            tx.signer = key;
            let msg = tx.signing_hash().0;
            tx.signature = crafted(a, &key, Scalar::from(j as u64 + 11), *t, &msg);
        }
        let v = verify_txs(&txs, &mut KeyCache::new(8));
        assert_eq!(v, one_by_one(&txs));
        assert!(v.iter().all(|ok| *ok));
    }

    /// A mixed-order key (valid, not small order, not in the prime-order
    /// subgroup): both paths accept its holder's signatures.
    #[test]
    fn a_mixed_order_key_signs_validly_in_both_paths() {
        let a = Scalar::from_bytes_mod_order([5u8; 32]);
        let big_a = EdwardsPoint::mul_base(&a) + EIGHT_TORSION[1];
        let key = PublicKey(big_a.compress().0);
        assert!(key.verifying_key().is_ok(), "mixed order is not weak");
        let mut txs = block(65);
        for j in [0usize, 31, 64] {
            let tx = &mut txs[j];
            tx.signer = key;
            let msg = tx.signing_hash().0;
            // [s]B - [k]A = [r]B - [k]T: R = [r]B passes the cofactored
            // equation whatever k is.
            tx.signature = crafted(
                a,
                &key,
                Scalar::from(j as u64 + 3),
                EdwardsPoint::default(),
                &msg,
            );
        }
        let v = verify_txs(&txs, &mut KeyCache::new(8));
        assert_eq!(v, one_by_one(&txs));
        assert!(v.iter().all(|ok| *ok));
    }

    /// The cache stays within two generations, and a signer seen within
    /// the last `max` new keys keeps its decoded key.
    #[test]
    fn key_cache_is_bounded_and_keeps_recent_signers() {
        let to = Keypair::from_label("to").public();
        let txs: Vec<Transaction> = (0..40)
            .map(|i| {
                let key = Keypair::from_label(&format!("signer {i}"));
                Transaction::sign(
                    "c",
                    &key,
                    0,
                    TxBody::Transfer {
                        to,
                        amount: 1,
                        memo: String::new(),
                    },
                )
            })
            .collect();
        let mut cache = KeyCache::new(8);
        for tx in &txs {
            cache.learn(std::slice::from_ref(tx));
            assert!(cache.len() <= 16, "held {}", cache.len());
        }
        let recent = txs.last().expect("a block").signer;
        assert!(cache.keys.contains_key(&recent));
        assert!(cache.len() < txs.len());
        assert_eq!(verify_txs(&txs, &mut cache), one_by_one(&txs));
    }

    proptest! {
        /// Batch verdicts equal one-by-one verdicts, with bad signatures
        /// (flipped bits in R, s, the message) anywhere in the block.
        #[test]
        fn batch_verdicts_equal_one_by_one(
            n in 1u64..200,
            flips in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..64, 0u8..8), 0..6),
            cache in 0usize..8,
        ) {
            let mut txs = block(n);
            for (i, byte, bit) in flips {
                let i = i.index(txs.len());
                txs[i].signature.0[byte] ^= 1 << bit;
            }
            let expected = one_by_one(&txs);
            let v = verify_txs(&txs, &mut KeyCache::new(cache));
            prop_assert_eq!(v, expected);
        }
    }

    #[test]
    fn one_bad_signature_in_a_batch_is_named() {
        let mut txs = block(100);
        txs[70].signature.0[5] ^= 1;
        let mut cache = KeyCache::new(8);
        let v = verify_txs(&txs, &mut cache);
        assert_eq!(v, one_by_one(&txs));
        assert_eq!(v.iter().position(|ok| !ok), Some(70));
        assert_eq!(v.iter().filter(|ok| !**ok).count(), 1);
        assert_eq!(cache.keys.len(), 5);
    }
}
