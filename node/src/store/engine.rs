//! The storage engines a store can be opened on.
//!
//! The node's engine is fjall ([`Engine::default`]): measured side by side
//! with redb, sled and LMDB under the node's own write and read pattern, and
//! on a 60 M-entry state, it is the one whose write cost and memory stay flat
//! as the store grows (docs/dependencies.md, issue #14). redb and sled stay
//! selectable so that a data directory made by an earlier version still
//! opens, and can be migrated ([`migrate`]). LMDB is built only with the
//! `extra-engines` feature, for `alliance-bench store` to measure it again.
//!
//! A data directory holds one engine's files, and the engine is detected
//! from them ([`StoreKind::detect`]); asking for another engine than the one
//! a directory holds is refused ([`StoreError::EngineMismatch`]), never
//! answered with an empty chain beside the real one.

use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::kv::{scan_prefix, Batch, Kv, KvError, MemKv, SledKv};
use super::kv_fjall::FjallKv;
#[cfg(feature = "extra-engines")]
use super::kv_lmdb::LmdbKv;
use super::kv_redb::RedbKv;
use super::StoreError;

/// The node's default memory budget (`memory_budget_mib` of config.toml),
/// of which each engine takes a share for its cache
/// ([`StoreKind::cache_bytes`]).
pub const DEFAULT_MEMORY_BUDGET_BYTES: u64 = 1 << 30;
/// A B-tree engine's page cache at the default budget (a quarter of it).
pub const DEFAULT_CACHE_BYTES: u64 = DEFAULT_MEMORY_BUDGET_BYTES / 4;
/// The cache the engines got in the side-by-side benchmark of issue #14
/// (`alliance-bench store`): the `-cache64m` redb and sled variants.
const COMPARISON_CACHE_BYTES: u64 = 64 << 20;
/// sled's own default cache, sled's configuration in the node until
/// issue #14.
const SLED_DEFAULT_CACHE_BYTES: u64 = 1 << 30;
/// How long opening waits for a lock that another handle is releasing.
const LOCK_WAIT: Duration = Duration::from_secs(3);
/// The file redb keeps in a data directory.
const REDB_FILE: &str = "store.redb";
/// A file sled 0.34 always creates in its directory.
const SLED_MARKER: &str = "conf";
/// The file fjall 3 keeps its format version in, and its directory of
/// keyspaces.
const FJALL_MARKERS: (&str, &str) = ("version", "keyspaces");

/// The engines a node's data directory can hold (the `store_engine`
/// setting of config.toml).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StoreKind {
    /// fjall: the default for new data directories.
    Fjall,
    /// redb: data directories made between issue #14's first engine change
    /// and the move to fjall.
    Redb,
    /// sled: data directories made before issue #14.
    Sled,
}

impl StoreKind {
    /// The engine whose files `dir` holds, if any.
    pub fn detect(dir: &Path) -> Option<StoreKind> {
        if dir.join(FJALL_MARKERS.0).is_file() && dir.join(FJALL_MARKERS.1).is_dir() {
            Some(StoreKind::Fjall)
        } else if dir.join(REDB_FILE).is_file() {
            Some(StoreKind::Redb)
        } else if dir.join(SLED_MARKER).is_file() {
            Some(StoreKind::Sled)
        } else {
            None
        }
    }

