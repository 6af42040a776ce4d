//! Node configuration: `config.toml` in the node home, written with sane
//! defaults by `alliance-node init`; command-line flags override it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// File name of the configuration inside a node home.
pub const CONFIG_FILE: &str = "config.toml";

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
        Ok(())
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
}
