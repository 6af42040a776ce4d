//! Bulk sync: which blocks of a peer's `GetBlocks` answer may be committed.
//!
//! A peer's answer is hostile until checked. [`plan`] is pure: from the local
//! finalized tip, the validator set in force after it and the raw answer, it
//! returns the one path that may be committed, or a [`SyncFault`] that costs
//! the peer a penalty (and the whole answer is dropped). The rule:
//!
//! - every entry decodes, and the entries are consecutive heights from the
//!   tip + 1, each linked by `prev_hash` to the one before (the first to the
//!   tip), on this chain;
//! - every certificate is a quorum certificate of its own block, verified
//!   against the validator set of its height;
//! - the path ends at the last entry that carries a **Finalize**
//!   certificate: the blocks before it are final because their descendant
//!   is (Simplex finalizes ancestors), and the hash links prove which they
//!   are. Entries after it are not committed (a notarization alone never
//!   makes a block final);
//! - a block whose header names another validator set starts a new epoch:
//!   the path stops before it, and the block before it must carry its own
//!   finalization (the ledger never builds on a set change that is not
//!   final). The next round syncs the new epoch with the new set.
//!
//! Before this rule, a peer answering `[orphaned notarized block at h,
//! any block with a Finalize certificate]` made the node commit the orphan
//! (issue #13, defect 1).

use alliance_protocol::{CertificateError, FinalizedBlock, Hash32, ValidatorSet, VoteKind};

use crate::chain::Chain;

/// The local finalized tip the answer must extend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tip {
    /// Height of the last finalized block.
    pub height: u64,
    /// Its hash.
    pub hash: Hash32,
}

/// Why a peer's sync answer is refused whole. Each one is the peer's fault:
/// an honest peer answers from its finalized store.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncFault {
    /// An entry is not a canonical `FinalizedBlock`.
    #[error("entry {index} does not decode")]
    Undecodable {
        /// Position in the answer.
        index: usize,
    },
    /// Heights are not consecutive from the tip + 1.
    #[error("expected height {expected}, got {got}")]
    WrongHeight {
        /// The height that had to come next.
        expected: u64,
        /// The height sent.
        got: u64,
    },
    /// A block does not link to the block before it (or to our tip).
    #[error("block at height {height} does not link to its predecessor")]
    BrokenLink {
        /// Height of the block.
        height: u64,
    },
    /// A block of another chain.
    #[error("block at height {height} is of another chain")]
    WrongChain {
        /// Height of the block.
        height: u64,
    },
    /// A certificate does not verify for its block against the validator
    /// set of the block's height.
    #[error("certificate at height {height}: {error}")]
    BadCertificate {
        /// Height of the block.
        height: u64,
        /// Why.
        error: CertificateError,
    },
    /// The first block of the answer names a validator set other than the
    /// one in force after our tip.
    #[error("block at height {height} names another validator set")]
    WrongValidatorSet {
        /// Height of the block.
        height: u64,
    },
    /// A block whose transactions are not the ones its header commits to
    /// (its certificate may verify: the block hash covers the header only).
    #[error("block at height {height} carries transactions its header does not commit to")]
    BodyMismatch {
        /// Height of the block.
        height: u64,
    },
    /// A block after a set change whose own certificate is only a
    /// notarization: the set change was never final on an honest chain.
    #[error("block at height {height} changes epoch after a block that is not finalized")]
    EpochNotFinal {
        /// Height of the first block of the new epoch.
        height: u64,
    },
}

