//! The real node's wiring around the [`Driver`]: libp2p behind [`Net`],
//! tokio timers and the system clock behind [`Clock`], and the select loop
//! that turns network events, timer firings, sync answers and ticks into
//! driver [`Event`]s. What the driver sends is carried out in order after
//! each event, awaiting the network's command queue (backpressure).

use std::sync::Arc;
use std::time::Duration;

use alliance_consensus::TimerId;
use alliance_protocol::genesis::Genesis;
use alliance_protocol::{Keypair, PublicKey};
use libp2p::gossipsub::MessageId;
use libp2p::PeerId;
use tokio::sync::mpsc;

use super::driver::Driver;
use super::io::{Clock, Event, Net};
use super::shared::Shared;
use super::{now_ms, TICK};
use crate::chain::Chain;
use crate::config::NodeConfig;
use crate::mempool::MempoolLimits;
use crate::network::{
    Misbehaviour, NetworkEvent, NetworkHandle, SyncError, SyncRequest, SyncResponder, SyncResponse,
    Verdict,
};
use crate::store::Store;

/// Timer firings queued at most.
const TIMER_QUEUE_LEN: usize = 1_024;
/// Sync answers queued at most (requests in flight are capped by the
/// network, see `NetworkLimits::sync_pending_requests_max`).
const RESPONSE_QUEUE_LEN: usize = 64;

/// A driver event in the real node.
type NodeEvent = Event<(MessageId, PeerId), SyncResponder>;

/// What the driver asked of the network while handling one event.
#[derive(Debug)]
enum Command {
    Publish(Vec<u8>),
    Report(MessageId, PeerId, Verdict),
    Request(PeerId, SyncRequest),
    Respond(SyncResponder, SyncResponse),
    Penalise(PeerId, Misbehaviour),
    SetMembers(Vec<PublicKey>),
}

/// libp2p as the driver's [`Net`]: commands wait in an outbox that the
/// node's loop carries out after each event.
#[derive(Debug, Default)]
pub struct Libp2pNet {
    outbox: Vec<Command>,
}

impl Net for Libp2pNet {
    type MessageRef = (MessageId, PeerId);
    type Responder = SyncResponder;

    fn publish(&mut self, bytes: Vec<u8>) {
        self.outbox.push(Command::Publish(bytes));
    }
    fn report(&mut self, (id, from): (MessageId, PeerId), verdict: Verdict) {
        self.outbox.push(Command::Report(id, from, verdict));
    }
    fn request(&mut self, peer: PeerId, request: SyncRequest) {
        self.outbox.push(Command::Request(peer, request));
    }
    fn respond(&mut self, responder: SyncResponder, response: SyncResponse) {
        self.outbox.push(Command::Respond(responder, response));
    }
    fn penalise(&mut self, peer: PeerId, what: Misbehaviour) {
        self.outbox.push(Command::Penalise(peer, what));
    }
    fn set_members(&mut self, members: Vec<PublicKey>) {
        self.outbox.push(Command::SetMembers(members));
    }
}

/// The system clock, with tokio timers.
#[derive(Debug)]
pub struct TokioClock {
    timers: mpsc::Sender<TimerId>,
}

impl Clock for TokioClock {
    fn now_ms(&self) -> u64 {
        now_ms()
    }
    fn set_timer(&mut self, id: TimerId, after_ms: u64) {
        let tx = self.timers.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(after_ms)).await;
            let _ = tx.send(id).await;
        });
    }
}

/// A running node: the driver and the channels that feed it.
pub struct Node {
    driver: Driver<Libp2pNet, TokioClock>,
    net: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    timers: mpsc::Receiver<TimerId>,
    responses_tx: mpsc::Sender<NodeEvent>,
    responses: mpsc::Receiver<NodeEvent>,
}

