//! Unit tests of the ledger rules: one per rejection reason (asserting the
//! exact error), the domain's worked example, expiry and governance.

use super::*;
use crate::crypto::Keypair;
use crate::fixtures::{demo_customer_key, demo_genesis};
use crate::limits::DAY_MS;
use crate::merchant::{MerchantPolicy, MerchantStatus};
use crate::redemption::{AcceptanceRate, AcceptanceTerms, OrderRequest};
use crate::tx::{GovAction, TxBody};

const CHAIN: &str = "test-chain";
const T0: u64 = 1_700_000_000_000;

/// A chain in memory with a clock the test moves.
struct TestChain {
    state: LedgerState,
    merchants: Vec<Keypair>,
    now_ms: u64,
}

fn mid(s: &str) -> MerchantId {
    MerchantId::new(s).unwrap()
}

impl TestChain {
    fn new(n: usize) -> Self {
        Self::with_params(n, |_| {})
    }

    /// A chain whose genesis parameters `f` adjusts.
    fn with_params(n: usize, f: impl FnOnce(&mut crate::merchant::AllianceParams)) -> Self {
        let (mut g, merchants) = demo_genesis(CHAIN, n, T0);
        f(&mut g.params);
        g.validate().unwrap();
        TestChain {
            state: LedgerState::from_genesis(&g),
            merchants,
            now_ms: T0,
        }
    }

    /// The demo key of merchant `id` (coffee = 0, books = 1, ...).
    fn merchant(&self, id: &str) -> Keypair {
        let i = crate::fixtures::DEMO_MERCHANTS
            .iter()
            .position(|(m, _)| *m == id)
            .unwrap();
        self.merchants[i].clone()
    }

    fn nonce(&self, k: &Keypair) -> u64 {
        self.state.account(&k.public()).nonce
    }

    fn tx(&self, k: &Keypair, body: TxBody) -> Transaction {
        Transaction::sign(CHAIN, k, self.nonce(k), body)
    }

    /// Seals `txs` into the next block (1 s later), commits it, returns outcomes.
    fn block(&mut self, txs: Vec<Transaction>) -> Vec<TxOutcome> {
        self.now_ms += 1_000;
        let proposer = self.merchants[0].public();
        let (block, exec) = self.state.seal_block(txs, self.now_ms, proposer);
        // Re-execution by a validator agrees with the sealer.
        let again = self.state.execute(&block).expect("sealed block validates");
        assert_eq!(again.state_root, exec.state_root);
        assert_eq!(again.outcomes, exec.outcomes);
        self.state.commit(exec.clone());
        exec.outcomes
    }

    /// One transaction in its own block; its outcome.
    fn one(&mut self, tx: Transaction) -> Result<(), TxError> {
        match self.block(vec![tx]).remove(0) {
            TxOutcome::Applied => Ok(()),
            TxOutcome::Rejected(e) => Err(e),
        }
    }

    /// An issuance whose receipt is from now (the last block's time).
    fn issue(
        &mut self,
        merchant: &str,
        to: &Keypair,
        amount: u64,
        receipt: &str,
    ) -> Result<(), TxError> {
        self.issue_at(merchant, to, amount, receipt, self.now_ms)
    }

    /// An issuance whose receipt has the time `receipt_time_ms`.
    fn issue_at(
        &mut self,
        merchant: &str,
        to: &Keypair,
        amount: u64,
        receipt: &str,
        receipt_time_ms: u64,
    ) -> Result<(), TxError> {
        let m = self.merchant(merchant);
        let tx = self.tx(&m, issue_body(to, amount, receipt, receipt_time_ms));
        self.one(tx)
    }

    fn transfer(&mut self, from: &Keypair, to: &Keypair, amount: u64) -> Result<(), TxError> {
        let tx = self.tx(
            from,
            TxBody::Transfer {
                to: to.public(),
                amount,
                memo: String::new(),
            },
        );
        self.one(tx)
    }

    /// A two-party redemption of a new order (its reference: the previous
    /// block's time) worth `amount` minor units: `amount` points at the
    /// demo policy's face value (1 minor unit a point) and the default
    /// acceptance.
    fn redeem(&mut self, who: &Keypair, at: &str, amount: u64) -> Result<(), TxError> {
        let order = format!("order-{}", self.now_ms);
        self.redeem_order(who, at, amount, &order)
    }

    /// [`TestChain::redeem`] with the order reference given.
    fn redeem_order(
        &mut self,
        who: &Keypair,
        at: &str,
        amount: u64,
        order_ref: &str,
    ) -> Result<(), TxError> {
        let order = self.order(who, at, amount, &[], order_ref);
        self.pay(who, &order, &self.merchant(at))
    }

    /// An order of `value_minor` at merchant `at` for `who`, spending the
    /// `issuers` named (all accepted ones if empty), valid for a minute.
    fn order(
        &self,
        who: &Keypair,
        at: &str,
        value_minor: u64,
        issuers: &[&str],
        order_ref: &str,
    ) -> OrderRequest {
        OrderRequest {
            merchant: mid(at),
            merchant_key: self.merchant(at).public(),
            customer: who.public(),
            order_ref: order_ref.into(),
            value_minor,
            issuers: issuers.iter().map(|i| mid(i)).collect(),
            valid_until_ms: self.now_ms + 60_000,
        }
    }

    /// `who` pays `order`, which `signer` signed.
    fn pay(
        &mut self,
        who: &Keypair,
        order: &OrderRequest,
        signer: &Keypair,
    ) -> Result<(), TxError> {
        let tx = self.tx(
            who,
            TxBody::RedeemOrder {
                merchant_signature: order.sign(CHAIN, signer),
                order: order.clone(),
            },
        );
        self.one(tx)
    }

    /// A redemption signed by the customer alone (the merchant's own
    /// points only).
    fn redeem_plain(&mut self, who: &Keypair, at: &str, amount: u64) -> Result<(), TxError> {
        let tx = self.tx(
            who,
            TxBody::Redeem {
                merchant: mid(at),
                amount,
                order_ref: format!("plain-{}", self.now_ms),
            },
        );
        self.one(tx)
    }

    /// Merchant `at` announces order `rates` (no conversions) from
    /// `effective_height` on.
    fn set_acceptance(
        &mut self,
        at: &str,
        rates: &[(&str, u16)],
        effective_height: u64,
    ) -> Result<(), TxError> {
        self.set_terms(at, rates, &[], effective_height)
    }

    /// Merchant `at` announces order `rates` and `conversions` from
    /// `effective_height` on.
    fn set_terms(
        &mut self,
        at: &str,
        rates: &[(&str, u16)],
        conversions: &[(&str, u16)],
        effective_height: u64,
    ) -> Result<(), TxError> {
        let list = |rates: &[(&str, u16)]| {
            rates
                .iter()
                .map(|(i, bps)| AcceptanceRate {
                    issuer: mid(i),
                    bps: *bps,
                })
                .collect()
        };
        let tx = self.tx(
            &self.merchant(at),
            TxBody::SetAcceptance {
                terms: AcceptanceTerms {
                    rates: list(rates),
                    conversions: list(conversions),
                },
                effective_height,
            },
        );
        self.one(tx)
    }

    /// `who` converts `from`'s points into `points` of `to`.
    fn convert(&mut self, who: &Keypair, from: &str, to: &str, points: u64) -> Result<(), TxError> {
        let tx = self.tx(
            who,
            TxBody::Convert {
                from: mid(from),
                to: mid(to),
                points,
            },
        );
        self.one(tx)
    }

    /// Empty blocks until the tip is at `height`.
    fn advance_to(&mut self, height: u64) {
        while self.state.tip().height < height {
            self.block(vec![]);
        }
    }

    /// Points of `issuer` that `k` holds.
    fn held(&self, k: &Keypair, issuer: &str) -> u64 {
        self.state
            .account(&k.public())
            .lots
            .iter()
            .filter(|l| l.issuer.as_str() == issuer)
            .map(|l| l.amount)
            .sum()
    }

