//! What the ledger state holds: one ordered map from [`StateKey`] to
//! [`StateValue`]. Every entry is committed by the state root, so anything a
//! rule reads is provable against a block header.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};
use crate::encoding::{self, domain};
use crate::merchant::{AllianceParams, Merchant, MerchantId};
use crate::redemption::Acceptance;
use crate::tx::GovAction;

/// Key of one state entry. The derived order is the iteration order (and
/// the order of the three queues: `Expiry`, `ReceiptQueue` and
/// `OrderQueue` sort by time first).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StateKey {
    /// Alliance parameters.
    Params,
    /// Counters and the merchant list.
    Meta,
    /// A merchant record.
    Merchant(MerchantId),
    /// Which merchant a signing key belongs to.
    MerchantByKey(PublicKey),
    /// A customer's (or merchant's) points and nonce.
    Account(PublicKey),
    /// An issuance receipt used inside the receipt window:
    /// (merchant, receipt_ref). Pruned when the window passes its receipt
    /// time, with its `ReceiptQueue` entry.
    Receipt(MerchantId, String),
    /// Points a merchant issued to a customer on the current UTC day.
    DailyIssued(MerchantId, PublicKey),
    /// Claim of a creditor (first) on a debtor (second).
    Claim(MerchantId, MerchantId),
    /// A governance proposal.
    Proposal(u64),
    /// Expiry queue: the owner holds (or held) a lot expiring at this time.
    Expiry(u64, PublicKey),
    /// Receipt prune queue: the receipt (merchant, receipt_ref) in
    /// `Receipt` has this receipt time (ms). Exactly one entry per
    /// `Receipt` entry.
    ReceiptQueue(u64, MerchantId, String),
    /// A redemption's order reference used inside the receipt window at
    /// this merchant: (merchant, order_ref). Pruned when the window passes
    /// the redemption's block time, with its `OrderQueue` entry.
    Order(MerchantId, String),
    /// Order prune queue: the order (merchant, order_ref) in `Order` was
    /// redeemed at this block time (ms). Exactly one entry per `Order`
    /// entry.
    OrderQueue(u64, MerchantId, String),
    /// A merchant's acceptance policy (absent: the alliance default).
    Acceptance(MerchantId),
}

/// Value of one state entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StateValue {
    /// For [`StateKey::Params`].
    Params(AllianceParams),
    /// For [`StateKey::Meta`].
    Meta(Meta),
    /// For [`StateKey::Merchant`].
    Merchant(Merchant),
    /// For [`StateKey::MerchantByKey`].
    MerchantId(MerchantId),
    /// For [`StateKey::Account`].
    Account(Account),
    /// For [`StateKey::Receipt`]: where and for which receipt time.
    Receipt(UsedReceipt),
    /// For [`StateKey::DailyIssued`].
    DailyIssued(DailyIssued),
    /// For [`StateKey::Claim`].
    Claim(Claim),
    /// For [`StateKey::Proposal`].
    Proposal(Proposal),
    /// For [`StateKey::Expiry`].
    Expiry,
    /// For [`StateKey::ReceiptQueue`].
    ReceiptQueue,
    /// For [`StateKey::Order`]: when it was redeemed.
    Order(UsedOrder),
    /// For [`StateKey::OrderQueue`].
    OrderQueue,
    /// For [`StateKey::Acceptance`].
    Acceptance(Acceptance),
}

impl StateKey {
    /// Path of this key in the state tree.
    pub fn tree_key(&self) -> Hash32 {
        encoding::hash_value(domain::STATE_KEY, self)
    }
}

impl StateValue {
    /// Leaf value hash in the state tree.
    pub fn tree_value(&self) -> Hash32 {
        encoding::hash_value(domain::STATE_VALUE, self)
    }
}

/// Chain-wide counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// Id the next proposal gets.
    pub next_proposal_id: u64,
    /// Every merchant ever admitted, sorted.
    pub merchants: Vec<MerchantId>,
    /// The earliest receipt time (ms) an issuance may carry whatever the
    /// window: when a vote lengthens `receipt_window_days`, this is set to
    /// where the old window started, so the window never moves back and a
    /// receipt already pruned can never be issued on again. 0 until then.
    pub receipt_floor_ms: u64,
}

