//! Writing a node's store as a chain export (format:
//! [`alliance_protocol::export`], docs/audit.md): the genesis and every
//! finalized block, for `alliance audit --export`.

use std::io::Write;
use std::path::Path;

use alliance_protocol::export::{ChainExport, MAGIC, VERSION};
use alliance_protocol::genesis::Genesis;

use crate::store::{Store, StoreError};

/// Why an export could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ExportWriteError {
    /// The output file exists: exports are never overwritten.
    #[error("{0} already exists; refusing to overwrite it")]
    Exists(String),
    /// Reading the store failed.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A block below the tip is missing from the store.
    #[error("block {0} is missing from the store")]
    MissingBlock(u64),
    /// Writing the file failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The output path.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Builds the export of `store` in memory (tests and small chains).
pub fn export_chain(store: &Store, genesis: &Genesis) -> Result<ChainExport, ExportWriteError> {
    let mut blocks = Vec::new();
    for h in 1..=store.tip().height {
        let fb = store.block(h)?.ok_or(ExportWriteError::MissingBlock(h))?;
        blocks.push(fb.to_bytes());
    }
    Ok(ChainExport {
        genesis_json: genesis.to_json().into_bytes(),
        blocks,
    })
}

/// Streams the export of `store` to a new file at `out` (never overwrites),
/// block by block, and fsyncs it. Returns the number of blocks written.
pub fn write_export(store: &Store, genesis: &Genesis, out: &Path) -> Result<u64, ExportWriteError> {
    let io = |source| ExportWriteError::Io {
        path: out.display().to_string(),
        source,
    };
    let file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(out)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                ExportWriteError::Exists(out.display().to_string())
            } else {
                io(e)
            }
        })?;
    let mut w = std::io::BufWriter::new(file);
    let genesis_json = genesis.to_json().into_bytes();
    let count = store.tip().height;
    w.write_all(MAGIC).map_err(io)?;
    w.write_all(&VERSION.to_le_bytes()).map_err(io)?;
    w.write_all(&(genesis_json.len() as u32).to_le_bytes())
        .map_err(io)?;
    w.write_all(&genesis_json).map_err(io)?;
    w.write_all(&count.to_le_bytes()).map_err(io)?;
    for h in 1..=count {
        let fb = store.block(h)?.ok_or(ExportWriteError::MissingBlock(h))?;
        let bytes = fb.to_bytes();
        w.write_all(&(bytes.len() as u32).to_le_bytes())
            .map_err(io)?;
        w.write_all(&bytes).map_err(io)?;
    }
    let file = w.into_inner().map_err(|e| io(e.into_error()))?;
    file.sync_all().map_err(io)?;
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::Synth;
    use alliance_protocol::audit::Auditor;
    use alliance_protocol::fixtures::demo_genesis;
    use alliance_protocol::state::verify_signatures;

    #[test]
    fn streamed_export_equals_in_memory_export_and_audits() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("export-test", 4, 1_700_000_000_000);
        let (mut store, mut state) = Store::open(&dir.path().join("db"), &genesis).unwrap();
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        for _ in 0..5 {
            let (fb, exec) = synth.next_block(&state, 30, genesis.genesis_time_ms);
            store.commit(exec, &fb, &mut state).unwrap();
        }
        let out = dir.path().join("chain.paexport");
        assert_eq!(write_export(&store, &genesis, &out).unwrap(), 5);
        let bytes = std::fs::read(&out).unwrap();
        assert_eq!(bytes, export_chain(&store, &genesis).unwrap().encode());
        assert!(matches!(
            write_export(&store, &genesis, &out),
            Err(ExportWriteError::Exists(_))
        ));
        let e = ChainExport::decode(&bytes).unwrap();
        let mut a = Auditor::new(&e.genesis().unwrap());
        for i in 0..e.blocks.len() {
            let fb = e.block(i).unwrap();
            a.check_block(&fb, &verify_signatures(&fb.block.txs))
                .unwrap();
        }
        assert_eq!(a.finish().unwrap().state_root, state.state_root().to_hex());
    }
}
