//! The node's peer-to-peer network: libp2p over TCP + Noise + Yamux, with
//! gossipsub (transactions, consensus), request-response (block sync),
//! identify and ping composed in one behaviour ([`behaviour`]).
//!
//! One tokio task owns the swarm and `select!`s over swarm events, commands
//! from [`NetworkHandle`]s and a housekeeping timer. The network translates,
//! it does not decide: it hands gossip and sync requests to the node as
//! [`NetworkEvent`]s and acts on the node's answers (verdicts, responses,
//! penalties). The only judgements it makes itself are the ones that need no
//! ledger: sizes, the chain id, signed gossip authorship, and that consensus
//! messages come from a member key.
//!
//! What the node must do with the events:
//! - [`NetworkEvent::Transaction`] / [`NetworkEvent::Consensus`]: decode and
//!   check, then call [`NetworkHandle::report`] exactly once with a
//!   [`Verdict`]. Nothing is forwarded to other peers before `Accept`.
//!   `Reject` lowers the forwarding peer's gossip score and, repeated, gets
//!   it banned: use it only for what is invalid whatever the ledger state
//!   (undecodable, bad signature, wrong chain). Use `Ignore` for what may be
//!   honest (a nonce already used, a vote for an old view, a duplicate).
//! - [`NetworkEvent::SyncRequest`]: answer with [`NetworkHandle::respond`]
//!   within [`limits::SYNC_REQUEST_TIMEOUT`]. Dropping the responder closes
//!   the stream and the requester gets an error.
//! - Bad sync responses: [`NetworkHandle::penalise`] the peer.
//!
//! The identity of a node is its merchant key: see [`peer_id_of`] and
//! [`public_key_of`].

pub mod behaviour;
pub mod identity;
pub mod limits;
pub mod penalty;
pub mod stats;
pub mod sync_codec;
mod task;

use std::collections::HashSet;
use std::fmt;

use alliance_protocol::limits::CHAIN_ID_BYTES_MAX;
use alliance_protocol::PublicKey;
use libp2p::request_response::ResponseChannel;
use tokio::sync::{mpsc, oneshot};

pub use behaviour::GossipTopic;
pub use identity::{peer_id_of, public_key_of};
pub use libp2p::gossipsub::MessageId;
pub use libp2p::{Multiaddr, PeerId};
pub use limits::NetworkLimits;
pub use penalty::Misbehaviour;
pub use stats::NetworkStats;
pub use sync_codec::{ChainStatus, RefusalReason, SyncRequest, SyncResponse};

use stats::Counters;
use std::sync::Arc;

/// What a network instance needs to start.
#[derive(Clone)]
pub struct NetworkConfig {
    /// The merchant's (or auditor's) ed25519 secret seed. The libp2p
    /// identity is derived from it, so the peer id is the alliance key.
    pub secret_seed: [u8; 32],
    /// Chain id; part of every topic and protocol name.
    pub chain_id: String,
    /// Addresses to listen on, e.g. `/ip4/0.0.0.0/tcp/7400`. Port 0 picks a
    /// free port, announced by [`NetworkEvent::Listening`].
    pub listen_addrs: Vec<Multiaddr>,
    /// Peers to connect to and stay connected to (redialled with backoff).
    /// A trailing `/p2p/<peer id>` is optional; when present the remote
    /// must prove that identity.
    pub bootstrap_addrs: Vec<Multiaddr>,
    /// Member keys: consensus gossip is only accepted from these authors.
    pub members: Vec<PublicKey>,
    /// Sizes, queue lengths and timeouts.
    pub limits: NetworkLimits,
}

impl fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("secret_seed", &"<secret>")
            .field("chain_id", &self.chain_id)
            .field("listen_addrs", &self.listen_addrs)
            .field("bootstrap_addrs", &self.bootstrap_addrs)
            .field("members", &self.members.len())
            .field("limits", &self.limits)
            .finish()
    }
}

impl NetworkConfig {
    /// A config with default limits, listening on nothing and bootstrapping
    /// from nobody: fill in the addresses.
    pub fn new(
        secret_seed: [u8; 32],
        chain_id: impl Into<String>,
        members: Vec<PublicKey>,
    ) -> Self {
        NetworkConfig {
            secret_seed,
            chain_id: chain_id.into(),
            listen_addrs: Vec::new(),
            bootstrap_addrs: Vec::new(),
            members,
            limits: NetworkLimits::default(),
        }
    }

    fn validate(&self) -> Result<(), NetworkError> {
        let id = &self.chain_id;
        let id_ok = !id.is_empty()
            && id.len() <= CHAIN_ID_BYTES_MAX
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        if !id_ok {
            return Err(NetworkError::InvalidConfig(format!(
                "chain id `{id}` must be 1..={CHAIN_ID_BYTES_MAX} characters of [A-Za-z0-9._-]"
            )));
        }
        self.limits.validate().map_err(NetworkError::InvalidConfig)
    }
}

