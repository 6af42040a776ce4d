//! Multi-process tests of the node: real processes, real libp2p over
//! loopback, real sled, real HTTP.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Transaction, TxBody};
use alliance_tests::Alliance;
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

/// Four validators finalize blocks; transactions submitted to any node are
/// committed on all four; the four stores hold identical blocks.
#[test]
fn four_validators_agree_on_every_block() {
    let a = Alliance::start(4);
    a.wait_height(2, T);
    let alice = demo_customer_key(&a.chain_id, "alice");
    let bob = demo_customer_key(&a.chain_id, "bob");
    // Each merchant issues through its own node.
    let mut hashes = Vec::new();
    for (i, k) in a.keys.iter().enumerate() {
        let tx = Transaction::sign(
            &a.chain_id,
            k,
            0,
            TxBody::Issue {
                to: alice.public(),
                amount: 100,
                reason: "e2e".into(),
                receipt_ref: format!("r{i}"),
                receipt_time_ms: alliance_tests::now_ms(),
            },
        );
        hashes.push(a.nodes[i].submit(&tx));
    }
    for h in &hashes {
        let s = a.wait_committed(h, T);
        assert_eq!(s["result"]["applied"], true, "{s}");
    }
    // Alice spends through node 3.
    let tx = Transaction::sign(
        &a.chain_id,
        &alice,
        0,
        TxBody::Transfer {
            to: bob.public(),
            amount: 150,
            memo: "hi".into(),
        },
    );
    let h = a.nodes[3].submit(&tx);
    a.wait_committed(&h, T);
    for n in &a.nodes {
        let acc = n.get(&format!("/v1/accounts/{}", alice.public())).unwrap();
        assert_eq!(acc["balance"], 250, "node {}: {acc}", n.index);
        let acc = n.get(&format!("/v1/accounts/{}", bob.public())).unwrap();
        assert_eq!(acc["balance"], 150);
    }
    // Identical blocks at every height up to the lowest tip.
    assert!(a.assert_same_chain() >= 3);
}

/// One validator killed with SIGKILL under load: the other three keep
/// finalizing; restarted, it catches up and votes again; nothing finalized
/// is lost.
#[test]
fn killed_validator_catches_up_and_votes_again() {
    let mut a = Alliance::start(4);
    let customers = a.fund(12, 1_000);
    let mut hashes = Vec::new();
    let mut nonces = vec![0u64; customers.len()];
    let mut send = |a: &Alliance, round: usize, via: &[usize]| -> Vec<String> {
        let mut out = Vec::new();
        for (i, c) in customers.iter().enumerate() {
            let to = customers[(i + 1) % customers.len()].public();
            let tx = Transaction::sign(
                &a.chain_id,
                c,
                nonces[i],
                TxBody::Transfer {
                    to,
                    amount: 1,
                    memo: format!("round {round}"),
                },
            );
            nonces[i] += 1;
            out.push(a.nodes[via[i % via.len()]].submit(&tx));
        }
        out
    };
    hashes.extend(send(&a, 0, &[0, 1, 2, 3]));
    // Kill under load, once node 3's submissions have left the machine (a
    // transaction that dies with its node before gossip was never accepted
    // by the alliance; wallets resubmit those).
    alliance_tests::wait_for("round 0 gossiped to node 0", T, || {
        hashes
            .iter()
            .all(|h| {
                a.nodes[0]
                    .get(&format!("/v1/transactions/{h}"))
                    .is_some_and(|s| s["status"] == "pending" || s["status"] == "committed")
            })
            .then_some(())
    });
    a.nodes[3].kill();
    let before = a.nodes[0].height().unwrap();
    for round in 1..4 {
        hashes.extend(send(&a, round, &[0, 1, 2]));
    }
    for h in &hashes {
        a.wait_committed(h, T);
    }
    assert!(
        a.nodes[0].height().unwrap() > before,
        "three validators kept finalizing"
    );
    a.launch(3);
    let target = a.nodes[0].height().unwrap();
    alliance_tests::wait_for("node 3 catches up", T, || {
        (a.nodes[3].height()? >= target).then_some(())
    });
    for h in &hashes {
        let s = a.nodes[3].get(&format!("/v1/transactions/{h}")).unwrap();
        assert_eq!(s["status"], "committed", "node 3 lost {h}: {s}");
    }
    // Node 3 votes again: with node 0 down, 1-2-3 can only finalize with it.
    a.nodes[0].kill();
    let h = a.nodes[1].height().unwrap();
    a.wait_height(h + 2, T);
    a.assert_same_chain();
}

