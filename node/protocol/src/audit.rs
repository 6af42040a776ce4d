//! The auditor: re-verifies a chain block by block from its genesis, trusting
//! no node. The [`Auditor`] is pure (no threads, no I/O), so the node and the `alliance audit`
//! CLI share one copy of every rule. The caller feeds blocks in height order
//! with the signature verdicts of their transactions (computed in parallel
//! by the caller; the rule is [`Transaction::verify_signature`], see
//! [`crate::sigverify`]).
//!
//! For block `h`, in this order ([`Auditor::check_block`]):
//! 1. chain id is the genesis chain id, height is `h - 1 + 1`, `prev_hash` is
//!    the hash of block `h - 1` (the genesis hash at `h = 1`);
//! 2. every transaction signature verifies (an honest leader never includes a
//!    badly signed transaction, so one means tampering);
//! 3. the certificate verifies ([`Certificate::verify`]) against the
//!    validator set of height `h`, derived from the replayed state, so
//!    governance changes are followed automatically. A `Notarize`
//!    certificate is accepted only if a later block carries a `Finalize`
//!    certificate (Simplex finalizes ancestors with their descendant);
//! 4. re-execution ([`LedgerState::execute_verified`]): timestamps, size
//!    limits, validator set hash, proposer, tx_count, tx_root, every ledger
//!    rule and the state root; then the state is committed.
//!
//! [`Auditor::finish`] then refuses a chain that ends with notarized-only
//! blocks and returns the [`AuditReport`].
//!
//! [`audit_stream`] drives an [`Auditor`] over a stream of encoded blocks on
//! every core (decoding and signature checks of the next blocks overlap the
//! execution of the current one); `alliance audit` and the audit benchmark
//! use it.

use std::fmt;

use serde::Serialize;

use crate::block::FinalizedBlock;
use crate::certificate::{CertificateError, VoteKind};
use crate::crypto::Hash32;
use crate::genesis::Genesis;
use crate::sigverify::{verify_txs, KeyCache};
use crate::state::{BlockError, LedgerState, TxOutcome};
#[cfg(doc)]
use crate::{certificate::Certificate, tx::Transaction};

/// What is wrong with a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuditFailure {
    /// The block names another chain.
    WrongChain {
        /// The genesis chain id.
        expected: String,
        /// The block's.
        got: String,
    },
    /// The block is not at the next height (a block missing or repeated).
    BadHeight {
        /// The next height.
        expected: u64,
        /// The block's height.
        got: u64,
    },
    /// `prev_hash` is not the previous block's hash.
    BrokenLink {
        /// Hash of the previous block (the genesis hash at height 1).
        expected: Hash32,
        /// The block's `prev_hash`.
        got: Hash32,
    },
    /// Transaction `tx` (index in the block, from 0) is not validly signed.
    BadSignature {
        /// Index in the block.
        tx: usize,
    },
    /// The caller passed a wrong number of signature verdicts (a bug).
    VerdictCount {
        /// Transactions in the block.
        txs: usize,
        /// Verdicts given.
        verdicts: usize,
    },
    /// The certificate does not certify this block under the validator set
    /// of its height.
    Certificate(CertificateError),
    /// The block has only a notarization and no later block is finalized.
    NotarizedNeverFinalized,
    /// Re-execution failed (tx_root, state root, timestamps, validators...).
    Block(BlockError),
}

impl fmt::Display for AuditFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuditFailure::WrongChain { expected, got } => {
                write!(f, "block is for chain `{got}`, the genesis is `{expected}`")
            }
            AuditFailure::BadHeight { expected, got } => {
                write!(f, "bad height: expected block {expected}, found block {got} (a block is missing or out of order)")
            }
            AuditFailure::BrokenLink { expected, got } => write!(
                f,
                "broken link: prev_hash {got} is not the previous block's hash {expected}"
            ),
            AuditFailure::BadSignature { tx } => {
                write!(f, "transaction {tx}: bad signature")
            }
            AuditFailure::VerdictCount { txs, verdicts } => write!(
                f,
                "{verdicts} signature verdicts for {txs} transactions (auditor bug)"
            ),
            AuditFailure::Certificate(e) => write!(f, "invalid certificate: {e}"),
            AuditFailure::NotarizedNeverFinalized => write!(
                f,
                "block has only a notarization certificate and no later block is finalized"
            ),
            AuditFailure::Block(e) => write!(f, "re-execution failed: {e}"),
        }
    }
}

