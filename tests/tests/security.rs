//! The security claims of docs/security.md that need a real node: each test
//! sends an attacker's transaction to a real `alliance-node` process over
//! real HTTP and checks it is refused with the rule's code and changes
//! nothing; and the operator-facing defaults (API on loopback, private key
//! file) through the real binary.

use std::process::{Command, Stdio};
use std::time::Duration;

use alliance_protocol::fixtures::{demo_customer_key, demo_merchant_id};
use alliance_protocol::{Transaction, TxBody};
use alliance_tests::{issue_tx, node_binary, Alliance, Node};

const T: Duration = Duration::from_secs(60);

/// Submits; returns (status, error code or "").
fn submit(node: &Node, tx: &Transaction) -> (u16, String) {
    let (status, body) = node
        .post("/v1/transactions", &serde_json::to_value(tx).unwrap())
        .expect("the node answers");
    let code = body["error"]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    (status, code)
}

fn balance(node: &Node, key: &alliance_protocol::PublicKey) -> u64 {
    node.get(&format!("/v1/accounts/{key}")).unwrap()["balance"]
        .as_u64()
        .unwrap()
}

/// Replay across chains: a merchant's issuance signed for another chain
/// (same keys, valid signature there) is refused by this chain's node, and
/// relabelling it for this chain breaks the signature.
#[test]
fn a_transaction_signed_for_another_chain_is_refused_end_to_end() {
    let a = Alliance::start(1);
    a.wait_height(1, T);
    let mallory = demo_customer_key(&a.chain_id, "mallory");
    // Same merchant key on both chains (demo keys are derived from the
    // chain id, so take this chain's key to make the replay realistic).
    let other = issue_tx("other-chain", &a.keys[0], 0, mallory.public(), 1_000, "x-1");
    assert!(other.verify_signature(), "valid on the other chain");
    assert_eq!(submit(&a.nodes[0], &other), (422, "wrong_chain".into()));
    let mut relabelled = other.clone();
    relabelled.chain_id = a.chain_id.clone();
    assert_eq!(
        submit(&a.nodes[0], &relabelled),
        (422, "bad_signature".into())
    );
    // Nothing landed, and the merchant's nonce 0 is still free.
    let honest = a.issue(0, 0, mallory.public(), 1, "honest");
    a.wait_committed(&a.nodes[0].submit(&honest), T);
    assert_eq!(balance(&a.nodes[0], &mallory.public()), 1);
}

/// Replay across nonces: a committed transfer sent again is refused
/// (duplicate or replayed nonce) and moves nothing; a copy with a later
/// nonce written in has no valid signature.
#[test]
fn a_replayed_transaction_is_refused_end_to_end() {
    let a = Alliance::start(1);
    a.wait_height(1, T);
    let alice = demo_customer_key(&a.chain_id, "alice");
    let bob = demo_customer_key(&a.chain_id, "bob");
    a.wait_committed(
        &a.nodes[0].submit(&a.issue(0, 0, alice.public(), 100, "r")),
        T,
    );
    let pay = Transaction::sign(
        &a.chain_id,
        &alice,
        0,
        TxBody::Transfer {
            to: bob.public(),
            amount: 30,
            memo: String::new(),
        },
    );
    a.wait_committed(&a.nodes[0].submit(&pay), T);
    let (status, code) = submit(&a.nodes[0], &pay);
    assert_eq!(status, 409, "{code}");
    assert!(
        ["nonce_replayed", "duplicate"].contains(&code.as_str()),
        "{code}"
    );
    let mut renumbered = pay.clone();
    renumbered.nonce = 1;
    assert_eq!(
        submit(&a.nodes[0], &renumbered),
        (422, "bad_signature".into())
    );
    assert_eq!(balance(&a.nodes[0], &bob.public()), 30, "paid once");
    assert_eq!(balance(&a.nodes[0], &alice.public()), 70);
}

