//! The HTTP API through the real server: every error class with its status
//! and code, the body limit, and the OpenAPI document covering every route.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Transaction, TxBody};
use alliance_tests::{issue_tx, Alliance};
use serde_json::{json, Value};

const T: Duration = Duration::from_secs(60);

fn raw_post(url: &str, body: &[u8]) -> (u16, Value) {
    match ureq::post(url)
        .set("Content-Type", "application/json")
        .timeout(Duration::from_secs(10))
        .send_bytes(body)
    {
        Ok(r) => (r.status(), r.into_json().unwrap()),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap()),
        Err(e) => panic!("transport error: {e}"),
    }
}

/// A POST declaring a 200 KiB JSON body, over raw TCP.
fn declared_oversize_post(api: &str) -> (u16, Value) {
    use std::io::{Read, Write};
    let addr = api.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "POST /v1/transactions HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", 200 * 1024).unwrap();
    // Exactly one byte over the limit: the server must read all of it to
    // refuse, so it closes with nothing unread (a clean FIN, not a reset).
    stream
        .write_all(&vec![b' '; alliance_node::api::BODY_BYTES_MAX + 1])
        .unwrap();
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    let status: u16 = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {response:?}"));
    let body = response.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|_| panic!("not JSON: {response:?}")),
    )
}

fn get(url: &str) -> (u16, Value) {
    match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => (r.status(), r.into_json().unwrap_or(Value::Null)),
        Err(ureq::Error::Status(code, r)) => (code, r.into_json().unwrap_or(Value::Null)),
        Err(e) => panic!("transport error: {e}"),
    }
}

