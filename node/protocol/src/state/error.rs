//! Why a transaction or a block was rejected. Each reason is a distinct
//! variant with the numbers a person needs to fix the request; `code()` is
//! the stable machine-readable name the HTTP API and CLI use.

use serde::{Deserialize, Serialize};

use crate::crypto::Hash32;
use crate::merchant::MerchantId;

/// A transaction rejection. A rejected transaction changes nothing, not
/// even the signer's nonce.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum TxError {
    /// The signature does not verify under the signer's key.
    #[error("signature does not verify")]
    BadSignature,
    /// Signed for another chain.
    #[error("transaction is for chain `{got}`, this chain is `{expected}`")]
    WrongChain {
        /// This chain.
        expected: String,
        /// The transaction's chain.
        got: String,
    },
    /// The nonce was already used (a replay or a duplicate).
    #[error("nonce {got} was already used; the next nonce is {expected}")]
    NonceReplayed {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// The nonce skips ahead: an earlier transaction is missing.
    #[error("nonce {got} skips ahead; the next nonce is {expected}")]
    NonceSkipped {
        /// The account's next nonce.
        expected: u64,
        /// The transaction's nonce.
        got: u64,
    },
    /// Amount of zero.
    #[error("amount must be positive")]
    ZeroAmount,
    /// Not enough unexpired points.
    #[error("insufficient balance: {available} points available, {requested} requested")]
    InsufficientBalance {
        /// Spendable points.
        available: u64,
        /// Points asked for.
        requested: u64,
    },
    /// No merchant with this id.
    #[error("unknown merchant `{0}`")]
    UnknownMerchant(MerchantId),
    /// The merchant is suspended.
    #[error("merchant `{0}` is suspended")]
    MerchantSuspended(MerchantId),
    /// Only merchants may sign this kind of transaction.
    #[error("the signer is not a merchant of this alliance")]
    NotAMerchant,
    /// Per-customer daily issuance cap.
    #[error("daily cap of {cap} points per customer exceeded: {already} already issued today, {requested} requested")]
    DailyCapExceeded {
        /// The cap.
        cap: u64,
        /// Issued to this customer today.
        already: u64,
        /// Requested.
        requested: u64,
    },
    /// Merchant's outstanding-points cap.
    #[error("outstanding cap of {cap} points exceeded: {outstanding} outstanding, {requested} requested")]
    OutstandingCapExceeded {
        /// The cap.
        cap: u64,
        /// Currently outstanding.
        outstanding: u64,
        /// Requested.
        requested: u64,
    },
    /// This receipt was already used for an issuance, and that use is
    /// still inside the receipt window.
    #[error("receipt `{receipt_ref}` was already issued at height {height}")]
    DuplicateReceipt {
        /// The receipt.
        receipt_ref: String,
        /// Where it was used.
        height: u64,
    },
    /// The receipt is older than the receipt window (`receipt_window_days`
    /// before the block time, or the window's floor after a vote lengthened
    /// it).
    #[error("receipt time {receipt_time_ms} ms is before the receipt window, which starts at {window_start_ms} ms: a receipt older than the alliance's receipt_window_days earns no points")]
    ReceiptOutsideWindow {
        /// The issuance's receipt time.
        receipt_time_ms: u64,
        /// The earliest receipt time accepted in this block.
        window_start_ms: u64,
    },
    /// The receipt is dated more than
    /// [`RECEIPT_FUTURE_MS_MAX`](crate::limits::RECEIPT_FUTURE_MS_MAX)
    /// after the block time.
    #[error("receipt time {receipt_time_ms} ms is more than one day after the block time: the latest accepted is {latest_ms} ms (check the till's clock)")]
    ReceiptInFuture {
        /// The issuance's receipt time.
        receipt_time_ms: u64,
        /// The latest receipt time accepted in this block.
        latest_ms: u64,
    },
    /// Below the merchant's minimum redemption.
    #[error("merchant's minimum redemption is {minimum} points, {requested} requested")]
    BelowMinimumRedemption {
        /// The minimum.
        minimum: u64,
        /// Requested.
        requested: u64,
    },
    /// Arithmetic would overflow u64.
    #[error("amount would overflow")]
    Overflow,
    /// A text field is empty when it must not be, or too long.
    #[error("field `{field}` must be {min}..={max} bytes")]
    BadFieldLength {
        /// Field name.
        field: String,
        /// Minimum bytes.
        min: usize,
        /// Maximum bytes.
        max: usize,
    },
    /// The recipient holds too many lots.
    #[error("recipient holds the maximum of {0} lots")]
    TooManyLots(usize),
    /// A merchant cannot settle with itself.
    #[error("creditor and debtor are the same merchant")]
    SelfSettlement,
    /// Confirming more than is owed.
    #[error("claim on `{debtor}` is {outstanding} points, {requested} confirmed")]
    SettlementExceedsClaim {
        /// The debtor.
        debtor: MerchantId,
        /// Points outstanding.
        outstanding: u64,
        /// Points confirmed.
        requested: u64,
    },
    /// A governance action is invalid in itself.
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    /// Deadline not in (height, height + proposal_blocks_max].
    #[error("deadline must be in {min}..={max}, got {got}")]
    BadDeadline {
        /// Smallest allowed.
        min: u64,
        /// Largest allowed.
        max: u64,
        /// Given.
        got: u64,
    },
    /// No such proposal.
    #[error("unknown proposal {0}")]
    UnknownProposal(u64),
    /// The proposal is decided or past its deadline.
    #[error("proposal {0} is closed")]
    ProposalClosed(u64),
    /// This merchant already voted.
    #[error("merchant already voted on proposal {0}")]
    AlreadyVoted(u64),
    /// A merchant's own key redeems at the merchant more than its own
    /// points: other issuers' points would give it a claim without a sale.
    #[error("a merchant redeeming at itself spends only its own points: {own_points} held, {requested} requested (other issuers' points cannot create a claim without a sale)")]
    SelfRedemption {
        /// The merchant's own points its key holds.
        own_points: u64,
        /// Points asked for.
        requested: u64,
    },
    /// This merchant already redeemed an order with this reference inside
    /// the receipt window.
    #[error("order `{order_ref}` was already redeemed at this merchant (height {height})")]
    DuplicateOrder {
        /// The order reference.
        order_ref: String,
        /// Height of the redemption that used it.
        height: u64,
    },
    /// A redemption without the merchant's signature may spend only the
    /// merchant's own points: other issuers' would create a claim on them
    /// that the merchant never signed for (use `RedeemOrder`).
    #[error("a redemption without the merchant's signature spends only the merchant's own points: {own_points} held, {requested} requested (other issuers' points need an order signed by the merchant)")]
    MerchantSignatureRequired {
        /// The merchant's own points the account holds.
        own_points: u64,
        /// Points asked for.
        requested: u64,
    },
    /// The order names an issuer whose points the merchant does not accept
    /// under the acceptance policy in force.
    #[error("merchant `{merchant}` does not accept points of `{issuer}` (its acceptance policy in force)")]
    UnacceptedIssuer {
        /// The redeeming merchant.
        merchant: MerchantId,
        /// The issuer named.
        issuer: MerchantId,
    },
    /// The accepted points do not cover the order's value.
    #[error("accepted points are worth {available_minor} minor units at this merchant's rates, the order is {requested_minor}")]
    InsufficientValue {
        /// Value of the accepted points held, rounded down.
        available_minor: u64,
        /// The order's value.
        requested_minor: u64,
    },
    /// The order was signed with a key that is not the merchant's.
    #[error("the order is signed with a key that is not merchant `{0}`'s")]
    WrongMerchantKey(MerchantId),
    /// The order names another customer than the transaction's signer.
    #[error("the order is for another customer than the signer")]
    OrderForAnotherCustomer,
    /// The order's validity ended before this block.
    #[error("the order expired at {valid_until_ms} ms, block time is {block_time_ms} ms")]
    OrderExpired {
        /// End of the order's validity.
        valid_until_ms: u64,
        /// The block's time.
        block_time_ms: u64,
    },
    /// The order claims a validity longer than the protocol allows.
    #[error("the order is valid until {valid_until_ms} ms, later than the latest allowed {latest_ms} ms (one day after the block)")]
    OrderValidityTooLong {
        /// End of the order's validity.
        valid_until_ms: u64,
        /// The latest allowed.
        latest_ms: u64,
    },
    /// An issuer is listed twice (in an order or an acceptance policy).
    #[error("issuer `{0}` is listed twice")]
    DuplicateIssuer(MerchantId),
    /// An acceptance policy is malformed.
    #[error("invalid acceptance policy: {0}")]
    InvalidAcceptance(String),
    /// The merchant does not convert these points into its own.
    #[error("merchant `{to}` does not convert `{from}`'s points into its own (its conversion rates in force)")]
    NotConvertible {
        /// The issuer whose points were offered.
        from: MerchantId,
        /// The merchant asked to convert them.
        to: MerchantId,
    },
    /// A merchant's own key converting other issuers' points into the
    /// merchant's: a claim without a sale.
    #[error("merchant `{0}`'s own key cannot convert other issuers' points into its own (a claim on them without a sale)")]
    SelfConversion(MerchantId),
    /// An acceptance change takes effect sooner than the alliance's notice.
    #[error("the acceptance change takes effect at height {effective_height}; with the alliance's notice the earliest is {earliest}")]
    AcceptanceNoticeTooShort {
        /// The height asked for.
        effective_height: u64,
        /// The earliest allowed.
        earliest: u64,
    },
}

