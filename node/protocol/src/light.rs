//! Light-client proofs: an account's state proven against the latest
//! finalized header, checked from the genesis file alone, without
//! replaying the chain. Pure verification; the node assembles proofs with
//! [`EntryProof::of`], [`ValidatorSetProof::of`] and [`EpochRecorder`].
//!
//! ## The chain of trust
//!
//! 1. The genesis file (trusted) gives the first validator set:
//!    `LedgerState::from_genesis(genesis).validator_set()`.
//! 2. The validator set of height `h + 1` is every active merchant of the
//!    state after block `h`. When governance changes it at block `c` (an
//!    *epoch change*), the proof carries header `c` with its `Finalize`
//!    certificate, which must verify under the set in force at `c` (and
//!    `c`'s `validator_set_hash` must be that set's hash), plus a
//!    [`ValidatorSetProof`] against `c`'s `state_root`: the `Meta` entry
//!    (every merchant ever admitted) and the `Merchant` entry of each of
//!    them. The new set is derived from those entries by the ledger's own
//!    rule ([`LedgerState::try_validator_set`]), so a node cannot omit or
//!    invent a member.
//! 3. The proven header must have a `Finalize` certificate under the last
//!    set, name that set's hash in `validator_set_hash`, and come after the
//!    last epoch change. A node that skips an epoch change is caught here:
//!    a header of a later epoch names another set.
//! 4. The account entry (or its absence: an empty account) is proven
//!    against the header's `state_root` with a sparse-Merkle proof.
//! 5. Freshness ([`Freshness`]): the header must be at most `max_age_ms`
//!    older than the verifier's clock and at least `min_height` high, so a
//!    genuine but old proof (a lagging or withholding node) is not taken for
//!    the current balance.
//!
//! Trust assumption, as for every BFT light client: a quorum of each
//! validator set on the path is honest while it is in office (it never
//! certifies a header that names a wrong validator set). The full audit
//! (`crate::audit`) needs no such assumption.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::audit::{TipFault, TipRequirements};
use crate::block::{BlockHeader, FinalizedBlock};
use crate::certificate::{Certificate, CertificateError, VoteKind};
use crate::crypto::{Hash32, PublicKey};
use crate::genesis::Genesis;
use crate::smt::{SmtProof, SmtProofError};
use crate::state::{Account, ChainTip, LedgerState, StateKey, StateValue};
use crate::validators::ValidatorSet;

/// One state entry (or its absence) with a proof against a state root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryProof {
    /// The key.
    pub key: StateKey,
    /// Its value, `None` if absent.
    pub value: Option<StateValue>,
    /// Sparse-Merkle proof of `key -> value` (or of absence).
    pub proof: SmtProof,
}

impl EntryProof {
    /// The entry of `key` in `state`, proven against its state root.
    pub fn of(state: &LedgerState, key: StateKey) -> Self {
        let (value, proof) = state.prove(&key);
        EntryProof { value, key, proof }
    }

    /// Checks the proof against `root`.
    pub fn verify(&self, root: &Hash32) -> Result<(), SmtProofError> {
        let value = self.value.as_ref().map(StateValue::tree_value);
        self.proof
            .verify(root, &self.key.tree_key(), value.as_ref())
    }
}

/// A header with its certificate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// Its certificate (must be a `Finalize` certificate).
    pub certificate: Certificate,
}

impl CertifiedHeader {
    /// The header and certificate of a finalized block.
    pub fn of(fb: &FinalizedBlock) -> Self {
        CertifiedHeader {
            header: fb.block.header.clone(),
            certificate: fb.certificate.clone(),
        }
    }
}

/// The entries that determine a validator set, proven against a state
/// root: `Meta` and the `Merchant` entry of every id it lists, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSetProof {
    /// The `Meta` entry.
    pub meta: EntryProof,
    /// One `Merchant` entry per id of `Meta::merchants`, in that order.
    pub merchants: Vec<EntryProof>,
}