fn code(v: &Value) -> &str {
    v["error"]["code"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
}

#[test]
fn every_error_class_has_its_status_and_code() {
    let a = Alliance::start(1);
    let n = &a.nodes[0];
    let api = &n.api;
    let alice = demo_customer_key(&a.chain_id, "alice");
    let bob = demo_customer_key(&a.chain_id, "bob");
    let coffee = &a.keys[0];
    let submit = |tx: &Transaction| {
        n.post("/v1/transactions", &serde_json::to_value(tx).unwrap())
            .unwrap()
    };

    // 400 malformed: not JSON, wrong shape, bad path parameters.
    let (s, v) = raw_post(&format!("{api}/v1/transactions"), b"{not json");
    assert_eq!((s, code(&v)), (400, "malformed"));
    let (s, v) = raw_post(&format!("{api}/v1/transactions"), br#"{"chain_id": 5}"#);
    assert_eq!((s, code(&v)), (400, "malformed"));
    let (s, v) = get(&format!("{api}/v1/transactions/xyz"));
    assert_eq!((s, code(&v)), (400, "malformed"));
    let (s, v) = get(&format!("{api}/v1/accounts/pa1notanaddress"));
    assert_eq!((s, code(&v)), (400, "bad_address"));
    let (s, v) = get(&format!("{api}/v1/settlement?from=9&to=3"));
    assert_eq!((s, code(&v)), (400, "malformed"));

    // 404 unknown.
    let (s, v) = get(&format!("{api}/v1/transactions/{}", "ab".repeat(32)));
    assert_eq!((s, code(&v)), (404, "unknown_transaction"));
    let (s, v) = get(&format!("{api}/v1/blocks/999999"));
    assert_eq!((s, code(&v)), (404, "unknown_block"));
    let (s, v) = get(&format!("{api}/v1/merchants/nowhere"));
    assert_eq!((s, code(&v)), (404, "unknown_merchant"));
    let (s, v) = get(&format!("{api}/v1/no/such/thing"));
    assert_eq!((s, code(&v)), (404, "not_found"));

    // 422 rule violations, refused at once with the rule's code.
    let (s, v) = submit(&Transaction::sign(
        &a.chain_id,
        &alice,
        0,
        TxBody::Transfer {
            to: bob.public(),
            amount: 5,
            memo: String::new(),
        },
    ));
    assert_eq!((s, code(&v)), (422, "insufficient_balance"), "{v}");
    let mut forged = a.issue(0, 0, alice.public(), 5, "x");
    forged.signature.0[0] ^= 1;
    let (s, v) = submit(&forged);
    assert_eq!((s, code(&v)), (422, "bad_signature"), "{v}");
    let other_chain = issue_tx("another-chain", coffee, 0, alice.public(), 5, "x");
    let (s, v) = submit(&other_chain);
    assert_eq!((s, code(&v)), (422, "wrong_chain"), "{v}");
    let (s, v) = submit(&Transaction::sign(
        &a.chain_id,
        &alice,
        0,
        TxBody::Redeem {
            merchant: "nowhere".parse().unwrap(),
            amount: 5,
            order_ref: "o".into(),
        },
    ));
    assert_eq!((s, code(&v)), (422, "unknown_merchant"), "{v}");
    // The receipt window (90 days by default): a receipt older than it, or
    // dated more than a day ahead, is refused with its own code.
    let issue_with_receipt_time = |receipt_time_ms: u64| {
        Transaction::sign(
            &a.chain_id,
            coffee,
            0,
            TxBody::Issue {
                to: alice.public(),
                amount: 5,
                reason: String::new(),
                receipt_ref: "window".into(),
                receipt_time_ms,
            },
        )
    };
    let day = alliance_protocol::limits::DAY_MS;
    let (s, v) = submit(&issue_with_receipt_time(
        alliance_tests::now_ms() - 91 * day,
    ));
    assert_eq!((s, code(&v)), (422, "receipt_outside_window"), "{v}");
    let (s, v) = submit(&issue_with_receipt_time(alliance_tests::now_ms() + 2 * day));
    assert_eq!((s, code(&v)), (422, "receipt_in_future"), "{v}");

    // 409 conflicts: duplicate submission, replayed nonce, duplicate receipt.
    let issue = a.issue(0, 0, alice.public(), 50, "R1");
    let hash = n.submit(&issue);
    let (s, v) = submit(&issue);
    assert!(
        s == 409 && (code(&v) == "duplicate" || code(&v) == "nonce_replayed"),
        "{s} {v}"
    );
    a.wait_committed(&hash, T);
    let (s, v) = submit(&issue);
    assert_eq!((s, code(&v)), (409, "nonce_replayed"), "{v}");
    let again = a.issue(0, 1, alice.public(), 50, "R1");
    let (s, v) = submit(&again);
    assert_eq!((s, code(&v)), (409, "duplicate_receipt"), "{v}");

    // 413: a body over the limit is refused from its declared length, before
    // it is read (sending the bytes would race the server's early close), and
    // the node keeps answering.
    let (s, v) = declared_oversize_post(api);
    assert_eq!((s, code(&v)), (413, "too_large"), "{v}");
    let (s, v) = get(&format!("{api}/v1/status"));
    assert_eq!(s, 200);
    assert_eq!(v["chain_id"], a.chain_id.as_str());

    // The happy path reads back exactly.
    let (s, v) = get(&format!("{api}/v1/accounts/{}", alice.public()));
    assert_eq!(s, 200);
    assert_eq!(
        (v["balance"].as_u64(), v["nonce"].as_u64()),
        (Some(50), Some(0))
    );
    assert_eq!(v["by_issuer"], json!({"coffee": 50}));
    assert_eq!(
        v["expiring_soon"],
        json!([]),
        "demo points are valid for a year"
    );
    let (s, v) = get(&format!("{api}/v1/accounts/{}/history", alice.public()));
    assert_eq!(s, 200);
    assert_eq!(v["items"][0]["hash"], hash.as_str());
    assert_eq!(v["items"][0]["kind"], "issue");
}

#[test]
fn openapi_describes_every_route_the_server_serves() {
    let a = Alliance::start(1);
    let api = &a.nodes[0].api;
    let (s, doc) = get(&format!("{api}/v1/openapi.json"));
    assert_eq!(s, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    // The endpoints the API promises.
    let required = [
        ("post", "/v1/transactions"),
        ("get", "/v1/transactions/{hash}"),
        ("get", "/v1/accounts/{address}"),
        ("get", "/v1/accounts/{address}/history"),
        ("get", "/v1/blocks/latest"),
        ("get", "/v1/blocks/{height}"),
        ("get", "/v1/blocks/hash/{hash}"),
        ("get", "/v1/merchants"),
        ("get", "/v1/merchants/{id}"),
        ("get", "/v1/settlement"),
        ("get", "/v1/proposals"),
        ("get", "/v1/status"),
        ("get", "/v1/events"),
        ("get", "/v1/openapi.json"),
    ];
    for (method, path) in required {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} is not described"
        );
    }
    // And every described GET route is served (answers something other
    // than the unknown-endpoint fallback).
    let sample = |p: &str| {
        p.replace("{hash}", &"00".repeat(32))
            .replace("{address}", &a.keys[0].public().to_string())
            .replace("{height}", "1")
            .replace("{id}", "coffee")
    };
    for (path, ops) in paths {
        if ops.get("get").is_none() || path == "/v1/events" {
            continue;
        }
        let (_, v) = get(&format!("{api}{}", sample(path)));
        assert_ne!(
            v["error"]["code"], "not_found",
            "{path} is described but not served"
        );
    }
    // Every operation documents its success response.
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            assert!(
                op["responses"].get("200").is_some(),
                "{method} {path} has no 200 response"
            );
        }
    }
}

/// 503: a full mempool refuses with `mempool_full` (the node holds one
/// pending transaction and waits long before building a block).
#[test]
fn a_full_mempool_answers_503() {
    let config = "mempool_txs_max = 1\nblock_interval_ms = 60000\nleader_timeout_ms = 60000\nnotarization_timeout_ms = 60000\n";
    let a = Alliance::start_with_config(1, Some(config));
    let n = &a.nodes[0];
    let alice = demo_customer_key(&a.chain_id, "alice");
    let bob = demo_customer_key(&a.chain_id, "bob");
    let first = a.issue(0, 0, alice.public(), 1, "first");
    n.submit(&first);
    let second = a.issue(0, 1, bob.public(), 1, "second");
    let (s, v) = n
        .post("/v1/transactions", &serde_json::to_value(&second).unwrap())
        .unwrap();
    assert_eq!((s, code(&v)), (503, "mempool_full"), "{v}");
    // Still answering.
    assert!(n.height().is_some());
}