    /// The claim of `creditor` on `debtor`.
    fn claim(&self, creditor: &str, debtor: &str) -> Claim {
        self.state
            .claims()
            .into_iter()
            .find(|(c, d, _)| c.as_str() == creditor && d.as_str() == debtor)
            .map(|(_, _, claim)| claim)
            .unwrap_or_default()
    }

    fn set_policy(&mut self, id: &str, f: impl FnOnce(&mut MerchantPolicy)) {
        let mut policy = self.state.merchant(&mid(id)).unwrap().policy;
        f(&mut policy);
        let action = GovAction::UpdatePolicy {
            id: mid(id),
            policy,
        };
        self.pass(action);
    }

    /// Proposes an action and has every merchant approve it.
    fn pass(&mut self, action: GovAction) {
        let height = self.state.tip().height;
        let proposer = self.merchants[0].clone();
        let id = self.state.proposals().len() as u64;
        let tx = self.tx(
            &proposer,
            TxBody::Propose {
                action,
                deadline_height: height + 10,
            },
        );
        self.one(tx).unwrap();
        for k in self.merchants.clone().iter().skip(1) {
            let status = self.proposal(id).status;
            if status != ProposalStatus::Open {
                break;
            }
            let tx = self.tx(
                k,
                TxBody::Vote {
                    proposal: id,
                    approve: true,
                },
            );
            self.one(tx).unwrap();
        }
        assert!(
            matches!(self.proposal(id).status, ProposalStatus::Executed(_)),
            "{:?}",
            self.proposal(id)
        );
    }

    fn proposal(&self, id: u64) -> Proposal {
        self.state
            .proposals()
            .into_iter()
            .find(|p| p.id == id)
            .unwrap()
    }

    fn balance(&self, k: &Keypair) -> u64 {
        self.state.account(&k.public()).balance()
    }

    /// Passes a vote replacing the alliance parameters with `f` applied.
    fn set_params(&mut self, f: impl FnOnce(&mut crate::merchant::AllianceParams)) {
        let mut params = self.state.params();
        f(&mut params);
        self.pass(GovAction::UpdateParams { params });
    }

    /// The receipt entries (`Receipt` and `ReceiptQueue`) in the state.
    fn receipt_entries(&self) -> (Vec<StateKey>, Vec<StateKey>) {
        let keys = self.state.entries().expect("in memory").keys();
        (
            keys.clone()
                .filter(|k| matches!(k, StateKey::Receipt(..)))
                .cloned()
                .collect(),
            keys.filter(|k| matches!(k, StateKey::ReceiptQueue(..)))
                .cloned()
                .collect(),
        )
    }
}

fn issue_body(to: &Keypair, amount: u64, receipt: &str, receipt_time_ms: u64) -> TxBody {
    TxBody::Issue {
        to: to.public(),
        amount,
        reason: "purchase".into(),
        receipt_ref: receipt.into(),
        receipt_time_ms,
    }
}

fn alice() -> Keypair {
    demo_customer_key(CHAIN, "alice")
}
fn bob() -> Keypair {
    demo_customer_key(CHAIN, "bob")
}

// ---- one test per rejection reason -----------------------------------------

#[test]
fn bad_signature() {
    let mut c = TestChain::new(2);
    let mut tx = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    tx.signature.0[0] ^= 1;
    assert_eq!(c.one(tx), Err(TxError::BadSignature));
}

#[test]
fn signature_by_another_key() {
    let mut c = TestChain::new(2);
    let mut tx = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    tx.signer = bob().public();
    assert_eq!(c.one(tx), Err(TxError::BadSignature));
}

#[test]
fn wrong_chain_id() {
    let mut c = TestChain::new(2);
    let tx = Transaction::sign(
        "other-chain",
        &alice(),
        0,
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::WrongChain {
            expected: CHAIN.into(),
            got: "other-chain".into()
        })
    );
}

#[test]
fn replayed_nonce() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    let tx = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    c.one(tx.clone()).unwrap();
    assert_eq!(
        c.one(tx),
        Err(TxError::NonceReplayed {
            expected: 1,
            got: 0
        })
    );
    assert_eq!(c.balance(&bob()), 1, "a replay moves nothing");
}

#[test]
fn skipped_nonce() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    let tx = Transaction::sign(
        CHAIN,
        &alice(),
        1,
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::NonceSkipped {
            expected: 0,
            got: 1
        })
    );
}

#[test]
fn insufficient_balance() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    assert_eq!(
        c.transfer(&alice(), &bob(), 11),
        Err(TxError::InsufficientBalance {
            available: 10,
            requested: 11
        })
    );
    assert_eq!(
        c.redeem_plain(&alice(), "coffee", 11),
        Err(TxError::InsufficientBalance {
            available: 10,
            requested: 11
        })
    );
    assert_eq!(
        c.redeem(&alice(), "books", 11),
        Err(TxError::InsufficientValue {
            available_minor: 10,
            requested_minor: 11
        })
    );
    assert_eq!(c.balance(&alice()), 10);
    assert_eq!(
        c.nonce(&alice()),
        0,
        "a rejection does not consume the nonce"
    );
}

#[test]
fn zero_amount() {
    let mut c = TestChain::new(2);
    assert_eq!(c.transfer(&alice(), &bob(), 0), Err(TxError::ZeroAmount));
}

#[test]
fn unknown_merchant() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    assert_eq!(
        c.redeem_plain(&alice(), "nowhere", 5),
        Err(TxError::UnknownMerchant(mid("nowhere")))
    );
    let mut order = c.order(&alice(), "books", 5, &[], "o1");
    order.merchant = mid("nowhere");
    assert_eq!(
        c.pay(&alice(), &order, &c.merchant("books")),
        Err(TxError::UnknownMerchant(mid("nowhere")))
    );
    let named = c.order(&alice(), "books", 5, &["nowhere"], "o2");
    assert_eq!(
        c.pay(&alice(), &named, &c.merchant("books")),
        Err(TxError::UnknownMerchant(mid("nowhere")))
    );
    let books = c.merchant("books");
    let tx = c.tx(
        &books,
        TxBody::SettlementConfirm {
            debtor: mid("nowhere"),
            amount: 1,
        },
    );
    assert_eq!(c.one(tx), Err(TxError::UnknownMerchant(mid("nowhere"))));
}

#[test]
fn customer_cannot_issue() {
    let mut c = TestChain::new(2);
    let tx = c.tx(
        &alice(),
        TxBody::Issue {
            to: alice().public(),
            amount: 5,
            reason: String::new(),
            receipt_ref: "r".into(),
            receipt_time_ms: c.now_ms,
        },
    );
    assert_eq!(c.one(tx), Err(TxError::NotAMerchant));
}

#[test]
fn suspended_merchant() {
    let mut c = TestChain::new(4);
    c.issue("books", &alice(), 50, "r1").unwrap();
    c.pass(GovAction::SuspendMerchant { id: mid("books") });
    assert_eq!(
        c.state.merchant(&mid("books")).unwrap().status,
        MerchantStatus::Suspended
    );
    assert_eq!(
        c.issue("books", &alice(), 10, "r2"),
        Err(TxError::MerchantSuspended(mid("books")))
    );
    assert_eq!(
        c.redeem(&alice(), "books", 10),
        Err(TxError::MerchantSuspended(mid("books")))
    );
    // Its points are no longer accepted anywhere (issue #15)...
    assert_eq!(
        c.redeem(&alice(), "coffee", 10),
        Err(TxError::InsufficientValue {
            available_minor: 0,
            requested_minor: 10,
        })
    );
    let named = c.order(&alice(), "coffee", 10, &["books"], "named");
    assert_eq!(
        c.pay(&alice(), &named, &c.merchant("coffee")),
        Err(TxError::MerchantSuspended(mid("books")))
    );
    // ...but stay the customer's, and transferable.
    c.transfer(&alice(), &bob(), 20).unwrap();
    assert_eq!(c.state.account(&bob().public()).balance(), 20);
    // It is no longer a validator.
    assert!(!c
        .state
        .validator_set()
        .contains(&c.merchant("books").public()));
}

