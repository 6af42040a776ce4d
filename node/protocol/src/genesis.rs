//! The genesis file: the chain id, the founding merchants with their keys
//! and policies, and the alliance parameters. Its hash roots the chain (the
//! first block's prev_hash), so every node and auditor starting from the same
//! file agrees on everything that follows.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};
use crate::encoding::{self, domain};
use crate::limits::{CHAIN_ID_BYTES_MAX, GENESIS_BYTES_MAX, MERCHANTS_MAX};
use crate::merchant::{
    validate_name, AllianceParams, Merchant, MerchantId, MerchantPolicy, MerchantStatus,
};

/// A founding merchant.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenesisMerchant {
    /// Short id.
    pub id: MerchantId,
    /// Display name.
    pub name: String,
    /// Signing key (bech32m address in JSON).
    pub key: PublicKey,
    /// Published policy.
    pub policy: MerchantPolicy,
}

impl GenesisMerchant {
    /// The state record of this merchant at height 0.
    pub fn to_merchant(&self) -> Merchant {
        Merchant {
            id: self.id.clone(),
            name: self.name.clone(),
            key: self.key,
            policy: self.policy.clone(),
            status: MerchantStatus::Active,
            stats: Default::default(),
        }
    }
}

/// The genesis file (JSON on disk).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Genesis {
    /// Chain id: every transaction and vote is bound to it.
    pub chain_id: String,
    /// Time of height 0, ms since the Unix epoch.
    pub genesis_time_ms: u64,
    /// Alliance parameters.
    pub params: AllianceParams,
    /// Founding merchants (the first validator set).
    pub merchants: Vec<GenesisMerchant>,
}

/// Why a genesis file is not usable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GenesisError {
    /// Not valid JSON of the expected shape.
    #[error("genesis is not valid JSON: {0}")]
    Json(String),
    /// Over the size limit.
    #[error("genesis is {0} bytes, over the 1 MiB limit")]
    TooLarge(usize),
    /// Valid JSON with invalid content.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

impl Genesis {
    /// The genesis hash (hash of the canonical encoding, so JSON formatting
    /// does not matter).
    pub fn hash(&self) -> Hash32 {
        encoding::hash_value(domain::GENESIS, self)
    }

    /// Parses and validates a genesis file.
    pub fn from_json(bytes: &[u8]) -> Result<Self, GenesisError> {
        if bytes.len() > GENESIS_BYTES_MAX {
            return Err(GenesisError::TooLarge(bytes.len()));
        }
        let g: Genesis =
            serde_json::from_slice(bytes).map_err(|e| GenesisError::Json(e.to_string()))?;
        g.validate()?;
        Ok(g)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis serialises to JSON")
    }

    /// Checks every rule a genesis must satisfy.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |s: String| Err(GenesisError::Invalid(s));
        if self.chain_id.is_empty()
            || self.chain_id.len() > CHAIN_ID_BYTES_MAX
            || !self
                .chain_id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        {
            return bad("chain_id must be 1-64 characters of A-Z a-z 0-9 - _ .".into());
        }
        self.params
            .validate()
            .map_err(|e| GenesisError::Invalid(format!("params: {e}")))?;
        if self.merchants.is_empty() || self.merchants.len() > MERCHANTS_MAX {
            return bad(format!(
                "need 1..={MERCHANTS_MAX} merchants, found {}",
                self.merchants.len()
            ));
        }
        let mut ids: Vec<_> = self.merchants.iter().map(|m| &m.id).collect();
        ids.sort();
        if let Some(w) = ids.windows(2).find(|w| w[0] == w[1]) {
            return bad(format!("merchant id `{}` appears twice", w[0]));
        }
        let mut keys: Vec<_> = self.merchants.iter().map(|m| m.key).collect();
        keys.sort();
        if keys.windows(2).any(|w| w[0] == w[1]) {
            return bad("two merchants share a key".into());
        }
        for m in &self.merchants {
            validate_name(&m.name)
                .map_err(|e| GenesisError::Invalid(format!("merchant `{}`: {e}", m.id)))?;
            m.policy
                .validate()
                .map_err(|e| GenesisError::Invalid(format!("merchant `{}`: {e}", m.id)))?;
            m.key
                .verifying_key()
                .map_err(|e| GenesisError::Invalid(format!("merchant `{}`: {e}", m.id)))?;
        }
        Ok(())
    }
}
