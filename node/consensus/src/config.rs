//! Configuration, the starting point, and the named bounds of the core.

use alliance_protocol::{Hash32, Keypair, ValidatorSet};

use crate::batcher::Signer;

/// Views above the settled view (the last finalized view the core knows)
/// for which the core keeps any state or accepts notarizations and
/// nullifications. Honest validators never move further ahead than this
/// without a finalization: with a leader rotation in which at least 2 of 3
/// leaders are honest, a synchronous network finalizes within a handful of
/// views, so 512 views is many minutes of asynchrony. It bounds memory to
/// roughly `VIEW_WINDOW * n * 3` votes.
pub const VIEW_WINDOW: u64 = 512;

/// Votes and proposals for views more than this far above the current view
/// are dropped. A validator that far behind catches up from certificates
/// (one certificate moves it to any view in the window), so early votes are
/// not worth memory; a small margin absorbs ordinary reordering.
pub const FUTURE_VIEWS_MAX: u64 = 4;

/// Equivocation evidence kept for [`crate::Core::evidence`]. Evidence is
/// also emitted as an output when found; this is only the recent history.
pub const EVIDENCE_MAX: usize = 64;

/// Block fetches outstanding at once. The core fetches parent by parent,
/// so one or two are normal; the bound stops a hostile certificate stream
/// from turning into a fetch storm.
pub const FETCHES_OUTSTANDING_MAX: usize = 16;

/// Views asked for in one [`crate::Output::Resolve`] at most (the newest
/// missing ones: they are what the next proposal needs), and certificates
/// answered per request by [`crate::Core::certificates_for`].
pub const RESOLVE_VIEWS_MAX: usize = 32;

/// Heights a finalization may be ahead of the last emitted block and still
/// be caught up with here, by fetching the missing blocks one parent at a
/// time. A node further behind must state-sync (outside consensus) and
/// restart the core from a newer [`Anchor`]; those finalizations are dropped
/// as too far.
pub const CATCH_UP_HEIGHTS_MAX: u64 = 1024;

/// Default for [`Config::leader_timeout_ms`].
pub const DEFAULT_LEADER_TIMEOUT_MS: u64 = 1_000;
/// Default for [`Config::notarization_timeout_ms`].
pub const DEFAULT_NOTARIZATION_TIMEOUT_MS: u64 = 2_000;
/// Default for [`Config::retry_ms`].
pub const DEFAULT_RETRY_MS: u64 = 2_000;

/// Everything a core needs that does not change while it runs. The
/// validator set is fixed for the core's lifetime (one epoch): when
/// governance changes the set, the node restarts the core at the epoch's
/// first height with the new set (see docs/consensus.md).
///
/// `S` signs this node's votes: the node's ed25519 [`Keypair`] by default;
/// the simulation plugs in a cheap deterministic [`Signer`].
#[derive(Debug, Clone)]
pub struct Config<S: Signer = Keypair> {
    /// Chain id every vote signs (votes of another chain never verify).
    pub chain_id: String,
    /// This node's key. A core whose key is not in `validators` follows
    /// the chain and finalizes blocks but never votes.
    pub key: S,
    /// The validators of this epoch.
    pub validators: ValidatorSet,
    /// After entering a view, how long to wait for the leader's proposal
    /// (and our notarize vote for it) before voting to nullify the view.
    pub leader_timeout_ms: u64,
    /// After entering a view, how long to wait for the view to be notarized
    /// before voting to nullify it (even if we notarized).
    pub notarization_timeout_ms: u64,
    /// While stuck in a view after nullifying it, how often to rebroadcast
    /// our nullify vote and the latest certificates (lost messages and
    /// healed partitions are recovered this way).
    pub retry_ms: u64,
}

impl<S: Signer> Config<S> {
    /// A config with the default timeouts.
    pub fn new(chain_id: impl Into<String>, key: S, validators: ValidatorSet) -> Self {
        Config {
            chain_id: chain_id.into(),
            key,
            validators,
            leader_timeout_ms: DEFAULT_LEADER_TIMEOUT_MS,
            notarization_timeout_ms: DEFAULT_NOTARIZATION_TIMEOUT_MS,
            retry_ms: DEFAULT_RETRY_MS,
        }
    }
}

/// Where a core starts: the last finalized block (the genesis block at
/// height 0, view 0 on a new chain) and the view it was finalized in. The
/// core starts in `view + 1` (or later, see [`crate::Core::restore`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Anchor {
    /// View the block was finalized in (0 for genesis).
    pub view: u64,
    /// Block height.
    pub height: u64,
    /// Block hash.
    pub hash: Hash32,
}

/// Test-only fault injection (cargo feature `mutation`): deliberately
/// breaks a safety rule so the simulation can show it catches the break.
/// The type always exists; only a core built with the feature can be set
/// to one ([`crate::Core::set_mutation`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mutation {
    /// Certificates form (and are accepted) with `f + 1` votes instead of
    /// `n - f`: two quorums no longer need to share an honest validator.
    WeakQuorum,
    /// Rule 5 without its guard: finalize a notarized view even after
    /// nullifying it (the vote guard is told to allow it too).
    FinalizeAfterNullify,
    /// Rule 2 without the in-between check: vote for a proposal whose views
    /// between its parent and itself are not all nullified.
    SkipNullificationCheck,
}