/// A redemption spends only the lots of issuers in good standing, closest
/// expiry first among them, and creates no claim on a suspended issuer.
#[test]
fn a_suspended_issuers_points_are_skipped_by_redemption() {
    let mut c = TestChain::new(4);
    c.set_policy("books", |p| p.validity_days = 10); // expires first
    c.set_policy("coffee", |p| p.validity_days = 0);
    c.issue("books", &alice(), 50, "b1").unwrap();
    c.issue("coffee", &alice(), 30, "c1").unwrap();
    c.pass(GovAction::SuspendMerchant { id: mid("books") });
    let claims_before = c.state.claims();
    c.redeem(&alice(), "cinema", 25).unwrap();
    let lots = c.state.account(&alice().public()).lots;
    let held = |issuer: &str| -> u64 {
        lots.iter()
            .filter(|l| l.issuer.as_str() == issuer)
            .map(|l| l.amount)
            .sum()
    };
    assert_eq!((held("books"), held("coffee")), (50, 5));
    let claims = c.state.claims();
    assert!(
        claims
            .iter()
            .all(|(_, debtor, _)| debtor.as_str() != "books"),
        "no claim on the suspended issuer: {claims:?} (before: {claims_before:?})"
    );
    // More than the accepted points are worth: refused with their value.
    assert_eq!(
        c.redeem(&alice(), "cinema", 6),
        Err(TxError::InsufficientValue {
            available_minor: 5,
            requested_minor: 6,
        })
    );
}

#[test]
fn daily_cap() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| p.daily_issue_cap = 100);
    c.issue("coffee", &alice(), 60, "r1").unwrap();
    assert_eq!(
        c.issue("coffee", &alice(), 41, "r2"),
        Err(TxError::DailyCapExceeded {
            cap: 100,
            already: 60,
            requested: 41
        })
    );
    // Another customer has their own cap; the next day the cap resets.
    c.issue("coffee", &bob(), 100, "r3").unwrap();
    c.now_ms += DAY_MS;
    c.issue("coffee", &alice(), 100, "r4").unwrap();
}

#[test]
fn outstanding_cap() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| p.outstanding_cap = 100);
    c.issue("coffee", &alice(), 70, "r1").unwrap();
    assert_eq!(
        c.issue("coffee", &bob(), 31, "r2"),
        Err(TxError::OutstandingCapExceeded {
            cap: 100,
            outstanding: 70,
            requested: 31
        })
    );
    // Redemption frees room under the cap.
    c.redeem(&alice(), "coffee", 10).unwrap();
    c.issue("coffee", &bob(), 40, "r3").unwrap();
}

#[test]
fn duplicate_receipt_earns_once() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "receipt-42").unwrap();
    let height = c.state.tip().height;
    assert_eq!(
        c.issue("coffee", &alice(), 10, "receipt-42"),
        Err(TxError::DuplicateReceipt {
            receipt_ref: "receipt-42".into(),
            height
        })
    );
    assert_eq!(c.balance(&alice()), 10);
    // Receipts are per merchant: the bookstore's receipt-42 is another receipt.
    c.issue("books", &alice(), 10, "receipt-42").unwrap();
}

#[test]
fn below_minimum_redemption() {
    let mut c = TestChain::new(2);
    c.set_policy("books", |p| p.min_redemption = 50);
    c.issue("coffee", &alice(), 100, "r1").unwrap();
    assert_eq!(
        c.redeem(&alice(), "books", 49),
        Err(TxError::BelowMinimumRedemption {
            minimum: 50,
            requested: 49
        })
    );
    c.redeem(&alice(), "books", 50).unwrap();
}

#[test]
fn expired_points_are_not_spendable_and_count_as_breakage() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| p.validity_days = 30);
    c.issue("coffee", &alice(), 40, "r1").unwrap();
    let expiry = c.state.account(&alice().public()).lots[0]
        .expiry_ms
        .unwrap();
    assert_eq!(expiry % DAY_MS, 0, "expiry is a UTC midnight");
    assert!(expiry > c.now_ms + 30 * DAY_MS && expiry <= c.now_ms + 31 * DAY_MS);
    c.now_ms = expiry - 5_000; // the next block is still before expiry
    c.transfer(&alice(), &bob(), 10).unwrap();
    c.now_ms = expiry;
    assert_eq!(
        c.transfer(&alice(), &bob(), 1),
        Err(TxError::InsufficientBalance {
            available: 0,
            requested: 1
        })
    );
    assert_eq!(
        c.balance(&bob()),
        0,
        "bob's lot kept alice's expiry and expired too"
    );
    let stats = c.state.merchant(&mid("coffee")).unwrap().stats;
    assert_eq!(
        (stats.issued, stats.expired, stats.outstanding()),
        (40, 40, 0)
    );
    assert!(
        c.state
            .entries()
            .expect("in memory")
            .keys()
            .all(|k| !matches!(k, StateKey::Expiry(..))),
        "expiry queue drained"
    );
}

#[test]
fn overflow_is_a_rejection() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| {
        p.daily_issue_cap = u64::MAX;
        p.outstanding_cap = u64::MAX;
    });
    c.issue("coffee", &alice(), u64::MAX - 1, "r1").unwrap();
    assert_eq!(c.issue("coffee", &alice(), 2, "r2"), Err(TxError::Overflow));
    assert_eq!(c.balance(&alice()), u64::MAX - 1);
}

#[test]
fn settlement_cannot_exceed_claim() {
    let mut c = TestChain::new(2);
    let books = c.merchant("books");
    let tx = c.tx(
        &books,
        TxBody::SettlementConfirm {
            debtor: mid("coffee"),
            amount: 1,
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::SettlementExceedsClaim {
            debtor: mid("coffee"),
            outstanding: 0,
            requested: 1
        })
    );
    let tx = c.tx(
        &books,
        TxBody::SettlementConfirm {
            debtor: mid("books"),
            amount: 1,
        },
    );
    assert_eq!(c.one(tx), Err(TxError::SelfSettlement));
}

#[test]
fn field_limits() {
    let mut c = TestChain::new(2);
    let coffee = c.merchant("coffee");
    let tx = c.tx(
        &coffee,
        TxBody::Issue {
            to: alice().public(),
            amount: 1,
            reason: "x".repeat(65),
            receipt_ref: "r".into(),
            receipt_time_ms: c.now_ms,
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::BadFieldLength {
            field: "reason".into(),
            min: 0,
            max: 64
        })
    );
    let tx = c.tx(
        &coffee,
        TxBody::Issue {
            to: alice().public(),
            amount: 1,
            reason: String::new(),
            receipt_ref: String::new(),
            receipt_time_ms: c.now_ms,
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::BadFieldLength {
            field: "receipt_ref".into(),
            min: 1,
            max: 64
        })
    );
}

#[test]
fn malformed_bytes() {
    use crate::encoding::DecodeError;
    let c = TestChain::new(2);
    let tx = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    let bytes = tx.to_bytes();
    assert!(matches!(
        Transaction::from_bytes(&bytes[..bytes.len() - 1]),
        Err(DecodeError::Malformed(_))
    ));
    let mut extra = bytes.clone();
    extra.push(0);
    assert_eq!(
        Transaction::from_bytes(&extra),
        Err(DecodeError::TrailingBytes(1))
    );
    let mut bad_variant = bytes.clone();
    // The body's variant index follows chain_id (8 + len), signer (32), nonce (8).
    let at = 8 + CHAIN.len() + 32 + 8;
    bad_variant[at] = 99;
    assert!(matches!(
        Transaction::from_bytes(&bad_variant),
        Err(DecodeError::Malformed(_))
    ));
    assert!(matches!(
        Transaction::from_bytes(&vec![0u8; 4096]),
        Err(DecodeError::TooLarge { .. })
    ));
}

// ---- behaviour -------------------------------------------------------------