impl TxError {
    /// Stable snake_case code for APIs and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            TxError::BadSignature => "bad_signature",
            TxError::WrongChain { .. } => "wrong_chain",
            TxError::NonceReplayed { .. } => "nonce_replayed",
            TxError::NonceSkipped { .. } => "nonce_skipped",
            TxError::ZeroAmount => "zero_amount",
            TxError::InsufficientBalance { .. } => "insufficient_balance",
            TxError::UnknownMerchant(_) => "unknown_merchant",
            TxError::MerchantSuspended(_) => "merchant_suspended",
            TxError::NotAMerchant => "not_a_merchant",
            TxError::DailyCapExceeded { .. } => "daily_cap_exceeded",
            TxError::OutstandingCapExceeded { .. } => "outstanding_cap_exceeded",
            TxError::DuplicateReceipt { .. } => "duplicate_receipt",
            TxError::ReceiptOutsideWindow { .. } => "receipt_outside_window",
            TxError::ReceiptInFuture { .. } => "receipt_in_future",
            TxError::BelowMinimumRedemption { .. } => "below_minimum_redemption",
            TxError::Overflow => "overflow",
            TxError::BadFieldLength { .. } => "bad_field_length",
            TxError::TooManyLots(_) => "too_many_lots",
            TxError::SelfSettlement => "self_settlement",
            TxError::SettlementExceedsClaim { .. } => "settlement_exceeds_claim",
            TxError::InvalidProposal(_) => "invalid_proposal",
            TxError::BadDeadline { .. } => "bad_deadline",
            TxError::UnknownProposal(_) => "unknown_proposal",
            TxError::ProposalClosed(_) => "proposal_closed",
            TxError::AlreadyVoted(_) => "already_voted",
            TxError::DuplicateOrder { .. } => "duplicate_order",
            TxError::SelfRedemption { .. } => "self_redemption",
            TxError::MerchantSignatureRequired { .. } => "merchant_signature_required",
            TxError::UnacceptedIssuer { .. } => "unaccepted_issuer",
            TxError::InsufficientValue { .. } => "insufficient_value",
            TxError::WrongMerchantKey(_) => "wrong_merchant_key",
            TxError::OrderForAnotherCustomer => "order_for_another_customer",
            TxError::OrderExpired { .. } => "order_expired",
            TxError::OrderValidityTooLong { .. } => "order_validity_too_long",
            TxError::DuplicateIssuer(_) => "duplicate_issuer",
            TxError::InvalidAcceptance(_) => "invalid_acceptance",
            TxError::AcceptanceNoticeTooShort { .. } => "acceptance_notice_too_short",
            TxError::NotConvertible { .. } => "not_convertible",
            TxError::SelfConversion(_) => "self_conversion",
        }
    }
}

