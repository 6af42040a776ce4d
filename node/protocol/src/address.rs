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
/// is a usable ed25519 key (the signature rule's key test: canonical
/// encoding, not of small order). Only the form [`encode`] writes is
/// accepted: lowercase, nothing around it (bech32m also allows an
/// uppercase form, which would be a second encoding of the same key).
pub fn decode(text: &str) -> Result<PublicKey, KeyError> {
    if text
        .bytes()
        .any(|b| b.is_ascii_uppercase() || b.is_ascii_whitespace())
    {
        return Err(KeyError::NotCanonical);
    }
    let checked = bech32::primitives::decode::CheckedHrpstring::new::<Bech32m>(text)
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

    /// One text form per key: the uppercase form bech32m allows, and
    /// surrounding whitespace, are refused; so are keys that are not the
    /// canonical encoding of a point (y ≥ p), even of an ordinary point.
    #[test]
    fn only_the_canonical_form_is_accepted() {
        let text = encode(&Keypair::from_label("alice").public());
        assert_eq!(decode(&text.to_uppercase()), Err(KeyError::NotCanonical));
        assert_eq!(decode(&format!(" {text}\n")), Err(KeyError::NotCanonical));
        // y = p + t aliases the point with y = t: refused where that point
        // is an ordinary key (its canonical encoding parses).
        for (canonical, alias) in crate::sigverify::tests::ordinary_point_aliases() {
            assert!(decode(&encode(&PublicKey(canonical))).is_ok());
            assert_eq!(decode(&encode(&PublicKey(alias))), Err(KeyError::BadKey));
        }
    }

    #[test]
    fn wrong_prefix_is_rejected() {
        let k = Keypair::from_label("alice").public();
        let other = bech32::encode::<Bech32m>(Hrp::parse_unchecked("bc"), &k.0).unwrap();
        assert!(matches!(decode(&other), Err(KeyError::WrongPrefix { .. })));
    }
}