impl ValidatorSetProof {
    /// The proof of the set `state` defines (the set of its next height).
    pub fn of(state: &LedgerState) -> Self {
        let meta = EntryProof::of(state, StateKey::Meta);
        let ids = match &meta.value {
            Some(StateValue::Meta(m)) => m.merchants.clone(),
            _ => Vec::new(),
        };
        ValidatorSetProof {
            meta,
            merchants: ids
                .into_iter()
                .map(|id| EntryProof::of(state, StateKey::Merchant(id)))
                .collect(),
        }
    }

    /// Checks every entry against `root` and derives the validator set with
    /// the ledger's rule.
    pub fn verify(&self, chain_id: &str, root: &Hash32) -> Result<ValidatorSet, String> {
        let (meta, ids) = match (&self.meta.key, &self.meta.value) {
            (StateKey::Meta, Some(v @ StateValue::Meta(m))) => (v, &m.merchants),
            _ => return Err("the first entry is not the Meta entry".into()),
        };
        self.meta
            .verify(root)
            .map_err(|e| format!("Meta entry: {e}"))?;
        if ids.len() != self.merchants.len() {
            return Err(format!(
                "Meta lists {} merchants, the proof has {}",
                ids.len(),
                self.merchants.len()
            ));
        }
        let mut entries = BTreeMap::new();
        for (id, e) in ids.iter().zip(&self.merchants) {
            if e.key != StateKey::Merchant(id.clone()) {
                return Err(format!("entry for merchant `{id}` has another key"));
            }
            if !matches!(e.value, None | Some(StateValue::Merchant(_))) {
                return Err(format!("entry for merchant `{id}` is not a merchant"));
            }
            e.verify(root)
                .map_err(|err| format!("merchant `{id}`: {err}"))?;
            if let Some(v) = &e.value {
                entries.insert(e.key.clone(), v.clone());
            }
        }
        entries.insert(StateKey::Meta, meta.clone());
        // Only these entries: enough for the rule, which reads Meta and the
        // merchant records and nothing else.
        let tip = ChainTip {
            height: 0,
            hash: Hash32::ZERO,
            timestamp_ms: 0,
        };
        LedgerState::from_entries(chain_id.to_string(), tip, entries)
            .try_validator_set()
            .map_err(|e| format!("the proven state has no valid validator set: {e}"))
    }
}

/// A governance change of the validator set: block `at` (certified by the
/// old set) whose state defines the new set, proven by `next`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EpochChange {
    /// The block after which the set changes.
    pub at: CertifiedHeader,
    /// The new set's entries against `at.header.state_root`.
    pub next: ValidatorSetProof,
}

/// What `GET /v1/accounts/{addr}/proof` returns: everything needed to check
/// an account from the genesis file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountProof {
    /// Every validator-set change from genesis up to `header`, in order.
    pub epochs: Vec<EpochChange>,
    /// The latest finalized header and its certificate.
    pub header: CertifiedHeader,
    /// The account entry (absent: an empty account) against its state root.
    pub account: EntryProof,
}

/// How recent a proven header must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Freshness {
    /// The verifier's clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// Oldest acceptable header age (now minus header timestamp).
    pub max_age_ms: u64,
    /// Lowest acceptable height (e.g. a height the user saw elsewhere).
    pub min_height: u64,
}

/// A verified account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProvenAccount {
    /// The address.
    pub address: PublicKey,
    /// Its state (empty if it never held points).
    pub account: Account,
    /// Height of the proven header.
    pub height: u64,
    /// Hash of that header.
    pub block_hash: Hash32,
    /// Its time, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its state root.
    pub state_root: Hash32,
    /// Validator-set changes followed from genesis.
    pub epochs: usize,
    /// Validators that certified the header.
    pub validators: usize,
}

