//! The chain export format: one self-contained file holding the genesis and
//! every finalized block, enough for `alliance audit` to re-verify the whole
//! history with no node involved. Pure encode/decode; reading and writing
//! files is the caller's job.
//!
//! Layout (all integers little endian, docs/audit.md):
//!
//! ```text
//! "PAEXPORT"                 8 bytes magic
//! version: u32               1
//! genesis_len: u32           ≤ GENESIS_BYTES_MAX
//! genesis: genesis_len bytes the genesis JSON, as the node was started with
//! block_count: u64
//! block_count × { len: u32 (≤ FINALIZED_BLOCK_BYTES_MAX), len bytes: canonical FinalizedBlock }
//! ```
//!
//! Blocks are kept as raw bytes ([`ChainExport::blocks`]) and decoded one at
//! a time ([`ChainExport::block`]), so a malformed block is reported with
//! its position instead of failing the whole file.

use crate::block::FinalizedBlock;
use crate::encoding::DecodeError;
use crate::genesis::{Genesis, GenesisError};
use crate::limits::{BLOCK_BYTES_MAX, GENESIS_BYTES_MAX};

/// The first eight bytes of every export.
pub const MAGIC: &[u8; 8] = b"PAEXPORT";
/// The format version this module writes and reads.
pub const VERSION: u32 = 1;
/// Largest encoded finalized block (a block plus room for its certificate),
/// the limit [`FinalizedBlock::from_bytes`] enforces.
pub const FINALIZED_BLOCK_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024;

/// Why bytes are not a valid export.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportError {
    /// The file does not start with `PAEXPORT`.
    #[error("not a Points Alliance export (the file does not start with PAEXPORT)")]
    BadMagic,
    /// A version this build does not read.
    #[error("export format version {0} is not supported (this build reads version {VERSION})")]
    UnsupportedVersion(u32),
    /// The input ends in the middle of a field.
    #[error("export is truncated: {what} at byte offset {offset} needs {need} bytes, only {have} remain")]
    Truncated {
        /// The field being read.
        what: String,
        /// Its offset in the file.
        offset: usize,
        /// Bytes it needs.
        need: usize,
        /// Bytes left in the file.
        have: usize,
    },
    /// The genesis length prefix is over [`GENESIS_BYTES_MAX`].
    #[error("genesis is {0} bytes, over the {GENESIS_BYTES_MAX}-byte limit")]
    GenesisTooLarge(usize),
    /// A block length prefix is over [`FINALIZED_BLOCK_BYTES_MAX`].
    #[error("block {index} (height {}) is {len} bytes, over the {FINALIZED_BLOCK_BYTES_MAX}-byte limit", index + 1)]
    BlockTooLarge {
        /// Position in the export, from 0.
        index: u64,
        /// Its length prefix.
        len: usize,
    },
    /// Bytes after the last block.
    #[error("{0} trailing bytes after the last block")]
    TrailingBytes(usize),
    /// The genesis JSON is invalid.
    #[error("genesis in the export: {0}")]
    Genesis(GenesisError),
    /// A block's bytes do not decode.
    #[error("block {index} (height {}) does not decode: {error}", index + 1)]
    Block {
        /// Position in the export, from 0.
        index: u64,
        /// Why.
        error: DecodeError,
    },
}

/// A decoded export: the genesis JSON and each block's canonical bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainExport {
    /// The genesis file's bytes (JSON).
    pub genesis_json: Vec<u8>,
    /// Canonical [`FinalizedBlock`] bytes, height 1 first.
    pub blocks: Vec<Vec<u8>>,
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: impl FnOnce() -> String) -> Result<&'a [u8], ExportError> {
        let have = self.bytes.len() - self.pos;
        if n > have {
            return Err(ExportError::Truncated {
                what: what(),
                offset: self.pos,
                need: n,
                have,
            });
        }
        let s = &self.bytes[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn u32(&mut self, what: impl FnOnce() -> String) -> Result<u32, ExportError> {
        let b = self.take(4, what)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn u64(&mut self, what: impl FnOnce() -> String) -> Result<u64, ExportError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }
}

impl ChainExport {
    /// An export of `genesis` (as JSON) and `blocks` (height 1 first).
    pub fn new(genesis: &Genesis, blocks: &[FinalizedBlock]) -> Self {
        ChainExport {
            genesis_json: genesis.to_json().into_bytes(),
            blocks: blocks.iter().map(FinalizedBlock::to_bytes).collect(),
        }
    }