/// The first failure of an audit: which block, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("block {height}: {reason}")]
pub struct AuditError {
    /// Height of the failing block (the position it was expected at).
    pub height: u64,
    /// What is wrong.
    pub reason: AuditFailure,
}

impl AuditError {
    /// The index of the transaction at fault, if the failure is about one.
    pub fn tx(&self) -> Option<usize> {
        match self.reason {
            AuditFailure::BadSignature { tx } => Some(tx),
            _ => None,
        }
    }

    /// A stable snake_case code for the failure.
    pub fn code(&self) -> &'static str {
        match &self.reason {
            AuditFailure::WrongChain { .. } => "wrong_chain",
            AuditFailure::BadHeight { .. } => "bad_height",
            AuditFailure::BrokenLink { .. } => "broken_link",
            AuditFailure::BadSignature { .. } => "bad_signature",
            AuditFailure::VerdictCount { .. } => "verdict_count",
            AuditFailure::Certificate(CertificateError::NotAValidator(_)) => "cert_not_a_validator",
            AuditFailure::Certificate(CertificateError::TooFewSigners { .. }) => {
                "cert_too_few_signers"
            }
            AuditFailure::Certificate(_) => "bad_certificate",
            AuditFailure::NotarizedNeverFinalized => "notarized_never_finalized",
            AuditFailure::Block(BlockError::TxRootMismatch) => "tx_root_mismatch",
            AuditFailure::Block(BlockError::StateRootMismatch { .. }) => "state_root_mismatch",
            AuditFailure::Block(_) => "invalid_block",
        }
    }
}

/// One merchant's figures at the end of the audited chain.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MerchantReport {
    /// Merchant id.
    pub id: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Points ever issued.
    pub issued: u64,
    /// Points of this issuer redeemed anywhere.
    pub redeemed: u64,
    /// Points of this issuer that expired.
    pub expired: u64,
    /// Still held by customers.
    pub outstanding: u64,
    /// redeemed / issued (0 when nothing was issued).
    pub circulation_rate: f64,
}

/// One entry of the claims matrix: what `debtor` owes `creditor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClaimReport {
    /// The merchant where the points were redeemed.
    pub creditor: String,
    /// The issuer of the redeemed points.
    pub debtor: String,
    /// Points redeemed.
    pub redeemed_points: u64,
    /// Their value, hundredths of a minor unit.
    pub redeemed_value_centiminor: u64,
    /// Points confirmed as settled.
    pub confirmed_points: u64,
    /// Points still owed.
    pub outstanding_points: u64,
    /// Value still owed, hundredths of a minor unit.
    pub outstanding_value_centiminor: u64,
}

/// What the audited chain says, recomputed from scratch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditReport {
    /// Chain id.
    pub chain_id: String,
    /// Hash of the genesis the audit started from.
    pub genesis_hash: String,
    /// Blocks verified.
    pub blocks: u64,
    /// Transactions in those blocks.
    pub transactions: u64,
    /// Of which applied.
    pub applied: u64,
    /// Of which rejected by the ledger rules (no effect).
    pub rejected: u64,
    /// Per merchant totals, by id.
    pub merchants: Vec<MerchantReport>,
    /// Claims between merchants, by (creditor, debtor).
    pub claims: Vec<ClaimReport>,
    /// State root after the last block.
    pub state_root: String,
    /// Hash of the last block (the genesis hash for an empty chain).
    pub tip_hash: String,
    /// Time of the last block, ms since the Unix epoch (the genesis time
    /// for an empty chain): how old the audited state is.
    pub tip_timestamp_ms: u64,
}

/// What the reader of an audit requires of the audited chain's tip, so that
/// a genuine but truncated chain (a clean prefix of the history) is not
/// taken for the whole: the same bounds as a balance proof's
/// ([`crate::light::Freshness`]), an expected tip hash, and a node's
/// finalized chain to compare with. See [`TipRequirements::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TipRequirements {
    /// The reader's clock, ms since the Unix epoch.
    pub now_ms: u64,
    /// Oldest acceptable tip (now minus the tip's time), if bounded.
    pub max_age_ms: Option<u64>,
    /// Lowest acceptable tip height.
    pub min_height: u64,
    /// The tip hash the reader expects, if any (e.g. from a node or a
    /// receipt it trusts).
    pub tip_hash: Option<Hash32>,
    /// A node's finalized chain, compared with the audited one.
    pub node: Option<NodeTip>,
}

