//! Golden vectors: the canonical bytes and hashes of one transaction of
//! each kind, a block header and a consensus vote, checked into `tests/golden/vectors.txt`.
//! Any change to the encoding, the signing payload or a hash domain fails
//! this test. If a format change is intended, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p alliance-protocol --test golden`, bump the
//! domain version, and say so in docs/protocol.md.

use alliance_protocol::fixtures::{demo_genesis, demo_policy};
use alliance_protocol::{
    AllianceParams, Block, BlockHeader, GovAction, Hash32, Keypair, MerchantId, Transaction,
    TxBody, VoteData, VoteDomain, VoteKind,
};

fn vectors() -> Vec<(String, String)> {
    let chain = "golden-chain";
    let merchant = Keypair::from_seed([1; 32]);
    let alice = Keypair::from_seed([2; 32]);
    let bob = Keypair::from_seed([3; 32]).public();
    let id = |s: &str| MerchantId::new(s).unwrap();
    let txs: Vec<(&str, Transaction)> = vec![
        (
            "issue",
            Transaction::sign(
                chain,
                &merchant,
                0,
                TxBody::Issue {
                    to: alice.public(),
                    amount: 120,
                    reason: "purchase".into(),
                    receipt_ref: "R-1".into(),
                },
            ),
        ),
        (
            "transfer",
            Transaction::sign(
                chain,
                &alice,
                0,
                TxBody::Transfer {
                    to: bob,
                    amount: 20,
                    memo: "gift".into(),
                },
            ),
        ),
        (
            "redeem",
            Transaction::sign(
                chain,
                &alice,
                1,
                TxBody::Redeem {
                    merchant: id("books"),
                    amount: 100,
                    order_ref: "O-9".into(),
                },
            ),
        ),
        (
            "settlement_confirm",
            Transaction::sign(
                chain,
                &merchant,
                1,
                TxBody::SettlementConfirm {
                    debtor: id("coffee"),
                    amount: 100,
                },
            ),
        ),
        (
            "propose_add_merchant",
            Transaction::sign(
                chain,
                &merchant,
                2,
                TxBody::Propose {
                    action: GovAction::AddMerchant {
                        id: id("tea"),
                        name: "Tea".into(),
                        key: bob,
                        policy: demo_policy(),
                    },
                    deadline_height: 50,
                },
            ),
        ),
        (
            "propose_suspend",
            Transaction::sign(
                chain,
                &merchant,
                3,
                TxBody::Propose {
                    action: GovAction::SuspendMerchant { id: id("tea") },
                    deadline_height: 60,
                },
            ),
        ),
        (
            "propose_update_policy",
            Transaction::sign(
                chain,
                &merchant,
                4,
                TxBody::Propose {
                    action: GovAction::UpdatePolicy {
                        id: id("coffee"),
                        policy: demo_policy(),
                    },
                    deadline_height: 70,
                },
            ),
        ),
        (
            "propose_update_params",
            Transaction::sign(
                chain,
                &merchant,
                5,
                TxBody::Propose {
                    action: GovAction::UpdateParams {
                        params: AllianceParams::default(),
                    },
                    deadline_height: 80,
                },
            ),
        ),
        (
            "vote",
            Transaction::sign(
                chain,
                &merchant,
                6,
                TxBody::Vote {
                    proposal: 7,
                    approve: true,
                },
            ),
        ),
    ];
    let mut out = Vec::new();
    for (name, tx) in &txs {
        out.push((format!("tx.{name}"), hex::encode(tx.to_bytes())));
        out.push((format!("tx.{name}.id"), tx.hash().to_hex()));
    }
    let header = BlockHeader {
        chain_id: chain.into(),
        height: 42,
        timestamp_ms: 1_700_000_000_000,
        prev_hash: Hash32([0x11; 32]),
        tx_count: txs.len() as u32,
        tx_root: Block::compute_tx_root(&txs.iter().map(|(_, t)| t.clone()).collect::<Vec<_>>()),
        state_root: Hash32([0x22; 32]),
        proposer: merchant.public(),
        validator_set_hash: Hash32([0x33; 32]),
    };
    out.push((
        "block_header".into(),
        hex::encode(alliance_protocol::encoding::encode(&header)),
    ));
    out.push(("block_header.hash".into(), header.hash().to_hex()));
    let (genesis, _) = demo_genesis(chain, 4, 1_700_000_000_000);
    out.push(("genesis.demo4.hash".into(), genesis.hash().to_hex()));
    // A consensus vote: its signing payload binds the chain id and the
    // validator set hash of its epoch (points-alliance/vote/v2).
    let vote = VoteData {
        kind: VoteKind::Finalize,
        view: 7,
        height: 42,
        block_hash: header.hash(),
    };
    let domain = VoteDomain {
        chain_id: chain.into(),
        validator_set_hash: header.validator_set_hash,
    };
    out.push((
        "vote.finalize.signing_hash".into(),
        vote.signing_hash(&domain).to_hex(),
    ));
    out.push((
        "vote.finalize".into(),
        hex::encode(alliance_protocol::encoding::encode(
            &vote.sign(&domain, &merchant),
        )),
    ));
    out
}

#[test]
fn golden_vectors_are_stable() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden/vectors.txt");
    let rendered: String = vectors()
        .iter()
        .map(|(k, v)| format!("{k} {v}\n"))
        .collect();
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(path, &rendered).unwrap();
        return;
    }
    let stored = std::fs::read_to_string(path)
        .expect("golden vectors file exists (UPDATE_GOLDEN=1 creates it)");
    for (line_new, line_old) in rendered.lines().zip(stored.lines()) {
        assert_eq!(
            line_new, line_old,
            "encoding changed; see the comment at the top of this file"
        );
    }
    assert_eq!(rendered.lines().count(), stored.lines().count());
}

#[test]
fn golden_transactions_decode_and_verify() {
    let stored = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/golden/vectors.txt"
    ))
    .unwrap();
    let mut n = 0;
    for line in stored.lines() {
        let (name, hex_bytes) = line.split_once(' ').unwrap();
        if name.starts_with("tx.") && !name.ends_with(".id") {
            let tx = Transaction::from_bytes(&hex::decode(hex_bytes).unwrap()).unwrap();
            assert!(tx.verify_for_chain("golden-chain").is_ok(), "{name}");
            n += 1;
        }
    }
    assert_eq!(n, 9);
}
