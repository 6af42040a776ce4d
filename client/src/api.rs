//! Typed views of the node's JSON answers (only the fields the CLI uses;
//! fields added by newer nodes are optional here).

use serde::Deserialize;
use serde_json::Value;

/// `GET /v1/status`.
#[derive(Debug, Deserialize)]
pub struct Status {
    /// Chain id (goes into every signature).
    pub chain_id: String,
    /// Finalized height.
    pub height: u64,
    /// Tip block hash.
    #[serde(default)]
    pub tip_hash: String,
    /// State root at the tip.
    #[serde(default)]
    pub state_root: String,
    /// Tip block time.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Consensus view.
    #[serde(default)]
    pub view: u64,
    /// Whether this node validates.
    #[serde(default)]
    pub is_validator: bool,
    /// Validator set.
    #[serde(default)]
    pub validators: Vec<Validator>,
    /// Connected peers.
    #[serde(default)]
    pub peers: Vec<Value>,
    /// Catching up.
    #[serde(default)]
    pub syncing: bool,
    /// Mempool size.
    #[serde(default)]
    pub mempool: u64,
    /// Node version.
    #[serde(default)]
    pub version: String,
    /// Alliance parameters, if the node publishes them.
    #[serde(default)]
    pub params: Option<Value>,
}

/// One validator.
#[derive(Debug, Deserialize)]
pub struct Validator {
    /// Merchant id.
    pub id: String,
    /// Its key.
    pub key: String,
}

/// One lot of points.
#[derive(Debug, Clone, Deserialize)]
pub struct Lot {
    /// Issuing merchant.
    pub issuer: String,
    /// Expiry (UTC midnight, ms), `None` = never.
    #[serde(default)]
    pub expiry_ms: Option<u64>,
    /// Points.
    pub amount: u64,
}

/// `GET /v1/accounts/{address}`.
#[derive(Debug, Deserialize)]
pub struct Account {
    /// The address.
    pub address: String,
    /// Total points.
    pub balance: u64,
    /// Next nonce.
    pub nonce: u64,
    /// Totals per issuer.
    #[serde(default)]
    pub by_issuer: std::collections::BTreeMap<String, u64>,
    /// Lots.
    #[serde(default)]
    pub lots: Vec<Lot>,
    /// Lots expiring within 30 days (newer nodes).
    #[serde(default)]
    pub expiring_soon: Option<Vec<Lot>>,
    /// Height of the answer.
    #[serde(default)]
    pub height: u64,
}

/// `result` of a committed transaction.
#[derive(Debug, Clone, Deserialize)]
pub struct TxResult {
    /// Applied or rejected.
    pub applied: bool,
    /// Rejection code.
    #[serde(default)]
    pub code: Option<String>,
    /// Rejection reason.
    #[serde(default)]
    pub reason: Option<String>,
}

/// `GET /v1/transactions/{hash}`.
#[derive(Debug, Clone, Deserialize)]
pub struct TxStatus {
    /// Hash.
    pub hash: String,
    /// `pending` or `committed`.
    pub status: String,
    /// Block height (committed).
    #[serde(default)]
    pub height: Option<u64>,
    /// Index in the block (committed).
    #[serde(default)]
    pub index: Option<u64>,
    /// Outcome (committed).
    #[serde(default)]
    pub result: Option<TxResult>,
}

/// A merchant's policy.
#[derive(Debug, Clone, Deserialize)]
pub struct Policy {
    /// Minor units per 100 points.
    pub point_value_minor: u64,
    /// Validity in days (0 = never).
    pub validity_days: u32,
    /// Per-customer daily cap.
    pub daily_issue_cap: u64,
    /// Outstanding cap.
    pub outstanding_cap: u64,
    /// Minimum redemption.
    pub min_redemption: u64,
}

/// One merchant of `GET /v1/merchants`.
#[derive(Debug, Clone, Deserialize)]
pub struct Merchant {
    /// Id.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Signing key.
    pub key: String,
    /// `active` or `suspended`.
    pub status: String,
    /// Policy.
    pub policy: Policy,
    /// Points issued.
    #[serde(default)]
    pub issued: u64,
    /// Points redeemed (anywhere).
    #[serde(default)]
    pub redeemed: u64,
    /// Points expired.
    #[serde(default)]
    pub expired: u64,
    /// Points outstanding.
    #[serde(default)]
    pub outstanding: u64,
    /// Points redeemed at this merchant.
    #[serde(default)]
    pub redeemed_here: u64,
    /// Whose points it accepts, at what rates (absent from older nodes:
    /// the default, every issuer at 100 %).
    #[serde(default)]
    pub acceptance: Acceptance,
}

