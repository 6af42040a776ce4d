//! Prometheus metrics, kept and encoded by `prometheus-client` (the crate
//! libp2p's metrics use): the node's own `alliance_*` series, plus the
//! network's `libp2p_*` series (swarm, gossipsub, identify, ping: see
//! [`crate::network::NetworkHandle::metrics_registry`]) once attached.
//! The exposition is OpenMetrics text, which Prometheus scrapes.
//!
//! The driver and the API update gauges and counters as plain atomics
//! ([`Gauge`] and [`Counter`] dereference to the `AtomicU64` the registry
//! reads), so no lock is taken on the hot path. Histograms have fixed
//! buckets and the rejection counter a closed set of reasons: every series
//! is bounded, whatever the traffic.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use alliance_protocol::Hash32;
use prometheus_client::encoding::text::{encode_eof, encode_registry};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;

/// Upper bounds (seconds) of the latency and interval histograms.
const BUCKETS_S: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];
/// Submissions remembered for finality latency. Older ones are forgotten
/// (their latency is not observed) rather than growing memory.
const PENDING_SUBMITS_MAX: usize = 100_000;
/// The content type of [`Metrics::render`].
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A gauge: set with `store`, read by the registry.
#[derive(Default, Clone, Debug)]
pub struct Gauge(prometheus_client::metrics::gauge::Gauge<u64, AtomicU64>);

impl std::ops::Deref for Gauge {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// A counter: increased with `fetch_add`, read by the registry.
#[derive(Default, Clone, Debug)]
pub struct Counter(prometheus_client::metrics::counter::Counter<u64, AtomicU64>);

impl std::ops::Deref for Counter {
    type Target = AtomicU64;
    fn deref(&self) -> &AtomicU64 {
        self.0.inner()
    }
}

/// A histogram with the fixed buckets [`BUCKETS_S`].
#[derive(Clone, Debug)]
pub struct Histogram(prometheus_client::metrics::histogram::Histogram);

impl Default for Histogram {
    fn default() -> Self {
        Histogram(prometheus_client::metrics::histogram::Histogram::new(
            BUCKETS_S,
        ))
    }
}

impl Histogram {
    /// Records one observation in seconds.
    pub fn observe(&self, seconds: f64) {
        self.0.observe(seconds);
    }
}

/// The label of the rejection counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct Reason {
    reason: String,
}

/// The label of the work counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkKind {
    kind: &'static str,
}

/// What a node spends its CPU on, counted per unit of work
/// (`alliance_work_total{kind}`): set against committed transactions, these
/// show work that does not commit (signatures checked twice, blocks
/// executed again, gossip that brings nothing new).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Work {
    /// Transaction signatures verified for HTTP submissions.
    SubmitSignatures,
    /// Transaction signatures verified for gossip messages.
    GossipSignatures,
    /// Transactions received in gossip messages.
    GossipTransactions,
    /// Gossiped transactions this node admitted (new to it).
    GossipAdmitted,
    /// Transaction signatures verified while judging or committing blocks
    /// (those not already verified at admission).
    BlockSignatures,
    /// Blocks this node built as leader.
    BlocksBuilt,
    /// Proposed blocks executed to judge them.
    BlocksVerified,
    /// Blocks executed again because their earlier execution was not kept
    /// (an ancestor of a proposal, or a block at finalization).
    BlocksReplayed,
    /// Transactions the ledger's rules checked at admission or eviction.
    RuleChecks,
}

impl Work {
    fn label(self) -> &'static str {
        match self {
            Work::SubmitSignatures => "submit_signatures",
            Work::GossipSignatures => "gossip_signatures",
            Work::GossipTransactions => "gossip_transactions",
            Work::GossipAdmitted => "gossip_admitted",
            Work::BlockSignatures => "block_signatures",
            Work::BlocksBuilt => "blocks_built",
            Work::BlocksVerified => "blocks_verified",
            Work::BlocksReplayed => "blocks_replayed",
            Work::RuleChecks => "rule_checks",
        }
    }
}