/// Two of four stopped: finalization halts and nothing forks; started
/// again, it resumes.
#[test]
fn without_a_quorum_finalization_halts_then_resumes() {
    let mut a = Alliance::start(4);
    a.wait_height(2, T);
    assert_eq!(a.nodes[2].stop(), Some(0), "SIGTERM exits cleanly");
    assert_eq!(a.nodes[3].stop(), Some(0));
    // Let in-flight finalizations land, then watch for progress over many
    // leader timeouts (2 s each): there must be none.
    std::thread::sleep(Duration::from_secs(3));
    let halted = a.nodes[0].height().unwrap();
    std::thread::sleep(Duration::from_secs(8));
    assert_eq!(
        a.nodes[0].height().unwrap(),
        halted,
        "two of four must not finalize"
    );
    assert_eq!(a.nodes[1].height().unwrap(), halted);
    a.launch(2);
    a.launch(3);
    a.wait_height(halted + 2, T);
    a.assert_same_chain();
}

/// A fresh non-validator node with only the genesis and one peer syncs the
/// whole chain and reports the same tip hash and state root.
#[test]
fn fresh_observer_syncs_the_whole_chain() {
    let mut a = Alliance::start(4);
    let customers = a.fund(5, 50);
    let tx = Transaction::sign(
        &a.chain_id,
        &customers[0],
        0,
        TxBody::Transfer {
            to: customers[1].public(),
            amount: 7,
            memo: String::new(),
        },
    );
    let h = a.nodes[1].submit(&tx);
    a.wait_committed(&h, T);
    let target = a.nodes[1].height().unwrap().max(8);
    a.wait_height(target, T);
    let obs = a.launch_observer(1);
    alliance_tests::wait_for("observer syncs", T, || {
        (a.nodes[obs].height()? >= target).then_some(())
    });
    let status = a.nodes[obs].get("/v1/status").unwrap();
    assert_eq!(status["is_validator"], false);
    let height = status["height"].as_u64().unwrap();
    let theirs = a.nodes[1].get(&format!("/v1/blocks/{height}")).unwrap();
    let ours = a.nodes[obs].get(&format!("/v1/blocks/{height}")).unwrap();
    assert_eq!(ours["hash"], theirs["hash"]);
    assert_eq!(status["tip_hash"], theirs["hash"]);
    assert_eq!(status["state_root"], theirs["header"]["state_root"]);
    let acc = a.nodes[obs]
        .get(&format!("/v1/accounts/{}", customers[1].public()))
        .unwrap();
    assert_eq!(acc["balance"], 57);
}

/// A peer that gossips garbage, forged consensus messages and transactions
/// with invalid signatures neither crashes nor stalls the alliance.
#[test]
fn garbage_gossip_neither_crashes_nor_stalls() {
    use alliance_node::network::{Network, NetworkConfig, NetworkEvent};
    let a = Alliance::start(4);
    a.wait_height(2, T);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let sent = rt.block_on(async {
        let attacker = alliance_protocol::Keypair::from_label("attacker");
        let mut config = NetworkConfig::new(attacker.seed(), a.chain_id.clone(), vec![]);
        config.listen_addrs = vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()];
        config.bootstrap_addrs = vec![format!("/ip4/127.0.0.1/tcp/{}", a.nodes[0].p2p_port)
            .parse()
            .unwrap()];
        let (net, mut events) = Network::spawn(config).unwrap();
        tokio::time::timeout(T, async {
            while let Some(e) = events.recv().await {
                if matches!(e, NetworkEvent::PeerConnected { .. }) {
                    break;
                }
            }
        })
        .await
        .expect("attacker connects");
        // Let gossipsub exchange subscriptions before publishing.
        tokio::time::sleep(Duration::from_secs(2)).await;
        let victim = demo_customer_key(&a.chain_id, "victim");
        let mut sent = 0;
        for i in 0..200u64 {
            let garbage: Vec<u8> = (0..(i % 97 + 1)).map(|j| (i * 31 + j) as u8).collect();
            let _ = net.publish_transaction(garbage.clone()).await;
            let _ = net.publish_consensus(garbage).await;
            // Well-formed transaction, forged signature: a merchant's issue.
            let mut forged = a.issue(
                0,
                1_000 + i,
                victim.public(),
                1_000_000,
                &format!("forged{i}"),
            );
            forged.signature.0[7] ^= 0x55;
            let _ = net.publish_transaction(forged.to_bytes()).await;
            sent += 3;
        }
        sent
    });
    assert_eq!(sent, 600);
    // The alliance still finalizes and still serves honest users.
    let h = a.nodes[0].height().unwrap();
    a.wait_height(h + 2, T);
    let alice = demo_customer_key(&a.chain_id, "alice");
    let tx = a.issue(1, 0, alice.public(), 5, "after-attack");
    let hash = a.nodes[2].submit(&tx);
    a.wait_committed(&hash, T);
    let victim = demo_customer_key(&a.chain_id, "victim");
    assert_eq!(
        a.nodes[0]
            .get(&format!("/v1/accounts/{}", victim.public()))
            .unwrap()["balance"],
        0,
        "no forged issuance landed"
    );
    a.assert_same_chain();
}