/// A node's finalized tip, and both chains' hashes at the lower of the two
/// tips (where they must agree).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeTip {
    /// The node's finalized height.
    pub height: u64,
    /// `min(node height, audited height)`.
    pub common_height: u64,
    /// The node's block hash at `common_height`.
    pub node_hash: Hash32,
    /// The audited chain's block hash at `common_height`.
    pub audited_hash: Hash32,
}

/// Why an audited tip does not meet the reader's [`TipRequirements`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TipFault {
    /// The tip is older than allowed.
    #[error("stale: the audited chain ends at height {height}, {} s old, more than the allowed {} s (blocks may be missing at the end)", age_ms / 1000, max_age_ms / 1000)]
    Stale {
        /// Tip height.
        height: u64,
        /// Its age, ms.
        age_ms: u64,
        /// The bound, ms.
        max_age_ms: u64,
    },
    /// The tip is below the required height.
    #[error("the audited chain ends at height {height}, below the required height {min_height} (blocks are missing at the end)")]
    BelowMinHeight {
        /// Tip height.
        height: u64,
        /// The required height.
        min_height: u64,
    },
    /// The tip is not the expected block.
    #[error("the audited chain ends at block {tip} (height {height}), not at the expected tip {expected}")]
    TipMismatch {
        /// Tip height.
        height: u64,
        /// Tip hash.
        tip: Hash32,
        /// The expected hash.
        expected: Hash32,
    },
    /// The node has finalized blocks after the audited tip.
    #[error("the audited chain ends at height {height}, but the node has finalized up to height {node_height}: the last {} block(s) are missing", node_height - height)]
    BehindNode {
        /// Tip height.
        height: u64,
        /// The node's finalized height.
        node_height: u64,
    },
    /// The node finalized another block at a height both chains have.
    #[error("the node's block at height {height} is {node_hash}, the audited chain's is {audited_hash}: not the node's chain")]
    NotTheNodesChain {
        /// The height compared.
        height: u64,
        /// The node's hash there.
        node_hash: Hash32,
        /// The audited chain's.
        audited_hash: Hash32,
    },
}

impl TipFault {
    /// A stable snake_case code.
    pub fn code(&self) -> &'static str {
        match self {
            TipFault::Stale { .. } => "stale",
            TipFault::BelowMinHeight { .. } => "below_min_height",
            TipFault::TipMismatch { .. } => "tip_mismatch",
            TipFault::BehindNode { .. } => "behind_node",
            TipFault::NotTheNodesChain { .. } => "not_the_nodes_chain",
        }
    }
}

impl TipRequirements {
    /// Checks an audited tip (height, hash, time). The node comparison
    /// first (a different chain matters more than an old one), then the
    /// expected hash, the height and the age.
    pub fn check(&self, height: u64, tip: Hash32, timestamp_ms: u64) -> Result<(), TipFault> {
        if let Some(n) = &self.node {
            if n.node_hash != n.audited_hash {
                return Err(TipFault::NotTheNodesChain {
                    height: n.common_height,
                    node_hash: n.node_hash,
                    audited_hash: n.audited_hash,
                });
            }
            if n.height > height {
                return Err(TipFault::BehindNode {
                    height,
                    node_height: n.height,
                });
            }
        }
        if let Some(expected) = self.tip_hash {
            if expected != tip {
                return Err(TipFault::TipMismatch {
                    height,
                    tip,
                    expected,
                });
            }
        }
        if height < self.min_height {
            return Err(TipFault::BelowMinHeight {
                height,
                min_height: self.min_height,
            });
        }
        let age_ms = self.now_ms.saturating_sub(timestamp_ms);
        match self.max_age_ms {
            Some(max_age_ms) if age_ms > max_age_ms => Err(TipFault::Stale {
                height,
                age_ms,
                max_age_ms,
            }),
            _ => Ok(()),
        }
    }
}

/// Verifies a chain block by block. See the module documentation.
pub struct Auditor {
    genesis_hash: Hash32,
    state: LedgerState,
    /// Heights certified only by a notarization, awaiting a later finalization.
    notarized_only: Vec<u64>,
    transactions: u64,
    applied: u64,
    rejected: u64,
}

impl Auditor {
    /// An auditor at height 0 of `genesis` (which must be valid:
    /// [`Genesis::validate`], as [`Genesis::from_json`] does).
    pub fn new(genesis: &Genesis) -> Self {
        Auditor {
            genesis_hash: genesis.hash(),
            state: LedgerState::from_genesis(genesis),
            notarized_only: Vec::new(),
            transactions: 0,
            applied: 0,
            rejected: 0,
        }
    }

