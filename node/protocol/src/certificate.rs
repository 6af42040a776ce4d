//! Consensus votes and certificates. A certificate is a quorum of ed25519
//! votes by distinct validators of the block's height over
//! (chain_id, kind, view, height, block hash). Anyone holding the genesis
//! file and the chain can check one: this module is the only place the rule
//! is written, and node, consensus and auditor all call it.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, Keypair, PublicKey, Signature};
use crate::encoding::{self, domain};
use crate::validators::ValidatorSet;

/// The three Simplex votes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum VoteKind {
    /// "This block is the first valid proposal I saw in this view."
    Notarize,
    /// "Skip this view" (the view timed out). Height 0, zero block hash.
    Nullify,
    /// "I saw this block notarized and did not time out in this view."
    Finalize,
}

/// What a vote signs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct VoteData {
    /// Which vote.
    pub kind: VoteKind,
    /// Consensus view.
    pub view: u64,
    /// Height of the block (0 for nullify).
    pub height: u64,
    /// Hash of the block (zero for nullify).
    pub block_hash: Hash32,
}

/// What every vote is signed within: the chain and the validator set of
/// its epoch. A vote (or a certificate) of one validator set never verifies
/// under another, even for the same view, so votes of two epochs can never
/// be counted together.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VoteDomain {
    /// The chain id.
    pub chain_id: String,
    /// [`ValidatorSet::hash`] of the epoch's validator set.
    pub validator_set_hash: Hash32,
}

impl VoteDomain {
    /// The domain of votes by `validators` on `chain_id`.
    pub fn new(chain_id: &str, validators: &ValidatorSet) -> Self {
        VoteDomain {
            chain_id: chain_id.to_string(),
            validator_set_hash: validators.hash(),
        }
    }
}

#[derive(Serialize)]
struct VotePayload<'a> {
    chain_id: &'a str,
    validator_set_hash: &'a Hash32,
    data: &'a VoteData,
}

impl VoteData {
    /// The 32 bytes a validator signs for this vote in `domain`.
    pub fn signing_hash(&self, domain: &VoteDomain) -> Hash32 {
        encoding::hash_value(
            domain::VOTE,
            &VotePayload {
                chain_id: &domain.chain_id,
                validator_set_hash: &domain.validator_set_hash,
                data: self,
            },
        )
    }

    /// Signs this vote.
    pub fn sign(&self, domain: &VoteDomain, key: &Keypair) -> SignedVote {
        SignedVote {
            data: *self,
            signer: key.public(),
            signature: key.sign(&self.signing_hash(domain).0),
        }
    }
}

/// One validator's signed vote.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SignedVote {
    /// What is voted for.
    pub data: VoteData,
    /// The voter.
    pub signer: PublicKey,
    /// Signature over [`VoteData::signing_hash`].
    pub signature: Signature,
}

impl SignedVote {
    /// Strict signature check in `domain`.
    pub fn verify(&self, domain: &VoteDomain) -> bool {
        self.signer
            .verify(&self.data.signing_hash(domain).0, &self.signature)
    }
}

/// A quorum of votes of one kind for one (view, height, block).
///
/// A finalized block carries a `Finalize` certificate, or a `Notarize`
/// certificate when it was finalized implicitly because a descendant was
/// finalized (Simplex finalizes ancestors with their descendant); the chain
/// of hash links from that descendant proves it. See docs/consensus.md.
///
/// One encoding per certificate: the votes are sorted by signer key with no
/// signer twice. Every decoder (binary and JSON) refuses any other order
/// ([`check_vote_order`]), and [`Certificate::check_signers`] refuses it
/// for certificates built in memory, so the same finalized block is never
/// served, stored or audited as two different byte strings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "CertificateFields")]
pub struct Certificate {
    /// Notarize or Finalize (a Nullify certificate never certifies a block).
    pub kind: VoteKind,
    /// View of the votes.
    pub view: u64,
    /// Height of the block.
    pub height: u64,
    /// Hash of the block.
    pub block_hash: Hash32,
    /// (signer, signature), sorted by signer key, no duplicates.
    pub votes: Vec<(PublicKey, Signature)>,
}

/// What a [`Certificate`] decodes from before [`check_vote_order`]
/// accepts it: the same fields, so the same bytes.
#[derive(Deserialize)]
#[serde(rename = "Certificate")]
struct CertificateFields {
    kind: VoteKind,
    view: u64,
    height: u64,
    block_hash: Hash32,
    votes: Vec<(PublicKey, Signature)>,
}