impl Node {
    /// Builds the node on an opened store (see [`Store::open`]) and a
    /// spawned network. Must be called inside the tokio runtime: it spawns
    /// the task that gossips admitted transactions.
    pub fn new(
        genesis: Genesis,
        key: Keypair,
        config: NodeConfig,
        store: Store,
        state: alliance_protocol::state::LedgerState,
        net: NetworkHandle,
        events: mpsc::Receiver<NetworkEvent>,
    ) -> Result<(Self, Arc<Shared>), crate::store::StoreError> {
        let (tx_gossip, gossip_rx) = mpsc::channel(super::gossip_out::GOSSIP_QUEUE_LEN);
        let shared = Shared::new(
            genesis,
            Chain::new(store, state),
            MempoolLimits {
                txs_max: config.mempool_txs_max,
                ..MempoolLimits::default()
            },
            tx_gossip,
        );
        shared.metrics.memory_budget.store(
            config.memory_budget_mib << 20,
            std::sync::atomic::Ordering::Relaxed,
        );
        let gossip_net = net.clone();
        tokio::spawn(async move {
            let mut gatherer =
                super::gossip_out::Gatherer::new(gossip_rx, super::gossip_out::GOSSIP_GATHER);
            while let Some(txs) = gatherer.next_batch().await {
                for bytes in super::shared::gossip_batches(&txs) {
                    if let Err(e) = gossip_net.publish_transaction(bytes).await {
                        tracing::warn!(error = %e, "could not gossip submitted transactions");
                    }
                }
            }
        });
        let (timer_tx, timers) = mpsc::channel(TIMER_QUEUE_LEN);
        let (responses_tx, responses) = mpsc::channel(RESPONSE_QUEUE_LEN);
        let driver = Driver::new(
            shared.clone(),
            key,
            config,
            Libp2pNet::default(),
            TokioClock { timers: timer_tx },
        )?;
        let node = Node {
            driver,
            net,
            events,
            timers,
            responses_tx,
            responses,
        };
        Ok((node, shared))
    }

    /// Makes this node misbehave as `byzantine` says (tests only).
    #[cfg(feature = "byzantine")]
    pub fn with_byzantine(mut self, byzantine: crate::byzantine::Byzantine) -> Self {
        self.driver = self.driver.with_byzantine(byzantine);
        self
    }

    /// Runs until `shutdown` resolves. A commit in progress always completes
    /// first: the loop handles one event at a time.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        self.driver.start()?;
        self.carry_out().await;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            let event = tokio::select! {
                _ = &mut shutdown => break,
                Some(event) = self.events.recv() => match self.translate(event) {
                    Some(event) => event,
                    None => continue,
                },
                Some(id) = self.timers.recv() => Event::Timer(id),
                Some(event) = self.responses.recv() => event,
                _ = tick.tick() => Event::Tick,
            };
            self.driver.handle(event)?;
            self.carry_out().await;
        }
        tracing::info!("shutting down");
        let _ = self.net.shutdown().await;
        Ok(())
    }

    /// A network event as a driver event; transactions from gossip and
    /// listen addresses are handled here (admission runs off the loop).
    fn translate(&self, event: NetworkEvent) -> Option<NodeEvent> {
        match event {
            NetworkEvent::Listening { addr } => {
                tracing::info!(%addr, "listening");
                None
            }
            NetworkEvent::PeerConnected {
                peer,
                key,
                is_member,
            } => Some(Event::PeerConnected {
                peer,
                key,
                is_member,
            }),
            NetworkEvent::PeerDisconnected { peer, .. } => Some(Event::PeerDisconnected { peer }),
            NetworkEvent::Transaction { bytes, from, id } => {
                // Off the consensus loop: verifying a batch takes a while.
                let (shared, net) = (self.driver.shared().clone(), self.net.clone());
                tokio::spawn(async move {
                    let verdict = shared.admit_gossip(&bytes).await;
                    let _ = net.report(id, from, verdict).await;
                });
                None
            }
            NetworkEvent::Consensus {
                bytes,
                from,
                source_key,
                id,
            } => Some(Event::Consensus {
                bytes,
                source_key,
                message: (id, from),
            }),
            NetworkEvent::SyncRequest {
                request, responder, ..
            } => Some(Event::SyncRequest { request, responder }),
        }
    }

    /// Carries out what the driver asked for, in order. Requests run in the
    /// background; their answers come back through `responses`.
    async fn carry_out(&mut self) {
        let commands = std::mem::take(&mut self.driver.net_mut().outbox);
        for command in commands {
            match command {
                Command::Publish(bytes) => {
                    if let Err(e) = self.net.publish_consensus(bytes).await {
                        tracing::warn!(error = %e, "cannot publish a consensus message");
                    }
                }
                Command::Report(id, from, verdict) => {
                    let _ = self.net.report(id, from, verdict).await;
                }
                Command::Request(peer, request) => {
                    let (net, tx) = (self.net.clone(), self.responses_tx.clone());
                    tokio::spawn(async move {
                        let result: Result<_, SyncError> = net.request(peer, request.clone()).await;
                        let _ = tx
                            .send(Event::Response {
                                peer,
                                request,
                                result,
                            })
                            .await;
                    });
                }
                Command::Respond(responder, response) => {
                    let _ = self.net.respond(responder, response).await;
                }
                Command::Penalise(peer, what) => {
                    let _ = self.net.penalise(peer, what).await;
                }
                Command::SetMembers(members) => {
                    let _ = self.net.set_members(members).await;
                }
            }
        }
    }
}
