//! The running node: one driver task that owns the consensus core and feeds
//! it network messages, timers and the application's verdicts, and executes
//! what it returns (persist, send, build, verify, fetch, commit). The HTTP
//! API runs beside it and shares the chain and mempool through [`Shared`].
//!
//! Control flow lives here; decisions live in the pure cores
//! (`alliance_consensus::Core`, `alliance_protocol::state`) and in
//! [`crate::chain::Chain`] and [`crate::mempool::Mempool`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use alliance_consensus::{
    Anchor, CachingVerifier, Config as CoreConfig, Core, Input, Message, Output, TimerId, Verifier,
};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::{
    Certificate, FinalizedBlock, Keypair, PublicKey, Transaction, ValidatorSet, VoteKind,
};
use libp2p::PeerId;
use tokio::sync::{broadcast, mpsc};

use crate::chain::Chain;
use crate::config::NodeConfig;
use crate::mempool::{AdmitError, Mempool, MempoolLimits};
use crate::network::{
    Misbehaviour, NetworkEvent, NetworkHandle, SyncRequest, SyncResponse, Verdict,
};
use crate::store::Store;

/// Blocks asked for per sync request (the network caps responses at 256).
const SYNC_BATCH: u32 = 128;
/// A node this many heights behind a peer syncs in bulk instead of waiting
/// for consensus to fetch blocks one by one.
const SYNC_GAP_MIN: u64 = 3;
/// How often a node asks a peer for its tip.
const SYNC_POLL: Duration = Duration::from_millis(1_000);
/// Driver tick: checks pending proposals and sync.
const TICK: Duration = Duration::from_millis(20);
/// Finalized-block notifications buffered for slow subscribers (the API's
/// event stream); a subscriber that falls further behind skips ahead.
const FINALIZED_CHANNEL_LEN: usize = 256;
/// Signers whose next pending transaction is re-checked after each block:
/// bounds the work while still clearing doomed transactions quickly.
const EVICT_SIGNERS_PER_BLOCK: usize = 256;
/// Submitted batches at least this large verify signatures on every core.
const SUBMIT_PARALLEL_MIN: usize = 64;
/// Timer firings queued at most.
const TIMER_QUEUE_LEN: usize = 1_024;

/// Milliseconds since the Unix epoch. The only clock of the node.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// What the driver knows that the API shows.
#[derive(Debug, Clone, Default)]
pub struct NodeStatus {
    /// Current consensus view.
    pub view: u64,
    /// Whether this node is a validator of the current epoch.
    pub is_validator: bool,
    /// Connected peers: (peer id, alliance key, member).
    pub peers: Vec<(String, Option<PublicKey>, bool)>,
    /// Highest tip height reported by a peer.
    pub best_peer_height: u64,
    /// Finalized transactions since start.
    pub finalized_txs: u64,
    /// Consensus counters (drops by reason, equivocations...).
    pub consensus: alliance_consensus::Stats,
    /// Equivocations seen (kept by the core).
    pub equivocations: usize,
}

/// State shared between the driver and the HTTP API.
pub struct Shared {
    /// Chain id.
    pub chain_id: String,
    /// Genesis.
    pub genesis: Genesis,
    /// Finalized chain and store.
    pub chain: RwLock<Chain>,
    /// Pending transactions.
    pub mempool: Mutex<Mempool>,
    /// Driver status.
    pub status: RwLock<NodeStatus>,
    /// Newly finalized blocks (height order).
    pub finalized: broadcast::Sender<Arc<FinalizedBlock>>,
    /// The network, for publishing admitted transactions.
    pub network: NetworkHandle,
    /// Permits for event-stream subscribers.
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
}

impl Shared {
    /// Height of the last finalized block.
    pub fn tip_height(&self) -> u64 {
        self.chain
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .state()
            .tip()
            .height
    }

    /// Whether a peer is known to be well ahead of this node.
    pub fn is_syncing(&self) -> bool {
        let best = self
            .status
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .best_peer_height;
        let height = self.tip_height();
        best > height + SYNC_GAP_MIN
    }

    /// Admits a transaction to the mempool and gossips it.
    pub async fn submit(&self, tx: Transaction) -> Result<alliance_protocol::Hash32, SubmitError> {
        self.submit_many(vec![tx])
            .await
            .pop()
            .unwrap_or(Err(SubmitError::Admit(AdmitError::Full)))
    }

