//! Named upper bounds of the network layer. Every queue, frame, map and
//! timer of `crate::network` is bounded by one of these; [`NetworkLimits`]
//! gathers the ones a deployment (or a test) may tune, with these constants as
//! defaults.

use std::time::Duration;

use alliance_protocol::limits::{BLOCK_BYTES_MAX, TX_BYTES_MAX};

/// Room for what travels with a block but is not part of
/// [`BLOCK_BYTES_MAX`]: the certificate (at most 256 votes of roughly 100
/// bytes) and the consensus message framing around the block.
pub const BLOCK_ENVELOPE_BYTES: usize = 64 * 1024;

/// Largest transaction gossip payload. Nodes gossip the transactions they
/// admit in batches (one gossip message per submission, not per
/// transaction: under load, one message per transaction filled the
/// per-peer queues and starved consensus); each transaction is at most
/// [`TX_BYTES_MAX`] bytes. The network does not decode the payload, it only
/// refuses to carry anything larger.
pub const TX_GOSSIP_BYTES_MAX: usize = 256 * TX_BYTES_MAX;

/// Largest consensus gossip payload: consensus messages carry whole
/// proposals, so one block plus its envelope.
pub const CONSENSUS_GOSSIP_BYTES_MAX: usize = BLOCK_BYTES_MAX + BLOCK_ENVELOPE_BYTES;

/// What gossipsub adds around a payload inside one message (author peer id,
/// sequence number, topic name, ed25519 signature: about 200 bytes). The
/// per-topic wire limit is payload limit + this.
pub const GOSSIP_ENVELOPE_BYTES: usize = 1024;

/// Largest gossipsub RPC frame accepted from a peer. One RPC carries at most
/// one consensus message plus control traffic; anything bigger is refused by
/// the gossipsub codec before it is decoded.
pub const GOSSIP_RPC_BYTES_MAX: usize = CONSENSUS_GOSSIP_BYTES_MAX + 64 * 1024;

/// Messages per gossipsub RPC. Honest peers batch a handful; the default of
/// 5000 only helps a flooder.
pub const GOSSIP_MESSAGES_PER_RPC_MAX: usize = 256;

/// Outbound gossipsub queue per connection (messages). Consensus messages can
/// be megabytes, so the library default of 5000 could hold gigabytes for one
/// slow peer; stale entries are also dropped by gossipsub after a few
/// seconds.
pub const GOSSIP_PEER_QUEUE_LEN: usize = 512;

/// Gossipsub heartbeat: mesh maintenance, IHAVE gossip and score decay run
/// once per heartbeat.
pub const GOSSIP_HEARTBEAT: Duration = Duration::from_secs(1);

/// How long message ids are remembered for de-duplication. Two minutes
/// covers many consensus views and any realistic re-broadcast of a
/// transaction.
pub const GOSSIP_DUPLICATE_CACHE: Duration = Duration::from_secs(120);

/// Largest block sync request frame. Requests are a tag and two integers;
/// anything close to this is garbage.
pub const SYNC_REQUEST_BYTES_MAX: usize = 1024;

/// Largest block sync response frame. It must hold at least one block of
/// [`BLOCK_BYTES_MAX`] with its certificate, so that any finalized block can
/// be synced; responders send fewer blocks rather than exceed it.
pub const SYNC_RESPONSE_BYTES_MAX: usize = BLOCK_BYTES_MAX + BLOCK_ENVELOPE_BYTES;

/// Most blocks asked for or returned in one response. Larger requests are
/// capped (by the requester before sending and by the responder on receipt).
pub const SYNC_BLOCKS_PER_REQUEST_MAX: u32 = 256;

/// A sync request that has no complete response after this fails with
/// [`super::SyncError::Timeout`]; also how long the node has to answer an
/// inbound request before the stream is closed.
pub const SYNC_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Outbound sync requests in flight at once (all peers). With responses of up
/// to [`SYNC_RESPONSE_BYTES_MAX`], this bounds buffered sync data to about
/// 130 MiB.
pub const SYNC_PENDING_REQUESTS_MAX: usize = 8;

/// Concurrent request-response streams per connection (inbound + outbound).
pub const SYNC_STREAMS_PER_CONNECTION_MAX: usize = 16;

