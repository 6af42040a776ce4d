//! Counters of dropped inputs and notable events, one per reason, for the
//! node to export as metrics.

/// Why an input was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropReason {
    /// Sender (or a signer) is not a validator of this epoch.
    NotValidator,
    /// A signature does not verify (wrong key, wrong chain id, forged).
    BadSignature,
    /// Already have this vote, proposal or certificate.
    Duplicate,
    /// A proposal not signed (or not proposed) by the view's leader.
    NotLeader,
    /// Inconsistent content (a nullify vote with a block hash, a proposal
    /// whose vote is for another block, a certificate below quorum...).
    Malformed,
    /// For a view at or below the last finalized view.
    ViewTooOld,
    /// For a view too far ahead to keep (see `FUTURE_VIEWS_MAX`,
    /// `VIEW_WINDOW`, `CATCH_UP_HEIGHTS_MAX`).
    ViewTooFar,
    /// A second vote or proposal conflicting with one already counted
    /// (evidence is recorded; the first one stays counted).
    Equivocation,
    /// A fetched block nobody asked for.
    Unrequested,
    /// An application answer for a view or request the core has moved past.
    Stale,
}

/// Counters. Every dropped input increments exactly one `dropped_*` field.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    /// [`DropReason::NotValidator`].
    pub dropped_not_validator: u64,
    /// [`DropReason::BadSignature`].
    pub dropped_bad_signature: u64,
    /// [`DropReason::Duplicate`].
    pub dropped_duplicate: u64,
    /// [`DropReason::NotLeader`].
    pub dropped_not_leader: u64,
    /// [`DropReason::Malformed`].
    pub dropped_malformed: u64,
    /// [`DropReason::ViewTooOld`].
    pub dropped_view_too_old: u64,
    /// [`DropReason::ViewTooFar`].
    pub dropped_view_too_far: u64,
    /// [`DropReason::Equivocation`].
    pub dropped_equivocation: u64,
    /// [`DropReason::Unrequested`].
    pub dropped_unrequested: u64,
    /// [`DropReason::Stale`].
    pub dropped_stale: u64,
    /// Conflicting vote pairs seen (see [`crate::Core::evidence`]).
    pub equivocations: u64,
    /// Proposals found invalid (by the application or by the parent rules);
    /// each makes this node nullify the view at once.
    pub invalid_proposals: u64,
    /// Votes the double-sign guard refused to sign. Should stay 0: the core
    /// checks the same rules first, so a refusal means a bug or a restore
    /// into an unexpected state.
    pub refused_to_sign: u64,
    /// A block the application built that does not match the request.
    pub bad_built_blocks: u64,
    /// Certified data that contradicts what this node finalized: only
    /// possible with more than f Byzantine validators. Alert on it.
    pub conflicting_certificates: u64,
}

impl Stats {
    /// Counts one dropped input.
    pub fn record(&mut self, reason: DropReason) {
        let c = match reason {
            DropReason::NotValidator => &mut self.dropped_not_validator,
            DropReason::BadSignature => &mut self.dropped_bad_signature,
            DropReason::Duplicate => &mut self.dropped_duplicate,
            DropReason::NotLeader => &mut self.dropped_not_leader,
            DropReason::Malformed => &mut self.dropped_malformed,
            DropReason::ViewTooOld => &mut self.dropped_view_too_old,
            DropReason::ViewTooFar => &mut self.dropped_view_too_far,
            DropReason::Equivocation => &mut self.dropped_equivocation,
            DropReason::Unrequested => &mut self.dropped_unrequested,
            DropReason::Stale => &mut self.dropped_stale,
        };
        *c += 1;
    }

    /// Total dropped inputs.
    pub fn dropped(&self) -> u64 {
        self.dropped_not_validator
            + self.dropped_bad_signature
            + self.dropped_duplicate
            + self.dropped_not_leader
            + self.dropped_malformed
            + self.dropped_view_too_old
            + self.dropped_view_too_far
            + self.dropped_equivocation
            + self.dropped_unrequested
            + self.dropped_stale
    }
}
