//! One encoding per finalized block: a certificate whose votes are not
//! sorted by signer key is the same block in another byte string, and every
//! path by which blocks reach a node refuses it. Bulk sync
//! (`sync::commit`, against a real store) and the consensus fetch path
//! (which decodes a peer's `GetBlock` answer with `FinalizedBlock::from_bytes`,
//! as sync does) both go through the protocol's decoder, and so do
//! certificates gossiped on the consensus topic (`Message::from_bytes`).

use alliance_node::chain::Chain;
use alliance_node::store::Store;
use alliance_node::sync::{self, SyncCommitError, SyncFault};
use alliance_protocol::fixtures::{certify, demo_genesis};
use alliance_protocol::state::LedgerState;
use alliance_protocol::FinalizedBlock;

const CHAIN: &str = "canonical-test";

/// Three finalized blocks of a 4-merchant demo alliance.
fn blocks() -> (alliance_protocol::genesis::Genesis, Vec<FinalizedBlock>) {
    let (genesis, keys) = demo_genesis(CHAIN, 4, 1_700_000_000_000);
    let mut state = LedgerState::from_genesis(&genesis);
    let mut out = Vec::new();
    for h in 1..=3u64 {
        let (block, exec) = state.build_block(
            vec![],
            genesis.genesis_time_ms + h * 1_000,
            keys[0].public(),
        );
        let certificate = certify(CHAIN, &block, h, &keys);
        state.commit(exec);
        out.push(FinalizedBlock { block, certificate });
    }
    (genesis, out)
}

fn reordered(fb: &FinalizedBlock) -> Vec<u8> {
    let mut fb = fb.clone();
    fb.certificate.votes.swap(0, 1);
    assert!(fb.certificate.votes[0].0 > fb.certificate.votes[1].0);
    fb.to_bytes()
}

#[test]
fn sync_refuses_an_answer_with_a_reordered_certificate_and_commits_nothing() {
    let (genesis, blocks) = blocks();
    let dir = tempfile::tempdir().unwrap();
    let (store, state) = Store::open(dir.path(), &genesis).unwrap();
    let mut chain = Chain::new(store, state);
    let mut answer: Vec<Vec<u8>> = blocks.iter().map(FinalizedBlock::to_bytes).collect();
    answer[1] = reordered(&blocks[1]);
    match sync::commit(&mut chain, CHAIN, 1, &answer) {
        Err(SyncCommitError::Fault(SyncFault::Undecodable { index: 1 })) => {}
        other => panic!("expected Undecodable at index 1, got {other:?}"),
    }
    assert_eq!(chain.state().tip().height, 0, "nothing committed");
    // The canonical answer commits.
    let answer: Vec<Vec<u8>> = blocks.iter().map(FinalizedBlock::to_bytes).collect();
    let committed = sync::commit(&mut chain, CHAIN, 1, &answer).unwrap();
    assert_eq!(committed.len(), 3);
    assert_eq!(chain.state().tip().hash, blocks[2].block.hash());
    // What the store serves back is the canonical encoding.
    let stored = chain.store().block(2).unwrap().unwrap();
    assert_eq!(stored.to_bytes(), blocks[1].to_bytes());
}

#[test]
fn the_fetch_decoder_refuses_a_reordered_certificate() {
    let (_, blocks) = blocks();
    let bytes = reordered(&blocks[0]);
    let err = FinalizedBlock::from_bytes(&bytes).unwrap_err();
    assert!(err.to_string().contains("canonical order"), "{err}");
    // A duplicated signer, kept sorted, is refused the same way.
    let mut fb = blocks[0].clone();
    let first = fb.certificate.votes[0];
    fb.certificate.votes.insert(1, first);
    assert!(FinalizedBlock::from_bytes(&fb.to_bytes()).is_err());
    assert_eq!(
        FinalizedBlock::from_bytes(&blocks[0].to_bytes()).unwrap(),
        blocks[0]
    );
}

/// Certificates gossiped on the consensus topic decode through the same
/// rule: the driver's gossip filter drops a reordered one as undecodable.
#[test]
fn a_gossiped_certificate_out_of_order_does_not_decode() {
    use alliance_consensus::message::Message;
    let (_, blocks) = blocks();
    let good = Message::Certificate(blocks[0].certificate.clone());
    assert_eq!(Message::from_bytes(&good.to_bytes()).unwrap(), good);
    let mut swapped = blocks[0].certificate.clone();
    swapped.votes.swap(0, 1);
    let err = Message::from_bytes(&Message::Certificate(swapped).to_bytes()).unwrap_err();
    assert!(err.to_string().contains("canonical order"), "{err}");
}