/// Why a proof is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LightError {
    /// A header names another chain.
    WrongChain {
        /// Height of the header.
        height: u64,
        /// Its chain id.
        got: String,
    },
    /// Headers are not in increasing height order after the last change.
    OutOfOrder {
        /// Height of the header.
        height: u64,
        /// Height it must exceed.
        after: u64,
    },
    /// A header's `validator_set_hash` is not the hash of the set the
    /// verifier derived: a validator-set change is missing or forged.
    ValidatorSetMismatch {
        /// Height of the header.
        height: u64,
    },
    /// A header is only notarized.
    NotFinalized {
        /// Height of the header.
        height: u64,
    },
    /// A header's certificate does not verify under its set.
    Certificate {
        /// Height of the header.
        height: u64,
        /// Why.
        error: CertificateError,
    },
    /// A validator-set proof does not verify.
    SetProof {
        /// Height of the epoch-change header.
        height: u64,
        /// Why.
        reason: String,
    },
    /// The proven header is too old.
    Stale {
        /// Its height.
        height: u64,
        /// Its age, ms.
        age_ms: u64,
        /// The bound.
        max_age_ms: u64,
    },
    /// The proven header is below the required height.
    BelowMinHeight {
        /// Its height.
        height: u64,
        /// The required height.
        min_height: u64,
    },
    /// The account entry is for another key or holds another kind of value.
    WrongEntry,
    /// The account entry does not verify against the header's state root.
    AccountProof(SmtProofError),
}

impl LightError {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            LightError::WrongChain { .. } => "wrong_chain",
            LightError::OutOfOrder { .. } => "out_of_order",
            LightError::ValidatorSetMismatch { .. } => "validator_set_mismatch",
            LightError::NotFinalized { .. } => "not_finalized",
            LightError::Certificate { .. } => "bad_certificate",
            LightError::SetProof { .. } => "bad_validator_set_proof",
            LightError::Stale { .. } => "stale",
            LightError::BelowMinHeight { .. } => "below_min_height",
            LightError::WrongEntry => "wrong_entry",
            LightError::AccountProof(_) => "bad_account_proof",
        }
    }
}

impl fmt::Display for LightError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LightError::WrongChain { height, got } => {
                write!(f, "header {height} is for chain `{got}`, not the genesis chain")
            }
            LightError::OutOfOrder { height, after } => {
                write!(f, "header {height} does not come after height {after}")
            }
            LightError::ValidatorSetMismatch { height } => write!(
                f,
                "header {height} names a validator set other than the one derived from genesis and the proven set changes (a change is missing or forged)"
            ),
            LightError::NotFinalized { height } => write!(
                f,
                "header {height} has only a notarization, not a finalize certificate"
            ),
            LightError::Certificate { height, error } => {
                write!(f, "header {height}: invalid certificate: {error}")
            }
            LightError::SetProof { height, reason } => write!(
                f,
                "validator-set change at height {height}: {reason}"
            ),
            LightError::Stale {
                height,
                age_ms,
                max_age_ms,
            } => write!(
                f,
                "stale: header {height} is {:.3} s old, more than the allowed {:.3} s (the node may be lagging or withholding blocks)",
                *age_ms as f64 / 1000.0,
                *max_age_ms as f64 / 1000.0
            ),
            LightError::BelowMinHeight { height, min_height } => write!(
                f,
                "stale: proof is at height {height}, below the required height {min_height}"
            ),
            LightError::WrongEntry => {
                write!(f, "the proven entry is not this address's account")
            }
            LightError::AccountProof(e) => write!(
                f,
                "account state does not match the certified state root: {e}"
            ),
        }
    }
}

impl std::error::Error for LightError {}

/// Checks a header against the set in force and its certificate.
fn check_header(
    chain_id: &str,
    set: &ValidatorSet,
    ch: &CertifiedHeader,
    after: u64,
) -> Result<(), LightError> {
    let h = &ch.header;
    if h.chain_id != chain_id {
        return Err(LightError::WrongChain {
            height: h.height,
            got: h.chain_id.clone(),
        });
    }
    if h.height <= after {
        return Err(LightError::OutOfOrder {
            height: h.height,
            after,
        });
    }
    if h.validator_set_hash != set.hash() {
        return Err(LightError::ValidatorSetMismatch { height: h.height });
    }
    if ch.certificate.kind != VoteKind::Finalize {
        return Err(LightError::NotFinalized { height: h.height });
    }
    ch.certificate
        .verify(chain_id, set, h.height, &h.hash())
        .map_err(|error| LightError::Certificate {
            height: h.height,
            error,
        })
}

