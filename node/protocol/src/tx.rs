//! Transactions: a signed envelope around one of nine bodies.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, Keypair, PublicKey, Signature};
use crate::encoding::{self, domain, DecodeError};
use crate::limits::TX_BYTES_MAX;
use crate::merchant::{AllianceParams, MerchantId, MerchantPolicy};
use crate::redemption::{AcceptanceTerms, OrderRequest};

/// A signed transaction. The signature covers the domain-separated hash of
/// the canonical encoding of every other field ([`Transaction::signing_hash`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transaction {
    /// The chain this transaction is for; it never verifies on another.
    pub chain_id: String,
    /// Who signs: a customer or a merchant key.
    pub signer: PublicKey,
    /// Per-signer sequence number, starting at 0 and increasing by exactly one.
    pub nonce: u64,
    /// What to do.
    pub body: TxBody,
    /// ed25519 signature by `signer` over [`Transaction::signing_hash`].
    pub signature: Signature,
}

/// What a transaction does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxBody {
    /// A merchant mints its own points to a customer.
    Issue {
        /// Recipient.
        to: PublicKey,
        /// Points.
        amount: u64,
        /// Why (e.g. `purchase`, `birthday`): short, no personal data.
        reason: String,
        /// The point-of-sale receipt: one issuance per (merchant, receipt)
        /// within the receipt window.
        receipt_ref: String,
        /// When the receipt was issued (the purchase), ms since the Unix
        /// epoch (UTC). It must lie in the receipt window at the block
        /// time: not more than `receipt_window_days` before it, not more
        /// than [`RECEIPT_FUTURE_MS_MAX`](crate::limits::RECEIPT_FUTURE_MS_MAX)
        /// after it (docs/protocol.md §5).
        receipt_time_ms: u64,
    },
    /// Moves points to another key; lots closest to expiry go first and keep
    /// their issuer and expiry.
    Transfer {
        /// Recipient.
        to: PublicKey,
        /// Points.
        amount: u64,
        /// Free text for the recipient.
        memo: String,
    },
    /// Burns points at a merchant in exchange for goods or a discount.
    Redeem {
        /// Where the points are spent.
        merchant: MerchantId,
        /// Points.
        amount: u64,
        /// The merchant's order reference.
        order_ref: String,
    },
    /// The creditor merchant confirms the debtor paid (off-chain) part of
    /// its claim, in the debtor's points.
    SettlementConfirm {
        /// The merchant that paid.
        debtor: MerchantId,
        /// Points of the debtor's claim that are now settled.
        amount: u64,
    },
    /// An active merchant opens a governance proposal (and approves it).
    Propose {
        /// What happens if it passes.
        action: GovAction,
        /// Last height at which votes count.
        deadline_height: u64,
    },
    /// An active merchant votes on an open proposal.
    Vote {
        /// Proposal id.
        proposal: u64,
        /// Approve or reject.
        approve: bool,
    },
    /// A merchant announces the issuers whose points it accepts and at
    /// what rate, from `effective_height` on (at least the alliance's
    /// `acceptance_notice_blocks` ahead: customers get notice of a cut).
    SetAcceptance {
        /// Issuers accepted for orders and for conversion, with their rates
        /// ([`AcceptanceTerms`]). The merchant itself is not listed: its own
        /// points always count at 100 %.
        terms: AcceptanceTerms,
        /// First height at which the terms apply.
        effective_height: u64,
    },
    /// The customer (the signer) pays for an order the merchant priced and
    /// signed at its till: points worth `order.value_minor` at the
    /// merchant's acceptance rates are burnt, and the merchant gains claims
    /// on their issuers (docs/protocol.md §4).
    RedeemOrder {
        /// The merchant's request.
        order: OrderRequest,
        /// The merchant's signature over it ([`OrderRequest::sign`]).
        merchant_signature: Signature,
    },
    /// The signer converts points of issuer `from` into `points` new points
    /// of issuer `to`, at `to`'s published conversion rate for `from`: the
    /// `from` points are burnt, `to` gains a claim on `from` for their
    /// value, and the signer a lot of `to`'s points (docs/protocol.md §4).
    Convert {
        /// The issuer whose points are given up.
        from: MerchantId,
        /// The issuer whose points are received.
        to: MerchantId,
        /// Points of `to` received.
        points: u64,
    },
}

/// What a governance proposal does when more than 2/3 of the active
/// merchants approve it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GovAction {
    /// Admit a new merchant.
    AddMerchant {
        /// Its id.
        id: MerchantId,
        /// Its display name.
        name: String,
        /// Its signing key.
        key: PublicKey,
        /// Its policy.
        policy: MerchantPolicy,
    },
    /// Suspend a merchant.
    SuspendMerchant {
        /// Its id.
        id: MerchantId,
    },
    /// Replace a merchant's policy.
    UpdatePolicy {
        /// Its id.
        id: MerchantId,
        /// The new policy.
        policy: MerchantPolicy,
    },
    /// Replace the alliance parameters.
    UpdateParams {
        /// The new parameters.
        params: AllianceParams,
    },
}