/// An issuance receipt in use: what [`StateKey::Receipt`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedReceipt {
    /// The height of the issuance that used it.
    pub height: u64,
    /// The issuance's receipt time (ms since the Unix epoch): the entry is
    /// pruned at the first block whose receipt window starts after it.
    pub receipt_time_ms: u64,
}

/// An order reference in use: what [`StateKey::Order`] holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsedOrder {
    /// The height of the redemption that used it.
    pub height: u64,
    /// That block's time (ms since the Unix epoch): the entry is pruned at
    /// the first block whose receipt window starts after it.
    pub time_ms: u64,
}

/// Points of one issuer with one expiry, held by one account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lot {
    /// The merchant whose points these are.
    pub issuer: MerchantId,
    /// When they expire (a UTC midnight, ms since epoch); `None` never.
    pub expiry_ms: Option<u64>,
    /// How many.
    pub amount: u64,
}

impl Lot {
    /// Spending order: closest expiry first, never-expiring last, then issuer.
    pub fn spend_order(&self) -> (u64, &MerchantId) {
        (self.expiry_ms.unwrap_or(u64::MAX), &self.issuer)
    }
}

/// One key's points and replay counter.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// The nonce the next transaction from this key must carry.
    pub nonce: u64,
    /// Lots in spending order ([`Lot::spend_order`]), no zero amounts.
    pub lots: Vec<Lot>,
}

impl Account {
    /// Total points held (saturating: a sum beyond u64 is impossible because
    /// each issuer's outstanding points fit in u64 and merchants are bounded,
    /// but a display value must never panic).
    pub fn balance(&self) -> u64 {
        self.lots
            .iter()
            .fold(0u64, |a, l| a.saturating_add(l.amount))
    }

    /// Whether the entry can be deleted from the state.
    pub fn is_empty(&self) -> bool {
        self.nonce == 0 && self.lots.is_empty()
    }
}

/// Points issued by one merchant to one customer on one UTC day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyIssued {
    /// Day number (ms / DAY_MS).
    pub day: u64,
    /// Points issued that day.
    pub amount: u64,
}

/// What a creditor merchant is owed by a debtor merchant. Cumulative, so the
/// "who owes whom" matrix and its history are exact: outstanding is
/// redeemed minus confirmed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// Debtor's points redeemed at the creditor.
    pub redeemed_points: u64,
    /// Their value at the debtor's published point value at redemption time,
    /// in hundredths of a minor currency unit (points x point_value_minor).
    pub redeemed_value_centiminor: u64,
    /// Points the creditor confirmed as paid.
    pub confirmed_points: u64,
    /// Value confirmed as paid (pro rata of the outstanding value).
    pub confirmed_value_centiminor: u64,
}

impl Claim {
    /// Points still owed.
    pub fn outstanding_points(&self) -> u64 {
        self.redeemed_points - self.confirmed_points
    }

    /// Value still owed, hundredths of a minor unit.
    pub fn outstanding_value_centiminor(&self) -> u64 {
        self.redeemed_value_centiminor - self.confirmed_value_centiminor
    }
}

/// Where a proposal stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProposalStatus {
    /// Collecting votes until `deadline_height`.
    Open,
    /// Passed and executed at this height.
    Executed(u64),
    /// Passed at this height, but its action could no longer be applied
    /// (e.g. the merchant id was taken meanwhile); nothing changed.
    Failed(u64, String),
    /// Enough members voted no that it can no longer pass.
    Rejected(u64),
}

/// A governance proposal and its votes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// Sequential id.
    pub id: u64,
    /// Who proposed it.
    pub proposer: MerchantId,
    /// What it does.
    pub action: GovAction,
    /// Height it was proposed at.
    pub created_height: u64,
    /// Last height at which votes count.
    pub deadline_height: u64,
    /// Votes by merchant, sorted by id (the proposer approves implicitly).
    pub votes: Vec<(MerchantId, bool)>,
    /// Status.
    pub status: ProposalStatus,
}
