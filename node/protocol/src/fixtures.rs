//! Deterministic demo alliances for tests, benchmarks and the devnet.
//! Keys come from labels, so they are public knowledge: never use these
//! outside a local test or demo chain.

use crate::crypto::Keypair;
use crate::genesis::{Genesis, GenesisMerchant};
use crate::merchant::{AllianceParams, MerchantId, MerchantPolicy};

/// Demo merchant ids and names, in the order `demo_genesis` uses them.
pub const DEMO_MERCHANTS: &[(&str, &str)] = &[
    ("coffee", "Corner Coffee"),
    ("books", "Bookworm Books"),
    ("cinema", "Starlight Cinema"),
    ("telecom", "Telco Mobile"),
    ("bakery", "Daily Bread"),
    ("gym", "Iron Gym"),
    ("grocer", "Green Grocer"),
    ("florist", "Petal Florist"),
    ("pharmacy", "Care Pharmacy"),
    ("taxi", "Swift Taxi"),
];

/// A generous demo policy: 100 points = 1.00, one year validity.
pub fn demo_policy() -> MerchantPolicy {
    MerchantPolicy {
        point_value_minor: 100,
        validity_days: 365,
        daily_issue_cap: 1_000_000,
        outstanding_cap: 1_000_000_000_000,
        min_redemption: 1,
    }
}

/// The merchant id of demo merchant `i` (`m10`, `m11`... past the named ones).
pub fn demo_merchant_id(i: usize) -> MerchantId {
    let id = match DEMO_MERCHANTS.get(i) {
        Some((id, _)) => id.to_string(),
        None => format!("m{i}"),
    };
    MerchantId::new(id).expect("demo ids are valid")
}

/// The key of demo merchant `i` on `chain_id`.
pub fn demo_merchant_key(chain_id: &str, i: usize) -> Keypair {
    Keypair::from_label(&format!("{chain_id}/merchant/{}", demo_merchant_id(i)))
}

/// A deterministic customer key.
pub fn demo_customer_key(chain_id: &str, name: &str) -> Keypair {
    Keypair::from_label(&format!("{chain_id}/customer/{name}"))
}

/// A genesis with `n` demo merchants and their keys (index = leader order
/// only if ids sort that way; use the keys by merchant id).
pub fn demo_genesis(chain_id: &str, n: usize, genesis_time_ms: u64) -> (Genesis, Vec<Keypair>) {
    let keys: Vec<Keypair> = (0..n).map(|i| demo_merchant_key(chain_id, i)).collect();
    let merchants = (0..n)
        .map(|i| GenesisMerchant {
            id: demo_merchant_id(i),
            name: DEMO_MERCHANTS
                .get(i)
                .map(|(_, n)| n.to_string())
                .unwrap_or_else(|| format!("Merchant {i}")),
            key: keys[i].public(),
            policy: demo_policy(),
        })
        .collect();
    let g = Genesis {
        chain_id: chain_id.to_string(),
        genesis_time_ms,
        params: AllianceParams::default(),
        merchants,
    };
    (g, keys)
}

/// A finalize certificate for `block` signed by every key in `signers`
/// (tests, benchmarks and synthetic chains, where one process holds the
/// validator keys).
pub fn certify(
    chain_id: &str,
    block: &crate::block::Block,
    view: u64,
    signers: &[Keypair],
) -> crate::certificate::Certificate {
    use crate::certificate::{Certificate, VoteData, VoteDomain, VoteKind};
    let data = VoteData {
        kind: VoteKind::Finalize,
        view,
        height: block.header.height,
        block_hash: block.hash(),
    };
    // The header names the validator set of its height: the votes' epoch.
    let msg = data.signing_hash(&VoteDomain {
        chain_id: chain_id.to_string(),
        validator_set_hash: block.header.validator_set_hash,
    });
    Certificate::from_votes(
        VoteKind::Finalize,
        view,
        data.height,
        data.block_hash,
        signers.iter().map(|k| (k.public(), k.sign(&msg.0))),
    )
}

/// A transfer of `amount` points from `from` (with its next `nonce`) to
/// `to`, without a memo, signed (benchmarks and tools).
pub fn transfer(
    chain_id: &str,
    from: &Keypair,
    nonce: u64,
    to: crate::crypto::PublicKey,
    amount: u64,
) -> crate::tx::Transaction {
    crate::tx::Transaction::sign(
        chain_id,
        from,
        nonce,
        crate::tx::TxBody::Transfer {
            to,
            amount,
            memo: String::new(),
        },
    )
}
