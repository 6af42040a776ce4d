//! Signatures, kept apart from the protocol logic (Commonware calls the
//! verifying part the batcher). The core does every cheap structural check
//! first and calls a [`Verifier`] only for signatures it would otherwise
//! count, so a driver can plug in a parallel or batching implementation.
//! It signs its own votes through a [`Signer`]. The node uses ed25519 for
//! both ([`Keypair`], [`Ed25519Verifier`] or [`CachingVerifier`]); the
//! simulation plugs in a cheap deterministic scheme with a matching
//! verifier, since real curve arithmetic was most of its time.

use alliance_protocol::{
    Certificate, Hash32, Keypair, PublicKey, Signature, SignedVote, ValidatorSet, VoteData,
    VoteDomain, VoteKind,
};

use crate::stats::DropReason;

/// Signs this node's consensus votes: the counterpart of [`Verifier`].
/// Whatever it signs must verify under the [`Verifier`] the validators use,
/// for the key [`Signer::public`] names in the validator set.
pub trait Signer {
    /// The public key votes are signed for (the one in the validator set).
    fn public(&self) -> PublicKey;
    /// A signature of `data` in `domain` by [`Signer::public`].
    fn sign(&self, domain: &VoteDomain, data: &VoteData) -> Signature;
}

/// The node's signer: ed25519 over [`VoteData::signing_hash`], exactly
/// [`VoteData::sign`].
impl Signer for Keypair {
    fn public(&self) -> PublicKey {
        Keypair::public(self)
    }

    fn sign(&self, domain: &VoteDomain, data: &VoteData) -> Signature {
        data.sign(domain, self).signature
    }
}

/// Checks ed25519 signatures over consensus votes.
pub trait Verifier {
    /// Whether every `(signer, signature)` in `signatures` is a valid
    /// signature of `data` in `domain` (one entry for a vote, a quorum for
    /// a certificate: an implementation may check them in parallel).
    fn verify(
        &mut self,
        domain: &VoteDomain,
        data: &VoteData,
        signatures: &[(PublicKey, Signature)],
    ) -> bool;
}

/// The plain verifier: strict ed25519 checks one by one.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ed25519Verifier;

impl Verifier for Ed25519Verifier {
    fn verify(
        &mut self,
        domain: &VoteDomain,
        data: &VoteData,
        signatures: &[(PublicKey, Signature)],
    ) -> bool {
        let msg = data.signing_hash(domain);
        signatures
            .iter()
            .all(|(signer, sig)| signer.verify(&msg.0, sig))
    }
}

/// Valid signatures remembered by [`CachingVerifier`] at most.
pub const VERIFIED_CACHE_MAX: usize = 16_384;

/// A verifier that remembers the signatures it found valid (bounded, oldest
/// forgotten first) and shares that memory between its clones: the node's
/// gossip filter checks a vote or certificate before forwarding it, and the
/// consensus core then finds it already checked instead of paying for the
/// same signatures twice. Only valid verdicts are cached, so a forged
/// signature costs a check every time it is sent (and a peer penalty).
#[derive(Debug, Clone, Default)]
pub struct CachingVerifier {
    cache: std::sync::Arc<std::sync::Mutex<VerifiedCache>>,
}

#[derive(Debug, Default)]
struct VerifiedCache {
    set: std::collections::HashSet<Hash32>,
    order: std::collections::VecDeque<Hash32>,
}

impl CachingVerifier {
    fn key(msg: &Hash32, signer: &PublicKey, sig: &Signature) -> Hash32 {
        let mut bytes = Vec::with_capacity(32 + 32 + 64);
        bytes.extend_from_slice(&msg.0);
        bytes.extend_from_slice(&signer.0);
        bytes.extend_from_slice(&sig.0);
        alliance_protocol::encoding::hash_with_domain("points-alliance/verified-vote", &bytes)
    }
}

impl Verifier for CachingVerifier {
    fn verify(
        &mut self,
        domain: &VoteDomain,
        data: &VoteData,
        signatures: &[(PublicKey, Signature)],
    ) -> bool {
        let msg = data.signing_hash(domain);
        let keys: Vec<Hash32> = signatures
            .iter()
            .map(|(pk, sig)| Self::key(&msg, pk, sig))
            .collect();
        let unknown: Vec<usize> = {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            (0..keys.len())
                .filter(|&i| !cache.set.contains(&keys[i]))
                .collect()
        };
        // Verified outside the lock.
        if !unknown
            .iter()
            .all(|&i| signatures[i].0.verify(&msg.0, &signatures[i].1))
        {
            return false;
        }
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        for i in unknown {
            if cache.set.insert(keys[i]) {
                cache.order.push_back(keys[i]);
            }
        }
        while cache.order.len() > VERIFIED_CACHE_MAX {
            if let Some(old) = cache.order.pop_front() {
                cache.set.remove(&old);
            }
        }
        true
    }
}

/// Whether vote data is internally consistent: a nullify signs height 0 and
/// the zero hash; notarize and finalize sign a real block; view 0 is the
/// genesis view and is never voted in.
pub fn well_formed(data: &VoteData) -> bool {
    if data.view == 0 {
        return false;
    }
    match data.kind {
        VoteKind::Nullify => data.height == 0 && data.block_hash == Hash32::ZERO,
        VoteKind::Notarize | VoteKind::Finalize => {
            data.height >= 1 && data.block_hash != Hash32::ZERO
        }
    }
}

