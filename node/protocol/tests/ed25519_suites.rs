//! The signature rule against public Ed25519 test suites (vendored in
//! tests/vectors/ed25519, with their licences): C2SP CCTV's 914 edge cases
//! of `A` and `R`, and Wycheproof's EdDSA verification tests. Each vector
//! goes through the rule one by one (`sigverify::verify`) and in batches
//! (`sigverify::verify_batch`): alone, and embedded among 63 valid
//! signatures in a batch of 64. Batch and single verdicts must be equal,
//! and both must be what the rule documents (sigverify.rs).

use alliance_protocol::sigverify::{verify, verify_batch, BATCH};
use alliance_protocol::{Keypair, PublicKey, Signature};
use serde_json::Value;

fn load(name: &str) -> Value {
    let path = format!(
        "{}/tests/vectors/ed25519/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn bytes32(hex: &str) -> [u8; 32] {
    hex::decode(hex).unwrap().try_into().unwrap()
}

/// A vector: key, message, signature (`None` when the signature is not 64
/// bytes, which no `Signature` can hold: refused by decoding).
struct Vector {
    name: String,
    key: PublicKey,
    msg: Vec<u8>,
    sig: Option<Signature>,
}

/// Checks each vector's single verdict against `expected`, and that the
/// batch path gives the same verdict alone and at every 7th position of a
/// batch of 64 whose other signatures are valid.
fn check(vectors: &[Vector], expected: &[bool]) {
    let filler: Vec<(PublicKey, Vec<u8>, Signature)> = (0..BATCH)
        .map(|i| {
            let k = Keypair::from_label(&format!("filler{i}"));
            let msg = format!("filler message {i}").into_bytes();
            let sig = k.sign(&msg);
            (k.public(), msg, sig)
        })
        .collect();
    for (i, (v, want)) in vectors.iter().zip(expected).enumerate() {
        let Some(sig) = v.sig else {
            assert!(!want, "{}: a signature that is not 64 bytes", v.name);
            continue;
        };
        let single = verify(&v.key, &v.msg, &sig);
        assert_eq!(single, *want, "{}: single verdict", v.name);
        let alone = verify_batch(&[(v.key, &v.msg[..], sig)]);
        assert_eq!(alone, vec![single], "{}: batch of one", v.name);
        let at = (i * 7) % BATCH;
        let mut items: Vec<(PublicKey, &[u8], Signature)> =
            filler.iter().map(|(k, m, s)| (*k, &m[..], *s)).collect();
        items[at] = (v.key, &v.msg[..], sig);
        let verdicts = verify_batch(&items);
        for (j, ok) in verdicts.iter().enumerate() {
            let want_j = if j == at { single } else { true };
            assert_eq!(*ok, want_j, "{}: batch of {BATCH}, item {j}", v.name);
        }
    }
}

/// CCTV: every vector is a valid signature under some reading of Ed25519
/// (ZIP 215 accepts them all). The rule refuses exactly those whose `A` or
/// `R` is of small order or not canonically encoded, and accepts the rest,
/// including `low_order_residue` (the cofactored equation) and points with a
/// low-order component.
#[test]
fn cctv_ed25519_vectors() {
    let doc = load("cctv-ed25519vectors.json");
    let vectors = doc.as_array().unwrap();
    assert_eq!(vectors.len(), 914);
    const REFUSED: [&str; 4] = [
        "low_order_A",
        "low_order_R",
        "non_canonical_A",
        "non_canonical_R",
    ];
    let mut parsed = Vec::new();
    let mut expected = Vec::new();
    for v in vectors {
        let flags: Vec<&str> = v["flags"]
            .as_array()
            .map(|f| f.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let sig: [u8; 64] = hex::decode(v["sig"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        parsed.push(Vector {
            name: format!("cctv #{} {flags:?}", v["number"]),
            key: PublicKey(bytes32(v["key"].as_str().unwrap())),
            msg: v["msg"].as_str().unwrap().as_bytes().to_vec(),
            sig: Some(Signature(sig)),
        });
        expected.push(!flags.iter().any(|f| REFUSED.contains(f)));
    }
    check(&parsed, &expected);
    // Pinned, so that a change of the rule shows here first.
    let accepted = expected.iter().filter(|ok| **ok).count();
    assert_eq!(accepted, 106, "vectors the rule accepts");
}

/// Wycheproof: the rule's verdict is the suite's (`valid` or `invalid`) on
/// every test.
#[test]
fn wycheproof_ed25519_test() {
    let doc = load("wycheproof-ed25519_test.json");
    let mut parsed = Vec::new();
    let mut expected = Vec::new();
    for group in doc["testGroups"].as_array().unwrap() {
        let key = PublicKey(bytes32(group["publicKey"]["pk"].as_str().unwrap()));
        for t in group["tests"].as_array().unwrap() {
            let sig = hex::decode(t["sig"].as_str().unwrap()).unwrap();
            parsed.push(Vector {
                name: format!("wycheproof tcId {} ({})", t["tcId"], t["comment"]),
                key,
                msg: hex::decode(t["msg"].as_str().unwrap()).unwrap(),
                sig: <[u8; 64]>::try_from(sig).ok().map(Signature),
            });
            expected.push(match t["result"].as_str().unwrap() {
                "valid" => true,
                "invalid" => false,
                other => panic!("result {other}"),
            });
        }
    }
    assert_eq!(parsed.len(), 151);
    check(&parsed, &expected);
}
