//! Admitted transactions on their way to the network, gathered into fewer,
//! larger gossip messages while the node is busy.
//!
//! Every gossip message costs each peer a decode, a signature batch, a
//! mempool lock and the transport's framing, whatever its size; under load
//! clients send a few transactions per request (the load generator about 8
//! per node every 10 ms at 3,000 tx/s), and the batch signature equation
//! costs far more per signature in batches of 8 than of 64 (issue #19,
//! docs/benchmarks.md). So a node that published less than
//! [`GOSSIP_GATHER`] ago waits until that much time has passed since, and
//! publishes everything admitted meanwhile as one batch. An idle node
//! publishes at once: the wait only ever applies under sustained load,
//! where blocks are hundreds of milliseconds apart anyway.

use std::time::Duration;

use alliance_protocol::Transaction;
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::shared::GOSSIP_BATCH_TXS_MAX;

/// The least time between two gossip publications of a busy node.
pub const GOSSIP_GATHER: Duration = Duration::from_millis(20);

/// Admitted transactions waiting for the network at most, in submissions
/// (each a `Vec` of what one submission admitted).
pub const GOSSIP_QUEUE_LEN: usize = 256;

/// Gathers admitted transactions into batches to publish.
pub struct Gatherer {
    rx: mpsc::Receiver<Vec<Transaction>>,
    window: Duration,
    last: Option<Instant>,
}

impl Gatherer {
    /// A gatherer of what `rx` brings, publishing at most once a `window`
    /// while busy.
    pub fn new(rx: mpsc::Receiver<Vec<Transaction>>, window: Duration) -> Gatherer {
        Gatherer {
            rx,
            window,
            last: None,
        }
    }

    /// The next batch to publish: what has been admitted since the last
    /// one, waiting for the first transaction, then for the rest of the
    /// window if the last batch went out within it. `None` once every
    /// sender is gone and nothing is left.
    pub async fn next_batch(&mut self) -> Option<Vec<Transaction>> {
        let mut txs = self.rx.recv().await?;
        self.drain(&mut txs);
        if let Some(deadline) = self.last.map(|last| last + self.window) {
            while txs.len() < GOSSIP_BATCH_TXS_MAX {
                match tokio::time::timeout_at(deadline, self.rx.recv()).await {
                    Ok(Some(more)) => txs.extend(more),
                    // The window is over, or the senders are gone.
                    Ok(None) | Err(_) => break,
                }
            }
            self.drain(&mut txs);
        }
        self.last = Some(Instant::now());
        Some(txs)
    }

    /// Adds what is already queued, up to a message's worth.
    fn drain(&mut self, txs: &mut Vec<Transaction>) {
        while txs.len() < GOSSIP_BATCH_TXS_MAX {
            match self.rx.try_recv() {
                Ok(more) => txs.extend(more),
                Err(_) => break,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::{demo_customer_key, transfer};

    fn txs(n: u64) -> Vec<Transaction> {
        let from = demo_customer_key("t", "a");
        let to = demo_customer_key("t", "b").public();
        (0..n).map(|i| transfer("t", &from, i, to, 1)).collect()
    }

    #[tokio::test]
    async fn an_idle_node_publishes_what_is_queued_at_once() {
        let (tx, rx) = mpsc::channel(8);
        let mut g = Gatherer::new(rx, Duration::from_secs(3_600));
        tx.send(txs(2)).await.unwrap();
        tx.send(txs(3)).await.unwrap();
        // No batch went out before: no wait (an hour's window would show).
        let batch = g.next_batch().await.unwrap();
        assert_eq!(batch.len(), 5);
    }

    #[tokio::test]
    async fn a_busy_node_waits_out_the_window_and_gathers() {
        let window = Duration::from_millis(50);
        let (tx, rx) = mpsc::channel(8);
        let mut g = Gatherer::new(rx, window);
        tx.send(txs(1)).await.unwrap();
        assert_eq!(g.next_batch().await.unwrap().len(), 1);
        let published = Instant::now();
        tx.send(txs(2)).await.unwrap();
        let late = tokio::spawn({
            let tx = tx.clone();
            async move {
                tokio::time::sleep(window / 5).await;
                tx.send(txs(3)).await.unwrap();
            }
        });
        let batch = g.next_batch().await.unwrap();
        late.await.unwrap();
        // Not before the window since the last publication, and with what
        // came during it (sent at a fifth of the window).
        assert!(published.elapsed() >= window - Duration::from_millis(5));
        assert_eq!(batch.len(), 5);
    }

    #[tokio::test]
    async fn a_batch_is_at_most_a_message() {
        let (tx, rx) = mpsc::channel(8);
        let mut g = Gatherer::new(rx, Duration::from_millis(1));
        let per = GOSSIP_BATCH_TXS_MAX as u64 / 2 + 1;
        for _ in 0..3 {
            tx.send(txs(per)).await.unwrap();
        }
        // Whole submissions are kept together; the batch stops growing once
        // it holds a message's worth.
        assert_eq!(g.next_batch().await.unwrap().len(), 2 * per as usize);
        assert_eq!(g.next_batch().await.unwrap().len(), per as usize);
    }

    #[tokio::test]
    async fn ends_when_the_senders_are_gone() {
        let (tx, rx) = mpsc::channel(8);
        let mut g = Gatherer::new(rx, Duration::from_millis(1));
        tx.send(txs(1)).await.unwrap();
        drop(tx);
        assert_eq!(g.next_batch().await.unwrap().len(), 1);
        assert!(g.next_batch().await.is_none());
    }
}