    /// Admits transactions to the mempool, in order, and gossips those
    /// admitted (in batches); one result per transaction. Signatures are
    /// verified once, before any lock is taken.
    pub async fn submit_many(
        &self,
        txs: Vec<Transaction>,
    ) -> Vec<Result<alliance_protocol::Hash32, SubmitError>> {
        let (txs, checked) = self.check_signatures(txs).await;
        let (results, admitted) = self.admit_checked(txs, checked, true);
        for tx in &admitted {
            self.metrics.submitted(tx.hash());
        }
        for bytes in gossip_batches(&admitted) {
            if let Err(e) = self.network.publish_transaction(bytes).await {
                tracing::warn!(error = %e, "could not gossip submitted transactions");
            }
        }
        results
    }

    /// Chain id and signature verdicts, computed off the async threads (on
    /// every core for large batches).
    async fn check_signatures(&self, txs: Vec<Transaction>) -> (Vec<Transaction>, Vec<bool>) {
        let chain_id = self.chain_id.clone();
        let check = move |txs: Vec<Transaction>| {
            let sigs = alliance_protocol::state::verify_signatures_parallel(&txs);
            let ok: Vec<bool> = txs
                .iter()
                .zip(sigs)
                .map(|(t, sig)| sig && t.chain_id == chain_id)
                .collect();
            (txs, ok)
        };
        if txs.len() < SUBMIT_PARALLEL_MIN {
            return check(txs);
        }
        match tokio::task::spawn_blocking(move || check(txs)).await {
            Ok(r) => r,
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }

    /// Admits transactions whose signature verdicts are known, in order,
    /// under one lock. With `refuse_doomed`, a transaction that a ledger rule
    /// would reject now is refused with the rule's reason (when it is the
    /// signer's next one: later nonces depend on pending transactions).
    /// Returns the results and the admitted transactions.
    fn admit_checked(
        &self,
        txs: Vec<Transaction>,
        checked: Vec<bool>,
        refuse_doomed: bool,
    ) -> (
        Vec<Result<alliance_protocol::Hash32, SubmitError>>,
        Vec<Transaction>,
    ) {
        let mut results = Vec::with_capacity(txs.len());
        let mut admitted = Vec::new();
        let chain = self.chain.read().unwrap_or_else(|e| e.into_inner());
        let state = chain.state();
        let now = now_ms().max(state.tip().timestamp_ms + 1);
        let mut pool = self.mempool.lock().unwrap_or_else(|e| e.into_inner());
        for (tx, signature_ok) in txs.into_iter().zip(checked) {
            if refuse_doomed && signature_ok && tx.nonce == state.account(&tx.signer).nonce {
                if let Err(e) = state.check_tx_verified(&tx, now, signature_ok) {
                    results.push(Err(SubmitError::Rejected(e)));
                    continue;
                }
            }
            match pool.admit_checked(tx.clone(), state, signature_ok) {
                Ok(hash) => {
                    admitted.push(tx);
                    results.push(Ok(hash));
                }
                Err(e) => results.push(Err(SubmitError::Admit(e))),
            }
        }
        (results, admitted)
    }

    /// Judges and admits a transaction gossip message (a batch, or a lone
    /// transaction). Rejected when undecodable or when any transaction is
    /// oversized or badly signed (honest nodes gossip only what they
    /// verified); accepted (forwarded) when something was new.
    pub async fn admit_gossip(&self, bytes: &[u8]) -> Verdict {
        let txs = match decode_gossip(bytes) {
            Some(txs) => txs,
            None => return Verdict::Reject,
        };
        let (txs, checked) = self.check_signatures(txs).await;
        if checked.iter().any(|ok| !ok) {
            return Verdict::Reject;
        }
        let (results, admitted) = self.admit_checked(txs, checked, false);
        if results
            .iter()
            .any(|r| matches!(r, Err(SubmitError::Admit(AdmitError::TooLarge(_)))))
        {
            Verdict::Reject
        } else if admitted.is_empty() {
            Verdict::Ignore
        } else {
            Verdict::Accept
        }
    }
}

/// Transactions per gossip message at most.
pub const GOSSIP_BATCH_TXS_MAX: usize = 2_000;

/// The gossip payloads for `txs`: canonical `Vec<Transaction>` encodings,
/// each within the network's payload limit.
pub fn gossip_batches(txs: &[Transaction]) -> Vec<Vec<u8>> {
    let limit = crate::network::limits::TX_GOSSIP_BYTES_MAX;
    let mut out = Vec::new();
    let mut start = 0;
    while start < txs.len() {
        // Start from the count cap and halve until it fits (transactions
        // are at most TX_BYTES_MAX, so this ends well before one).
        let mut end = txs.len().min(start + GOSSIP_BATCH_TXS_MAX);
        let mut bytes = alliance_protocol::encoding::encode(&&txs[start..end]);
        while bytes.len() > limit && end - start > 1 {
            end = start + (end - start) / 2;
            bytes = alliance_protocol::encoding::encode(&&txs[start..end]);
        }
        out.push(bytes);
        start = end;
    }
    out
}

/// Decodes a transaction gossip payload: a batch, or a lone transaction.
pub fn decode_gossip(bytes: &[u8]) -> Option<Vec<Transaction>> {
    let limit = crate::network::limits::TX_GOSSIP_BYTES_MAX;
    match alliance_protocol::encoding::decode::<Vec<Transaction>>(bytes, limit) {
        Ok(txs) if !txs.is_empty() && txs.len() <= GOSSIP_BATCH_TXS_MAX => Some(txs),
        Ok(_) => None,
        Err(_) => Transaction::from_bytes(bytes).ok().map(|t| vec![t]),
    }
}

/// Why a submitted transaction was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The mempool refused it (signature, chain, nonce, duplicate, full).
    #[error(transparent)]
    Admit(AdmitError),
    /// A ledger rule refuses it on the current state.
    #[error(transparent)]
    Rejected(alliance_protocol::state::TxError),
}