/// Every metric the node exports.
pub struct Metrics {
    /// Last finalized height.
    pub height: Gauge,
    /// Transactions in finalized blocks (applied or rejected).
    pub finalized_txs: Counter,
    /// Finalized blocks committed by this node.
    pub finalized_blocks: Counter,
    /// Time between consecutive block timestamps.
    pub block_interval: Histogram,
    /// From submission to this node until finalization.
    pub finality_latency: Histogram,
    /// Mempool size.
    pub mempool: Gauge,
    /// Connected peers.
    pub peers: Gauge,
    /// Consensus view.
    pub view: Gauge,
    /// Blocks this node is behind the best peer.
    pub sync_lag: Gauge,
    /// Equivocations (conflicting votes of one validator in one view)
    /// recorded as evidence since start.
    pub equivocations: Counter,
    /// The node's memory budget (`memory_budget_mib`), in bytes.
    pub memory_budget: Gauge,
    /// Resident memory of the process, read at each scrape.
    resident_memory: Gauge,
    rejected: Family<Reason, prometheus_client::metrics::counter::Counter>,
    work: Family<WorkKind, prometheus_client::metrics::counter::Counter>,
    submitted: Mutex<(HashMap<Hash32, Instant>, VecDeque<Hash32>)>,
    registry: Registry,
    network: OnceLock<Arc<Registry>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("alliance");
        let m = Metrics {
            height: Gauge::default(),
            finalized_txs: Counter::default(),
            finalized_blocks: Counter::default(),
            block_interval: Histogram::default(),
            finality_latency: Histogram::default(),
            mempool: Gauge::default(),
            peers: Gauge::default(),
            view: Gauge::default(),
            sync_lag: Gauge::default(),
            equivocations: Counter::default(),
            memory_budget: Gauge::default(),
            resident_memory: Gauge::default(),
            rejected: Family::default(),
            work: Family::default(),
            submitted: Mutex::new((HashMap::new(), VecDeque::new())),
            registry: Registry::default(),
            network: OnceLock::new(),
        };
        registry.register("height", "Last finalized block height", m.height.0.clone());
        registry.register(
            "finalized_blocks",
            "Finalized blocks committed by this node",
            m.finalized_blocks.0.clone(),
        );
        registry.register(
            "finalized_transactions",
            "Transactions in finalized blocks",
            m.finalized_txs.0.clone(),
        );
        registry.register(
            "mempool_transactions",
            "Pending transactions",
            m.mempool.0.clone(),
        );
        registry.register("peers", "Connected peers", m.peers.0.clone());
        registry.register("consensus_view", "Current consensus view", m.view.0.clone());
        registry.register(
            "sync_lag_blocks",
            "Blocks behind the best known peer",
            m.sync_lag.0.clone(),
        );
        registry.register(
            "equivocations",
            "Equivocations recorded as evidence since start (GET /v1/evidence)",
            m.equivocations.0.clone(),
        );
        registry.register(
            "memory_budget_bytes",
            "The node's memory budget (memory_budget_mib in config.toml)",
            m.memory_budget.0.clone(),
        );
        registry.register(
            "resident_memory_bytes",
            "Resident memory of the node's process (VmRSS)",
            m.resident_memory.0.clone(),
        );
        registry.register(
            "block_interval_seconds",
            "Time between consecutive finalized blocks (block timestamps)",
            m.block_interval.0.clone(),
        );
        registry.register(
            "finality_latency_seconds",
            "From submission to this node to finalization",
            m.finality_latency.0.clone(),
        );
        registry.register(
            "rejected_transactions",
            "Rejected transactions by reason",
            m.rejected.clone(),
        );
        registry.register(
            "work",
            "Units of work by kind: signatures verified per path, gossip received and admitted, blocks built, verified and replayed, rule checks",
            m.work.clone(),
        );
        Metrics { registry, ..m }
    }
}