/// Errors of the network API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// The configuration cannot be used.
    #[error("invalid network config: {0}")]
    InvalidConfig(String),
    /// Could not listen on an address.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A payload over the topic's limit was not published.
    #[error("payload of {bytes} bytes exceeds the {max}-byte limit")]
    TooLarge {
        /// Payload size.
        bytes: usize,
        /// Limit.
        max: usize,
    },
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
    /// [`Network::spawn`] was called outside a tokio runtime.
    #[error("no tokio runtime to run the network task on")]
    NoRuntime,
}

/// Why an outbound sync request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// The network task has stopped.
    #[error("the network task has stopped")]
    Stopped,
    /// We are not connected to the peer.
    #[error("not connected to the peer")]
    NotConnected,
    /// Already [`NetworkLimits::sync_pending_requests_max`] requests in flight.
    #[error("too many sync requests in flight")]
    TooManyPending,
    /// No complete response within the timeout.
    #[error("the request timed out")]
    Timeout,
    /// The peer does not speak this chain's sync protocol.
    #[error("the peer does not support this chain's sync protocol")]
    UnsupportedProtocol,
    /// The connection closed, or the stream failed (including a response
    /// refused by our codec for exceeding the size limit).
    #[error("transport failure: {0}")]
    Transport(String),
    /// The peer answered that it will not serve the request.
    #[error("the peer refused: {0:?}")]
    Refused(RefusalReason),
    /// The response does not match the request (e.g. more blocks than
    /// asked, or a status for a blocks request). Worth a penalty.
    #[error("invalid response: {0}")]
    InvalidResponse(String),
}

/// The node's judgement of a gossip message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Valid: forward it to the mesh.
    Accept,
    /// Provably invalid: drop it and penalise the peer that sent it.
    Reject,
    /// Not useful (stale, duplicate, cannot tell): drop it, no penalty.
    Ignore,
}

/// Answers one inbound sync request; pass it to [`NetworkHandle::respond`].
/// Dropping it unanswered closes the stream (the requester gets an error).
#[derive(Debug)]
pub struct SyncResponder {
    peer: PeerId,
    channel: ResponseChannel<SyncResponse>,
    /// For `GetBlocks`, the capped count: the response is trimmed to it.
    max_count: Option<u32>,
}

impl SyncResponder {
    /// The requesting peer.
    pub fn peer(&self) -> PeerId {
        self.peer
    }
}

/// What the network tells the node.
#[derive(Debug)]
pub enum NetworkEvent {
    /// Listening on a new address (with the actual port when 0 was asked).
    Listening {
        /// The address.
        addr: Multiaddr,
    },
    /// First connection to a peer established.
    PeerConnected {
        /// The peer.
        peer: PeerId,
        /// Its alliance key, if its peer id is an ed25519 one.
        key: Option<PublicKey>,
        /// Whether that key is a member's.
        is_member: bool,
    },
    /// Last connection to a peer closed.
    PeerDisconnected {
        /// The peer.
        peer: PeerId,
        /// Its alliance key, if its peer id is an ed25519 one.
        key: Option<PublicKey>,
        /// Whether that key is a member's.
        is_member: bool,
    },
    /// A transaction from gossip, not forwarded yet: answer with
    /// [`NetworkHandle::report`].
    Transaction {
        /// The payload (meant to be a canonical `Transaction`; not decoded).
        bytes: Vec<u8>,
        /// The peer that forwarded it to us (who a `Reject` penalises).
        from: PeerId,
        /// Gossip message id, for the verdict.
        id: MessageId,
    },
    /// A consensus message from gossip, signed by a member: answer with
    /// [`NetworkHandle::report`]. Messages whose author is not a member are
    /// rejected by the network and never appear here.
    Consensus {
        /// The payload (not decoded).
        bytes: Vec<u8>,
        /// The peer that forwarded it to us.
        from: PeerId,
        /// The member key that signed the gossip message (its author).
        source_key: PublicKey,
        /// Gossip message id, for the verdict.
        id: MessageId,
    },
    /// A peer asks for blocks or our status: answer with
    /// [`NetworkHandle::respond`].
    SyncRequest {
        /// The requesting peer.
        peer: PeerId,
        /// The request, with `max_count` already capped.
        request: SyncRequest,
        /// Where the answer goes.
        responder: SyncResponder,
    },
}

