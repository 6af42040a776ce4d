//! Golden vectors: the canonical bytes and hashes of one transaction of
//! each kind, a block header and a consensus vote, checked into `tests/golden/vectors.txt`.
//! Any change to the encoding, the signing payload or a hash domain fails
//! this test. If a format change is intended, regenerate with
//! `UPDATE_GOLDEN=1 cargo test -p alliance-protocol --test golden`, bump the
//! domain version, and say so in docs/protocol.md.

use alliance_protocol::fixtures::{demo_customer_key, demo_genesis, demo_policy};
use alliance_protocol::limits::DAY_MS;
use alliance_protocol::redemption::{AcceptanceRate, AcceptanceTerms, OrderRequest};
use alliance_protocol::state::{
    LedgerState, StateKey, StateValue, TxOutcome, UsedOrder, UsedReceipt,
};
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
                    receipt_time_ms: 1_699_999_000_000,
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
    out.extend(receipt_window_vectors());
    out.extend(order_vectors());
    out.extend(redemption_vectors());
    out
}

/// The receipt window's state entries (their bytes and tree paths and
/// leaves), the default parameters, and the state roots of a chain that
/// records a receipt and then prunes it when its window has passed.
fn receipt_window_vectors() -> Vec<(String, String)> {
    use alliance_protocol::encoding::encode;
    let mut out = Vec::new();
    let coffee = MerchantId::new("coffee").unwrap();
    let entries = [
        (
            "receipt",
            StateKey::Receipt(coffee.clone(), "R-1".into()),
            StateValue::Receipt(UsedReceipt {
                height: 42,
                receipt_time_ms: 1_699_999_000_000,
            }),
        ),
        (
            "receipt_queue",
            StateKey::ReceiptQueue(1_699_999_000_000, coffee, "R-1".into()),
            StateValue::ReceiptQueue,
        ),
    ];
    for (name, key, value) in entries {
        out.push((format!("state.{name}.key"), hex::encode(encode(&key))));
        out.push((format!("state.{name}.path"), key.tree_key().to_hex()));
        out.push((format!("state.{name}.value"), hex::encode(encode(&value))));
        out.push((format!("state.{name}.leaf"), value.tree_value().to_hex()));
    }
    out.push((
        "params.default".into(),
        hex::encode(encode(&AllianceParams::default())),
    ));

    // Block 1 uses receipt R-1 (receipt time = genesis time); block 2 is
    // the last whose 90-day window still holds it; block 3, one ms later,
    // prunes it.
    let chain = "golden-chain";
    let t0 = 1_700_000_000_000;
    let (genesis, keys) = demo_genesis(chain, 4, t0);
    let mut state = LedgerState::from_genesis(&genesis);
    out.push(("state.genesis.root".into(), state.state_root().to_hex()));
    let issue = Transaction::sign(
        chain,
        &keys[0],
        0,
        TxBody::Issue {
            to: demo_customer_key(chain, "alice").public(),
            amount: 120,
            reason: "purchase".into(),
            receipt_ref: "R-1".into(),
            receipt_time_ms: t0,
        },
    );
    let window = 90 * DAY_MS;
    for (name, time, txs) in [
        ("issued", t0 + 1_000, vec![issue]),
        ("window_end", t0 + window, vec![]),
        ("pruned", t0 + window + 1, vec![]),
    ] {
        let (block, exec) = state.seal_block(txs, time, keys[0].public());
        assert!(exec.outcomes.iter().all(|o| *o == TxOutcome::Applied));
        state.commit(exec);
        let receipts = state
            .entries()
            .expect("in memory")
            .keys()
            .filter(|k| matches!(k, StateKey::Receipt(..) | StateKey::ReceiptQueue(..)))
            .count();
        assert_eq!(receipts, if name == "pruned" { 0 } else { 2 }, "{name}");
        out.push((
            format!("state.{name}.root"),
            block.header.state_root.to_hex(),
        ));
    }
    out
}

