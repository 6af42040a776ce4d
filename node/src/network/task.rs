//! The network task: owns the swarm, turns swarm events into
//! [`NetworkEvent`]s and commands into swarm calls. All state changes of the
//! network layer happen here, on one task, in the order events arrive.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alliance_protocol::PublicKey;
use futures::StreamExt;
use libp2p::core::ConnectedPoint;
use libp2p::gossipsub::{self, MessageAcceptance, MessageId, TopicHash};
use libp2p::metrics::Recorder;
use libp2p::multiaddr::Protocol;
use libp2p::request_response::{self, OutboundFailure, OutboundRequestId};
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, DialError, SwarmEvent};
use libp2p::{identify, noise, tcp, yamux, Multiaddr, PeerId, Swarm};
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::behaviour::{
    AllianceBehaviour, AllianceBehaviourEvent, GossipTopic, ProtocolNames, GRAYLIST_THRESHOLD,
};
use super::identity::{libp2p_keypair, public_key_of};
use super::limits::{
    NetworkLimits, BOOTSTRAP_BACKOFF_MAX, BOOTSTRAP_BACKOFF_MIN, CONTROL_BACKLOG_MAX,
    IDLE_CONNECTION_TIMEOUT, MAINTENANCE_INTERVAL,
};
use super::penalty::{Misbehaviour, Penalties, PenaltyOutcome};
use super::stats::Counters;
use super::sync_codec::{truncate_blocks, RefusalReason, SyncRequest, SyncResponse};
use super::{
    Command, NetworkConfig, NetworkError, NetworkEvent, PeerInfo, SyncError, SyncResponder, Verdict,
};

/// A bootstrap connection must last this long before its redial backoff is
/// reset: a peer that accepts and then drops us at once is not "up".
const BOOTSTRAP_STABLE: Duration = Duration::from_secs(30);

/// One bootstrap address and its redial state.
struct Bootstrap {
    addr: Multiaddr,
    /// From a `/p2p/` suffix, or learned on the first connection.
    peer: Option<PeerId>,
    dialing: Option<ConnectionId>,
    connected_since: Option<Instant>,
    next_dial: Instant,
    backoff: Duration,
}

impl Bootstrap {
    fn new(addr: Multiaddr, now: Instant) -> Self {
        let peer = match addr.iter().last() {
            Some(Protocol::P2p(peer)) => Some(peer),
            _ => None,
        };
        Bootstrap {
            addr,
            peer,
            dialing: None,
            connected_since: None,
            next_dial: now,
            backoff: BOOTSTRAP_BACKOFF_MIN,
        }
    }

    fn schedule_redial(&mut self, now: Instant) {
        self.next_dial = now + self.backoff;
        self.backoff = (self.backoff * 2).min(BOOTSTRAP_BACKOFF_MAX);
    }
}

/// An outbound sync request waiting for its response.
struct Pending {
    request: SyncRequest,
    reply: oneshot::Sender<Result<SyncResponse, SyncError>>,
}

pub(super) struct Task {
    swarm: Swarm<AllianceBehaviour>,
    /// libp2p's own metrics of swarm, gossipsub, identify and ping events.
    metrics: libp2p::metrics::Metrics,
    names: ProtocolNames,
    limits: NetworkLimits,
    members: HashSet<PublicKey>,
    events: mpsc::Sender<NetworkEvent>,
    /// Peer and listener events waiting for room in `events`.
    backlog: VecDeque<NetworkEvent>,
    counters: Arc<Counters>,
    pending: std::collections::HashMap<OutboundRequestId, Pending>,
    penalties: Penalties,
    bootstrap: Vec<Bootstrap>,
}