impl TryFrom<CertificateFields> for Certificate {
    type Error = CertificateError;

    fn try_from(f: CertificateFields) -> Result<Self, CertificateError> {
        check_vote_order(&f.votes)?;
        Ok(Certificate {
            kind: f.kind,
            view: f.view,
            height: f.height,
            block_hash: f.block_hash,
            votes: f.votes,
        })
    }
}

/// The canonical order of a certificate's votes: signer keys strictly
/// increasing (sorted, no duplicates). The one rule behind the decoders
/// and [`Certificate::check_signers`].
pub fn check_vote_order(votes: &[(PublicKey, Signature)]) -> Result<(), CertificateError> {
    for pair in votes.windows(2) {
        let (before, signer) = (pair[0].0, pair[1].0);
        if signer == before {
            return Err(CertificateError::DuplicateSigner(signer));
        }
        if signer < before {
            return Err(CertificateError::UnsortedVotes { signer, before });
        }
    }
    Ok(())
}

/// Why a certificate does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// Fewer distinct valid signers than the quorum.
    #[error("certificate has {got} signers, the quorum is {need}")]
    TooFewSigners {
        /// Signers present.
        got: usize,
        /// Quorum of the validator set.
        need: usize,
    },
    /// A signer appears twice.
    #[error("signer {0} appears twice")]
    DuplicateSigner(PublicKey),
    /// The votes are not sorted by signer key: not the canonical encoding.
    #[error("votes are not in canonical order: signer {signer} comes after {before} (votes must be sorted by signer key)")]
    UnsortedVotes {
        /// The signer out of place.
        signer: PublicKey,
        /// The signer listed before it, whose key is greater.
        before: PublicKey,
    },
    /// A signer is not in the validator set of this height.
    #[error("signer {0} is not a validator of this height")]
    NotAValidator(PublicKey),
    /// A signature does not verify (wrong key, wrong chain, wrong data).
    #[error("signature of {0} does not verify")]
    BadSignature(PublicKey),
    /// The certificate is for another block or height.
    #[error("certificate is for height {got_height} block {got_hash}, expected height {height} block {hash}")]
    WrongBlock {
        /// Expected height.
        height: u64,
        /// Expected hash.
        hash: Hash32,
        /// Certificate's height.
        got_height: u64,
        /// Certificate's hash.
        got_hash: Hash32,
    },
    /// A nullify certificate cannot certify a block.
    #[error("a nullify certificate does not certify a block")]
    WrongKind,
    /// A nullification certificate for another view, or one carrying a
    /// height or block hash (nullify votes sign height 0 and the zero hash).
    #[error("not a nullification of view {view}")]
    NotANullification {
        /// The view expected.
        view: u64,
    },
}

impl Certificate {
    /// Assembles a certificate from votes (sorted, deduplicated by signer).
    /// Checks nothing: call [`Certificate::verify`].
    pub fn from_votes(
        kind: VoteKind,
        view: u64,
        height: u64,
        block_hash: Hash32,
        votes: impl IntoIterator<Item = (PublicKey, Signature)>,
    ) -> Self {
        let mut votes: Vec<_> = votes.into_iter().collect();
        votes.sort_by_key(|a| a.0);
        votes.dedup_by(|a, b| a.0 == b.0);
        Certificate {
            kind,
            view,
            height,
            block_hash,
            votes,
        }
    }

    /// The vote data every signature in this certificate covers.
    pub fn vote_data(&self) -> VoteData {
        VoteData {
            kind: self.kind,
            view: self.view,
            height: self.height,
            block_hash: self.block_hash,
        }
    }

    /// Verifies that this certificate certifies block `block_hash` at
    /// `height` on `chain_id` under `validators` (the set of that height).
    pub fn verify(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        height: u64,
        block_hash: &Hash32,
    ) -> Result<(), CertificateError> {
        if self.kind == VoteKind::Nullify {
            return Err(CertificateError::WrongKind);
        }
        if self.height != height || &self.block_hash != block_hash {
            return Err(CertificateError::WrongBlock {
                height,
                hash: *block_hash,
                got_height: self.height,
                got_hash: self.block_hash,
            });
        }
        // Cheap structural checks before any signature work.
        self.check_signers(validators)?;
        let msg = self
            .vote_data()
            .signing_hash(&VoteDomain::new(chain_id, validators));
        for (signer, sig) in &self.votes {
            if !signer.verify(&msg.0, sig) {
                return Err(CertificateError::BadSignature(*signer));
            }
        }
        Ok(())
    }
}

