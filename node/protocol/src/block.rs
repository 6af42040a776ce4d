//! Blocks: a header that commits to everything, and the transactions.

use serde::{Deserialize, Serialize};

use crate::crypto::{Hash32, PublicKey};
use crate::encoding::{self, domain, DecodeError};
use crate::limits::BLOCK_BYTES_MAX;
use crate::merkle;
use crate::tx::Transaction;

/// A block header. Its hash is the block's identity; the header alone is
/// enough to check a state proof once its certificate is verified.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockHeader {
    /// The chain this block belongs to.
    pub chain_id: String,
    /// 1 for the first block after genesis.
    pub height: u64,
    /// Block time, milliseconds since the Unix epoch. The ledger's only clock.
    pub timestamp_ms: u64,
    /// Hash of the previous block's header (the genesis hash at height 1).
    pub prev_hash: Hash32,
    /// Number of transactions: with `tx_root`, proves a transaction's
    /// position in the block, not only its presence.
    pub tx_count: u32,
    /// Merkle root of the transaction ids ([`merkle::root`]).
    pub tx_root: Hash32,
    /// Root of the ledger state after applying this block.
    pub state_root: Hash32,
    /// The validator that proposed the block.
    pub proposer: PublicKey,
    /// Hash of the validator set that must certify this block.
    pub validator_set_hash: Hash32,
}

impl BlockHeader {
    /// The block hash.
    pub fn hash(&self) -> Hash32 {
        encoding::hash_value(domain::BLOCK, self)
    }
}

/// A block: header and transactions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions, applied in order.
    pub txs: Vec<Transaction>,
}

impl Block {
    /// The block hash (hash of the header).
    pub fn hash(&self) -> Hash32 {
        self.header.hash()
    }

    /// The Merkle root of these transactions' ids.
    pub fn compute_tx_root(txs: &[Transaction]) -> Hash32 {
        let ids: Vec<Hash32> = txs.iter().map(Transaction::hash).collect();
        merkle::root(&ids)
    }

    /// Whether the transactions are the ones the header commits to (count
    /// and `tx_root`). The block hash covers only the header, so a block
    /// whose certificate verifies can still carry another body: every block
    /// from a peer is checked with this before it is kept.
    pub fn body_matches_header(&self) -> bool {
        self.txs.len() == self.header.tx_count as usize
            && Block::compute_tx_root(&self.txs) == self.header.tx_root
    }

    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a block, enforcing [`BLOCK_BYTES_MAX`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, BLOCK_BYTES_MAX)
    }
}

/// A block with the certificate that finalized it: what the store keeps,
/// what sync transfers and what an auditor verifies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FinalizedBlock {
    /// The block.
    pub block: Block,
    /// Its quorum certificate (see [`crate::certificate::Certificate`]).
    pub certificate: crate::certificate::Certificate,
}

impl FinalizedBlock {
    /// Canonical bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes, enforcing [`BLOCK_BYTES_MAX`] plus room for a certificate.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, BLOCK_BYTES_MAX + 64 * 1024)
    }
}
