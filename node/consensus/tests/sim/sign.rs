//! The simulation's signature scheme: a keyed hash in place of ed25519.
//!
//! Real ed25519 (signing every vote, verifying every distinct signature)
//! was most of a seed-run's time, and the simulation tests the consensus
//! rules, not the curve. Every validator keeps its real ed25519 public key
//! (so the validator set, its hash, the vote domain and the leader rotation
//! are exactly the node's), and signs a vote with
//! H(secret, domain, vote data), its secret being its ed25519 seed. The
//! verifier knows every key of the run and recomputes the hash, so a
//! signature verifies only for the key, chain, validator set and vote data
//! it was made for: random bytes, another chain's or another vote's
//! signature, a certificate relabelled to another height and a key the
//! run does not know all fail, as they do under ed25519. Adversaries sign
//! only with keys they hold (their own, a twin's, the outsider's).

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::{Mutex, OnceLock};

use alliance_consensus::{Signer, Verifier};
use alliance_protocol::encoding::hash_with_domain;
use alliance_protocol::{
    Keypair, PublicKey, Signature, SignedVote, VoteData, VoteDomain, VoteKind,
};

/// A key of the simulation: an ed25519 public key and the secret the
/// keyed hash uses.
#[derive(Clone, Debug)]
pub struct SimKey {
    public: PublicKey,
    secret: [u8; 32],
}

/// Keys derived so far, by label: deriving an ed25519 key costs a scalar
/// multiplication, and every seed-run uses the same dozen labels.
fn derived() -> &'static Mutex<HashMap<String, SimKey>> {
    static KEYS: OnceLock<Mutex<HashMap<String, SimKey>>> = OnceLock::new();
    KEYS.get_or_init(Default::default)
}

impl SimKey {
    /// The key of `Keypair::from_label(label)`.
    pub fn from_label(label: &str) -> SimKey {
        let mut keys = derived().lock().unwrap_or_else(|e| e.into_inner());
        keys.entry(label.to_string())
            .or_insert_with(|| {
                let k = Keypair::from_label(label);
                SimKey {
                    public: k.public(),
                    secret: k.seed(),
                }
            })
            .clone()
    }

    /// The public key (the one in the validator set).
    pub fn public(&self) -> PublicKey {
        self.public
    }

    /// This key's vote on `data` in `domain`.
    pub fn vote(&self, domain: &VoteDomain, data: VoteData) -> SignedVote {
        SignedVote {
            data,
            signer: self.public,
            signature: signature(&self.secret, domain, &data),
        }
    }
}

impl Signer for SimKey {
    fn public(&self) -> PublicKey {
        self.public
    }

    fn sign(&self, domain: &VoteDomain, data: &VoteData) -> Signature {
        signature(&self.secret, domain, data)
    }
}

/// H(secret, chain id, validator-set hash, kind, view, height, block
/// hash): one SHA-256, written twice into the 64 bytes of a signature (the
/// verifier compares all 64).
fn signature(secret: &[u8; 32], domain: &VoteDomain, data: &VoteData) -> Signature {
    let mut bytes = Vec::with_capacity(32 + 8 + domain.chain_id.len() + 32 + 1 + 16 + 32);
    bytes.extend_from_slice(secret);
    bytes.extend_from_slice(&(domain.chain_id.len() as u64).to_le_bytes());
    bytes.extend_from_slice(domain.chain_id.as_bytes());
    bytes.extend_from_slice(&domain.validator_set_hash.0);
    bytes.push(match data.kind {
        VoteKind::Notarize => 0,
        VoteKind::Nullify => 1,
        VoteKind::Finalize => 2,
    });
    bytes.extend_from_slice(&data.view.to_le_bytes());
    bytes.extend_from_slice(&data.height.to_le_bytes());
    bytes.extend_from_slice(&data.block_hash.0);
    let h = hash_with_domain("sim/vote-signature", &bytes);
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(&h.0);
    sig[32..].copy_from_slice(&h.0);
    Signature(sig)
}

/// Checks signatures of the scheme against every key of the run (shared by
/// all nodes of the run and the checker). A key it does not know never
/// verifies.
#[derive(Clone, Default)]
pub struct SimVerifier {
    keys: Rc<Vec<SimKey>>,
}

impl SimVerifier {
    /// A verifier for signatures by `keys`.
    pub fn new(keys: Vec<SimKey>) -> SimVerifier {
        SimVerifier {
            keys: Rc::new(keys),
        }
    }

    /// Whether `vote` is a valid signature by its signer in `domain`.
    pub fn check(&self, domain: &VoteDomain, vote: &SignedVote) -> bool {
        self.valid(domain, &vote.data, &vote.signer, &vote.signature)
    }

    fn valid(&self, domain: &VoteDomain, data: &VoteData, pk: &PublicKey, sig: &Signature) -> bool {
        self.keys
            .iter()
            .find(|k| k.public == *pk)
            .is_some_and(|k| signature(&k.secret, domain, data) == *sig)
    }
}

impl Verifier for SimVerifier {
    fn verify(
        &mut self,
        domain: &VoteDomain,
        data: &VoteData,
        signatures: &[(PublicKey, Signature)],
    ) -> bool {
        signatures
            .iter()
            .all(|(pk, sig)| self.valid(domain, data, pk, sig))
    }
}

/// `VoteData::sign` with a simulation key.
pub trait SignedBy {
    /// This vote data signed by `key` in `domain`.
    fn signed_by(&self, domain: &VoteDomain, key: &SimKey) -> SignedVote;
}

impl SignedBy for VoteData {
    fn signed_by(&self, domain: &VoteDomain, key: &SimKey) -> SignedVote {
        key.vote(domain, *self)
    }
}