    /// The setting's spelling.
    pub fn name(self) -> &'static str {
        match self {
            StoreKind::Fjall => "fjall",
            StoreKind::Redb => "redb",
            StoreKind::Sled => "sled",
        }
    }

    /// The cache this engine gets out of a memory budget of `budget_bytes`.
    ///
    /// - fjall: a sixteenth (64 MiB of 1 GiB). Its reads on a large state
    ///   miss a cache of any size this budget allows (on 60 M entries a
    ///   256 MiB cache made a block 6 % faster than 64 MiB), while a cache
    ///   fills with blocks of tables compaction has already replaced, and
    ///   the time it takes to fill is time the node's memory keeps growing
    ///   (docs/benchmarks.md, the 30-minute runs).
    /// - redb, sled: a quarter. A B-tree engine's hot pages (an index page
    ///   per active account) must fit: at a sixteenth, 20,000 active
    ///   accounts already missed.
    pub fn cache_bytes(self, budget_bytes: u64) -> u64 {
        match self {
            StoreKind::Fjall => budget_bytes / 16,
            StoreKind::Redb | StoreKind::Sled => budget_bytes / 4,
        }
    }

    /// The engine of this kind with its share of a memory budget of
    /// `budget_bytes` ([`StoreKind::cache_bytes`]).
    pub fn engine_for_budget(self, budget_bytes: u64) -> Engine {
        self.engine(self.cache_bytes(budget_bytes))
    }

    /// The engine of this kind with a cache of `cache_bytes`.
    pub fn engine(self, cache_bytes: u64) -> Engine {
        match self {
            StoreKind::Fjall => Engine::Fjall { cache_bytes },
            StoreKind::Redb => Engine::Redb { cache_bytes },
            StoreKind::Sled => Engine::Sled {
                cache_bytes,
                flush_every_ms: None,
                high_throughput: false,
            },
        }
    }
}

impl std::fmt::Display for StoreKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for StoreKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fjall" => Ok(StoreKind::Fjall),
            "redb" => Ok(StoreKind::Redb),
            "sled" => Ok(StoreKind::Sled),
            other => Err(format!(
                "unknown store engine `{other}`: use `fjall` (the default), `redb` or `sled`"
            )),
        }
    }
}

/// A storage engine and its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// fjall ([`FjallKv`]): the node's engine.
    Fjall {
        /// fjall's block cache.
        cache_bytes: u64,
    },
    /// redb ([`RedbKv`]).
    Redb {
        /// redb's page cache.
        cache_bytes: u64,
    },
    /// sled 0.34 (`mode` is sled's default, `LowSpace`, unless
    /// `high_throughput`).
    Sled {
        /// sled's `cache_capacity`.
        cache_bytes: u64,
        /// sled's background flush period (`None`: only explicit flushes).
        flush_every_ms: Option<u64>,
        /// `Mode::HighThroughput` instead of `Mode::LowSpace`.
        high_throughput: bool,
    },
    /// LMDB through heed ([`LmdbKv`]), measured only.
    #[cfg(feature = "extra-engines")]
    Lmdb,
    /// Everything in memory ([`MemKv`]): a baseline, nothing is on disk.
    Mem,
}

impl Default for Engine {
    /// The node's engine at the default memory budget: fjall with a 64 MiB
    /// block cache.
    fn default() -> Engine {
        StoreKind::Fjall.engine_for_budget(DEFAULT_MEMORY_BUDGET_BYTES)
    }
}

