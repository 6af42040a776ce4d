//! One Byzantine validator of four (f = 1), a real process built with the
//! test-only `byzantine` feature of alliance-node: the three honest nodes
//! stay safe (one chain, block for block) and live (heights advance,
//! transactions finalize), forged transactions never land, and the honest
//! nodes record and serve evidence naming the equivocating signer.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_tests::{wait_for, Alliance};
use serde_json::Value;

const T: Duration = Duration::from_secs(90);
/// The Byzantine validator's index.
const BYZ: usize = 3;
const HONEST: [usize; 3] = [0, 1, 2];

/// Starts four validators, node 3 misbehaving as `modes` says.
fn start(modes: &str) -> Alliance {
    let mut a = Alliance::create(4, None);
    a.extra_args
        .insert(BYZ, vec!["--byzantine".into(), modes.into()]);
    for i in 0..4 {
        a.launch(i);
    }
    assert!(
        a.log(BYZ).contains("BYZANTINE"),
        "node {BYZ} must run the byzantine build (cargo test --workspace enables it):\n{}",
        a.log(BYZ)
    );
    a
}

/// Liveness and safety among the honest nodes: `rounds` rounds of
/// transfers submitted to honest nodes all commit, heights advance by at
/// least `blocks`, and the honest chains are identical. Returns the
/// transactions checked.
fn honest_nodes_stay_safe_and_live(a: &Alliance, rounds: u64, blocks: u64) -> usize {
    let customers = [0, 1, 2].map(|i| demo_customer_key(&a.chain_id, &format!("byz{i}")));
    let start = a.nodes[0].height().unwrap();
    let mut hashes = Vec::new();
    for round in 0..rounds {
        for (i, c) in customers.iter().enumerate() {
            let tx = a.issue(i, round, c.public(), 10, &format!("byz-{round}-{i}"));
            hashes.push(a.nodes[HONEST[i]].submit(&tx));
        }
    }
    for h in &hashes {
        wait_for(&format!("{h} committed on the honest nodes"), T, || {
            HONEST
                .iter()
                .all(|&i| {
                    a.nodes[i]
                        .get(&format!("/v1/transactions/{h}"))
                        .is_some_and(|s| {
                            s["status"] == "committed" && s["result"]["applied"] == true
                        })
                })
                .then_some(())
        });
    }
    wait_for("honest heights advance", T, || {
        HONEST
            .iter()
            .all(|&i| a.nodes[i].height().is_some_and(|h| h >= start + blocks))
            .then_some(())
    });
    let tip = a.assert_same_chain_of(&HONEST);
    for c in &customers {
        for &i in &HONEST {
            let acc = a.nodes[i]
                .get(&format!("/v1/accounts/{}", c.public()))
                .unwrap();
            assert_eq!(acc["balance"], 10 * rounds, "node {i}: {acc}");
        }
    }
    println!(
        "honest nodes: {} txs committed, same chain to height {tip}",
        hashes.len()
    );
    hashes.len()
}

/// What the Byzantine node says it did (its `BYZANTINE ...` stderr lines).
fn acts(a: &Alliance) -> String {
    let log = a.log(BYZ);
    let count = |what: &str| log.lines().filter(|l| l.contains(what)).count();
    let flooded = log
        .lines()
        .filter_map(|l| l.strip_prefix("BYZANTINE flood: "))
        .filter_map(|l| l.split_whitespace().next()?.parse::<u64>().ok())
        .max()
        .unwrap_or(0);
    format!(
        "{} equivocating proposals, {} double votes, {} invalid proposals, {flooded}+ flood messages",
        count("equivocating proposal"),
        count("double vote"),
        count("invalid proposal"),
    )
}

/// Evidence served by honest node `i` accusing the Byzantine validator.
fn evidence_against_byzantine(a: &Alliance, i: usize) -> Vec<Value> {
    let byz = a.keys[BYZ].public().to_string();
    let body = a.nodes[i].get("/v1/evidence?limit=500").unwrap();
    body["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["signer"] == byz.as_str())
        .cloned()
        .collect()
}

/// Equivocating proposals, double votes and invalid blocks from one
/// validator: the honest three stay safe and live, the forged issuance in
/// its invalid blocks never lands, and every honest node serves verified
/// evidence naming the Byzantine signer (also across a restart: it is
/// stored) and counts it in `alliance_equivocations_total`.
#[test]
fn equivocation_double_votes_and_invalid_blocks_are_survived_and_recorded() {
    let mut a = start("equivocate,double-vote,invalid-block");
    a.wait_height(1, T);
    let checked = honest_nodes_stay_safe_and_live(&a, 4, 8);
    for i in HONEST {
        let ev = wait_for("evidence against the byzantine validator", T, || {
            let ev = evidence_against_byzantine(&a, i);
            (!ev.is_empty()).then_some(ev)
        });
        assert!(ev.iter().all(|e| e["verified"] == true), "{ev:?}");
        assert_eq!(
            ev[0]["merchant"],
            alliance_protocol::fixtures::demo_merchant_id(BYZ).to_string()
        );
        let metrics = ureq::get(&format!("{}/metrics", a.nodes[i].api))
            .call()
            .unwrap()
            .into_string()
            .unwrap();
        let counted: u64 = metrics
            .lines()
            .find_map(|l| l.strip_prefix("alliance_equivocations_total "))
            .and_then(|v| v.parse().ok())
            .expect("equivocation metric");
        assert!(counted >= 1, "node {i} counted {counted}");
        println!(
            "node {i}: {} evidence records against the byzantine validator, metric {counted}",
            ev.len()
        );
    }
    // The forged issuance (another merchant's name, bad signature) never
    // credited the Byzantine merchant.
    let byz_account = a.keys[BYZ].public().to_string();
    for i in HONEST {
        let acc = a.nodes[i]
            .get(&format!("/v1/accounts/{byz_account}"))
            .unwrap();
        assert_eq!(acc["balance"], 0, "node {i}: {acc}");
    }
    // Evidence is durable: an honest node restarted still serves it.
    a.nodes[0].kill();
    a.launch(0);
    assert!(!evidence_against_byzantine(&a, 0).is_empty());
    println!(
        "byzantine (equivocate, double-vote, invalid-block): {}; {checked} txs checked, violations 0",
        acts(&a)
    );
}

/// A validator flooding junk and valid-looking consensus messages: the
/// honest three stay safe and live.
#[test]
fn a_flooding_validator_neither_stalls_nor_forks_the_alliance() {
    // The flooder itself is soon graylisted and cut off by the honest
    // peers (junk costs peer score): only the honest nodes are watched.
    let a = start("flood");
    let checked = honest_nodes_stay_safe_and_live(&a, 3, 6);
    println!(
        "byzantine (flood): {}; {checked} txs checked, violations 0",
        acts(&a)
    );
}