impl Certificate {
    /// The checks that need no signature work, for every kind: signers
    /// in canonical order (sorted, so distinct: [`check_vote_order`]), all
    /// in `validators`, at least a quorum of them. A verifier that batches
    /// or caches signature checks (the consensus batcher) runs this first,
    /// then checks each signature over [`Certificate::vote_data`].
    pub fn check_signers(&self, validators: &ValidatorSet) -> Result<(), CertificateError> {
        for (signer, _) in &self.votes {
            if !validators.contains(signer) {
                return Err(CertificateError::NotAValidator(*signer));
            }
        }
        check_vote_order(&self.votes)?;
        if self.votes.len() < validators.quorum() {
            return Err(CertificateError::TooFewSigners {
                got: self.votes.len(),
                need: validators.quorum(),
            });
        }
        Ok(())
    }

    /// Verifies that this is a nullification of `view` on `chain_id` under
    /// `validators`: a quorum agreed to skip the view. It certifies no block.
    pub fn verify_nullification(
        &self,
        chain_id: &str,
        validators: &ValidatorSet,
        view: u64,
    ) -> Result<(), CertificateError> {
        if self.kind != VoteKind::Nullify
            || self.view != view
            || self.height != 0
            || self.block_hash != Hash32::ZERO
        {
            return Err(CertificateError::NotANullification { view });
        }
        self.check_signers(validators)?;
        let msg = self
            .vote_data()
            .signing_hash(&VoteDomain::new(chain_id, validators));
        for (signer, sig) in &self.votes {
            if !signer.verify(&msg.0, sig) {
                return Err(CertificateError::BadSignature(*signer));
            }
        }
        Ok(())
    }
}

/// Proof that one validator signed two votes that an honest validator never
/// signs together in one view: notarizes (or finalizes) of two different
/// blocks, or a nullify and a finalize. Anyone with the validator set can
/// check it, so it can back an off-chain complaint or future slashing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Equivocation {
    /// The vote seen first.
    pub first: SignedVote,
    /// The conflicting vote.
    pub second: SignedVote,
}

impl Equivocation {
    /// Whether two vote data conflict (same view, incompatible), whoever
    /// signed them. Notarize then nullify of one view is allowed: a validator
    /// that notarized and then timed out sends both.
    pub fn conflicts(a: &VoteData, b: &VoteData) -> bool {
        if a.view != b.view {
            return false;
        }
        use VoteKind::*;
        match (a.kind, b.kind) {
            (Notarize, Notarize) | (Finalize, Finalize) => {
                a.block_hash != b.block_hash || a.height != b.height
            }
            (Nullify, Finalize) | (Finalize, Nullify) => true,
            _ => false,
        }
    }

    /// The validator this evidence accuses.
    pub fn signer(&self) -> PublicKey {
        self.first.signer
    }

