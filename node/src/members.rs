//! The members file from which `alliance-node genesis build` makes a
//! genesis: the founding merchants (id, name, address, optional policy) and
//! optional chain settings. Everything omitted gets a documented default.

use alliance_protocol::fixtures::demo_policy;
use alliance_protocol::genesis::{Genesis, GenesisError, GenesisMerchant};
use alliance_protocol::{AllianceParams, MerchantId, MerchantPolicy, PublicKey};
use serde::Deserialize;

/// One founding merchant in a members file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// Short id, e.g. `coffee`.
    pub id: MerchantId,
    /// Display name.
    pub name: String,
    /// Address printed by `alliance-node init`.
    pub key: PublicKey,
    /// Policy; default: 100 points = 1.00, 365 days validity, generous caps.
    pub policy: Option<MerchantPolicy>,
}

/// A members file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembersFile {
    /// Chain id.
    pub chain_id: String,
    /// Genesis time; default: now.
    pub genesis_time_ms: Option<u64>,
    /// Alliance parameters; default: [`AllianceParams::default`].
    pub params: Option<AllianceParams>,
    /// Founding merchants.
    pub merchants: Vec<Member>,
}

impl MembersFile {
    /// Builds and validates the genesis.
    pub fn into_genesis(self, now_ms: u64) -> Result<Genesis, GenesisError> {
        let g = Genesis {
            chain_id: self.chain_id,
            genesis_time_ms: self.genesis_time_ms.unwrap_or(now_ms),
            params: self.params.unwrap_or_default(),
            merchants: self
                .merchants
                .into_iter()
                .map(|m| GenesisMerchant {
                    id: m.id,
                    name: m.name,
                    key: m.key,
                    policy: m.policy.unwrap_or_else(demo_policy),
                })
                .collect(),
        };
        g.validate()?;
        Ok(g)
    }
}