/// Result of one transaction in a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum TxOutcome {
    /// Applied.
    Applied,
    /// Rejected; nothing changed.
    Rejected(TxError),
}

/// Why a block is not a valid next block. Any of these means validators do
/// not vote for it and a syncing node refuses it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    /// Header chain id differs.
    #[error("block is for chain `{got}`, expected `{expected}`")]
    WrongChain {
        /// Expected.
        expected: String,
        /// Found.
        got: String,
    },
    /// Not the next height.
    #[error("block height {got}, expected {expected}")]
    WrongHeight {
        /// Expected.
        expected: u64,
        /// Found.
        got: u64,
    },
    /// prev_hash is not the tip.
    #[error("block does not extend the tip: prev_hash {got}, tip {expected}")]
    WrongParent {
        /// The tip.
        expected: Hash32,
        /// Found.
        got: Hash32,
    },
    /// Timestamp does not move forward.
    #[error("block timestamp {got} ms is not after its parent's {parent} ms")]
    TimestampNotIncreasing {
        /// Parent's.
        parent: u64,
        /// Found.
        got: u64,
    },
    /// Too many transactions or bytes.
    #[error("block too large: {0}")]
    TooLarge(String),
    /// tx_root does not match the transactions.
    #[error("tx_root does not match the transactions")]
    TxRootMismatch,
    /// The validator set hash is not this height's.
    #[error("validator_set_hash does not match this height's validator set")]
    ValidatorSetMismatch,
    /// The proposer is not a validator.
    #[error("proposer {0} is not a validator of this height")]
    ProposerNotValidator(String),
    /// Re-execution gives another state root.
    #[error("state_root mismatch: header says {header}, execution gives {computed}")]
    StateRootMismatch {
        /// In the header.
        header: Hash32,
        /// Computed.
        computed: Hash32,
    },
}