/// The signed part of a transaction, borrowed so signing does not clone.
#[derive(Serialize)]
struct SigningPayload<'a> {
    chain_id: &'a str,
    signer: &'a PublicKey,
    nonce: u64,
    body: &'a TxBody,
}

impl TxBody {
    /// A short name of the body kind, for logs, metrics and APIs.
    pub fn kind(&self) -> &'static str {
        match self {
            TxBody::Issue { .. } => "issue",
            TxBody::Transfer { .. } => "transfer",
            TxBody::Redeem { .. } => "redeem",
            TxBody::SettlementConfirm { .. } => "settlement_confirm",
            TxBody::Propose { .. } => "propose",
            TxBody::Vote { .. } => "vote",
            TxBody::SetAcceptance { .. } => "set_acceptance",
            TxBody::RedeemOrder { .. } => "redeem_order",
            TxBody::Convert { .. } => "convert",
        }
    }
}

impl Transaction {
    /// Builds and signs a transaction.
    pub fn sign(chain_id: &str, key: &Keypair, nonce: u64, body: TxBody) -> Self {
        let signer = key.public();
        let hash = signing_hash(chain_id, &signer, nonce, &body);
        Transaction {
            chain_id: chain_id.to_string(),
            signer,
            nonce,
            signature: key.sign(&hash.0),
            body,
        }
    }

    /// The hash the signature covers.
    pub fn signing_hash(&self) -> Hash32 {
        signing_hash(&self.chain_id, &self.signer, self.nonce, &self.body)
    }

    /// Strict signature check (no chain_id check: see [`Transaction::verify_for_chain`]),
    /// including a body's second signature ([`Transaction::cosignature_ok`]).
    pub fn verify_signature(&self) -> bool {
        self.signer.verify(&self.signing_hash().0, &self.signature) && self.cosignature_ok()
    }

    /// Whether a body signed by a second party carries that party's valid
    /// signature (the merchant's over a [`TxBody::RedeemOrder`]'s order, for
    /// this transaction's chain); `true` for the other bodies. Part of every
    /// signature check of a transaction.
    pub fn cosignature_ok(&self) -> bool {
        match &self.body {
            TxBody::RedeemOrder {
                order,
                merchant_signature,
            } => order.verify(&self.chain_id, merchant_signature),
            _ => true,
        }
    }

    /// Chain id and signature check: what a mempool does before admitting.
    pub fn verify_for_chain(&self, chain_id: &str) -> Result<(), TxCheckError> {
        if self.chain_id != chain_id {
            return Err(TxCheckError::WrongChain {
                expected: chain_id.to_string(),
                got: self.chain_id.clone(),
            });
        }
        if !self.verify_signature() {
            return Err(TxCheckError::BadSignature);
        }
        Ok(())
    }

    /// The transaction id: hash of the full signed encoding.
    pub fn hash(&self) -> Hash32 {
        encoding::hash_value(domain::TX_ID, self)
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a transaction, enforcing [`TX_BYTES_MAX`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, TX_BYTES_MAX)
    }
}

fn signing_hash(chain_id: &str, signer: &PublicKey, nonce: u64, body: &TxBody) -> Hash32 {
    encoding::hash_value(
        domain::TX_SIGN,
        &SigningPayload {
            chain_id,
            signer,
            nonce,
            body,
        },
    )
}

/// Stateless transaction check failures.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TxCheckError {
    /// Signed for another chain.
    #[error("transaction is for chain `{got}`, this is `{expected}`")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's chain.
        got: String,
    },
    /// Signature does not verify under the signer's key.
    #[error("signature does not verify")]
    BadSignature,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transfer() -> Transaction {
        let alice = Keypair::from_label("alice");
        let bob = Keypair::from_label("bob").public();
        Transaction::sign(
            "test",
            &alice,
            0,
            TxBody::Transfer {
                to: bob,
                amount: 5,
                memo: "hi".into(),
            },
        )
    }

    #[test]
    fn signed_transaction_verifies_and_round_trips() {
        let tx = transfer();
        assert!(tx.verify_for_chain("test").is_ok());
        let back = Transaction::from_bytes(&tx.to_bytes()).unwrap();
        assert_eq!(back, tx);
        assert_eq!(back.hash(), tx.hash());
    }

    #[test]
    fn other_chain_never_verifies() {
        let mut tx = transfer();
        assert!(matches!(
            tx.verify_for_chain("other"),
            Err(TxCheckError::WrongChain { .. })
        ));
        // Relabelling the chain breaks the signature too.
        tx.chain_id = "other".into();
        assert_eq!(
            tx.verify_for_chain("other"),
            Err(TxCheckError::BadSignature)
        );
    }

    #[test]
    fn any_field_change_breaks_the_signature() {
        let mut tx = transfer();
        tx.nonce = 1;
        assert!(!tx.verify_signature());
        let mut tx = transfer();
        if let TxBody::Transfer { amount, .. } = &mut tx.body {
            *amount = 6;
        }
        assert!(!tx.verify_signature());
    }
}