impl Task {
    pub(super) fn new(
        config: NetworkConfig,
        events: mpsc::Sender<NetworkEvent>,
        counters: Arc<Counters>,
        registry: &mut prometheus_client::registry::Registry,
    ) -> Result<Self, NetworkError> {
        let invalid = |e: String| NetworkError::InvalidConfig(e);
        let key = libp2p_keypair(&config.secret_seed).map_err(|e| invalid(e.to_string()))?;
        let names = ProtocolNames::new(&config.chain_id).map_err(invalid)?;
        let limits = config.limits.clone();
        let mut swarm = libp2p::SwarmBuilder::with_existing_identity(key)
            .with_tokio()
            .with_tcp(
                tcp::Config::default().nodelay(true),
                noise::Config::new,
                yamux::Config::default,
            )
            .map_err(|e| invalid(e.to_string()))?
            .with_behaviour(|key| {
                AllianceBehaviour::new(
                    key,
                    &names,
                    &limits,
                    Some(registry.sub_registry_with_prefix("libp2p_gossipsub")),
                )
                .map_err(Box::<dyn std::error::Error + Send + Sync>::from)
            })
            .map_err(|e| invalid(e.to_string()))?
            .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
            .build();
        for addr in &config.listen_addrs {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| NetworkError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        let now = Instant::now();
        let bootstrap = config
            .bootstrap_addrs
            .into_iter()
            .map(|addr| Bootstrap::new(addr, now))
            .collect();
        Ok(Task {
            swarm,
            metrics: libp2p::metrics::Metrics::new(registry),
            names,
            members: config.members.into_iter().collect(),
            events,
            backlog: VecDeque::new(),
            counters,
            pending: Default::default(),
            penalties: Penalties::new(limits.ban_duration),
            limits,
            bootstrap,
        })
    }

    pub(super) fn local_peer_id(&self) -> PeerId {
        *self.swarm.local_peer_id()
    }

    pub(super) async fn run(mut self, mut commands: mpsc::Receiver<Command>) {
        tracing::info!(peer = %self.local_peer_id(), "network task started");
        self.redial_bootstrap(Instant::now());
        let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let events = self.events.clone();
        loop {
            tokio::select! {
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                command = commands.recv() => match command {
                    Some(Command::Shutdown) | None => break,
                    Some(command) => self.on_command(command),
                },
                _ = tick.tick() => self.on_tick(Instant::now()),
                permit = events.reserve(), if !self.backlog.is_empty() => match permit {
                    Ok(permit) => {
                        if let Some(event) = self.backlog.pop_front() {
                            permit.send(event);
                        }
                    }
                    // The node dropped its receiver: nobody to tell.
                    Err(_) => self.backlog.clear(),
                },
            }
        }
        for (_, pending) in self.pending.drain() {
            let _ = pending.reply.send(Err(SyncError::Stopped));
        }
        tracing::info!(peer = %self.local_peer_id(), "network task stopped");
    }

    // ---- helpers ------------------------------------------------------------

    fn key_of(&self, peer: &PeerId) -> (Option<PublicKey>, bool) {
        let key = public_key_of(peer);
        let is_member = key.is_some_and(|k| self.members.contains(&k));
        (key, is_member)
    }

    /// Peer and listener events: never dropped while the backlog has room.
    fn send_control(&mut self, event: NetworkEvent) {
        if self.backlog.is_empty() {
            match self.events.try_send(event) {
                Ok(()) | Err(TrySendError::Closed(_)) => return,
                Err(TrySendError::Full(event)) => self.backlog.push_back(event),
            }
        } else {
            self.backlog.push_back(event);
        }
        if self.backlog.len() > CONTROL_BACKLOG_MAX {
            self.backlog.pop_front();
            Counters::inc(&self.counters.control_events_dropped);
        }
    }

    /// Gossip events: dropped (and counted, and released in gossipsub with
    /// `Ignore`) when the node is not keeping up.
    fn send_gossip(&mut self, event: NetworkEvent, id: MessageId, from: PeerId) {
        if self.events.try_send(event).is_err() {
            Counters::inc(&self.counters.gossip_events_dropped);
            tracing::debug!(%from, "event queue full: gossip message dropped");
            self.swarm
                .behaviour_mut()
                .gossipsub
                .report_message_validation_result(&id, &from, MessageAcceptance::Ignore);
        }
    }

    fn update_gauges(&self) {
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        let members = peers.iter().filter(|p| self.key_of(p).1).count();
        Counters::set(&self.counters.peers_connected, peers.len() as u64);
        Counters::set(&self.counters.members_connected, members as u64);
        Counters::set(
            &self.counters.peers_banned,
            self.penalties.banned_count() as u64,
        );
    }

    fn penalise(&mut self, peer: PeerId, what: Misbehaviour, now: Instant) {
        Counters::inc(&self.counters.penalties);
        match self.penalties.penalise(peer, what, now) {
            PenaltyOutcome::Scored(points) => {
                tracing::warn!(%peer, ?what, points, "peer penalised");
                let score = -(points as f64);
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .set_application_score(&peer, score);
            }
            PenaltyOutcome::Ban { until, evicted } => {
                let secs = until.saturating_duration_since(now).as_secs();
                tracing::warn!(%peer, ?what, ban_secs = secs, "peer banned");
                Counters::inc(&self.counters.bans);
                if let Some(evicted) = evicted {
                    tracing::info!(peer = %evicted, "ban lifted early: ban list full");
                    self.swarm.behaviour_mut().blocked.unblock_peer(evicted);
                }
                // The block list refuses new connections and closes the
                // existing ones.
                self.swarm.behaviour_mut().blocked.block_peer(peer);
                let _ = self.swarm.disconnect_peer_id(peer);
                self.update_gauges();
            }
        }
    }

    /// After a rejection: a peer under the graylist threshold is banned, so
    /// it stops costing us bandwidth instead of being merely ignored.
    fn check_gossip_score(&mut self, peer: PeerId, now: Instant) {
        if self.penalties.is_banned(&peer, now) {
            return;
        }
        let score = self.swarm.behaviour().gossipsub.peer_score(&peer);
        if let Some(score) = score.filter(|s| *s < GRAYLIST_THRESHOLD) {
            tracing::warn!(%peer, score, "gossip score under the graylist threshold");
            self.penalise(peer, Misbehaviour::GossipGraylisted, now);
        }
    }

    // ---- housekeeping -------------------------------------------------------

    fn on_tick(&mut self, now: Instant) {
        for peer in self.penalties.expire_bans(now) {
            tracing::info!(%peer, "ban expired");
            self.swarm.behaviour_mut().blocked.unblock_peer(peer);
        }
        let peers: Vec<PeerId> = self.swarm.connected_peers().copied().collect();
        for peer in peers {
            // Misbehaviour decays; keep gossipsub's view of it current.
            let points = self.penalties.score(&peer, now);
            self.swarm
                .behaviour_mut()
                .gossipsub
                .set_application_score(&peer, -(points as f64));
            // Gossipsub also lowers scores on its own (bad signatures,
            // oversized messages, broken promises).
            self.check_gossip_score(peer, now);
        }
        self.redial_bootstrap(now);
        self.update_gauges();
    }

    fn redial_bootstrap(&mut self, now: Instant) {
        for i in 0..self.bootstrap.len() {
            let b = &self.bootstrap[i];
            let connected = b.peer.is_some_and(|p| self.swarm.is_connected(&p));
            if b.dialing.is_some() || connected || now < b.next_dial {
                continue;
            }
            let opts = match b.peer {
                Some(peer) => DialOpts::peer_id(peer)
                    .addresses(vec![b.addr.clone()])
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build(),
                None => DialOpts::unknown_peer_id().address(b.addr.clone()).build(),
            };
            let connection = opts.connection_id();
            let addr = b.addr.clone();
            match self.swarm.dial(opts) {
                Ok(()) => self.bootstrap[i].dialing = Some(connection),
                Err(DialError::DialPeerConditionFalse(_)) => {}
                Err(e) => {
                    tracing::debug!(%addr, error = %e, "bootstrap dial failed");
                    self.bootstrap[i].schedule_redial(now);
                }
            }
        }
    }

    // ---- swarm events -------------------------------------------------------

    fn on_swarm_event(&mut self, event: SwarmEvent<AllianceBehaviourEvent>) {
        let now = Instant::now();
        self.metrics.record(&event);
        match event {
            SwarmEvent::NewListenAddr { address, .. } => {
                tracing::info!(%address, "listening");
                self.send_control(NetworkEvent::Listening { addr: address });
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                num_established,
                endpoint,
                ..
            } => {
                for b in self
                    .bootstrap
                    .iter_mut()
                    .filter(|b| b.dialing == Some(connection_id))
                {
                    b.dialing = None;
                    b.peer = Some(peer_id);
                    b.connected_since = Some(now);
                }
                if num_established.get() == 1 {
                    let (key, is_member) = self.key_of(&peer_id);
                    let addr = match &endpoint {
                        ConnectedPoint::Dialer { address, .. } => address,
                        ConnectedPoint::Listener { send_back_addr, .. } => send_back_addr,
                    };
                    tracing::info!(peer = %peer_id, %addr, is_member, "peer connected");
                    self.send_control(NetworkEvent::PeerConnected {
                        peer: peer_id,
                        key,
                        is_member,
                    });
                    self.update_gauges();
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established: 0,
                cause,
                ..
            } => {
                for b in self
                    .bootstrap
                    .iter_mut()
                    .filter(|b| b.peer == Some(peer_id))
                {
                    if b.connected_since
                        .take()
                        .is_some_and(|t| now.duration_since(t) >= BOOTSTRAP_STABLE)
                    {
                        b.backoff = BOOTSTRAP_BACKOFF_MIN;
                    }
                    b.schedule_redial(now);
                }
                let (key, is_member) = self.key_of(&peer_id);
                let cause = cause.map(|c| c.to_string());
                tracing::info!(peer = %peer_id, ?cause, "peer disconnected");
                self.send_control(NetworkEvent::PeerDisconnected {
                    peer: peer_id,
                    key,
                    is_member,
                });
                self.update_gauges();
            }
            SwarmEvent::OutgoingConnectionError {
                connection_id,
                peer_id,
                error,
            } => {
                for b in self
                    .bootstrap
                    .iter_mut()
                    .filter(|b| b.dialing == Some(connection_id))
                {
                    b.dialing = None;
                    b.schedule_redial(now);
                }
                tracing::debug!(peer = ?peer_id, %error, "outgoing connection failed");
            }
            SwarmEvent::IncomingConnectionError {
                send_back_addr,
                error,
                ..
            } => {
                tracing::debug!(%send_back_addr, %error, "incoming connection failed");
            }
            SwarmEvent::Behaviour(event) => self.on_behaviour_event(event, now),
            _ => {}
        }
    }

    fn on_behaviour_event(&mut self, event: AllianceBehaviourEvent, now: Instant) {
        match &event {
            AllianceBehaviourEvent::Gossipsub(e) => self.metrics.record(e),
            AllianceBehaviourEvent::Identify(e) => self.metrics.record(e),
            AllianceBehaviourEvent::Ping(e) => self.metrics.record(e),
            _ => {}
        }
        match event {
            AllianceBehaviourEvent::Gossipsub(event) => self.on_gossip(event, now),
            AllianceBehaviourEvent::Sync(event) => self.on_sync(event),
            AllianceBehaviourEvent::Identify(identify::Event::Received {
                peer_id, info, ..
            }) => {
                if info.protocol_version != self.names.identify_version {
                    // Another chain (or another program): nothing we could
                    // exchange. Not a ban: it may be a misconfigured member.
                    tracing::warn!(peer = %peer_id, theirs = %info.protocol_version, ours = %self.names.identify_version, "peer is on another chain: disconnecting");
                    Counters::inc(&self.counters.wrong_chain_disconnects);
                    let _ = self.swarm.disconnect_peer_id(peer_id);
                }
            }
            AllianceBehaviourEvent::Identify(_) | AllianceBehaviourEvent::Ping(_) => {}
            AllianceBehaviourEvent::Blocked(never) | AllianceBehaviourEvent::Limits(never) => {
                match never {}
            }
        }
    }

    fn on_gossip(&mut self, event: gossipsub::Event, now: Instant) {
        let gossipsub::Event::Message {
            propagation_source: from,
            message_id: id,
            message,
        } = event
        else {
            if let gossipsub::Event::SlowPeer {
                peer_id,
                failed_messages,
            } = event
            {
                tracing::debug!(peer = %peer_id, ?failed_messages, "slow gossip peer");
            }
            return;
        };
        match self.names.topic_of(&message.topic) {
            Some(GossipTopic::Transactions) => {
                Counters::inc(&self.counters.tx_messages_in);
                self.send_gossip(
                    NetworkEvent::Transaction {
                        bytes: message.data,
                        from,
                        id: id.clone(),
                    },
                    id,
                    from,
                );
            }
            Some(GossipTopic::Consensus) => {
                Counters::inc(&self.counters.consensus_messages_in);
                // Strict validation mode: `source` is present and its
                // signature checked, so this is the real author.
                let author = message
                    .source
                    .as_ref()
                    .and_then(public_key_of)
                    .filter(|k| self.members.contains(k));
                match author {
                    Some(source_key) => {
                        let event = NetworkEvent::Consensus {
                            bytes: message.data,
                            from,
                            source_key,
                            id: id.clone(),
                        };
                        self.send_gossip(event, id, from);
                    }
                    None => {
                        Counters::inc(&self.counters.consensus_non_member_rejected);
                        tracing::debug!(%from, author = ?message.source, "consensus message from a non-member: rejected");
                        self.swarm
                            .behaviour_mut()
                            .gossipsub
                            .report_message_validation_result(
                                &id,
                                &from,
                                MessageAcceptance::Reject,
                            );
                        self.check_gossip_score(from, now);
                    }
                }
            }
            None => {
                // Not a topic we subscribed to; gossipsub should not deliver
                // it, but never leave a message pending.
                self.swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, MessageAcceptance::Ignore);
            }
        }
    }

    fn on_sync(&mut self, event: request_response::Event<SyncRequest, SyncResponse>) {
        match event {
            request_response::Event::Message { peer, message, .. } => match message {
                request_response::Message::Request {
                    request, channel, ..
                } => self.on_sync_request(peer, request, channel),
                request_response::Message::Response {
                    request_id,
                    response,
                } => {
                    if let Some(pending) = self.pending.remove(&request_id) {
                        let result = check_response(&pending.request, response);
                        if result.is_err() {
                            Counters::inc(&self.counters.sync_requests_failed);
                        }
                        let _ = pending.reply.send(result);
                    }
                }
            },
            request_response::Event::OutboundFailure {
                peer,
                request_id,
                error,
                ..
            } => {
                Counters::inc(&self.counters.sync_requests_failed);
                tracing::debug!(%peer, %error, "sync request failed");
                if let Some(pending) = self.pending.remove(&request_id) {
                    let _ = pending.reply.send(Err(sync_error(error)));
                }
            }
            request_response::Event::InboundFailure { peer, error, .. } => {
                Counters::inc(&self.counters.sync_inbound_failures);
                tracing::debug!(%peer, %error, "inbound sync request failed");
            }
            request_response::Event::ResponseSent { .. } => {}
        }
    }

    fn on_sync_request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        channel: request_response::ResponseChannel<SyncResponse>,
    ) {
        Counters::inc(&self.counters.sync_requests_in);
        let (request, max_count) = match request {
            SyncRequest::GetBlocks { max_count: 0, .. } => {
                self.send_response(channel, SyncResponse::Refused(RefusalReason::BadRequest));
                return;
            }
            SyncRequest::GetBlocks {
                from_height,
                max_count,
            } => {
                let max_count = max_count.min(self.limits.sync_blocks_per_request_max);
                (
                    SyncRequest::GetBlocks {
                        from_height,
                        max_count,
                    },
                    Some(max_count),
                )
            }
            SyncRequest::Status => (SyncRequest::Status, None),
            SyncRequest::GetBlock { hash } => (SyncRequest::GetBlock { hash }, Some(1)),
            SyncRequest::GetCertificates { views }
                if views.is_empty()
                    || views.len() > alliance_consensus::config::RESOLVE_VIEWS_MAX =>
            {
                self.send_response(channel, SyncResponse::Refused(RefusalReason::BadRequest));
                return;
            }
            request @ SyncRequest::GetCertificates { .. } => (request, None),
        };
        let responder = SyncResponder {
            peer,
            channel,
            max_count,
        };
        match self.events.try_send(NetworkEvent::SyncRequest {
            peer,
            request,
            responder,
        }) {
            Ok(()) => {}
            Err(TrySendError::Full(event) | TrySendError::Closed(event)) => {
                // Never drop a request silently: the requester learns to ask
                // someone else now rather than after a timeout.
                Counters::inc(&self.counters.sync_requests_refused_busy);
                tracing::debug!(%peer, "event queue full: sync request refused");
                if let NetworkEvent::SyncRequest { responder, .. } = event {
                    self.send_response(
                        responder.channel,
                        SyncResponse::Refused(RefusalReason::Busy),
                    );
                }
            }
        }
    }

