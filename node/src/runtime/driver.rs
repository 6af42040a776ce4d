//! The node's driver: carries out the consensus core's outputs, executes
//! and commits blocks, and runs both sides of sync (status polls, bulk sync
//! through [`crate::sync`], block fetch, the certificate resolver). Generic
//! over its [`Net`] and [`Clock`] and synchronous, so that the real node
//! ([`super::node`]) and the deterministic simulation run the same code.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::Arc;

use alliance_consensus::{
    Anchor, CachingVerifier, Config as CoreConfig, Core, Input, Message, Output, Verifier,
};
use alliance_protocol::{Certificate, FinalizedBlock, Keypair, PublicKey, ValidatorSet, VoteKind};
use libp2p::PeerId;

use super::io::{Clock, Event, Net};
use super::shared::Shared;
use super::{SYNC_GAP_MIN, SYNC_POLL};
use crate::chain::Chain;
use crate::config::NodeConfig;
use crate::network::{Misbehaviour, SyncRequest, SyncResponse, Verdict};

/// Blocks asked for per sync request (the network caps responses at 256).
const SYNC_BATCH: u32 = 128;
/// Status polls in a row behind a peer, with a tip that did not move, after
/// which even a gap smaller than `SYNC_GAP_MIN` is synced in bulk.
const STALLED_POLLS: u32 = 2;
/// Signers whose next pending transaction is re-checked after each block:
/// bounds the work while still clearing doomed transactions quickly.
const EVICT_SIGNERS_PER_BLOCK: usize = 256;

/// A request from consensus to build a block, waiting for its moment.
struct PendingProposal {
    view: u64,
    ancestry: Vec<Arc<alliance_protocol::Block>>,
    not_before_ms: u64,
    empty_after_ms: u64,
}

/// The driver: owns the consensus core and the node's side of sync. It
/// handles one [`Event`] at a time, synchronously; what it sends goes
/// through its [`Net`], timers through its [`Clock`].
pub struct Driver<N: Net, C: Clock> {
    shared: Arc<Shared>,
    key: Keypair,
    config: NodeConfig,
    core: Core<CachingVerifier>,
    /// Signature verdicts shared by the gossip filter and the core.
    verifier: CachingVerifier,
    net: N,
    clock: C,
    /// A status poll or a bulk sync request is out.
    sync_in_flight: bool,
    /// When the last status poll went out (None: never).
    last_sync_poll_ms: Option<u64>,
    /// Our tip when the last status answer came (a tip that has not moved
    /// since, behind a peer's, is stalled).
    tip_at_last_status: Option<u64>,
    /// Status answers in a row that found us behind with that same tip.
    stalled_polls: u32,
    pending: Option<PendingProposal>,
    /// Connected peers: alliance key and membership. Ordered, so that the
    /// choice of a peer depends only on what happened (replayable).
    peers: BTreeMap<PeerId, (Option<PublicKey>, bool)>,
    /// Test-only misbehaviour (see [`crate::byzantine`]).
    #[cfg(feature = "byzantine")]
    byzantine: Option<crate::byzantine::Byzantine>,
}

fn core_config(
    shared: &Shared,
    key: &Keypair,
    config: &NodeConfig,
    validators: ValidatorSet,
) -> CoreConfig {
    let mut c = CoreConfig::new(shared.chain_id.clone(), key.clone(), validators);
    c.leader_timeout_ms = config.leader_timeout_ms;
    c.notarization_timeout_ms = config.notarization_timeout_ms;
    c
}

