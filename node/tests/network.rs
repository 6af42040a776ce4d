//! The network layer over real sockets on 127.0.0.1: gossip validation and
//! forwarding, member-only consensus, block sync and its limits, punishment
//! of a garbage sender, and the key <-> peer id mapping.
//!
//! No sleeps that hope: every wait is for an event or a condition, under a
//! deadline. The only fixed wait is the window in which something must
//! *not* happen.

use std::time::Duration;

use alliance_node::network::{
    peer_id_of, public_key_of, ChainStatus, Multiaddr, Network, NetworkConfig, NetworkEvent,
    NetworkHandle, NetworkLimits, PeerId, PeerInfo, RefusalReason, SyncError, SyncRequest,
    SyncResponse, Verdict,
};
use alliance_protocol::{Hash32, Keypair, PublicKey, Transaction, TxBody};
use tokio::sync::mpsc;
use tokio::time::{sleep, timeout, Instant};

const CHAIN: &str = "alliance-nettest";
/// Deadline for anything that should happen on loopback.
const DEADLINE: Duration = Duration::from_secs(10);
/// Window in which something must not happen.
const QUIET: Duration = Duration::from_millis(600);

struct Node {
    key: Keypair,
    handle: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    /// Listen address with `/p2p/<peer id>`.
    addr: Multiaddr,
}

impl Node {
    fn peer(&self) -> PeerId {
        self.handle.local_peer_id()
    }
}

fn fast_limits() -> NetworkLimits {
    // A fast heartbeat so meshes form in a fraction of a second.
    NetworkLimits {
        gossip_heartbeat: Duration::from_millis(100),
        ..NetworkLimits::default()
    }
}

async fn start(
    label: &str,
    members: &[PublicKey],
    bootstrap: &[&Node],
    limits: NetworkLimits,
) -> Node {
    let key = Keypair::from_label(label);
    let mut config = NetworkConfig::new(key.seed(), CHAIN, members.to_vec());
    config.listen_addrs = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
    config.bootstrap_addrs = bootstrap.iter().map(|n| n.addr.clone()).collect();
    config.limits = limits;
    let (handle, mut events) = Network::spawn(config).unwrap();
    let listen = next(&mut events, |e| match e {
        NetworkEvent::Listening { addr } => Some(addr.clone()),
        _ => None,
    })
    .await;
    let addr = listen.with_p2p(handle.local_peer_id()).unwrap();
    Node {
        key,
        handle,
        events,
        addr,
    }
}

/// The first event for which `f` returns `Some`, skipping others.
async fn next<T>(
    events: &mut mpsc::Receiver<NetworkEvent>,
    mut f: impl FnMut(&NetworkEvent) -> Option<T>,
) -> T {
    timeout(DEADLINE, async {
        loop {
            let event = events.recv().await.expect("network task stopped");
            if let Some(t) = f(&event) {
                return t;
            }
        }
    })
    .await
    .expect("event did not arrive before the deadline")
}

/// Asserts no event matching `f` arrives within [`QUIET`].
async fn assert_quiet(
    events: &mut mpsc::Receiver<NetworkEvent>,
    what: &str,
    mut f: impl FnMut(&NetworkEvent) -> bool,
) {
    let found = timeout(QUIET, async {
        loop {
            match events.recv().await {
                Some(event) if f(&event) => return event,
                Some(_) => {}
                None => std::future::pending::<()>().await,
            }
        }
    })
    .await;
    if let Ok(event) = found {
        panic!("unexpected {what}: {event:?}");
    }
}

/// Polls `handle.peers()` until `cond` holds.
async fn until_peers(handle: &NetworkHandle, what: &str, cond: impl Fn(&[PeerInfo]) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let peers = handle.peers().await.unwrap();
        if cond(&peers) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; peers: {peers:#?}"
        );
        sleep(Duration::from_millis(25)).await;
    }
}

/// Polls a counter until `cond` holds.
async fn until_stats(
    handle: &NetworkHandle,
    what: &str,
    cond: impl Fn(&alliance_node::network::NetworkStats) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let stats = handle.stats();
        if cond(&stats) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for: {what}; stats: {stats:#?}"
        );
        sleep(Duration::from_millis(25)).await;
    }
}

fn has_peer(peers: &[PeerInfo], peer: PeerId, f: impl Fn(&PeerInfo) -> bool) -> bool {
    peers.iter().any(|p| p.peer == peer && f(p))
}