    fn send_response(
        &mut self,
        channel: request_response::ResponseChannel<SyncResponse>,
        response: SyncResponse,
    ) {
        if self
            .swarm
            .behaviour_mut()
            .sync
            .send_response(channel, response)
            .is_err()
        {
            tracing::debug!(
                "sync response not sent: the stream is closed (requester gone or timed out)"
            );
        }
    }

    // ---- commands -----------------------------------------------------------

    fn on_command(&mut self, command: Command) {
        let now = Instant::now();
        match command {
            Command::Publish { topic, bytes } => self.publish(topic, bytes),
            Command::Report { id, from, verdict } => {
                let (acceptance, counter) = match verdict {
                    Verdict::Accept => {
                        (MessageAcceptance::Accept, &self.counters.verdicts_accepted)
                    }
                    Verdict::Reject => {
                        (MessageAcceptance::Reject, &self.counters.verdicts_rejected)
                    }
                    Verdict::Ignore => (MessageAcceptance::Ignore, &self.counters.verdicts_ignored),
                };
                Counters::inc(counter);
                if !self
                    .swarm
                    .behaviour_mut()
                    .gossipsub
                    .report_message_validation_result(&id, &from, acceptance)
                {
                    Counters::inc(&self.counters.verdicts_late);
                }
                if verdict == Verdict::Reject {
                    self.check_gossip_score(from, now);
                }
            }
            Command::Request {
                peer,
                request,
                reply,
            } => self.request(peer, request, reply),
            Command::Respond {
                responder,
                mut response,
            } => {
                if let (SyncResponse::Blocks(blocks), Some(max_count)) =
                    (&mut response, responder.max_count)
                {
                    let removed = truncate_blocks(
                        blocks,
                        max_count as usize,
                        self.limits.sync_response_bytes_max,
                    );
                    if removed > 0 {
                        Counters::inc(&self.counters.sync_responses_truncated);
                        tracing::debug!(peer = %responder.peer, removed, "sync response trimmed to limits");
                    }
                }
                self.send_response(responder.channel, response);
            }
            Command::Penalise { peer, what } => self.penalise(peer, what, now),
            Command::Peers { reply } => {
                let _ = reply.send(self.peer_infos(now));
            }
            Command::ListenAddrs { reply } => {
                let _ = reply.send(self.swarm.listeners().cloned().collect());
            }
            Command::SetMembers { members } => {
                tracing::info!(members = members.len(), "member set updated");
                self.members = members;
                self.update_gauges();
            }
            Command::Dial { addr } => {
                if let Err(e) = self.swarm.dial(addr.clone()) {
                    tracing::warn!(%addr, error = %e, "dial failed");
                }
            }
            // Handled by the loop.
            Command::Shutdown => {}
        }
    }