/// A merchant's acceptance policy.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Acceptance {
    /// Rates in force; empty: every issuer at 100 %.
    #[serde(default)]
    pub rates: Vec<alliance_protocol::redemption::AcceptanceRate>,
    /// Conversion rates in force; empty: none.
    #[serde(default)]
    pub conversions: Vec<alliance_protocol::redemption::AcceptanceRate>,
    /// An announced change.
    #[serde(default)]
    pub next: Option<AcceptanceChange>,
}

/// An announced acceptance change.
#[derive(Debug, Clone, Deserialize)]
pub struct AcceptanceChange {
    /// First height it applies at.
    pub effective_height: u64,
    /// Its rates.
    pub rates: Vec<alliance_protocol::redemption::AcceptanceRate>,
    /// Its conversion rates.
    #[serde(default)]
    pub conversions: Vec<alliance_protocol::redemption::AcceptanceRate>,
}

/// `GET /v1/merchants`.
#[derive(Debug, Deserialize)]
pub struct Merchants {
    /// All merchants.
    pub merchants: Vec<Merchant>,
}

/// One claim of `GET /v1/settlement`.
#[derive(Debug, Clone, Deserialize)]
pub struct Claim {
    /// Merchant owed.
    pub creditor: String,
    /// Merchant owing.
    pub debtor: String,
    /// Points redeemed at the creditor.
    #[serde(default)]
    pub redeemed_points: u64,
    /// Value of the redeemed points, hundredths of a minor unit.
    #[serde(default)]
    pub redeemed_value_centiminor: u64,
    /// Points confirmed paid.
    #[serde(default)]
    pub confirmed_points: u64,
    /// Value confirmed paid, hundredths of a minor unit.
    #[serde(default)]
    pub confirmed_value_centiminor: u64,
    /// Points outstanding (with `from`/`to`: the net change over the
    /// period, negative when more was confirmed than redeemed).
    pub outstanding_points: i128,
    /// Value outstanding in hundredths of a minor unit (net change over a
    /// period, may be negative).
    pub outstanding_value_centiminor: i128,
}

/// `GET /v1/settlement`.
#[derive(Debug, Deserialize)]
pub struct Settlement {
    /// Claims.
    pub claims: Vec<Claim>,
    /// Height.
    #[serde(default)]
    pub height: u64,
}

/// One entry of `GET /v1/accounts/{address}/history`.
#[derive(Debug, Clone, Deserialize)]
pub struct HistoryItem {
    /// Transaction hash.
    pub hash: String,
    /// Block height.
    pub height: u64,
    /// Block time.
    #[serde(default)]
    pub timestamp_ms: u64,
    /// Body kind.
    #[serde(default)]
    pub kind: String,
    /// Signer.
    #[serde(default)]
    pub signer: String,
    /// The body as the protocol serialises it.
    #[serde(default)]
    pub body: Value,
    /// Applied or rejected.
    #[serde(default = "yes")]
    pub applied: bool,
    /// Rejection code.
    #[serde(default)]
    pub code: Option<String>,
    /// Rejection reason.
    #[serde(default)]
    pub reason: Option<String>,
}

fn yes() -> bool {
    true
}

/// `GET /v1/accounts/{address}/history`.
#[derive(Debug, Deserialize)]
pub struct History {
    /// Newest first.
    pub items: Vec<HistoryItem>,
    /// Cursor for the next page.
    #[serde(default)]
    pub next: Option<Value>,
}

/// One proposal of `GET /v1/proposals`.
#[derive(Debug, Clone, Deserialize)]
pub struct Proposal {
    /// Id.
    pub id: u64,
    /// Proposing merchant.
    #[serde(default)]
    pub proposer: Value,
    /// The action (protocol serde of `GovAction`).
    #[serde(default)]
    pub action: Value,
    /// Opened at.
    #[serde(default)]
    pub created_height: u64,
    /// Last height votes count.
    #[serde(default)]
    pub deadline_height: u64,
    /// `[merchant, approve]` pairs.
    #[serde(default)]
    pub votes: Vec<(Value, bool)>,
    /// Status.
    #[serde(default)]
    pub status: Value,
}

/// `GET /v1/proposals`.
#[derive(Debug, Deserialize)]
pub struct Proposals {
    /// All proposals.
    pub proposals: Vec<Proposal>,
}