/// Signature malleability: the same signature with `s + L` (the group
/// order) verifies under lax ed25519 but not under the strict check the
/// node uses; the node refuses it.
#[test]
fn a_malleated_signature_is_refused_end_to_end() {
    const L: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let a = Alliance::start(1);
    a.wait_height(1, T);
    let alice = demo_customer_key(&a.chain_id, "alice");
    let mut tx = a.issue(0, 0, alice.public(), 10, "m");
    let mut carry = 0u16;
    for (s, l) in tx.signature.0[32..].iter_mut().zip(L) {
        let v = *s as u16 + l as u16 + carry;
        *s = v as u8;
        carry = v >> 8;
    }
    assert_eq!(submit(&a.nodes[0], &tx), (422, "bad_signature".into()));
    assert_eq!(balance(&a.nodes[0], &alice.public()), 0);
}

/// A merchant cannot issue another merchant's points: issuance is always
/// in the signer's own points, so it would have to sign as the other
/// merchant (refused: bad signature); a customer key cannot issue at all.
#[test]
fn a_merchant_cannot_issue_another_merchants_points_end_to_end() {
    let a = Alliance::start(2);
    a.wait_height(1, T);
    let mallory = demo_customer_key(&a.chain_id, "mallory");
    // Merchant 1 signs an issuance that claims merchant 0 as its signer.
    let mut forged = a.issue(1, 0, mallory.public(), 500, "f");
    forged.signer = a.keys[0].public();
    assert_eq!(submit(&a.nodes[1], &forged), (422, "bad_signature".into()));
    let by_customer = issue_tx(&a.chain_id, &mallory, 0, mallory.public(), 500, "c");
    assert_eq!(
        submit(&a.nodes[1], &by_customer),
        (422, "not_a_merchant".into())
    );
    // Its own points it may issue; the lot names it as the issuer.
    a.wait_committed(
        &a.nodes[1].submit(&a.issue(1, 0, mallory.public(), 5, "own")),
        T,
    );
    let account = a.nodes[0]
        .get(&format!("/v1/accounts/{}", mallory.public()))
        .unwrap();
    assert_eq!(account["balance"], 5, "{account}");
    let issuers: Vec<&String> = account["by_issuer"].as_object().unwrap().keys().collect();
    assert_eq!(issuers, [&demo_merchant_id(1).to_string()], "{account}");
}

/// Caps: an issuance over the merchant's daily cap is refused by the node.
#[test]
fn an_issuance_over_the_daily_cap_is_refused_end_to_end() {
    let a = Alliance::start(1);
    a.wait_height(1, T);
    let cap = alliance_protocol::fixtures::demo_policy().daily_issue_cap;
    let alice = demo_customer_key(&a.chain_id, "alice");
    let tx = a.issue(0, 0, alice.public(), cap + 1, "big");
    assert_eq!(submit(&a.nodes[0], &tx), (422, "daily_cap_exceeded".into()));
    assert_eq!(balance(&a.nodes[0], &alice.public()), 0);
}

/// A fresh node home: the API listens on loopback unless configured
/// otherwise, and the key file is readable by its owner only; a key file
/// opened up to others stops the node at start with a clear error.
#[test]
fn node_defaults_loopback_api_and_a_private_key_file() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("merchant");
    let status = Command::new(node_binary())
        .arg("init")
        .arg("--home")
        .arg(&home)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let config = std::fs::read_to_string(home.join("config.toml")).unwrap();
    let api: std::net::SocketAddr = config
        .lines()
        .find_map(|l| l.strip_prefix("api = "))
        .expect("config.toml sets api")
        .trim_matches('"')
        .parse()
        .unwrap();
    assert!(api.ip().is_loopback(), "API bound to {api} by default");
    let key = home.join("node_key.json");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "key file mode {mode:o}");

    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (genesis, _) = alliance_protocol::fixtures::demo_genesis("sec-chain", 1, 1_700_000_000_000);
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let out = Command::new(node_binary())
        .arg("run")
        .arg("--home")
        .arg(&home)
        .arg("--genesis")
        .arg(&genesis_path)
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a node with a readable key file must not start"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("chmod 600"), "{stderr}");
}
