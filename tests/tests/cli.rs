//! End-to-end tests of the `alliance` CLI: the real binary against a real
//! local alliance of four `alliance-node` processes.
//!
//! The `alliance` binary is found next to the test executable, like
//! `alliance-node` (tests/src/lib.rs). `cargo test --workspace` builds it
//! because `alliance-client` has an integration test target
//! (client/tests/help.rs); for a targeted run, build it first:
//! `cargo build -p alliance-node -p alliance-client && cargo test -p alliance-tests --test cli`.

use std::process::Output;
use std::time::Duration;

use alliance_tests::{output_text as text, Alliance, Cli};
use serde_json::Value;

const PASS: &str = "correct horse battery staple";

/// `alliance` against `node` (through `ALLIANCE_NODE`) with the
/// passphrase `pass` and the fast KDF.
fn cli(node: &str, pass: &str) -> Cli {
    Cli::new(None)
        .env("ALLIANCE_NODE", node)
        .env("ALLIANCE_PASSPHRASE", pass)
        .env("ALLIANCE_KDF", "fast")
}

/// Runs `alliance` against `node` with the passphrase `pass`.
fn run(node: &str, pass: &str, args: &[&str]) -> Output {
    cli(node, pass).run(args)
}

/// Runs with the test passphrase and requires success; returns stdout.
fn ok(node: &str, args: &[&str]) -> String {
    cli(node, PASS).ok(args)
}

/// Runs with `--json` and requires success; returns the JSON.
fn ok_json(node: &str, args: &[&str]) -> Value {
    cli(node, PASS).ok_json(args)
}

fn balance(node: &str, addr: &str) -> Value {
    ok_json(node, &["balance", addr])
}

fn claim(node: &str, creditor: &str, debtor: &str) -> Value {
    let s = ok_json(node, &["settlement"]);
    s["claims"]
        .as_array()
        .expect("claims")
        .iter()
        .find(|c| c["creditor"] == creditor && c["debtor"] == debtor)
        .cloned()
        .unwrap_or_else(|| panic!("no claim {creditor} on {debtor}: {s}"))
}