/// The worked example of docs: Alice earns 120 at the coffee chain, gives
/// 20 to Bob, redeems 100 at the bookstore; the bookstore's claim on the
/// coffee chain is 100 points at coffee's value; coffee pays; books confirms.
#[test]
fn worked_example() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| p.point_value_minor = 100); // 100 points = 1.00
    c.issue("coffee", &alice(), 120, "cup-1").unwrap();
    c.transfer(&alice(), &bob(), 20).unwrap();
    c.redeem(&alice(), "books", 100).unwrap();
    assert_eq!((c.balance(&alice()), c.balance(&bob())), (0, 20));
    let claims = c.state.claims();
    assert_eq!(claims.len(), 1);
    let (creditor, debtor, claim) = &claims[0];
    assert_eq!((creditor.as_str(), debtor.as_str()), ("books", "coffee"));
    assert_eq!(claim.outstanding_points(), 100);
    assert_eq!(
        claim.outstanding_value_centiminor(),
        100 * 100,
        "100 points x 100 minor per 100 points = 100 minor"
    );
    let coffee = c.state.merchant(&mid("coffee")).unwrap().stats;
    assert_eq!(
        (coffee.issued, coffee.redeemed, coffee.outstanding()),
        (120, 100, 20)
    );
    assert_eq!(
        c.state.merchant(&mid("books")).unwrap().stats.redeemed_here,
        100
    );

    let books = c.merchant("books");
    let tx = c.tx(
        &books,
        TxBody::SettlementConfirm {
            debtor: mid("coffee"),
            amount: 100,
        },
    );
    c.one(tx).unwrap();
    let claim = c.state.claims()[0].2;
    assert_eq!(
        (
            claim.outstanding_points(),
            claim.outstanding_value_centiminor()
        ),
        (0, 0)
    );
}

#[test]
fn spending_uses_closest_expiry_first_and_lots_keep_issuer() {
    let mut c = TestChain::new(2);
    c.set_policy("coffee", |p| p.validity_days = 10);
    c.set_policy("books", |p| p.validity_days = 0);
    c.issue("books", &alice(), 50, "b1").unwrap(); // never expires
    c.issue("coffee", &alice(), 30, "c1").unwrap(); // expires first
    c.transfer(&alice(), &bob(), 40).unwrap();
    let bob_lots = c.state.account(&bob().public()).lots;
    assert_eq!(bob_lots.len(), 2);
    assert_eq!(
        (bob_lots[0].issuer.as_str(), bob_lots[0].amount),
        ("coffee", 30)
    );
    assert!(bob_lots[0].expiry_ms.is_some());
    assert_eq!(
        (
            bob_lots[1].issuer.as_str(),
            bob_lots[1].amount,
            bob_lots[1].expiry_ms
        ),
        ("books", 10, None)
    );
}

#[test]
fn governance_adds_a_merchant_from_the_next_height() {
    let mut c = TestChain::new(4);
    let newcomer = Keypair::from_label("newcomer");
    let action = GovAction::AddMerchant {
        id: mid("tea"),
        name: "Tea House".into(),
        key: newcomer.public(),
        policy: crate::fixtures::demo_policy(),
    };
    let height = c.state.tip().height;
    let propose = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action,
            deadline_height: height + 5,
        },
    );
    c.one(propose).unwrap();
    // 4 active merchants: passing needs more than 2/3, i.e. 3 approvals.
    let vote = |c: &TestChain, i: usize, approve: bool| {
        c.tx(
            &c.merchants[i],
            TxBody::Vote {
                proposal: 0,
                approve,
            },
        )
    };
    c.one(vote(&c, 1, true)).unwrap();
    assert_eq!(c.proposal(0).status, ProposalStatus::Open);
    assert_eq!(c.one(vote(&c, 1, false)), Err(TxError::AlreadyVoted(0)));
    let before = c.state.validator_set();
    c.one(vote(&c, 2, true)).unwrap();
    let executed_at = c.state.tip().height;
    assert_eq!(c.proposal(0).status, ProposalStatus::Executed(executed_at));
    assert_eq!(before.len(), 4);
    assert_eq!(
        c.state.validator_set().len(),
        5,
        "the next height's validator set includes the newcomer"
    );
    assert_eq!(c.one(vote(&c, 3, true)), Err(TxError::ProposalClosed(0)));
    // The newcomer issues its own points.
    c.merchants.push(newcomer.clone());
    let tx = c.tx(
        &newcomer,
        TxBody::Issue {
            to: alice().public(),
            amount: 5,
            reason: String::new(),
            receipt_ref: "t1".into(),
            receipt_time_ms: c.now_ms,
        },
    );
    c.one(tx).unwrap();
}

#[test]
fn governance_rejects_and_expires() {
    let mut c = TestChain::new(4);
    let action = GovAction::SuspendMerchant { id: mid("books") };
    let height = c.state.tip().height;
    let tx = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action: action.clone(),
            deadline_height: height + 3,
        },
    );
    c.one(tx).unwrap();
    for i in [1, 2] {
        let tx = c.tx(
            &c.merchants[i].clone(),
            TxBody::Vote {
                proposal: 0,
                approve: false,
            },
        );
        c.one(tx).unwrap();
    }
    assert!(matches!(c.proposal(0).status, ProposalStatus::Rejected(_)));
    // A proposal past its deadline takes no votes.
    let height = c.state.tip().height;
    // It lands at height + 1; votes count up to height + 2.
    let tx = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action,
            deadline_height: height + 2,
        },
    );
    c.one(tx).unwrap();
    c.block(vec![]);
    let tx = c.tx(
        &c.merchants[1].clone(),
        TxBody::Vote {
            proposal: 1,
            approve: true,
        },
    );
    assert_eq!(c.one(tx), Err(TxError::ProposalClosed(1)));
    let tx = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action: GovAction::SuspendMerchant { id: mid("books") },
            deadline_height: height,
        },
    );
    assert!(matches!(c.one(tx), Err(TxError::BadDeadline { .. })));
    let tx = c.tx(
        &alice(),
        TxBody::Vote {
            proposal: 1,
            approve: true,
        },
    );
    assert_eq!(c.one(tx), Err(TxError::NotAMerchant));
}

#[test]
fn single_merchant_passes_its_own_proposals() {
    let mut c = TestChain::new(1);
    c.set_policy("coffee", |p| p.min_redemption = 7);
    assert_eq!(
        c.state
            .merchant(&mid("coffee"))
            .unwrap()
            .policy
            .min_redemption,
        7
    );
    let tx = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action: GovAction::SuspendMerchant { id: mid("coffee") },
            deadline_height: 100,
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::InvalidProposal(
            "cannot suspend the last active merchant".into()
        ))
    );
}

// ---- the receipt window ----------------------------------------------------

const WINDOW_MS: u64 = 90 * DAY_MS;

#[test]
fn receipt_older_than_the_window_is_refused() {
    let mut c = TestChain::new(2);
    c.now_ms += 200 * DAY_MS;
    let next_block = c.now_ms + 1_000;
    let start = next_block - WINDOW_MS;
    assert_eq!(c.state.receipt_window_start(next_block), start);
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "old", start - 1),
        Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms: start - 1,
            window_start_ms: start,
        })
    );
    assert_eq!(
        TxError::ReceiptOutsideWindow {
            receipt_time_ms: 0,
            window_start_ms: 0
        }
        .code(),
        "receipt_outside_window"
    );
    assert_eq!(c.balance(&alice()), 0);
    assert_eq!(
        c.receipt_entries(),
        (vec![], vec![]),
        "a refusal records nothing"
    );
    // Exactly receipt_window_days old is still inside.
    let next_block = c.now_ms + 1_000;
    c.issue_at("coffee", &alice(), 10, "edge", next_block - WINDOW_MS)
        .unwrap();
    assert_eq!(c.balance(&alice()), 10);
}

