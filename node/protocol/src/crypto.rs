//! Hashes, keys and signatures. Signatures are made by ed25519-dalek; the
//! verification rule is [`crate::sigverify::verify`] (canonical `s`, no
//! small-order key or `R`, the cofactored equation), which batch
//! verification matches exactly.

use std::fmt;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{de, Deserialize, Deserializer, Serialize, Serializer};

/// A SHA-256 digest. Shown and parsed as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// The all-zero hash, used for "no parent" and empty trees.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// Lowercase hex form.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses 64 hex characters.
    pub fn from_hex(s: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(s).map_err(|_| KeyError::BadHex)?;
        let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadLength)?;
        Ok(Hash32(arr))
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", &self.to_hex()[..12])
    }
}

/// Errors parsing keys, hashes and addresses from text or bytes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Not hex.
    #[error("not valid hex")]
    BadHex,
    /// Wrong number of bytes.
    #[error("wrong length")]
    BadLength,
    /// Not the canonical encoding of an ed25519 point, or a weak
    /// (small-order) key.
    #[error("not a valid ed25519 public key (a point's canonical encoding, not of small order)")]
    BadKey,
    /// Bech32 checksum or character set wrong: most likely a typo.
    #[error("address checksum is wrong (a typo?): {0}")]
    BadChecksum(String),
    /// Not the one text form of an address (lowercase, nothing around it).
    #[error("an address is written in lowercase with nothing around it")]
    NotCanonical,
    /// Bech32 prefix is not the alliance's.
    #[error("address must start with `{expected}1`, found `{found}`")]
    WrongPrefix {
        /// Expected human-readable prefix.
        expected: &'static str,
        /// Prefix found.
        found: String,
    },
}

/// An ed25519 public key: the identity of a customer or merchant.
/// Shown to people as a bech32m address (see [`crate::address`]).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);

impl PublicKey {
    /// The key as a dalek verifying key; fails for bytes that are not the
    /// canonical encoding of a point, or that are a weak (small-order)
    /// point: the signature rule's key test ([`crate::sigverify::is_valid_key`]).
    pub fn verifying_key(&self) -> Result<VerifyingKey, KeyError> {
        if !crate::sigverify::is_valid_key(self) {
            return Err(KeyError::BadKey);
        }
        VerifyingKey::from_bytes(&self.0).map_err(|_| KeyError::BadKey)
    }

    /// Is `sig` a valid signature of `msg` by this key? The protocol's
    /// rule: [`crate::sigverify::verify`].
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> bool {
        crate::sigverify::verify(self, msg, sig)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", crate::address::encode(self))
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&crate::address::encode(self))
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, KeyError> {
        crate::address::decode(s)
    }
}

/// An ed25519 signature (R || s), 64 bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sig:{}", &hex::encode(self.0)[..16])
    }
}

/// A secret signing key. Never serialised by this crate: keystores (client)
/// and node key files (node) own how secrets are stored.
#[derive(Clone)]
pub struct Keypair(SigningKey);

impl Keypair {
    /// A fresh key from the operating system's random number generator.
    pub fn generate() -> Self {
        Keypair(SigningKey::generate(&mut rand_core::OsRng))
    }

    /// A key from a 32-byte secret seed (deterministic: tests, devnets).
    pub fn from_seed(seed: [u8; 32]) -> Self {
        Keypair(SigningKey::from_bytes(&seed))
    }

    /// A deterministic test/devnet key derived from a label.
    pub fn from_label(label: &str) -> Self {
        Self::from_seed(
            crate::encoding::hash_with_domain("points-alliance/dev-key", label.as_bytes()).0,
        )
    }

    /// The 32-byte secret seed (for keystores).
    pub fn seed(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `msg`.
    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl fmt::Debug for Keypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Keypair({})", self.public())
    }
}

// ---- serde: fixed-width tuples in binary, text for people -------------------

fn ser_fixed<S: Serializer, const N: usize>(bytes: &[u8; N], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeTuple;
    let mut t = s.serialize_tuple(N)?;
    for b in bytes {
        t.serialize_element(b)?;
    }
    t.end()
}