impl Engine {
    /// Every name [`Engine::from_name`] knows, with what it is.
    pub const NAMES: &'static [(&'static str, &'static str)] = &[
        (
            "fjall",
            "the node's engine: fjall 3, 64 MiB block cache, 32 MiB memtables, journal fsync at flush",
        ),
        (
            "fjall-cache256m",
            "fjall with a 256 MiB block cache (a quarter of the default budget, as redb gets)",
        ),
        (
            "redb",
            "redb 4, 256 MiB cache, Durability::None per batch, Immediate at flush or with the batch",
        ),
        (
            "redb-cache64m",
            "redb with a 64 MiB cache, as in the side-by-side comparison of issue #14",
        ),
        (
            "sled",
            "sled as the node had it before issue #14: 1 GiB cache, LowSpace, flushes only on commit and vote",
        ),
        ("sled-cache64m", "sled with cache_capacity 64 MiB"),
        (
            "sled-flush500",
            "sled with its own defaults: 1 GiB cache, flush_every_ms 500",
        ),
        (
            "sled-cache64m-flush500",
            "sled with cache_capacity 64 MiB and flush_every_ms 500",
        ),
        (
            "sled-throughput",
            "sled with cache_capacity 64 MiB and Mode::HighThroughput",
        ),
        #[cfg(feature = "extra-engines")]
        (
            "lmdb",
            "LMDB through heed 0.22, batches committed together at flush",
        ),
        ("mem", "in memory (MemKv): a baseline, nothing on disk"),
    ];

    /// The engine called `name` (see [`Engine::NAMES`]).
    pub fn from_name(name: &str) -> Option<Engine> {
        let sled = |cache_bytes, flush_every_ms, high_throughput| Engine::Sled {
            cache_bytes,
            flush_every_ms,
            high_throughput,
        };
        Some(match name {
            "fjall" => Engine::default(),
            "fjall-cache256m" => StoreKind::Fjall.engine(DEFAULT_CACHE_BYTES),
            "redb" => StoreKind::Redb.engine(DEFAULT_CACHE_BYTES),
            "redb-cache64m" => StoreKind::Redb.engine(COMPARISON_CACHE_BYTES),
            "sled" => StoreKind::Sled.engine(SLED_DEFAULT_CACHE_BYTES),
            "sled-cache64m" => sled(COMPARISON_CACHE_BYTES, None, false),
            "sled-flush500" => sled(SLED_DEFAULT_CACHE_BYTES, Some(500), false),
            "sled-cache64m-flush500" => sled(COMPARISON_CACHE_BYTES, Some(500), false),
            "sled-throughput" => sled(COMPARISON_CACHE_BYTES, None, true),
            #[cfg(feature = "extra-engines")]
            "lmdb" => Engine::Lmdb,
            "mem" => Engine::Mem,
            _ => return None,
        })
    }

    /// The engine to open data directory `dir` on: the one whose files it
    /// holds, else `wanted`, else fjall, with its share of a memory budget
    /// of `budget_bytes`. Refused when `dir` holds another engine's files
    /// than `wanted`.
    pub fn for_dir(
        dir: &Path,
        wanted: Option<StoreKind>,
        budget_bytes: u64,
    ) -> Result<Engine, StoreError> {
        let kind = match (StoreKind::detect(dir), wanted) {
            (Some(found), Some(wanted)) if found != wanted => {
                return Err(StoreError::EngineMismatch {
                    dir: dir.display().to_string(),
                    found,
                    wanted,
                })
            }
            (Some(found), _) => found,
            (None, wanted) => wanted.unwrap_or(StoreKind::Fjall),
        };
        Ok(kind.engine_for_budget(budget_bytes))
    }

    /// Opens (or creates) this engine's data in directory `path`.
    pub fn open(self, path: &Path) -> Result<Box<dyn Kv>, StoreError> {
        Ok(match self {
            Engine::Fjall { cache_bytes } => {
                Box::new(open_waiting(path, || FjallKv::open(path, cache_bytes))?)
            }
            Engine::Redb { cache_bytes } => Box::new(open_waiting(path, || {
                RedbKv::open(&path.join(REDB_FILE), cache_bytes as usize)
            })?),
            Engine::Sled {
                cache_bytes,
                flush_every_ms,
                high_throughput,
            } => {
                let mode = if high_throughput {
                    sled::Mode::HighThroughput
                } else {
                    sled::Mode::LowSpace
                };
                let config = sled::Config::new()
                    .path(path)
                    .cache_capacity(cache_bytes)
                    .mode(mode)
                    .flush_every_ms(flush_every_ms);
                Box::new(open_sled(&config, path)?)
            }
            #[cfg(feature = "extra-engines")]
            Engine::Lmdb => Box::new(LmdbKv::open(path)?),
            Engine::Mem => Box::new(MemKv::new()),
        })
    }
}

