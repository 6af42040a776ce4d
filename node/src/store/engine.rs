//! The storage engines a store can be opened on, by name: the node's sled
//! configuration, sled variants, and the candidates of issue #14 (redb,
//! fjall, LMDB). The node opens [`Engine::default`] (sled as configured
//! since the beginning); the others exist to be measured side by side
//! (`alliance-bench store`, docs/dependencies.md).

use std::path::Path;
use std::time::{Duration, Instant};

use super::kv::{Kv, KvError, MemKv, SledKv};
use super::kv_fjall::FjallKv;
use super::kv_lmdb::LmdbKv;
use super::kv_redb::RedbKv;
use super::StoreError;

/// The cache given to engines whose cache is configurable, in the
/// candidates' configurations: small, so that a node's memory is its data
/// structures and not a cache sized to the machine.
pub const CANDIDATE_CACHE_BYTES: u64 = 64 << 20;
/// sled's own default cache, the node's configuration.
const SLED_DEFAULT_CACHE_BYTES: u64 = 1 << 30;
/// How long opening waits for a lock that another handle is releasing.
const LOCK_WAIT: Duration = Duration::from_secs(3);

/// A storage engine and its configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Engine {
    /// sled 0.34 (`mode` is always sled's default, `LowSpace`, unless
    /// `high_throughput`).
    Sled {
        /// sled's `cache_capacity`.
        cache_bytes: u64,
        /// sled's background flush period (`None`: only explicit flushes).
        flush_every_ms: Option<u64>,
        /// `Mode::HighThroughput` instead of `Mode::LowSpace`.
        high_throughput: bool,
    },
    /// redb ([`RedbKv`]).
    Redb,
    /// fjall ([`FjallKv`]).
    Fjall,
    /// LMDB through heed ([`LmdbKv`]).
    Lmdb,
    /// Everything in memory ([`MemKv`]): a baseline, nothing is on disk.
    Mem,
}

impl Default for Engine {
    /// The node's engine: sled with explicit flushes only and its default
    /// cache and mode.
    fn default() -> Engine {
        Engine::Sled {
            cache_bytes: SLED_DEFAULT_CACHE_BYTES,
            flush_every_ms: None,
            high_throughput: false,
        }
    }
}

impl Engine {
    /// Every name [`Engine::from_name`] knows, with what it is.
    pub const NAMES: &'static [(&'static str, &'static str)] = &[
        (
            "sled",
            "the node's sled: 1 GiB cache, LowSpace, flushes only on commit and vote",
        ),
        ("sled-cache64m", "sled with cache_capacity 64 MiB"),
        (
            "sled-cache64m-flush500",
            "sled with cache_capacity 64 MiB and flush_every_ms 500",
        ),
        (
            "sled-throughput",
            "sled with cache_capacity 64 MiB and Mode::HighThroughput",
        ),
        (
            "redb",
            "redb 4, 64 MiB cache, Durability::None per batch, Immediate at flush",
        ),
        (
            "fjall",
            "fjall 3, 64 MiB block cache, journal fsync at flush",
        ),
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
            "sled" => Engine::default(),
            "sled-cache64m" => sled(CANDIDATE_CACHE_BYTES, None, false),
            "sled-flush500" => sled(SLED_DEFAULT_CACHE_BYTES, Some(500), false),
            "sled-cache64m-flush500" => sled(CANDIDATE_CACHE_BYTES, Some(500), false),
            "sled-throughput" => sled(CANDIDATE_CACHE_BYTES, None, true),
            "redb" => Engine::Redb,
            "fjall" => Engine::Fjall,
            "lmdb" => Engine::Lmdb,
            "mem" => Engine::Mem,
            _ => return None,
        })
    }

    /// Opens (or creates) this engine's data in directory `path`.
    pub fn open(self, path: &Path) -> Result<Box<dyn Kv>, StoreError> {
        Ok(match self {
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
            Engine::Redb => Box::new(RedbKv::open(
                &path.join("store.redb"),
                CANDIDATE_CACHE_BYTES as usize,
            )?),
            Engine::Fjall => Box::new(FjallKv::open(path, CANDIDATE_CACHE_BYTES)?),
            Engine::Lmdb => Box::new(LmdbKv::open(path)?),
            Engine::Mem => Box::new(MemKv::new()),
        })
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
