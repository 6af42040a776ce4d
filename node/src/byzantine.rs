//! A Byzantine validator, for tests only: compiled with the cargo feature
//! `byzantine` (off by default; the test crate enables it) and switched on
//! by the hidden flag `alliance-node run --byzantine MODES`, where MODES is
//! a comma-separated list of `equivocate`, `double-vote`, `invalid-block`,
//! `flood`, or `all`.
//!
//! The consensus core stays honest and pure: misbehaviour is applied where
//! the driver hands the core's messages to the network
//! ([`Byzantine::rewrite`]), with the node's own key, so what goes on the
//! wire is exactly what a malicious member could send:
//!
//! - `equivocate`: every proposal of ours is followed (or preceded) by a
//!   second, different valid block for the same view, both signed.
//! - `double-vote`: every notarize vote is followed by a notarize for
//!   another block of the same view; every finalize by a nullify of its
//!   view; every nullify by a finalize of an invented block.
//! - `invalid-block`: our proposals are replaced by blocks with a wrong
//!   state root, a forged transaction (another merchant's issuance with a
//!   bad signature, tx_root recomputed), or an unknown parent, in turn.
//! - `flood`: every message is followed by [`FLOOD_PER_MESSAGE`] more:
//!   undecodable junk, validly signed nullify votes for future views, and
//!   certificates with bogus signatures.

use alliance_consensus::config::VIEW_WINDOW;
use alliance_consensus::{Message, Proposal};
use alliance_protocol::{
    Block, Certificate, Hash32, Keypair, PublicKey, Signature, Transaction, TxBody, VoteData,
    VoteKind,
};
use rand::{Rng, RngCore};

/// Extra messages sent per honest message in `flood` mode.
pub const FLOOD_PER_MESSAGE: usize = 30;

/// One kind of misbehaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Two blocks for one view.
    Equivocate,
    /// Conflicting votes in one view.
    DoubleVote,
    /// Proposals that break the ledger or chain rules.
    InvalidBlock,
    /// High-rate junk and valid-looking consensus messages.
    Flood,
}

impl Behaviour {
    const ALL: [Behaviour; 4] = [
        Behaviour::Equivocate,
        Behaviour::DoubleVote,
        Behaviour::InvalidBlock,
        Behaviour::Flood,
    ];

    fn name(self) -> &'static str {
        match self {
            Behaviour::Equivocate => "equivocate",
            Behaviour::DoubleVote => "double-vote",
            Behaviour::InvalidBlock => "invalid-block",
            Behaviour::Flood => "flood",
        }
    }

    /// Parses `equivocate,double-vote,...` or `all`.
    pub fn parse_list(spec: &str) -> Result<Vec<Behaviour>, String> {
        let mut out = Vec::new();
        for word in spec.split(',').map(str::trim) {
            if word == "all" {
                out.extend(Self::ALL);
                continue;
            }
            let b = Self::ALL
                .into_iter()
                .find(|b| b.name() == word)
                .ok_or_else(|| {
                    format!("unknown behaviour `{word}`: use equivocate, double-vote, invalid-block, flood or all")
                })?;
            out.push(b);
        }
        out.dedup();
        Ok(out)
    }
}

/// The misbehaving side of one validator.
pub struct Byzantine {
    behaviours: Vec<Behaviour>,
    chain_id: String,
    /// What the current epoch's votes sign (set by [`Byzantine::rewrite`]).
    domain: alliance_protocol::VoteDomain,
    key: Keypair,
    /// Honest merchants' keys, whose names forged transactions borrow.
    others: Vec<PublicKey>,
    invalid_blocks: u64,
    flooded: u64,
}

impl Byzantine {
    /// A Byzantine validator signing with `key` on `chain_id`; `members`
    /// are the validators (forged transactions claim to come from them).
    pub fn new(
        spec: &str,
        chain_id: &str,
        key: Keypair,
        members: &[PublicKey],
    ) -> Result<Self, String> {
        let behaviours = Behaviour::parse_list(spec)?;
        // On stderr too, whatever the log setup: nobody should miss it.
        eprintln!("BYZANTINE test mode {behaviours:?}: this node misbehaves on purpose");
        tracing::warn!(
            ?behaviours,
            "BYZANTINE test mode: this node misbehaves on purpose"
        );
        Ok(Byzantine {
            behaviours,
            chain_id: chain_id.to_string(),
            domain: alliance_protocol::VoteDomain {
                chain_id: chain_id.to_string(),
                validator_set_hash: Hash32::ZERO,
            },
            others: members
                .iter()
                .copied()
                .filter(|k| *k != key.public())
                .collect(),
            key,
            invalid_blocks: 0,
            flooded: 0,
        })
    }

    fn has(&self, b: Behaviour) -> bool {
        self.behaviours.contains(&b)
    }

    fn vote(&self, kind: VoteKind, view: u64, height: u64, block_hash: Hash32) -> Message {
        Message::Vote(
            VoteData {
                kind,
                view,
                height,
                block_hash,
            }
            .sign(&self.domain, &self.key),
        )
    }

