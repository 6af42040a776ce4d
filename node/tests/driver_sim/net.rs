//! The simulated ports: a [`Net`] and a [`Clock`] that only record what the
//! driver asks for. The world ([`super::World`]) drains them after every
//! event and turns them into scheduled deliveries.

use std::cell::Cell;
use std::rc::Rc;

use alliance_consensus::TimerId;
use alliance_node::network::{Misbehaviour, PeerId, SyncRequest, SyncResponse, Verdict};
use alliance_node::runtime::{Clock, Net};
use alliance_protocol::PublicKey;

/// A gossip message as the receiver sees it: who authored it.
#[derive(Debug, Clone, Copy)]
pub struct Gossip {
    /// Index of the authoring node.
    pub author: usize,
}

/// What a simulated driver asked of its network.
#[derive(Debug)]
pub enum Sent {
    Publish(Vec<u8>),
    Report(Gossip, Verdict),
    Request(PeerId, SyncRequest),
    Respond(u64, SyncResponse),
    Penalise(PeerId, Misbehaviour),
}

/// The simulated network port: an outbox.
#[derive(Debug, Default)]
pub struct SimNet {
    pub outbox: Vec<Sent>,
}

impl Net for SimNet {
    type MessageRef = Gossip;
    type Responder = u64;

    fn publish(&mut self, bytes: Vec<u8>) {
        self.outbox.push(Sent::Publish(bytes));
    }
    fn report(&mut self, message: Gossip, verdict: Verdict) {
        self.outbox.push(Sent::Report(message, verdict));
    }
    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        self.outbox.push(Sent::Request(peer, request));
    }
    fn respond(&mut self, responder: u64, response: SyncResponse) {
        self.outbox.push(Sent::Respond(responder, response));
    }
    fn penalise(&mut self, peer: PeerId, what: Misbehaviour) {
        self.outbox.push(Sent::Penalise(peer, what));
    }
    fn set_members(&mut self, _members: Vec<PublicKey>) {
        // Every simulated message is authored by a node of the alliance;
        // the driver's own judge decides what counts.
    }
}

/// The simulated clock: the world's time, and an outbox of timers.
#[derive(Debug)]
pub struct SimClock {
    pub now: Rc<Cell<u64>>,
    pub timers: Vec<(TimerId, u64)>,
}

impl Clock for SimClock {
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn set_timer(&mut self, id: TimerId, after_ms: u64) {
        self.timers.push((id, after_ms));
    }
}
