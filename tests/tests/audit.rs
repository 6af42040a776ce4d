//! End-to-end tests of `alliance audit`: real stores made by the real
//! `alliance-node synth`, real exports made by `alliance-node export`, the
//! real `alliance` binary. Each tampering is done on the decoded export
//! (or on the store itself) and must be reported at the right block and
//! transaction with the right reason.
//!
//! Needs both binaries: `cargo build -p alliance-node -p alliance-client &&
//! cargo test -p alliance-tests --test audit`.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use alliance_protocol::export::ChainExport;
use alliance_protocol::fixtures::demo_merchant_key;
use alliance_protocol::{encoding, FinalizedBlock, Keypair, VoteData, VoteKind};
use alliance_tests::{node_binary, output_text as text, run_cli, Alliance};
use serde_json::Value;

const BLOCKS: u64 = 30;

fn node(args: &[&str]) -> Output {
    Command::new(node_binary())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run alliance-node")
}

fn alliance(args: &[&str]) -> Output {
    run_cli(None, args)
}

/// A demo chain of [`BLOCKS`] synthetic blocks in a real store, exported.
struct Chain {
    dir: tempfile::TempDir,
    chain_id: String,
}

impl Chain {
    fn new() -> Chain {
        let dir = tempfile::tempdir().expect("temp dir");
        let p = |s: &str| dir.path().join(s).display().to_string();
        let o = node(&[
            "genesis",
            "demo",
            "--chain-id",
            "audit-e2e",
            "--out",
            &p("genesis.json"),
            "--homes",
            &p("homes"),
        ]);
        assert!(o.status.success(), "genesis demo: {}", text(&o));
        let o = node(&[
            "synth",
            "--home",
            &p("homes/node0"),
            "--genesis",
            &p("genesis.json"),
            "--blocks",
            &BLOCKS.to_string(),
        ]);
        assert!(o.status.success(), "synth: {}", text(&o));
        let o = node(&[
            "export",
            "--home",
            &p("homes/node0"),
            "--genesis",
            &p("genesis.json"),
            "--out",
            &p("chain.paexport"),
        ]);
        assert!(o.status.success(), "export: {}", text(&o));
        Chain {
            dir,
            chain_id: "audit-e2e".into(),
        }
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    fn export(&self) -> ChainExport {
        let bytes = std::fs::read(self.path("chain.paexport")).expect("read export");
        ChainExport::decode(&bytes).expect("decode export")
    }

    /// Writes a modified export and audits it; returns the `--json` answer
    /// and the human output.
    fn audit_modified(&self, name: &str, e: &ChainExport) -> (Value, Output) {
        let path = self.path(name);
        std::fs::write(&path, e.encode()).expect("write export");
        let human = alliance(&["audit", "--export", &path]);
        let o = alliance(&["--json", "audit", "--export", &path]);
        let v: Value = serde_json::from_slice(&o.stdout)
            .unwrap_or_else(|err| panic!("not JSON ({err}): {}", text(&o)));
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert_eq!(human.status.code(), Some(1), "{}", text(&human));
        assert_eq!(v["verified"], false);
        (v, human)
    }

    /// Audits the export with block `height` decoded, changed by `edit`
    /// and encoded again; see [`Chain::audit_modified`].
    fn audit_with_block(
        &self,
        name: &str,
        height: usize,
        edit: impl FnOnce(&mut FinalizedBlock),
    ) -> (Value, Output) {
        let mut e = self.export();
        let mut fb = FinalizedBlock::from_bytes(&e.blocks[height - 1]).expect("decode");
        edit(&mut fb);
        e.blocks[height - 1] = fb.to_bytes();
        self.audit_modified(name, &e)
    }

    fn merchant_keys(&self) -> Vec<Keypair> {
        (0..4)
            .map(|i| demo_merchant_key(&self.chain_id, i))
            .collect()
    }
}

fn failure(v: &Value) -> (u64, Option<u64>, String) {
    let f = &v["failure"];
    (
        f["height"].as_u64().expect("height"),
        f["tx"].as_u64(),
        f["code"].as_str().expect("code").to_string(),
    )
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The audit failed at block `height` with `code` (no transaction named),
/// and its human output `says` why.
fn assert_failed_at(v: &Value, human: &Output, height: u64, code: &str, says: &str) {
    assert_eq!(failure(v), (height, None, code.to_string()), "{v}");
    assert!(stdout(human).contains(says), "{}", text(human));
}

#[test]
fn clean_export_verifies_and_tampering_is_located() {
    let c = Chain::new();
    let export = c.path("chain.paexport");

    // Clean: exit 0, "verified", and the figures.
    let o = alliance(&[
        "audit",
        "--export",
        &export,
        "--genesis",
        &c.path("genesis.json"),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.trim_end().ends_with("verified"), "{out}");
    assert!(out.contains(&format!("blocks {BLOCKS}")), "{out}");
    assert!(out.contains("CIRCULATION"), "{out}");
    let o = alliance(&["--json", "audit", "--export", &export]);
    assert!(o.status.success(), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["verified"], true);
    assert_eq!(v["report"]["blocks"], BLOCKS);
    assert!(v["failure"].is_null());

    // Export refuses to overwrite.
    let o = node(&[
        "export",
        "--home",
        &c.path("homes/node0"),
        "--genesis",
        &c.path("genesis.json"),
        "--out",
        &export,
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("refusing to overwrite"), "{}", text(&o));

    // A genesis the auditor does not trust: refused.
    let o = node(&[
        "genesis",
        "demo",
        "--chain-id",
        "other-chain",
        "--out",
        &c.path("other.json"),
    ]);
    assert!(o.status.success());
    let o = alliance(&[
        "audit",
        "--export",
        &export,
        "--genesis",
        &c.path("other.json"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("refusing to audit"), "{}", text(&o));

    // One byte of a stored block changed: inside the signature of block 7's
    // transaction 3. The block still decodes; the signature fails.
    let mut e = c.export();
    let fb = FinalizedBlock::from_bytes(&e.blocks[6]).expect("block 7");
    let tx_bytes = encoding::encode(&fb.block.txs[3]);
    let at = e.blocks[6]
        .windows(tx_bytes.len())
        .position(|w| w == tx_bytes.as_slice())
        .expect("tx bytes inside the block");
    let byte = at + tx_bytes.len() - 10; // inside the signature's s half
    e.blocks[6][byte] ^= 0x01;
    FinalizedBlock::from_bytes(&e.blocks[6]).expect("still decodes");
    let (v, human) = c.audit_modified("byte.paexport", &e);
    assert_eq!(failure(&v), (7, Some(3), "bad_signature".into()), "{v}");
    let out = stdout(&human);
    assert!(
        out.contains("FAILED at block 7: transaction 3: bad signature"),
        "{out}"
    );
    assert!(
        out.contains("blocks 6,"),
        "the report covers the valid prefix: {out}"
    );

    // A block dropped: block 10 is missing, so block 11 arrives at height 10.
    let mut e = c.export();
    e.blocks.remove(9);
    let (v, human) = c.audit_modified("dropped.paexport", &e);
    assert_failed_at(
        &v,
        &human,
        10,
        "bad_height",
        "expected block 10, found block 11",
    );

    // The previous block replaced by a copy of another: broken link.
    let mut e = c.export();
    e.blocks[11] = e.blocks[12].clone();
    let mut fb = FinalizedBlock::from_bytes(&e.blocks[11]).expect("decode");
    fb.block.header.height = 12;
    e.blocks[11] = fb.to_bytes();
    let (v, _) = c.audit_modified("relinked.paexport", &e);
    assert_eq!(failure(&v), (12, None, "broken_link".into()), "{v}");

    // Two transactions swapped within block 15: tx_root mismatch there.
    let (v, human) = c.audit_with_block("swapped.paexport", 15, |fb| fb.block.txs.swap(0, 1));
    assert_failed_at(&v, &human, 15, "tx_root_mismatch", "tx_root does not match");

    // A certificate forged with a non-member key replacing a member's vote.
    let (v, human) = c.audit_with_block("forged.paexport", 20, |fb| {
        let outsider = Keypair::from_label("not-a-member");
        let msg = VoteData {
            kind: VoteKind::Finalize,
            ..fb.certificate.vote_data()
        }
        .signing_hash(&alliance_protocol::VoteDomain {
            chain_id: c.chain_id.clone(),
            validator_set_hash: fb.block.header.validator_set_hash,
        });
        fb.certificate.votes[0] = (outsider.public(), outsider.sign(&msg.0));
        // Kept in canonical order, so that it decodes and the signer is judged.
        fb.certificate.votes.sort_by_key(|v| v.0);
    });
    assert_failed_at(
        &v,
        &human,
        20,
        "cert_not_a_validator",
        "is not a validator of this height",
    );

    // A certificate with too few signers (2 of 4; the quorum is 3), even
    // though both signatures are genuine members'.
    let (v, human) = c.audit_with_block("few.paexport", 25, |fb| {
        let keys = c.merchant_keys();
        let msg = fb
            .certificate
            .vote_data()
            .signing_hash(&alliance_protocol::VoteDomain {
                chain_id: c.chain_id.clone(),
                validator_set_hash: fb.block.header.validator_set_hash,
            });
        fb.certificate.votes = keys[..2]
            .iter()
            .map(|k| (k.public(), k.sign(&msg.0)))
            .collect();
        fb.certificate.votes.sort_by_key(|v| v.0);
    });
    assert_failed_at(
        &v,
        &human,
        25,
        "cert_too_few_signers",
        "certificate has 2 signers, the quorum is 3",
    );

    // The same certificate with two votes swapped: the same block in
    // another encoding, refused where it is (issue 18; it audited as
    // verified before).
    let (v, human) = c.audit_with_block("reordered.paexport", 5, |fb| {
        fb.certificate.votes.swap(0, 1)
    });
    assert_failed_at(&v, &human, 5, "undecodable_block", "not in canonical order");

    // A truncated export is a clear framing error, not a crash; with
    // --json it is the documented {"verified": false, ...} object.
    let bytes = std::fs::read(&export).expect("read");
    std::fs::write(c.path("cut.paexport"), &bytes[..bytes.len() - 100]).expect("write");
    let o = alliance(&["audit", "--export", &c.path("cut.paexport")]);
    assert_eq!(o.status.code(), Some(1));
    assert!(text(&o).contains("truncated"), "{}", text(&o));
    let o = alliance(&["--json", "audit", "--export", &c.path("cut.paexport")]);
    assert_eq!(o.status.code(), Some(1));
    let v: Value = serde_json::from_slice(&o.stdout)
        .unwrap_or_else(|err| panic!("not one JSON object ({err}): {}", text(&o)));
    assert_eq!(v["verified"], false, "{v}");
    assert!(v["report"].is_null(), "{v}");
    assert_eq!(v["failure"]["code"], "bad_export", "{v}");
    assert!(
        v["failure"]["reason"]
            .as_str()
            .unwrap()
            .contains("truncated"),
        "{v}"
    );
    assert!(v.get("error").is_none(), "{v}");
}

/// A clean prefix of the chain (the last blocks cut off, the count fixed
/// up) verifies: only the reader's requirements of the tip tell it from
/// the whole chain (issue 18). The tip's height, time and age are printed.
#[test]
fn a_truncated_export_is_refused_by_the_tip_requirements() {
    let c = Chain::new();
    let whole = c.export();
    let tip = FinalizedBlock::from_bytes(&whole.blocks[BLOCKS as usize - 1])
        .expect("tip")
        .block
        .hash()
        .to_hex();
    let mut e = c.export();
    e.blocks.truncate(25);
    let cut = c.path("prefix.paexport");
    std::fs::write(&cut, e.encode()).expect("write");

    // Without requirements: verified, and the tip is shown with its age.
    let o = alliance(&["audit", "--export", &cut]);
    assert!(o.status.success(), "{}", text(&o));
    let out = stdout(&o);
    assert!(out.contains("(height 25, "), "{out}");
    assert!(out.contains(" old)"), "{out}");
    let o = alliance(&["--json", "audit", "--export", &cut]);
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["verified"], true, "{v}");
    assert!(v["tip_age_ms"].is_u64(), "{v}");
    assert!(v["report"]["tip_timestamp_ms"].is_u64(), "{v}");

    // The whole chain meets the requirements the prefix fails.
    let o = alliance(&[
        "audit",
        "--export",
        &c.path("chain.paexport"),
        "--min-height",
        "30",
        "--tip",
        &tip,
    ]);
    assert!(o.status.success(), "{}", text(&o));
    for (args, code) in [
        (vec!["--min-height", "30"], "below_min_height"),
        (vec!["--tip", tip.as_str()], "tip_mismatch"),
    ] {
        let mut full = vec!["--json", "audit", "--export", cut.as_str()];
        full.extend(args.iter().copied());
        let o = alliance(&full);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {}", text(&o));
        let v: Value = serde_json::from_slice(&o.stdout).expect("json");
        assert_eq!(v["verified"], false, "{v}");
        assert_eq!(failure(&v), (25, None, code.into()), "{v}");
        let mut human = vec!["audit", "--export", cut.as_str()];
        human.extend(args.iter().copied());
        let o = alliance(&human);
        assert_eq!(o.status.code(), Some(1), "{}", text(&o));
        assert!(stdout(&o).contains(&format!("({code})")), "{}", text(&o));
    }
}

/// A balance altered directly in a node's store. An export carries no
/// state, only blocks (the auditor recomputes every balance), so the
/// meaningful check is at the source: the node refuses to open the tampered
/// store, and so `alliance-node export` refuses to export it.
#[test]
fn tampered_store_refuses_to_export() {
    use alliance_node::store::kv::scan_prefix;
    use alliance_node::store::{state_source, Store};
    use alliance_protocol::genesis::Genesis;
    use alliance_protocol::state::StateValue;

    let c = Chain::new();
    let genesis =
        Genesis::from_json(&std::fs::read(c.path("genesis.json")).expect("read")).expect("genesis");
    let db = c.dir.path().join("homes/node0/db");
    {
        let (store, _state) = Store::open(&db, &genesis).expect("open");
        // A merchant's record (the state is written every few dozen blocks,
        // so this short chain's written state is the genesis one): its
        // issued points raised by 1,000.
        let (key, mut merchant, hash) = scan_prefix(store.raw_db(), b"s")
            .find_map(|item| {
                let (_, record) = item.expect("scan");
                match state_source::parse_state_record(&record).expect("record") {
                    (k, StateValue::Merchant(m)) => {
                        let hash = StateValue::Merchant(m.clone()).tree_value();
                        Some((k, m, hash))
                    }
                    _ => None,
                }
            })
            .expect("a merchant");
        merchant.stats.issued += 1_000;
        // The value changes on disk; its leaf hash stays.
        let raw = store.raw_db();
        raw.insert(
            state_source::state_record_key(&key),
            state_source::state_record_hashed(&hash, &key, &StateValue::Merchant(merchant)),
        )
        .expect("insert");
        raw.flush().expect("flush");
    }
    let o = node(&[
        "export",
        "--home",
        &c.path("homes/node0"),
        "--genesis",
        &c.path("genesis.json"),
        "--out",
        &c.path("tampered.paexport"),
    ]);
    assert!(!o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("state root"), "{}", text(&o));
    assert!(!Path::new(&c.path("tampered.paexport")).exists());
    // The untampered export of the same chain still verifies: the blocks
    // are the evidence, the stored state is only a cache of them.
    let o = alliance(&["audit", "--export", &c.path("chain.paexport")]);
    assert!(o.status.success(), "{}", text(&o));
}

/// `alliance audit --node URL --genesis FILE` against a live alliance, and
/// the refusal when the node's genesis is not the trusted one.
#[test]
fn audits_a_live_node() {
    let a = Alliance::start(4);
    a.wait_height(3, Duration::from_secs(60));
    let api = a.nodes[0].api.clone();
    let genesis = a.genesis_path().display().to_string();
    let o = alliance(&["--node", &api, "audit", "--genesis", &genesis]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(stdout(&o).trim_end().ends_with("verified"), "{}", text(&o));

    // The raw route serves canonical bytes matching the JSON route.
    let raw = ureq::get(&format!("{api}/v1/blocks/2/raw"))
        .call()
        .expect("raw block");
    assert_eq!(raw.content_type(), "application/octet-stream");
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut raw.into_reader(), &mut bytes).expect("read");
    let fb = FinalizedBlock::from_bytes(&bytes).expect("decode");
    let json = a.nodes[0].get("/v1/blocks/2").expect("json block");
    assert_eq!(json["hash"], fb.block.hash().to_hex());

    // An export of the node's chain so far, compared with the node
    // (`--node` with `--export`): the node has finalized blocks since, so
    // the export is refused as behind it; a tampered one as another chain.
    let genesis_json = std::fs::read(a.genesis_path()).expect("genesis");
    let genesis_doc =
        alliance_protocol::genesis::Genesis::from_json(&genesis_json).expect("genesis");
    let upto = a.nodes[0].height().expect("height");
    let blocks: Vec<FinalizedBlock> = (1..=upto)
        .map(|h| {
            let raw = ureq::get(&format!("{api}/v1/blocks/{h}/raw"))
                .call()
                .expect("raw block");
            let mut bytes = Vec::new();
            std::io::Read::read_to_end(&mut raw.into_reader(), &mut bytes).expect("read");
            FinalizedBlock::from_bytes(&bytes).expect("decode")
        })
        .collect();
    let export = a.dir.path().join("live.paexport");
    std::fs::write(&export, ChainExport::new(&genesis_doc, &blocks).encode()).expect("write");
    a.wait_height(upto + 1, Duration::from_secs(60));
    let export = export.display().to_string();
    let o = alliance(&["--json", "--node", &api, "audit", "--export", &export]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).expect("json");
    assert_eq!(v["failure"]["code"], "behind_node", "{v}");
    assert_eq!(v["failure"]["height"], upto, "{v}");
    // Without --node the same export verifies (a clean prefix).
    let o = alliance(&["audit", "--export", &export]);
    assert!(o.status.success(), "{}", text(&o));

    let other = a.dir.path().join("other.json");
    let o = node(&[
        "genesis",
        "demo",
        "--chain-id",
        "not-this-chain",
        "--out",
        &other.display().to_string(),
    ]);
    assert!(o.status.success());
    let o = alliance(&[
        "--node",
        &api,
        "audit",
        "--genesis",
        &other.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("refusing to audit"), "{}", text(&o));
    assert!(text(&o).contains("genesis hash"), "{}", text(&o));
}