/// The blocks of `answer` that may be committed on top of `tip`, in height
/// order: a verified, hash-linked path ending at a block with a Finalize
/// certificate (empty when the answer has none, which is no fault: a long
/// run of implicitly finalized blocks may not fit one answer). `validators`
/// is the set in force after `tip`.
pub fn plan(
    chain_id: &str,
    tip: Tip,
    validators: &ValidatorSet,
    answer: &[Vec<u8>],
) -> Result<Vec<FinalizedBlock>, SyncFault> {
    let set_hash = validators.hash();
    let mut path = Vec::with_capacity(answer.len());
    let mut prev = tip.hash;
    for (index, bytes) in answer.iter().enumerate() {
        let fb = FinalizedBlock::from_bytes(bytes).map_err(|_| SyncFault::Undecodable { index })?;
        let header = &fb.block.header;
        let expected = tip.height + 1 + index as u64;
        if header.height != expected {
            return Err(SyncFault::WrongHeight {
                expected,
                got: header.height,
            });
        }
        if header.prev_hash != prev {
            return Err(SyncFault::BrokenLink { height: expected });
        }
        if header.chain_id != chain_id {
            return Err(SyncFault::WrongChain { height: expected });
        }
        if header.validator_set_hash != set_hash {
            // A new epoch: certified by a set we cannot check yet.
            return match path.last() {
                None => Err(SyncFault::WrongValidatorSet { height: expected }),
                Some(last) if !is_finalization(last) => {
                    Err(SyncFault::EpochNotFinal { height: expected })
                }
                Some(_) => Ok(path),
            };
        }
        if !fb.block.body_matches_header() {
            return Err(SyncFault::BodyMismatch { height: expected });
        }
        prev = fb.block.hash();
        fb.certificate
            .verify(chain_id, validators, expected, &prev)
            .map_err(|error| SyncFault::BadCertificate {
                height: expected,
                error,
            })?;
        path.push(fb);
    }
    let end = path.iter().rposition(is_finalization).map_or(0, |i| i + 1);
    path.truncate(end);
    Ok(path)
}

