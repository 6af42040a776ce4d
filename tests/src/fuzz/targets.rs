//! The in-process targets: transaction decoding (`tx`), block, finalized
//! block and certificate decoding (`block`), and what peers send over the
//! network (`net`: consensus gossip messages and block sync frames). Every
//! accepted input must re-encode to the very same bytes (the encoding is
//! canonical: one value, one byte string), and is then pushed through what
//! the node does next with it (signature and ledger checks, block
//! execution, certificate verification, the consensus core), which must not
//! panic either.

use alliance_consensus::{Anchor, Config as CoreConfig, Core, Input, Message, Proposal};
use alliance_node::network::limits::{SYNC_REQUEST_BYTES_MAX, SYNC_RESPONSE_BYTES_MAX};
use alliance_node::network::sync_codec::SyncCodec;
use alliance_node::network::{ChainStatus, RefusalReason, SyncRequest, SyncResponse};
use alliance_node::synth::Synth;
use alliance_protocol::fixtures::{demo_customer_key, demo_genesis, demo_merchant_id, demo_policy};
use alliance_protocol::merchant::AllianceParams;
use alliance_protocol::state::LedgerState;
use alliance_protocol::{
    Block, Certificate, FinalizedBlock, GovAction, Hash32, Keypair, MerchantId, Transaction,
    TxBody, ValidatorSet, VoteData, VoteKind,
};

use super::{outcome_class, Outcome, Target, Violation};

/// Chain id of the fuzzed demo alliance.
pub const CHAIN: &str = "fuzz-chain";
/// Genesis time of the fuzzed demo alliance.
const GENESIS_MS: u64 = 1_700_000_000_000;
/// Merchants of the fuzzed demo alliance.
const MERCHANTS: usize = 4;
/// The consensus core is rebuilt this often, so its memory stays that of a
/// live node (bounded views) and runs stay reproducible in chunks.
const CORE_RESET_EVERY: u64 = 2_000;

/// The leading identifier of a `Debug` form: the error variant's name.
fn variant(debug: &str) -> &str {
    let end = debug
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .unwrap_or(debug.len());
    &debug[..end]
}

/// Canonical encoding: the accepted bytes are exactly the re-encoding.
fn round_trip(what: &str, input: &[u8], again: &[u8]) -> Result<(), Violation> {
    if input == again {
        Ok(())
    } else {
        Err(format!(
            "{what}: accepted {} bytes re-encode to {} different bytes (non-canonical)",
            input.len(),
            again.len()
        ))
    }
}

/// The demo alliance: genesis state and keys.
struct Demo {
    state: LedgerState,
    keys: Vec<Keypair>,
    validators: ValidatorSet,
}

impl Demo {
    fn new() -> Self {
        let (genesis, keys) = demo_genesis(CHAIN, MERCHANTS, GENESIS_MS);
        let state = LedgerState::from_genesis(&genesis);
        let validators = state.validator_set();
        Demo {
            state,
            keys,
            validators,
        }
    }

    /// Synthetic first blocks with `txs` transactions each.
    fn first_block(&self, txs: usize) -> FinalizedBlock {
        Synth::new(CHAIN, MERCHANTS, 8)
            .next_block(&self.state, txs, GENESIS_MS)
            .0
    }
}

/// One transaction of every kind (and every governance action).
pub fn sample_transactions() -> Vec<Transaction> {
    let merchant = alliance_protocol::fixtures::demo_merchant_key(CHAIN, 0);
    let alice = demo_customer_key(CHAIN, "alice");
    let bob = demo_customer_key(CHAIN, "bob").public();
    let actions = [
        GovAction::AddMerchant {
            id: MerchantId::new("tea").expect("valid id"),
            name: "Tea House".into(),
            key: bob,
            policy: demo_policy(),
        },
        GovAction::SuspendMerchant {
            id: demo_merchant_id(1),
        },
        GovAction::UpdatePolicy {
            id: demo_merchant_id(2),
            policy: demo_policy(),
        },
        GovAction::UpdateParams {
            params: AllianceParams::default(),
        },
    ];
    let mut txs = vec![
        Transaction::sign(
            CHAIN,
            &merchant,
            0,
            TxBody::Issue {
                to: alice.public(),
                amount: 120,
                reason: "purchase".into(),
                receipt_ref: "r-1".into(),
                receipt_time_ms: GENESIS_MS,
            },
        ),
        Transaction::sign(
            CHAIN,
            &alice,
            0,
            TxBody::Transfer {
                to: bob,
                amount: 20,
                memo: "lunch".into(),
            },
        ),
        Transaction::sign(
            CHAIN,
            &alice,
            1,
            TxBody::Redeem {
                merchant: demo_merchant_id(1),
                amount: 100,
                order_ref: "o-1".into(),
            },
        ),
        Transaction::sign(
            CHAIN,
            &merchant,
            1,
            TxBody::SettlementConfirm {
                debtor: demo_merchant_id(1),
                amount: 50,
            },
        ),
        Transaction::sign(
            CHAIN,
            &merchant,
            2,
            TxBody::Vote {
                proposal: 0,
                approve: true,
            },
        ),
    ];
    for (i, action) in actions.into_iter().enumerate() {
        txs.push(Transaction::sign(
            CHAIN,
            &merchant,
            3 + i as u64,
            TxBody::Propose {
                action,
                deadline_height: 100,
            },
        ));
    }
    txs
}