/// Commands queued from handles to the network task. Senders wait when it
/// is full: back-pressure on the node, not memory growth.
pub const COMMAND_QUEUE_LEN: usize = 256;

/// Events queued from the network task to the node. When it is full, gossip
/// is dropped (and counted, and reported `Ignore` to gossipsub), sync
/// requests are refused with `Busy`.
pub const EVENT_QUEUE_LEN: usize = 1024;

/// Peer and listener events waiting for room in the event queue. They are
/// rare (one per connection change); past this the oldest are dropped and
/// counted, and `NetworkHandle::peers` stays the source of truth.
pub const CONTROL_BACKLOG_MAX: usize = 1024;

/// Established connections in total. The alliance has at most
/// [`alliance_protocol::limits::MERCHANTS_MAX`] merchants; the rest is room
/// for auditors and full nodes.
pub const CONNECTIONS_MAX: u32 = 512;

/// Connections per peer: two allows a simultaneous dial in both directions.
pub const CONNECTIONS_PER_PEER_MAX: u32 = 2;

/// Connections being set up (handshake) at once, inbound.
pub const PENDING_INBOUND_CONNECTIONS_MAX: u32 = 64;

/// A connection with no protocol keeping it alive is closed after this.
/// Alliance peers are few and long-lived, so keep connections for auditors
/// that only sync now and then.
pub const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(600);

/// First redial delay of a bootstrap address after a failure or disconnect;
/// doubled on every failure up to [`BOOTSTRAP_BACKOFF_MAX`].
pub const BOOTSTRAP_BACKOFF_MIN: Duration = Duration::from_millis(500);

/// Longest wait between two dials of one bootstrap address.
pub const BOOTSTRAP_BACKOFF_MAX: Duration = Duration::from_secs(60);

/// Housekeeping period of the network task: bootstrap redials, expired bans,
/// gossip score checks.
pub const MAINTENANCE_INTERVAL: Duration = Duration::from_millis(500);

/// Misbehaviour points at which a peer is disconnected and banned.
pub const BAN_THRESHOLD_POINTS: u32 = 100;

/// Misbehaviour points forgiven per minute, so that a peer which failed once
/// in a while (a timeout on a bad link) is never banned for it.
pub const MISBEHAVIOUR_DECAY_POINTS_PER_MINUTE: u32 = 10;

/// How long a banned peer may not connect.
pub const BAN_DURATION: Duration = Duration::from_secs(600);

/// Peers on the ban list at once; when full, the ban closest to its end is
/// lifted early.
pub const BAN_LIST_MAX: usize = 1024;

/// Peers with a misbehaviour score remembered at once; when full, the one
/// with the lowest score is forgotten.
pub const SCORED_PEERS_MAX: usize = 4096;

/// The tunable limits of one network instance. `Default` gives the named
/// constants of this module; tests shrink some of them.
#[derive(Debug, Clone)]
pub struct NetworkLimits {
    /// Largest transaction payload carried (default [`TX_GOSSIP_BYTES_MAX`]).
    pub tx_gossip_bytes_max: usize,
    /// Largest consensus payload carried (default
    /// [`CONSENSUS_GOSSIP_BYTES_MAX`]).
    pub consensus_gossip_bytes_max: usize,
    /// Largest sync request frame read (default [`SYNC_REQUEST_BYTES_MAX`]).
    pub sync_request_bytes_max: usize,
    /// Largest sync response frame read or written (default
    /// [`SYNC_RESPONSE_BYTES_MAX`]).
    pub sync_response_bytes_max: usize,
    /// Most blocks per sync response (default [`SYNC_BLOCKS_PER_REQUEST_MAX`]).
    pub sync_blocks_per_request_max: u32,
    /// Sync request timeout (default [`SYNC_REQUEST_TIMEOUT`]).
    pub sync_request_timeout: Duration,
    /// Outbound sync requests in flight (default [`SYNC_PENDING_REQUESTS_MAX`]).
    pub sync_pending_requests_max: usize,
    /// Command queue length (default [`COMMAND_QUEUE_LEN`]).
    pub command_queue_len: usize,
    /// Event queue length (default [`EVENT_QUEUE_LEN`]).
    pub event_queue_len: usize,
    /// Gossipsub heartbeat (default [`GOSSIP_HEARTBEAT`]).
    pub gossip_heartbeat: Duration,
    /// Ban duration (default [`BAN_DURATION`]).
    pub ban_duration: Duration,
}

