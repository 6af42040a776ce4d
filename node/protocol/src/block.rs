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
        merkle::root(&Block::ids_of(txs))
    }

    /// The ids of `txs`, in order.
    pub fn ids_of(txs: &[Transaction]) -> Vec<Hash32> {
        txs.iter().map(Transaction::hash).collect()
    }

    /// Whether the transactions are the ones the header commits to (count
    /// and `tx_root`). The block hash covers only the header, so a block
    /// whose certificate verifies can still carry another body: every block
    /// from a peer is checked with this before it is kept.
    pub fn body_matches_header(&self) -> bool {
        self.body_ids().is_some()
    }

    /// The transactions' ids, if the transactions are the ones the header
    /// commits to ([`Block::body_matches_header`]): a node hashes each
    /// transaction of a block once and uses these ids from then on.
    pub fn body_ids(&self) -> Option<Vec<Hash32>> {
        if self.txs.len() != self.header.tx_count as usize {
            return None;
        }
        let ids = Block::ids_of(&self.txs);
        (merkle::root(&ids) == self.header.tx_root).then_some(ids)
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;
    use crate::tx::TxBody;

    fn block_of(n: u64) -> Block {
        let alice = Keypair::from_label("alice");
        let txs: Vec<Transaction> = (0..n)
            .map(|i| {
                Transaction::sign(
                    "test",
                    &alice,
                    i,
                    TxBody::Transfer {
                        to: Keypair::from_label("bob").public(),
                        amount: 1 + i,
                        memo: String::new(),
                    },
                )
            })
            .collect();
        Block {
            header: BlockHeader {
                chain_id: "test".into(),
                height: 1,
                timestamp_ms: 1,
                prev_hash: Hash32([0; 32]),
                tx_count: txs.len() as u32,
                tx_root: Block::compute_tx_root(&txs),
                state_root: Hash32([0; 32]),
                proposer: alice.public(),
                validator_set_hash: Hash32([0; 32]),
            },
            txs,
        }
    }

    #[test]
    fn body_ids_are_the_transactions_hashes_when_the_body_matches() {
        let b = block_of(5);
        let ids = b.body_ids().expect("the body matches its header");
        assert_eq!(ids, b.txs.iter().map(Transaction::hash).collect::<Vec<_>>());
        assert!(b.body_matches_header());
    }

    #[test]
    fn another_body_has_no_ids() {
        let mut changed = block_of(5);
        changed.txs[3].signature.0[0] ^= 1;
        assert_eq!(changed.body_ids(), None);
        let mut swapped = block_of(5);
        swapped.txs.swap(1, 2);
        assert_eq!(swapped.body_ids(), None);
        let mut shorter = block_of(5);
        shorter.txs.pop();
        assert_eq!(shorter.body_ids(), None);
        let mut miscounted = block_of(5);
        miscounted.header.tx_count = 4;
        assert!(!miscounted.body_matches_header());
    }
}
