//! The composed libp2p behaviour and its configuration: topic and protocol
//! names, gossipsub settings and peer-scoring numbers. Every number here is
//! also described in docs/architecture.md (network section).

use std::time::Duration;

use alliance_protocol::encoding::hash_with_domain;
use libp2p::gossipsub::{
    self, IdentTopic, MessageAuthenticity, MessageId, PeerScoreParams, PeerScoreThresholds,
    TopicHash, TopicScoreParams, ValidationMode,
};
use libp2p::swarm::NetworkBehaviour;
use libp2p::{
    allow_block_list, connection_limits, identify, identity, ping, request_response, StreamProtocol,
};

use super::limits::{
    NetworkLimits, CONNECTIONS_MAX, CONNECTIONS_PER_PEER_MAX, GOSSIP_DUPLICATE_CACHE,
    GOSSIP_ENVELOPE_BYTES, GOSSIP_MESSAGES_PER_RPC_MAX, GOSSIP_PEER_QUEUE_LEN,
    GOSSIP_RPC_BYTES_MAX, PENDING_INBOUND_CONNECTIONS_MAX, SYNC_STREAMS_PER_CONNECTION_MAX,
};
use super::sync_codec::SyncCodec;

/// Prefix of every topic and protocol name.
pub const PROTOCOL_PREFIX: &str = "/points-alliance";

/// Domain of gossip message ids.
const GOSSIP_ID_DOMAIN: &str = "points-alliance/gossip-id/v1";

/// The two gossip topics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GossipTopic {
    /// Signed transactions for the mempools.
    Transactions,
    /// Consensus messages (proposals, votes, certificates), members only.
    Consensus,
}

/// The names of one chain's topics and protocols. Every name carries the
/// chain id, so nodes of two chains never exchange a message even when they
/// are connected.
#[derive(Debug, Clone)]
pub struct ProtocolNames {
    /// `/points-alliance/<chain_id>/tx/1`
    pub tx_topic: IdentTopic,
    /// `/points-alliance/<chain_id>/consensus/1`
    pub consensus_topic: IdentTopic,
    /// `/points-alliance/<chain_id>/sync/1`
    pub sync_protocol: StreamProtocol,
    /// Identify's protocol version: `/points-alliance/<chain_id>/1`.
    pub identify_version: String,
}

impl ProtocolNames {
    /// Names for `chain_id` (already validated by the config).
    pub fn new(chain_id: &str) -> Result<Self, String> {
        let sync = format!("{PROTOCOL_PREFIX}/{chain_id}/sync/1");
        Ok(ProtocolNames {
            tx_topic: IdentTopic::new(format!("{PROTOCOL_PREFIX}/{chain_id}/tx/1")),
            consensus_topic: IdentTopic::new(format!("{PROTOCOL_PREFIX}/{chain_id}/consensus/1")),
            sync_protocol: StreamProtocol::try_from_owned(sync).map_err(|e| e.to_string())?,
            identify_version: format!("{PROTOCOL_PREFIX}/{chain_id}/1"),
        })
    }

    /// The topic of a gossip topic hash, if it is one of ours.
    pub fn topic_of(&self, hash: &TopicHash) -> Option<GossipTopic> {
        if *hash == self.tx_topic.hash() {
            Some(GossipTopic::Transactions)
        } else if *hash == self.consensus_topic.hash() {
            Some(GossipTopic::Consensus)
        } else {
            None
        }
    }

    /// The topic hash of a gossip topic.
    pub fn hash_of(&self, topic: GossipTopic) -> TopicHash {
        match topic {
            GossipTopic::Transactions => self.tx_topic.hash(),
            GossipTopic::Consensus => self.consensus_topic.hash(),
        }
    }
}

/// Everything the node speaks, in one behaviour. Order matters only for
/// connection denial: the block list is consulted first.
#[derive(NetworkBehaviour)]
pub(crate) struct AllianceBehaviour {
    /// Banned peers may not connect.
    pub blocked: allow_block_list::Behaviour<allow_block_list::BlockedPeers>,
    /// Connection count limits.
    pub limits: connection_limits::Behaviour,
    /// Transactions and consensus gossip.
    pub gossipsub: gossipsub::Behaviour,
    /// Block sync.
    pub sync: request_response::Behaviour<SyncCodec>,
    /// Exchanges protocol versions (chain id) and listen addresses.
    pub identify: identify::Behaviour,
    /// Liveness and round-trip time.
    pub ping: ping::Behaviour,
}

