//! Property tests of the ledger state machine over random sequences of
//! valid and invalid transactions in random blocks:
//! - conservation: per issuer, issued = held + redeemed + expired;
//! - no negative or zero-amount lot, no expired lot still held;
//! - claims: every pair's claim equals redemptions by that issuer at that
//!   creditor minus confirmations, cross-checked two ways;
//! - determinism: replaying the same blocks from genesis gives the same
//!   state root at every height, and rebuilding from entries does too.

use std::collections::BTreeMap;

use alliance_protocol::fixtures::{demo_customer_key, demo_genesis, DEMO_MERCHANTS};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::limits::DAY_MS;
use alliance_protocol::state::{LedgerState, TxOutcome};
use alliance_protocol::{
    Block, GovAction, Keypair, MerchantId, MerchantPolicy, Transaction, TxBody,
};
use proptest::prelude::*;

const CHAIN: &str = "prop-chain";
const MERCHANTS: usize = 3;
const CUSTOMERS: usize = 4;

#[derive(Debug, Clone)]
enum Op {
    Issue {
        m: usize,
        to: usize,
        amount: u64,
        receipt: u8,
    },
    Transfer {
        from: usize,
        to: usize,
        amount: u64,
    },
    Redeem {
        who: usize,
        at: usize,
        amount: u64,
    },
    Confirm {
        creditor: usize,
        debtor: usize,
        amount: u64,
    },
    Policy {
        m: usize,
        validity_days: u32,
        daily_cap: u64,
        min_redemption: u64,
    },
    BadSignature {
        from: usize,
        to: usize,
        amount: u64,
    },
    WrongNonce {
        from: usize,
        to: usize,
        amount: u64,
        skew: u64,
    },
    WrongChain {
        from: usize,
        to: usize,
        amount: u64,
    },
    UnknownMerchant {
        who: usize,
        amount: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let m = 0..MERCHANTS;
    let c = 0..CUSTOMERS;
    prop_oneof![
        4 => (m.clone(), c.clone(), 1u64..300, any::<u8>()).prop_map(|(m, to, amount, receipt)| Op::Issue { m, to, amount, receipt: receipt % 40 }),
        4 => (c.clone(), c.clone(), 1u64..200).prop_map(|(from, to, amount)| Op::Transfer { from, to, amount }),
        3 => (c.clone(), m.clone(), 1u64..200).prop_map(|(who, at, amount)| Op::Redeem { who, at, amount }),
        2 => (m.clone(), m.clone(), 1u64..150).prop_map(|(creditor, debtor, amount)| Op::Confirm { creditor, debtor, amount }),
        1 => (m.clone(), 0u32..3, 50u64..600, 1u64..40).prop_map(|(m, validity_days, daily_cap, min_redemption)| Op::Policy { m, validity_days, daily_cap, min_redemption }),
        1 => (c.clone(), c.clone(), 1u64..50).prop_map(|(from, to, amount)| Op::BadSignature { from, to, amount }),
        1 => (c.clone(), c.clone(), 1u64..50, 0u64..3).prop_map(|(from, to, amount, skew)| Op::WrongNonce { from, to, amount, skew }),
        1 => (c.clone(), c.clone(), 1u64..50).prop_map(|(from, to, amount)| Op::WrongChain { from, to, amount }),
        1 => (c, 1u64..50).prop_map(|(who, amount)| Op::UnknownMerchant { who, amount }),
    ]
}

/// A block: its operations and how long after the previous one it comes.
fn blocks() -> impl Strategy<Value = Vec<(Vec<Op>, u64)>> {
    let gap = prop_oneof![4 => 1_000u64..60_000, 1 => DAY_MS / 2..3 * DAY_MS];
    prop::collection::vec((prop::collection::vec(op(), 0..10), gap), 1..16)
}

struct World {
    genesis: Genesis,
    merchants: Vec<Keypair>,
    customers: Vec<Keypair>,
    state: LedgerState,
    /// Nonces as the test expects them, including transactions of the
    /// block being built.
    nonces: BTreeMap<[u8; 32], u64>,
    /// Model: confirmations applied per (creditor, debtor).
    confirmed: BTreeMap<(MerchantId, MerchantId), u64>,
    /// Model: total points redeemed by applied redemptions.
    redeemed_total: u64,
    history: Vec<Block>,
}

fn mid(i: usize) -> MerchantId {
    MerchantId::new(DEMO_MERCHANTS[i].0).unwrap()
}

impl World {
    fn new() -> Self {
        let (mut genesis, merchants) = demo_genesis(CHAIN, MERCHANTS, 1_700_000_000_000);
        // Tight policies so that caps, minimums and expiry are exercised.
        for (i, m) in genesis.merchants.iter_mut().enumerate() {
            m.policy = MerchantPolicy {
                point_value_minor: 10 + 45 * i as u64,
                validity_days: i as u32 % 3,
                daily_issue_cap: 400,
                outstanding_cap: 1_500,
                min_redemption: 5 * i as u64 + 1,
            };
        }
        let customers = (0..CUSTOMERS)
            .map(|i| demo_customer_key(CHAIN, &format!("c{i}")))
            .collect();
        let state = LedgerState::from_genesis(&genesis);
        World {
            genesis,
            merchants,
            customers,
            state,
            nonces: BTreeMap::new(),
            confirmed: BTreeMap::new(),
            redeemed_total: 0,
            history: vec![],
        }
    }

