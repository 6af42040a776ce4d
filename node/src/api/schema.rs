//! OpenAPI schemas of the protocol's JSON forms (`alliance_protocol`
//! types have no OpenAPI derive: the protocol crate stays free of HTTP).
//! These types are never built; they only describe, field for field, what
//! serde reads and writes for `Transaction`, `BlockHeader` and
//! `Certificate` (docs/protocol.md). `tests/tests/openapi.rs` checks real
//! values against the served document, so a drift fails a test.
#![allow(dead_code)]

use utoipa::ToSchema;

/// An alliance address: bech32m of the 32-byte key with the prefix `pa`,
/// lowercase (its one accepted form).
pub const ADDRESS_PATTERN: &str = "^pa1[02-9ac-hj-np-z]{58}$";
/// A SHA-256 hash: 64 lowercase hex characters.
pub const HASH_PATTERN: &str = "^[0-9a-f]{64}$";
/// A merchant id: 1-16 of `a-z 0-9 -`, starting with a letter.
pub const MERCHANT_ID_PATTERN: &str = "^[a-z][a-z0-9-]{0,15}$";
/// An ed25519 signature `R ‖ s`: 128 lowercase hex characters.
pub const SIGNATURE_PATTERN: &str = "^[0-9a-f]{128}$";
/// A history cursor: `HEIGHT:INDEX` from a previous page's `next`.
pub const CURSOR_PATTERN: &str = "^[0-9]{1,20}:[0-9]{1,10}$";

/// A signed transaction (`alliance_protocol::Transaction`), as JSON. The
/// signature covers the canonical encoding of the other fields, so a
/// transaction is built and signed by a wallet (docs/protocol.md §4).
/// Length limits of text fields and amounts are ledger rules: a value over
/// them decodes, and is refused with 422 and the rule's code.
#[derive(ToSchema)]
pub struct Transaction {
    /// The chain id (`GET /v1/status`).
    chain_id: String,
    /// The signer's address.
    #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
    signer: String,
    /// The signer's next nonce (`GET /v1/accounts/{address}`), then one
    /// more per pending transaction.
    nonce: u64,
    /// What the transaction does.
    body: TxBody,
    /// ed25519 signature, hex.
    #[schema(pattern = "^[0-9a-f]{128}$")]
    signature: String,
}

/// A transaction as a block lists it: the transaction and its id.
#[derive(ToSchema)]
pub struct BlockTransaction {
    /// The transaction's fields.
    #[serde(flatten)]
    tx: Transaction,
    /// Transaction id, hex.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    hash: String,
}

/// What a transaction does: an object with exactly one of these keys.
#[derive(ToSchema)]
pub enum TxBody {
    /// A merchant mints its own points to a customer.
    Issue {
        /// Recipient address.
        #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
        to: String,
        /// Points (at least 1).
        amount: u64,
        /// Why, at most 64 bytes.
        reason: String,
        /// The receipt: 1-64 bytes, one issuance per (merchant, receipt)
        /// within the receipt window.
        receipt_ref: String,
        /// When the receipt was issued, ms since the Unix epoch (UTC): at
        /// most `receipt_window_days` before the block time
        /// (`receipt_outside_window`) and at most one day after it
        /// (`receipt_in_future`).
        receipt_time_ms: u64,
    },
    /// Moves points to another address.
    Transfer {
        /// Recipient address.
        #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
        to: String,
        /// Points (at least 1).
        amount: u64,
        /// For the recipient, at most 128 bytes.
        memo: String,
    },
    /// Burns the merchant's own points at the merchant, signed by the
    /// customer alone (other issuers' points need `RedeemOrder`:
    /// `merchant_signature_required`).
    Redeem {
        /// Merchant id.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        merchant: String,
        /// Points (at least the merchant's minimum).
        amount: u64,
        /// The merchant's order reference, 1-64 bytes.
        order_ref: String,
    },
    /// The creditor merchant confirms the debtor paid part of its claim.
    SettlementConfirm {
        /// Merchant id of the debtor.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        debtor: String,
        /// Points settled.
        amount: u64,
    },
    /// An active merchant opens a governance proposal.
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
    /// A merchant announces whose points it accepts, and at what rate,
    /// from a future height (at least `acceptance_notice_blocks` ahead).
    SetAcceptance {
        /// The issuers accepted for orders and for conversion.
        terms: AcceptanceTerms,
        /// First height at which they apply.
        effective_height: u64,
    },
    /// The customer (signer) pays an order the merchant priced and signed:
    /// points worth its value at the merchant's rates are burnt.
    RedeemOrder {
        /// The merchant's request.
        order: OrderRequest,
        /// The merchant's ed25519 signature over the order, hex.
        #[schema(pattern = "^[0-9a-f]{128}$")]
        merchant_signature: String,
    },
    /// The signer converts points of `from` into `points` new points of
    /// `to`, at `to`'s published conversion rate for `from`.
    Convert {
        /// Issuer whose points are given up.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        from: String,
        /// Issuer whose points are received.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        to: String,
        /// Points of `to` received (at least 1).
        points: u64,
    },
}