#[test]
fn receipt_from_the_future_is_refused() {
    let mut c = TestChain::new(2);
    let latest = c.now_ms + 1_000 + DAY_MS;
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "ahead", latest + 1),
        Err(TxError::ReceiptInFuture {
            receipt_time_ms: latest + 1,
            latest_ms: latest,
        })
    );
    assert_eq!(
        TxError::ReceiptInFuture {
            receipt_time_ms: 0,
            latest_ms: 0
        }
        .code(),
        "receipt_in_future"
    );
    let latest = c.now_ms + 1_000 + DAY_MS;
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "far", u64::MAX),
        Err(TxError::ReceiptInFuture {
            receipt_time_ms: u64::MAX,
            latest_ms: latest,
        })
    );
    // One day ahead of the block (a till in another time zone) is accepted.
    let latest = c.now_ms + 1_000 + DAY_MS;
    c.issue_at("coffee", &alice(), 10, "ahead", latest).unwrap();
}

#[test]
fn duplicate_inside_the_window_is_refused_until_the_window_passes() {
    let mut c = TestChain::new(2);
    let receipt_time = c.now_ms;
    c.issue_at("coffee", &alice(), 10, "receipt-7", receipt_time)
        .unwrap();
    let height = c.state.tip().height;
    let duplicate = TxError::DuplicateReceipt {
        receipt_ref: "receipt-7".into(),
        height,
    };
    // The same receipt, or the same reference with another time inside the
    // window, up to the last block whose window still holds the first use.
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "receipt-7", receipt_time),
        Err(duplicate.clone())
    );
    c.now_ms = receipt_time + WINDOW_MS - 1_000; // next block: start = receipt_time
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "receipt-7", c.now_ms),
        Err(duplicate)
    );
    // The original receipt can never come back: it is outside the window
    // from the next block on.
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "receipt-7", receipt_time),
        Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms: receipt_time,
            window_start_ms: receipt_time + 1_000,
        })
    );
    // A new receipt reusing the reference (a till that cycles its numbers)
    // earns once more.
    c.issue_at("coffee", &alice(), 10, "receipt-7", c.now_ms)
        .unwrap();
    assert_eq!(c.balance(&alice()), 20);
}

/// A merchant's own key cannot turn other issuers' points into a claim by
/// redeeming them at itself; its own points it may burn, and it may spend
/// others' points as a customer at another merchant.
#[test]
fn a_merchant_cannot_redeem_other_issuers_points_at_itself() {
    let mut c = TestChain::new(3);
    let books = c.merchant("books");
    c.issue("coffee", &alice(), 50, "c1").unwrap();
    c.issue("books", &alice(), 20, "b1").unwrap();
    c.transfer(&alice(), &books, 70).unwrap();
    let claims_before = c.state.claims();
    assert_eq!(
        c.redeem_plain(&books, "books", 30),
        Err(TxError::SelfRedemption {
            own_points: 20,
            requested: 30,
        })
    );
    // With its own signature on the order too: coffee's points are not
    // offered (worth nothing to it), and naming them is refused.
    assert_eq!(
        c.redeem(&books, "books", 30),
        Err(TxError::InsufficientValue {
            available_minor: 20,
            requested_minor: 30,
        })
    );
    let named = c.order(&books, "books", 30, &["coffee"], "named");
    assert_eq!(
        c.pay(&books, &named, &books),
        Err(TxError::UnacceptedIssuer {
            merchant: mid("books"),
            issuer: mid("coffee"),
        })
    );
    assert_eq!(c.state.claims(), claims_before, "no claim arose");
    // Its own points: burnt, no claim.
    c.redeem(&books, "books", 20).unwrap();
    assert_eq!(c.state.claims(), claims_before);
    // Coffee's points at cinema, as a customer would: a claim of cinema.
    c.redeem(&books, "cinema", 50).unwrap();
    assert_eq!(c.claim("cinema", "coffee").redeemed_points, 50);
}

/// Signed by the customer alone, a redemption spends only the merchant's
/// own points: no claim on another issuer without the merchant's signature.
#[test]
fn a_plain_redemption_spends_only_the_merchants_own_points() {
    let mut c = TestChain::new(3);
    c.issue("coffee", &alice(), 50, "c1").unwrap();
    c.issue("books", &alice(), 20, "b1").unwrap();
    assert_eq!(
        c.redeem_plain(&alice(), "books", 30),
        Err(TxError::MerchantSignatureRequired {
            own_points: 20,
            requested: 30,
        })
    );
    assert_eq!(c.held(&alice(), "coffee"), 50);
    c.redeem_plain(&alice(), "books", 20).unwrap();
    assert_eq!(
        (c.held(&alice(), "books"), c.held(&alice(), "coffee")),
        (0, 50)
    );
    assert!(c.state.claims().is_empty());
    let books = c.state.merchant(&mid("books")).unwrap().stats;
    assert_eq!((books.redeemed, books.redeemed_here), (20, 20));
}

/// Coffee points (1 fen each) redeemed at books, which accepts them at 90 %:
/// a 1.00 yuan order burns 112 points (111.1 rounded up: the customer pays
/// less than one point too much), and books' claim on coffee is their value
/// at 90 %, 100.80 fen, rounded down to the centiminor.
#[test]
fn a_redemption_is_priced_in_currency_at_the_acceptance_rate() {
    let mut c = TestChain::with_params(3, |p| p.acceptance_notice_blocks = 5);
    c.issue("coffee", &alice(), 500, "c1").unwrap();
    // The next block's height plus the notice.
    let at = c.state.tip().height + 1 + 5;
    c.set_acceptance("books", &[("coffee", 9_000)], at).unwrap();
    // The block before `at`: the default, 100 points.
    c.advance_to(at - 2);
    c.redeem(&alice(), "books", 100).unwrap();
    assert_eq!(c.held(&alice(), "coffee"), 400);
    c.redeem(&alice(), "books", 100).unwrap();
    assert_eq!(c.held(&alice(), "coffee"), 288, "at 90 % from {at}");
    let claim = c.claim("books", "coffee");
    assert_eq!(claim.redeemed_points, 212);
    assert_eq!(claim.redeemed_value_centiminor, 10_000 + 10_080);
    let coffee = c.state.merchant(&mid("coffee")).unwrap().stats;
    assert_eq!(coffee.redeemed, 212);
    let books = c.state.merchant(&mid("books")).unwrap().stats;
    assert_eq!(books.redeemed_here, 212);
}

/// Named issuers are spent in the order named, and only they; one the
/// merchant does not accept is refused by name, while an order naming no
/// issuer skips it.
#[test]
fn named_issuers_are_spent_in_order_and_unaccepted_ones_refused() {
    let mut c = TestChain::with_params(3, |p| p.acceptance_notice_blocks = 0);
    c.set_policy("books", |p| p.validity_days = 10); // expires first
    c.issue("books", &alice(), 30, "b1").unwrap();
    c.issue("coffee", &alice(), 30, "c1").unwrap();
    c.issue("cinema", &alice(), 30, "m1").unwrap();
    let now = c.state.tip().height + 1;
    c.set_acceptance("books", &[("coffee", 5_000)], now)
        .unwrap();
    let named = c.order(&alice(), "books", 10, &["cinema"], "o1");
    assert_eq!(
        c.pay(&alice(), &named, &c.merchant("books")),
        Err(TxError::UnacceptedIssuer {
            merchant: mid("books"),
            issuer: mid("cinema"),
        })
    );
    // Coffee first, then books' own: 30 coffee points at 50 % pay 15,
    // 5 own points the other 5 (books' lots expire first, yet come second).
    let named = c.order(&alice(), "books", 20, &["coffee", "books"], "o2");
    c.pay(&alice(), &named, &c.merchant("books")).unwrap();
    assert_eq!(
        (c.held(&alice(), "coffee"), c.held(&alice(), "books")),
        (0, 25)
    );
    c.issue("coffee", &alice(), 30, "c2").unwrap();
    let twice = c.order(&alice(), "books", 1, &["coffee", "coffee"], "o3");
    assert_eq!(
        c.pay(&alice(), &twice, &c.merchant("books")),
        Err(TxError::DuplicateIssuer(mid("coffee")))
    );
    // Unnamed: closest expiry first among accepted issuers (books' own 25
    // pay 25, then 20 coffee points pay 10), cinema untouched.
    c.redeem(&alice(), "books", 35).unwrap();
    assert_eq!(
        (
            c.held(&alice(), "books"),
            c.held(&alice(), "coffee"),
            c.held(&alice(), "cinema")
        ),
        (0, 10, 30)
    );
    assert_eq!(c.claim("books", "coffee").redeemed_points, 50);
    assert_eq!(c.claim("books", "coffee").redeemed_value_centiminor, 2_500);
}