fn de_fixed<'de, D: Deserializer<'de>, const N: usize>(d: D) -> Result<[u8; N], D::Error> {
    struct V<const N: usize>;
    impl<'de, const N: usize> de::Visitor<'de> for V<N> {
        type Value = [u8; N];
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            write!(f, "{N} bytes")
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<[u8; N], A::Error> {
            let mut out = [0u8; N];
            for (i, slot) in out.iter_mut().enumerate() {
                *slot = seq
                    .next_element()?
                    .ok_or_else(|| de::Error::invalid_length(i, &self))?;
            }
            Ok(out)
        }
    }
    d.deserialize_tuple(N, V::<N>)
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&self.to_hex())
        } else {
            ser_fixed(&self.0, s)
        }
    }
}

/// Whether `s` is lowercase hex: the one text form of hashes and
/// signatures (what [`Hash32::to_hex`] writes).
fn is_lower_hex(s: &str) -> bool {
    s.bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            if !is_lower_hex(&s) {
                return Err(de::Error::custom("a hash is 64 lowercase hex characters"));
            }
            Hash32::from_hex(&s).map_err(de::Error::custom)
        } else {
            de_fixed(d).map(Hash32)
        }
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&crate::address::encode(self))
        } else {
            ser_fixed(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            crate::address::decode(&s).map_err(de::Error::custom)
        } else {
            de_fixed(d).map(PublicKey)
        }
    }
}

impl Serialize for Signature {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if s.is_human_readable() {
            s.serialize_str(&hex::encode(self.0))
        } else {
            ser_fixed(&self.0, s)
        }
    }
}

impl<'de> Deserialize<'de> for Signature {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if d.is_human_readable() {
            let s = String::deserialize(d)?;
            if !is_lower_hex(&s) {
                return Err(de::Error::custom(
                    "a signature is 128 lowercase hex characters",
                ));
            }
            let bytes = hex::decode(&s).map_err(de::Error::custom)?;
            let arr: [u8; 64] = bytes
                .try_into()
                .map_err(|_| de::Error::custom("signature must be 64 bytes"))?;
            Ok(Signature(arr))
        } else {
            de_fixed(d).map(Signature)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::encoding::{decode, encode};

    #[test]
    fn sign_and_verify() {
        let k = Keypair::from_label("alice");
        let sig = k.sign(b"hello");
        assert!(k.public().verify(b"hello", &sig));
        assert!(!k.public().verify(b"hellp", &sig));
        let other = Keypair::from_label("bob");
        assert!(!other.public().verify(b"hello", &sig));
    }

    #[test]
    fn malleated_signature_is_rejected() {
        let k = Keypair::from_label("alice");
        let mut sig = k.sign(b"m");
        add_order_to_s(&mut sig);
        assert!(!k.public().verify(b"m", &sig));
    }

    /// Adds the group order L to `s`: the same point equation with a
    /// non-canonical scalar, which the rule must refuse (s < L < 2^253, so
    /// the sum fits in 32 bytes).
    pub(crate) fn add_order_to_s(sig: &mut Signature) {
        const L: [u8; 32] = [
            0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9,
            0xde, 0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
        ];
        let mut carry = 0u16;
        for (s, l) in sig.0[32..].iter_mut().zip(L) {
            let v = *s as u16 + l as u16 + carry;
            *s = v as u8;
            carry = v >> 8;
        }
    }

    #[test]
    fn weak_key_is_rejected() {
        // The identity point encoding: a small-order key.
        let mut id = [0u8; 32];
        id[0] = 1;
        assert_eq!(PublicKey(id).verifying_key().err(), Some(KeyError::BadKey));
    }

    #[test]
    fn binary_forms_are_fixed_width() {
        let h = Hash32([7; 32]);
        assert_eq!(encode(&h), vec![7; 32]);
        let s = Signature([9; 64]);
        assert_eq!(encode(&s).len(), 64);
        assert_eq!(decode::<Signature>(&encode(&s), 64).unwrap(), s);
    }

    #[test]
    fn text_forms_round_trip() {
        let k = Keypair::from_label("alice").public();
        let json = serde_json::to_string(&k).unwrap();
        assert!(json.starts_with("\"pa1"));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), k);
        let h = Hash32([0xab; 32]);
        assert_eq!(
            serde_json::from_str::<Hash32>(&serde_json::to_string(&h).unwrap()).unwrap(),
            h
        );
    }
}