    /// The replayed state so far.
    pub fn state(&self) -> &LedgerState {
        &self.state
    }

    /// The height the next block must have.
    pub fn next_height(&self) -> u64 {
        self.state.tip().height + 1
    }

    /// Verifies `fb` as the next block and applies it. `signatures_ok[i]` is
    /// [`Transaction::verify_signature`] of transaction `i`. On error the
    /// auditor is unchanged, and the chain must be considered invalid.
    pub fn check_block(
        &mut self,
        fb: &FinalizedBlock,
        signatures_ok: &[bool],
    ) -> Result<(), AuditError> {
        let tip = self.state.tip();
        let height = tip.height + 1;
        let fail = |reason| AuditError { height, reason };
        let h = &fb.block.header;
        if h.chain_id != self.state.chain_id() {
            return Err(fail(AuditFailure::WrongChain {
                expected: self.state.chain_id().to_string(),
                got: h.chain_id.clone(),
            }));
        }
        if h.height != height {
            return Err(fail(AuditFailure::BadHeight {
                expected: height,
                got: h.height,
            }));
        }
        if h.prev_hash != tip.hash {
            return Err(fail(AuditFailure::BrokenLink {
                expected: tip.hash,
                got: h.prev_hash,
            }));
        }
        if signatures_ok.len() != fb.block.txs.len() {
            return Err(fail(AuditFailure::VerdictCount {
                txs: fb.block.txs.len(),
                verdicts: signatures_ok.len(),
            }));
        }
        if let Some(tx) = signatures_ok.iter().position(|ok| !ok) {
            return Err(fail(AuditFailure::BadSignature { tx }));
        }
        let validators = self.state.validator_set();
        fb.certificate
            .verify(self.state.chain_id(), &validators, height, &fb.block.hash())
            .map_err(|e| fail(AuditFailure::Certificate(e)))?;
        let exec = self
            .state
            .execute_verified(&fb.block, signatures_ok)
            .map_err(|e| fail(AuditFailure::Block(e)))?;
        for o in &exec.outcomes {
            match o {
                TxOutcome::Applied => self.applied += 1,
                TxOutcome::Rejected(_) => self.rejected += 1,
            }
        }
        self.transactions += exec.outcomes.len() as u64;
        self.state.commit(exec);
        match fb.certificate.kind {
            // A finalized block finalizes every ancestor it links to.
            VoteKind::Finalize => self.notarized_only.clear(),
            _ => self.notarized_only.push(height),
        }
        Ok(())
    }

    /// Ends the audit: fails if the chain ends with blocks that are only
    /// notarized, otherwise returns the report.
    pub fn finish(&self) -> Result<AuditReport, AuditError> {
        if let Some(&height) = self.notarized_only.first() {
            return Err(AuditError {
                height,
                reason: AuditFailure::NotarizedNeverFinalized,
            });
        }
        Ok(self.report())
    }

    /// The figures of the chain verified so far (also useful after a
    /// failure: they describe the valid prefix).
    pub fn report(&self) -> AuditReport {
        let merchants = self
            .state
            .merchants()
            .into_iter()
            .map(|m| MerchantReport {
                id: m.id.to_string(),
                status: format!("{:?}", m.status).to_lowercase(),
                issued: m.stats.issued,
                redeemed: m.stats.redeemed,
                expired: m.stats.expired,
                outstanding: m.stats.outstanding(),
                circulation_rate: if m.stats.issued == 0 {
                    0.0
                } else {
                    m.stats.redeemed as f64 / m.stats.issued as f64
                },
            })
            .collect();
        let claims = self
            .state
            .claims()
            .into_iter()
            .map(|(c, d, claim)| ClaimReport {
                creditor: c.to_string(),
                debtor: d.to_string(),
                redeemed_points: claim.redeemed_points,
                redeemed_value_centiminor: claim.redeemed_value_centiminor,
                confirmed_points: claim.confirmed_points,
                outstanding_points: claim.outstanding_points(),
                outstanding_value_centiminor: claim.outstanding_value_centiminor(),
            })
            .collect();
        let tip = self.state.tip();
        AuditReport {
            chain_id: self.state.chain_id().to_string(),
            genesis_hash: self.genesis_hash.to_hex(),
            blocks: tip.height,
            transactions: self.transactions,
            applied: self.applied,
            rejected: self.rejected,
            merchants,
            claims,
            state_root: self.state.state_root().to_hex(),
            tip_hash: tip.hash.to_hex(),
            tip_timestamp_ms: tip.timestamp_ms,
        }
    }
}