/// The used-order state entries (bytes, tree paths, leaves) and the state
/// roots of a chain that redeems an order and prunes its record once the
/// receipt window has passed the redemption's block time.
fn order_vectors() -> Vec<(String, String)> {
    use alliance_protocol::encoding::encode;
    let mut out = Vec::new();
    let books = MerchantId::new("books").unwrap();
    let entries = [
        (
            "order",
            StateKey::Order(books.clone(), "O-1".into()),
            StateValue::Order(UsedOrder {
                height: 2,
                time_ms: 1_700_000_002_000,
            }),
        ),
        (
            "order_queue",
            StateKey::OrderQueue(1_700_000_002_000, books.clone(), "O-1".into()),
            StateValue::OrderQueue,
        ),
    ];
    for (name, key, value) in entries {
        out.push((format!("state.{name}.key"), hex::encode(encode(&key))));
        out.push((format!("state.{name}.path"), key.tree_key().to_hex()));
        out.push((format!("state.{name}.value"), hex::encode(encode(&value))));
        out.push((format!("state.{name}.leaf"), value.tree_value().to_hex()));
    }
    // Block 1 issues coffee points to alice; block 2 redeems order O-1 at
    // books; block 3 is the last whose window holds it; block 4 prunes it.
    let chain = "golden-chain";
    let t0 = 1_700_000_000_000;
    let (genesis, keys) = demo_genesis(chain, 4, t0);
    let mut state = LedgerState::from_genesis(&genesis);
    let alice = demo_customer_key(chain, "alice");
    let issue = Transaction::sign(
        chain,
        &keys[0],
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 120,
            reason: "purchase".into(),
            receipt_ref: "R-1".into(),
            receipt_time_ms: t0,
        },
    );
    let redeemed_at = t0 + 2_000;
    let order = OrderRequest {
        merchant: books.clone(),
        merchant_key: keys[1].public(),
        customer: alice.public(),
        order_ref: "O-1".into(),
        value_minor: 100,
        issuers: vec![],
        valid_until_ms: redeemed_at + 60_000,
    };
    let redeem = Transaction::sign(
        chain,
        &alice,
        0,
        TxBody::RedeemOrder {
            merchant_signature: order.sign(chain, &keys[1]),
            order,
        },
    );
    let window = 90 * DAY_MS;
    for (name, time, txs, held) in [
        ("issued", t0 + 1_000, vec![issue], 0),
        ("ordered", redeemed_at, vec![redeem], 2),
        ("order_window_end", redeemed_at + window, vec![], 2),
        ("order_pruned", redeemed_at + window + 1, vec![], 0),
    ] {
        let (block, exec) = state.seal_block(txs, time, keys[0].public());
        assert!(exec.outcomes.iter().all(|o| *o == TxOutcome::Applied));
        state.commit(exec);
        let orders = state
            .entries()
            .expect("in memory")
            .keys()
            .filter(|k| matches!(k, StateKey::Order(..) | StateKey::OrderQueue(..)))
            .count();
        assert_eq!(orders, held, "{name}");
        out.push((
            format!("state.{name}.root"),
            block.header.state_root.to_hex(),
        ));
    }
    out
}

