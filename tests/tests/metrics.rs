//! `/metrics` in Prometheus text format: scraped twice, the height grows.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Transaction, TxBody};
use alliance_tests::{wait_for, Alliance};

fn scrape(api: &str) -> String {
    ureq::get(&format!("{api}/metrics"))
        .call()
        .unwrap()
        .into_string()
        .unwrap()
}

fn value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_show_the_chain_growing() {
    let a = Alliance::start(1);
    let api = &a.nodes[0].api;
    let first = scrape(api);
    let h1 = value(&first, "alliance_height").expect("alliance_height series");
    // A transaction submitted here shows up in finality latency.
    let alice = demo_customer_key(&a.chain_id, "alice");
    let tx = Transaction::sign(
        &a.chain_id,
        &a.keys[0],
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 1,
            reason: String::new(),
            receipt_ref: "m1".into(),
        },
    );
    let hash = a.nodes[0].submit(&tx);
    a.wait_committed(&hash, Duration::from_secs(30));
    let second = wait_for(
        "height to grow in /metrics",
        Duration::from_secs(30),
        || {
            let text = scrape(api);
            (value(&text, "alliance_height")? > h1).then_some(text)
        },
    );
    assert!(value(&second, "alliance_finalized_blocks_total").unwrap() >= 1.0);
    assert!(value(&second, "alliance_finalized_transactions_total").unwrap() >= 1.0);
    assert_eq!(
        value(&second, "alliance_finality_latency_seconds_count"),
        Some(1.0)
    );
    assert!(value(&second, "alliance_block_interval_seconds_count").unwrap() >= 1.0);
    for series in [
        "alliance_mempool_transactions",
        "alliance_peers",
        "alliance_consensus_view",
        "alliance_sync_lag_blocks",
    ] {
        assert!(value(&second, series).is_some(), "{series} missing");
    }
    assert!(second.contains("# TYPE alliance_rejected_transactions_total counter"));
}