    /// Checks the evidence: one signer, a validator of `validators`, two
    /// conflicting votes, both signatures valid on `chain_id`.
    pub fn verify(&self, chain_id: &str, validators: &ValidatorSet) -> bool {
        self.first.signer == self.second.signer
            && validators.contains(&self.first.signer)
            && Self::conflicts(&self.first.data, &self.second.data)
            && self.first.verify(&VoteDomain::new(chain_id, validators))
            && self.second.verify(&VoteDomain::new(chain_id, validators))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merchant::MerchantId;
    use crate::validators::Validator;

    const CHAIN: &str = "test-chain";

    fn keys(prefix: &str, n: usize) -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::from_label(&format!("{prefix}{i}")))
            .collect()
    }

    fn set_of(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    id: MerchantId::new(format!("m{i}")).unwrap(),
                    key: k.public(),
                })
                .collect(),
        )
        .unwrap()
    }

    /// Votes of the validator set `set_of(&keys("v", 4))` on `chain`.
    fn domain(chain: &str) -> VoteDomain {
        VoteDomain::new(chain, &set_of(&keys("v", 4)))
    }

    fn cert(signers: &[Keypair], chain: &str, height: u64, hash: Hash32) -> Certificate {
        cert_in(signers, &domain(chain), height, hash)
    }

    fn cert_in(signers: &[Keypair], domain: &VoteDomain, height: u64, hash: Hash32) -> Certificate {
        let data = VoteData {
            kind: VoteKind::Finalize,
            view: 9,
            height,
            block_hash: hash,
        };
        let msg = data.signing_hash(domain);
        let mut votes: Vec<_> = signers
            .iter()
            .map(|k| (k.public(), k.sign(&msg.0)))
            .collect();
        votes.sort_by_key(|v| v.0);
        Certificate {
            kind: VoteKind::Finalize,
            view: 9,
            height,
            block_hash: hash,
            votes,
        }
    }

    const H: Hash32 = Hash32([5; 32]);

    #[test]
    fn quorum_of_valid_votes_verifies() {
        let ks = keys("v", 4);
        assert_eq!(
            cert(&ks[..3], CHAIN, 7, H).verify(CHAIN, &set_of(&ks), 7, &H),
            Ok(())
        );
    }

    #[test]
    fn too_few_signers() {
        let ks = keys("v", 4);
        assert_eq!(
            cert(&ks[..2], CHAIN, 7, H).verify(CHAIN, &set_of(&ks), 7, &H),
            Err(CertificateError::TooFewSigners { got: 2, need: 3 })
        );
    }

    #[test]
    fn duplicate_signer() {
        let ks = keys("v", 4);
        let mut c = cert(&ks[..3], CHAIN, 7, H);
        c.votes[1] = c.votes[0];
        assert_eq!(
            c.verify(CHAIN, &set_of(&ks), 7, &H),
            Err(CertificateError::DuplicateSigner(c.votes[0].0))
        );
    }

    /// One encoding per certificate: votes out of signer order, or a signer
    /// twice, are refused by the binary and JSON decoders and by
    /// verification of a certificate built in memory.
    #[test]
    fn votes_out_of_canonical_order_are_refused_everywhere() {
        use crate::encoding::{decode, encode, DecodeError};
        let ks = keys("v", 4);
        let set = set_of(&ks);
        let good = cert(&ks[..3], CHAIN, 7, H);
        assert_eq!(
            decode::<Certificate>(&encode(&good), 1 << 20).as_ref(),
            Ok(&good)
        );
        let mut swapped = good.clone();
        swapped.votes.swap(0, 1);
        let err = decode::<Certificate>(&encode(&swapped), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, DecodeError::Malformed(m) if m.contains("not in canonical order")),
            "{err}"
        );
        let json = serde_json::to_string(&swapped).unwrap();
        let err = serde_json::from_str::<Certificate>(&json).unwrap_err();
        assert!(err.to_string().contains("not in canonical order"), "{err}");
        assert!(matches!(
            swapped.verify(CHAIN, &set, 7, &H),
            Err(CertificateError::UnsortedVotes { .. })
        ));
        // A signer twice, adjacent (so sorted but not strictly).
        let mut twice = good.clone();
        twice.votes.insert(1, twice.votes[0]);
        assert!(decode::<Certificate>(&encode(&twice), 1 << 20).is_err());
        assert_eq!(
            twice.verify(CHAIN, &set, 7, &H),
            Err(CertificateError::DuplicateSigner(twice.votes[0].0))
        );
        // The same rule for nullifications.
        assert!(matches!(
            swapped.check_signers(&set),
            Err(CertificateError::UnsortedVotes { .. })
        ));
    }

    #[test]
    fn non_validator_signer() {
        let ks = keys("v", 4);
        let outsider = Keypair::from_label("outsider");
        let signers = [ks[0].clone(), ks[1].clone(), outsider.clone()];
        assert_eq!(
            cert(&signers, CHAIN, 7, H).verify(CHAIN, &set_of(&ks), 7, &H),
            Err(CertificateError::NotAValidator(outsider.public()))
        );
    }

    #[test]
    fn wrong_chain_id() {
        let ks = keys("v", 4);
        assert!(matches!(
            cert(&ks[..3], "other-chain", 7, H).verify(CHAIN, &set_of(&ks), 7, &H),
            Err(CertificateError::BadSignature(_))
        ));
    }

    #[test]
    fn wrong_hash() {
        let ks = keys("v", 4);
        let other = Hash32([6; 32]);
        assert!(matches!(
            cert(&ks[..3], CHAIN, 7, H).verify(CHAIN, &set_of(&ks), 7, &other),
            Err(CertificateError::WrongBlock { .. })
        ));
        // Relabelling the hash inside the certificate breaks the signatures.
        let mut c = cert(&ks[..3], CHAIN, 7, H);
        c.block_hash = other;
        assert!(matches!(
            c.verify(CHAIN, &set_of(&ks), 7, &other),
            Err(CertificateError::BadSignature(_))
        ));
    }

    #[test]
    fn votes_of_another_validator_set_never_verify() {
        // The same keys under other merchant ids: another set (another
        // epoch), whose hash the votes do not sign.
        let ks = keys("v", 4);
        let a = set_of(&ks);
        let b = ValidatorSet::new(
            ks.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    id: MerchantId::new(format!("x{i}")).unwrap(),
                    key: k.public(),
                })
                .collect(),
        )
        .unwrap();
        assert_ne!(a.hash(), b.hash());
        let in_a = cert_in(&ks[..3], &VoteDomain::new(CHAIN, &a), 7, H);
        assert_eq!(in_a.verify(CHAIN, &a, 7, &H), Ok(()));
        assert!(matches!(
            in_a.verify(CHAIN, &b, 7, &H),
            Err(CertificateError::BadSignature(_))
        ));
        let vote = in_a.vote_data().sign(&VoteDomain::new(CHAIN, &a), &ks[0]);
        assert!(vote.verify(&VoteDomain::new(CHAIN, &a)));
        assert!(!vote.verify(&VoteDomain::new(CHAIN, &b)));
    }

    #[test]
    fn signer_set_of_another_height() {
        // Height 7 was certified by the old set; the set changed at height 8.
        let old = keys("v", 4);
        let new = keys("w", 4);
        let c = cert(&old[..3], CHAIN, 8, H);
        assert!(matches!(
            c.verify(CHAIN, &set_of(&new), 8, &H),
            Err(CertificateError::NotAValidator(_))
        ));
    }

    #[test]
    fn nullification_verifies_only_for_its_view() {
        let ks = keys("v", 4);
        let data = VoteData {
            kind: VoteKind::Nullify,
            view: 3,
            height: 0,
            block_hash: Hash32::ZERO,
        };
        let msg = data.signing_hash(&domain(CHAIN));
        let c = Certificate::from_votes(
            VoteKind::Nullify,
            3,
            0,
            Hash32::ZERO,
            ks[..3].iter().map(|k| (k.public(), k.sign(&msg.0))),
        );
        let set = set_of(&ks);
        assert_eq!(c.verify_nullification(CHAIN, &set, 3), Ok(()));
        assert_eq!(
            c.verify_nullification(CHAIN, &set, 4),
            Err(CertificateError::NotANullification { view: 4 })
        );
        assert!(matches!(
            c.verify_nullification("other", &set, 3),
            Err(CertificateError::BadSignature(_))
        ));
        let short = Certificate {
            votes: c.votes[..2].to_vec(),
            ..c.clone()
        };
        assert!(matches!(
            short.verify_nullification(CHAIN, &set, 3),
            Err(CertificateError::TooFewSigners { .. })
        ));
    }

    #[test]
    fn equivocation_evidence() {
        let ks = keys("v", 4);
        let set = set_of(&ks);
        let a = VoteData {
            kind: VoteKind::Notarize,
            view: 2,
            height: 1,
            block_hash: H,
        };
        let b = VoteData {
            block_hash: Hash32([6; 32]),
            ..a
        };
        let ev = Equivocation {
            first: a.sign(&domain(CHAIN), &ks[0]),
            second: b.sign(&domain(CHAIN), &ks[0]),
        };
        assert!(ev.verify(CHAIN, &set));
        // Same vote twice is not evidence; two signers is not evidence.
        assert!(!Equivocation {
            first: a.sign(&domain(CHAIN), &ks[0]),
            second: a.sign(&domain(CHAIN), &ks[0])
        }
        .verify(CHAIN, &set));
        assert!(!Equivocation {
            first: a.sign(&domain(CHAIN), &ks[0]),
            second: b.sign(&domain(CHAIN), &ks[1])
        }
        .verify(CHAIN, &set));
        // Nullify + finalize conflict; notarize + nullify does not.
        let null = VoteData {
            kind: VoteKind::Nullify,
            view: 2,
            height: 0,
            block_hash: Hash32::ZERO,
        };
        let fin = VoteData {
            kind: VoteKind::Finalize,
            ..a
        };
        assert!(Equivocation::conflicts(&null, &fin));
        assert!(!Equivocation::conflicts(&a, &null));
    }

    #[test]
    fn nullify_certifies_nothing() {
        let ks = keys("v", 4);
        let mut c = cert(&ks[..3], CHAIN, 7, H);
        c.kind = VoteKind::Nullify;
        assert_eq!(
            c.verify(CHAIN, &set_of(&ks), 7, &H),
            Err(CertificateError::WrongKind)
        );
    }
}