    /// The export's bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            24 + self.genesis_json.len() + self.blocks.iter().map(|b| b.len() + 4).sum::<usize>(),
        );
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&(self.genesis_json.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.genesis_json);
        out.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        for b in &self.blocks {
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(b);
        }
        out
    }

    /// Parses an export's framing, enforcing the size limits. Blocks are
    /// not decoded here (see [`ChainExport::block`]).
    pub fn decode(bytes: &[u8]) -> Result<Self, ExportError> {
        let mut c = Cursor { bytes, pos: 0 };
        if c.take(8, || "magic".into()).ok() != Some(&MAGIC[..]) {
            return Err(ExportError::BadMagic);
        }
        let version = c.u32(|| "version".into())?;
        if version != VERSION {
            return Err(ExportError::UnsupportedVersion(version));
        }
        let glen = c.u32(|| "genesis length".into())? as usize;
        if glen > GENESIS_BYTES_MAX {
            return Err(ExportError::GenesisTooLarge(glen));
        }
        let genesis_json = c.take(glen, || "genesis".into())?.to_vec();
        let count = c.u64(|| "block count".into())?;
        // No allocation from the untrusted count: grow as blocks arrive.
        let mut blocks = Vec::new();
        for index in 0..count {
            let len = c.u32(|| format!("length of block {index} (height {})", index + 1))? as usize;
            if len > FINALIZED_BLOCK_BYTES_MAX {
                return Err(ExportError::BlockTooLarge { index, len });
            }
            let b = c.take(len, || format!("block {index} (height {})", index + 1))?;
            blocks.push(b.to_vec());
        }
        let rest = bytes.len() - c.pos;
        if rest != 0 {
            return Err(ExportError::TrailingBytes(rest));
        }
        Ok(ChainExport {
            genesis_json,
            blocks,
        })
    }

    /// The genesis, parsed and validated.
    pub fn genesis(&self) -> Result<Genesis, ExportError> {
        Genesis::from_json(&self.genesis_json).map_err(ExportError::Genesis)
    }

    /// Decodes block `index` (0 = height 1). Panics if `index` is out of
    /// range (use [`ChainExport::blocks`]`.len()`).
    pub fn block(&self, index: usize) -> Result<FinalizedBlock, ExportError> {
        FinalizedBlock::from_bytes(&self.blocks[index]).map_err(|error| ExportError::Block {
            index: index as u64,
            error,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::tests::tiny_chain;

    #[test]
    fn round_trip() {
        let (genesis, blocks) = tiny_chain(3);
        let e = ChainExport::new(&genesis, &blocks);
        let bytes = e.encode();
        assert_eq!(&bytes[..8], b"PAEXPORT");
        assert_eq!(&bytes[8..12], &1u32.to_le_bytes());
        let d = ChainExport::decode(&bytes).unwrap();
        assert_eq!(d, e);
        assert_eq!(d.genesis().unwrap(), genesis);
        for (i, b) in blocks.iter().enumerate() {
            assert_eq!(&d.block(i).unwrap(), b);
        }
    }

    #[test]
    fn every_truncation_is_reported() {
        let (genesis, blocks) = tiny_chain(2);
        let bytes = ChainExport::new(&genesis, &blocks).encode();
        for cut in 0..bytes.len() {
            let err = ChainExport::decode(&bytes[..cut]).unwrap_err();
            match err {
                ExportError::Truncated {
                    offset, need, have, ..
                } => {
                    assert!(offset + have == cut && need > have, "cut {cut}: {err}")
                }
                ExportError::BadMagic => assert!(cut < 8),
                other => panic!("cut {cut}: unexpected {other}"),
            }
        }
        let err = ChainExport::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("block 1 (height 2)"), "{err}");
    }

    #[test]
    fn limits_and_framing() {
        let (genesis, blocks) = tiny_chain(1);
        let good = ChainExport::new(&genesis, &blocks).encode();
        let mut bad = good.clone();
        bad[0] = b'X';
        assert_eq!(ChainExport::decode(&bad), Err(ExportError::BadMagic));
        let mut bad = good.clone();
        bad[8] = 2;
        assert_eq!(
            ChainExport::decode(&bad),
            Err(ExportError::UnsupportedVersion(2))
        );
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&((GENESIS_BYTES_MAX + 1) as u32).to_le_bytes());
        assert_eq!(
            ChainExport::decode(&bad),
            Err(ExportError::GenesisTooLarge(GENESIS_BYTES_MAX + 1))
        );
        let glen = u32::from_le_bytes([good[12], good[13], good[14], good[15]]) as usize;
        let first = 16 + glen + 8;
        let mut bad = good.clone();
        bad[first..first + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(
            ChainExport::decode(&bad),
            Err(ExportError::BlockTooLarge { index: 0, .. })
        ));
        let mut bad = good.clone();
        bad.push(0);
        assert_eq!(
            ChainExport::decode(&bad),
            Err(ExportError::TrailingBytes(1))
        );
        // A huge block count with no blocks is a truncation, not an allocation.
        let mut bad = good[..first - 8].to_vec();
        bad.extend_from_slice(&u64::MAX.to_le_bytes());
        assert!(matches!(
            ChainExport::decode(&bad),
            Err(ExportError::Truncated { .. })
        ));
        // A block whose bytes do not decode is reported with its position.
        let mut e = ChainExport::decode(&good).unwrap();
        e.blocks[0].truncate(10);
        let e = ChainExport::decode(&e.encode()).unwrap();
        assert!(matches!(
            e.block(0),
            Err(ExportError::Block { index: 0, .. })
        ));
    }
}