impl Default for NetworkLimits {
    fn default() -> Self {
        NetworkLimits {
            tx_gossip_bytes_max: TX_GOSSIP_BYTES_MAX,
            consensus_gossip_bytes_max: CONSENSUS_GOSSIP_BYTES_MAX,
            sync_request_bytes_max: SYNC_REQUEST_BYTES_MAX,
            sync_response_bytes_max: SYNC_RESPONSE_BYTES_MAX,
            sync_blocks_per_request_max: SYNC_BLOCKS_PER_REQUEST_MAX,
            sync_request_timeout: SYNC_REQUEST_TIMEOUT,
            sync_pending_requests_max: SYNC_PENDING_REQUESTS_MAX,
            command_queue_len: COMMAND_QUEUE_LEN,
            event_queue_len: EVENT_QUEUE_LEN,
            gossip_heartbeat: GOSSIP_HEARTBEAT,
            ban_duration: BAN_DURATION,
        }
    }
}

impl NetworkLimits {
    /// Checks that the limits are usable: every count and size non-zero, and
    /// no limit above the hard ceiling of its constant (a config may tighten,
    /// never loosen, the protocol bounds).
    pub fn validate(&self) -> Result<(), String> {
        let checks: [(&str, usize, usize); 7] = [
            (
                "tx_gossip_bytes_max",
                self.tx_gossip_bytes_max,
                TX_GOSSIP_BYTES_MAX,
            ),
            (
                "consensus_gossip_bytes_max",
                self.consensus_gossip_bytes_max,
                CONSENSUS_GOSSIP_BYTES_MAX,
            ),
            (
                "sync_request_bytes_max",
                self.sync_request_bytes_max,
                SYNC_REQUEST_BYTES_MAX,
            ),
            (
                "sync_response_bytes_max",
                self.sync_response_bytes_max,
                SYNC_RESPONSE_BYTES_MAX,
            ),
            (
                "sync_blocks_per_request_max",
                self.sync_blocks_per_request_max as usize,
                SYNC_BLOCKS_PER_REQUEST_MAX as usize,
            ),
            (
                "sync_pending_requests_max",
                self.sync_pending_requests_max,
                1024,
            ),
            ("command_queue_len", self.command_queue_len, 1 << 16),
        ];
        for (name, value, ceiling) in checks {
            if value == 0 || value > ceiling {
                return Err(format!("{name} must be in 1..={ceiling}, got {value}"));
            }
        }
        if self.event_queue_len == 0 || self.event_queue_len > 1 << 16 {
            return Err(format!(
                "event_queue_len must be in 1..=65536, got {}",
                self.event_queue_len
            ));
        }
        // Gossipsub refuses topic limits under 100 bytes; sync requests are
        // 13 bytes plus framing.
        if self.tx_gossip_bytes_max < 100 || self.sync_request_bytes_max < 32 {
            return Err("gossip and request limits are too small to carry a message".into());
        }
        if self.gossip_heartbeat < Duration::from_millis(50)
            || self.gossip_heartbeat > Duration::from_secs(10)
        {
            return Err("gossip_heartbeat must be between 50 ms and 10 s".into());
        }
        if self.sync_request_timeout.is_zero() || self.ban_duration.is_zero() {
            return Err("sync_request_timeout and ban_duration must be non-zero".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid() {
        NetworkLimits::default().validate().unwrap();
    }

    #[test]
    fn a_response_fits_one_largest_block() {
        const { assert!(SYNC_RESPONSE_BYTES_MAX >= BLOCK_BYTES_MAX + BLOCK_ENVELOPE_BYTES) };
        const { assert!(GOSSIP_RPC_BYTES_MAX > CONSENSUS_GOSSIP_BYTES_MAX + GOSSIP_ENVELOPE_BYTES) };
    }

    #[test]
    fn limits_cannot_be_loosened() {
        let limits = NetworkLimits {
            tx_gossip_bytes_max: TX_GOSSIP_BYTES_MAX + 1,
            ..Default::default()
        };
        assert!(limits.validate().is_err());
        let limits = NetworkLimits {
            event_queue_len: 0,
            ..Default::default()
        };
        assert!(limits.validate().is_err());
    }
}