/// What a merchant accepts.
#[derive(ToSchema)]
pub struct AcceptanceTerms {
    /// Issuers whose points pay for orders, sorted by id, each once;
    /// empty: every issuer at 100 % (the alliance default).
    rates: Vec<AcceptanceRate>,
    /// Issuers whose points customers may convert into this merchant's,
    /// sorted by id, each once; empty: none.
    conversions: Vec<AcceptanceRate>,
}

/// An accepted issuer and its rate.
#[derive(ToSchema)]
pub struct AcceptanceRate {
    /// Issuer's merchant id.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
    issuer: String,
    /// Share of the points' value honoured, 1 to 10000 basis points.
    bps: u16,
}

/// What a merchant's till asks a customer to pay with points.
#[derive(ToSchema)]
pub struct OrderRequest {
    /// Redeeming merchant's id.
    #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
    merchant: String,
    /// The key the merchant signs with (its current key), address form.
    #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
    merchant_key: String,
    /// The paying customer's address (the transaction's signer).
    #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
    customer: String,
    /// The merchant's order reference, 1-64 bytes.
    order_ref: String,
    /// The order's value in minor currency units (at least 1).
    value_minor: u64,
    /// Issuers to spend, in order; empty: every accepted issuer, lots
    /// closest to expiry first.
    issuers: Vec<String>,
    /// Void after this block time, ms since the Unix epoch; at most a day
    /// after the block.
    valid_until_ms: u64,
}

/// A governance action: an object with exactly one of these keys.
#[derive(ToSchema)]
pub enum GovAction {
    /// Admit a merchant.
    AddMerchant {
        /// Merchant id.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        id: String,
        /// Display name.
        name: String,
        /// Its address.
        #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
        key: String,
        /// Its policy.
        policy: MerchantPolicy,
    },
    /// Suspend a merchant.
    SuspendMerchant {
        /// Merchant id.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        id: String,
    },
    /// Replace a merchant's policy.
    UpdatePolicy {
        /// Merchant id.
        #[schema(pattern = "^[a-z][a-z0-9-]{0,15}$")]
        id: String,
        /// The new policy.
        policy: MerchantPolicy,
    },
    /// Replace the alliance parameters.
    UpdateParams {
        /// The new parameters.
        params: AllianceParams,
    },
}

/// A merchant's policy for its own points.
#[derive(ToSchema)]
pub struct MerchantPolicy {
    /// Minor currency units per 100 points.
    point_value_minor: u64,
    /// Days a lot stays valid (0: never expires).
    validity_days: u32,
    /// Points one customer may be issued per UTC day.
    daily_issue_cap: u64,
    /// Points of this issuer held by customers at most.
    outstanding_cap: u64,
    /// Smallest redemption at this merchant.
    min_redemption: u64,
}

/// Alliance-wide parameters.
#[derive(ToSchema)]
pub struct AllianceParams {
    /// ISO 4217 currency code.
    currency: String,
    /// Transactions per block at most.
    block_txs_max: u32,
    /// Encoded bytes per block at most.
    block_bytes_max: u32,
    /// Blocks a proposal stays open at most.
    proposal_blocks_max: u64,
    /// Largest allowed clock drift of a block timestamp, ms.
    timestamp_drift_max_ms: u64,
    /// Days a receipt stays in the receipt window (1 to 3650).
    receipt_window_days: u32,
    /// Blocks of notice before a merchant's acceptance change applies.
    acceptance_notice_blocks: u64,
}

/// A block header (`alliance_protocol::BlockHeader`), as JSON.
#[derive(ToSchema)]
pub struct BlockHeader {
    /// Chain id.
    chain_id: String,
    /// Height (1 = first block).
    height: u64,
    /// Block time, ms since the Unix epoch.
    timestamp_ms: u64,
    /// Hash of the previous block (the genesis hash at height 1).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    prev_hash: String,
    /// Transactions in the block.
    tx_count: u32,
    /// Merkle root of the transaction ids.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    tx_root: String,
    /// State root after the block.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    state_root: String,
    /// The proposer's address.
    #[schema(pattern = "^pa1[02-9ac-hj-np-z]{58}$")]
    proposer: String,
    /// Hash of the validator set of this height.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    validator_set_hash: String,
}

/// Which vote a certificate gathers.
#[derive(ToSchema)]
pub enum VoteKind {
    /// A quorum saw the block first in its view.
    Notarize,
    /// A quorum skipped the view (never certifies a block).
    Nullify,
    /// A quorum finalized the block.
    Finalize,
}

/// A quorum certificate (`alliance_protocol::Certificate`), as JSON. Votes
/// are `[address, signature]` pairs sorted by the signer's key bytes, no
/// signer twice: the only accepted order.
#[derive(ToSchema)]
pub struct Certificate {
    /// Notarize or Finalize.
    kind: VoteKind,
    /// Consensus view.
    view: u64,
    /// Height of the block.
    height: u64,
    /// Hash of the block.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    block_hash: String,
    /// `[signer address, signature hex]`, sorted by signer key.
    #[schema(value_type = Vec<Vec<String>>)]
    votes: Vec<(String, String)>,
}