impl Metrics {
    /// Counts a rejected transaction (by API, mempool or block outcome).
    pub fn rejected(&self, code: &str) {
        // Codes are a closed set of snake_case names: bounded cardinality.
        self.rejected
            .get_or_create(&Reason {
                reason: code.to_string(),
            })
            .inc();
    }

    /// Counts `n` units of `work`.
    pub fn work(&self, work: Work, n: u64) {
        if n > 0 {
            self.work
                .get_or_create(&WorkKind { kind: work.label() })
                .inc_by(n);
        }
    }

    /// Adds the network's `libp2p_*` series to the exposition (once; a
    /// second call is ignored).
    pub fn attach_network(&self, registry: Arc<Registry>) {
        let _ = self.network.set(registry);
    }

    /// Remembers when a transaction was submitted here.
    pub fn submitted(&self, hash: Hash32) {
        let mut g = self.submitted.lock().unwrap_or_else(|e| e.into_inner());
        let (map, order) = &mut *g;
        if map.len() >= PENDING_SUBMITS_MAX {
            if let Some(old) = order.pop_front() {
                map.remove(&old);
            }
        }
        if map.insert(hash, Instant::now()).is_none() {
            order.push_back(hash);
        }
    }

    /// Observes finality latency for transactions submitted here.
    pub fn finalized(&self, hashes: impl IntoIterator<Item = Hash32>) {
        let mut g = self.submitted.lock().unwrap_or_else(|e| e.into_inner());
        for h in hashes {
            if let Some(t) = g.0.remove(&h) {
                self.finality_latency.observe(t.elapsed().as_secs_f64());
            }
        }
        // The order queue is trimmed lazily: entries no longer in the map are skipped.
        let (map, order) = &mut *g;
        while order.front().is_some_and(|h| !map.contains_key(h)) {
            order.pop_front();
        }
    }

    /// The exposition (OpenMetrics text, [`CONTENT_TYPE`]).
    pub fn render(&self) -> String {
        if let Some(rss) = resident_bytes() {
            self.resident_memory.store(rss, Ordering::Relaxed);
        }
        let mut out = String::new();
        // Writing to a String cannot fail.
        let _ = encode_registry(&mut out, &self.registry);
        if let Some(network) = self.network.get() {
            let _ = encode_registry(&mut out, network);
        }
        let _ = encode_eof(&mut out);
        out
    }
}

/// The process's resident memory (VmRSS), where the OS tells it (Linux).
pub fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_openmetrics_text() {
        let m = Metrics::default();
        m.height.store(7, Ordering::Relaxed);
        m.finalized_blocks.fetch_add(3, Ordering::Relaxed);
        m.block_interval.observe(0.4);
        m.block_interval.observe(2.5);
        m.rejected("insufficient_balance");
        m.rejected("insufficient_balance");
        let h = Hash32([1; 32]);
        m.submitted(h);
        m.finalized([h]);
        let text = m.render();
        assert!(text.contains("alliance_height 7\n"), "{text}");
        assert!(
            text.contains("alliance_finalized_blocks_total 3\n"),
            "{text}"
        );
        assert!(text.contains("alliance_block_interval_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(
            text.contains("alliance_block_interval_seconds_bucket{le=\"3.0\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("alliance_block_interval_seconds_count 2\n"));
        assert!(text.contains("alliance_finality_latency_seconds_count 1\n"));
        assert!(text
            .contains("alliance_rejected_transactions_total{reason=\"insufficient_balance\"} 2\n"));
        assert!(text.ends_with("# EOF\n"));
        // An attached network registry is in the same exposition, with one EOF.
        let mut net = Registry::default();
        let c: prometheus_client::metrics::counter::Counter = Default::default();
        net.register("libp2p_test", "test", c.clone());
        c.inc();
        m.attach_network(Arc::new(net));
        let text = m.render();
        assert!(text.contains("libp2p_test_total 1\n"), "{text}");
        assert_eq!(text.matches("# EOF").count(), 1);
    }
}