    fn publish(&mut self, topic: GossipTopic, bytes: Vec<u8>) {
        let hash: TopicHash = self.names.hash_of(topic);
        match self.swarm.behaviour_mut().gossipsub.publish(hash, bytes) {
            Ok(_) => Counters::inc(match topic {
                GossipTopic::Transactions => &self.counters.tx_messages_out,
                GossipTopic::Consensus => &self.counters.consensus_messages_out,
            }),
            Err(gossipsub::PublishError::NoPeersSubscribedToTopic) => {
                // A one-node network, or peers not subscribed yet.
                Counters::inc(&self.counters.publish_no_peers);
                tracing::debug!(?topic, "nobody to publish to");
            }
            Err(gossipsub::PublishError::Duplicate) => {
                Counters::inc(&self.counters.publish_failures);
                tracing::debug!(?topic, "already published or received: not published again");
            }
            Err(e) => {
                Counters::inc(&self.counters.publish_failures);
                tracing::warn!(?topic, error = %e, "publish failed");
            }
        }
    }

    fn request(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        reply: oneshot::Sender<Result<SyncResponse, SyncError>>,
    ) {
        if self.pending.len() >= self.limits.sync_pending_requests_max {
            let _ = reply.send(Err(SyncError::TooManyPending));
            return;
        }
        if !self.swarm.is_connected(&peer) {
            let _ = reply.send(Err(SyncError::NotConnected));
            return;
        }
        let request = match request {
            SyncRequest::GetBlocks {
                from_height,
                max_count,
            } => SyncRequest::GetBlocks {
                from_height,
                max_count: max_count.min(self.limits.sync_blocks_per_request_max),
            },
            other => other,
        };
        Counters::inc(&self.counters.sync_requests_out);
        let id = self
            .swarm
            .behaviour_mut()
            .sync
            .send_request(&peer, request.clone());
        self.pending.insert(id, Pending { request, reply });
    }