/// `tx`: `Transaction::from_bytes` (gossip and block payloads), then the
/// signature, the ledger's stateless and stateful checks and the JSON form.
pub struct TxTarget {
    demo: Demo,
}

impl TxTarget {
    /// A target over a fresh demo alliance.
    pub fn new() -> Self {
        TxTarget { demo: Demo::new() }
    }
}

impl Default for TxTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for TxTarget {
    fn name(&self) -> &'static str {
        "tx"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        sample_transactions().iter().map(|t| t.to_bytes()).collect()
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation> {
        let tx = match Transaction::from_bytes(input) {
            Ok(tx) => tx,
            Err(e) => return Ok(outcome_class("refuse", &e.to_string())),
        };
        round_trip("transaction", input, &tx.to_bytes())?;
        let signed = tx.verify_for_chain(CHAIN).is_ok();
        let _ = tx.hash();
        let check = match self.demo.state.check_tx(&tx, GENESIS_MS + 1_000) {
            Ok(()) => "ok",
            Err(e) => e.code(),
        };
        // The JSON form (HTTP API) must give back the same transaction, or
        // refuse it (keys that are not curve points have no address).
        let json = serde_json::to_string(&tx).map_err(|e| format!("tx to JSON failed: {e}"))?;
        let json_ok = match serde_json::from_str::<Transaction>(&json) {
            Ok(back) if back == tx => true,
            Ok(_) => return Err("transaction changed through its JSON form".into()),
            Err(_) => false,
        };
        Ok(format!(
            "accept:{}:sig={signed}:check={check}:json={json_ok}",
            tx.body.kind()
        ))
    }
}

/// `block`: `Block`, `FinalizedBlock` and `Certificate` decoding (sync,
/// store, export), then header checks and execution against the genesis
/// state, and certificate verification against the validator set.
pub struct BlockTarget {
    demo: Demo,
}

impl BlockTarget {
    /// A target over a fresh demo alliance.
    pub fn new() -> Self {
        BlockTarget { demo: Demo::new() }
    }

    fn execute(&self, block: &Block) -> String {
        match self.demo.state.execute(block) {
            Ok(_) => "exec=ok".into(),
            Err(e) => format!("exec={}", variant(&format!("{e:?}"))),
        }
    }

    fn certify(&self, c: &Certificate, height: u64, hash: &Hash32) -> String {
        match c.verify(CHAIN, &self.demo.validators, height, hash) {
            Ok(()) => "cert=ok".into(),
            Err(e) => format!("cert={}", variant(&format!("{e:?}"))),
        }
    }
}