/// Verifies `proof` for `address` from `genesis` (already validated) and
/// returns the proven account. See the module documentation for the chain
/// of trust.
pub fn verify_account_proof(
    genesis: &Genesis,
    address: &PublicKey,
    proof: &AccountProof,
    freshness: &Freshness,
) -> Result<ProvenAccount, LightError> {
    let chain_id = genesis.chain_id.as_str();
    let mut set = LedgerState::from_genesis(genesis).validator_set();
    let mut after = 0;
    for change in &proof.epochs {
        check_header(chain_id, &set, &change.at, after)?;
        let h = &change.at.header;
        set = change
            .next
            .verify(chain_id, &h.state_root)
            .map_err(|reason| LightError::SetProof {
                height: h.height,
                reason,
            })?;
        after = h.height;
    }
    check_header(chain_id, &set, &proof.header, after)?;
    let h = &proof.header.header;
    // The freshness rule is the audit's ([`TipRequirements`]): one rule for
    // every reader of a certified tip.
    TipRequirements {
        now_ms: freshness.now_ms,
        max_age_ms: Some(freshness.max_age_ms),
        min_height: freshness.min_height,
        ..TipRequirements::default()
    }
    .check(h.height, h.hash(), h.timestamp_ms)
    .map_err(|fault| match fault {
        TipFault::Stale {
            height,
            age_ms,
            max_age_ms,
        } => LightError::Stale {
            height,
            age_ms,
            max_age_ms,
        },
        TipFault::BelowMinHeight { height, min_height } => {
            LightError::BelowMinHeight { height, min_height }
        }
        other => unreachable!("no tip hash or node given, so not {other}"),
    })?;
    let account = match (&proof.account.key, &proof.account.value) {
        (StateKey::Account(k), None) if k == address => Account::default(),
        (StateKey::Account(k), Some(StateValue::Account(a))) if k == address => a.clone(),
        _ => return Err(LightError::WrongEntry),
    };
    proof
        .account
        .verify(&h.state_root)
        .map_err(LightError::AccountProof)?;
    Ok(ProvenAccount {
        address: *address,
        account,
        height: h.height,
        block_hash: h.hash(),
        timestamp_ms: h.timestamp_ms,
        state_root: h.state_root,
        epochs: proof.epochs.len(),
        validators: set.len(),
    })
}

/// Records the validator-set changes of a chain as it is replayed (the
/// node builds [`AccountProof::epochs`] with it).
pub struct EpochRecorder {
    set: ValidatorSet,
    changes: Vec<EpochChange>,
}

impl EpochRecorder {
    /// Starts at `genesis`'s set.
    pub fn new(genesis: &Genesis) -> Self {
        EpochRecorder {
            set: LedgerState::from_genesis(genesis).validator_set(),
            changes: Vec::new(),
        }
    }

    /// Notes block `fb`, given the state right after it: records an epoch
    /// change if that state defines another validator set.
    pub fn observe(&mut self, fb: &FinalizedBlock, state_after: &LedgerState) {
        let set = state_after.validator_set();
        if set != self.set {
            self.changes.push(EpochChange {
                at: CertifiedHeader::of(fb),
                next: ValidatorSetProof::of(state_after),
            });
            self.set = set;
        }
    }

    /// The changes seen so far.
    pub fn changes(&self) -> &[EpochChange] {
        &self.changes
    }