    fn peer_infos(&self, now: Instant) -> Vec<PeerInfo> {
        let gossipsub = &self.swarm.behaviour().gossipsub;
        let topics = [GossipTopic::Transactions, GossipTopic::Consensus];
        let mesh: Vec<(GossipTopic, HashSet<PeerId>)> = topics
            .iter()
            .map(|t| {
                (
                    *t,
                    gossipsub
                        .mesh_peers(&self.names.hash_of(*t))
                        .copied()
                        .collect(),
                )
            })
            .collect();
        let subscriptions: std::collections::HashMap<PeerId, Vec<GossipTopic>> = gossipsub
            .all_peers()
            .map(|(peer, hashes)| {
                (
                    *peer,
                    hashes
                        .into_iter()
                        .filter_map(|h| self.names.topic_of(h))
                        .collect(),
                )
            })
            .collect();
        self.swarm
            .connected_peers()
            .map(|peer| {
                let (key, is_member) = self.key_of(peer);
                PeerInfo {
                    peer: *peer,
                    key,
                    is_member,
                    gossip_score: gossipsub.peer_score(peer).unwrap_or(0.0),
                    misbehaviour_points: self.penalties.score(peer, now),
                    subscribed: subscriptions.get(peer).cloned().unwrap_or_default(),
                    in_mesh: mesh
                        .iter()
                        .filter(|(_, peers)| peers.contains(peer))
                        .map(|(t, _)| *t)
                        .collect(),
                }
            })
            .collect()
    }
}

