//! Node configuration: `config.toml` in the node home, written with sane
//! defaults by `alliance-node init`; command-line flags override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::store::StoreKind;

/// File name of the configuration inside a node home.
pub const CONFIG_FILE: &str = "config.toml";

/// The smallest memory budget a node accepts, in MiB.
pub const MEMORY_BUDGET_MIN_MIB: u64 = 256;
/// The largest memory budget a node accepts, in MiB (1 TiB).
pub const MEMORY_BUDGET_MAX_MIB: u64 = 1 << 20;

/// Everything a node needs besides its key and the genesis.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NodeConfig {
    /// libp2p listen addresses (multiaddrs).
    pub listen: Vec<String>,
    /// Peers to connect to (multiaddrs, optionally ending in /p2p/<peer id>).
    pub peers: Vec<String>,
    /// HTTP API address. Loopback by default: expose it deliberately.
    pub api: SocketAddr,
    /// Target time between blocks when there are transactions.
    pub block_interval_ms: u64,
    /// Leader timeout: no proposal voted in this long, the view is nullified.
    pub leader_timeout_ms: u64,
    /// Notarization timeout.
    pub notarization_timeout_ms: u64,
    /// Most transactions this node puts in a block it leads (also capped by
    /// the alliance parameter `block_txs_max`).
    pub block_txs_max: u32,
    /// Mempool capacity in transactions.
    pub mempool_txs_max: usize,
    /// The node's memory budget in MiB: the resident memory it is sized to
    /// stay under whatever the chain length and load (the store's cache is
    /// a share of it: a sixteenth on fjall, a quarter on redb and sled).
    /// Exported as `alliance_memory_budget_bytes` beside
    /// `alliance_resident_memory_bytes`.
    pub memory_budget_mib: u64,
    /// The storage engine of a new data directory: `fjall` (unset: fjall),
    /// `redb` or `sled`. An existing data directory opens on the engine
    /// whose files it holds; naming another one is refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub store_engine: Option<StoreKind>,
}

impl Default for NodeConfig {
    fn default() -> Self {
        NodeConfig {
            listen: vec!["/ip4/127.0.0.1/tcp/7400".into()],
            peers: vec![],
            api: SocketAddr::from(([127, 0, 0, 1], 8080)),
            block_interval_ms: 500,
            leader_timeout_ms: 2_000,
            notarization_timeout_ms: 3_000,
            block_txs_max: 5_000,
            mempool_txs_max: 50_000,
            memory_budget_mib: 1024,
            store_engine: None,
        }
    }
}

/// Configuration problems, each saying which file and what to fix.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not valid TOML for this config.
    #[error("{path} is not a valid node config: {why}")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// Why.
        why: String,
    },
}

impl NodeConfig {
    /// Loads `home/config.toml`; a missing file means all defaults.
    pub fn load(home: &Path) -> Result<Self, ConfigError> {
        let path = home.join(CONFIG_FILE);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(NodeConfig::default()),
            Err(source) => return Err(ConfigError::Io { path, source }),
        };
        let config: NodeConfig = toml::from_str(&text).map_err(|e| ConfigError::Invalid {
            path: path.clone(),
            why: e.to_string(),
        })?;
        config
            .validate()
            .map_err(|why| ConfigError::Invalid { path, why })?;
        Ok(config)
    }

    /// Checks ranges.
    pub fn validate(&self) -> Result<(), String> {
        if !(10..=60_000).contains(&self.block_interval_ms) {
            return Err("block_interval_ms must be 10..=60000".into());
        }
        if self.leader_timeout_ms < 100 || self.notarization_timeout_ms < self.leader_timeout_ms {
            return Err(
                "leader_timeout_ms must be >= 100 and notarization_timeout_ms >= leader_timeout_ms"
                    .into(),
            );
        }
        if self.block_txs_max == 0 || self.mempool_txs_max == 0 {
            return Err("block_txs_max and mempool_txs_max must be positive".into());
        }
        if !(MEMORY_BUDGET_MIN_MIB..=MEMORY_BUDGET_MAX_MIB).contains(&self.memory_budget_mib) {
            return Err(format!(
                "memory_budget_mib must be {MEMORY_BUDGET_MIN_MIB}..={MEMORY_BUDGET_MAX_MIB}"
            ));
        }
        Ok(())
    }

    /// The memory budget in bytes (the store's engine takes its cache out
    /// of it: `StoreKind::cache_bytes`).
    pub fn memory_budget_bytes(&self) -> u64 {
        self.memory_budget_mib << 20
    }

    /// Peer addresses as configured.
    pub fn peer_addrs(&self) -> Vec<String> {
        self.peers.clone()
    }

    /// The TOML text `init` writes.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).expect("config serialises")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_errors() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), NodeConfig::default());
        let c = NodeConfig {
            block_interval_ms: 250,
            ..NodeConfig::default()
        };
        std::fs::write(dir.path().join(CONFIG_FILE), c.to_toml()).unwrap();
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), c);
        std::fs::write(dir.path().join(CONFIG_FILE), "block_interval_ms = \"fast\"").unwrap();
        assert!(matches!(
            NodeConfig::load(dir.path()),
            Err(ConfigError::Invalid { .. })
        ));
        std::fs::write(dir.path().join(CONFIG_FILE), "unknown_key = 1").unwrap();
        assert!(matches!(
            NodeConfig::load(dir.path()),
            Err(ConfigError::Invalid { .. })
        ));
        std::fs::write(dir.path().join(CONFIG_FILE), "block_interval_ms = 1").unwrap();
        assert!(matches!(
            NodeConfig::load(dir.path()),
            Err(ConfigError::Invalid { .. })
        ));
    }

    #[test]
    fn store_engine_and_memory_budget() {
        let dir = tempfile::tempdir().unwrap();
        let c = NodeConfig {
            store_engine: Some(StoreKind::Sled),
            memory_budget_mib: 512,
            ..NodeConfig::default()
        };
        std::fs::write(dir.path().join(CONFIG_FILE), c.to_toml()).unwrap();
        assert!(c.to_toml().contains("store_engine = \"sled\""));
        assert_eq!(NodeConfig::load(dir.path()).unwrap(), c);
        assert_eq!(c.memory_budget_bytes(), 512 << 20);
        // Unset: not written, and new directories get fjall.
        assert!(!NodeConfig::default().to_toml().contains("store_engine"));
        for bad in ["store_engine = \"rocksdb\"", "memory_budget_mib = 64"] {
            std::fs::write(dir.path().join(CONFIG_FILE), bad).unwrap();
            assert!(
                matches!(
                    NodeConfig::load(dir.path()),
                    Err(ConfigError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }
}