/// Why a sync answer was not committed.
#[derive(Debug, thiserror::Error)]
pub enum SyncCommitError {
    /// The peer's answer is inconsistent: nothing was committed.
    #[error(transparent)]
    Fault(#[from] SyncFault),
    /// A verified finalized block could not be committed (the store failed,
    /// or a quorum certified a block that does not apply): fatal.
    #[error(transparent)]
    Finalize(#[from] crate::chain::FinalizeError),
}

/// A block committed by [`commit`].
#[derive(Debug)]
pub struct Committed {
    /// The block and its certificate, as stored.
    pub block: FinalizedBlock,
    /// Its parent's timestamp (for the block-interval metric).
    pub parent_timestamp_ms: u64,
    /// Its transactions' outcomes and ids.
    pub done: crate::chain::Finalized,
}

/// The part of an answer to a request from `from_height` that lies above
/// `tip_height`: the tip may have moved on (through consensus) while the
/// answer was on its way, and what it covers is no fault of the peer.
pub fn unseen(answer: &[Vec<u8>], from_height: u64, tip_height: u64) -> &[Vec<u8>] {
    let seen = (tip_height + 1).saturating_sub(from_height);
    answer.get(seen as usize..).unwrap_or(&[])
}

/// Plans ([`plan`]) and durably commits a peer's answer to a request for
/// blocks from `from_height` on `chain`: all of the verified path, or
/// nothing when the answer is at fault.
pub fn commit(
    chain: &mut Chain,
    chain_id: &str,
    from_height: u64,
    answer: &[Vec<u8>],
) -> Result<Vec<Committed>, SyncCommitError> {
    let tip = chain.state().tip();
    let answer = unseen(answer, from_height, tip.height);
    let path = plan(
        chain_id,
        Tip {
            height: tip.height,
            hash: tip.hash,
        },
        &chain.state().validator_set(),
        answer,
    )?;
    let mut out = Vec::with_capacity(path.len());
    for block in path {
        let parent_timestamp_ms = chain.state().tip().timestamp_ms;
        let done = chain.finalize(&block.block, block.certificate.clone())?;
        out.push(Committed {
            block,
            parent_timestamp_ms,
            done,
        });
    }
    Ok(out)
}

fn is_finalization(fb: &FinalizedBlock) -> bool {
    fb.certificate.kind == VoteKind::Finalize
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::{certify, demo_genesis};
    use alliance_protocol::{Block, Certificate, Keypair, VoteData};

    use crate::store::Store;

    const CHAIN: &str = "sync-test";

    fn notarize(block: &Block, view: u64, keys: &[Keypair]) -> Certificate {
        let data = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: block.header.height,
            block_hash: block.hash(),
        };
        let msg = data.signing_hash(&alliance_protocol::VoteDomain {
            chain_id: CHAIN.into(),
            validator_set_hash: block.header.validator_set_hash,
        });
        Certificate::from_votes(
            VoteKind::Notarize,
            view,
            data.height,
            data.block_hash,
            keys.iter().map(|k| (k.public(), k.sign(&msg.0))),
        )
    }

    fn bytes(block: &Block, certificate: Certificate) -> Vec<u8> {
        FinalizedBlock {
            block: block.clone(),
            certificate,
        }
        .to_bytes()
    }

    struct World {
        _dir: tempfile::TempDir,
        chain: Chain,
        keys: Vec<Keypair>,
        /// The alliance's real chain: heights 1, 2, 3.
        real: Vec<Block>,
        /// An orphan at height 1, notarized in view 1 but never finalized.
        orphan: Block,
    }

    fn world() -> World {
        let (genesis, keys) = demo_genesis(CHAIN, 4, 1_700_000_000_000);
        // The blocks are built on a scratch chain, so the victim's chain
        // holds no pending executions of them.
        let scratch_dir = tempfile::tempdir().unwrap();
        let (store, state) = Store::open(scratch_dir.path(), &genesis).unwrap();
        let mut scratch = Chain::new(store, state);
        let now = 1_700_000_100_000;
        let orphan = scratch.build(&[], vec![], now, keys[1].public()).unwrap();
        let mut real = Vec::new();
        let mut ancestry = Vec::new();
        for i in 0..3 {
            let b = scratch
                .build(&ancestry, vec![], now + 10 + i, keys[0].public())
                .unwrap();
            ancestry.push(std::sync::Arc::new(b.clone()));
            real.push(b);
        }
        assert_ne!(orphan.hash(), real[0].hash());
        let dir = tempfile::tempdir().unwrap();
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        World {
            _dir: dir,
            chain: Chain::new(store, state),
            keys,
            real,
            orphan,
        }
    }

    fn tip(chain: &Chain) -> Tip {
        let t = chain.state().tip();
        Tip {
            height: t.height,
            hash: t.hash,
        }
    }

    /// Issue #13, defect 1: `[orphaned notarized block at h, a block with
    /// a Finalize certificate]` used to commit the orphan. Now the answer
    /// is refused whole, the store is untouched, and the alliance's real
    /// finalized chain still commits afterwards.
    #[test]
    fn orphan_before_a_finalization_is_refused_whole() {
        let mut w = world();
        let set = w.chain.state().validator_set();
        let attack = vec![
            bytes(&w.orphan, notarize(&w.orphan, 1, &w.keys[..3])),
            bytes(&w.real[1], certify(CHAIN, &w.real[1], 3, &w.keys[..3])),
        ];
        assert_eq!(
            plan(CHAIN, tip(&w.chain), &set, &attack),
            Err(SyncFault::BrokenLink { height: 2 })
        );
        // What the driver calls: nothing reaches the store.
        assert!(matches!(
            commit(&mut w.chain, CHAIN, 1, &attack),
            Err(SyncCommitError::Fault(SyncFault::BrokenLink { height: 2 }))
        ));
        assert_eq!(w.chain.store().tip().height, 0);
        assert_eq!(w.chain.state().tip().height, 0);

        // The honest answer commits, and so does consensus's own
        // finalization of the same blocks later (no conflict).
        let honest = vec![
            bytes(&w.real[0], notarize(&w.real[0], 2, &w.keys[..3])),
            bytes(&w.real[1], certify(CHAIN, &w.real[1], 3, &w.keys[..3])),
            bytes(&w.real[2], notarize(&w.real[2], 4, &w.keys[..3])),
        ];
        let committed = commit(&mut w.chain, CHAIN, 1, &honest).unwrap();
        assert_eq!(committed.len(), 2, "the notarized-only last block waits");
        assert_eq!(w.chain.store().tip().height, 2);
        assert_eq!(w.chain.store().tip().hash, w.real[1].hash());
        let stored = w.chain.store().block(1).unwrap().unwrap();
        assert_eq!(stored.block.hash(), w.real[0].hash());

        // An answer that arrives after consensus committed part of it
        // (found by the whole-node simulation: the honest peer was
        // penalised): the seen part is skipped, the rest commits.
        let stale = [honest[1].clone(), honest[2].clone()];
        let committed = commit(&mut w.chain, CHAIN, 2, &stale).unwrap();
        assert_eq!(committed.len(), 0, "h2 is seen, a notarization alone waits");
        let fin3 = bytes(&w.real[2], certify(CHAIN, &w.real[2], 5, &w.keys[..3]));
        let late = [honest[1].clone(), fin3];
        let committed = commit(&mut w.chain, CHAIN, 2, &late).unwrap();
        assert_eq!(committed.len(), 1);
        assert_eq!(w.chain.store().tip().height, 3);
        assert!(unseen(&late, 1, 3).is_empty());
    }

    #[test]
    fn an_answer_without_a_finalization_commits_nothing() {
        let w = world();
        let set = w.chain.state().validator_set();
        let answer = vec![bytes(&w.orphan, notarize(&w.orphan, 1, &w.keys[..3]))];
        assert_eq!(plan(CHAIN, tip(&w.chain), &set, &answer), Ok(vec![]));
    }

    #[test]
    fn inconsistent_answers_are_faults() {
        let w = world();
        let set = w.chain.state().validator_set();
        let t = tip(&w.chain);
        let fin = |b: &Block| bytes(b, certify(CHAIN, b, 5, &w.keys[..3]));
        // Garbage.
        assert_eq!(
            plan(CHAIN, t, &set, &[vec![1, 2, 3]]),
            Err(SyncFault::Undecodable { index: 0 })
        );
        // A gap (height 2 first).
        assert_eq!(
            plan(CHAIN, t, &set, &[fin(&w.real[1])]),
            Err(SyncFault::WrongHeight {
                expected: 1,
                got: 2
            })
        );
        // Reordered.
        assert!(matches!(
            plan(
                CHAIN,
                t,
                &set,
                &[fin(&w.real[0]), fin(&w.real[2]), fin(&w.real[1])]
            ),
            Err(SyncFault::WrongHeight { .. })
        ));
        // Below quorum.
        let weak = bytes(&w.real[0], certify(CHAIN, &w.real[0], 5, &w.keys[..2]));
        assert!(matches!(
            plan(CHAIN, t, &set, &[weak]),
            Err(SyncFault::BadCertificate { height: 1, .. })
        ));
        // A certificate of another block.
        let swapped = bytes(&w.real[0], certify(CHAIN, &w.orphan, 5, &w.keys[..3]));
        assert!(matches!(
            plan(CHAIN, t, &set, &[swapped]),
            Err(SyncFault::BadCertificate { height: 1, .. })
        ));
        // Signed for another chain.
        let other = bytes(&w.real[0], certify("other", &w.real[0], 5, &w.keys[..3]));
        assert!(matches!(
            plan(CHAIN, t, &set, &[other]),
            Err(SyncFault::BadCertificate { height: 1, .. })
        ));
        // A header naming another validator set.
        let mut foreign = w.real[0].clone();
        foreign.header.validator_set_hash = Hash32([7; 32]);
        assert_eq!(
            plan(CHAIN, t, &set, &[fin(&foreign)]),
            Err(SyncFault::WrongValidatorSet { height: 1 })
        );
        // The certified header with another body (found by the
        // whole-node simulation: it used to stop the node at commit).
        let mut swapped_body = w.real[0].clone();
        swapped_body.txs.push(alliance_protocol::Transaction::sign(
            CHAIN,
            &w.keys[0],
            0,
            alliance_protocol::TxBody::Transfer {
                to: w.keys[1].public(),
                amount: 1,
                memo: String::new(),
            },
        ));
        assert_eq!(swapped_body.hash(), w.real[0].hash(), "same header");
        assert_eq!(
            plan(CHAIN, t, &set, &[fin(&swapped_body)]),
            Err(SyncFault::BodyMismatch { height: 1 })
        );
        // A truncated answer is fine: its verified prefix commits.
        let path = plan(CHAIN, t, &set, &[fin(&w.real[0])]).unwrap();
        assert_eq!(path.len(), 1);
    }
}