/// Structural checks of a vote: signer is a validator, data well formed.
pub fn check_vote(validators: &ValidatorSet, vote: &SignedVote) -> Result<(), DropReason> {
    if !validators.contains(&vote.signer) {
        return Err(DropReason::NotValidator);
    }
    if !well_formed(&vote.data) {
        return Err(DropReason::Malformed);
    }
    Ok(())
}

/// Structural checks of a certificate: data well formed, signers distinct
/// validators, at least `quorum` of them. `quorum` is the validator set's
/// quorum except under the test-only `mutation` feature.
pub fn check_certificate(
    validators: &ValidatorSet,
    quorum: usize,
    cert: &Certificate,
) -> Result<(), DropReason> {
    if !well_formed(&cert.vote_data()) {
        return Err(DropReason::Malformed);
    }
    match cert.check_signers(validators) {
        Ok(()) => Ok(()),
        Err(alliance_protocol::CertificateError::NotAValidator(_)) => Err(DropReason::NotValidator),
        Err(alliance_protocol::CertificateError::TooFewSigners { got, .. }) if got >= quorum => {
            Ok(())
        }
        Err(_) => Err(DropReason::Malformed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::{Keypair, MerchantId, Validator};

    fn dom(chain: &str) -> VoteDomain {
        VoteDomain {
            chain_id: chain.into(),
            validator_set_hash: Hash32([3; 32]),
        }
    }

    #[test]
    fn well_formed_votes() {
        let h = Hash32([1; 32]);
        let n = |kind, view, height, block_hash| VoteData {
            kind,
            view,
            height,
            block_hash,
        };
        assert!(well_formed(&n(VoteKind::Nullify, 3, 0, Hash32::ZERO)));
        assert!(!well_formed(&n(VoteKind::Nullify, 3, 0, h)));
        assert!(!well_formed(&n(VoteKind::Nullify, 3, 1, Hash32::ZERO)));
        assert!(well_formed(&n(VoteKind::Notarize, 3, 1, h)));
        assert!(!well_formed(&n(VoteKind::Notarize, 3, 0, h)));
        assert!(!well_formed(&n(VoteKind::Finalize, 3, 1, Hash32::ZERO)));
        assert!(!well_formed(&n(VoteKind::Finalize, 0, 1, h)));
    }

    #[test]
    fn ed25519_verifier_checks_chain_and_signer() {
        let k = Keypair::from_label("a");
        let data = VoteData {
            kind: VoteKind::Notarize,
            view: 1,
            height: 1,
            block_hash: Hash32([1; 32]),
        };
        let v = data.sign(&dom("c"), &k);
        let mut ver = Ed25519Verifier;
        assert!(ver.verify(&dom("c"), &data, &[(v.signer, v.signature)]));
        assert!(!ver.verify(&dom("other"), &data, &[(v.signer, v.signature)]));
        assert!(!ver.verify(
            &dom("c"),
            &data,
            &[(Keypair::from_label("b").public(), v.signature)]
        ));
        let set = ValidatorSet::new(vec![Validator {
            id: MerchantId::new("a").unwrap(),
            key: k.public(),
        }])
        .unwrap();
        assert_eq!(check_vote(&set, &v), Ok(()));
        let outsider = data.sign(&dom("c"), &Keypair::from_label("b"));
        assert_eq!(check_vote(&set, &outsider), Err(DropReason::NotValidator));
    }

    #[test]
    fn keypair_signer_signs_as_vote_data_sign() {
        let k = Keypair::from_label("a");
        let data = VoteData {
            kind: VoteKind::Finalize,
            view: 7,
            height: 3,
            block_hash: Hash32([9; 32]),
        };
        let vote = data.sign(&dom("c"), &k);
        assert_eq!(Signer::public(&k), vote.signer);
        assert_eq!(Signer::sign(&k, &dom("c"), &data), vote.signature);
        let sig = Signer::sign(&k, &dom("c"), &data);
        assert!(Ed25519Verifier.verify(&dom("c"), &data, &[(k.public(), sig)]));
    }

    #[test]
    fn caching_verifier_gives_the_plain_verdicts_and_stays_bounded() {
        let k = Keypair::from_label("a");
        let mut cached = CachingVerifier::default();
        let mut plain = Ed25519Verifier;
        for view in 1..=(VERIFIED_CACHE_MAX as u64 + 10) {
            let data = VoteData {
                kind: VoteKind::Nullify,
                view,
                height: 0,
                block_hash: Hash32::ZERO,
            };
            let v = data.sign(&dom("c"), &k);
            let sigs = [(v.signer, v.signature)];
            if view % 1_000 == 1 {
                let mut forged = sigs;
                forged[0].1 .0[5] ^= 1;
                assert!(!cached.verify(&dom("c"), &data, &forged));
                assert!(!cached.verify(&dom("c"), &data, &forged), "never cached");
                assert!(!cached.verify(&dom("other"), &data, &sigs));
            }
            assert_eq!(
                cached.verify(&dom("c"), &data, &sigs),
                plain.verify(&dom("c"), &data, &sigs)
            );
            assert!(cached.verify(&dom("c"), &data, &sigs), "cached verdict");
        }
        let len = cached.cache.lock().unwrap().set.len();
        assert_eq!(len, VERIFIED_CACHE_MAX);
    }
}