    fn sign(&mut self, k: &Keypair, body: TxBody) -> Transaction {
        let n = self
            .nonces
            .entry(k.public().0)
            .or_insert_with(|| self.state.account(&k.public()).nonce);
        let tx = Transaction::sign(CHAIN, k, *n, body);
        *n += 1;
        tx
    }

    fn make_tx(&mut self, op: &Op) -> Transaction {
        let c = self.customers.clone();
        let m = self.merchants.clone();
        match *op {
            Op::Issue {
                m: i,
                to,
                amount,
                receipt,
            } => self.sign(
                &m[i],
                TxBody::Issue {
                    to: c[to].public(),
                    amount,
                    reason: String::new(),
                    receipt_ref: format!("r{receipt}"),
                },
            ),
            Op::Transfer { from, to, amount } => self.sign(
                &c[from],
                TxBody::Transfer {
                    to: c[to].public(),
                    amount,
                    memo: String::new(),
                },
            ),
            Op::Redeem { who, at, amount } => self.sign(
                &c[who],
                TxBody::Redeem {
                    merchant: mid(at),
                    amount,
                    order_ref: "o".into(),
                },
            ),
            Op::Confirm {
                creditor,
                debtor,
                amount,
            } => self.sign(
                &m[creditor],
                TxBody::SettlementConfirm {
                    debtor: mid(debtor),
                    amount,
                },
            ),
            Op::Policy { .. } => unreachable!("expanded in block()"),
            Op::BadSignature { from, to, amount } => {
                let nonce = *self
                    .nonces
                    .get(&c[from].public().0)
                    .unwrap_or(&self.state.account(&c[from].public()).nonce);
                let mut tx = Transaction::sign(
                    CHAIN,
                    &c[from],
                    nonce,
                    TxBody::Transfer {
                        to: c[to].public(),
                        amount,
                        memo: String::new(),
                    },
                );
                tx.signature.0[5] ^= 0x40;
                tx
            }
            Op::WrongNonce {
                from,
                to,
                amount,
                skew,
            } => {
                // skew 0 replays the previous nonce (when there is one), others skip ahead.
                let nonce = *self
                    .nonces
                    .get(&c[from].public().0)
                    .unwrap_or(&self.state.account(&c[from].public()).nonce);
                let nonce = if skew == 0 {
                    nonce.saturating_sub(1)
                } else {
                    nonce + skew
                };
                Transaction::sign(
                    CHAIN,
                    &c[from],
                    nonce,
                    TxBody::Transfer {
                        to: c[to].public(),
                        amount,
                        memo: String::new(),
                    },
                )
            }
            Op::WrongChain { from, to, amount } => {
                let nonce = self.state.account(&c[from].public()).nonce;
                Transaction::sign(
                    "another-chain",
                    &c[from],
                    nonce,
                    TxBody::Transfer {
                        to: c[to].public(),
                        amount,
                        memo: String::new(),
                    },
                )
            }
            Op::UnknownMerchant { who, amount } => self.sign(
                &c[who],
                TxBody::Redeem {
                    merchant: MerchantId::new("nowhere").unwrap(),
                    amount,
                    order_ref: "o".into(),
                },
            ),
        }
    }

    /// A policy change: a proposal and the other merchants' approvals.
    fn policy_change(
        &mut self,
        i: usize,
        validity_days: u32,
        daily_cap: u64,
        min_redemption: u64,
        next_proposal: &mut u64,
    ) -> Vec<Transaction> {
        let policy = MerchantPolicy {
            point_value_minor: 10 + i as u64 * 45,
            validity_days,
            daily_issue_cap: daily_cap,
            outstanding_cap: 1_500,
            min_redemption,
        };
        let deadline_height = self.state.tip().height + 5;
        let m = self.merchants.clone();
        let mut txs = vec![self.sign(
            &m[i],
            TxBody::Propose {
                action: GovAction::UpdatePolicy { id: mid(i), policy },
                deadline_height,
            },
        )];
        for (j, k) in m.iter().enumerate() {
            if j != i {
                txs.push(self.sign(
                    k,
                    TxBody::Vote {
                        proposal: *next_proposal,
                        approve: true,
                    },
                ));
            }
        }
        *next_proposal += 1;
        txs
    }

