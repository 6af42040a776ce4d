//! End-to-end tests of balance proofs (`alliance balance --verify`) and
//! settlement reports (`alliance settlement --from --to --csv`) against a
//! real alliance: four node processes, real libp2p, sled and HTTP, and the
//! real `alliance` binary.
//!
//! Needs both binaries: `cargo build -p alliance-node -p alliance-client &&
//! cargo test -p alliance-tests --test proof`.

use std::process::Output;
use std::time::Duration;

use alliance_protocol::fixtures::{demo_customer_key, demo_genesis};
use alliance_protocol::redemption::OrderRequest;
use alliance_protocol::{GovAction, MerchantId, Transaction, TxBody};
use alliance_tests::{output_text as text, run_cli, wait_for, Alliance, Cli};
use serde_json::Value;

const T: Duration = Duration::from_secs(60);

fn alliance(node: &str, args: &[&str]) -> Output {
    run_cli(Some(node), args)
}

fn ok(node: &str, args: &[&str]) -> String {
    Cli::new(Some(node)).ok(args)
}

fn ok_json(node: &str, args: &[&str]) -> Value {
    Cli::new(Some(node)).ok_json(args)
}

/// Commits `tx` through node `i` and returns its height.
fn commit(a: &Alliance, i: usize, tx: &Transaction) -> u64 {
    let s = a.wait_committed(&a.nodes[i].submit(tx), T);
    s["height"].as_u64().expect("committed height")
}