/// Holds a response to what was asked: the right kind, no more blocks than
/// requested. `Refused` becomes an error the caller can act on.
fn check_response(
    request: &SyncRequest,
    response: SyncResponse,
) -> Result<SyncResponse, SyncError> {
    match (request, response) {
        (_, SyncResponse::Refused(reason)) => Err(SyncError::Refused(reason)),
        (SyncRequest::GetBlocks { max_count, .. }, SyncResponse::Blocks(blocks)) => {
            if blocks.len() > *max_count as usize {
                return Err(SyncError::InvalidResponse(format!(
                    "{} blocks for a request of {max_count}",
                    blocks.len()
                )));
            }
            Ok(SyncResponse::Blocks(blocks))
        }
        (SyncRequest::Status, SyncResponse::Status(status)) => Ok(SyncResponse::Status(status)),
        (SyncRequest::GetBlock { .. }, SyncResponse::Blocks(blocks)) => {
            if blocks.len() > 1 {
                return Err(SyncError::InvalidResponse(format!(
                    "{} blocks for one hash",
                    blocks.len()
                )));
            }
            Ok(SyncResponse::Blocks(blocks))
        }
        (SyncRequest::GetCertificates { views }, SyncResponse::Certificates(certs)) => {
            if certs.len() > 2 * views.len() + 1 {
                return Err(SyncError::InvalidResponse(format!(
                    "{} certificates for {} views",
                    certs.len(),
                    views.len()
                )));
            }
            Ok(SyncResponse::Certificates(certs))
        }
        (request, response) => Err(SyncError::InvalidResponse(format!(
            "{response:?} does not answer {request:?}"
        ))),
    }
}