    fn block(&mut self, ops: &[Op], gap_ms: u64) {
        self.nonces.clear();
        let mut next_proposal = self.state.proposals().len() as u64;
        let mut txs: Vec<Transaction> = Vec::new();
        for o in ops {
            match *o {
                Op::Policy {
                    m,
                    validity_days,
                    daily_cap,
                    min_redemption,
                } => txs.extend(self.policy_change(
                    m,
                    validity_days,
                    daily_cap,
                    min_redemption,
                    &mut next_proposal,
                )),
                _ => txs.push(self.make_tx(o)),
            }
        }
        let time = self.state.tip().timestamp_ms + gap_ms;
        let (block, exec) = self.state.seal_block(txs, time, self.merchants[0].public());
        for (tx, outcome) in block.txs.iter().zip(&exec.outcomes) {
            if *outcome != TxOutcome::Applied {
                continue;
            }
            match &tx.body {
                TxBody::SettlementConfirm { debtor, amount } => {
                    let creditor = self.state.merchant_by_key(&tx.signer).unwrap().id;
                    *self
                        .confirmed
                        .entry((creditor, debtor.clone()))
                        .or_default() += amount;
                }
                TxBody::Redeem { amount, .. } => self.redeemed_total += amount,
                _ => {}
            }
        }
        if std::env::var_os("PROP_STATS").is_some() {
            for o in &exec.outcomes {
                eprintln!(
                    "OUTCOME {}",
                    match o {
                        TxOutcome::Applied => "applied".to_string(),
                        TxOutcome::Rejected(e) => e.code().to_string(),
                    }
                );
            }
        }
        self.state.commit(exec);
        self.history.push(block);
    }

    fn check_invariants(&self) {
        let now = self.state.tip().timestamp_ms;
        let merchants = self.state.merchants();
        let mut held: BTreeMap<MerchantId, u64> = BTreeMap::new();
        for (k, v) in self.state.entries() {
            if let (
                alliance_protocol::state::StateKey::Account(_),
                alliance_protocol::state::StateValue::Account(a),
            ) = (k, v)
            {
                for w in a.lots.windows(2) {
                    assert!(
                        w[0].spend_order() < w[1].spend_order(),
                        "lots sorted and merged: {a:?}"
                    );
                }
                for lot in &a.lots {
                    assert!(lot.amount > 0, "no empty lot");
                    assert!(
                        lot.expiry_ms.is_none_or(|e| e > now),
                        "no expired lot still held at {now}: {lot:?}"
                    );
                    *held.entry(lot.issuer.clone()).or_default() += lot.amount;
                }
            }
        }
        let claims = self.state.claims();
        let mut redeemed_sum = 0;
        for m in &merchants {
            let s = m.stats;
            let h = held.get(&m.id).copied().unwrap_or(0);
            assert_eq!(
                s.issued,
                h + s.redeemed + s.expired,
                "conservation for {}",
                m.id
            );
            assert_eq!(s.outstanding(), h);
            // Points of m burnt elsewhere are claims on m; the rest were
            // redeemed at m itself, which also shows in m's redeemed_here.
            let owed_by_m: u64 = claims
                .iter()
                .filter(|(_, d, _)| *d == m.id)
                .map(|(_, _, c)| c.redeemed_points)
                .sum();
            let owed_to_m: u64 = claims
                .iter()
                .filter(|(c, _, _)| *c == m.id)
                .map(|(_, _, c)| c.redeemed_points)
                .sum();
            assert!(owed_by_m <= s.redeemed);
            assert_eq!(
                s.redeemed - owed_by_m,
                s.redeemed_here - owed_to_m,
                "self-redemptions of {} agree",
                m.id
            );
            redeemed_sum += s.redeemed;
        }
        if std::env::var_os("PROP_STATS").is_some() {
            eprintln!(
                "EXPIRED {}",
                merchants.iter().map(|m| m.stats.expired).sum::<u64>() > 0
            );
        }
        assert_eq!(
            redeemed_sum, self.redeemed_total,
            "every redeemed point is accounted to an issuer"
        );
        for (c, d, claim) in &claims {
            let confirmed = self
                .confirmed
                .get(&(c.clone(), d.clone()))
                .copied()
                .unwrap_or(0);
            assert_eq!(claim.confirmed_points, confirmed, "confirmations {c}->{d}");
            assert_eq!(
                claim.outstanding_points(),
                claim.redeemed_points - confirmed
            );
            assert!(claim.confirmed_value_centiminor <= claim.redeemed_value_centiminor);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, .. ProptestConfig::default() })]

    #[test]
    fn invariants_hold_and_replay_is_deterministic(blocks in blocks()) {
        let mut w = World::new();
        let mut roots = Vec::new();
        for (ops, gap) in &blocks {
            w.block(ops, *gap);
            w.check_invariants();
            roots.push(w.state.state_root());
        }
        // Replay from genesis: same root at every height.
        let mut replay = LedgerState::from_genesis(&w.genesis);
        for (block, root) in w.history.iter().zip(&roots) {
            replay.apply_block(block).expect("a committed block replays");
            prop_assert_eq!(replay.state_root(), *root);
        }
        // The tree built incrementally equals the tree built from scratch.
        let rebuilt = LedgerState::from_entries(CHAIN.into(), w.state.tip(), w.state.entries().clone());
        prop_assert_eq!(rebuilt.state_root(), w.state.state_root());
    }
}