/// Governance end to end: the members vote a fifth merchant in; its node
/// syncs, becomes a validator from the next height (a new epoch on every
/// node), issues its own points, and its votes count: with one old
/// validator down, 4 of 5 is exactly the quorum.
#[test]
fn a_merchant_voted_in_joins_consensus() {
    use alliance_protocol::{GovAction, MerchantId};
    let mut a = Alliance::start(4);
    a.wait_height(2, T);
    let home = a.dir.path().join("tea");
    let status = std::process::Command::new(alliance_tests::node_binary())
        .arg("init")
        .arg("--home")
        .arg(&home)
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let key_json: Value =
        serde_json::from_str(&std::fs::read_to_string(home.join("node_key.json")).unwrap())
            .unwrap();
    let seed: [u8; 32] = hex_seed(key_json["secret_seed"].as_str().unwrap());
    let tea = alliance_protocol::Keypair::from_seed(seed);
    let height = a.nodes[0].height().unwrap();
    let action = GovAction::AddMerchant {
        id: MerchantId::new("tea").unwrap(),
        name: "Tea House".into(),
        key: tea.public(),
        policy: alliance_protocol::fixtures::demo_policy(),
    };
    let propose = Transaction::sign(
        &a.chain_id,
        &a.keys[0],
        0,
        TxBody::Propose {
            action,
            deadline_height: height + 500,
        },
    );
    a.wait_committed(&a.nodes[0].submit(&propose), T);
    for i in [1, 2] {
        let vote = Transaction::sign(
            &a.chain_id,
            &a.keys[i],
            0,
            TxBody::Vote {
                proposal: 0,
                approve: true,
            },
        );
        a.wait_committed(&a.nodes[i].submit(&vote), T);
    }
    let proposals = a.nodes[0].get("/v1/proposals").unwrap();
    assert!(
        proposals["proposals"][0]["status"]["Executed"].is_u64(),
        "{proposals}"
    );
    alliance_tests::wait_for("5 validators", T, || {
        (a.nodes[0].get("/v1/status")?["validators"]
            .as_array()?
            .len()
            == 5)
            .then_some(())
    });
    let h = a.nodes[0].height().unwrap();
    a.wait_height(h + 2, T);

    let t = a.add_node(home);
    alliance_tests::wait_for("the newcomer syncs and validates", T, || {
        let s = a.nodes[t].get("/v1/status")?;
        (s["is_validator"] == true && s["height"].as_u64()? >= h + 2).then_some(())
    });
    let alice = demo_customer_key(&a.chain_id, "alice");
    let issue = Transaction::sign(
        &a.chain_id,
        &tea,
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 8,
            reason: "welcome".into(),
            receipt_ref: "tea-1".into(),
            receipt_time_ms: alliance_tests::now_ms(),
        },
    );
    a.wait_committed(&a.nodes[t].submit(&issue), T);
    // 4 of 5 left, the newcomer among them: finalization needs its votes.
    a.nodes[3].kill();
    let h = a.nodes[0].height().unwrap();
    a.wait_height(h + 3, T);
    a.assert_same_chain();
}

fn hex_seed(text: &str) -> [u8; 32] {
    let bytes: Vec<u8> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect();
    bytes.try_into().unwrap()
}