/// A request from consensus to build a block, waiting for its moment.
struct PendingProposal {
    view: u64,
    ancestry: Vec<Arc<alliance_protocol::Block>>,
    not_before_ms: u64,
    empty_after_ms: u64,
}

/// Result of a background sync exchange.
enum SyncResult {
    Status {
        peer: PeerId,
        height: u64,
    },
    Blocks {
        peer: PeerId,
        blocks: Vec<Vec<u8>>,
    },
    Fetched {
        peer: PeerId,
        hash: alliance_protocol::Hash32,
        blocks: Vec<Vec<u8>>,
    },
    Certificates {
        certificates: Vec<Certificate>,
    },
    Failed,
}

/// The driver: owns the consensus core.
pub struct Driver {
    shared: Arc<Shared>,
    key: Keypair,
    config: NodeConfig,
    core: Core<CachingVerifier>,
    /// Signature verdicts shared by the gossip filter and the core.
    verifier: CachingVerifier,
    net: NetworkHandle,
    events: mpsc::Receiver<NetworkEvent>,
    timer_tx: mpsc::Sender<TimerId>,
    timer_rx: mpsc::Receiver<TimerId>,
    sync_tx: mpsc::Sender<SyncResult>,
    sync_rx: mpsc::Receiver<SyncResult>,
    sync_in_flight: bool,
    last_sync_poll: std::time::Instant,
    pending: Option<PendingProposal>,
    peers: HashMap<PeerId, (Option<PublicKey>, bool)>,
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
    let votes = chain.store().votes()?;
    let journal = chain.store().journaled_certificates()?;
    let blocks = chain.store().voted_blocks(chain.state().tip().height)?;
    let validators = chain.state().validator_set();
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

impl Driver {
    /// Opens everything and builds the driver. `store` and its state come
    /// from [`Store::open`].
    pub fn new(
        genesis: Genesis,
        key: Keypair,
        config: NodeConfig,
        store: Store,
        state: alliance_protocol::state::LedgerState,
        net: NetworkHandle,
        events: mpsc::Receiver<NetworkEvent>,
    ) -> Result<(Self, Arc<Shared>), crate::store::StoreError> {
        let chain_id = genesis.chain_id.clone();
        let chain = Chain::new(store, state);
        let mempool = Mempool::new(
            &chain_id,
            MempoolLimits {
                txs_max: config.mempool_txs_max,
                ..MempoolLimits::default()
            },
        );
        let (finalized, _) = broadcast::channel(FINALIZED_CHANNEL_LEN);
        let shared = Arc::new(Shared {
            chain_id,
            genesis,
            chain: RwLock::new(chain),
            mempool: Mutex::new(mempool),
            status: RwLock::new(NodeStatus::default()),
            finalized,
            network: net.clone(),
            event_streams: Arc::new(tokio::sync::Semaphore::new(crate::api::EVENT_STREAMS_MAX)),
            metrics: crate::metrics::Metrics::default(),
        });
        let verifier = CachingVerifier::default();
        let core = {
            let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
            restore_core(&shared, &key, &config, &chain, &verifier)?
        };
        let (timer_tx, timer_rx) = mpsc::channel(TIMER_QUEUE_LEN);
        let (sync_tx, sync_rx) = mpsc::channel(16);
        let driver = Driver {
            shared: shared.clone(),
            key,
            config,
            core,
            verifier,
            net,
            events,
            timer_tx,
            timer_rx,
            sync_tx,
            sync_rx,
            sync_in_flight: false,
            last_sync_poll: std::time::Instant::now() - SYNC_POLL,
            pending: None,
            peers: HashMap::new(),
            #[cfg(feature = "byzantine")]
            byzantine: None,
        };
        Ok((driver, shared))
    }