/// `peer` is subscribed to both topics and in our mesh for both.
fn meshed(peers: &[PeerInfo], peer: PeerId) -> bool {
    has_peer(peers, peer, |p| {
        p.in_mesh.len() == 2 && p.subscribed.len() == 2
    })
}

fn transfer(from: &Keypair, nonce: u64) -> Vec<u8> {
    let to = Keypair::from_label("customer").public();
    Transaction::sign(
        CHAIN,
        from,
        nonce,
        TxBody::Transfer {
            to,
            amount: 5,
            memo: String::new(),
        },
    )
    .to_bytes()
}

/// A node's mempool check, as far as the network tests need it: the bytes
/// must be a transaction of this chain with a valid signature.
fn judge(bytes: &[u8]) -> Verdict {
    match Transaction::from_bytes(bytes) {
        Ok(tx) if tx.verify_for_chain(CHAIN).is_ok() => Verdict::Accept,
        _ => Verdict::Reject,
    }
}

#[tokio::test]
async fn transaction_is_forwarded_only_after_accept() {
    let keys: Vec<PublicKey> = ["a", "b", "c"]
        .iter()
        .map(|l| Keypair::from_label(l).public())
        .collect();
    // Line topology: A - B - C. C hears of A's messages only through B.
    let mut b = start("b", &keys, &[], fast_limits()).await;
    let a = start("a", &keys, &[&b], fast_limits()).await;
    let mut c = start("c", &keys, &[&b], fast_limits()).await;
    until_peers(&b.handle, "B meshes with A and C", |p| {
        meshed(p, a.peer()) && meshed(p, c.peer())
    })
    .await;
    until_peers(&a.handle, "A sees B subscribed", |p| meshed(p, b.peer())).await;
    until_peers(&c.handle, "C sees B subscribed", |p| meshed(p, b.peer())).await;
    assert!(
        !c.handle
            .peers()
            .await
            .unwrap()
            .iter()
            .any(|p| p.peer == a.peer()),
        "C must not be connected to A"
    );

    let tx = transfer(&a.key, 0);
    a.handle.publish_transaction(tx.clone()).await.unwrap();

    let (from, id) = next(&mut b.events, |e| match e {
        NetworkEvent::Transaction { bytes, from, id } if *bytes == tx => Some((*from, id.clone())),
        _ => None,
    })
    .await;
    assert_eq!(from, a.peer());
    // B has not judged it: C must not get it.
    assert_quiet(&mut c.events, "transaction before B accepted", |e| {
        matches!(e, NetworkEvent::Transaction { .. })
    })
    .await;

    assert_eq!(judge(&tx), Verdict::Accept);
    b.handle.report(id, from, Verdict::Accept).await.unwrap();
    let (from, id) = next(&mut c.events, |e| match e {
        NetworkEvent::Transaction { bytes, from, id } if *bytes == tx => Some((*from, id.clone())),
        _ => None,
    })
    .await;
    assert_eq!(from, b.peer(), "C got it from B, the only path");
    c.handle.report(id, from, Verdict::Accept).await.unwrap();

    assert_eq!(a.handle.stats().tx_messages_out, 1);
    assert_eq!(b.handle.stats().verdicts_accepted, 1);
    assert_eq!(c.handle.stats().tx_messages_in, 1);
}

#[tokio::test]
async fn publishing_alone_is_a_no_op() {
    let key = Keypair::from_label("alone").public();
    let node = start("alone", &[key], &[], fast_limits()).await;
    node.handle
        .publish_transaction(transfer(&node.key, 0))
        .await
        .unwrap();
    node.handle
        .publish_consensus(b"vote".to_vec())
        .await
        .unwrap();
    until_stats(&node.handle, "both publishes counted as no-peer", |s| {
        s.publish_no_peers == 2
    })
    .await;
    assert_eq!(node.handle.stats().publish_failures, 0);
    // Too large is refused at the handle, before the task.
    let big = vec![0u8; NetworkLimits::default().tx_gossip_bytes_max + 1];
    assert!(node.handle.publish_transaction(big).await.is_err());
}

