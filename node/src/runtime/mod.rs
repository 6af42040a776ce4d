//! The running node: one driver that owns the consensus core and feeds it
//! network messages, timers and the application's verdicts, and carries out
//! what it returns (persist, send, build, verify, fetch, commit). The HTTP
//! API runs beside it and shares the chain and mempool through [`Shared`].
//!
//! - [`io`]: the driver's ports ([`Net`], [`Clock`]) and its [`Event`]s.
//! - [`driver`]: [`Driver`], generic over those ports, synchronous: the
//!   deterministic simulation runs it as it is.
//! - [`node`]: the real node's wiring: libp2p, tokio timers and the select
//!   loop around the driver.
//! - [`shared`]: what the API reads, and transaction admission.
//!
//! Control flow lives here; decisions live in the pure cores
//! (`alliance_consensus::Core`, `alliance_protocol::state`), in
//! [`crate::sync`], and in [`crate::chain::Chain`] and
//! [`crate::mempool::Mempool`].

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub mod driver;
pub mod gossip_out;
pub mod io;
pub mod node;
pub mod shared;

pub use driver::Driver;
pub use io::{Clock, Event, Net};
pub use node::Node;
pub use shared::GOSSIP_BATCH_TXS_MAX;
pub use shared::{decode_gossip, gossip_batches, NodeStatus, Shared, SubmitError};

/// A node this many heights behind a peer syncs in bulk instead of waiting
/// for consensus to fetch blocks one by one.
const SYNC_GAP_MIN: u64 = 3;
/// How often a node asks a peer for its tip.
const SYNC_POLL: Duration = Duration::from_millis(1_000);
/// Driver tick: checks pending proposals and sync.
pub const TICK: Duration = Duration::from_millis(20);

/// Milliseconds since the Unix epoch: the real node's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
