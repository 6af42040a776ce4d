//! The application model: deterministic block building and validity. A
//! block is valid iff it links to its parent, its state root is
//! H(parent state root, height) and its timestamp is after its parent's.

use alliance_protocol::encoding::hash_with_domain;
use alliance_protocol::{Block, BlockHeader, Hash32, PublicKey};

use super::CHAIN;

/// The genesis block (height 0); its hash anchors every core.
pub fn genesis(validator_set_hash: Hash32) -> Block {
    Block {
        header: BlockHeader {
            chain_id: CHAIN.to_string(),
            height: 0,
            timestamp_ms: 0,
            prev_hash: Hash32::ZERO,
            tx_count: 0,
            tx_root: Hash32::ZERO,
            state_root: hash_with_domain("sim/state", b"genesis"),
            proposer: PublicKey([0; 32]),
            validator_set_hash,
        },
        txs: Vec::new(),
    }
}

/// The state root a valid child of `parent` has.
pub fn state_root(parent: &BlockHeader, height: u64) -> Hash32 {
    let mut bytes = parent.state_root.0.to_vec();
    bytes.extend_from_slice(&height.to_le_bytes());
    hash_with_domain("sim/state", &bytes)
}

/// Builds a child of `parent`; `invalid` breaks the state root.
pub fn build(parent: &BlockHeader, proposer: PublicKey, now_ms: u64, invalid: bool) -> Block {
    let height = parent.height + 1;
    let mut root = state_root(parent, height);
    if invalid {
        root.0[0] ^= 0xff;
    }
    Block {
        header: BlockHeader {
            chain_id: CHAIN.to_string(),
            height,
            timestamp_ms: now_ms.max(parent.timestamp_ms + 1),
            prev_hash: parent.hash(),
            tx_count: 0,
            tx_root: Hash32::ZERO,
            state_root: root,
            proposer,
            validator_set_hash: parent.validator_set_hash,
        },
        txs: Vec::new(),
    }
}

/// The application's verdict.
pub fn valid(parent: &BlockHeader, block: &Block) -> bool {
    let h = &block.header;
    h.height == parent.height + 1
        && h.prev_hash == parent.hash()
        && h.state_root == state_root(parent, h.height)
        && h.timestamp_ms > parent.timestamp_ms
        && h.chain_id == CHAIN
}