#[tokio::test]
async fn oversized_gossip_is_dropped_and_the_connection_survives() {
    let members: Vec<PublicKey> = ["a", "b"]
        .iter()
        .map(|l| Keypair::from_label(l).public())
        .collect();
    // A carries transactions of at most 256 bytes; B the default 2 KiB.
    let strict = NetworkLimits {
        tx_gossip_bytes_max: 256,
        ..fast_limits()
    };
    let mut a = start("a", &members, &[], strict).await;
    let b = start("b", &members, &[&a], fast_limits()).await;
    until_peers(&a.handle, "A sees B subscribed", |p| meshed(p, b.peer())).await;
    until_peers(&b.handle, "B sees A subscribed", |p| meshed(p, a.peer())).await;

    // 2 000 bytes (within B's limit): A's gossipsub codec drops it unseen.
    b.handle
        .publish_transaction(vec![0x5a; 2000])
        .await
        .unwrap();
    let small = transfer(&b.key, 0);
    assert!(small.len() <= 256);
    b.handle.publish_transaction(small.clone()).await.unwrap();
    let bytes = next(&mut a.events, |e| match e {
        NetworkEvent::Transaction { bytes, .. } => Some(bytes.clone()),
        _ => None,
    })
    .await;
    assert_eq!(
        bytes, small,
        "the first transaction A sees is the small one"
    );
    assert_eq!(a.handle.stats().tx_messages_in, 1);
    // Gossipsub counted the oversized message as invalid.
    let peers = a.handle.peers().await.unwrap();
    assert!(
        has_peer(&peers, b.peer(), |p| p.gossip_score < 0.0),
        "{peers:#?}"
    );
}

#[tokio::test]
async fn consensus_from_a_non_member_is_rejected_by_the_network() {
    let a_key = Keypair::from_label("a").public();
    let b_key = Keypair::from_label("b").public();
    let members = [a_key, b_key];
    let mut a = start("a", &members, &[], fast_limits()).await;
    let b = start("b", &members, &[&a], fast_limits()).await;
    // X runs the same software but is not a member.
    let x = start("outsider", &members, &[&a], fast_limits()).await;
    until_peers(&a.handle, "A sees B and X subscribed", |p| {
        meshed(p, b.peer()) && meshed(p, x.peer())
    })
    .await;
    until_peers(&x.handle, "X sees A subscribed", |p| meshed(p, a.peer())).await;
    until_peers(&b.handle, "B sees A subscribed", |p| meshed(p, a.peer())).await;
    let peers = a.handle.peers().await.unwrap();
    assert!(has_peer(&peers, b.peer(), |p| p.is_member && p.key == Some(b_key)));
    assert!(has_peer(&peers, x.peer(), |p| !p.is_member
        && p.key == Some(x.key.public())));

    x.handle
        .publish_consensus(b"forged vote".to_vec())
        .await
        .unwrap();
    until_stats(&a.handle, "A rejects X's consensus message", |s| {
        s.consensus_non_member_rejected == 1
    })
    .await;

    b.handle
        .publish_consensus(b"member vote".to_vec())
        .await
        .unwrap();
    // The member's message arrives; the outsider's never did (it would have
    // been queued first).
    let event = next(&mut a.events, |e| match e {
        NetworkEvent::Consensus {
            bytes,
            from,
            source_key,
            ..
        } => Some((bytes.clone(), *from, *source_key)),
        _ => None,
    })
    .await;
    assert_eq!(event, (b"member vote".to_vec(), b.peer(), b_key));
    assert_quiet(&mut a.events, "a second consensus message", |e| {
        matches!(e, NetworkEvent::Consensus { .. })
    })
    .await;
    // The rejection counted against X's gossip score.
    let peers = a.handle.peers().await.unwrap();
    assert!(
        has_peer(&peers, x.peer(), |p| p.gossip_score < 0.0),
        "{peers:#?}"
    );
}

