//! The link between alliance keys and libp2p peer ids.
//!
//! A node's libp2p identity is its merchant's ed25519 key (same 32-byte
//! seed), so a peer id *is* a public key: Noise proves the remote holds the
//! secret, and gossipsub's strict signing proves who authored a message.
//! An ed25519 peer id is the identity multihash of the protobuf-encoded key,
//! so the mapping is exact in both directions, with no lookup table.

use alliance_protocol::PublicKey;
use libp2p::identity;
use libp2p::PeerId;

/// Multihash code of the identity hash: the digest is the input itself.
const MULTIHASH_IDENTITY: u64 = 0x00;

/// The protobuf header of an ed25519 libp2p public key: field 1 (key type)
/// = 1 (Ed25519), field 2 (data) of length 32.
const ED25519_PROTOBUF_PREFIX: [u8; 4] = [0x08, 0x01, 0x12, 0x20];

/// The libp2p keypair of a node, from its merchant's 32-byte secret seed.
/// The seed given is not kept (libp2p zeroizes its copy).
pub fn libp2p_keypair(seed: &[u8; 32]) -> Result<identity::Keypair, identity::DecodingError> {
    let mut copy = *seed;
    identity::Keypair::ed25519_from_bytes(&mut copy)
}

/// The peer id a node using `key` as its identity has.
///
/// Defined for any 32 bytes (so a member list can be mapped without
/// checking); a key that is not a valid ed25519 point gives a peer id no
/// node can ever hold, because Noise would fail to authenticate it.
pub fn peer_id_of(key: &PublicKey) -> PeerId {
    let mut encoded = [0u8; ED25519_PROTOBUF_PREFIX.len() + 32];
    encoded[..ED25519_PROTOBUF_PREFIX.len()].copy_from_slice(&ED25519_PROTOBUF_PREFIX);
    encoded[ED25519_PROTOBUF_PREFIX.len()..].copy_from_slice(&key.0);
    // 36 bytes always fit the 64-byte multihash and libp2p's 42-byte inline
    // key limit: a failure here is a bug in this function, not bad input.
    let multihash = libp2p::multihash::Multihash::<64>::wrap(MULTIHASH_IDENTITY, &encoded)
        .expect("36 bytes fit a 64-byte multihash");
    PeerId::from_multihash(multihash).expect("identity multihash of 36 bytes is a valid peer id")
}

/// The alliance key behind an ed25519 peer id; `None` for peer ids of other
/// key types (RSA, secp256k1: hashed, not inlined) or invalid points.
pub fn public_key_of(peer: &PeerId) -> Option<PublicKey> {
    let multihash = peer.as_ref();
    if multihash.code() != MULTIHASH_IDENTITY {
        return None;
    }
    let key = identity::PublicKey::try_decode_protobuf(multihash.digest()).ok()?;
    let key = key.try_into_ed25519().ok()?;
    Some(PublicKey(key.to_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::Keypair;

    #[test]
    fn peer_id_matches_libp2p_derivation() {
        for label in ["coffee", "bakery", "auditor"] {
            let alliance = Keypair::from_label(label);
            let libp2p = libp2p_keypair(&alliance.seed()).unwrap();
            assert_eq!(peer_id_of(&alliance.public()), libp2p.public().to_peer_id());
        }
    }

    #[test]
    fn round_trip() {
        let key = Keypair::from_label("coffee").public();
        assert_eq!(public_key_of(&peer_id_of(&key)), Some(key));
    }

    #[test]
    fn foreign_peer_ids_have_no_alliance_key() {
        // A hashed (sha2-256) multihash: what RSA keys produce.
        let hashed = libp2p::multihash::Multihash::<64>::wrap(0x12, &[7u8; 32]).unwrap();
        let peer = PeerId::from_multihash(hashed).unwrap();
        assert_eq!(public_key_of(&peer), None);
        // An identity multihash that is not a protobuf-encoded key.
        let junk = libp2p::multihash::Multihash::<64>::wrap(0x00, &[0xff; 36]).unwrap();
        let peer = PeerId::from_multihash(junk).unwrap();
        assert_eq!(public_key_of(&peer), None);
    }
}
