//! Response bodies of the HTTP API. Typed so the OpenAPI document
//! describes them exactly; protocol values appear in their text forms
//! (addresses `pa1…`, hashes hex).

use std::collections::BTreeMap;

use serde::Serialize;
use utoipa::ToSchema;

/// `{"error": {"code", "message"}}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// The error.
    pub error: ErrorDetail,
}

/// A stable machine code and a message for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `insufficient_balance`.
    pub code: String,
    /// What went wrong and what to fix.
    pub message: String,
}

/// A validator.
#[derive(Debug, Serialize, ToSchema)]
pub struct ValidatorDto {
    /// Merchant id.
    pub id: String,
    /// Merchant address.
    pub key: String,
}

/// A connected peer.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeerDto {
    /// libp2p peer id.
    pub peer_id: String,
    /// Alliance address of the peer's key, when it is an ed25519 peer id.
    pub key: Option<String>,
    /// Whether the peer is a member (validator).
    pub member: bool,
}

/// `GET /v1/status`.
#[derive(Debug, Serialize, ToSchema)]
pub struct StatusResponse {
    /// Chain id (transactions must name it).
    pub chain_id: String,
    /// Hash of the genesis this node runs (compare with your own copy).
    pub genesis_hash: String,
    /// Last finalized height.
    pub height: u64,
    /// Its hash.
    pub tip_hash: String,
    /// Ledger state root after it.
    pub state_root: String,
    /// Its block time (ms since the Unix epoch).
    pub timestamp_ms: u64,
    /// Consensus view.
    pub view: u64,
    /// Whether this node validates.
    pub is_validator: bool,
    /// Validators of the next height.
    pub validators: Vec<ValidatorDto>,
    /// Connected peers.
    pub peers: Vec<PeerDto>,
    /// Whether a peer is known to be well ahead.
    pub syncing: bool,
    /// Highest height a peer reported.
    pub best_peer_height: u64,
    /// Pending transactions.
    pub mempool: usize,
    /// Node version.
    pub version: String,
    /// The alliance parameters in force at the tip (changed by vote).
    #[schema(value_type = super::schema::AllianceParams)]
    pub params: serde_json::Value,
}

/// `POST /v1/transactions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubmitResponse {
    /// Transaction id (hex).
    pub hash: String,
}

/// A transaction's result in its block.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxResultDto {
    /// Applied, or rejected (changing nothing).
    pub applied: bool,
    /// Rejection code, e.g. `insufficient_balance`.
    pub code: Option<String>,
    /// Rejection reason for people.
    pub reason: Option<String>,
}

/// `GET /v1/transactions/{hash}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TxStatusResponse {
    /// Transaction id.
    pub hash: String,
    /// `pending` or `committed`.
    pub status: String,
    /// Block height (committed).
    pub height: Option<u64>,
    /// Position in the block (committed).
    pub index: Option<u32>,
    /// Result (committed).
    pub result: Option<TxResultDto>,
}

/// Points of one issuer with one expiry.
#[derive(Debug, Serialize, ToSchema)]
pub struct LotDto {
    /// Issuing merchant.
    pub issuer: String,
    /// Expiry (ms since the Unix epoch, a UTC midnight); null: never.
    pub expiry_ms: Option<u64>,
    /// Points.
    pub amount: u64,
}

/// `GET /v1/accounts/{address}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountResponse {
    /// The address.
    pub address: String,
    /// Total spendable points.
    pub balance: u64,
    /// Next nonce to sign with.
    pub nonce: u64,
    /// Points by issuer.
    pub by_issuer: BTreeMap<String, u64>,
    /// Lots, closest expiry first.
    pub lots: Vec<LotDto>,
    /// Lots expiring within 30 days of the last block time.
    pub expiring_soon: Vec<LotDto>,
    /// Height this reflects.
    pub height: u64,
}

/// One entry of an account's history.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryItem {
    /// Transaction id.
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// Position in the block.
    pub index: u32,
    /// Block time.
    pub timestamp_ms: u64,
    /// `issue`, `transfer`, `redeem`, `settlement_confirm`, `propose`, `vote`.
    pub kind: String,
    /// Signer address.
    pub signer: String,
    /// The transaction body as JSON.
    #[schema(value_type = super::schema::TxBody)]
    pub body: serde_json::Value,
    /// Applied or rejected.
    pub applied: bool,
    /// Rejection code.
    pub code: Option<String>,
}

/// `GET /v1/accounts/{address}/history`.
#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryResponse {
    /// Newest first.
    pub items: Vec<HistoryItem>,
    /// Cursor for the next page (`before=`), null at the end.
    pub next: Option<String>,
}