/// A change of acceptance needs the alliance's notice and applies from its
/// effective height; until then the rates in force stay.
#[test]
fn an_acceptance_change_applies_only_from_its_effective_height() {
    let mut c = TestChain::with_params(3, |p| p.acceptance_notice_blocks = 10);
    c.issue("coffee", &alice(), 100, "c1").unwrap();
    c.issue("cinema", &alice(), 100, "m1").unwrap();
    let next = c.state.tip().height + 1;
    assert_eq!(
        c.set_acceptance("books", &[("coffee", 9_000)], next + 9),
        Err(TxError::AcceptanceNoticeTooShort {
            effective_height: next + 9,
            earliest: next + 10,
        })
    );
    let at = c.state.tip().height + 11;
    c.set_acceptance("books", &[("coffee", 9_000)], at).unwrap();
    let acceptance = c.state.acceptance(&mid("books"));
    assert!(acceptance.terms.rates.is_empty());
    assert_eq!(acceptance.next.as_ref().map(|(h, _)| *h), Some(at));
    // Before: the default, cinema accepted at 100 %.
    c.advance_to(at - 2);
    let named = c.order(&alice(), "books", 10, &["cinema"], "before");
    c.pay(&alice(), &named, &c.merchant("books")).unwrap();
    assert_eq!(c.held(&alice(), "cinema"), 90);
    // From the effective height: cinema is no longer accepted.
    c.advance_to(at - 1);
    let named = c.order(&alice(), "books", 10, &["cinema"], "after");
    assert_eq!(
        c.pay(&alice(), &named, &c.merchant("books")),
        Err(TxError::UnacceptedIssuer {
            merchant: mid("books"),
            issuer: mid("cinema"),
        })
    );
    // Malformed policies.
    let far = c.state.tip().height + 100;
    assert_eq!(
        c.set_acceptance("books", &[("coffee", 0)], far),
        Err(TxError::InvalidAcceptance(
            "the rate of `coffee` is 0 bps; rates are 1 to 10000".into()
        ))
    );
    assert!(matches!(
        c.set_acceptance("books", &[("coffee", 10_001)], far),
        Err(TxError::InvalidAcceptance(_))
    ));
    assert!(matches!(
        c.set_acceptance("books", &[("books", 9_000)], far),
        Err(TxError::InvalidAcceptance(_))
    ));
    assert_eq!(
        c.set_acceptance("books", &[("coffee", 9_000), ("coffee", 8_000)], far),
        Err(TxError::DuplicateIssuer(mid("coffee")))
    );
    assert!(matches!(
        c.set_acceptance("books", &[("coffee", 9_000), ("cinema", 8_000)], far),
        Err(TxError::InvalidAcceptance(_))
    ));
    assert_eq!(
        c.set_acceptance("books", &[("nobody", 9_000)], far),
        Err(TxError::UnknownMerchant(mid("nobody")))
    );
    let alice_tx = c.tx(
        &alice(),
        TxBody::SetAcceptance {
            terms: AcceptanceTerms::default(),
            effective_height: far,
        },
    );
    assert_eq!(c.one(alice_tx), Err(TxError::NotAMerchant));
}

/// Cinema points (0.50 per 100) converted into books points (1.00 per 100)
/// at books' published 80 %: 100 books points take 250 cinema points, books
/// gains a claim on cinema for their value at 80 % (1.00), and the customer a
/// lot of books' points with books' validity.
#[test]
fn a_conversion_burns_the_issuers_points_and_credits_the_converters() {
    let mut c = TestChain::with_params(3, |p| p.acceptance_notice_blocks = 0);
    c.set_policy("cinema", |p| p.point_value_minor = 50);
    c.set_policy("books", |p| p.validity_days = 30);
    c.issue("cinema", &alice(), 300, "m1").unwrap();
    c.issue("coffee", &alice(), 300, "c1").unwrap();
    // Books converts nothing by default.
    assert_eq!(
        c.convert(&alice(), "cinema", "books", 100),
        Err(TxError::NotConvertible {
            from: mid("cinema"),
            to: mid("books"),
        })
    );
    let now = c.state.tip().height + 1;
    c.set_terms("books", &[], &[("cinema", 8_000)], now)
        .unwrap();
    let issued_before = c.state.merchant(&mid("books")).unwrap().stats.issued;
    c.convert(&alice(), "cinema", "books", 100).unwrap();
    assert_eq!(
        (c.held(&alice(), "cinema"), c.held(&alice(), "books")),
        (50, 100)
    );
    let lot = c
        .state
        .account(&alice().public())
        .lots
        .into_iter()
        .find(|l| l.issuer.as_str() == "books")
        .unwrap();
    assert_eq!(lot.expiry_ms, expiry_for(c.now_ms, 30));
    let claim = c.claim("books", "cinema");
    assert_eq!(
        (claim.redeemed_points, claim.redeemed_value_centiminor),
        (250, 10_000)
    );
    let books = c.state.merchant(&mid("books")).unwrap().stats;
    assert_eq!(
        (books.issued - issued_before, books.redeemed_here),
        (100, 250)
    );
    assert_eq!(
        c.state.merchant(&mid("cinema")).unwrap().stats.redeemed,
        250
    );
    // Short of cinema points: refused with what is needed.
    assert_eq!(
        c.convert(&alice(), "cinema", "books", 21),
        Err(TxError::InsufficientBalance {
            available: 50,
            requested: 53,
        })
    );
    // Coffee is not in books' conversions; a merchant does not convert into itself.
    assert_eq!(
        c.convert(&alice(), "coffee", "books", 1),
        Err(TxError::NotConvertible {
            from: mid("coffee"),
            to: mid("books"),
        })
    );
    assert_eq!(
        c.convert(&alice(), "books", "books", 1),
        Err(TxError::NotConvertible {
            from: mid("books"),
            to: mid("books"),
        })
    );
    // Books' own key cannot turn cinema points it holds into a claim.
    let books_key = c.merchant("books");
    c.transfer(&alice(), &books_key, 50).unwrap();
    assert_eq!(
        c.convert(&books_key, "cinema", "books", 10),
        Err(TxError::SelfConversion(mid("books")))
    );
    // A suspended issuer's points are not converted.
    c.pass(GovAction::SuspendMerchant { id: mid("cinema") });
    c.issue("coffee", &bob(), 10, "c2").unwrap();
    assert_eq!(
        c.convert(&books_key, "cinema", "books", 10),
        Err(TxError::MerchantSuspended(mid("cinema")))
    );
}

