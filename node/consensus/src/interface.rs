//! The core's inputs and outputs: everything that crosses between the pure
//! state machine and the driver (network, timers, disk, application).

use std::sync::Arc;

use alliance_protocol::certificate::Equivocation;
use alliance_protocol::{Block, Certificate, Hash32, PublicKey, SignedVote};

use crate::message::Message;

/// Which timer of a view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// No proposal voted for in time: nullify.
    Leader,
    /// View not notarized in time: nullify.
    Notarization,
    /// Still stuck after nullifying: rebroadcast.
    Retry,
}

/// A timer. Timers are never cancelled: a timer for a view the core has left
/// is ignored when it fires, so the driver just schedules them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerId {
    /// View the timer belongs to.
    pub view: u64,
    /// Which timer.
    pub kind: TimerKind,
}

/// Something that happened outside the core.
#[derive(Debug, Clone)]
pub enum Input {
    /// A message from the network. `from` is the peer as authenticated by
    /// the transport (not trusted for anything but the membership check:
    /// votes and certificates carry their own signatures).
    Message {
        /// Authenticated sender.
        from: PublicKey,
        /// The decoded message (see [`Message::from_bytes`]).
        message: Message,
    },
    /// A timer set by [`Output::SetTimer`] fired.
    Timer(TimerId),
    /// The application built the block asked for by [`Output::Propose`].
    Built {
        /// The view of the request.
        view: u64,
        /// The block (parent and height as requested, proposer = our key).
        block: Block,
    },
    /// The application's verdict on a block from [`Output::Verify`].
    Verified {
        /// The view of the request.
        view: u64,
        /// The block's hash.
        block_hash: Hash32,
        /// Whether the block is valid on top of its ancestry.
        valid: bool,
    },
    /// Certificates a peer sent in answer to [`Output::Resolve`] (or read
    /// back by any other means). Each is verified like one from the network;
    /// those for views nobody asked about still count if they verify, since
    /// a certificate is self-authenticating.
    Certificates(Vec<Certificate>),
    /// A block requested by [`Output::Fetch`], with any quorum certificate
    /// (notarization or finalization) of it. Unrequested blocks are dropped.
    Fetched {
        /// The block.
        block: Block,
        /// A certificate for it.
        certificate: Certificate,
    },
}

/// Something the driver must do. Outputs of one `handle` call are executed
/// in order.
#[derive(Debug, Clone)]
pub enum Output {
    /// Make this own vote durable (fsync) BEFORE executing any later output:
    /// on restart, [`crate::Core::restore`] reads these back so the node
    /// never signs a conflicting vote.
    Persist(SignedVote),
    /// Make this block durable (with the [`Output::Persist`] that follows:
    /// it is the block that vote is for) BEFORE executing any later output.
    /// Blocks voted for but not finalized exist nowhere else when every
    /// validator crashes (or the only one, n = 1): without the block, the
    /// restarted alliance could certify a block nobody holds and stall for
    /// good. On restart pass them to [`crate::Core::with_blocks`]; the
    /// driver may delete them once their height is finalized.
    PersistBlock(Arc<Block>),
    /// Journal this certificate (a notarization, nullification or
    /// finalization the core learned). Unlike [`Output::Persist`] it need
    /// not be durable before later outputs run: a certificate lost in a
    /// crash is fetched again by [`Output::Resolve`]. On restart pass the
    /// journal to [`crate::Core::restore_journal`].
    Journal(Certificate),
    /// Send to every other validator.
    Broadcast(Message),
    /// Send to one peer.
    Send {
        /// The peer.
        to: PublicKey,
        /// The message.
        message: Message,
    },
    /// Deliver [`Input::Timer`]`(id)` after `after_ms` milliseconds.
    SetTimer {
        /// The timer.
        id: TimerId,
        /// Delay.
        after_ms: u64,
    },
    /// We lead `view`: build a block at `parent_height + 1` on
    /// `parent_hash` and answer with [`Input::Built`].
    Propose {
        /// The view.
        view: u64,
        /// Height of the parent.
        parent_height: u64,
        /// Hash of the parent.
        parent_hash: Hash32,
        /// The blocks after the last finalized block up to and including the
        /// parent, oldest first (empty when the parent is the last finalized
        /// block): what the application must apply to get the parent's state.
        ancestry: Vec<Arc<Block>>,
    },
    /// Check this proposed block (transactions, state root, timestamp...)
    /// on top of `ancestry` and answer with [`Input::Verified`].
    Verify {
        /// The view.
        view: u64,
        /// The block.
        block: Arc<Block>,
        /// As in [`Output::Propose`]: unfinalized ancestors, oldest first.
        ancestry: Vec<Arc<Block>>,
    },
    /// Find the block with this hash and a certificate for it from peers and
    /// answer with [`Input::Fetched`]. Repeated while still needed.
    Fetch {
        /// Block hash.
        hash: Hash32,
        /// Its height.
        height: u64,
    },
    /// Ask peers for the certificates of these views (a notarization or a
    /// nullification each; a peer that finalized past a view answers with
    /// its finalization) and answer with [`Input::Certificates`]. Emitted
    /// when the core is stuck waiting for them (on its timers), so it
    /// repeats while they are missing; the driver may ask any peer.
    Resolve {
        /// Views whose certificate is missing, newest first.
        views: Vec<u64>,
    },
    /// A finalized block. Emitted once per height, in height order, with no
    /// gaps. The certificate is a finalization of this block, or a
    /// notarization when the block was finalized because a descendant was:
    /// the last block of every run of `Finalized` outputs from one call
    /// carries a finalization, and hash links from it cover the rest.
    Finalized {
        /// The block.
        block: Arc<Block>,
        /// Its certificate.
        certificate: Certificate,
    },
    /// A validator signed two conflicting votes (also kept, bounded, in
    /// [`crate::Core::evidence`]).
    Evidence(Equivocation),
}