impl AllianceBehaviour {
    /// Builds the behaviour for `names` with `limits`.
    /// With `metrics`, gossipsub records its mesh, scores and message
    /// figures there.
    pub fn new(
        key: &identity::Keypair,
        names: &ProtocolNames,
        limits: &NetworkLimits,
        metrics: Option<&mut prometheus_client::registry::Registry>,
    ) -> Result<Self, String> {
        let mut gossipsub = gossipsub::Behaviour::new(
            MessageAuthenticity::Signed(key.clone()),
            gossipsub_config(names, limits)?,
        )?;
        if let Some(registry) = metrics {
            gossipsub = gossipsub.with_metrics(registry, gossipsub::MetricsConfig::default());
        }
        let (params, thresholds) = score_params(names);
        gossipsub.with_peer_score(params, thresholds)?;
        gossipsub
            .subscribe(&names.tx_topic)
            .map_err(|e| e.to_string())?;
        gossipsub
            .subscribe(&names.consensus_topic)
            .map_err(|e| e.to_string())?;

        let codec = SyncCodec {
            request_bytes_max: limits.sync_request_bytes_max,
            response_bytes_max: limits.sync_response_bytes_max,
        };
        let sync = request_response::Behaviour::with_codec(
            codec,
            [(
                names.sync_protocol.clone(),
                request_response::ProtocolSupport::Full,
            )],
            request_response::Config::default()
                .with_request_timeout(limits.sync_request_timeout)
                .with_max_concurrent_streams(SYNC_STREAMS_PER_CONNECTION_MAX),
        );

        let connection_limits = connection_limits::ConnectionLimits::default()
            .with_max_established(Some(CONNECTIONS_MAX))
            .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
            .with_max_pending_incoming(Some(PENDING_INBOUND_CONNECTIONS_MAX));

        Ok(AllianceBehaviour {
            blocked: allow_block_list::Behaviour::default(),
            limits: connection_limits::Behaviour::new(connection_limits),
            gossipsub,
            sync,
            identify: identify::Behaviour::new(
                identify::Config::new(names.identify_version.clone(), key.public())
                    .with_agent_version(format!("alliance-node/{}", env!("CARGO_PKG_VERSION"))),
            ),
            ping: ping::Behaviour::default(),
        })
    }
}

/// Message ids. Transactions are content-addressed: the same transaction
/// submitted to two merchants and published by both is one message,
/// delivered once. Consensus messages also name their author and sequence
/// number: the consensus core re-sends the same vote or certificate on its
/// retry timer (a peer that was down or cut off missed it), and a
/// content-addressed id would make gossipsub refuse that re-send as a
/// duplicate for [`GOSSIP_DUPLICATE_CACHE`]. Copies of one publication
/// still share an id, so forwarding stays deduplicated; the core drops
/// repeated votes itself.
fn message_id(consensus_topic: &TopicHash, message: &gossipsub::Message) -> MessageId {
    let domain = format!("{GOSSIP_ID_DOMAIN}/{}", message.topic);
    if &message.topic != consensus_topic {
        return MessageId::from(hash_with_domain(&domain, &message.data).0.to_vec());
    }
    let mut bytes = message.data.clone();
    if let Some(source) = &message.source {
        bytes.extend_from_slice(&source.to_bytes());
    }
    bytes.extend_from_slice(&message.sequence_number.unwrap_or(0).to_be_bytes());
    MessageId::from(hash_with_domain(&domain, &bytes).0.to_vec())
}

fn gossipsub_config(
    names: &ProtocolNames,
    limits: &NetworkLimits,
) -> Result<gossipsub::Config, String> {
    gossipsub::ConfigBuilder::default()
        // Every message is signed by its author's peer id (= alliance key),
        // and unsigned or badly signed messages are dropped by the codec.
        .validation_mode(ValidationMode::Strict)
        // Nothing is forwarded until the node reports Accept.
        .validate_messages()
        .message_id_fn({
            let consensus_topic = names.consensus_topic.hash();
            move |m: &gossipsub::Message| message_id(&consensus_topic, m)
        })
        .heartbeat_interval(limits.gossip_heartbeat)
        .heartbeat_initial_delay(limits.gossip_heartbeat)
        .duplicate_cache_time(GOSSIP_DUPLICATE_CACHE)
        .max_transmit_size(GOSSIP_RPC_BYTES_MAX)
        .max_transmit_size_for_topic(
            limits.tx_gossip_bytes_max + GOSSIP_ENVELOPE_BYTES,
            names.tx_topic.hash(),
        )
        .max_transmit_size_for_topic(
            limits.consensus_gossip_bytes_max + GOSSIP_ENVELOPE_BYTES,
            names.consensus_topic.hash(),
        )
        .max_publish_messages(GOSSIP_MESSAGES_PER_RPC_MAX)
        .connection_handler_queue_len(GOSSIP_PEER_QUEUE_LEN)
        .build()
        .map_err(|e| e.to_string())
}

/// Gossip score under which no gossip (IHAVE/IWANT) is exchanged with a peer.
pub const GOSSIP_THRESHOLD: f64 = -100.0;
/// Score under which we do not publish to a peer.
pub const PUBLISH_THRESHOLD: f64 = -200.0;
/// Score under which gossipsub ignores the peer entirely; the network task
/// also bans it ([`super::Misbehaviour::GossipGraylisted`]).
pub const GRAYLIST_THRESHOLD: f64 = -400.0;
/// Weight of one rejected transaction (squared count): -10 n².
pub const TX_INVALID_MESSAGE_WEIGHT: f64 = -10.0;
/// Weight of one rejected consensus message (squared count): -50 n².
pub const CONSENSUS_INVALID_MESSAGE_WEIGHT: f64 = -50.0;
/// Per-second decay of the rejected-message counters (half-life ~69 s).
pub const INVALID_MESSAGE_DECAY: f64 = 0.99;

