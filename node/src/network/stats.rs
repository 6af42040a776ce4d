//! Counters of the network layer, shared between the task (writer) and the
//! handles (readers) as relaxed atomics: a snapshot is cheap enough to take
//! on every Prometheus scrape.

use std::sync::atomic::{AtomicU64, Ordering};

macro_rules! counters {
    ($( $(#[$doc:meta])* $name:ident ),* $(,)?) => {
        /// A point-in-time copy of the network counters. Counters only grow;
        /// `peers_connected`, `members_connected` and `peers_banned` are
        /// gauges.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct NetworkStats {
            $( $(#[$doc])* pub $name: u64, )*
        }

        #[derive(Debug, Default)]
        pub(crate) struct Counters {
            $( pub(crate) $name: AtomicU64, )*
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> NetworkStats {
                NetworkStats { $( $name: self.$name.load(Ordering::Relaxed), )* }
            }
        }
    };
}

counters! {
    /// Transaction gossip messages received (before validation).
    tx_messages_in,
    /// Transaction gossip messages published by this node.
    tx_messages_out,
    /// Consensus gossip messages received (before validation).
    consensus_messages_in,
    /// Consensus gossip messages published by this node.
    consensus_messages_out,
    /// Publishes with no subscribed peer (a one-node network): not an error.
    publish_no_peers,
    /// Publishes that failed otherwise (duplicate, queues full).
    publish_failures,
    /// Verdicts `Accept` reported by the node.
    verdicts_accepted,
    /// Verdicts `Reject` reported by the node.
    verdicts_rejected,
    /// Verdicts `Ignore` reported by the node.
    verdicts_ignored,
    /// Verdicts for messages gossipsub had already forgotten.
    verdicts_late,
    /// Consensus messages rejected by the network layer: author not a member.
    consensus_non_member_rejected,
    /// Gossip events dropped because the node's event queue was full.
    gossip_events_dropped,
    /// Peer and listener events dropped from an overflowing backlog.
    control_events_dropped,
    /// Inbound sync requests handed to the node.
    sync_requests_in,
    /// Inbound sync requests refused `Busy` because the event queue was full.
    sync_requests_refused_busy,
    /// Inbound sync requests that failed (timeout, closed, bad frame).
    sync_inbound_failures,
    /// Responses trimmed to the block count or byte limit.
    sync_responses_truncated,
    /// Outbound sync requests sent.
    sync_requests_out,
    /// Outbound sync requests that failed (any `SyncError`).
    sync_requests_failed,
    /// Penalties applied (node's and network's).
    penalties,
    /// Bans applied.
    bans,
    /// Connections closed because the peer is on another chain.
    wrong_chain_disconnects,
    /// Connected peers (gauge).
    peers_connected,
    /// Connected peers whose key is a member's (gauge).
    members_connected,
    /// Peers currently banned (gauge).
    peers_banned,
}

impl Counters {
    pub(crate) fn inc(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn set(gauge: &AtomicU64, value: u64) {
        gauge.store(value, Ordering::Relaxed);
    }
}
