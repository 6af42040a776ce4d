//! `/metrics`: scraped twice, the height grows. The exposition (OpenMetrics
//! text from `prometheus-client`) is read with a real parser
//! (`prometheus-parse`), and carries the network's `libp2p_*` series.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
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
    let tx = a.issue(0, 0, alice.public(), 1, "m1");
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
    assert!(second.ends_with("# EOF\n"));
}

/// Parses an exposition with `prometheus-parse`.
fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_string())))
        .expect("a valid exposition")
}

#[test]
fn metrics_parse_and_include_libp2p_series() {
    use prometheus_parse::Value;
    let a = Alliance::start(2);
    a.wait_height(2, Duration::from_secs(60));
    let text = wait_for(
        "libp2p swarm series and height 2 in /metrics",
        Duration::from_secs(30),
        || {
            let text = scrape(&a.nodes[0].api);
            (text.contains("libp2p_swarm_connections_established_total")
                && value(&text, "alliance_height")? >= 2.0)
                .then_some(text)
        },
    );
    let scrape = parse(&text);
    let sample = |name: &str| scrape.samples.iter().find(|s| s.metric == name);
    // Gauges and histograms are typed as such by the parser.
    match sample("alliance_height").map(|s| &s.value) {
        Some(Value::Gauge(h)) => assert!(*h >= 2.0, "height {h}"),
        other => panic!("alliance_height: {other:?}"),
    }
    match sample("alliance_block_interval_seconds").map(|s| &s.value) {
        Some(Value::Histogram(buckets)) => {
            assert_eq!(buckets.len(), 13, "12 bounds and +Inf: {buckets:?}");
            assert!(buckets.windows(2).all(|w| w[0].count <= w[1].count));
        }
        other => panic!("alliance_block_interval_seconds: {other:?}"),
    }
    for counter in [
        "alliance_finalized_blocks_total",
        "alliance_finalized_transactions_total",
        "alliance_equivocations_total",
    ] {
        assert!(sample(counter).is_some(), "{counter} missing");
    }
    // The network's series: swarm, gossipsub, identify.
    for prefix in ["libp2p_swarm_", "libp2p_gossipsub_", "libp2p_identify_"] {
        assert!(
            scrape.samples.iter().any(|s| s.metric.starts_with(prefix)),
            "no {prefix}* series in:\n{text}"
        );
    }
    let established: f64 = scrape
        .samples
        .iter()
        .filter(|s| s.metric == "libp2p_swarm_connections_established_total")
        .map(|s| match s.value {
            Value::Counter(v) | Value::Untyped(v) => v,
            _ => 0.0,
        })
        .sum();
    assert!(established >= 1.0, "connections established: {established}");
    // One family per name: no metric is registered twice.
    let mut types: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    let n = types.len();
    types.sort();
    types.dedup();
    assert_eq!(types.len(), n, "a metric family appears twice");
}
