//! The validator set of a height and its quorum arithmetic.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};
use crate::encoding::{self, domain};
use crate::merchant::MerchantId;

/// One validator: an active merchant and its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Validator {
    /// The merchant.
    pub id: MerchantId,
    /// Its signing key.
    pub key: PublicKey,
}

/// The validators of one height, sorted by merchant id (the order leaders
/// rotate in). Derived from the state: every active merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    validators: Vec<Validator>,
}

/// Why a list of validators is not a valid set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidatorSetError {
    /// No validators.
    #[error("a validator set needs at least one validator")]
    Empty,
    /// Two entries share an id or a key.
    #[error("duplicate validator id or key: {0}")]
    Duplicate(String),
}

impl ValidatorSet {
    /// Builds a set, sorting by id and rejecting duplicates.
    pub fn new(mut validators: Vec<Validator>) -> Result<Self, ValidatorSetError> {
        if validators.is_empty() {
            return Err(ValidatorSetError::Empty);
        }
        validators.sort_by(|a, b| a.id.cmp(&b.id));
        for w in validators.windows(2) {
            if w[0].id == w[1].id {
                return Err(ValidatorSetError::Duplicate(w[0].id.to_string()));
            }
        }
        let mut keys: Vec<_> = validators.iter().map(|v| v.key).collect();
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return Err(ValidatorSetError::Duplicate("key".into()));
        }
        Ok(ValidatorSet { validators })
    }

    /// Number of validators `n`.
    pub fn len(&self) -> usize {
        self.validators.len()
    }

    /// Never true: a set has at least one validator.
    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// The validators in leader order.
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// `f`: the most Byzantine validators the set tolerates, floor((n-1)/3).
    pub fn max_faulty(&self) -> usize {
        (self.len() - 1) / 3
    }

    /// Votes needed for a certificate: `n - f`. Any two quorums then share
    /// at least `n - 2f >= f + 1` validators, so at least one honest one,
    /// for every `n` (not only `n = 3f + 1`), and the `n - f` honest
    /// validators can always form one alone.
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    /// Position of a key in the set.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.validators.iter().position(|v| &v.key == key)
    }

    /// Whether a key is a validator.
    pub fn contains(&self, key: &PublicKey) -> bool {
        self.index_of(key).is_some()
    }

    /// The leader of a view: round robin over the set.
    pub fn leader(&self, view: u64) -> &Validator {
        &self.validators[(view % self.len() as u64) as usize]
    }

    /// Hash committed in block headers.
    pub fn hash(&self) -> Hash32 {
        encoding::hash_value(domain::VALIDATOR_SET, &self.validators)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    fn set(n: usize) -> ValidatorSet {
        ValidatorSet::new(
            (0..n)
                .map(|i| Validator {
                    id: MerchantId::new(format!("m{i:02}")).unwrap(),
                    key: Keypair::from_label(&format!("m{i}")).public(),
                })
                .collect(),
        )
        .unwrap()
    }

    #[test]
    fn quorum_arithmetic_is_safe_and_live_for_every_n() {
        for n in 1..=100 {
            let s = set(n);
            let (q, f) = (s.quorum(), s.max_faulty());
            assert!(3 * f < n, "n={n}");
            // Safety: two quorums intersect in more than f validators.
            assert!(2 * q > n + f, "n={n} q={q} f={f}");
            // Liveness: the honest validators alone form a quorum.
            assert!(q <= n - f, "n={n}");
        }
        assert_eq!(set(1).quorum(), 1);
        assert_eq!(set(4).quorum(), 3);
        assert_eq!(set(5).quorum(), 4);
        assert_eq!(set(7).quorum(), 5);
    }

    #[test]
    fn duplicates_are_rejected() {
        let k = Keypair::from_label("x").public();
        let v = |id: &str| Validator {
            id: MerchantId::new(id).unwrap(),
            key: k,
        };
        assert!(ValidatorSet::new(vec![v("a"), v("b")]).is_err());
        assert_eq!(ValidatorSet::new(vec![]), Err(ValidatorSetError::Empty));
    }
}
