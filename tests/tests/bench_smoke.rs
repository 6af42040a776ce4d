//! Keeps `scripts/bench.sh` from rotting: the load generator funds accounts
//! and drives a few seconds of low open-loop load through a real 4-node
//! alliance; every transaction is admitted and finalized, none refused.
//! Also checks the batch submit endpoint the generator uses: per-item
//! results with typed errors, and its own body limit above the 64 KiB of
//! single submissions.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Transaction, TxBody};
use alliance_tests::bench::{self, Accounts, FinalityTracker, StepConfig};
use alliance_tests::Alliance;
use serde_json::{json, Value};

fn post_raw(url: &str, body: &str) -> (u16, Value) {
    match ureq::post(url)
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(10))
        .send_string(body)
    {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("POST {url}: {e}"),
    }
}

#[test]
fn load_generator_runs_against_a_real_alliance() {
    let a = Alliance::start(4);
    a.wait_height(1, Duration::from_secs(30));
    let tracker = FinalityTracker::start(&a.nodes[0].api);
    let mut accounts = Accounts::new(300);
    bench::fund(&a, &tracker, &accounts, 50);

    let r = bench::run_step(
        &a,
        &tracker,
        &mut accounts,
        StepConfig {
            rate: 60.0,
            duration: Duration::from_secs(4),
            redeem_every: 5,
            batch_max: 50,
            senders: 2,
            drain_timeout: Duration::from_secs(20),
        },
    );
    assert_eq!(r.submitted, 240);
    assert_eq!(r.rejected, 0, "refusals: {:?}", r.rejected_by_code);
    assert_eq!(r.accepted, r.submitted);
    assert_eq!(r.lost, 0, "every admitted transaction is finalized");
    assert_eq!(r.finalized, r.submitted);
    assert!(r.committed_tps > 0.0, "{r:?}");
    assert!(r.latency_ms.p50 > 0.0 && r.latency_ms.p99 >= r.latency_ms.p50);
    assert_eq!(r.cpu_pct.len(), 4);
    assert!(r.peak_rss_mib.iter().all(|m| *m > 0.0), "{r:?}");
}

#[test]
fn batch_submit_reports_each_item() {
    let a = Alliance::start(1);
    let chain = &a.chain_id;
    let alice = demo_customer_key(chain, "alice");
    // One receipt time, so that issue(n) is the same transaction each time.
    let receipt_time_ms = alliance_tests::now_ms();
    let issue = |nonce: u64| {
        Transaction::sign(
            chain,
            &a.keys[0],
            nonce,
            TxBody::Issue {
                to: alice.public(),
                amount: 10,
                reason: "batch".into(),
                // Long references make the body exceed 64 KiB.
                receipt_ref: format!("{nonce:0>60}"),
                receipt_time_ms,
            },
        )
    };
    let mut forged = issue(2);
    forged.signature.0[5] ^= 1;
    let mut items: Vec<Value> = vec![
        serde_json::to_value(issue(0)).unwrap(),
        serde_json::to_value(issue(1)).unwrap(),
        serde_json::to_value(&forged).unwrap(),
        json!({"not": "a transaction"}),
        serde_json::to_value(issue(0)).unwrap(),
    ];
    // Valid transactions of another signer, enough to pass 64 KiB.
    let bob = demo_customer_key(chain, "bob");
    for n in 0..250u64 {
        let tx = Transaction::sign(
            chain,
            &bob,
            n,
            TxBody::Transfer {
                to: alice.public(),
                amount: 1,
                memo: "m".repeat(100),
            },
        );
        items.push(serde_json::to_value(tx).unwrap());
    }
    let body = serde_json::to_string(&items).unwrap();
    assert!(body.len() > 64 * 1024, "{} bytes", body.len());
    let url = format!("{}/v1/transactions/batch", a.nodes[0].api);
    let (status, v) = post_raw(&url, &body);
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), items.len());
    assert_eq!(results[0]["status"], 200);
    assert_eq!(
        results[0]["hash"].as_str().unwrap(),
        issue(0).hash().to_hex()
    );
    assert_eq!(results[1]["status"], 200);
    assert_eq!(results[2]["error"]["code"], "bad_signature");
    assert_eq!(results[2]["status"], 422);
    assert_eq!(results[3]["error"]["code"], "malformed");
    assert_eq!(results[3]["status"], 400);
    assert_eq!(results[4]["error"]["code"], "duplicate");
    assert_eq!(results[4]["status"], 409);
    // Bob has no points: his first transfer is refused by the rule, and
    // the later ones wait in the mempool's nonce window (64) or are refused.
    assert_eq!(results[5]["error"]["code"], "insufficient_balance");
    assert_eq!(
        v["accepted"].as_u64().unwrap() + v["rejected"].as_u64().unwrap(),
        255
    );
    a.wait_committed(&issue(1).hash().to_hex(), Duration::from_secs(20));

    // Too many items, not an array, too large: the whole request is refused.
    let many = format!("[{}]", vec!["{}"; 2_001].join(","));
    let (status, v) = post_raw(&url, &many);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("malformed"))
    );
    let (status, v) = post_raw(&url, "{\"not\": \"an array\"}");
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (400, Some("malformed"))
    );
    // Exactly one byte over the limit (sending more races the server's
    // early close).
    let huge = format!("[\"{}\"]", "x".repeat(2 * 1024 * 1024 + 1 - 4));
    assert_eq!(huge.len(), 2 * 1024 * 1024 + 1);
    let (status, v) = post_raw(&url, &huge);
    assert_eq!(
        (status, v["error"]["code"].as_str()),
        (413, Some("too_large"))
    );
    // The node still answers.
    assert!(a.nodes[0].height().is_some());
}