/// No claim without the merchant's signature: an order signed by another
/// key, a forged signature, an order for another customer, an expired one
/// or one valid too long are all refused.
#[test]
fn an_order_needs_the_merchants_valid_signature() {
    let mut c = TestChain::new(3);
    c.issue("coffee", &alice(), 100, "c1").unwrap();
    let books = c.merchant("books");
    let order = c.order(&alice(), "books", 10, &[], "o1");
    // Signed by coffee's key (the order names books' key): a bad signature.
    assert_eq!(
        c.pay(&alice(), &order, &c.merchant("coffee")),
        Err(TxError::BadSignature)
    );
    // Names and is signed by coffee's key, for books: not books' key.
    let mut other_key = order.clone();
    other_key.merchant_key = c.merchant("coffee").public();
    assert_eq!(
        c.pay(&alice(), &other_key, &c.merchant("coffee")),
        Err(TxError::WrongMerchantKey(mid("books")))
    );
    // The customer changes the value after the merchant signed.
    let tx = c.tx(
        &alice(),
        TxBody::RedeemOrder {
            merchant_signature: order.sign(CHAIN, &books),
            order: OrderRequest {
                value_minor: 1,
                ..order.clone()
            },
        },
    );
    assert!(!tx.verify_signature());
    assert_eq!(c.one(tx), Err(TxError::BadSignature));
    // Signed for another chain.
    let tx = c.tx(
        &alice(),
        TxBody::RedeemOrder {
            merchant_signature: order.sign("other-chain", &books),
            order: order.clone(),
        },
    );
    assert_eq!(c.one(tx), Err(TxError::BadSignature));
    // Bob cannot pay alice's order (nor alice bob's).
    c.issue("coffee", &bob(), 100, "c2").unwrap();
    assert_eq!(
        c.pay(&bob(), &order, &books),
        Err(TxError::OrderForAnotherCustomer)
    );
    let mut expired = c.order(&alice(), "books", 10, &[], "o2");
    let now = c.now_ms;
    expired.valid_until_ms = now; // the next block is a second later
    assert_eq!(
        c.pay(&alice(), &expired, &books),
        Err(TxError::OrderExpired {
            valid_until_ms: now,
            block_time_ms: now + 1_000,
        })
    );
    let mut long = c.order(&alice(), "books", 10, &[], "o3");
    long.valid_until_ms = c.now_ms + 1_000 + DAY_MS + 1;
    assert!(matches!(
        c.pay(&alice(), &long, &books),
        Err(TxError::OrderValidityTooLong { .. })
    ));
    assert!(c.state.claims().is_empty(), "no claim arose");
    assert_eq!(c.held(&alice(), "coffee"), 100);
    // The genuine order.
    c.pay(&alice(), &order, &books).unwrap();
    assert_eq!(c.claim("books", "coffee").redeemed_points, 10);
}

/// One redemption per order at a merchant inside the receipt window (the
/// same reference at another merchant is another order); once the window
/// has passed the first use, its entries are pruned and the reference is
/// free again.
#[test]
fn an_order_is_redeemed_once_within_the_window() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 100, "r1").unwrap();
    c.redeem_order(&alice(), "coffee", 10, "A-1").unwrap();
    let tip = c.state.tip();
    let (used_at, used_time) = (tip.height, tip.timestamp_ms);
    let order = StateKey::Order(mid("coffee"), "A-1".into());
    let queued = StateKey::OrderQueue(used_time, mid("coffee"), "A-1".into());
    let held = |c: &TestChain, k: &StateKey| c.state.entries().expect("in memory").get(k).cloned();
    assert_eq!(
        held(&c, &order),
        Some(StateValue::Order(UsedOrder {
            height: used_at,
            time_ms: used_time,
        }))
    );
    assert_eq!(held(&c, &queued), Some(StateValue::OrderQueue));
    let duplicate = Err(TxError::DuplicateOrder {
        order_ref: "A-1".into(),
        height: used_at,
    });
    assert_eq!(c.redeem_order(&alice(), "coffee", 10, "A-1"), duplicate);
    c.redeem_order(&alice(), "books", 10, "A-1").unwrap();
    // The last block whose window still holds the first use refuses it.
    c.now_ms = used_time + WINDOW_MS - 1_000;
    assert_eq!(c.redeem_order(&alice(), "coffee", 10, "A-1"), duplicate);
    assert_eq!(c.balance(&alice()), 80);
    assert!(held(&c, &order).is_some() && held(&c, &queued).is_some());
    // The next block's window starts after it: pruned, and free again.
    c.block(vec![]);
    assert_eq!((held(&c, &order), held(&c, &queued)), (None, None));
    c.redeem_order(&alice(), "coffee", 10, "A-1").unwrap();
    assert_eq!(c.balance(&alice()), 70);
}

#[test]
fn pruned_receipt_is_gone_with_a_proof_of_absence() {
    let mut c = TestChain::new(2);
    c.issue("books", &bob(), 30, "kept").unwrap();
    let receipt_time = c.now_ms;
    c.issue_at("coffee", &alice(), 40, "R-1", receipt_time)
        .unwrap();
    let used_at = c.state.tip().height;
    let receipt = StateKey::Receipt(mid("coffee"), "R-1".into());
    let queued = StateKey::ReceiptQueue(receipt_time, mid("coffee"), "R-1".into());
    assert_eq!(
        c.state.entries().expect("in memory").get(&receipt),
        Some(&StateValue::Receipt(UsedReceipt {
            height: used_at,
            receipt_time_ms: receipt_time,
        }))
    );
    assert_eq!(
        c.state.entries().expect("in memory").get(&queued),
        Some(&StateValue::ReceiptQueue)
    );
    c.now_ms = receipt_time + WINDOW_MS - 2_000;
    c.issue("books", &bob(), 1, "late").unwrap();
    // The last block whose window still holds the receipt (its window
    // starts at the receipt time) keeps it.
    c.block(vec![]);
    assert_eq!(c.state.tip().timestamp_ms, receipt_time + WINDOW_MS);
    assert!(c.state.entries().expect("in memory").contains_key(&receipt));
    assert!(c.state.entries().expect("in memory").contains_key(&queued));
    let stats_before = c.state.merchant(&mid("coffee")).unwrap().stats;
    let root_before = c.state.state_root();

    // The next block's window starts after it: both entries are pruned.
    c.now_ms = receipt_time + WINDOW_MS + 1 - 1_000;
    c.block(vec![]);
    assert!(!c.state.entries().expect("in memory").contains_key(&receipt));
    assert!(!c.state.entries().expect("in memory").contains_key(&queued));
    assert_ne!(c.state.state_root(), root_before);
    for key in [&receipt, &queued] {
        let (value, proof) = c.state.prove(key);
        assert!(value.is_none());
        proof
            .verify(&c.state.state_root(), &key.tree_key(), None)
            .unwrap();
        // The same proof does not pass for the entry's old value.
        assert!(proof
            .verify(
                &c.state.state_root(),
                &key.tree_key(),
                Some(
                    &StateValue::Receipt(UsedReceipt {
                        height: used_at,
                        receipt_time_ms: receipt_time,
                    })
                    .tree_value()
                ),
            )
            .is_err());
    }
    // The other receipts are younger and stay.
    let (receipts, queue) = c.receipt_entries();
    assert_eq!(
        receipts,
        vec![StateKey::Receipt(mid("books"), "late".into())]
    );
    assert_eq!(queue.len(), 1);
    // The root still verifies: rebuilt from the entries it is the same.
    let rebuilt = LedgerState::from_entries(
        CHAIN.into(),
        c.state.tip(),
        c.state.entries().expect("in memory").clone(),
    );
    assert_eq!(rebuilt.state_root(), c.state.state_root());
    // Pruning touches no points: stats, balances and conservation stand.
    let stats = c.state.merchant(&mid("coffee")).unwrap().stats;
    assert_eq!(stats, stats_before);
    assert_eq!((stats.issued, stats.outstanding()), (40, 40));
    assert_eq!(c.balance(&alice()), 40);
    // And the pruned receipt cannot be issued on again.
    let start = c.now_ms + 1_000 - WINDOW_MS;
    assert_eq!(
        c.issue_at("coffee", &alice(), 40, "R-1", receipt_time),
        Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms: receipt_time,
            window_start_ms: start,
        })
    );
}

