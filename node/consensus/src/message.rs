//! What validators send each other, and its wire form.

use alliance_protocol::encoding::{self, DecodeError};
use alliance_protocol::limits::BLOCK_BYTES_MAX;
use alliance_protocol::{Block, Certificate, SignedVote};
use serde::{Deserialize, Serialize};

/// Largest encoded consensus message: a proposal carries a whole block, plus
/// room for the vote and framing. Certificates of up to 256 validators are
/// about 25 KiB.
pub const MESSAGE_BYTES_MAX: usize = BLOCK_BYTES_MAX + 64 * 1024;

/// A leader's proposal for a view: the block, the view of its parent (the
/// block header has no views), and the leader's own notarize vote for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    /// The view this proposal is for; the signer must be its leader.
    pub view: u64,
    /// The view in which the parent block was notarized (or finalized).
    /// Every view strictly between `parent_view` and `view` must be
    /// nullified for the proposal to be voted for.
    pub parent_view: u64,
    /// The proposed block; `block.header.prev_hash` is the parent.
    pub block: Block,
    /// The leader's notarize vote for `(view, block)`.
    pub vote: SignedVote,
}

/// A consensus message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A leader's proposal.
    Proposal(Box<Proposal>),
    /// A notarize, nullify or finalize vote.
    Vote(SignedVote),
    /// A notarization, nullification or finalization, forwarded so that
    /// validators that missed votes can move on.
    Certificate(Certificate),
}

impl Message {
    /// Canonical bytes (the protocol's encoding).
    pub fn to_bytes(&self) -> Vec<u8> {
        encoding::encode(self)
    }

    /// Decodes a message from the network, enforcing [`MESSAGE_BYTES_MAX`].
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, DecodeError> {
        encoding::decode(bytes, MESSAGE_BYTES_MAX)
    }

    /// The view the message is about.
    pub fn view(&self) -> u64 {
        match self {
            Message::Proposal(p) => p.view,
            Message::Vote(v) => v.data.view,
            Message::Certificate(c) => c.view,
        }
    }
}