/// Opens an engine's data in `dir` with `open`, waiting briefly for a
/// handle (in tests, a just-dropped one) that holds it to let it go.
fn open_waiting<K>(dir: &Path, open: impl Fn() -> Result<K, KvError>) -> Result<K, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match open() {
            Err(KvError::InUse) if Instant::now() <= deadline => {
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(KvError::InUse) => return Err(StoreError::InUse(dir.display().to_string())),
            other => return Ok(other?),
        }
    }
}

/// Opens sled, waiting briefly for a lock that a process (or, in tests, a
/// just-dropped handle) is releasing.
fn open_sled(config: &sled::Config, path: &Path) -> Result<SledKv, StoreError> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match config.open() {
            Ok(db) => return Ok(SledKv::from_db(db)),
            Err(sled::Error::Io(e)) if e.to_string().contains("could not acquire lock") => {
                if Instant::now() > deadline {
                    return Err(StoreError::InUse(path.display().to_string()));
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => return Err(KvError::from(e).into()),
        }
    }
}

/// Writes per batch while copying a store.
const COPY_BATCH: usize = 10_000;

/// Copies every key of `from` into `to` (which should be empty), in
/// batches, and makes it durable. Returns the number of keys copied.
pub fn copy_all(from: &dyn Kv, to: &dyn Kv) -> Result<u64, KvError> {
    let mut batch = Batch::default();
    let mut copied = 0u64;
    for entry in scan_prefix(from, &[]) {
        let (k, v) = entry?;
        batch.put(k, v);
        copied += 1;
        if batch.0.len() >= COPY_BATCH {
            to.apply(std::mem::take(&mut batch))?;
        }
    }
    if !batch.is_empty() {
        to.apply(batch)?;
    }
    to.flush()?;
    Ok(copied)
}

/// Moves the store in data directory `dir` to engine `to`: copies every key
/// into `dir`.new, checks the count, then renames `dir` to `dir`.KIND-backup
/// and `dir`.new to `dir`. Nothing is deleted: the backup is left for the
/// operator. Returns the number of keys and the backup's path.
pub fn migrate(dir: &Path, to: StoreKind) -> Result<(u64, std::path::PathBuf), StoreError> {
    let from = StoreKind::detect(dir).ok_or_else(|| {
        StoreError::Corrupt(format!("{} holds no store to migrate", dir.display()))
    })?;
    if from == to {
        return Err(StoreError::Corrupt(format!(
            "{} already holds a {to} store",
            dir.display()
        )));
    }
    let with_suffix = |suffix: &str| {
        let mut name = dir.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    };
    let (new_dir, backup) = (with_suffix(".new"), with_suffix(&format!(".{from}-backup")));
    for p in [&new_dir, &backup] {
        if p.exists() {
            return Err(StoreError::Corrupt(format!(
                "{} exists: move it away before migrating",
                p.display()
            )));
        }
    }
    let copied = {
        let src = from
            .engine_for_budget(DEFAULT_MEMORY_BUDGET_BYTES)
            .open(dir)?;
        let dst = to
            .engine_for_budget(DEFAULT_MEMORY_BUDGET_BYTES)
            .open(&new_dir)?;
        let copied = copy_all(src.as_ref(), dst.as_ref())?;
        let recount = scan_prefix(dst.as_ref(), &[]).count() as u64;
        if recount != copied {
            return Err(StoreError::Corrupt(format!(
                "migration copied {copied} keys but {} holds {recount}",
                new_dir.display()
            )));
        }
        copied
    };
    std::fs::rename(dir, &backup).map_err(KvError::Io)?;
    std::fs::rename(&new_dir, dir).map_err(KvError::Io)?;
    Ok((copied, backup))
}

#[cfg(test)]
mod tests {
    use alliance_protocol::fixtures::demo_genesis;

    use super::*;
    use crate::store::Store;
    use crate::synth::Synth;