#[test]
fn pruning_is_bounded_per_block_and_carries_over() {
    // One transaction per block: at most 2 receipts pruned per block.
    let mut c = TestChain::with_params(2, |p| p.block_txs_max = 1);
    for i in 0..5 {
        c.issue("coffee", &alice(), 1, &format!("r{i}")).unwrap();
    }
    assert_eq!(c.receipt_entries().0.len(), 5);
    c.now_ms += WINDOW_MS + 10 * DAY_MS; // all five are outside the window
    c.block(vec![]);
    let (receipts, queue) = c.receipt_entries();
    assert_eq!(
        (receipts.len(), queue.len()),
        (3, 3),
        "two pruned, oldest first"
    );
    assert_eq!(receipts[0], StateKey::Receipt(mid("coffee"), "r2".into()));

    // A receipt_ref whose old use is outside the window but not pruned yet
    // is free: the new use replaces it, with its own queue entry.
    let reuse = c.tx(
        &c.merchant("coffee"),
        issue_body(&alice(), 1, "r4", c.now_ms),
    );
    assert_eq!(c.state.check_tx(&reuse, c.now_ms + 1_000), Ok(()));
    assert_eq!(c.one(reuse), Ok(()));
    let (receipts, queue) = c.receipt_entries();
    // That block pruned r2 and r3; r4 is the new use only.
    assert_eq!(
        receipts,
        vec![StateKey::Receipt(mid("coffee"), "r4".into())]
    );
    assert_eq!(
        queue,
        vec![StateKey::ReceiptQueue(
            c.now_ms - 1_000,
            mid("coffee"),
            "r4".into()
        )]
    );
    // Later blocks leave the new use alone until its own window passes.
    c.block(vec![]);
    assert_eq!(c.receipt_entries().0.len(), 1);
    assert_eq!(c.balance(&alice()), 6);
}

#[test]
fn a_longer_window_never_reopens_a_pruned_receipt() {
    let mut c = TestChain::new(1);
    let receipt_time = c.now_ms;
    c.issue_at("coffee", &alice(), 10, "R-1", receipt_time)
        .unwrap();
    c.now_ms = receipt_time + WINDOW_MS + DAY_MS;
    c.block(vec![]);
    assert_eq!(c.receipt_entries(), (vec![], vec![]), "pruned");
    let start_before = c.state.receipt_window_start(c.now_ms + 1_000);
    c.set_params(|p| p.receipt_window_days = 180);
    assert_eq!(c.state.params().receipt_window_days, 180);
    // The window starts where the 90-day window did when the vote passed
    // (in the next block, the proposal's), not 180 days back.
    let floor = c.state.entries().expect("in memory")[&StateKey::Meta].clone();
    let StateValue::Meta(meta) = floor else {
        unreachable!()
    };
    assert_eq!(meta.receipt_floor_ms, start_before);
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "R-1", receipt_time),
        Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms: receipt_time,
            window_start_ms: meta.receipt_floor_ms,
        })
    );
    // The window stands still until 180 days reach past the floor, then moves.
    let t = meta.receipt_floor_ms + 180 * DAY_MS;
    assert_eq!(c.state.receipt_window_start(t), meta.receipt_floor_ms);
    assert_eq!(
        c.state.receipt_window_start(t + 5),
        meta.receipt_floor_ms + 5
    );

    // A shorter window moves the start forward at once; receipts before it
    // are refused and pruned at the next block.
    c.issue_at("coffee", &alice(), 10, "R-2", c.now_ms).unwrap();
    let r2 = c.now_ms - 1_000;
    c.now_ms += 40 * DAY_MS;
    c.set_params(|p| p.receipt_window_days = 30);
    let start = c.now_ms + 1_000 - 30 * DAY_MS;
    assert_eq!(
        c.issue_at("coffee", &alice(), 10, "R-3", r2),
        Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms: r2,
            window_start_ms: start,
        })
    );
    assert_eq!(c.receipt_entries(), (vec![], vec![]), "R-2 pruned");
    assert_eq!(c.balance(&alice()), 20);
}

#[test]
fn params_refuse_a_window_out_of_bounds() {
    let mut c = TestChain::new(1);
    let mut params = c.state.params();
    params.receipt_window_days = 0;
    let height = c.state.tip().height;
    let tx = c.tx(
        &c.merchants[0].clone(),
        TxBody::Propose {
            action: GovAction::UpdateParams { params },
            deadline_height: height + 5,
        },
    );
    assert_eq!(
        c.one(tx),
        Err(TxError::InvalidProposal(
            "receipt_window_days must be 1..=3650".into()
        ))
    );
}

// ---- block-level rules -----------------------------------------------------

#[test]
fn block_rules() {
    let mut c = TestChain::new(2);
    let proposer = c.merchants[0].public();
    let (block, _) = c.state.seal_block(vec![], T0 + 1_000, proposer);
    let check = |f: &dyn Fn(&mut Block)| {
        let mut b = block.clone();
        f(&mut b);
        c.state.execute(&b).err()
    };
    assert!(matches!(
        check(&|b| b.header.height = 5),
        Some(BlockError::WrongHeight {
            expected: 1,
            got: 5
        })
    ));
    assert!(matches!(
        check(&|b| b.header.prev_hash = Hash32([1; 32])),
        Some(BlockError::WrongParent { .. })
    ));
    assert!(matches!(
        check(&|b| b.header.timestamp_ms = T0),
        Some(BlockError::TimestampNotIncreasing { .. })
    ));
    assert!(matches!(
        check(&|b| b.header.chain_id = "x".into()),
        Some(BlockError::WrongChain { .. })
    ));
    assert!(matches!(
        check(&|b| b.header.state_root = Hash32([1; 32])),
        Some(BlockError::StateRootMismatch { .. })
    ));
    assert!(matches!(
        check(&|b| b.header.validator_set_hash = Hash32([1; 32])),
        Some(BlockError::ValidatorSetMismatch)
    ));
    assert!(matches!(
        check(&|b| b.header.proposer = alice().public()),
        Some(BlockError::ProposerNotValidator(_))
    ));
    let tx = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 1,
            memo: String::new(),
        },
    );
    assert!(matches!(
        check(&|b| b.txs.push(tx.clone())),
        Some(BlockError::TxRootMismatch)
    ));
    c.state.apply_block(&block).unwrap();
}

#[test]
fn build_block_keeps_only_applicable_transactions() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    let good = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 4,
            memo: String::new(),
        },
    );
    let too_much = Transaction::sign(
        CHAIN,
        &alice(),
        1,
        TxBody::Transfer {
            to: bob().public(),
            amount: 7,
            memo: String::new(),
        },
    );
    let next = Transaction::sign(
        CHAIN,
        &alice(),
        1,
        TxBody::Transfer {
            to: bob().public(),
            amount: 6,
            memo: String::new(),
        },
    );
    let (block, exec) = c.state.build_block(
        vec![good, too_much, next],
        c.now_ms + 1_000,
        c.merchants[0].public(),
    );
    assert_eq!(block.txs.len(), 2);
    assert_eq!(c.state.execute(&block).unwrap().state_root, exec.state_root);
    c.state.commit(exec);
    assert_eq!(c.balance(&bob()), 10);
}

#[test]
fn rebuilt_state_has_the_same_root() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    c.transfer(&alice(), &bob(), 3).unwrap();
    let rebuilt = LedgerState::from_entries(
        CHAIN.into(),
        c.state.tip(),
        c.state.entries().expect("in memory").clone(),
    );
    assert_eq!(rebuilt.state_root(), c.state.state_root());
}

#[test]
fn account_proof_verifies_against_state_root() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    let key = StateKey::Account(alice().public());
    let (value, proof) = c.state.prove(&key);
    let value_hash = value.unwrap().tree_value();
    proof
        .verify(&c.state.state_root(), &key.tree_key(), Some(&value_hash))
        .unwrap();
    let absent = StateKey::Account(Keypair::from_label("nobody").public());
    let (none, proof) = c.state.prove(&absent);
    assert!(none.is_none());
    proof
        .verify(&c.state.state_root(), &absent.tree_key(), None)
        .unwrap();
}

#[test]
fn check_tx_is_a_dry_run_of_the_same_rules() {
    let mut c = TestChain::new(2);
    c.issue("coffee", &alice(), 10, "r1").unwrap();
    let root = c.state.state_root();
    let ok = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 10,
            memo: String::new(),
        },
    );
    assert_eq!(c.state.check_tx(&ok, c.now_ms + 1), Ok(()));
    let too_much = c.tx(
        &alice(),
        TxBody::Transfer {
            to: bob().public(),
            amount: 11,
            memo: String::new(),
        },
    );
    assert_eq!(
        c.state.check_tx(&too_much, c.now_ms + 1),
        Err(TxError::InsufficientBalance {
            available: 10,
            requested: 11
        })
    );
    assert_eq!(c.state.state_root(), root, "a dry run changes nothing");
}
