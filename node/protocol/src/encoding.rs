//! Canonical encoding: bincode 2 over serde, fixed-width little-endian
//! integers, no hash maps anywhere in encoded data. Every hash and signature
//! in the protocol is computed over these bytes, so this module is the single
//! place the format is defined (docs/protocol.md describes it byte for byte,
//! and `tests/golden.rs` pins it).

use serde::{de::DeserializeOwned, Serialize};
use sha2::{Digest, Sha256};

use crate::crypto::Hash32;

/// The canonical bincode configuration: little endian, fixed-width integers,
/// with a decode limit so a hostile length prefix cannot allocate unbounded
/// memory.
fn config() -> impl bincode::config::Config {
    bincode::config::standard()
        .with_little_endian()
        .with_fixed_int_encoding()
        .with_limit::<{ 64 * 1024 * 1024 }>()
}

/// Why bytes could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The input is larger than the limit for this kind of object.
    #[error("input is {got} bytes, more than the {max}-byte limit")]
    TooLarge {
        /// Bytes received.
        got: usize,
        /// Bytes allowed.
        max: usize,
    },
    /// The bytes are not a valid encoding.
    #[error("malformed encoding: {0}")]
    Malformed(String),
    /// The encoding is valid but followed by extra bytes.
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
}

/// Encodes a value canonically. Encoding our own types cannot fail (no maps
/// of unknown length, no unsupported serde features), so a failure is a bug.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Room for a transaction, so that most encodings allocate once (bincode's
    // own `encode_to_vec` starts empty and grows at every field).
    let mut out = Vec::with_capacity(ENCODE_CAPACITY);
    bincode::serde::encode_into_std_write(value, &mut out, config())
        .expect("canonical encoding of a protocol type never fails");
    out
}

/// The length of a value's canonical encoding, counted without building it.
pub fn encoded_len<T: Serialize>(value: &T) -> usize {
    let mut size = bincode::enc::write::SizeWriter::default();
    bincode::serde::encode_into_writer(value, &mut size, config())
        .expect("canonical encoding of a protocol type never fails");
    size.bytes_written
}

/// The first allocation of [`encode`]: more than a typical transaction.
const ENCODE_CAPACITY: usize = 256;

/// Bytes fed to a hash through a small buffer: the encoding is hashed
/// without being built ([`hash_value`]).
struct HashOut {
    hash: Sha256,
    buf: [u8; HASH_BUFFER],
    len: usize,
}

/// Bytes [`HashOut`] gathers before it hashes them (bincode writes a field
/// at a time, often one byte).
const HASH_BUFFER: usize = 256;

impl HashOut {
    fn finish(mut self) -> Hash32 {
        self.hash.update(&self.buf[..self.len]);
        Hash32(self.hash.finalize().into())
    }
}

impl bincode::enc::write::Writer for HashOut {
    fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
        if self.len + bytes.len() > HASH_BUFFER {
            self.hash.update(&self.buf[..self.len]);
            self.len = 0;
            if bytes.len() > HASH_BUFFER {
                self.hash.update(bytes);
                return Ok(());
            }
        }
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
        Ok(())
    }
}

/// Decodes a value, rejecting inputs over `max_bytes`, malformed inputs and
/// trailing garbage (so every value has exactly one accepted encoding).
pub fn decode<T: DeserializeOwned>(bytes: &[u8], max_bytes: usize) -> Result<T, DecodeError> {
    if bytes.len() > max_bytes {
        return Err(DecodeError::TooLarge {
            got: bytes.len(),
            max: max_bytes,
        });
    }
    let (value, read) = bincode::serde::decode_from_slice(bytes, config())
        .map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if read != bytes.len() {
        return Err(DecodeError::TrailingBytes(bytes.len() - read));
    }
    Ok(value)
}

/// SHA-256 of `domain || 0x00 || bytes`. Every hash in the protocol is domain
/// separated so that bytes of one kind can never be mistaken for another.
pub fn hash_with_domain(domain: &str, bytes: &[u8]) -> Hash32 {
    let mut h = domain_hasher(domain);
    h.update(bytes);
    Hash32(h.finalize().into())
}

/// A hash that has taken in `domain || 0x00`, ready for the bytes.
fn domain_hasher(domain: &str) -> Sha256 {
    let mut h = Sha256::new();
    h.update(domain.as_bytes());
    h.update([0u8]);
    h
}

