//! Synthetic chains: deterministic blocks of issuances, transfers and
//! redemptions for a demo genesis (whose merchant keys are derivable), used
//! by the crash test, benchmarks and exports. The transactions of height `h`
//! depend only on `h` and the state, so a killed and restarted generator
//! continues exactly where the durable chain stopped.

use alliance_protocol::fixtures::{certify, demo_customer_key, demo_merchant_key};
use alliance_protocol::redemption::OrderRequest;
use alliance_protocol::state::{Execution, LedgerState};
use alliance_protocol::{FinalizedBlock, Keypair, Transaction, TxBody};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Block time of synthetic block `height`: one block per second after genesis.
pub fn timestamp_of(genesis_time_ms: u64, height: u64) -> u64 {
    genesis_time_ms + height * 1_000
}

/// Generates blocks for a demo chain.
pub struct Synth {
    chain_id: String,
    merchants: Vec<Keypair>,
    customers: Vec<Keypair>,
}

impl Synth {
    /// A generator for a demo chain with `merchants` merchants and a pool of
    /// `customers` customer keys.
    pub fn new(chain_id: &str, merchants: usize, customers: usize) -> Self {
        Synth {
            chain_id: chain_id.to_string(),
            merchants: (0..merchants)
                .map(|i| demo_merchant_key(chain_id, i))
                .collect(),
            customers: (0..customers)
                .map(|i| demo_customer_key(chain_id, &format!("c{i}")))
                .collect(),
        }
    }

    /// The customer keys.
    pub fn customers(&self) -> &[Keypair] {
        &self.customers
    }

    /// Candidate transactions for the block after `state`'s tip: a mix of
    /// issuances (so customers have points), transfers and redemptions.
    pub fn transactions(&self, state: &LedgerState, count: usize) -> Vec<Transaction> {
        let height = state.tip().height + 1;
        let mut rng = ChaCha8Rng::seed_from_u64(height);
        let mut nonces = std::collections::HashMap::new();
        let mut next_nonce = |k: &Keypair| {
            let n = nonces
                .entry(k.public())
                .or_insert_with(|| state.account(&k.public()).nonce);
            let v = *n;
            *n += 1;
            v
        };
        let merchant_ids: Vec<_> = state.merchants().into_iter().map(|m| m.id).collect();
        let mut txs = Vec::with_capacity(count);
        for i in 0..count {
            let roll: u32 = rng.gen_range(0..10);
            let tx = if roll < 3 {
                let m = &self.merchants[rng.gen_range(0..self.merchants.len())];
                let to = self.customers[rng.gen_range(0..self.customers.len())].public();
                let body = TxBody::Issue {
                    to,
                    amount: rng.gen_range(1..500),
                    reason: "purchase".into(),
                    receipt_ref: format!("h{height}-{i}"),
                    // The purchase was at the parent block's time.
                    receipt_time_ms: state.tip().timestamp_ms,
                };
                Transaction::sign(&self.chain_id, m, next_nonce(m), body)
            } else {
                let from = &self.customers[rng.gen_range(0..self.customers.len())];
                let body = if roll < 9 {
                    let to = self.customers[rng.gen_range(0..self.customers.len())].public();
                    TxBody::Transfer {
                        to,
                        amount: rng.gen_range(1..50),
                        memo: String::new(),
                    }
                } else {
                    // An order at a merchant's till, which the merchant
                    // signs, paid with points of any accepted issuer.
                    let merchant = merchant_ids[rng.gen_range(0..merchant_ids.len())].clone();
                    let key = state.merchant(&merchant).map(|m| m.key);
                    let signer = self.merchants.iter().find(|k| Some(k.public()) == key);
                    let value_minor = rng.gen_range(1..50);
                    match signer {
                        Some(signer) => {
                            let order = OrderRequest {
                                merchant,
                                merchant_key: signer.public(),
                                customer: from.public(),
                                order_ref: format!("o{height}-{i}"),
                                value_minor,
                                issuers: Vec::new(),
                                valid_until_ms: state.tip().timestamp_ms + 60_000,
                            };
                            TxBody::RedeemOrder {
                                merchant_signature: order.sign(&self.chain_id, signer),
                                order,
                            }
                        }
                        // A merchant added by governance: its own points only.
                        None => TxBody::Redeem {
                            merchant,
                            amount: value_minor,
                            order_ref: format!("o{height}-{i}"),
                        },
                    }
                };
                Transaction::sign(&self.chain_id, from, next_nonce(from), body)
            };
            txs.push(tx);
        }
        txs
    }

    /// Builds and certifies the next block (leader = merchant 0).
    pub fn next_block(
        &self,
        state: &LedgerState,
        txs_per_block: usize,
        genesis_time_ms: u64,
    ) -> (FinalizedBlock, Execution) {
        let height = state.tip().height + 1;
        let txs = self.transactions(state, txs_per_block);
        let (block, exec) = state.build_block(
            txs,
            timestamp_of(genesis_time_ms, height),
            self.merchants[0].public(),
        );
        let certificate = certify(&self.chain_id, &block, height, &self.merchants);
        (FinalizedBlock { block, certificate }, exec)
    }
}