#[test]
fn balance_proofs_and_settlement_reports_end_to_end() {
    let mut a = Alliance::start(4);
    let genesis = a.genesis_path().display().to_string();
    let node0 = a.nodes[0].api.clone();
    let chain = a.chain_id.clone();
    let alice = demo_customer_key(&chain, "alice");
    let alice_addr = alice.public().to_string();
    let (coffee, books) = (&a.keys[0], &a.keys[1]);

    // Coffee issues 120 to Alice; she redeems 100 at books; books confirms
    // that coffee paid 40 of it.
    let issue = Transaction::sign(
        &chain,
        coffee,
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 120,
            reason: "purchase".into(),
            receipt_ref: "R-1".into(),
            receipt_time_ms: alliance_tests::now_ms(),
        },
    );
    let h_issue = commit(&a, 0, &issue);
    // Books' till asks for 1.00 (100 points at face value); both sign.
    let order = OrderRequest {
        merchant: MerchantId::new("books").unwrap(),
        merchant_key: books.public(),
        customer: alice.public(),
        order_ref: "B-1".into(),
        value_minor: 100,
        issuers: vec![],
        valid_until_ms: alliance_tests::now_ms() + 600_000,
    };
    let redeem = Transaction::sign(
        &chain,
        &alice,
        0,
        TxBody::RedeemOrder {
            merchant_signature: order.sign(&chain, books),
            order,
        },
    );
    let h_redeem = commit(&a, 0, &redeem);
    let confirm = Transaction::sign(
        &chain,
        books,
        0,
        TxBody::SettlementConfirm {
            debtor: MerchantId::new("coffee").unwrap(),
            amount: 40,
        },
    );
    let h_confirm = commit(&a, 1, &confirm);
    assert!(h_issue < h_redeem && h_redeem < h_confirm);

    // A correct proof verifies, from the genesis file alone.
    let out = ok(
        &node0,
        &["balance", &alice_addr, "--verify", "--genesis", &genesis],
    );
    assert!(out.contains("balance 20 points"), "{out}");
    assert!(out.trim_end().ends_with("proven"), "{out}");
    let p = ok_json(
        &node0,
        &["balance", &alice_addr, "--verify", "--genesis", &genesis],
    );
    assert_eq!(p["proven"], true, "{p}");
    assert_eq!(p["balance"], 20, "{p}");
    assert_eq!(p["lots"][0]["issuer"], "coffee", "{p}");
    assert_eq!(p["validator_set_changes"], 0, "{p}");
    assert!(p["height"].as_u64().unwrap() >= h_confirm, "{p}");

    // A height the user already saw above the node's is refused as stale.
    let o = alliance(
        &node0,
        &[
            "balance",
            &alice_addr,
            "--verify",
            "--genesis",
            &genesis,
            "--min-height",
            "1000000",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("NOT PROVEN: stale: proof is at height"),
        "{}",
        text(&o)
    );

    // Someone else's genesis (same merchants' names, another chain): the
    // node's headers are not certified by what that file says.
    let (other, _) = demo_genesis("another-chain", 4, 1_700_000_000_000);
    let other_path = a.dir.path().join("other-genesis.json");
    std::fs::write(&other_path, other.to_json()).unwrap();
    let o = alliance(
        &node0,
        &[
            "--json",
            "balance",
            &alice_addr,
            "--verify",
            "--genesis",
            &other_path.display().to_string(),
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["proven"], false, "{v}");
    assert_eq!(v["failure"]["code"], "wrong_chain", "{v}");

    // Settlement report of the period of the redemption and confirmation,
    // as CSV (exact), as a table and as JSON.
    let (from, to) = (h_redeem.to_string(), h_confirm.to_string());
    let csv = ok(
        &node0,
        &["settlement", "--from", &from, "--to", &to, "--csv"],
    );
    assert_eq!(
        csv,
        "record,merchant,counterparty,redeemed_points,redeemed_value,confirmed_points,confirmed_value,net_points,net_value\r\n\
         redemption,books,coffee,100,1.00,40,0.40,60,0.60\r\n\
         net_position,books,,100,1.00,40,0.40,60,0.60\r\n\
         net_position,coffee,,-100,-1.00,-40,-0.40,-60,-0.60\r\n\
         payment,coffee,books,,,,,,0.60\r\n"
    );
    // Only the confirmation's block: the debt shrank by 40 points.
    let csv = ok(&node0, &["settlement", "--from", &to, "--to", &to, "--csv"]);
    assert!(
        csv.contains("\r\nredemption,books,coffee,0,0.00,40,0.40,-40,-0.40\r\n"),
        "{csv}"
    );
    // Before any redemption: the header row only.
    let before = h_issue.to_string();
    let csv = ok(
        &node0,
        &["settlement", "--from", "1", "--to", &before, "--csv"],
    );
    assert_eq!(csv.lines().count(), 1, "{csv}");
    let table = ok(&node0, &["settlement", "--from", &from, "--to", &to]);
    assert!(table.contains("net positions"), "{table}");
    assert!(
        table.contains("payments that settle every position: 1 (pair by pair: 1)"),
        "{table}"
    );
    let j = ok_json(&node0, &["settlement", "--from", &from, "--to", &to]);
    assert_eq!(j["net_positions"][0]["merchant"], "books", "{j}");
    assert_eq!(j["net_positions"][0]["net_value_centiminor"], 6_000, "{j}");
    assert_eq!(j["netting"][0]["from"], "coffee", "{j}");
    assert_eq!(j["netting"][0]["to"], "books", "{j}");
    assert_eq!(j["netting"][0]["value_centiminor"], 6_000, "{j}");

    // Governance suspends telecom: the validator set changes. The proof now
    // carries that change (certified by the old set, the new membership
    // proven against its state root) and still verifies.
    let propose = Transaction::sign(
        &chain,
        coffee,
        1,
        TxBody::Propose {
            action: GovAction::SuspendMerchant {
                id: MerchantId::new("telecom").unwrap(),
            },
            deadline_height: h_confirm + 500,
        },
    );
    commit(&a, 0, &propose);
    let vote = Transaction::sign(
        &chain,
        &a.keys[2],
        0,
        TxBody::Vote {
            proposal: 0,
            approve: true,
        },
    );
    commit(&a, 2, &vote);
    let vote = Transaction::sign(
        &chain,
        books,
        1,
        TxBody::Vote {
            proposal: 0,
            approve: true,
        },
    );
    let h_change = commit(&a, 1, &vote);
    a.wait_height(h_change + 2, T);
    let p = ok_json(
        &node0,
        &["balance", &alice_addr, "--verify", "--genesis", &genesis],
    );
    assert_eq!(p["proven"], true, "{p}");
    assert_eq!(p["validator_set_changes"], 1, "{p}");
    assert_eq!(p["validators"], 3, "{p}");
    assert_eq!(p["balance"], 20, "{p}");
    // Any node serves an equally valid proof.
    let p = ok_json(
        &a.nodes[2].api.clone(),
        &["balance", &alice_addr, "--verify", "--genesis", &genesis],
    );
    assert_eq!(p["validator_set_changes"], 1, "{p}");

    // The chain halts (cinema, now one of three validators, stops): node 0
    // keeps serving its last header, which becomes stale. The default bound
    // (60 s) still accepts it for a while; a 2 s bound refuses it once it
    // is more than 2 s old.
    a.nodes[2].kill();
    let halted = wait_for("the chain halts and the proof goes stale", T, || {
        let o = alliance(
            &node0,
            &[
                "balance",
                &alice_addr,
                "--verify",
                "--genesis",
                &genesis,
                "--max-age",
                "2",
            ],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        (o.status.code() == Some(1) && out.contains("NOT PROVEN: stale: header")).then_some(out)
    });
    assert!(halted.contains("(stale)"), "{halted}");
    let out = ok(
        &node0,
        &["balance", &alice_addr, "--verify", "--genesis", &genesis],
    );
    assert!(out.contains("proven"), "{out}");
}
