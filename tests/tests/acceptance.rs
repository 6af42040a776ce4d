//! Issue 18's acceptance defects that a user meets at the HTTP API and the
//! CLI, against a real node process: a transaction whose nonce skips ahead
//! is refused (not left pending forever), sending points to yourself is
//! refused before anything is signed, a negative amount and a zero history
//! limit are refused with what to fix, and the node's log file (stdout
//! redirected) has no terminal colours.
//!
//! Needs both binaries: `cargo build -p alliance-node -p alliance-client &&
//! cargo test -p alliance-tests --test acceptance`.

use std::process::Output;
use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_tests::{output_text as text, run_cli, Alliance};

fn alliance(api: &str, args: &[&str]) -> Output {
    run_cli(Some(api), args)
}

#[test]
fn nonce_gaps_self_transfers_and_bad_cli_values_are_refused() {
    let a = Alliance::start(1);
    let node = &a.nodes[0];
    let alice = demo_customer_key(&a.chain_id, "alice");

    // Next nonce + 7: refused at once with the nonce to use; never pending.
    let ahead = a.issue(0, 7, alice.public(), 1, "gap");
    let (status, body) = node
        .post("/v1/transactions", &serde_json::to_value(&ahead).unwrap())
        .expect("node answers");
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "nonce_gap", "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("sign with nonce 0"),
        "{body}"
    );
    let hash = ahead.hash().to_hex();
    let st = node.get(&format!("/v1/transactions/{hash}")).unwrap();
    assert_eq!(st["error"]["code"], "unknown_transaction", "{st}");
    // The next nonce itself is admitted and committed.
    let ok = a.issue_point(0, 0, "gap-0");
    let h = node.submit(&ok);
    a.wait_committed(&h, Duration::from_secs(30));

    // Sending points to yourself: refused by the CLI, no nonce used.
    let key = node.home.join("node_key.json");
    let key = key.to_str().unwrap();
    let own = alliance(&node.api, &["address", "--key", key]);
    assert!(own.status.success(), "{}", text(&own));
    let own = String::from_utf8_lossy(&own.stdout).trim().to_string();
    let before = node.get(&format!("/v1/accounts/{own}")).unwrap()["nonce"].clone();
    let o = alliance(
        &node.api,
        &["send", "--key", key, "--to", &own, "--amount", "1"],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("sending points to yourself"),
        "{}",
        text(&o)
    );
    let after = node.get(&format!("/v1/accounts/{own}")).unwrap()["nonce"].clone();
    assert_eq!(before, after, "no nonce used");

    // `--amount -5` says what is wrong with the amount.
    let bob = demo_customer_key(&a.chain_id, "bob").public().to_string();
    let o = alliance(
        &node.api,
        &["send", "--key", key, "--to", &bob, "--amount", "-5"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("`-5` is negative"), "{}", text(&o));
    assert!(!text(&o).contains("unexpected argument"), "{}", text(&o));

    // `history --limit 0` is refused (it printed one row).
    let o = alliance(&node.api, &["history", &own, "--limit", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("1..=200"), "{}", text(&o));
    // And the API refuses it too (it answered one row).
    let v = node
        .get(&format!("/v1/accounts/{own}/history?limit=0"))
        .unwrap();
    assert_eq!(v["error"]["code"], "malformed", "{v}");

    // `alliance-node run > node.log`: plain text, no terminal colours.
    let log = std::fs::read(a.dir.path().join("node0.log")).expect("node log");
    assert!(
        String::from_utf8_lossy(&log).contains("INFO"),
        "the node logged: {}",
        String::from_utf8_lossy(&log)
    );
    assert!(
        !log.contains(&0x1b),
        "ANSI escapes in a log file: {}",
        String::from_utf8_lossy(&log[..log.len().min(300)])
    );
}
