//! The driver's ports: what it asks of its network and its clock, and the
//! events that come back. The node plugs in libp2p and tokio
//! ([`super::node`]); the deterministic simulation plugs in a seeded
//! in-memory network and a simulated clock, and runs the same driver.
//!
//! Every port method is synchronous and returns nothing: the driver never
//! waits on I/O. What it sends is carried out after the event that caused it
//! has been handled, in order; what comes back (answers to requests, timer
//! firings) arrives as a later [`Event`].

use alliance_consensus::TimerId;
use alliance_protocol::PublicKey;
use libp2p::PeerId;

use crate::network::{Misbehaviour, SyncError, SyncRequest, SyncResponse, Verdict};

/// The network as the driver sees it: gossip on the consensus topic,
/// request-response sync, verdicts and penalties.
pub trait Net {
    /// Identifies a gossip message awaiting its verdict (libp2p: message id
    /// and forwarding peer).
    type MessageRef;
    /// Where the answer to a peer's sync request goes.
    type Responder;

    /// Publishes a consensus message to every member.
    fn publish(&mut self, bytes: Vec<u8>);
    /// Tells the gossip layer whether to forward a message (and whether the
    /// forwarding peer deserves a penalty).
    fn report(&mut self, message: Self::MessageRef, verdict: Verdict);
    /// Sends a sync request; the answer arrives as [`Event::Response`].
    fn request(&mut self, peer: PeerId, request: SyncRequest);
    /// Answers a peer's sync request.
    fn respond(&mut self, responder: Self::Responder, response: SyncResponse);
    /// Records a peer's misbehaviour.
    fn penalise(&mut self, peer: PeerId, what: Misbehaviour);
    /// The keys allowed to author consensus messages (the validator set).
    fn set_members(&mut self, members: Vec<PublicKey>);
}

/// Time as the driver sees it.
pub trait Clock {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Fires [`Event::Timer`] with `id` after `after_ms`.
    fn set_timer(&mut self, id: TimerId, after_ms: u64);
}

/// What happens to the driver.
#[derive(Debug)]
pub enum Event<M, R> {
    /// A peer connected.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its alliance key, when known.
        key: Option<PublicKey>,
        /// Whether that key belongs to a member (validator).
        is_member: bool,
    },
    /// A peer's last connection closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
    },
    /// A consensus message from gossip, awaiting its verdict.
    Consensus {
        /// The payload, not decoded.
        bytes: Vec<u8>,
        /// The member key that authored the gossip message.
        source_key: PublicKey,
        /// The message, for the verdict.
        message: M,
    },
    /// A peer asks for our status, blocks or certificates.
    SyncRequest {
        /// The request.
        request: SyncRequest,
        /// Where the answer goes.
        responder: R,
    },
    /// The answer to one of our requests (or why there is none).
    Response {
        /// The peer asked.
        peer: PeerId,
        /// What was asked.
        request: SyncRequest,
        /// The answer.
        result: Result<SyncResponse, SyncError>,
    },
    /// A consensus timer fired.
    Timer(TimerId),
    /// The driver's periodic tick: proposals waiting for their moment, sync
    /// polling, status.
    Tick,
}