/// A consensus core for the chain's current epoch, restored from what the
/// store holds: the anchor (last finalized block), this node's persisted
/// votes and the certificate journal. Used at start, after a bulk sync and
/// at an epoch change: one way to (re)start a core.
fn restore_core(
    shared: &Shared,
    key: &Keypair,
    config: &NodeConfig,
    chain: &Chain,
    verifier: &CachingVerifier,
) -> Result<Core<CachingVerifier>, crate::store::StoreError> {
    let journal = chain.store().journaled_certificates()?;
    let blocks = chain.store().voted_blocks(chain.state().tip().height)?;
    let validators = chain.state().validator_set();
    // Only this epoch's own votes bind the new core. Views go on across an
    // epoch change, so a vote the node cast in the previous epoch for a view
    // after the anchor (a nullify of the view that was running when the
    // epoch ended) would otherwise stop it from voting in that view again,
    // while nobody of the new epoch can count the old vote: the view could
    // never complete (found by the whole-node simulation). Votes sign their
    // epoch's validator set, so the test is their signature.
    let domain = alliance_protocol::VoteDomain {
        chain_id: shared.chain_id.clone(),
        validator_set_hash: validators.hash(),
    };
    let mut check = verifier.clone();
    let votes: Vec<_> = chain
        .store()
        .votes()?
        .into_iter()
        .filter(|v| check.verify(&domain, &v.data, &[(v.signer, v.signature)]))
        .collect();
    Ok(Core::restore(
        core_config(shared, key, config, validators),
        anchor_of(chain),
        votes,
        verifier.clone(),
    )
    .with_journal(journal)
    .with_blocks(blocks))
}

/// The anchor (last finalized block) of a chain, for the consensus core.
fn anchor_of(chain: &Chain) -> Anchor {
    let tip = chain.state().tip();
    let view = match chain.store().certificate(tip.height) {
        Ok(Some(cert)) => cert.view,
        _ => 0,
    };
    Anchor {
        view,
        height: tip.height,
        hash: tip.hash,
    }
}

impl<N: Net, C: Clock> Driver<N, C> {
    /// A driver for the node whose chain and mempool are in `shared`, with
    /// a consensus core restored from its store.
    pub fn new(
        shared: Arc<Shared>,
        key: Keypair,
        config: NodeConfig,
        net: N,
        clock: C,
    ) -> Result<Self, crate::store::StoreError> {
        let verifier = CachingVerifier::default();
        let core = {
            let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
            restore_core(&shared, &key, &config, &chain, &verifier)?
        };
        Ok(Driver {
            shared,
            key,
            config,
            core,
            verifier,
            net,
            clock,
            sync_in_flight: false,
            last_sync_poll_ms: None,
            tip_at_last_status: None,
            stalled_polls: 0,
            pending: None,
            peers: BTreeMap::new(),
            #[cfg(feature = "byzantine")]
            byzantine: None,
        })
    }

    /// Makes this node misbehave as `byzantine` says (tests only).
    #[cfg(feature = "byzantine")]
    pub fn with_byzantine(mut self, byzantine: crate::byzantine::Byzantine) -> Self {
        self.byzantine = Some(byzantine);
        self
    }

    /// The shared state this driver updates.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// The consensus core (read-only: the simulation inspects it).
    pub fn core(&self) -> &Core<CachingVerifier> {
        &self.core
    }

    /// The network port (the simulation reaches its outbox through it).
    pub fn net_mut(&mut self) -> &mut N {
        &mut self.net
    }

    /// The clock port.
    pub fn clock_mut(&mut self) -> &mut C {
        &mut self.clock
    }

    /// Starts the consensus core: its first timers and messages.
    pub fn start(&mut self) -> anyhow::Result<()> {
        let outputs = self.core.start();
        self.execute(outputs)
    }

    /// Handles one event to completion. An error is fatal (the store
    /// failed, or consensus contradicts the stored chain): the node stops.
    pub fn handle(&mut self, event: Event<N::MessageRef, N::Responder>) -> anyhow::Result<()> {
        match event {
            Event::PeerConnected {
                peer,
                key,
                is_member,
            } => {
                tracing::info!(%peer, is_member, "peer connected");
                self.peers.insert(peer, (key, is_member));
                Ok(())
            }
            Event::PeerDisconnected { peer } => {
                self.peers.remove(&peer);
                Ok(())
            }
            Event::Consensus {
                bytes,
                source_key,
                message,
            } => self.on_consensus(&bytes, source_key, message),
            Event::SyncRequest { request, responder } => {
                let response = {
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    answer_sync(&chain, &self.core, request)
                };
                self.net.respond(responder, response);
                Ok(())
            }
            Event::Response {
                peer,
                request,
                result,
            } => self.on_response(peer, request, result),
            Event::Timer(id) => {
                let out = self.core.handle(Input::Timer(id));
                self.execute(out)
            }
            Event::Tick => self.on_tick(),
        }
    }