impl Default for BlockTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for BlockTarget {
    fn name(&self) -> &'static str {
        "block"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let mut seeds = Vec::new();
        for txs in [0, 1, 3, 8] {
            let fb = self.demo.first_block(txs);
            seeds.push(fb.block.to_bytes());
            seeds.push(alliance_protocol::encoding::encode(&fb.certificate));
            seeds.push(fb.to_bytes());
        }
        seeds
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation> {
        let mut classes = Vec::new();
        match Block::from_bytes(input) {
            Ok(block) => {
                round_trip("block", input, &block.to_bytes())?;
                classes.push(format!("accept:block:{}", self.execute(&block)));
            }
            Err(e) => classes.push(outcome_class("block", &e.to_string())),
        }
        match FinalizedBlock::from_bytes(input) {
            Ok(fb) => {
                round_trip("finalized block", input, &fb.to_bytes())?;
                let hash = fb.block.hash();
                classes.push(format!(
                    "accept:finalized:{}:{}",
                    self.certify(&fb.certificate, fb.block.header.height, &hash),
                    self.execute(&fb.block)
                ));
            }
            Err(e) => classes.push(outcome_class("finalized", &e.to_string())),
        }
        match alliance_protocol::encoding::decode::<Certificate>(input, 64 * 1024) {
            Ok(c) => {
                round_trip(
                    "certificate",
                    input,
                    &alliance_protocol::encoding::encode(&c),
                )?;
                let signers = match c.check_signers(&self.demo.validators) {
                    Ok(()) => "ok",
                    Err(_) => "bad",
                };
                classes.push(format!(
                    "accept:certificate:signers={signers}:{}",
                    self.certify(&c, c.height, &c.block_hash)
                ));
            }
            Err(e) => classes.push(outcome_class("certificate", &e.to_string())),
        }
        // Accepted classes first, so `accept` counts any decoder accepting.
        classes.sort_by_key(|c| !c.starts_with("accept"));
        Ok(classes.join("|"))
    }
}

/// `net`: what a peer can send. Consensus gossip payloads
/// (`alliance_consensus::Message::from_bytes`, then the consensus core
/// itself, as a validator of the demo alliance) and block sync frames
/// (`SyncCodec::read_frame` for requests and responses with the node's
/// limits, then every block of a `Blocks` response).
pub struct NetTarget {
    demo: Demo,
    core: Core,
    runs: u64,
}

impl NetTarget {
    /// A target over a fresh demo alliance and consensus core.
    pub fn new() -> Self {
        let demo = Demo::new();
        let core = Self::fresh_core(&demo);
        NetTarget {
            demo,
            core,
            runs: 0,
        }
    }

    fn fresh_core(demo: &Demo) -> Core {
        let config = CoreConfig::new(CHAIN, demo.keys[0].clone(), demo.validators.clone());
        let mut core = Core::new(
            config,
            Anchor {
                view: 0,
                height: 0,
                hash: demo.state.tip().hash,
            },
        );
        let _ = core.start();
        core
    }

    fn key_of(&self, public: &alliance_protocol::PublicKey) -> &Keypair {
        self.demo
            .keys
            .iter()
            .find(|k| k.public() == *public)
            .expect("a demo validator")
    }

    fn read<T: serde::de::DeserializeOwned>(input: &[u8], max: usize) -> std::io::Result<T> {
        futures::executor::block_on(SyncCodec::read_frame(
            &mut futures::io::Cursor::new(input),
            max,
        ))
    }

    /// The frame the reader consumed: prefix and announced body.
    fn frame_of(input: &[u8]) -> &[u8] {
        let len = u32::from_be_bytes(input[..4].try_into().expect("read a prefix")) as usize;
        &input[..4 + len]
    }
}

impl Default for NetTarget {
    fn default() -> Self {
        Self::new()
    }
}