/// Peer scoring. Only what an honest alliance node never triggers is
/// penalised, so that a slow or quiet merchant is never punished:
///
/// - P4, rejected messages: `weight × n²` with `n` the decayed count. Seven
///   rejected transactions (-490) or three rejected consensus messages (-450)
///   in about a minute cross the graylist threshold (-400).
/// - P7, protocol misbehaviour (broken IWANT promises, early re-GRAFT): -10
///   per unit squared above 6.
/// - P5, application score: minus the node's misbehaviour points (weight 1).
/// - P1/P2 (time in mesh, first deliveries) give at most +10 in total
///   (`topic_score_cap`): a good history cannot hide garbage (seven rejected
///   transactions still end at -480).
/// - P3/P3b (mesh delivery rate) are off: transaction traffic is bursty and
///   may be silent for minutes. P6 (IP colocation) is off: membership, not
///   IP diversity, is the Sybil defence.
fn score_params(names: &ProtocolNames) -> (PeerScoreParams, PeerScoreThresholds) {
    let topic = |invalid_weight: f64| TopicScoreParams {
        topic_weight: 1.0,
        time_in_mesh_weight: 0.01,
        time_in_mesh_quantum: Duration::from_secs(1),
        time_in_mesh_cap: 300.0,
        first_message_deliveries_weight: 0.5,
        first_message_deliveries_decay: 0.9,
        first_message_deliveries_cap: 20.0,
        mesh_message_deliveries_weight: 0.0,
        mesh_failure_penalty_weight: 0.0,
        invalid_message_deliveries_weight: invalid_weight,
        invalid_message_deliveries_decay: INVALID_MESSAGE_DECAY,
        ..TopicScoreParams::default()
    };
    let mut params = PeerScoreParams {
        topic_score_cap: 10.0,
        app_specific_weight: 1.0,
        ip_colocation_factor_weight: 0.0,
        behaviour_penalty_weight: -10.0,
        behaviour_penalty_threshold: 6.0,
        behaviour_penalty_decay: 0.9,
        decay_interval: Duration::from_secs(1),
        decay_to_zero: 0.01,
        retain_score: Duration::from_secs(3600),
        ..PeerScoreParams::default()
    };
    params
        .topics
        .insert(names.tx_topic.hash(), topic(TX_INVALID_MESSAGE_WEIGHT));
    params.topics.insert(
        names.consensus_topic.hash(),
        topic(CONSENSUS_INVALID_MESSAGE_WEIGHT),
    );
    let thresholds = PeerScoreThresholds {
        gossip_threshold: GOSSIP_THRESHOLD,
        publish_threshold: PUBLISH_THRESHOLD,
        graylist_threshold: GRAYLIST_THRESHOLD,
        // Peer exchange is off; nobody is trusted to hand out peers.
        accept_px_threshold: 1000.0,
        opportunistic_graft_threshold: 1.0,
    };
    (params, thresholds)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_chain_id() {
        let names = ProtocolNames::new("alliance-devnet").unwrap();
        assert_eq!(
            names.tx_topic.to_string(),
            "/points-alliance/alliance-devnet/tx/1"
        );
        assert_eq!(
            names.consensus_topic.to_string(),
            "/points-alliance/alliance-devnet/consensus/1"
        );
        assert_eq!(
            names.sync_protocol.as_ref(),
            "/points-alliance/alliance-devnet/sync/1"
        );
        let other = ProtocolNames::new("alliance-testnet").unwrap();
        assert_ne!(names.tx_topic.hash(), other.tx_topic.hash());
        assert_eq!(names.topic_of(&other.tx_topic.hash()), None);
    }

    #[test]
    fn configuration_is_accepted_by_libp2p() {
        let names = ProtocolNames::new("alliance-devnet").unwrap();
        let (params, thresholds) = score_params(&names);
        params.validate().unwrap();
        thresholds.validate().unwrap();
        gossipsub_config(&names, &NetworkLimits::default()).unwrap();
    }

    #[test]
    fn documented_reject_counts_reach_the_graylist() {
        let score = |weight: f64, n: f64| weight * n * n;
        assert!(score(TX_INVALID_MESSAGE_WEIGHT, 6.0) > GRAYLIST_THRESHOLD);
        assert!(score(TX_INVALID_MESSAGE_WEIGHT, 7.0) < GRAYLIST_THRESHOLD);
        assert!(score(CONSENSUS_INVALID_MESSAGE_WEIGHT, 2.0) > GRAYLIST_THRESHOLD);
        assert!(score(CONSENSUS_INVALID_MESSAGE_WEIGHT, 3.0) < GRAYLIST_THRESHOLD);
    }
}