fn sync_error(failure: OutboundFailure) -> SyncError {
    match failure {
        OutboundFailure::Timeout => SyncError::Timeout,
        OutboundFailure::UnsupportedProtocols => SyncError::UnsupportedProtocol,
        OutboundFailure::DialFailure => SyncError::NotConnected,
        other => SyncError::Transport(other.to_string()),
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn a_block_by_hash_is_answered_with_at_most_one_block() {
        let req = SyncRequest::GetBlock {
            hash: alliance_protocol::Hash32([1; 32]),
        };
        assert!(check_response(&req, SyncResponse::Blocks(vec![])).is_ok());
        assert!(check_response(&req, SyncResponse::Blocks(vec![vec![1]])).is_ok());
        assert!(matches!(
            check_response(&req, SyncResponse::Blocks(vec![vec![1], vec![2]])),
            Err(SyncError::InvalidResponse(_))
        ));
    }

    use super::*;
    use alliance_protocol::Hash32;

    #[test]
    fn responses_must_answer_the_request() {
        let get = SyncRequest::GetBlocks {
            from_height: 1,
            max_count: 2,
        };
        assert!(check_response(&get, SyncResponse::Blocks(vec![vec![1], vec![2]])).is_ok());
        assert!(matches!(
            check_response(&get, SyncResponse::Blocks(vec![vec![1], vec![2], vec![3]])),
            Err(SyncError::InvalidResponse(_))
        ));
        let status = SyncResponse::Status(super::super::ChainStatus {
            tip_height: 1,
            tip_hash: Hash32::ZERO,
        });
        assert!(matches!(
            check_response(&get, status.clone()),
            Err(SyncError::InvalidResponse(_))
        ));
        assert!(check_response(&SyncRequest::Status, status).is_ok());
        assert_eq!(
            check_response(
                &SyncRequest::Status,
                SyncResponse::Refused(RefusalReason::Busy)
            ),
            Err(SyncError::Refused(RefusalReason::Busy))
        );
    }

    #[test]
    fn bootstrap_backoff_doubles_up_to_the_cap() {
        let now = Instant::now();
        let mut b = Bootstrap::new("/ip4/127.0.0.1/tcp/1".parse().unwrap(), now);
        assert_eq!(b.peer, None);
        let mut waits = Vec::new();
        for _ in 0..10 {
            b.schedule_redial(now);
            waits.push(b.next_dial - now);
        }
        assert_eq!(waits[0], BOOTSTRAP_BACKOFF_MIN);
        assert_eq!(waits[1], BOOTSTRAP_BACKOFF_MIN * 2);
        assert_eq!(*waits.last().unwrap(), BOOTSTRAP_BACKOFF_MAX);
    }

    #[test]
    fn bootstrap_learns_the_peer_from_the_address() {
        let peer = PeerId::random();
        let addr: Multiaddr = format!("/ip4/127.0.0.1/tcp/1/p2p/{peer}").parse().unwrap();
        assert_eq!(Bootstrap::new(addr, Instant::now()).peer, Some(peer));
    }
}