impl Target for NetTarget {
    fn name(&self) -> &'static str {
        "net"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let fb = self.demo.first_block(3);
        let hash = fb.block.hash();
        let leader = self.key_of(&self.demo.validators.leader(1).key).clone();
        let domain = alliance_protocol::VoteDomain::new(CHAIN, &self.demo.validators);
        let notarize = VoteData {
            kind: VoteKind::Notarize,
            view: 1,
            height: 1,
            block_hash: hash,
        };
        let mut seeds = vec![
            Message::Proposal(Box::new(Proposal {
                view: 1,
                parent_view: 0,
                block: fb.block.clone(),
                vote: notarize.sign(&domain, &leader),
            }))
            .to_bytes(),
            Message::Certificate(fb.certificate.clone()).to_bytes(),
        ];
        for key in &self.demo.keys {
            for data in [
                notarize,
                VoteData {
                    kind: VoteKind::Finalize,
                    ..notarize
                },
                VoteData {
                    kind: VoteKind::Nullify,
                    view: 2,
                    height: 0,
                    block_hash: Hash32::ZERO,
                },
            ] {
                seeds.push(Message::Vote(data.sign(&domain, key)).to_bytes());
            }
        }
        let requests = [
            SyncRequest::GetBlocks {
                from_height: 1,
                max_count: 256,
            },
            SyncRequest::Status,
            SyncRequest::GetBlock { hash },
            SyncRequest::GetCertificates {
                views: vec![1, 2, 3],
            },
        ];
        for r in &requests {
            seeds.push(SyncCodec::encode_frame(r, SYNC_REQUEST_BYTES_MAX).expect("fits"));
        }
        let second = Synth::new(CHAIN, MERCHANTS, 8);
        let mut state = self.demo.state.clone();
        let (fb1, exec) = second.next_block(&state, 2, GENESIS_MS);
        state.commit(exec);
        let (fb2, _) = second.next_block(&state, 2, GENESIS_MS);
        let responses = [
            SyncResponse::Blocks(vec![fb1.to_bytes(), fb2.to_bytes()]),
            SyncResponse::Blocks(vec![]),
            SyncResponse::Status(ChainStatus {
                tip_height: 2,
                tip_hash: fb2.block.hash(),
            }),
            SyncResponse::Refused(RefusalReason::Busy),
            SyncResponse::Refused(RefusalReason::Unavailable),
            SyncResponse::Refused(RefusalReason::BadRequest),
        ];
        for r in &responses {
            seeds.push(SyncCodec::encode_frame(r, SYNC_RESPONSE_BYTES_MAX).expect("fits"));
        }
        seeds
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation> {
        self.runs += 1;
        if self.runs.is_multiple_of(CORE_RESET_EVERY) {
            self.core = Self::fresh_core(&self.demo);
        }
        let mut classes = Vec::new();
        match Message::from_bytes(input) {
            Ok(message) => {
                round_trip("consensus message", input, &message.to_bytes())?;
                let kind = match &message {
                    Message::Proposal(_) => "proposal",
                    Message::Vote(_) => "vote",
                    Message::Certificate(_) => "certificate",
                };
                // Gossip tells the node which member signed the message; the
                // core must cope with any member sending anything.
                let from = self.demo.keys[input.len() % MERCHANTS].public();
                let outputs = self.core.handle(Input::Message { from, message });
                classes.push(format!(
                    "accept:msg:{kind}:outputs={}",
                    outputs.len().min(4)
                ));
            }
            Err(e) => classes.push(outcome_class("msg", &e.to_string())),
        }
        match Self::read::<SyncRequest>(input, SYNC_REQUEST_BYTES_MAX) {
            Ok(request) => {
                let again = SyncCodec::encode_frame(&request, SYNC_REQUEST_BYTES_MAX)
                    .map_err(|e| format!("accepted sync request does not re-encode: {e}"))?;
                round_trip("sync request", Self::frame_of(input), &again)?;
                classes.push(format!(
                    "accept:request:{}",
                    variant(&format!("{request:?}"))
                ));
            }
            Err(e) => classes.push(outcome_class("request", &e.to_string())),
        }
        match Self::read::<SyncResponse>(input, SYNC_RESPONSE_BYTES_MAX) {
            Ok(response) => {
                let again = SyncCodec::encode_frame(&response, SYNC_RESPONSE_BYTES_MAX)
                    .map_err(|e| format!("accepted sync response does not re-encode: {e}"))?;
                round_trip("sync response", Self::frame_of(input), &again)?;
                let mut class = format!("accept:response:{}", variant(&format!("{response:?}")));
                if let SyncResponse::Blocks(blocks) = &response {
                    let (mut good, mut garbage) = (0, 0);
                    for bytes in blocks {
                        match FinalizedBlock::from_bytes(bytes) {
                            Ok(fb) => {
                                round_trip("synced block", bytes, &fb.to_bytes())?;
                                good += 1;
                            }
                            Err(_) => garbage += 1,
                        }
                    }
                    class.push_str(&format!(
                        ":blocks={}:garbage={}",
                        good.min(3),
                        garbage.min(3)
                    ));
                }
                classes.push(class);
            }
            Err(e) => classes.push(outcome_class("response", &e.to_string())),
        }
        classes.sort_by_key(|c| !c.starts_with("accept"));
        Ok(classes.join("|"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_seed_is_accepted() {
        let mut targets: Vec<Box<dyn Target>> = vec![
            Box::new(TxTarget::new()),
            Box::new(BlockTarget::new()),
            Box::new(NetTarget::new()),
        ];
        for t in &mut targets {
            for seed in t.seeds() {
                let outcome = t.run(&seed).unwrap();
                assert!(outcome.starts_with("accept"), "{}: {outcome}", t.name());
            }
        }
    }
}
