//! Prometheus metrics (text exposition format 0.0.4), kept in atomics so
//! the driver and API update them without locks. Fixed-bucket histograms:
//! every series is bounded, whatever the traffic.

use std::collections::HashMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Instant;

use alliance_protocol::Hash32;

/// Upper bounds (seconds) of the latency and interval histograms.
const BUCKETS_S: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];
/// Submissions remembered for finality latency. Older ones are forgotten
/// (their latency is not observed) rather than growing memory.
const PENDING_SUBMITS_MAX: usize = 100_000;

/// A histogram with fixed buckets.
#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS_S.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

impl Histogram {
    /// Records one observation in seconds.
    pub fn observe(&self, seconds: f64) {
        for (i, le) in BUCKETS_S.iter().enumerate() {
            if seconds <= *le {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, le) in BUCKETS_S.iter().enumerate() {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{le}\"}} {}",
                self.buckets[i].load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the node exports.
#[derive(Default)]
pub struct Metrics {
    /// Last finalized height.
    pub height: AtomicU64,
    /// Transactions in finalized blocks (applied or rejected).
    pub finalized_txs: AtomicU64,
    /// Finalized blocks committed by this node.
    pub finalized_blocks: AtomicU64,
    /// Time between consecutive block timestamps.
    pub block_interval: Histogram,
    /// From submission to this node until finalization.
    pub finality_latency: Histogram,
    /// Mempool size.
    pub mempool: AtomicU64,
    /// Connected peers.
    pub peers: AtomicU64,
    /// Consensus view.
    pub view: AtomicU64,
    /// Blocks this node is behind the best peer.
    pub sync_lag: AtomicU64,
    /// Equivocations (conflicting votes of one validator in one view)
    /// recorded as evidence since start.
    pub equivocations: AtomicU64,
    rejected: Mutex<HashMap<String, u64>>,
    submitted: Mutex<(HashMap<Hash32, Instant>, std::collections::VecDeque<Hash32>)>,
}

impl Metrics {
    /// Counts a rejected transaction (by API, mempool or block outcome).
    pub fn rejected(&self, code: &str) {
        let mut m = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        // Codes are a closed set of snake_case names: bounded cardinality.
        *m.entry(code.to_string()).or_default() += 1;
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

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let gauge = |out: &mut String, name: &str, help: &str, kind: &str, v: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}"
            );
        };
        gauge(
            &mut out,
            "alliance_height",
            "Last finalized block height.",
            "gauge",
            self.height.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_finalized_blocks_total",
            "Finalized blocks committed by this node.",
            "counter",
            self.finalized_blocks.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_finalized_transactions_total",
            "Transactions in finalized blocks.",
            "counter",
            self.finalized_txs.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_mempool_transactions",
            "Pending transactions.",
            "gauge",
            self.mempool.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_peers",
            "Connected peers.",
            "gauge",
            self.peers.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_consensus_view",
            "Current consensus view.",
            "gauge",
            self.view.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_sync_lag_blocks",
            "Blocks behind the best known peer.",
            "gauge",
            self.sync_lag.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "alliance_equivocations_total",
            "Equivocations recorded as evidence since start (GET /v1/evidence).",
            "counter",
            self.equivocations.load(Ordering::Relaxed),
        );
        self.block_interval.render(
            &mut out,
            "alliance_block_interval_seconds",
            "Time between consecutive finalized blocks (block timestamps).",
        );
        self.finality_latency.render(
            &mut out,
            "alliance_finality_latency_seconds",
            "From submission to this node to finalization.",
        );
        let _ = writeln!(out, "# HELP alliance_rejected_transactions_total Rejected transactions by reason.\n# TYPE alliance_rejected_transactions_total counter");
        let rejected = self.rejected.lock().unwrap_or_else(|e| e.into_inner());
        let mut codes: Vec<_> = rejected.iter().collect();
        codes.sort();
        for (code, n) in codes {
            let _ = writeln!(
                out,
                "alliance_rejected_transactions_total{{reason=\"{code}\"}} {n}"
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.height.store(7, Ordering::Relaxed);
        m.block_interval.observe(0.4);
        m.block_interval.observe(2.5);
        m.rejected("insufficient_balance");
        m.rejected("insufficient_balance");
        let h = Hash32([1; 32]);
        m.submitted(h);
        m.finalized([h]);
        let text = m.render();
        assert!(text.contains("alliance_height 7\n"));
        assert!(text.contains("alliance_block_interval_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("alliance_block_interval_seconds_bucket{le=\"3\"} 2\n"));
        assert!(text.contains("alliance_block_interval_seconds_count 2\n"));
        assert!(text.contains("alliance_finality_latency_seconds_count 1\n"));
        assert!(text
            .contains("alliance_rejected_transactions_total{reason=\"insufficient_balance\"} 2\n"));
    }
}
