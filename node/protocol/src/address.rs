//! Addresses: an ed25519 public key written as bech32m with the prefix `pa`
//! (points alliance). The checksum catches any single typo and most longer
//! ones, so a mistyped address is rejected instead of paid.

use bech32::{Bech32m, Hrp};

use crate::crypto::{KeyError, PublicKey};

/// Human-readable prefix of every alliance address.
pub const ADDRESS_PREFIX: &str = "pa";

/// Text form of a public key, e.g. `pa1qx…`.
pub fn encode(key: &PublicKey) -> String {
    let hrp = Hrp::parse_unchecked(ADDRESS_PREFIX);
    bech32::encode::<Bech32m>(hrp, &key.0).expect("32 bytes always fit in a bech32m string")
}

/// Parses an address, checking prefix, checksum, length and that the key
/// is a usable ed25519 key.
pub fn decode(text: &str) -> Result<PublicKey, KeyError> {
    let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(text.trim())
        .map_err(|e| KeyError::BadChecksum(e.to_string()))?;
    let hrp = checked.hrp();
    if hrp.as_str() != ADDRESS_PREFIX {
        return Err(KeyError::WrongPrefix {
            expected: ADDRESS_PREFIX,
            found: hrp.to_string(),
        });
    }
    let bytes: Vec<u8> = checked.byte_iter().collect();
    let arr: [u8; 32] = bytes.try_into().map_err(|_| KeyError::BadLength)?;
    let key = PublicKey(arr);
    key.verifying_key()?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn round_trip() {
        let k = Keypair::from_label("alice").public();
        let text = encode(&k);
        assert!(text.starts_with("pa1"));
        assert_eq!(decode(&text).unwrap(), k);
    }

    #[test]
    fn every_single_character_typo_is_rejected() {
        let text = encode(&Keypair::from_label("alice").public());
        let charset = "qpzry9x8gf2tvdw0s3jn54khce6mua7l";
        for i in 3..text.len() {
            for c in charset.chars() {
                let mut typo: Vec<char> = text.chars().collect();
                if typo[i] == c {
                    continue;
                }
                typo[i] = c;
                let typo: String = typo.into_iter().collect();
                assert!(decode(&typo).is_err(), "typo at {i} accepted: {typo}");
            }
        }
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let k = Keypair::from_label("alice").public();
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("bc"), &k.0).unwrap();
        assert!(matches!(decode(&other), Err(KeyError::WrongPrefix { .. })));
    }
}