    /// The changes, consuming the recorder.
    pub fn into_changes(self) -> Vec<EpochChange> {
        self.changes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::fixtures::{certify, demo_customer_key, demo_genesis, demo_policy};
    use crate::merchant::MerchantId;
    use crate::state::Lot;
    use crate::tx::{GovAction, Transaction, TxBody};

    const CHAIN: &str = "light-test";
    const T0: u64 = 1_700_000_000_000;

    /// A certified chain on 4 demo merchants: Alice gets points at block 1;
    /// at block 3 a proposal admits a fifth merchant, approved at block 4
    /// (a validator-set change); blocks 5..=n follow, certified by the five.
    struct Fixture {
        genesis: Genesis,
        blocks: Vec<FinalizedBlock>,
        states: Vec<LedgerState>,
        alice: Keypair,
    }

    fn fixture(n: u64) -> Fixture {
        let (genesis, keys) = demo_genesis(CHAIN, 4, T0);
        let newcomer = Keypair::from_label("light-test/newcomer");
        let alice = demo_customer_key(CHAIN, "alice");
        let mut state = LedgerState::from_genesis(&genesis);
        let (mut blocks, mut states) = (Vec::new(), Vec::new());
        for h in 1..=n {
            let nonce = |k: &Keypair| state.account(&k.public()).nonce;
            let txs = match h {
                1 => vec![Transaction::sign(
                    CHAIN,
                    &keys[0],
                    nonce(&keys[0]),
                    TxBody::Issue {
                        to: alice.public(),
                        amount: 120,
                        reason: "purchase".into(),
                        receipt_ref: "r1".into(),
                        receipt_time_ms: state.tip().timestamp_ms,
                    },
                )],
                3 => vec![Transaction::sign(
                    CHAIN,
                    &keys[0],
                    nonce(&keys[0]),
                    TxBody::Propose {
                        action: GovAction::AddMerchant {
                            id: MerchantId::new("newcomer").unwrap(),
                            name: "New Shop".into(),
                            key: newcomer.public(),
                            policy: demo_policy(),
                        },
                        deadline_height: 20,
                    },
                )],
                4 => (1..3)
                    .map(|i| {
                        Transaction::sign(
                            CHAIN,
                            &keys[i],
                            nonce(&keys[i]),
                            TxBody::Vote {
                                proposal: 0,
                                approve: true,
                            },
                        )
                    })
                    .collect(),
                _ => vec![],
            };
            let signers: Vec<Keypair> = if state.validator_set().len() == 5 {
                let mut s = keys.clone();
                s.push(newcomer.clone());
                s
            } else {
                keys.clone()
            };
            let (block, exec) = state.build_block(txs, T0 + h * 1000, keys[0].public());
            assert_eq!(block.txs.len(), exec.outcomes.len());
            let certificate = certify(CHAIN, &block, h, &signers);
            state.commit(exec);
            blocks.push(FinalizedBlock { block, certificate });
            states.push(state.clone());
        }
        Fixture {
            genesis,
            blocks,
            states,
            alice,
        }
    }

    impl Fixture {
        /// The proof the node serves at height `h` (1-based).
        fn proof_at(&self, h: u64, who: &PublicKey) -> AccountProof {
            let mut rec = EpochRecorder::new(&self.genesis);
            for i in 0..(h - 1) as usize {
                rec.observe(&self.blocks[i], &self.states[i]);
            }
            let i = (h - 1) as usize;
            AccountProof {
                epochs: rec.into_changes(),
                header: CertifiedHeader::of(&self.blocks[i]),
                account: EntryProof::of(&self.states[i], StateKey::Account(*who)),
            }
        }

        fn fresh_at(&self, h: u64) -> Freshness {
            Freshness {
                now_ms: self.blocks[(h - 1) as usize].block.header.timestamp_ms + 500,
                max_age_ms: 60_000,
                min_height: 0,
            }
        }
    }

    #[test]
    fn a_correct_proof_verifies_across_a_validator_set_change() {
        let f = fixture(7);
        assert_eq!(f.states[3].validator_set().len(), 5, "block 4 admits one");
        let proof = f.proof_at(7, &f.alice.public());
        assert_eq!(proof.epochs.len(), 1);
        assert_eq!(proof.epochs[0].at.header.height, 4);
        let p =
            verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(7)).unwrap();
        assert_eq!(p.height, 7);
        assert_eq!(p.account.balance(), 120);
        assert_eq!(p.account.lots[0].issuer.as_str(), "coffee");
        assert_eq!((p.epochs, p.validators), (1, 5));
        // The wire form (JSON) round-trips to a proof that still verifies.
        let json = serde_json::to_string(&proof).unwrap();
        let back: AccountProof = serde_json::from_str(&json).unwrap();
        assert_eq!(back, proof);
        // Before the change, no epoch is needed.
        let early = f.proof_at(2, &f.alice.public());
        assert!(early.epochs.is_empty());
        verify_account_proof(&f.genesis, &f.alice.public(), &early, &f.fresh_at(2)).unwrap();
    }

