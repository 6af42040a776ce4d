//! The double-sign guard: this node's own votes, the rules for signing
//! another, and nothing else. Every vote the core signs goes through
//! [`VoteGuard::check`] first and is recorded (and persisted by the driver)
//! before it is sent, so a core restored from its persisted votes refuses
//! exactly what the crashed one would have refused.

use std::collections::BTreeMap;

use alliance_protocol::{SignedVote, VoteData, VoteKind};

/// Why the guard refuses to sign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Already notarized another block in this view.
    NotarizedOtherBlock,
    /// Already finalized another block in this view.
    FinalizedOtherBlock,
    /// Finalize after nullify: the two votes that make Simplex safe to skip
    /// a view are never signed together.
    FinalizeAfterNullify,
    /// Nullify after finalize.
    NullifyAfterFinalize,
}

/// What the guard says about signing some vote data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// May be signed.
    Fresh,
    /// This exact vote was signed already (re-send it, do not re-sign).
    AlreadySigned(SignedVote),
    /// Must not be signed.
    Refused(Refusal),
}

#[derive(Debug, Clone, Default)]
struct OwnVotes {
    notarize: Option<SignedVote>,
    nullify: Option<SignedVote>,
    finalize: Option<SignedVote>,
}

/// This node's votes per view.
#[derive(Debug, Clone, Default)]
pub struct VoteGuard {
    views: BTreeMap<u64, OwnVotes>,
}

impl VoteGuard {
    /// Whether `data` may be signed given the votes already signed.
    pub fn check(&self, data: &VoteData) -> Check {
        let Some(own) = self.views.get(&data.view) else {
            return Check::Fresh;
        };
        let same = |v: &Option<SignedVote>| v.as_ref().filter(|v| v.data == *data).cloned();
        match data.kind {
            VoteKind::Notarize => match &own.notarize {
                Some(v) if v.data == *data => Check::AlreadySigned(v.clone()),
                Some(_) => Check::Refused(Refusal::NotarizedOtherBlock),
                None => Check::Fresh,
            },
            VoteKind::Finalize => {
                if own.nullify.is_some() {
                    Check::Refused(Refusal::FinalizeAfterNullify)
                } else if let Some(v) = same(&own.finalize) {
                    Check::AlreadySigned(v)
                } else if own.finalize.is_some() {
                    Check::Refused(Refusal::FinalizedOtherBlock)
                } else {
                    Check::Fresh
                }
            }
            VoteKind::Nullify => {
                if own.finalize.is_some() {
                    Check::Refused(Refusal::NullifyAfterFinalize)
                } else if let Some(v) = same(&own.nullify) {
                    Check::AlreadySigned(v)
                } else {
                    Check::Fresh
                }
            }
        }
    }

    /// Records a signed vote (after [`VoteGuard::check`] said `Fresh`, or
    /// when restoring persisted votes). A vote the guard would refuse is not
    /// recorded and `false` is returned.
    pub fn record(&mut self, vote: SignedVote) -> bool {
        if self.check(&vote.data) != Check::Fresh {
            return false;
        }
        let own = self.views.entry(vote.data.view).or_default();
        let slot = match vote.data.kind {
            VoteKind::Notarize => &mut own.notarize,
            VoteKind::Nullify => &mut own.nullify,
            VoteKind::Finalize => &mut own.finalize,
        };
        *slot = Some(vote);
        true
    }

    /// Our vote of `kind` in `view`, if any.
    pub fn get(&self, view: u64, kind: VoteKind) -> Option<&SignedVote> {
        let own = self.views.get(&view)?;
        match kind {
            VoteKind::Notarize => own.notarize.as_ref(),
            VoteKind::Nullify => own.nullify.as_ref(),
            VoteKind::Finalize => own.finalize.as_ref(),
        }
        .map(|v| v as _)
    }

    /// Our votes in `view`.
    pub fn votes_in(&self, view: u64) -> Vec<SignedVote> {
        let Some(own) = self.views.get(&view) else {
            return Vec::new();
        };
        [&own.notarize, &own.nullify, &own.finalize]
            .into_iter()
            .flatten()
            .cloned()
            .collect()
    }

    /// Highest view with a vote.
    pub fn highest_view(&self) -> Option<u64> {
        self.views.keys().next_back().copied()
    }

    /// Forgets views at or below `view` (settled: the core never votes
    /// there again, whatever the guard says).
    pub fn prune_through(&mut self, view: u64) {
        self.views = self.views.split_off(&(view + 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::{Hash32, Keypair};

    fn vote(kind: VoteKind, view: u64, h: u8) -> SignedVote {
        let (height, block_hash) = if kind == VoteKind::Nullify {
            (0, Hash32::ZERO)
        } else {
            (1, Hash32([h; 32]))
        };
        VoteData {
            kind,
            view,
            height,
            block_hash,
        }
        .sign(
            &alliance_protocol::VoteDomain {
                chain_id: "c".into(),
                validator_set_hash: Hash32::ZERO,
            },
            &Keypair::from_label("me"),
        )
    }

    #[test]
    fn notarize_once_per_view() {
        let mut g = VoteGuard::default();
        assert!(g.record(vote(VoteKind::Notarize, 5, 1)));
        assert_eq!(
            g.check(&vote(VoteKind::Notarize, 5, 2).data),
            Check::Refused(Refusal::NotarizedOtherBlock)
        );
        assert!(matches!(
            g.check(&vote(VoteKind::Notarize, 5, 1).data),
            Check::AlreadySigned(_)
        ));
        assert_eq!(g.check(&vote(VoteKind::Notarize, 6, 2).data), Check::Fresh);
        // Notarize then nullify (timed out after voting) is allowed.
        assert_eq!(g.check(&vote(VoteKind::Nullify, 5, 0).data), Check::Fresh);
    }

    #[test]
    fn finalize_and_nullify_exclude_each_other() {
        let mut g = VoteGuard::default();
        assert!(g.record(vote(VoteKind::Nullify, 5, 0)));
        assert_eq!(
            g.check(&vote(VoteKind::Finalize, 5, 1).data),
            Check::Refused(Refusal::FinalizeAfterNullify)
        );
        assert!(!g.record(vote(VoteKind::Finalize, 5, 1)));
        assert!(g.record(vote(VoteKind::Finalize, 6, 1)));
        assert_eq!(
            g.check(&vote(VoteKind::Nullify, 6, 0).data),
            Check::Refused(Refusal::NullifyAfterFinalize)
        );
        assert_eq!(
            g.check(&vote(VoteKind::Finalize, 6, 2).data),
            Check::Refused(Refusal::FinalizedOtherBlock)
        );
    }

    #[test]
    fn pruning_forgets_settled_views() {
        let mut g = VoteGuard::default();
        g.record(vote(VoteKind::Nullify, 5, 0));
        g.record(vote(VoteKind::Nullify, 7, 0));
        g.prune_through(5);
        assert_eq!(g.highest_view(), Some(7));
        assert!(g.get(5, VoteKind::Nullify).is_none());
        assert!(g.get(7, VoteKind::Nullify).is_some());
    }
}