    /// A sled store with a few committed blocks; returns its state root.
    fn sled_store_with_blocks(
        dir: &Path,
        genesis: &alliance_protocol::genesis::Genesis,
    ) -> [u8; 32] {
        let engine = StoreKind::Sled.engine(DEFAULT_CACHE_BYTES);
        let (mut store, mut state) = Store::open_with(dir, genesis, engine).unwrap();
        let synth = Synth::new(&genesis.chain_id, 4, 20);
        for _ in 0..5 {
            let (fb, exec) = synth.next_block(&state, 30, genesis.genesis_time_ms);
            store.commit(exec, &fb, &mut state).unwrap();
        }
        state.state_root().0
    }

    #[test]
    fn a_new_directory_gets_fjall_and_an_old_one_keeps_its_engine() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("engine-test", 4, 1_700_000_000_000);
        let fresh = dir.path().join("fresh");
        assert_eq!(StoreKind::detect(&fresh), None);
        drop(Store::open(&fresh, &genesis).unwrap());
        assert_eq!(StoreKind::detect(&fresh), Some(StoreKind::Fjall));

        let old = dir.path().join("old");
        let root = sled_store_with_blocks(&old, &genesis);
        assert_eq!(StoreKind::detect(&old), Some(StoreKind::Sled));
        // Opened without a choice, the sled store opens as sled, whole.
        let (store, state) = Store::open(&old, &genesis).unwrap();
        assert_eq!((store.tip().height, state.state_root().0), (5, root));
        drop((store, state));
        // Asking for fjall on it is refused, naming both engines; nothing is
        // created beside it.
        let err =
            Engine::for_dir(&old, Some(StoreKind::Fjall), DEFAULT_MEMORY_BUDGET_BYTES).unwrap_err();
        assert!(
            matches!(
                err,
                StoreError::EngineMismatch {
                    found: StoreKind::Sled,
                    wanted: StoreKind::Fjall,
                    ..
                }
            ),
            "{err}"
        );
        assert!(
            err.to_string().contains("migrate-store --to fjall"),
            "{err}"
        );
        assert_eq!(StoreKind::detect(&old), Some(StoreKind::Sled));
        assert!(!old.join(FJALL_MARKERS.1).exists());
    }

    #[test]
    fn migrating_sled_to_redb_to_fjall_keeps_every_key_and_the_tip() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, _) = demo_genesis("engine-test", 4, 1_700_000_000_000);
        let db = dir.path().join("db");
        let root = sled_store_with_blocks(&db, &genesis);
        let keys_of = |kind: StoreKind| {
            let kv = kind.engine(DEFAULT_CACHE_BYTES).open(&db).unwrap();
            scan_prefix(kv.as_ref(), &[])
                .map(Result::unwrap)
                .collect::<Vec<_>>()
        };
        let keys_before = keys_of(StoreKind::Sled);
        for (from, to) in [
            (StoreKind::Sled, StoreKind::Redb),
            (StoreKind::Redb, StoreKind::Fjall),
        ] {
            let (copied, backup) = migrate(&db, to).unwrap();
            assert_eq!(copied, keys_before.len() as u64);
            assert_eq!(StoreKind::detect(&db), Some(to));
            assert_eq!(StoreKind::detect(&backup), Some(from));
            assert_eq!(keys_of(to), keys_before);
            let (store, state) = Store::open(&db, &genesis).unwrap();
            assert_eq!((store.tip().height, state.state_root().0), (5, root));
            // A second migration to the same engine is refused.
            drop((store, state));
            assert!(migrate(&db, to).is_err());
        }
    }

    #[test]
    fn a_store_open_elsewhere_is_in_use() {
        for kind in [StoreKind::Fjall, StoreKind::Redb] {
            let dir = tempfile::tempdir().unwrap();
            let engine = kind.engine(DEFAULT_CACHE_BYTES);
            let first = engine.open(dir.path()).unwrap();
            match engine.open(dir.path()) {
                Err(StoreError::InUse(_)) => {}
                Err(e) => panic!("{kind}: expected InUse, got {e}"),
                Ok(_) => panic!("{kind}: a second handle opened the same store"),
            }
            drop(first);
            engine.open(dir.path()).unwrap();
        }
    }
}