/// One connected peer, as seen by [`NetworkHandle::peers`].
#[derive(Debug, Clone, PartialEq)]
pub struct PeerInfo {
    /// The peer.
    pub peer: PeerId,
    /// Its alliance key, if its peer id is an ed25519 one.
    pub key: Option<PublicKey>,
    /// Whether that key is a member's.
    pub is_member: bool,
    /// Gossipsub score (see `behaviour` for the scoring numbers).
    pub gossip_score: f64,
    /// Current misbehaviour points (ban at
    /// [`limits::BAN_THRESHOLD_POINTS`]).
    pub misbehaviour_points: u32,
    /// Topics the peer is subscribed to.
    pub subscribed: Vec<GossipTopic>,
    /// Topics in whose mesh we have the peer (messages are forwarded to it).
    pub in_mesh: Vec<GossipTopic>,
}

enum Command {
    Publish {
        topic: GossipTopic,
        bytes: Vec<u8>,
    },
    Report {
        id: MessageId,
        from: PeerId,
        verdict: Verdict,
    },
    Request {
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, SyncError>>,
    },
    Respond {
        responder: SyncResponder,
        response: SyncResponse,
    },
    Penalise {
        peer: PeerId,
        what: Misbehaviour,
    },
    Peers {
        reply: oneshot::Sender<Vec<PeerInfo>>,
    },
    ListenAddrs {
        reply: oneshot::Sender<Vec<Multiaddr>>,
    },
    SetMembers {
        members: HashSet<PublicKey>,
    },
    Dial {
        addr: Multiaddr,
    },
    Shutdown,
}

/// Starts networks.
pub struct Network;

impl Network {
    /// Builds the swarm, starts listening and dialling, and spawns the
    /// network task on the current tokio runtime. The task runs until
    /// [`NetworkHandle::shutdown`] or until every handle is dropped.
    pub fn spawn(
        config: NetworkConfig,
    ) -> Result<(NetworkHandle, mpsc::Receiver<NetworkEvent>), NetworkError> {
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| NetworkError::NoRuntime)?;
        let (command_tx, command_rx) = mpsc::channel(config.limits.command_queue_len);
        let (event_tx, event_rx) = mpsc::channel(config.limits.event_queue_len);
        let counters = Arc::new(Counters::default());
        let limits = config.limits.clone();
        let mut registry = prometheus_client::registry::Registry::default();
        let task = task::Task::new(config, event_tx, counters.clone(), &mut registry)?;
        let local_peer_id = task.local_peer_id();
        runtime.spawn(task.run(command_rx));
        Ok((
            NetworkHandle {
                commands: command_tx,
                counters,
                local_peer_id,
                limits: Arc::new(limits),
                metrics: Arc::new(registry),
            },
            event_rx,
        ))
    }
}

/// A cheap, cloneable handle to the network task.
#[derive(Clone)]
pub struct NetworkHandle {
    commands: mpsc::Sender<Command>,
    counters: Arc<Counters>,
    local_peer_id: PeerId,
    limits: Arc<NetworkLimits>,
    metrics: Arc<prometheus_client::registry::Registry>,
}

impl fmt::Debug for NetworkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkHandle")
            .field("local_peer_id", &self.local_peer_id)
            .finish()
    }
}

impl NetworkHandle {
    /// This node's peer id (= `peer_id_of` its key).
    pub fn local_peer_id(&self) -> PeerId {
        self.local_peer_id
    }