    /// A proof whose certificates list their votes out of signer order
    /// (the same signatures, another encoding) is refused by the JSON
    /// decoder, in the proven header and in an epoch change alike, and by
    /// the verifier if built in memory.
    #[test]
    fn certificates_out_of_canonical_order_are_refused() {
        let f = fixture(7);
        let proof = f.proof_at(7, &f.alice.public());
        let json: serde_json::Value = serde_json::to_value(&proof).unwrap();
        for path in [
            "/header/certificate/votes",
            "/epochs/0/at/certificate/votes",
        ] {
            let mut bad = json.clone();
            let votes = bad.pointer_mut(path).unwrap().as_array_mut().unwrap();
            votes.swap(0, 1);
            let err = serde_json::from_value::<AccountProof>(bad).unwrap_err();
            assert!(
                err.to_string().contains("not in canonical order"),
                "{path}: {err}"
            );
        }
        let mut swapped = proof.clone();
        swapped.header.certificate.votes.swap(0, 1);
        assert!(matches!(
            verify_account_proof(&f.genesis, &f.alice.public(), &swapped, &f.fresh_at(7)),
            Err(LightError::Certificate {
                height: 7,
                error: CertificateError::UnsortedVotes { .. }
            })
        ));
    }

    #[test]
    fn an_empty_account_is_proven_absent() {
        let f = fixture(2);
        let nobody = Keypair::from_label("nobody").public();
        let proof = f.proof_at(2, &nobody);
        assert_eq!(proof.account.value, None);
        let p = verify_account_proof(&f.genesis, &nobody, &proof, &f.fresh_at(2)).unwrap();
        assert_eq!(p.account, Account::default());
        // Claiming it absent when it is not fails.
        let mut lie = f.proof_at(2, &f.alice.public());
        lie.account.value = None;
        assert!(matches!(
            verify_account_proof(&f.genesis, &f.alice.public(), &lie, &f.fresh_at(2)),
            Err(LightError::AccountProof(_))
        ));
    }