/// The worked example, driven entirely through the CLI: wallets, issuance
/// (once per receipt), a transfer, a redemption at another merchant, the
/// claim it creates and its settlement.
#[test]
fn worked_example_through_the_cli() {
    let a = Alliance::start(4);
    a.wait_height(1, Duration::from_secs(60));
    let node0 = a.nodes[0].api.as_str();
    let node2 = a.nodes[2].api.as_str();
    let dir = tempfile::tempdir().unwrap();
    let alice_w = dir.path().join("alice.json");
    let bob_w = dir.path().join("bob.json");
    let alice_file = alice_w.to_str().unwrap();
    let bob_file = bob_w.to_str().unwrap();
    let coffee_key = a.nodes[0].home.join("node_key.json");
    let books_key = a.nodes[1].home.join("node_key.json");
    let coffee = coffee_key.to_str().unwrap();
    let books = books_key.to_str().unwrap();

    // Wallets.
    let alice = ok_json(node0, &["keygen", "--out", alice_file])["address"]
        .as_str()
        .unwrap()
        .to_string();
    let bob = ok_json(node0, &["keygen", "--out", bob_file])["address"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(ok(node0, &["address", "--key", alice_file]).trim(), alice);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&alice_w).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let again = run(node0, PASS, &["keygen", "--out", alice_file]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    assert!(String::from_utf8_lossy(&again.stderr).contains("refusing to overwrite"));

    // Coffee (node 0's key file) issues 120 to Alice.
    let out = ok(
        node0,
        &[
            "merchant",
            "issue",
            "--key",
            coffee,
            "--to",
            &alice,
            "--amount",
            "120",
            "--reason",
            "purchase",
            "--receipt",
            "R-1",
        ],
    );
    assert!(out.contains("committed at height"), "{out}");
    let b = balance(node0, &alice);
    assert_eq!(b["balance"], 120, "{b}");
    assert_eq!(b["by_issuer"]["coffee"], 120, "{b}");

    // The same receipt earns once.
    let dup = run(
        node0,
        PASS,
        &[
            "merchant",
            "issue",
            "--key",
            coffee,
            "--to",
            &alice,
            "--amount",
            "120",
            "--reason",
            "purchase",
            "--receipt",
            "R-1",
            "--timeout",
            "20",
        ],
    );
    assert_ne!(dup.status.code(), Some(0), "{}", text(&dup));
    assert!(
        String::from_utf8_lossy(&dup.stderr).contains("duplicate_receipt"),
        "{}",
        text(&dup)
    );
    assert_eq!(balance(node0, &alice)["balance"], 120);

    // The receipt window: a receipt older than it is refused by the node,
    // and the CLI says which time it sent and how to give the right one; a
    // receipt dated days ahead is refused before anything is sent.
    let day = alliance_protocol::limits::DAY_MS;
    let issue_at = |receipt: &str, time: &str| {
        run(
            node0,
            PASS,
            &[
                "merchant",
                "issue",
                "--key",
                coffee,
                "--to",
                &alice,
                "--amount",
                "5",
                "--reason",
                "purchase",
                "--receipt",
                receipt,
                "--receipt-time",
                time,
                "--timeout",
                "20",
            ],
        )
    };
    let old = issue_at("R-old", &(alliance_tests::now_ms() - 100 * day).to_string());
    let err = String::from_utf8_lossy(&old.stderr).to_string();
    assert_eq!(old.status.code(), Some(1), "{}", text(&old));
    assert!(err.contains("(receipt_outside_window)"), "{err}");
    assert!(
        err.contains("give the time printed on the receipt with --receipt-time"),
        "{err}"
    );
    let ahead = issue_at("R-ahead", &(alliance_tests::now_ms() + 3 * day).to_string());
    let err = String::from_utf8_lossy(&ahead.stderr).to_string();
    assert_eq!(ahead.status.code(), Some(1), "{}", text(&ahead));
    assert!(err.contains("more than one day after now"), "{err}");
    let bad = issue_at("R-bad", "14/11/2023");
    let err = String::from_utf8_lossy(&bad.stderr).to_string();
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(err.contains("`14/11/2023` is not a receipt time"), "{err}");
    assert_eq!(balance(node0, &alice)["balance"], 120);

    // A typo'd address is refused before anything is sent.
    let mut typo: Vec<char> = bob.chars().collect();
    typo[30] = if typo[30] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    let bad = run(
        node0,
        PASS,
        &["send", "--key", alice_file, "--to", &typo, "--amount", "20"],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", text(&bad));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("checksum"),
        "{}",
        text(&bad)
    );

    // A wrong passphrase is a clear error, not a panic.
    let wrong = run(
        node0,
        "not the passphrase",
        &["send", "--key", alice_file, "--to", &bob, "--amount", "20"],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong passphrase for"),
        "{}",
        text(&wrong)
    );

    // Overspending is refused with the numbers.
    let over = run(
        node0,
        PASS,
        &["send", "--key", alice_file, "--to", &bob, "--amount", "121"],
    );
    assert_eq!(over.status.code(), Some(1), "{}", text(&over));
    assert!(
        String::from_utf8_lossy(&over.stderr)
            .contains("insufficient balance: 120 points available, 121 requested"),
        "{}",
        text(&over)
    );

    // Alice gives 20 to Bob (through another node).
    ok(
        node2,
        &[
            "send", "--key", alice_file, "--to", &bob, "--amount", "20", "--memo", "lunch",
        ],
    );
    assert_eq!(balance(node0, &alice)["balance"], 100);
    let b = balance(node0, &bob);
    assert_eq!(b["balance"], 20, "{b}");
    assert_eq!(b["by_issuer"]["coffee"], 20, "{b}");

    // On her signature alone, Alice cannot spend coffee's points at books:
    // no claim on coffee without books' signature.
    let plain = run(
        node0,
        PASS,
        &[
            "redeem", "--key", alice_file, "--at", "books", "--amount", "100", "--order", "B-1001",
        ],
    );
    assert_eq!(plain.status.code(), Some(1), "{}", text(&plain));
    assert!(
        text(&plain).contains("without the merchant's signature only `books`'s own points")
            && text(&plain).contains("alliance pay"),
        "{}",
        text(&plain)
    );

    // Books accepts coffee's points at 90 % of their value, from the
    // earliest height the alliance's notice allows.
    ok(
        node0,
        &[
            "merchant",
            "accept",
            "--key",
            books,
            "--rate",
            "coffee=90",
            "--convert",
            "cinema=80",
        ],
    );
    let shown = ok_json(node0, &["merchant", "show", "books"]);
    let from = shown["acceptance"]["next"]["effective_height"]
        .as_u64()
        .unwrap_or_else(|| panic!("an announced change: {shown}"));
    assert_eq!(
        shown["acceptance"]["next"]["rates"][0]["bps"], 9_000,
        "{shown}"
    );
    let shown = ok(node0, &["merchant", "show", "books"]);
    assert!(
        shown.contains("coffee 90%; converts cinema 80% from height"),
        "{shown}"
    );
    alliance_tests::wait_for(&format!("height {from}"), Duration::from_secs(60), || {
        (ok_json(node0, &["status"])["height"].as_u64()? >= from).then_some(())
    });

    // Books' till asks Alice to pay a 0.90 order; she pays it with 100
    // coffee points, worth 0.90 at books' 90 %.
    let req = ok_json(
        node0,
        &[
            "merchant",
            "order",
            "--key",
            books,
            "--customer",
            &alice,
            "--order",
            "B-1001",
            "--value",
            "0.90",
        ],
    );
    let request = req["request"].as_str().expect("request").to_string();
    assert!(request.starts_with("pa-order:"), "{req}");
    // Not Bob's to pay.
    let wrong = run(
        node0,
        PASS,
        &["pay", "--key", bob_file, "--request", &request],
    );
    assert_eq!(wrong.status.code(), Some(1), "{}", text(&wrong));
    assert!(
        text(&wrong).contains("this request is for"),
        "{}",
        text(&wrong)
    );
    let r = ok_json(node0, &["pay", "--key", alice_file, "--request", &request]);
    assert_eq!(r["status"], "committed", "{r}");
    assert_eq!(r["result"]["applied"], true, "{r}");
    assert_eq!(balance(node0, &alice)["balance"], 0);
    assert_eq!(balance(node0, &bob)["balance"], 20);
    // Bob converts 25 cinema points into 20 books points (books converts
    // cinema's at 80 %: 20 × 1.00 / 0.80 = 25), and books gains a claim
    // on cinema for them.
    let cinema_file = a.nodes[2].home.join("node_key.json");
    ok(
        node0,
        &[
            "merchant",
            "issue",
            "--key",
            cinema_file.to_str().unwrap(),
            "--to",
            &bob,
            "--amount",
            "30",
            "--reason",
            "ticket",
            "--receipt",
            "T-1",
        ],
    );
    let out = ok(
        node0,
        &[
            "convert", "--key", bob_file, "--from", "cinema", "--to", "books", "--points", "20",
        ],
    );
    assert!(
        out.contains("converted 25 cinema points into 20 books points"),
        "{out}"
    );
    let b = balance(node0, &bob);
    assert_eq!(
        (&b["by_issuer"]["cinema"], &b["by_issuer"]["books"]),
        (&Value::from(5), &Value::from(20)),
        "{b}"
    );
    let c = claim(node0, "books", "cinema");
    assert_eq!(c["redeemed_points"], 25, "{c}");
    assert_eq!(c["outstanding_value_centiminor"], 2_000, "{c}");
    let refused = run(
        node0,
        PASS,
        &[
            "convert", "--key", bob_file, "--from", "coffee", "--to", "books", "--points", "1",
        ],
    );
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(
        text(&refused).contains("does not convert `coffee`'s points"),
        "{}",
        text(&refused)
    );

    // The same order cannot be paid twice.
    let again = run(
        node0,
        PASS,
        &["pay", "--key", alice_file, "--request", &request],
    );
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));

    // Books now has a claim on coffee of 100 points, worth 0.90 (100 points
    // at 100 minor units per 100 points, at 90 % = 9 000 centiminor).
    let c = claim(node0, "books", "coffee");
    assert_eq!(c["redeemed_points"], 100, "{c}");
    assert_eq!(c["outstanding_points"], 100, "{c}");
    assert_eq!(c["outstanding_value_centiminor"], 9_000, "{c}");
    let table = ok(node0, &["settlement"]);
    assert!(
        table.contains("books") && table.contains("coffee"),
        "{table}"
    );

    // Books confirms coffee paid; the claim is cleared.
    let over = run(
        node0,
        PASS,
        &[
            "merchant",
            "confirm-settlement",
            "--key",
            books,
            "--debtor",
            "coffee",
            "--amount",
            "101",
        ],
    );
    assert_eq!(over.status.code(), Some(1), "{}", text(&over));
    ok(
        node0,
        &[
            "merchant",
            "confirm-settlement",
            "--key",
            books,
            "--debtor",
            "coffee",
            "--amount",
            "100",
        ],
    );
    let c = claim(node0, "books", "coffee");
    assert_eq!(c["confirmed_points"], 100, "{c}");
    assert_eq!(c["outstanding_points"], 0, "{c}");
    assert_eq!(c["outstanding_value_centiminor"], 0, "{c}");

    // Merchant totals agree.
    let ms = ok_json(node0, &["merchant", "list"]);
    let coffee_m = ms["merchants"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["id"] == "coffee")
        .unwrap();
    assert_eq!(coffee_m["issued"], 120, "{coffee_m}");
    assert_eq!(coffee_m["redeemed"], 100, "{coffee_m}");
    assert_eq!(coffee_m["outstanding"], 20, "{coffee_m}");

    // Alice's history: three committed transactions, newest first (the
    // duplicate issuance never reached the chain).
    let h = ok_json(node0, &["history", "--key", alice_file]);
    let kinds: Vec<&str> = h["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|i| i["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["redeem_order", "transfer", "issue"], "{h}");

    // Governance: coffee proposes a lower daily cap for itself; books and
    // cinema approve (3 of 4 > 2/3) and it takes effect.
    let cinema_key = a.nodes[2].home.join("node_key.json");
    let cinema = cinema_key.to_str().unwrap();
    ok(
        node0,
        &[
            "gov",
            "propose",
            "--key",
            coffee,
            "--deadline-blocks",
            "200",
            "update-policy",
            "--id",
            "coffee",
            "--daily-cap",
            "500",
        ],
    );
    let ps = ok_json(node0, &["gov", "list"]);
    let id = ps["proposals"][0]["id"].as_u64().expect("proposal id");
    let id = id.to_string();
    ok(node0, &["gov", "vote", "--key", books, &id, "--yes"]);
    ok(node0, &["gov", "vote", "--key", cinema, &id, "--yes"]);
    let m = ok_json(node0, &["merchant", "show", "coffee"]);
    assert_eq!(m["policy"]["daily_issue_cap"], 500, "{m}");
    assert_eq!(m["policy"]["point_value_minor"], 100, "unchanged: {m}");
    let not_merchant = run(
        node0,
        PASS,
        &["gov", "vote", "--key", alice_file, &id, "--no"],
    );
    assert_eq!(
        not_merchant.status.code(),
        Some(1),
        "{}",
        text(&not_merchant)
    );
    assert!(
        String::from_utf8_lossy(&not_merchant.stderr).contains("not a merchant"),
        "{}",
        text(&not_merchant)
    );

    // Human output works too.
    let human = ok(node0, &["balance", &bob]);
    assert!(human.contains("coffee") && human.contains("20"), "{human}");
    ok(node0, &["status"]);
    ok(node0, &["merchant", "show", "books"]);

    // An issuance carries the receipt time given (here an hour ago) into
    // its block.
    let when = alliance_tests::now_ms() - 3_600_000;
    let out = ok_json(
        node0,
        &[
            "merchant",
            "issue",
            "--key",
            books,
            "--to",
            &bob,
            "--amount",
            "7",
            "--reason",
            "purchase",
            "--receipt",
            "B-7",
            "--receipt-time",
            &when.to_string(),
        ],
    );
    let height = out["height"].as_u64().expect("committed height");
    let block: Value = ureq::get(&format!("{node0}/v1/blocks/{height}"))
        .call()
        .unwrap()
        .into_json()
        .unwrap();
    let issue = block["txs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["body"]["Issue"]["receipt_ref"] == "B-7")
        .unwrap_or_else(|| panic!("B-7 in block {height}: {block}"));
    assert_eq!(issue["body"]["Issue"]["receipt_time_ms"], when, "{issue}");

    // A merchant's own key spends only the merchant's own points at itself:
    // coffee and cinema points sent to books' key cannot become claims on
    // them. Bob holds 27 books, 5 cinema and 20 coffee points; books' key
    // gets them all.
    let books_address = ok(node0, &["address", "--key", books]).trim().to_string();
    ok(
        node0,
        &[
            "send",
            "--key",
            bob_file,
            "--to",
            &books_address,
            "--amount",
            "52",
        ],
    );
    let own = run(
        node0,
        PASS,
        &[
            "redeem", "--key", books, "--at", "books", "--amount", "30", "--order", "SELF-1",
        ],
    );
    assert_eq!(own.status.code(), Some(1), "{}", text(&own));
    assert!(
        // Refused by the CLI before signing (the ledger would refuse it too).
        text(&own).contains("27 of `books`'s points held, 30 requested"),
        "{}",
        text(&own)
    );
    assert_eq!(claim(node0, "books", "coffee")["redeemed_points"], 100);
}