/// A finalized block with its certificate.
#[derive(Debug, Serialize, ToSchema)]
pub struct BlockResponse {
    /// Block hash.
    pub hash: String,
    /// Height.
    pub height: u64,
    /// Header (see docs/protocol.md).
    #[schema(value_type = super::schema::BlockHeader)]
    pub header: serde_json::Value,
    /// Transactions, each with its id.
    #[schema(value_type = Vec<super::schema::BlockTransaction>)]
    pub txs: Vec<serde_json::Value>,
    /// Quorum certificate.
    #[schema(value_type = super::schema::Certificate)]
    pub certificate: serde_json::Value,
}

/// A merchant with its policy and totals.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantDto {
    /// Short id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Address.
    pub key: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Published policy.
    #[schema(value_type = super::schema::MerchantPolicy)]
    pub policy: serde_json::Value,
    /// Points issued.
    pub issued: u64,
    /// This merchant's points redeemed anywhere.
    pub redeemed: u64,
    /// This merchant's points expired (breakage).
    pub expired: u64,
    /// Held by customers now.
    pub outstanding: u64,
    /// Points of any issuer redeemed at this merchant.
    pub redeemed_here: u64,
    /// Redeemed / issued (0 when nothing issued).
    pub circulation_rate: f64,
    /// Whose points this merchant accepts for redemption, and at what rate.
    pub acceptance: AcceptanceDto,
}

/// A merchant's acceptance policy: rates in force, and a change announced
/// for a later height.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptanceDto {
    /// Accepted issuers and their rates in force at the tip. Empty: every
    /// issuer at 100 % (the alliance default). The merchant's own points
    /// always count at 100 %.
    #[schema(value_type = Vec<super::schema::AcceptanceRate>)]
    pub rates: serde_json::Value,
    /// Issuers whose points customers may convert into this merchant's, at
    /// these rates, in force at the tip. Empty: none.
    #[schema(value_type = Vec<super::schema::AcceptanceRate>)]
    pub conversions: serde_json::Value,
    /// A change announced and not yet in force.
    pub next: Option<AcceptanceChangeDto>,
}

/// An announced acceptance change.
#[derive(Debug, Serialize, ToSchema)]
pub struct AcceptanceChangeDto {
    /// First height at which it applies.
    pub effective_height: u64,
    /// The order rates from then on.
    #[schema(value_type = Vec<super::schema::AcceptanceRate>)]
    pub rates: serde_json::Value,
    /// The conversion rates from then on.
    #[schema(value_type = Vec<super::schema::AcceptanceRate>)]
    pub conversions: serde_json::Value,
}

/// `GET /v1/merchants`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantsResponse {
    /// Every merchant, by id.
    pub merchants: Vec<MerchantDto>,
    /// Height this reflects.
    pub height: u64,
}

/// A creditor's claim on a debtor.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimDto {
    /// Merchant owed.
    pub creditor: String,
    /// Merchant owing.
    pub debtor: String,
    /// Debtor's points redeemed at the creditor.
    pub redeemed_points: u64,
    /// Their value, hundredths of a minor currency unit.
    pub redeemed_value_centiminor: u64,
    /// Points confirmed paid.
    pub confirmed_points: u64,
    /// Value confirmed paid.
    pub confirmed_value_centiminor: u64,
    /// Points still owed (redeemed − confirmed).
    pub outstanding_points: i128,
    /// Value still owed.
    pub outstanding_value_centiminor: i128,
}

/// `GET /v1/settlement`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SettlementResponse {
    /// Claims (cumulative, or within the period when from/to are given).
    pub claims: Vec<ClaimDto>,
    /// First height of the period.
    pub from: Option<u64>,
    /// Last height of the period.
    pub to: Option<u64>,
    /// Height this reflects.
    pub height: u64,
}

/// `GET /v1/proposals`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProposalsResponse {
    /// Proposals, by id, with votes and status.
    #[schema(value_type = Vec<Object>)]
    pub proposals: Vec<serde_json::Value>,
    /// Height this reflects.
    pub height: u64,
}

/// `GET /v1/accounts/{address}/proof`.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountProofResponse {
    /// The address.
    pub address: String,
    /// Height of the header the account is proven against.
    pub height: u64,
    /// Hash of that header.
    pub block_hash: String,
    /// `alliance_protocol::light::AccountProof` as JSON: `epochs` (each
    /// validator-set change: certified header and proven merchant records),
    /// `header` (header and finalize certificate) and `account` (state key,
    /// value or null, sparse-Merkle proof). See docs/audit.md.
    #[schema(value_type = Object)]
    pub proof: serde_json::Value,
}