/// Two-party redemption priced in currency (issue #15): the two new
/// transaction bodies, the merchant's order signing hash, the acceptance
/// entry, and the roots of a chain where books accepts coffee points at
/// 90 % and alice pays a 1.00 order with 112 of them.
fn redemption_vectors() -> Vec<(String, String)> {
    use alliance_protocol::encoding::encode;
    let chain = "golden-chain";
    let t0 = 1_700_000_000_000;
    let (mut genesis, keys) = demo_genesis(chain, 4, t0);
    genesis.params.acceptance_notice_blocks = 1;
    let mut state = LedgerState::from_genesis(&genesis);
    let (coffee, books) = (
        MerchantId::new("coffee").unwrap(),
        MerchantId::new("books").unwrap(),
    );
    let alice = demo_customer_key(chain, "alice");
    let rates = vec![AcceptanceRate {
        issuer: coffee.clone(),
        bps: 9_000,
    }];
    let set = Transaction::sign(
        chain,
        &keys[1],
        0,
        TxBody::SetAcceptance {
            terms: AcceptanceTerms {
                rates: rates.clone(),
                conversions: vec![AcceptanceRate {
                    issuer: MerchantId::new("cinema").unwrap(),
                    bps: 8_000,
                }],
            },
            effective_height: 2,
        },
    );
    let cinema_issue = Transaction::sign(
        chain,
        &keys[2],
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 300,
            reason: "ticket".into(),
            receipt_ref: "T-1".into(),
            receipt_time_ms: t0,
        },
    );
    let convert = Transaction::sign(
        chain,
        &alice,
        1,
        TxBody::Convert {
            from: MerchantId::new("cinema").unwrap(),
            to: books.clone(),
            points: 100,
        },
    );
    let issue = Transaction::sign(
        chain,
        &keys[0],
        0,
        TxBody::Issue {
            to: alice.public(),
            amount: 500,
            reason: "purchase".into(),
            receipt_ref: "R-1".into(),
            receipt_time_ms: t0,
        },
    );
    let order = OrderRequest {
        merchant: books.clone(),
        merchant_key: keys[1].public(),
        customer: alice.public(),
        order_ref: "O-7".into(),
        value_minor: 100,
        issuers: vec![coffee.clone()],
        valid_until_ms: t0 + 60_000,
    };
    let pay = Transaction::sign(
        chain,
        &alice,
        0,
        TxBody::RedeemOrder {
            merchant_signature: order.sign(chain, &keys[1]),
            order: order.clone(),
        },
    );
    let mut out = vec![
        (
            "order.signing_hash".to_string(),
            order.signing_hash(chain).to_hex(),
        ),
        ("tx.set_acceptance".to_string(), hex::encode(set.to_bytes())),
        ("tx.set_acceptance.id".to_string(), set.hash().to_hex()),
        ("tx.redeem_order".to_string(), hex::encode(pay.to_bytes())),
        ("tx.redeem_order.id".to_string(), pay.hash().to_hex()),
        ("tx.convert".to_string(), hex::encode(convert.to_bytes())),
        ("tx.convert.id".to_string(), convert.hash().to_hex()),
    ];
    for (name, time, txs) in [
        ("accepting", t0 + 1_000, vec![issue, cinema_issue, set]),
        ("paid", t0 + 2_000, vec![pay]),
        ("converted", t0 + 3_000, vec![convert]),
    ] {
        let (block, exec) = state.seal_block(txs, time, keys[0].public());
        assert!(
            exec.outcomes.iter().all(|o| *o == TxOutcome::Applied),
            "{name}: {:?}",
            exec.outcomes
        );
        state.commit(exec);
        out.push((
            format!("state.{name}.root"),
            block.header.state_root.to_hex(),
        ));
    }
    let claim = state
        .claims()
        .into_iter()
        .find(|(c, d, _)| *c == books && *d == coffee)
        .unwrap()
        .2;
    assert_eq!(
        (claim.redeemed_points, claim.redeemed_value_centiminor),
        (112, 10_080)
    );
    // 100 books points from cinema points at 80 %: 125 of them.
    let converted = state
        .claims()
        .into_iter()
        .find(|(c, d, _)| *c == books && d.as_str() == "cinema")
        .unwrap()
        .2;
    assert_eq!(
        (
            converted.redeemed_points,
            converted.redeemed_value_centiminor
        ),
        (125, 10_000)
    );
    let key = StateKey::Acceptance(books);
    let value = StateValue::Acceptance(state.acceptance(&MerchantId::new("books").unwrap()));
    out.push(("state.acceptance.key".into(), hex::encode(encode(&key))));
    out.push(("state.acceptance.path".into(), key.tree_key().to_hex()));
    out.push(("state.acceptance.value".into(), hex::encode(encode(&value))));
    out.push(("state.acceptance.leaf".into(), value.tree_value().to_hex()));
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
    assert_eq!(n, 12);
}
