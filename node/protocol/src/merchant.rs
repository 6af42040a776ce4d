//! Merchants, their published policies and the alliance-wide parameters.
//! All of it lives on the chain, visible to every member, and changes only by
//! governance vote.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::crypto::PublicKey;
use crate::limits::{MERCHANT_ID_BYTES_MAX, NAME_BYTES_MAX};

/// A merchant's short handle, e.g. `coffee`: 1 to 16 characters of `a-z`,
/// `0-9` and `-`, starting with a letter.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MerchantId(String);

/// Why a merchant id is not acceptable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("merchant id `{0}` must be 1-16 characters of a-z, 0-9 or '-', starting with a letter")]
pub struct BadMerchantId(pub String);

impl MerchantId {
    /// Validates and wraps an id.
    pub fn new(id: impl Into<String>) -> Result<Self, BadMerchantId> {
        let id = id.into();
        let ok = !id.is_empty()
            && id.len() <= MERCHANT_ID_BYTES_MAX
            && id.as_bytes()[0].is_ascii_lowercase()
            && id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if ok {
            Ok(MerchantId(id))
        } else {
            Err(BadMerchantId(id))
        }
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for MerchantId {
    type Error = BadMerchantId;
    fn try_from(s: String) -> Result<Self, BadMerchantId> {
        MerchantId::new(s)
    }
}

impl From<MerchantId> for String {
    fn from(m: MerchantId) -> String {
        m.0
    }
}

impl std::str::FromStr for MerchantId {
    type Err = BadMerchantId;
    fn from_str(s: &str) -> Result<Self, BadMerchantId> {
        MerchantId::new(s)
    }
}

impl fmt::Display for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for MerchantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A merchant's published rules for its own points.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantPolicy {
    /// Value of 100 points in minor currency units (e.g. 100 = 1.00 yuan per
    /// 100 points). Claims between merchants are valued at this rate.
    pub point_value_minor: u64,
    /// Days a point stays valid after issuance; 0 means points never expire.
    /// Expiry is rounded up to the next UTC midnight, so one day's issuances
    /// to a customer share one lot.
    pub validity_days: u32,
    /// Most points one customer may receive from this merchant per UTC day.
    pub daily_issue_cap: u64,
    /// Most points of this merchant that may be outstanding (issued, not yet
    /// redeemed or expired) at any time.
    pub outstanding_cap: u64,
    /// Smallest redemption this merchant accepts.
    pub min_redemption: u64,
}

impl MerchantPolicy {
    /// Checks the policy is internally consistent.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.point_value_minor == 0 {
            return Err("point_value_minor must be positive");
        }
        if self.daily_issue_cap == 0 || self.outstanding_cap == 0 {
            return Err("caps must be positive");
        }
        if self.validity_days > 36_500 {
            return Err("validity_days must be at most 36500 (100 years)");
        }
        Ok(())
    }
}

/// Whether a merchant takes part in the alliance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MerchantStatus {
    /// Issues, redeems, votes and validates.
    Active,
    /// Suspended by vote: cannot issue, accept redemptions, vote or validate.
    /// Its points already held by customers stay valid and spendable elsewhere.
    Suspended,
}

/// Running totals per issuer, kept in the state so that every operator
/// figure is provable from the chain alone.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IssuerStats {
    /// Points of this issuer ever minted.
    pub issued: u64,
    /// Points of this issuer burnt by redemption (at any merchant).
    pub redeemed: u64,
    /// Points of this issuer that expired unspent (breakage).
    pub expired: u64,
    /// Points redeemed *at* this merchant (of any issuer).
    pub redeemed_here: u64,
}

impl IssuerStats {
    /// Issued minus redeemed minus expired: what customers still hold.
    pub fn outstanding(&self) -> u64 {
        self.issued - self.redeemed - self.expired
    }
}

/// Everything the chain knows about one merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Merchant {
    /// Short id.
    pub id: MerchantId,
    /// Display name (no personal data).
    pub name: String,
    /// Signing key: issues, votes, and validates blocks with it.
    pub key: PublicKey,
    /// Published policy.
    pub policy: MerchantPolicy,
    /// Active or suspended.
    pub status: MerchantStatus,
    /// Totals of this merchant's points.
    pub stats: IssuerStats,
}