    /// The network's Prometheus series (`libp2p_*`: swarm connections and
    /// dials, gossipsub messages, mesh and peer scores, identify, ping),
    /// recorded by the network task; [`crate::metrics::Metrics::attach_network`]
    /// adds them to the node's `/metrics`.
    pub fn metrics_registry(&self) -> Arc<prometheus_client::registry::Registry> {
        self.metrics.clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NetworkStats {
        self.counters.snapshot()
    }

    async fn send(&self, command: Command) -> Result<(), NetworkError> {
        self.commands
            .send(command)
            .await
            .map_err(|_| NetworkError::Stopped)
    }

    async fn publish(
        &self,
        topic: GossipTopic,
        bytes: Vec<u8>,
        max: usize,
    ) -> Result<(), NetworkError> {
        if bytes.len() > max {
            return Err(NetworkError::TooLarge {
                bytes: bytes.len(),
                max,
            });
        }
        self.send(Command::Publish { topic, bytes }).await
    }

    /// Gossips a transaction (canonical bytes). With no peer to send to
    /// this is a logged no-op, not an error.
    pub async fn publish_transaction(&self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.publish(
            GossipTopic::Transactions,
            bytes,
            self.limits.tx_gossip_bytes_max,
        )
        .await
    }

    /// Gossips a consensus message. With no peer to send to this is a
    /// logged no-op, not an error.
    pub async fn publish_consensus(&self, bytes: Vec<u8>) -> Result<(), NetworkError> {
        self.publish(
            GossipTopic::Consensus,
            bytes,
            self.limits.consensus_gossip_bytes_max,
        )
        .await
    }

    /// Reports the node's verdict on a gossip message (once per message).
    pub async fn report(
        &self,
        id: MessageId,
        from: PeerId,
        verdict: Verdict,
    ) -> Result<(), NetworkError> {
        self.send(Command::Report { id, from, verdict }).await
    }

    /// Sends a sync request and waits for the checked response (`Refused`
    /// answers come back as [`SyncError::Refused`]).
    pub async fn request(
        &self,
        peer: PeerId,
        request: SyncRequest,
    ) -> Result<SyncResponse, SyncError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Request {
            peer,
            request,
            reply,
        })
        .await
        .map_err(|_| SyncError::Stopped)?;
        rx.await.map_err(|_| SyncError::Stopped)?
    }

    /// Asks `peer` for up to `max_count` finalized blocks from `from_height`
    /// (capped to the configured maximum). Returns canonical
    /// `FinalizedBlock` bytes, not yet decoded or verified.
    pub async fn request_blocks(
        &self,
        peer: PeerId,
        from_height: u64,
        max_count: u32,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        match self
            .request(
                peer,
                SyncRequest::GetBlocks {
                    from_height,
                    max_count,
                },
            )
            .await?
        {
            SyncResponse::Blocks(blocks) => Ok(blocks),
            other => Err(SyncError::InvalidResponse(format!(
                "expected blocks, got {other:?}"
            ))),
        }
    }

    /// One block by hash (finalized or notarized) with its certificate, as
    /// `FinalizedBlock` bytes; empty when the peer does not have it.
    pub async fn request_block(
        &self,
        peer: PeerId,
        hash: alliance_protocol::Hash32,
    ) -> Result<Vec<Vec<u8>>, SyncError> {
        match self.request(peer, SyncRequest::GetBlock { hash }).await? {
            SyncResponse::Blocks(blocks) => Ok(blocks),
            other => Err(SyncError::InvalidResponse(format!(
                "expected a block, got {other:?}"
            ))),
        }
    }

    /// Asks `peer` for the consensus certificates of `views` (the
    /// resolver). Returns them unverified.
    pub async fn request_certificates(
        &self,
        peer: PeerId,
        views: Vec<u64>,
    ) -> Result<Vec<alliance_protocol::Certificate>, SyncError> {
        match self
            .request(peer, SyncRequest::GetCertificates { views })
            .await?
        {
            SyncResponse::Certificates(certs) => Ok(certs),
            other => Err(SyncError::InvalidResponse(format!(
                "expected certificates, got {other:?}"
            ))),
        }
    }

    /// Asks `peer` for its finalized tip.
    pub async fn request_status(&self, peer: PeerId) -> Result<ChainStatus, SyncError> {
        match self.request(peer, SyncRequest::Status).await? {
            SyncResponse::Status(status) => Ok(status),
            other => Err(SyncError::InvalidResponse(format!(
                "expected status, got {other:?}"
            ))),
        }
    }

    /// Answers an inbound sync request. A `Blocks` answer is trimmed to the
    /// requested count and to the response size limit.
    pub async fn respond(
        &self,
        responder: SyncResponder,
        response: SyncResponse,
    ) -> Result<(), NetworkError> {
        self.send(Command::Respond {
            responder,
            response,
        })
        .await
    }

    /// Records misbehaviour of a peer (logged); past
    /// [`limits::BAN_THRESHOLD_POINTS`] it is disconnected and banned for
    /// [`NetworkLimits::ban_duration`].
    pub async fn penalise(&self, peer: PeerId, what: Misbehaviour) -> Result<(), NetworkError> {
        self.send(Command::Penalise { peer, what }).await
    }

    /// The connected peers.
    pub async fn peers(&self) -> Result<Vec<PeerInfo>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::Peers { reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// The addresses we listen on.
    pub async fn listen_addrs(&self) -> Result<Vec<Multiaddr>, NetworkError> {
        let (reply, rx) = oneshot::channel();
        self.send(Command::ListenAddrs { reply }).await?;
        rx.await.map_err(|_| NetworkError::Stopped)
    }

    /// Replaces the member set (after a governance change).
    pub async fn set_members(
        &self,
        members: impl IntoIterator<Item = PublicKey>,
    ) -> Result<(), NetworkError> {
        self.send(Command::SetMembers {
            members: members.into_iter().collect(),
        })
        .await
    }

    /// Dials an address once (no redial; use bootstrap addresses for that).
    pub async fn dial(&self, addr: Multiaddr) -> Result<(), NetworkError> {
        self.send(Command::Dial { addr }).await
    }

    /// Stops the network task (connections are closed).
    pub async fn shutdown(&self) -> Result<(), NetworkError> {
        self.send(Command::Shutdown).await
    }
}
