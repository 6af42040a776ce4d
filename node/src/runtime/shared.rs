//! What the HTTP API and the driver share: the finalized chain, the mempool,
//! the driver's status and the stream of finalized blocks; and transaction
//! admission (signature checks off the async threads, gossip in batches).

use std::sync::{Arc, Mutex, RwLock};

use alliance_protocol::genesis::Genesis;
use alliance_protocol::sigverify::{verify_txs, KeyCache};
use alliance_protocol::{FinalizedBlock, PublicKey, Transaction};
use tokio::sync::{broadcast, mpsc};

use super::{now_ms, SYNC_GAP_MIN};
use crate::chain::Chain;
use crate::mempool::{AdmitError, Mempool, MempoolLimits};
use crate::metrics::Work;
use crate::network::Verdict;

/// Finalized-block notifications buffered for slow subscribers (the API's
/// event stream); a subscriber that falls further behind skips ahead.
const FINALIZED_CHANNEL_LEN: usize = 256;
/// Submitted batches at least this large verify signatures on every core.
const SUBMIT_PARALLEL_MIN: usize = 64;

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
    /// Admitted transactions, on their way to the network
    /// ([`super::gossip_out`] gathers them into gossip messages).
    tx_gossip: mpsc::Sender<Vec<Transaction>>,
    /// Permits for event-stream subscribers.
    pub event_streams: Arc<tokio::sync::Semaphore>,
    /// Prometheus metrics.
    pub metrics: crate::metrics::Metrics,
    /// Decoded keys of recent signers, kept across submissions (decoding
    /// a key is a square root, about a third of a signature check).
    signer_keys: Arc<Mutex<KeyCache>>,
}

/// Recent signers whose decoded keys a node keeps: two generations of this
/// many (about 200 bytes each, so at most about 26 MB).
const SIGNER_KEYS_MAX: usize = 65_536;

impl Shared {
    /// The shared state of a node whose chain is `chain`. Admitted
    /// transactions go to `tx_gossip` (the node gossips them).
    pub fn new(
        genesis: Genesis,
        chain: Chain,
        mempool_limits: MempoolLimits,
        tx_gossip: mpsc::Sender<Vec<Transaction>>,
    ) -> Arc<Shared> {
        let chain_id = genesis.chain_id.clone();
        let (finalized, _) = broadcast::channel(FINALIZED_CHANNEL_LEN);
        Arc::new(Shared {
            mempool: Mutex::new(Mempool::new(&chain_id, mempool_limits)),
            chain_id,
            genesis,
            chain: RwLock::new(chain),
            status: RwLock::new(NodeStatus::default()),
            finalized,
            tx_gossip,
            event_streams: Arc::new(tokio::sync::Semaphore::new(crate::api::EVENT_STREAMS_MAX)),
            metrics: crate::metrics::Metrics::default(),
            signer_keys: Arc::new(Mutex::new(KeyCache::new(SIGNER_KEYS_MAX))),
        })
    }

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
        self.metrics.work(Work::SubmitSignatures, txs.len() as u64);
        let (txs, checked) = self.check_signatures(txs).await;
        let (results, admitted) = self.admit_checked(txs, checked, true);
        for hash in results.iter().flatten() {
            self.metrics.submitted(*hash);
        }
        if !admitted.is_empty() && self.tx_gossip.send(admitted).await.is_err() {
            tracing::warn!("could not gossip submitted transactions: the network is gone");
        }
        results
    }

    /// Chain id and signature verdicts, computed off the async threads (on
    /// every core for large batches).
    async fn check_signatures(&self, txs: Vec<Transaction>) -> (Vec<Transaction>, Vec<bool>) {
        let chain_id = self.chain_id.clone();
        let keys = Arc::clone(&self.signer_keys);
        let check = move |txs: Vec<Transaction>| {
            // Submissions verify concurrently: one that finds the cache
            // busy decodes its keys itself rather than wait.
            let sigs = match keys.try_lock() {
                Ok(mut keys) => verify_txs(&txs, &mut keys),
                Err(_) => verify_txs(&txs, &mut KeyCache::new(0)),
            };
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
        let mut rule_checks = 0;
        for (tx, signature_ok) in txs.into_iter().zip(checked) {
            if refuse_doomed && signature_ok && tx.nonce == state.account(&tx.signer).nonce {
                rule_checks += 1;
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
        self.metrics.work(Work::RuleChecks, rule_checks);
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
        let received = txs.len() as u64;
        self.metrics.work(Work::GossipTransactions, received);
        self.metrics.work(Work::GossipSignatures, received);
        let (txs, checked) = self.check_signatures(txs).await;
        if checked.iter().any(|ok| !ok) {
            return Verdict::Reject;
        }
        let (results, admitted) = self.admit_checked(txs, checked, false);
        self.metrics
            .work(Work::GossipAdmitted, admitted.len() as u64);
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