/// Serves sync requests on `node`'s events the way a store would, with a
/// chain of 300 small blocks, except that `from_height` 1000 returns four
/// 32 KiB blocks. Reports each `max_count` seen.
fn serve_blocks(
    mut events: mpsc::Receiver<NetworkEvent>,
    handle: NetworkHandle,
) -> mpsc::UnboundedReceiver<u32> {
    let (seen_tx, seen_rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let NetworkEvent::SyncRequest {
                request, responder, ..
            } = event
            else {
                continue;
            };
            let response = match request {
                SyncRequest::GetBlock { .. } => SyncResponse::Blocks(vec![vec![0xcd; 64]]),
                SyncRequest::GetCertificates { .. } => SyncResponse::Certificates(vec![]),
                SyncRequest::Status => SyncResponse::Status(ChainStatus {
                    tip_height: 300,
                    tip_hash: Hash32([7; 32]),
                }),
                SyncRequest::GetBlocks {
                    from_height: 1000,
                    max_count,
                } => {
                    let _ = seen_tx.send(max_count);
                    SyncResponse::Blocks(vec![vec![0xab; 32 * 1024]; 4])
                }
                SyncRequest::GetBlocks {
                    from_height,
                    max_count,
                } => {
                    let _ = seen_tx.send(max_count);
                    // A careless store returns more than asked: the
                    // network trims it.
                    SyncResponse::Blocks(
                        (from_height..from_height + 300)
                            .map(|h| format!("block-{h}").into_bytes())
                            .collect(),
                    )
                }
            };
            handle.respond(responder, response).await.unwrap();
        }
    });
    seen_rx
}

#[tokio::test]
async fn block_sync_round_trip_with_caps_and_size_limits() {
    let members: Vec<PublicKey> = ["a", "b"]
        .iter()
        .map(|l| Keypair::from_label(l).public())
        .collect();
    let a = start("a", &members, &[], fast_limits()).await;
    let mut b = start("b", &members, &[&a], fast_limits()).await;
    // An auditor (non-member) whose codec takes responses of 64 KiB at most.
    let small = NetworkLimits {
        sync_response_bytes_max: 64 * 1024,
        ..fast_limits()
    };
    let mut c = start("auditor", &members, &[&a], small).await;
    let a_peer = a.peer();
    next(&mut b.events, |e| {
        matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_peer).then_some(())
    })
    .await;
    next(&mut c.events, |e| {
        matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_peer).then_some(())
    })
    .await;
    let mut seen = serve_blocks(a.events, a.handle.clone());

    let status = b.handle.request_status(a_peer).await.unwrap();
    assert_eq!(
        status,
        ChainStatus {
            tip_height: 300,
            tip_hash: Hash32([7; 32])
        }
    );

    // 10 000 asked: capped to 256 before sending; 300 answered: trimmed.
    let blocks = b.handle.request_blocks(a_peer, 5, 10_000).await.unwrap();
    assert_eq!(seen.recv().await, Some(256));
    assert_eq!(blocks.len(), 256);
    assert_eq!(blocks[0], b"block-5");
    assert_eq!(blocks[255], b"block-260");
    assert_eq!(a.handle.stats().sync_responses_truncated, 1);

    // A zero count is refused by the responder's network layer.
    assert_eq!(
        b.handle.request_blocks(a_peer, 5, 0).await,
        Err(SyncError::Refused(RefusalReason::BadRequest))
    );

    // 128 KiB of blocks: fine for A, too much for C's codec, which refuses
    // it; C keeps working.
    let err = c.handle.request_blocks(a_peer, 1000, 4).await.unwrap_err();
    assert!(matches!(err, SyncError::Transport(_)), "{err:?}");
    assert_eq!(seen.recv().await, Some(4));
    assert_eq!(
        c.handle.request_status(a_peer).await.unwrap().tip_height,
        300
    );
    assert_eq!(
        b.handle
            .request_blocks(a_peer, 1000, 4)
            .await
            .unwrap()
            .len(),
        4
    );

    // Not connected: an immediate error, not a timeout.
    let stranger = peer_id_of(&Keypair::from_label("stranger").public());
    assert_eq!(
        b.handle.request_status(stranger).await,
        Err(SyncError::NotConnected)
    );
}

#[tokio::test]
async fn sync_request_is_refused_not_dropped_when_the_node_is_busy() {
    let members: Vec<PublicKey> = ["a", "b"]
        .iter()
        .map(|l| Keypair::from_label(l).public())
        .collect();
    // A's node never reads its events, and its queue holds one.
    let tiny = NetworkLimits {
        event_queue_len: 1,
        ..fast_limits()
    };
    let a = start("a", &members, &[], tiny).await;
    let mut b = start("b", &members, &[&a], fast_limits()).await;
    let a_peer = a.peer();
    next(&mut b.events, |e| {
        matches!(e, NetworkEvent::PeerConnected { peer, .. } if *peer == a_peer).then_some(())
    })
    .await;
    // A's queue holds its PeerConnected(B): the request cannot be queued.
    assert_eq!(
        b.handle.request_status(a_peer).await,
        Err(SyncError::Refused(RefusalReason::Busy))
    );
    assert_eq!(a.handle.stats().sync_requests_refused_busy, 1);
}