    #[test]
    fn a_different_balance_does_not_verify() {
        let f = fixture(3);
        let mut proof = f.proof_at(3, &f.alice.public());
        if let Some(StateValue::Account(a)) = &mut proof.account.value {
            a.lots[0].amount += 1;
        }
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3))
            .unwrap_err();
        assert_eq!(e, LightError::AccountProof(SmtProofError::RootMismatch));
        // Another address's proof is not this address's.
        let bob = demo_customer_key(CHAIN, "bob").public();
        let proof = f.proof_at(3, &f.alice.public());
        let e = verify_account_proof(&f.genesis, &bob, &proof, &f.fresh_at(3)).unwrap_err();
        assert_eq!(e, LightError::WrongEntry);
        // An invented lot with a forged value hash does not verify either.
        let mut proof = f.proof_at(3, &f.alice.public());
        if let Some(StateValue::Account(a)) = &mut proof.account.value {
            a.lots.push(Lot {
                issuer: MerchantId::new("books").unwrap(),
                expiry_ms: None,
                amount: 1_000,
            });
        }
        assert!(
            verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3)).is_err()
        );
    }

    #[test]
    fn a_stale_header_is_refused() {
        let f = fixture(7);
        let proof = f.proof_at(2, &f.alice.public());
        // Valid at the time...
        verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(2)).unwrap();
        // ...but 10 s later with a 5 s bound it is stale.
        let late = Freshness {
            now_ms: proof.header.header.timestamp_ms + 10_000,
            max_age_ms: 5_000,
            min_height: 0,
        };
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &late).unwrap_err();
        assert_eq!(e.code(), "stale");
        assert!(e.to_string().contains("10.000 s old"), "{e}");
        // A height the user knows is later than the proof's.
        let known = Freshness {
            min_height: 6,
            ..f.fresh_at(2)
        };
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &known).unwrap_err();
        assert_eq!(
            e,
            LightError::BelowMinHeight {
                height: 2,
                min_height: 6
            }
        );
    }

    #[test]
    fn a_bad_certificate_is_refused() {
        let f = fixture(5);
        let (_, keys) = demo_genesis(CHAIN, 4, T0);
        // Too few signers on the proven header.
        let mut proof = f.proof_at(3, &f.alice.public());
        proof.header.certificate = certify(CHAIN, &f.blocks[2].block, 3, &keys[..2]);
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3))
            .unwrap_err();
        assert_eq!(
            e,
            LightError::Certificate {
                height: 3,
                error: CertificateError::TooFewSigners { got: 2, need: 3 }
            }
        );
        // Outsiders.
        let outsiders: Vec<Keypair> = (0..4)
            .map(|i| Keypair::from_label(&format!("outsider{i}")))
            .collect();
        proof.header.certificate = certify(CHAIN, &f.blocks[2].block, 3, &outsiders);
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3))
            .unwrap_err();
        assert!(matches!(
            e,
            LightError::Certificate {
                error: CertificateError::NotAValidator(_),
                ..
            }
        ));
        // A header altered after certification (another state root).
        let mut proof = f.proof_at(3, &f.alice.public());
        proof.header.header.state_root = Hash32([9; 32]);
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3))
            .unwrap_err();
        assert!(matches!(
            e,
            LightError::Certificate {
                error: CertificateError::WrongBlock { .. },
                ..
            }
        ));
        // A notarization is not finality.
        let mut proof = f.proof_at(3, &f.alice.public());
        proof.header.certificate.kind = VoteKind::Notarize;
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(3))
            .unwrap_err();
        assert_eq!(e, LightError::NotFinalized { height: 3 });
    }

    #[test]
    fn validator_set_changes_cannot_be_skipped_or_forged() {
        let f = fixture(6);
        // Skipping the change: header 6 names the five-member set.
        let mut proof = f.proof_at(6, &f.alice.public());
        proof.epochs.clear();
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(6))
            .unwrap_err();
        assert_eq!(e, LightError::ValidatorSetMismatch { height: 6 });
        // Hiding the newcomer's record from the set proof.
        let mut proof = f.proof_at(6, &f.alice.public());
        proof.epochs[0].next.merchants.pop();
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(6))
            .unwrap_err();
        assert_eq!(e.code(), "bad_validator_set_proof");
        // Swapping in an outsider's key for a merchant.
        let mut proof = f.proof_at(6, &f.alice.public());
        if let Some(StateValue::Merchant(m)) = &mut proof.epochs[0].next.merchants[0].value {
            m.key = Keypair::from_label("outsider").public();
        }
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(6))
            .unwrap_err();
        assert_eq!(e.code(), "bad_validator_set_proof");
        // The change header must be certified by the old set.
        let mut proof = f.proof_at(6, &f.alice.public());
        let (_, keys) = demo_genesis(CHAIN, 4, T0);
        proof.epochs[0].at.certificate = certify(CHAIN, &f.blocks[3].block, 4, &keys[..1]);
        let e = verify_account_proof(&f.genesis, &f.alice.public(), &proof, &f.fresh_at(6))
            .unwrap_err();
        assert!(
            matches!(e, LightError::Certificate { height: 4, .. }),
            "{e}"
        );
    }
}