/// Checks a display name.
pub fn validate_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err("name must be 1-64 bytes");
    }
    if name.chars().any(char::is_control) {
        return Err("name must not contain control characters");
    }
    Ok(())
}

/// Alliance-wide rules, changed by governance (`UpdateParams`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AllianceParams {
    /// ISO 4217 code of the currency point values are quoted in (e.g. `CNY`).
    pub currency: String,
    /// Most transactions a leader may put in one block.
    pub block_txs_max: u32,
    /// Most encoded bytes of transactions in one block.
    pub block_bytes_max: u32,
    /// Longest a proposal may stay open, in blocks.
    pub proposal_blocks_max: u64,
    /// How far ahead of a validator's clock a block timestamp may be.
    pub timestamp_drift_max_ms: u64,
    /// Days a receipt stays inside the receipt window: an issuance whose
    /// receipt is older than this at the block time is refused, and a used
    /// receipt leaves the state once it is (docs/protocol.md §5). 1 to
    /// [`RECEIPT_WINDOW_DAYS_MAX`](crate::limits::RECEIPT_WINDOW_DAYS_MAX).
    pub receipt_window_days: u32,
    /// Blocks of notice a merchant gives before a change of its acceptance
    /// policy applies (`SetAcceptance`'s effective height is at least this
    /// far ahead), so customers can spend their points at the old rates.
    /// At most [`ACCEPTANCE_NOTICE_BLOCKS_MAX`](crate::limits::ACCEPTANCE_NOTICE_BLOCKS_MAX).
    pub acceptance_notice_blocks: u64,
}

impl Default for AllianceParams {
    fn default() -> Self {
        AllianceParams {
            currency: "CNY".into(),
            block_txs_max: 5_000,
            block_bytes_max: 4 * 1024 * 1024,
            proposal_blocks_max: 100_000,
            timestamp_drift_max_ms: 5_000,
            receipt_window_days: 90,
            // A day at one block a second.
            acceptance_notice_blocks: 86_400,
        }
    }
}

impl AllianceParams {
    /// Checks the parameters against the protocol's hard limits.
    pub fn validate(&self) -> Result<(), &'static str> {
        if self.currency.len() != 3 || !self.currency.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err("currency must be a 3-letter ISO 4217 code");
        }
        if self.block_txs_max == 0 || self.block_txs_max as usize > crate::limits::BLOCK_TXS_MAX {
            return Err("block_txs_max must be 1..=20000");
        }
        if self.block_bytes_max < 64 * 1024
            || self.block_bytes_max as usize > crate::limits::BLOCK_BYTES_MAX
        {
            return Err("block_bytes_max must be 64 KiB..=16 MiB");
        }
        if self.proposal_blocks_max == 0 {
            return Err("proposal_blocks_max must be positive");
        }
        if self.receipt_window_days == 0
            || self.receipt_window_days > crate::limits::RECEIPT_WINDOW_DAYS_MAX
        {
            return Err("receipt_window_days must be 1..=3650");
        }
        if self.acceptance_notice_blocks > crate::limits::ACCEPTANCE_NOTICE_BLOCKS_MAX {
            return Err("acceptance_notice_blocks must be at most 31622400 (a year of blocks)");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merchant_ids() {
        assert!(MerchantId::new("coffee").is_ok());
        assert!(MerchantId::new("c0ffee-2").is_ok());
        for bad in [
            "",
            "Coffee",
            "1coffee",
            "coffee shop",
            "averyveryverylongid",
            "café",
        ] {
            assert!(MerchantId::new(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn receipt_window_is_bounded() {
        let ok = |days: u32| {
            AllianceParams {
                receipt_window_days: days,
                ..AllianceParams::default()
            }
            .validate()
        };
        assert_eq!(AllianceParams::default().receipt_window_days, 90);
        assert!(ok(1).is_ok());
        assert!(ok(crate::limits::RECEIPT_WINDOW_DAYS_MAX).is_ok());
        for bad in [0, crate::limits::RECEIPT_WINDOW_DAYS_MAX + 1, u32::MAX] {
            assert_eq!(ok(bad), Err("receipt_window_days must be 1..=3650"));
        }
    }

    #[test]
    fn merchant_id_decoding_validates() {
        let bytes = crate::encoding::encode(&"Bad Id".to_string());
        assert!(crate::encoding::decode::<MerchantId>(&bytes, 100).is_err());
    }
}