    /// A proposal of `block` for `view`, with our notarize vote for it.
    fn propose(&self, view: u64, parent_view: u64, block: Block) -> Message {
        let vote = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: block.header.height,
            block_hash: block.hash(),
        }
        .sign(&self.domain, &self.key);
        Message::Proposal(Box::new(Proposal {
            view,
            parent_view,
            block,
            vote,
        }))
    }

    /// The bytes to publish in place of the honest `message`.
    pub fn rewrite(
        &mut self,
        message: Message,
        domain: &alliance_protocol::VoteDomain,
    ) -> Vec<Vec<u8>> {
        self.domain = domain.clone();
        let me = self.key.public();
        let view = message.view();
        let mut out = Vec::new();
        match &message {
            Message::Proposal(p) if p.vote.signer == me => {
                let first = if self.has(Behaviour::InvalidBlock) {
                    self.invalid_proposal(p)
                } else {
                    message.clone()
                };
                out.push(first.to_bytes());
                if self.has(Behaviour::Equivocate) {
                    // Same parent and transactions, another timestamp: a
                    // second valid block for the same view.
                    let mut twin = p.block.clone();
                    twin.header.timestamp_ms += 1;
                    let twin = self.propose(p.view, p.parent_view, twin).to_bytes();
                    if p.view % 2 == 0 {
                        out.insert(0, twin);
                    } else {
                        out.push(twin);
                    }
                    eprintln!("BYZANTINE equivocating proposal, view {}", p.view);
                }
            }
            Message::Vote(v) if v.signer == me && self.has(Behaviour::DoubleVote) => {
                out.push(message.to_bytes());
                let d = v.data;
                let conflicting = match d.kind {
                    VoteKind::Notarize => {
                        self.vote(VoteKind::Notarize, d.view, d.height, random_hash())
                    }
                    VoteKind::Finalize => self.vote(VoteKind::Nullify, d.view, 0, Hash32::ZERO),
                    VoteKind::Nullify => self.vote(VoteKind::Finalize, d.view, 1, random_hash()),
                };
                out.push(conflicting.to_bytes());
                eprintln!("BYZANTINE double vote, view {} after {:?}", d.view, d.kind);
            }
            _ => out.push(message.to_bytes()),
        }
        if self.has(Behaviour::Flood) {
            out.extend(self.flood(view));
            self.flooded += FLOOD_PER_MESSAGE as u64;
            if self.flooded.is_multiple_of(FLOOD_PER_MESSAGE as u64 * 20) {
                eprintln!("BYZANTINE flood: {} messages sent", self.flooded);
            }
        }
        out
    }

    /// Our proposal made invalid in one of three ways, in turn.
    fn invalid_proposal(&mut self, p: &Proposal) -> Message {
        let mut block = p.block.clone();
        let how = self.invalid_blocks % 3;
        self.invalid_blocks += 1;
        match how {
            0 => block.header.state_root.0[0] ^= 0xff,
            1 => {
                // Another merchant's issuance to us, with a made-up signature.
                let victim = self.others.first().copied().unwrap_or(self.key.public());
                let mut forged = Transaction::sign(
                    &self.chain_id,
                    &self.key,
                    u64::MAX,
                    TxBody::Issue {
                        to: self.key.public(),
                        amount: 1_000_000_000,
                        reason: "forged".into(),
                        receipt_ref: format!("forged-{}", p.view),
                        receipt_time_ms: crate::runtime::now_ms(),
                    },
                );
                forged.signer = victim;
                forged.signature = Signature([0x42; 64]);
                block.txs.insert(0, forged);
                block.header.tx_count = block.txs.len() as u32;
                block.header.tx_root = Block::compute_tx_root(&block.txs);
            }
            _ => block.header.prev_hash = random_hash(),
        }
        eprintln!(
            "BYZANTINE invalid proposal ({}), view {}",
            ["state root", "forged transaction", "unknown parent"][how as usize],
            p.view
        );
        self.propose(p.view, p.parent_view, block)
    }

    /// Junk and valid-looking messages around `view`.
    fn flood(&self, view: u64) -> Vec<Vec<u8>> {
        let mut rng = rand::thread_rng();
        (0..FLOOD_PER_MESSAGE)
            .map(|i| match i % 3 {
                0 => {
                    let mut junk = vec![0u8; rng.gen_range(1..512)];
                    rng.fill_bytes(&mut junk);
                    junk
                }
                1 => {
                    let ahead = view + rng.gen_range(1..=VIEW_WINDOW);
                    self.vote(VoteKind::Nullify, ahead, 0, Hash32::ZERO)
                        .to_bytes()
                }
                _ => {
                    let mut sig = [0u8; 64];
                    rng.fill_bytes(&mut sig);
                    Message::Certificate(Certificate {
                        kind: VoteKind::Notarize,
                        view: view.max(1),
                        height: 1,
                        block_hash: random_hash(),
                        votes: vec![(self.key.public(), Signature(sig))],
                    })
                    .to_bytes()
                }
            })
            .collect()
    }
}

fn random_hash() -> Hash32 {
    let mut h = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut h);
    Hash32(h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_lists_and_all() {
        assert_eq!(
            Behaviour::parse_list("equivocate,double-vote").unwrap(),
            vec![Behaviour::Equivocate, Behaviour::DoubleVote]
        );
        assert_eq!(Behaviour::parse_list("all").unwrap().len(), 4);
        assert!(Behaviour::parse_list("lie").is_err());
    }
}