    fn update_status(&self) {
        let mut s = self
            .shared
            .status
            .write()
            .unwrap_or_else(|e| e.into_inner());
        s.view = self.core.view();
        s.is_validator = self.core.validators().contains(&self.key.public());
        s.peers = self
            .peers
            .iter()
            .map(|(p, (k, m))| (p.to_string(), *k, *m))
            .collect();
        s.consensus = self.core.stats().clone();
        s.equivocations = self.core.evidence().count();
        let m = &self.shared.metrics;
        let height = self.shared.tip_height();
        m.height.store(height, Ordering::Relaxed);
        m.view.store(self.core.view(), Ordering::Relaxed);
        m.peers.store(self.peers.len() as u64, Ordering::Relaxed);
        m.sync_lag
            .store(s.best_peer_height.saturating_sub(height), Ordering::Relaxed);
        let pending = self
            .shared
            .mempool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len();
        m.mempool.store(pending as u64, Ordering::Relaxed);
    }

    fn on_tick(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let ready = match &self.pending {
            Some(p) => {
                let has_txs = !self
                    .shared
                    .mempool
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_empty();
                (now >= p.not_before_ms && has_txs) || now >= p.empty_after_ms
            }
            None => false,
        };
        if ready {
            if let Some(p) = self.pending.take() {
                self.build(p)?;
            }
        }
        let poll_due = match self.last_sync_poll_ms {
            None => true,
            Some(at) => now.saturating_sub(at) >= SYNC_POLL.as_millis() as u64,
        };
        if !self.sync_in_flight && poll_due {
            self.last_sync_poll_ms = Some(now);
            self.poll_sync();
        }
        self.update_status();
        Ok(())
    }