/// Canonical hash of a serialisable value under a domain.
pub fn hash_value<T: Serialize>(domain: &str, value: &T) -> Hash32 {
    let mut out = HashOut {
        hash: domain_hasher(domain),
        buf: [0; HASH_BUFFER],
        len: 0,
    };
    bincode::serde::encode_into_writer(value, &mut out, config())
        .expect("canonical encoding of a protocol type never fails");
    out.finish()
}

/// The domains used for hashing and signing. Versioned so that a format
/// change can never produce a valid signature over old bytes.
pub mod domain {
    /// Signing payload of a transaction (v2: `Issue` carries its receipt
    /// time).
    pub const TX_SIGN: &str = "points-alliance/tx-sign/v2";
    /// Transaction id (hash of the full signed transaction).
    pub const TX_ID: &str = "points-alliance/tx-id/v1";
    /// Block hash (hash of the header).
    pub const BLOCK: &str = "points-alliance/block/v1";
    /// Genesis hash.
    pub const GENESIS: &str = "points-alliance/genesis/v1";
    /// Validator set hash.
    pub const VALIDATOR_SET: &str = "points-alliance/validator-set/v1";
    /// Consensus votes (notarize, nullify, finalize).
    pub const VOTE: &str = "points-alliance/vote/v2";
    /// State tree keys.
    pub const STATE_KEY: &str = "points-alliance/state-key/v1";
    /// State tree values.
    pub const STATE_VALUE: &str = "points-alliance/state-value/v1";
    /// A merchant's signature over an order it asks a customer to pay
    /// with points ([`crate::redemption::OrderRequest`]).
    pub const ORDER_SIGN: &str = "points-alliance/order-sign/v1";
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Bytes that bincode writes in one piece (as `serde_bytes` types do),
    /// where a `Vec<u8>` is written a byte at a time.
    #[derive(Debug)]
    struct Piece(Vec<u8>);

    impl Serialize for Piece {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(&self.0)
        }
    }

    proptest! {
        /// Hashing a value as it is encoded is hashing its encoding, for
        /// values below, across and far beyond the hash's buffer, written
        /// in pieces of every size.
        #[test]
        fn hash_value_is_the_hash_of_the_encoding(
            parts in proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..600)),
                0..8,
            ),
        ) {
            let parts: Vec<(u8, Piece)> =
                parts.into_iter().map(|(b, v)| (b, Piece(v))).collect();
            prop_assert_eq!(
                hash_value("d", &parts),
                hash_with_domain("d", &encode(&parts))
            );
        }

        /// The counted length of an encoding is its length.
        #[test]
        fn encoded_len_is_the_length_of_the_encoding(
            parts in proptest::collection::vec(
                (any::<u8>(), proptest::collection::vec(any::<u8>(), 0..600), any::<String>()),
                0..8,
            ),
        ) {
            prop_assert_eq!(encoded_len(&parts), encode(&parts).len());
        }
    }

    #[test]
    fn rejects_trailing_bytes() {
        let mut bytes = encode(&7u64);
        bytes.push(0);
        assert_eq!(
            decode::<u64>(&bytes, 100),
            Err(DecodeError::TrailingBytes(1))
        );
    }

    #[test]
    fn rejects_oversized_input() {
        let bytes = vec![0u8; 101];
        assert_eq!(
            decode::<u64>(&bytes, 100),
            Err(DecodeError::TooLarge { got: 101, max: 100 })
        );
    }

    #[test]
    fn rejects_truncated_input() {
        assert!(matches!(
            decode::<u64>(&[1, 2, 3], 100),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn hostile_length_prefix_does_not_allocate() {
        // A Vec<u8> whose length prefix claims 2^60 elements.
        let mut bytes = (1u64 << 60).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(
            decode::<Vec<u8>>(&bytes, 100),
            Err(DecodeError::Malformed(_))
        ));
    }

    #[test]
    fn integers_are_fixed_width_little_endian() {
        assert_eq!(encode(&1u64), vec![1, 0, 0, 0, 0, 0, 0, 0]);
        assert_eq!(encode(&"ab"), vec![2, 0, 0, 0, 0, 0, 0, 0, b'a', b'b']);
    }
}