#[tokio::test]
async fn garbage_sender_is_rejected_then_banned_and_others_keep_working() {
    let members: Vec<PublicKey> = ["a", "b", "garbler"]
        .iter()
        .map(|l| Keypair::from_label(l).public())
        .collect();
    let a = start("a", &members, &[], fast_limits()).await;
    let b = start("b", &members, &[&a], fast_limits()).await;
    // A member, even: membership does not buy tolerance for garbage.
    let x = start("garbler", &members, &[&a], fast_limits()).await;
    until_peers(&a.handle, "A sees B and X subscribed", |p| {
        meshed(p, b.peer()) && meshed(p, x.peer())
    })
    .await;
    until_peers(&x.handle, "X sees A subscribed", |p| meshed(p, a.peer())).await;
    until_peers(&b.handle, "B sees A subscribed", |p| meshed(p, a.peer())).await;

    // A's node: judges every transaction, reports disconnections and the
    // transactions it accepted.
    let (seen_tx, mut seen) = mpsc::unbounded_channel();
    let (mut a_events, a_handle) = (a.events, a.handle.clone());
    tokio::spawn(async move {
        while let Some(event) = a_events.recv().await {
            match event {
                NetworkEvent::Transaction { bytes, from, id } => {
                    let verdict = judge(&bytes);
                    a_handle.report(id, from, verdict).await.unwrap();
                    if verdict == Verdict::Accept {
                        let _ = seen_tx.send(Err(bytes));
                    }
                }
                NetworkEvent::PeerDisconnected { peer, .. } => {
                    let _ = seen_tx.send(Ok(peer));
                }
                _ => {}
            }
        }
    });

    // Three rejects: the score drops (-10 x 3^2) but X stays.
    for i in 0..3u32 {
        x.handle
            .publish_transaction(format!("garbage {i}").into_bytes())
            .await
            .unwrap();
    }
    until_stats(&a.handle, "three rejections", |s| s.verdicts_rejected == 3).await;
    let peers = a.handle.peers().await.unwrap();
    assert!(
        has_peer(&peers, x.peer(), |p| p.gossip_score < -80.0),
        "{peers:#?}"
    );

    // More garbage: past the graylist threshold X is banned.
    for i in 3..12u32 {
        x.handle
            .publish_transaction(format!("garbage {i}").into_bytes())
            .await
            .unwrap();
    }
    let x_peer = x.peer();
    let gone = timeout(DEADLINE, async {
        loop {
            if let Some(Ok(peer)) = seen.recv().await {
                if peer == x_peer {
                    return;
                }
            }
        }
    })
    .await;
    assert!(
        gone.is_ok(),
        "X was not disconnected; A stats: {:#?}",
        a.handle.stats()
    );
    let stats = a.handle.stats();
    assert!(stats.verdicts_rejected >= 7, "{stats:#?}");
    assert_eq!(stats.bans, 1);
    assert_eq!(stats.peers_banned, 1);

    // B is unaffected: its transaction is accepted by A.
    let tx = transfer(&b.key, 0);
    b.handle.publish_transaction(tx.clone()).await.unwrap();
    let got = timeout(DEADLINE, async {
        loop {
            if let Some(Err(bytes)) = seen.recv().await {
                return bytes;
            }
        }
    })
    .await
    .expect("B's transaction reached A");
    assert_eq!(got, tx);

    // X keeps redialling (A is its bootstrap) but stays out.
    sleep(QUIET).await;
    let peers = a.handle.peers().await.unwrap();
    assert!(!peers.iter().any(|p| p.peer == x_peer), "{peers:#?}");
    assert!(peers.iter().any(|p| p.peer == b.peer()));
}

#[test]
fn alliance_keys_and_peer_ids_map_both_ways() {
    for label in ["coffee", "bakery", "auditor"] {
        let key = Keypair::from_label(label);
        let peer = peer_id_of(&key.public());
        assert_eq!(public_key_of(&peer), Some(key.public()));
        // The libp2p identity a node derives from its seed has that peer id.
        let libp2p = alliance_node::network::identity::libp2p_keypair(&key.seed()).unwrap();
        assert_eq!(libp2p.public().to_peer_id(), peer);
    }
    // A random (non-alliance) peer id has no key.
    let random = PeerId::random();
    assert_eq!(public_key_of(&random), None);
}