    /// Makes this node misbehave as `byzantine` says (tests only).
    #[cfg(feature = "byzantine")]
    pub fn with_byzantine(mut self, byzantine: crate::byzantine::Byzantine) -> Self {
        self.byzantine = Some(byzantine);
        self
    }

    /// Runs until `shutdown` resolves. A commit in progress always completes
    /// first: the loop handles one event at a time.
    pub async fn run(
        mut self,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let outputs = self.core.start();
        self.execute(outputs).await?;
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(event) = self.events.recv() => self.on_network(event).await?,
                Some(id) = self.timer_rx.recv() => {
                    let out = self.core.handle(Input::Timer(id));
                    self.execute(out).await?;
                }
                Some(result) = self.sync_rx.recv() => self.on_sync(result).await?,
                _ = tick.tick() => self.on_tick().await?,
            }
        }
        tracing::info!("shutting down");
        let _ = self.net.shutdown().await;
        Ok(())
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

    async fn on_tick(&mut self) -> anyhow::Result<()> {
        let now = now_ms();
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
                self.build(p).await?;
            }
        }
        if !self.sync_in_flight && self.last_sync_poll.elapsed() >= SYNC_POLL {
            self.last_sync_poll = std::time::Instant::now();
            self.poll_sync();
        }
        self.update_status();
        Ok(())
    }

    async fn build(&mut self, p: PendingProposal) -> anyhow::Result<()> {
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
            chain.build(&p.ancestry, candidates, now_ms(), self.key.public())
        };
        match block {
            Ok(block) => {
                let out = self.core.handle(Input::Built {
                    view: p.view,
                    block,
                });
                self.execute(out).await
            }
            Err(e) => {
                tracing::warn!(view = p.view, error = %e, "cannot build on the requested parent");
                Ok(())
            }
        }
    }

    /// Carries out the core's outputs in order. Inputs produced on the way
    /// (verdicts) are fed back and their outputs follow.
    async fn execute(&mut self, outputs: Vec<Output>) -> anyhow::Result<()> {
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
                        if let Err(e) = self.net.publish_consensus(bytes).await {
                            tracing::warn!(error = %e, "cannot publish a consensus message");
                        }
                    }
                }
                Output::SetTimer { id, after_ms } => {
                    let tx = self.timer_tx.clone();
                    tokio::spawn(async move {
                        tokio::time::sleep(Duration::from_millis(after_ms)).await;
                        let _ = tx.send(id).await;
                    });
                }
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
                        empty_after_ms: now_ms() + self.config.leader_timeout_ms / 2,
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
                        block.txs.iter().map(|t| pool.contains(&t.hash())).collect()
                    };
                    let verdict = {
                        let mut chain =
                            self.shared.chain.write().unwrap_or_else(|e| e.into_inner());
                        chain.verify_known(&block, &ancestry, now_ms(), &known)
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
        let outcomes = chain.finalize(block, certificate.clone())?;
        record_finalized(&self.shared, parent_ts, block, &outcomes);
        let state = chain.state();
        {
            let mut pool = self
                .shared
                .mempool
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            pool.remove_committed(&block.txs, state);
            pool.evict_invalid(
                state,
                block.header.timestamp_ms + 1,
                EVICT_SIGNERS_PER_BLOCK,
            );
        }
        let _ = chain
            .store()
            .prune_consensus_below(view.saturating_sub(alliance_consensus::config::VIEW_WINDOW));
        let _ = chain
            .store()
            .prune_voted_blocks_through(block.header.height);
        tracing::info!(
            height = block.header.height,
            txs = block.txs.len(),
            applied = outcomes
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
            let net = self.net.clone();
            tokio::spawn(async move {
                let _ = net.set_members(members).await;
            });
        }
        self.core = core;
        self.pending = None;
        Ok(self.core.start())
    }

    async fn on_network(&mut self, event: NetworkEvent) -> anyhow::Result<()> {
        match event {
            NetworkEvent::Listening { addr } => tracing::info!(%addr, "listening"),
            NetworkEvent::PeerConnected {
                peer,
                key,
                is_member,
            } => {
                tracing::info!(%peer, is_member, "peer connected");
                self.peers.insert(peer, (key, is_member));
            }
            NetworkEvent::PeerDisconnected { peer, .. } => {
                self.peers.remove(&peer);
            }
            NetworkEvent::Transaction { bytes, from, id } => {
                // Off the consensus loop: verifying a batch takes a while.
                let (shared, net) = (self.shared.clone(), self.net.clone());
                tokio::spawn(async move {
                    let verdict = shared.admit_gossip(&bytes).await;
                    let _ = net.report(id, from, verdict).await;
                });
            }
            NetworkEvent::Consensus {
                bytes,
                from,
                source_key,
                id,
            } => {
                let message = match Message::from_bytes(&bytes) {
                    Ok(m) => m,
                    Err(_) => {
                        let _ = self.net.report(id, from, Verdict::Reject).await;
                        return Ok(());
                    }
                };
                let verdict = self.judge(&message);
                let _ = self.net.report(id, from, verdict).await;
                if verdict != Verdict::Reject {
                    let out = self.core.handle(Input::Message {
                        from: source_key,
                        message,
                    });
                    self.execute(out).await?;
                }
            }
            NetworkEvent::SyncRequest {
                request, responder, ..
            } => {
                let response = {
                    let chain = self.shared.chain.read().unwrap_or_else(|e| e.into_inner());
                    answer_sync(&chain, &self.core, request)
                };
                let _ = self.net.respond(responder, response).await;
            }
        }
        Ok(())
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

    /// Asks a peer for its tip (and then blocks) in the background.
    fn poll_sync(&mut self) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        let peer = peers[(now_ms() as usize) % peers.len()];
        let net = self.net.clone();
        let tx = self.sync_tx.clone();
        self.sync_in_flight = true;
        tokio::spawn(async move {
            let result = match net.request_status(peer).await {
                Ok(status) => SyncResult::Status {
                    peer,
                    height: status.tip_height,
                },
                Err(_) => SyncResult::Failed,
            };
            let _ = tx.send(result).await;
        });
    }

    /// The consensus resolver: asks one member peer (rotating over time, as
    /// the core repeats the request while it is stuck) for the certificates
    /// of `views`; the answer goes to the core, which verifies each.
    fn resolve(&mut self, views: Vec<u64>) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        let pick = views.first().copied().unwrap_or(0) as usize + (now_ms() / 500) as usize;
        let peer = peers[pick % peers.len()];
        let net = self.net.clone();
        let tx = self.sync_tx.clone();
        tokio::spawn(async move {
            let result = match net.request_certificates(peer, views).await {
                Ok(certificates) => SyncResult::Certificates { certificates },
                Err(_) => SyncResult::Failed,
            };
            let _ = tx.send(result).await;
        });
    }

    fn fetch(&mut self, hash: alliance_protocol::Hash32) {
        let peers = self.member_peers();
        if peers.is_empty() {
            return;
        }
        // Rotate over time: the core retries, and the next try asks another peer.
        let peer = peers[(hash.0[0] as usize + (now_ms() / 1_000) as usize) % peers.len()];
        let net = self.net.clone();
        let tx = self.sync_tx.clone();
        tokio::spawn(async move {
            let result = match net.request_block(peer, hash).await {
                Ok(blocks) => SyncResult::Fetched { peer, hash, blocks },
                Err(_) => SyncResult::Failed,
            };
            let _ = tx.send(result).await;
        });
    }

    async fn on_sync(&mut self, result: SyncResult) -> anyhow::Result<()> {
        match result {
            SyncResult::Failed => self.sync_in_flight = false,
            SyncResult::Status { peer, height } => {
                let ours = self.shared.tip_height();
                {
                    let mut s = self
                        .shared
                        .status
                        .write()
                        .unwrap_or_else(|e| e.into_inner());
                    s.best_peer_height = s.best_peer_height.max(height);
                }
                if height >= ours + SYNC_GAP_MIN {
                    let net = self.net.clone();
                    let tx = self.sync_tx.clone();
                    tokio::spawn(async move {
                        let result = match net.request_blocks(peer, ours + 1, SYNC_BATCH).await {
                            Ok(blocks) => SyncResult::Blocks { peer, blocks },
                            Err(_) => SyncResult::Failed,
                        };
                        let _ = tx.send(result).await;
                    });
                } else {
                    self.sync_in_flight = false;
                }
            }
            SyncResult::Blocks { peer, blocks } => {
                self.sync_in_flight = false;
                let applied = self.apply_synced(peer, &blocks).await?;
                if applied > 0 {
                    // Restart consensus from the new tip; persisted votes
                    // keep it from signing anything conflicting, and the
                    // resolver fetches the certificates it lacks.
                    tracing::info!(
                        height = self.shared.tip_height(),
                        applied,
                        "synced blocks from a peer"
                    );
                    let out = self.restart_core()?;
                    self.execute(out).await?;
                    // Keep going while behind.
                    self.last_sync_poll = std::time::Instant::now() - SYNC_POLL;
                }
            }
            SyncResult::Certificates { certificates } => {
                let out = self.core.handle(Input::Certificates(certificates));
                self.execute(out).await?;
            }
            SyncResult::Fetched { peer, hash, blocks } => {
                let Some(bytes) = blocks.first() else {
                    return Ok(());
                };
                match FinalizedBlock::from_bytes(bytes) {
                    Ok(fb) if fb.block.hash() == hash => {
                        let out = self.core.handle(Input::Fetched {
                            block: fb.block,
                            certificate: fb.certificate,
                        });
                        self.execute(out).await?;
                    }
                    Ok(_) => {} // the peer finalized another block at that height: not the one asked for
                    Err(_) => {
                        let _ = self.net.penalise(peer, Misbehaviour::WrongResponse).await;
                    }
                }
            }
        }
        Ok(())
    }

    /// Commits the verified finalized path of a peer's sync answer
    /// ([`crate::sync::commit`]); an answer that is inconsistent in any way is
    /// dropped whole and costs the peer. Returns the count committed.
    async fn apply_synced(&mut self, peer: PeerId, blocks: &[Vec<u8>]) -> anyhow::Result<usize> {
        match commit_synced(&self.shared, blocks) {
            Ok(applied) => Ok(applied),
            Err(crate::sync::SyncCommitError::Fault(fault)) => {
                tracing::warn!(%peer, error = %fault, "sync: refusing a peer's answer");
                let _ = self.net.penalise(peer, Misbehaviour::InvalidBlock).await;
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
    answer: &[Vec<u8>],
) -> Result<usize, crate::sync::SyncCommitError> {
    let mut chain = shared.chain.write().unwrap_or_else(|e| e.into_inner());
    let committed = crate::sync::commit(&mut chain, &shared.chain_id, answer)?;
    let count = committed.len();
    for c in committed {
        record_finalized(shared, c.parent_timestamp_ms, &c.block.block, &c.outcomes);
        shared
            .mempool
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove_committed(&c.block.block.txs, chain.state());
        let _ = shared.finalized.send(Arc::new(c.block));
    }
    Ok(count)
}

/// Updates metrics for a committed block.
fn record_finalized(
    shared: &Shared,
    parent_timestamp_ms: u64,
    block: &alliance_protocol::Block,
    outcomes: &[alliance_protocol::state::TxOutcome],
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
    m.finalized(block.txs.iter().map(Transaction::hash));
    for o in outcomes {
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