/// The first failure of a streamed audit ([`audit_stream`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StreamFailure {
    /// Height of the failing block.
    pub height: u64,
    /// Index of the transaction at fault, if any.
    pub tx: Option<usize>,
    /// Stable code ([`AuditError::code`], or `undecodable_block`).
    pub code: String,
    /// Why, for people.
    pub reason: String,
}

impl From<AuditError> for StreamFailure {
    fn from(e: AuditError) -> Self {
        StreamFailure {
            height: e.height,
            tx: e.tx(),
            code: e.code().into(),
            reason: e.reason.to_string(),
        }
    }
}

/// Decoded signer keys an audit keeps at most (about 200 bytes each).
pub const KEY_CACHE_MAX: usize = 65_536;

/// Audits blocks `1..=count` given as canonical [`FinalizedBlock`] bytes by
/// `next(i)` (`i = 0` is height 1), with the same [`Auditor`] rules, using
/// every core: a producer thread fetches, decodes and checks the signatures
/// of the next blocks on every core (the verdicts of
/// [`Transaction::verify_signature`], by batch verification with decoded
/// keys of frequent signers kept in a [`KeyCache`]) while this thread executes the current one. `progress` is called after each verified block. Returns the
/// report (of the verified prefix on failure) and the first failure; an
/// error of `next` (I/O, not a chain fault) stops the audit.
pub fn audit_stream<E: Send>(
    genesis: &Genesis,
    count: u64,
    next: impl FnMut(u64) -> Result<Vec<u8>, E> + Send,
    mut progress: impl FnMut(),
) -> Result<(AuditReport, Option<StreamFailure>), E> {
    type Item<E> = Result<(u64, Result<(FinalizedBlock, Vec<bool>), String>), E>;
    let mut auditor = Auditor::new(genesis);
    let mut next = next;
    std::thread::scope(|scope| {
        // A small queue: enough to keep both stages busy, bounded memory.
        let (tx, rx) = std::sync::mpsc::sync_channel::<Item<E>>(2);
        scope.spawn(move || {
            let mut keys = KeyCache::new(KEY_CACHE_MAX);
            for i in 0..count {
                let item = next(i).map(|bytes| {
                    let decoded = FinalizedBlock::from_bytes(&bytes)
                        .map(|fb| {
                            let verdicts = verify_txs(&fb.block.txs, &mut keys);
                            (fb, verdicts)
                        })
                        .map_err(|e| e.to_string());
                    (i + 1, decoded)
                });
                let stop = item.is_err();
                if tx.send(item).is_err() || stop {
                    return;
                }
            }
        });
        for item in rx {
            let (height, decoded) = item?;
            let failure = match decoded {
                Err(e) => Some(StreamFailure {
                    height,
                    tx: None,
                    code: "undecodable_block".into(),
                    reason: format!("block does not decode: {e}"),
                }),
                Ok((fb, verdicts)) => auditor.check_block(&fb, &verdicts).err().map(Into::into),
            };
            if let Some(f) = failure {
                // Dropping the receiver stops the producer.
                return Ok((auditor.report(), Some(f)));
            }
            progress();
        }
        Ok(match auditor.finish() {
            Ok(r) => (r, None),
            Err(e) => (auditor.report(), Some(e.into())),
        })
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::certificate::Certificate;
    use crate::crypto::Keypair;
    use crate::fixtures::{certify, demo_customer_key, demo_genesis, demo_merchant_id};
    use crate::state::verify_signatures;
    use crate::tx::{Transaction, TxBody};

    const CHAIN: &str = "audit-test";

    fn merchants() -> (Genesis, Vec<Keypair>) {
        demo_genesis(CHAIN, 4, 1_700_000_000_000)
    }

    /// Transactions for the block after `state`: an issue, a transfer and a
    /// redemption at another merchant (so claims appear).
    fn txs(state: &LedgerState, keys: &[Keypair]) -> Vec<Transaction> {
        let h = state.tip().height + 1;
        let (a, b) = (demo_customer_key(CHAIN, "a"), demo_customer_key(CHAIN, "b"));
        let nonce = |k: &Keypair| state.account(&k.public()).nonce;
        let issuer = &keys[(h as usize) % keys.len()];
        vec![
            Transaction::sign(
                CHAIN,
                issuer,
                nonce(issuer),
                TxBody::Issue {
                    to: a.public(),
                    amount: 100 + h,
                    reason: "purchase".into(),
                    receipt_ref: format!("r{h}"),
                    receipt_time_ms: state.tip().timestamp_ms,
                },
            ),
            Transaction::sign(
                CHAIN,
                &a,
                nonce(&a),
                TxBody::Transfer {
                    to: b.public(),
                    amount: 10,
                    memo: String::new(),
                },
            ),
            {
                // Five points of face value at merchant 0's till.
                let order = crate::redemption::OrderRequest {
                    merchant: demo_merchant_id(0),
                    merchant_key: keys[0].public(),
                    customer: b.public(),
                    order_ref: format!("o{h}"),
                    value_minor: 5,
                    issuers: vec![],
                    valid_until_ms: state.tip().timestamp_ms + 60_000,
                };
                Transaction::sign(
                    CHAIN,
                    &b,
                    nonce(&b),
                    TxBody::RedeemOrder {
                        merchant_signature: order.sign(CHAIN, &keys[0]),
                        order,
                    },
                )
            },
        ]
    }

    /// A certified chain of `n` blocks on a 4-merchant demo genesis.
    pub(crate) fn tiny_chain(n: u64) -> (Genesis, Vec<FinalizedBlock>) {
        let (genesis, keys) = merchants();
        let mut state = LedgerState::from_genesis(&genesis);
        let mut blocks = Vec::new();
        for h in 1..=n {
            let (block, exec) = state.build_block(
                txs(&state, &keys),
                genesis.genesis_time_ms + h * 1000,
                keys[0].public(),
            );
            let certificate = certify(CHAIN, &block, h, &keys);
            state.commit(exec);
            blocks.push(FinalizedBlock { block, certificate });
        }
        (genesis, blocks)
    }

    /// A clean prefix of a chain verifies; only the reader's requirements
    /// of its tip tell it from the whole chain.
    #[test]
    fn tip_requirements_tell_a_truncated_chain_from_the_whole() {
        let (genesis, blocks) = tiny_chain(5);
        let whole = audit(&genesis, &blocks).unwrap();
        let prefix = audit(&genesis, &blocks[..3]).unwrap();
        let tip = |r: &AuditReport| {
            (
                r.blocks,
                Hash32::from_hex(&r.tip_hash).unwrap(),
                r.tip_timestamp_ms,
            )
        };
        let (wh, wt, wts) = tip(&whole);
        let (ph, pt, pts) = tip(&prefix);
        assert_eq!(wts, blocks[4].block.header.timestamp_ms);
        let hash_at = |h: u64| blocks[h as usize - 1].block.hash();
        let req = TipRequirements {
            now_ms: wts + 1_000,
            max_age_ms: Some(1_500),
            min_height: 5,
            tip_hash: Some(hash_at(5)),
            node: Some(NodeTip {
                height: 5,
                common_height: 5,
                node_hash: hash_at(5),
                audited_hash: hash_at(5),
            }),
        };
        assert_eq!(req.check(wh, wt, wts), Ok(()));
        // The prefix (height 3) against each requirement alone: the fault,
        // in full.
        let behind = NodeTip {
            height: 5,
            common_height: 3,
            node_hash: hash_at(3),
            audited_hash: pt,
        };
        let other = Hash32([9; 32]);
        let only = TipRequirements::default;
        let cases = [
            (
                TipRequirements {
                    node: Some(behind),
                    ..only()
                },
                TipFault::BehindNode {
                    height: 3,
                    node_height: 5,
                },
            ),
            (
                TipRequirements {
                    node: Some(NodeTip {
                        audited_hash: other,
                        ..behind
                    }),
                    ..only()
                },
                TipFault::NotTheNodesChain {
                    height: 3,
                    node_hash: hash_at(3),
                    audited_hash: other,
                },
            ),
            (
                TipRequirements {
                    tip_hash: Some(wt),
                    ..only()
                },
                TipFault::TipMismatch {
                    height: 3,
                    tip: pt,
                    expected: wt,
                },
            ),
            (
                TipRequirements {
                    min_height: 4,
                    ..only()
                },
                TipFault::BelowMinHeight {
                    height: 3,
                    min_height: 4,
                },
            ),
            (
                TipRequirements {
                    now_ms: pts + 10_000,
                    max_age_ms: Some(5_000),
                    ..only()
                },
                TipFault::Stale {
                    height: 3,
                    age_ms: 10_000,
                    max_age_ms: 5_000,
                },
            ),
        ];
        for (req, fault) in cases {
            assert_eq!(req.check(ph, pt, pts), Err(fault.clone()), "{fault}");
        }
        // No requirement: any verified tip stands.
        assert_eq!(TipRequirements::default().check(ph, pt, pts), Ok(()));
    }

    /// [`audit_stream`] over encoded blocks in memory.
    fn audit_bytes(genesis: &Genesis, bytes: &[Vec<u8>]) -> (AuditReport, Option<StreamFailure>) {
        let next = |i: u64| Ok::<_, ()>(bytes[i as usize].clone());
        audit_stream(genesis, bytes.len() as u64, next, || {}).unwrap()
    }

    fn audit(genesis: &Genesis, blocks: &[FinalizedBlock]) -> Result<AuditReport, AuditError> {
        let mut a = Auditor::new(genesis);
        for fb in blocks {
            a.check_block(fb, &verify_signatures(&fb.block.txs))?;
        }
        a.finish()
    }

    fn recertify(fb: &mut FinalizedBlock, kind: VoteKind, signers: &[Keypair]) {
        let mut c = certify(CHAIN, &fb.block, fb.block.header.height, signers);
        if kind != VoteKind::Finalize {
            let data = crate::certificate::VoteData {
                kind,
                ..c.vote_data()
            };
            let msg = data.signing_hash(&crate::certificate::VoteDomain {
                chain_id: CHAIN.to_string(),
                validator_set_hash: fb.block.header.validator_set_hash,
            });
            c = Certificate::from_votes(
                kind,
                c.view,
                c.height,
                c.block_hash,
                signers.iter().map(|k| (k.public(), k.sign(&msg.0))),
            );
        }
        fb.certificate = c;
    }

    #[test]
    fn clean_chain_verifies_with_figures() {
        let (genesis, blocks) = tiny_chain(4);
        let r = audit(&genesis, &blocks).unwrap();
        assert_eq!(r.blocks, 4);
        assert_eq!(r.transactions, 12);
        assert_eq!(r.applied, 12);
        assert_eq!(r.tip_hash, blocks[3].block.hash().to_hex());
        assert_eq!(r.state_root, blocks[3].block.header.state_root.to_hex());
        let issued: u64 = r.merchants.iter().map(|m| m.issued).sum();
        assert_eq!(issued, 101 + 102 + 103 + 104);
        let redeemed: u64 = r.merchants.iter().map(|m| m.redeemed).sum();
        assert_eq!(redeemed, 20);
        assert!(r.claims.iter().all(|c| c.creditor == "coffee"));
        assert!(!r.claims.is_empty());
    }

    #[test]
    fn missing_block_is_a_bad_height() {
        let (genesis, mut blocks) = tiny_chain(3);
        blocks.remove(1);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert_eq!(
            e.reason,
            AuditFailure::BadHeight {
                expected: 2,
                got: 3
            }
        );
    }

    #[test]
    fn wrong_parent_is_a_broken_link() {
        let (genesis, mut blocks) = tiny_chain(2);
        blocks[1].block.header.prev_hash = Hash32([7; 32]);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert!(matches!(e.reason, AuditFailure::BrokenLink { .. }), "{e}");
    }

    #[test]
    fn altered_amount_is_a_bad_signature_at_that_tx() {
        let (genesis, mut blocks) = tiny_chain(3);
        if let TxBody::Transfer { amount, .. } = &mut blocks[2].block.txs[1].body {
            *amount += 1;
        }
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!((e.height, e.tx()), (3, Some(1)), "{e}");
        assert_eq!(e.code(), "bad_signature");
    }

    #[test]
    fn swapped_transactions_fail_tx_root() {
        let (genesis, mut blocks) = tiny_chain(2);
        blocks[1].block.txs.swap(0, 1);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert_eq!(e.reason, AuditFailure::Block(BlockError::TxRootMismatch));
    }

    #[test]
    fn certificates_need_a_quorum_of_members() {
        let (genesis, keys) = merchants();
        let (_, mut blocks) = tiny_chain(2);
        recertify(&mut blocks[1], VoteKind::Finalize, &keys[..2]);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert_eq!(
            e.reason,
            AuditFailure::Certificate(CertificateError::TooFewSigners { got: 2, need: 3 })
        );
        let outsider = Keypair::from_label("outsider");
        let mut signers = keys[..2].to_vec();
        signers.push(outsider.clone());
        recertify(&mut blocks[1], VoteKind::Finalize, &signers);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(
            e.reason,
            AuditFailure::Certificate(CertificateError::NotAValidator(outsider.public()))
        );
        assert_eq!(e.code(), "cert_not_a_validator");
    }

    #[test]
    fn notarized_blocks_need_a_finalized_descendant() {
        let (genesis, keys) = merchants();
        let (_, mut blocks) = tiny_chain(3);
        recertify(&mut blocks[1], VoteKind::Notarize, &keys);
        audit(&genesis, &blocks).unwrap();
        recertify(&mut blocks[2], VoteKind::Notarize, &keys);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert_eq!(e.reason, AuditFailure::NotarizedNeverFinalized);
        recertify(&mut blocks[2], VoteKind::Nullify, &keys);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 3);
        assert_eq!(
            e.reason,
            AuditFailure::Certificate(CertificateError::WrongKind)
        );
    }

    #[test]
    fn altered_state_root_is_caught_by_re_execution() {
        let (genesis, keys) = merchants();
        let (_, mut blocks) = tiny_chain(2);
        blocks[1].block.header.state_root = Hash32([1; 32]);
        recertify(&mut blocks[1], VoteKind::Finalize, &keys);
        let e = audit(&genesis, &blocks).unwrap_err();
        assert_eq!(e.height, 2);
        assert_eq!(e.code(), "state_root_mismatch");
    }

    #[test]
    fn the_stream_gives_the_same_verdicts_as_block_by_block() {
        let (genesis, blocks) = tiny_chain(5);
        let bytes: Vec<Vec<u8>> = blocks.iter().map(FinalizedBlock::to_bytes).collect();
        let mut ticks = 0;
        let (report, failure) = audit_stream(
            &genesis,
            5,
            |i| Ok::<_, ()>(bytes[i as usize].clone()),
            || ticks += 1,
        )
        .unwrap();
        assert_eq!((failure, ticks), (None, 5));
        assert_eq!(report, audit(&genesis, &blocks).unwrap());
        // A bad signature in block 4, then garbage at block 5: the first wins.
        let mut bad = blocks.clone();
        bad[3].block.txs[2].signature.0[0] ^= 1;
        let mut bytes: Vec<Vec<u8>> = bad.iter().map(FinalizedBlock::to_bytes).collect();
        bytes[4] = vec![1, 2, 3];
        let (report, failure) = audit_bytes(&genesis, &bytes);
        let f = failure.unwrap();
        assert_eq!(
            (f.height, f.tx, f.code.as_str()),
            (4, Some(2), "bad_signature")
        );
        assert_eq!(report.blocks, 3);
        let (_, failure) = audit_stream(
            &genesis,
            5,
            |i| {
                Ok::<_, ()>(if i == 1 {
                    vec![0]
                } else {
                    bytes[i as usize].clone()
                })
            },
            || {},
        )
        .unwrap();
        assert_eq!(failure.unwrap().code, "undecodable_block");
        // An I/O error stops the audit and is returned as is.
        let e = audit_stream(
            &genesis,
            5,
            |i| {
                if i == 2 {
                    Err("io")
                } else {
                    Ok(bytes[i as usize].clone())
                }
            },
            || {},
        );
        assert_eq!(e.unwrap_err(), "io");
    }

    /// The same finalized block with its certificate's votes reordered is
    /// another byte string for one value: the audit refuses it at that
    /// height, and a certificate built in memory that way fails too.
    #[test]
    fn a_certificate_out_of_canonical_order_fails_the_audit() {
        let (genesis, blocks) = tiny_chain(4);
        let mut bad = blocks.clone();
        bad[2].certificate.votes.swap(0, 1);
        let bytes: Vec<Vec<u8>> = bad.iter().map(FinalizedBlock::to_bytes).collect();
        let (report, failure) = audit_bytes(&genesis, &bytes);
        let f = failure.unwrap();
        assert_eq!((f.height, f.code.as_str()), (3, "undecodable_block"));
        assert!(f.reason.contains("not in canonical order"), "{}", f.reason);
        assert_eq!(report.blocks, 2);
        let e = audit(&genesis, &bad).unwrap_err();
        assert_eq!(e.height, 3);
        assert!(matches!(
            e.reason,
            AuditFailure::Certificate(CertificateError::UnsortedVotes { .. })
        ));
    }

    #[test]
    fn wrong_verdict_count_is_an_error_not_a_panic() {
        let (genesis, blocks) = tiny_chain(1);
        let mut a = Auditor::new(&genesis);
        let e = a.check_block(&blocks[0], &[true]).unwrap_err();
        assert!(matches!(e.reason, AuditFailure::VerdictCount { .. }));
    }
}