    fn build(&mut self, p: PendingProposal) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let block = {
            let mut chain = self.shared.chain.write().unwrap_or_else(|e| e.into_inner());
            let limit = self
                .config
                .block_txs_max
                .min(chain.state().params().block_txs_max) as usize;
            let candidates = self
                .shared
                .mempool
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .candidates(chain.state(), limit);
            let block = chain.build(&p.ancestry, candidates, now, self.key.public());
            record_work(&self.shared, &mut chain);
            block
        };
        match block {
            Ok(block) => {
                let out = self.core.handle(Input::Built {
                    view: p.view,
                    block,
                });
                self.execute(out)
            }
            Err(e) => {
                tracing::warn!(view = p.view, error = %e, "cannot build on the requested parent");
                Ok(())
            }
        }
    }

    /// Carries out the core's outputs in order. Inputs produced on the way
    /// (verdicts) are fed back and their outputs follow.
    fn execute(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
        let mut queue: VecDeque<Output> = outputs.into();
        while let Some(output) = queue.pop_front() {
            match output {
                Output::Persist(vote) => {
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    chain.store().persist_vote(&vote)?;
                }
                Output::PersistBlock(block) => {
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    chain.store().persist_voted_block(&block)?;
                }
                Output::Journal(cert) => {
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    if let Err(e) = chain.store().journal_certificate(&cert) {
                        // Not fatal: the resolver fetches it again if needed.
                        tracing::warn!(error = %e, "cannot journal a certificate");
                    }
                }
                Output::Resolve { views } => self.resolve(views),
                // Only validators speak on the consensus topic: the others'
                // messages are refused there (and cost them a penalty). A
                // follower's core still re-shares certificates it forms.
                Output::Broadcast(_) | Output::Send { .. }
                    if !self.core.validators().contains(&self.key.public()) => {}
                Output::Broadcast(message) | Output::Send { message, .. } => {
                    #[cfg(feature = "byzantine")]
                    let sends = match self.byzantine.as_mut() {
                        Some(b) => b.rewrite(message, self.core.domain()),
                        None => vec![message.to_bytes()],
                    };
                    #[cfg(not(feature = "byzantine"))]
                    let sends = [message.to_bytes()];
                    for bytes in sends {
                        self.net.publish(bytes);
                    }
                }
                Output::SetTimer { id, after_ms } => self.clock.set_timer(id, after_ms),
                Output::Propose { view, ancestry, .. } => {
                    let parent_ts = ancestry
                        .last()
                        .map(|b| b.header.timestamp_ms)
                        .unwrap_or_else(|| {
                            self.shared
                                .chain
                                .read()
                                .unwrap_or_else(|e| e.into_inner())
                                .state()
                                .tip()
                                .timestamp_ms
                        });
                    // Wait for the block interval; propose an empty block
                    // well before the leader timeout so an idle chain stays live.
                    self.pending = Some(PendingProposal {
                        view,
                        ancestry,
                        not_before_ms: parent_ts + self.config.block_interval_ms,
                        empty_after_ms: self.clock.now_ms() + self.config.leader_timeout_ms / 2,
                    });
                }
                Output::Verify {
                    view,
                    block,
                    ancestry,
                } => {
                    // Transactions in the mempool had their signature
                    // verified at admission: not again.
                    let known: Vec<bool> = {
                        let pool = self
                            .shared
                            .mempool
                            .lock()
                            .unwrap_or_else(|e| e.into_inner());
                        block.txs.iter().map(|t| pool.holds(t)).collect()
                    };
                    let verdict = {
                        let mut chain =
                            self.shared.chain.write().unwrap_or_else(|e| e.into_inner());
                        let verdict =
                            chain.verify_known(&block, &ancestry, self.clock.now_ms(), &known);
                        record_work(&self.shared, &mut chain);
                        verdict
                    };
                    if let Err(e) = &verdict {
                        tracing::warn!(view, height = block.header.height, error = %e, "refusing a proposed block");
                    }
                    let input = Input::Verified {
                        view,
                        block_hash: block.hash(),
                        valid: verdict.is_ok(),
                    };
                    queue.extend(self.core.handle(input));
                }
                Output::Fetch { hash, .. } => self.fetch(hash),
                Output::Finalized { block, certificate } => {
                    if let Some(restart) = self.on_finalized(&block, certificate)? {
                        // A new epoch: what the old core still asked for
                        // (votes, verdicts, fetches of the old set) is void.
                        queue.clear();
                        queue.extend(restart);
                    }
                }
                Output::Evidence(e) => {
                    tracing::warn!(signer = %e.first.signer, view = e.first.data.view, "equivocation detected");
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    match chain.store().record_evidence(&e) {
                        Ok(true) => {
                            self.shared
                                .metrics
                                .equivocations
                                .fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {}
                        Err(err) => tracing::warn!(error = %err, "cannot store evidence"),
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits a finalized block. Returns the first outputs of a restarted
    /// core when the block changed the validator set (a new epoch).
    fn on_finalized(
        &mut self,
        block: &alliance_protocol::Block,
        certificate: Certificate,
    ) -> anyhow::Result<Option<Vec<Output>>> {
        let mut chain = self.shared.chain.write().unwrap_or_else(|e| e.into_inner());
        let tip = chain.state().tip();
        if block.header.height <= tip.height {
            // Already committed by bulk sync; it must be the same block.
            let stored = chain
                .store()
                .block(block.header.height)?
                .map(|fb| fb.block.hash());
            anyhow::ensure!(
                stored == Some(block.hash()),
                "consensus finalized a block that conflicts with the stored chain at height {}",
                block.header.height
            );
            return Ok(None);
        }
        // The core checked it against its own set; the ledger's set for this
        // height is the one that counts (they differ only through a bug).
        if let Err(e) = certificate.verify(
            &self.shared.chain_id,
            &chain.state().validator_set(),
            block.header.height,
            &block.hash(),
        ) {
            anyhow::bail!(
                "consensus finalized height {} with a certificate the ledger's validator set refuses: {e}",
                block.header.height
            );
        }
        let view = certificate.view;
        let parent_ts = tip.timestamp_ms;
        let done = chain.finalize(block, certificate.clone())?;
        record_work(&self.shared, &mut chain);
        record_finalized(&self.shared, parent_ts, block, &done);
        let state = chain.state();
        {
            let mut pool = self
                .shared
                .mempool
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pool.remove_committed(&block.txs, &done.tx_ids, state);
            pool.evict_invalid(
                state,
                block.header.timestamp_ms + 1,
                EVICT_SIGNERS_PER_BLOCK,
            );
        }
        let _ = chain.store().prune_after_finalized(
            view.saturating_sub(alliance_consensus::config::VIEW_WINDOW),
            block.header.height,
        );
        tracing::info!(
            height = block.header.height,
            txs = block.txs.len(),
            applied = done
                .outcomes
                .iter()
                .filter(|o| **o == alliance_protocol::state::TxOutcome::Applied)
                .count(),
            "finalized"
        );
        self.shared
            .status
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .finalized_txs += block.txs.len() as u64;
        let _ = self.shared.finalized.send(Arc::new(FinalizedBlock {
            block: block.clone(),
            certificate,
        }));
        // A governance change of the validator set starts a new epoch.
        if &state.validator_set() != self.core.validators() {
            tracing::info!(
                validators = state.validator_set().len(),
                "validator set changed: new epoch"
            );
            drop(chain);
            return Ok(Some(self.restart_core()?));
        }
        Ok(None)
    }

    /// Replaces the consensus core by one restored from the store (after a
    /// bulk sync or at an epoch change) and returns its first outputs. The
    /// network's member list follows the validator set.
    fn restart_core(&mut self) -> anyhow::Result<Vec<Output>> {
        let core = {
            let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
            restore_core(
                &self.shared,
                &self.key,
                &self.config,
                &chain,
                &self.verifier,
            )?
        };
        if core.validators() != self.core.validators() {
            let members: Vec<PublicKey> = core
                .validators()
                .validators()
                .iter()
                .map(|v| v.key)
                .collect();
            self.net.set_members(members);
        }
        self.core = core;
        self.pending = None;
        Ok(self.core.start())
    }

    /// A consensus message from gossip: judged (the verdict decides
    /// whether gossip forwards it), then given to the core unless rejected.
    fn on_consensus(
        &mut self,
        bytes: &[u8],
        source_key: PublicKey,
        gossip: N::MessageRef,
    ) -> anyhow::Result<()> {
        let message = match Message::from_bytes(bytes) {
            Ok(m) => m,
            Err(_) => {
                self.net.report(gossip, Verdict::Reject);
                return Ok(());
            }
        };
        let verdict = self.judge(&message);
        self.net.report(gossip, verdict);
        if verdict == Verdict::Reject {
            return Ok(());
        }
        let out = self.core.handle(Input::Message {
            from: source_key,
            message,
        });
        self.execute(out)
    }

    /// Whether a consensus message is worth forwarding. Votes, proposals
    /// and certificates must carry valid signatures of this epoch's
    /// validators: a forged certificate would otherwise cost every node a
    /// quorum of signature checks. Verdicts land in the verifier's cache,
    /// so the core does not check the same signatures again.
    ///
    /// Only malformed content costs the sender (Reject). A signature that
    /// fails here, or a signer outside this epoch's set, may be an honest
    /// message of the neighbouring epoch (votes sign their validator set,
    /// and nodes switch epochs a few messages apart): it is dropped without
    /// blame (Ignore), so honest peers are never banned at an epoch change.
    fn judge(&mut self, message: &Message) -> Verdict {
        use alliance_consensus::batcher::{check_certificate, check_vote, well_formed};
        let (validators, domain) = (self.core.validators(), self.core.domain());
        let verifier = &mut self.verifier;
        let mut vote_ok = |v: &alliance_protocol::SignedVote| {
            if !well_formed(&v.data) {
                return Verdict::Reject;
            }
            let ok = check_vote(validators, v).is_ok()
                && verifier.verify(domain, &v.data, &[(v.signer, v.signature)]);
            if ok {
                Verdict::Accept
            } else {
                Verdict::Ignore
            }
        };
        match message {
            Message::Vote(v) => vote_ok(v),
            Message::Proposal(p) if p.vote.data.kind == VoteKind::Notarize => vote_ok(&p.vote),
            Message::Proposal(_) => Verdict::Reject,
            Message::Certificate(c) => {
                if !well_formed(&c.vote_data()) {
                    return Verdict::Reject;
                }
                let ok = check_certificate(validators, validators.quorum(), c).is_ok()
                    && verifier.verify(domain, &c.vote_data(), &c.votes);
                if ok {
                    Verdict::Accept
                } else {
                    Verdict::Ignore
                }
            }
        }
    }

    fn member_peers(&self) -> Vec<PeerId> {
        let mut peers: Vec<PeerId> = self
            .peers
            .iter()
            .filter(|(_, (_, m))| *m)
            .map(|(p, _)| *p)
            .collect();
        if peers.is_empty() {
            peers = self.peers.keys().copied().collect();
        }
        peers
    }

    /// Asks a peer for its tip; blocks follow if it is well ahead.
    fn poll_sync(&mut self) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        let peer = peers[(self.clock.now_ms() as usize) % peers.len()];
        self.sync_in_flight = true;
        self.net.request(peer, SyncRequest::Status);
    }

    /// The consensus resolver: asks one member peer (rotating over time, as
    /// the core repeats the request while it is stuck) for the certificates
    /// of `views`; the answer goes to the core, which verifies each.
    fn resolve(&mut self, views: Vec<u64>) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        let pick =
            views.first().copied().unwrap_or(0) as usize + (self.clock.now_ms() / 500) as usize;
        let peer = peers[pick % peers.len()];
        self.net
            .request(peer, SyncRequest::GetCertificates { views });
    }

    /// Asks a member peer for a block the core needs (notarized or
    /// finalized), by hash.
    fn fetch(&mut self, hash: alliance_protocol::Hash32) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        // Rotate over time: the core retries, and the next try asks another peer.
        let pick = hash.0[0] as usize + (self.clock.now_ms() / 1_000) as usize;
        let peer = peers[pick % peers.len()];
        self.net.request(peer, SyncRequest::GetBlock { hash });
    }

    /// The answer to one of our sync requests. An answer of the wrong kind
    /// counts as no answer.
    fn on_response(
        &mut self,
        peer: PeerId,
        request: SyncRequest,
        result: Result<SyncResponse, crate::network::SyncError>,
    ) -> anyhow::Result<()> {
        match (request, result) {
            (SyncRequest::Status, Ok(SyncResponse::Status(status))) => {
                self.on_status(peer, status.tip_height);
                Ok(())
            }
            (SyncRequest::GetBlocks { from_height, .. }, Ok(SyncResponse::Blocks(blocks))) => {
                self.sync_in_flight = false;
                self.on_blocks(peer, from_height, &blocks)
            }
            (SyncRequest::Status | SyncRequest::GetBlocks { .. }, _) => {
                self.sync_in_flight = false;
                Ok(())
            }
            (SyncRequest::GetCertificates { .. }, Ok(SyncResponse::Certificates(certificates))) => {
                let out = self.core.handle(Input::Certificates(certificates));
                self.execute(out)
            }
            (SyncRequest::GetBlock { hash }, Ok(SyncResponse::Blocks(blocks))) => {
                self.on_fetched(peer, hash, &blocks)
            }
            (SyncRequest::GetCertificates { .. } | SyncRequest::GetBlock { .. }, _) => Ok(()),
        }
    }

    /// A peer's tip: sync in bulk when it is well ahead.
    fn on_status(&mut self, peer: PeerId, height: u64) {
        let ours = self.shared.tip_height();
        {
            let mut s = self
                .shared
                .status
                .write()
                .unwrap_or_else(|e| e.into_inner());
            s.best_peer_height = s.best_peer_height.max(height);
        }
        // A small gap is normally closed by consensus itself (it fetches
        // what it lacks). It cannot be when the missing blocks end an epoch
        // (the peers' cores have moved on and no longer answer for it), so
        // a gap over which our tip has not moved for `STALLED_POLLS` polls
        // is synced in bulk too (a healthy node's tip moves every block
        // interval, well within one poll).
        if height > ours && self.tip_at_last_status == Some(ours) {
            self.stalled_polls += 1;
        } else {
            self.stalled_polls = 0;
        }
        self.tip_at_last_status = Some(ours);
        let stalled = self.stalled_polls >= STALLED_POLLS;
        if height >= ours + SYNC_GAP_MIN || (height > ours && stalled) {
            self.net.request(
                peer,
                SyncRequest::GetBlocks {
                    from_height: ours + 1,
                    max_count: SYNC_BATCH,
                },
            );
        } else {
            self.sync_in_flight = false;
        }
    }

    /// A bulk sync answer: its verified finalized path is committed, and
    /// consensus restarts from the new tip.
    fn on_blocks(
        &mut self,
        peer: PeerId,
        from_height: u64,
        blocks: &[Vec<u8>],
    ) -> anyhow::Result<()> {
        let applied = self.apply_synced(peer, from_height, blocks)?;
        if applied > 0 {
            // Restart consensus from the new tip; persisted votes keep it
            // from signing anything conflicting, and the resolver fetches
            // the certificates it lacks.
            tracing::info!(
                height = self.shared.tip_height(),
                applied,
                "synced blocks from a peer"
            );
            let out = self.restart_core()?;
            self.execute(out)?;
            // Keep going while behind.
            self.last_sync_poll_ms = None;
        }
        Ok(())
    }

    /// A block fetched by hash for the core.
    fn on_fetched(
        &mut self,
        peer: PeerId,
        hash: alliance_protocol::Hash32,
        blocks: &[Vec<u8>],
    ) -> anyhow::Result<()> {
        let Some(bytes) = blocks.first() else {
            return Ok(());
        };
        match FinalizedBlock::from_bytes(bytes) {
            // The hash covers the header only: a peer could swap the body.
            Ok(fb) if fb.block.hash() == hash && !fb.block.body_matches_header() => {
                self.net.penalise(peer, Misbehaviour::InvalidBlock);
                Ok(())
            }
            Ok(fb) if fb.block.hash() == hash => {
                let out = self.core.handle(Input::Fetched {
                    block: fb.block,
                    certificate: fb.certificate,
                });
                self.execute(out)
            }
            // The peer finalized another block at that height: not the one
            // asked for.
            Ok(_) => Ok(()),
            Err(_) => {
                self.net.penalise(peer, Misbehaviour::WrongResponse);
                Ok(())
            }
        }
    }

    /// Commits the verified finalized path of a peer's sync answer
    /// ([`crate::sync::commit`]); an answer that is inconsistent in any way is
    /// dropped whole and costs the peer. Returns the count committed.
    fn apply_synced(
        &mut self,
        peer: PeerId,
        from_height: u64,
        blocks: &[Vec<u8>],
    ) -> anyhow::Result<usize> {
        match commit_synced(&self.shared, from_height, blocks) {
            Ok(applied) => Ok(applied),
            Err(crate::sync::SyncCommitError::Fault(fault)) => {
                tracing::warn!(%peer, error = %fault, "sync: refusing a peer's answer");
                self.net.penalise(peer, Misbehaviour::InvalidBlock);
                Ok(0)
            }
            Err(crate::sync::SyncCommitError::Finalize(e)) => Err(e.into()),
        }
    }
}

/// Commits a peer's sync answer ([`crate::sync::commit`]) on the shared
/// chain, with the same bookkeeping as a block finalized by consensus
/// (metrics, mempool, event stream). Returns the count committed.
fn commit_synced(
    shared: &Shared,
    from_height: u64,
    answer: &[Vec<u8>],
) -> Result<usize, crate::sync::SyncCommitError> {
    let mut chain = shared.chain.write().unwrap_or_else(|e| e.into_inner());
    let committed = crate::sync::commit(&mut chain, &shared.chain_id, from_height, answer)?;
    let count = committed.len();
    for c in committed {
        record_finalized(shared, c.parent_timestamp_ms, &c.block.block, &c.done);
        shared
            .mempool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove_committed(&c.block.block.txs, &c.done.tx_ids, chain.state());
        let _ = shared.finalized.send(Arc::new(c.block));
    }
    Ok(count)
}

/// Updates metrics for a committed block.
/// Adds what `chain` did since the last call to the node's work counters.
fn record_work(shared: &Shared, chain: &mut Chain) {
    use crate::metrics::Work;
    let w = chain.take_work();
    let m = &shared.metrics;
    m.work(Work::BlocksBuilt, w.built);
    m.work(Work::BlocksVerified, w.verified);
    m.work(Work::BlocksReplayed, w.replayed);
    m.work(Work::BlockSignatures, w.signatures);
}

fn record_finalized(
    shared: &Shared,
    parent_timestamp_ms: u64,
    block: &alliance_protocol::Block,
    done: &crate::chain::Finalized,
) {
    let m = &shared.metrics;
    m.finalized_blocks.fetch_add(1, Ordering::Relaxed);
    m.finalized_txs
        .fetch_add(block.txs.len() as u64, Ordering::Relaxed);
    m.block_interval.observe(
        block
            .header
            .timestamp_ms
            .saturating_sub(parent_timestamp_ms) as f64
            / 1e3,
    );
    m.finalized(done.tx_ids.iter().copied());
    for o in &done.outcomes {
        if let alliance_protocol::state::TxOutcome::Rejected(e) = o {
            m.rejected(e.code());
        }
    }
}

/// Answers a peer's sync request from the store.
fn answer_sync<V: Verifier>(chain: &Chain, core: &Core<V>, request: SyncRequest) -> SyncResponse {
    use crate::network::{ChainStatus, RefusalReason};
    let tip = chain.state().tip();
    match request {
        SyncRequest::GetBlock { hash } => {
            let stored = match chain.store().height_of(&hash) {
                Ok(Some(h)) => chain.store().block(h).ok().flatten(),
                _ => None,
            };
            let found = stored.or_else(|| {
                core.certified_block(&hash)
                    .map(|(block, certificate)| FinalizedBlock {
                        block: (*block).clone(),
                        certificate,
                    })
            });
            SyncResponse::Blocks(found.map(|fb| vec![fb.to_bytes()]).unwrap_or_default())
        }
        SyncRequest::GetCertificates { views } => {
            SyncResponse::Certificates(core.certificates_for(&views))
        }
        SyncRequest::Status => SyncResponse::Status(ChainStatus {
            tip_height: tip.height,
            tip_hash: tip.hash,
        }),
        SyncRequest::GetBlocks {
            from_height,
            max_count,
        } => {
            if from_height == 0 || max_count == 0 {
                return SyncResponse::Refused(RefusalReason::BadRequest);
            }
            if from_height > tip.height {
                return SyncResponse::Refused(RefusalReason::Unavailable);
            }
            let to = tip
                .height
                .min(from_height.saturating_add(max_count.min(SYNC_BATCH * 2) as u64 - 1));
            let mut out = Vec::new();
            for h in from_height..=to {
                match chain.store().block(h) {
                    Ok(Some(fb)) => out.push(fb.to_bytes()),
                    _ => break,
                }
            }
            SyncResponse::Blocks(out)
        }
    }
}
