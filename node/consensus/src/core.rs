//! The Simplex state machine: every consensus rule of the alliance is in
//! this module (the double-sign rules are in [`crate::guard`], quorum
//! certificate checks in the protocol crate).
//!
//! Rules, per view `v` with leader `L(v)` (round robin):
//! 1. Enter `v` when a certificate (notarization, nullification or
//!    finalization) of `v - 1` or later is seen; start the leader and
//!    notarization timers.
//! 2. `L(v)` proposes a block whose parent was notarized in some view `p < v`
//!    (or is the last finalized block), with every view in `(p, v)`
//!    nullified, at the parent's height + 1.
//! 3. A validator notarizes only the first proposal of `L(v)` in `v`, only
//!    if the rule of 2 holds, the application says the block is valid, and
//!    it has not nullified `v`.
//! 4. On a timer of `v` (no proposal voted in time, or `v` not notarized in
//!    time), or on an invalid proposal, it nullifies `v`.
//! 5. On seeing `v` notarized, if it has not nullified `v`, it finalizes
//!    `v`'s block. Quorum finalize votes finalize the block and, implicitly,
//!    its ancestors.
//!
//! A quorum is `n - f` ([`ValidatorSet::quorum`]): two quorums share an
//! honest validator, which never signs two notarizes in a view nor both a
//! nullify and a finalize of one view. So a view has at most one notarized
//! block, and a finalized view is never nullified, so every later proposal
//! that gathers a quorum extends the finalized block.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use alliance_protocol::certificate::Equivocation;
use alliance_protocol::{
    Block, Certificate, Hash32, Keypair, PublicKey, SignedVote, ValidatorSet, VoteData, VoteDomain,
    VoteKind,
};

use crate::batcher::{check_certificate, check_vote, Ed25519Verifier, Signer, Verifier};
use crate::config::{
    Anchor, Config, CATCH_UP_HEIGHTS_MAX, EVIDENCE_MAX, FETCHES_OUTSTANDING_MAX, FUTURE_VIEWS_MAX,
    RESOLVE_VIEWS_MAX, VIEW_WINDOW,
};
use crate::guard::{Check, VoteGuard};
use crate::interface::{Input, Output, TimerId, TimerKind};
use crate::message::{Message, Proposal};
use crate::stats::{DropReason, Stats};
use crate::tally::{Added, Tally};

/// A parent chosen (leader) or required (proposal) for a view's block.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parent {
    view: u64,
    height: u64,
    hash: Hash32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    /// Waiting for the parent's certificates or ancestry.
    Waiting,
    /// Sent to the application.
    Verifying,
    /// Valid (or our own).
    Valid,
    /// Invalid: never voted for.
    Invalid,
}

#[derive(Debug, Clone)]
struct ProposalState {
    hash: Hash32,
    block: Arc<Block>,
    parent_view: u64,
    status: Status,
}

#[derive(Debug, Clone, Default)]
struct ViewState {
    /// The first proposal of the leader (the only one ever voted for).
    proposal: Option<ProposalState>,
    /// As leader: the parent we asked the application to build on.
    proposing: Option<Parent>,
    tally: Tally,
    notarization: Option<Certificate>,
    nullification: Option<Certificate>,
}

impl ViewState {
    /// The block notarized in this view: (height, hash). (A finalized view
    /// needs no state: finalizing it settles and prunes it.)
    fn notarized(&self) -> Option<(u64, Hash32)> {
        self.notarization.as_ref().map(|c| (c.height, c.block_hash))
    }
}

enum AncestryError {
    /// Fetching a block.
    Missing,
    /// The chain does not lead to the last finalized block.
    Conflict,
}

/// The consensus core of one node for one epoch. Pure: call
/// [`Core::start`] once, then [`Core::handle`] for every input, and execute
/// the returned outputs in order.
///
/// `V` checks the signatures of others' votes, `S` signs ours (ed25519 in
/// the node; a cheap deterministic scheme in the simulation).
pub struct Core<V: Verifier = Ed25519Verifier, S: Signer = Keypair> {
    /// Chain id and this epoch's validator set: what every vote signs.
    domain: VoteDomain,
    signer: S,
    me: PublicKey,
    is_validator: bool,
    validators: ValidatorSet,
    leader_timeout_ms: u64,
    notarization_timeout_ms: u64,
    retry_ms: u64,
    verifier: V,
    guard: VoteGuard,
    /// Current view.
    view: u64,
    /// View entered by [`Core::start`].
    start_view: u64,
    views: BTreeMap<u64, ViewState>,
    /// Last finalized block emitted.
    finalized: Anchor,
    /// Its finalization certificate (None for the starting anchor).
    finalized_cert: Option<Certificate>,
    /// Highest finalization seen above `finalized`, not yet emitted
    /// (blocks or certificates of its ancestry are being fetched).
    target: Option<Certificate>,
    /// Blocks above the last finalized height (proposals, built, fetched).
    blocks: HashMap<Hash32, Arc<Block>>,
    /// A quorum certificate per block hash above the last finalized height.
    certified: HashMap<Hash32, Certificate>,
    fetching: BTreeSet<Hash32>,
    /// Journaled certificates to re-apply in [`Core::start`].
    restored: Vec<Certificate>,
    /// Re-applying the journal: do not journal again.
    replaying: bool,
    emit_dirty: bool,
    evidence: VecDeque<Equivocation>,
    accused: BTreeSet<(PublicKey, u64)>,
    stats: Stats,
    out: Vec<Output>,
    #[cfg(feature = "mutation")]
    mutation: Option<crate::config::Mutation>,
}

impl<S: Signer> Core<Ed25519Verifier, S> {
    /// A fresh core (no votes signed yet) starting after `anchor`.
    pub fn new(config: Config<S>, anchor: Anchor) -> Self {
        Self::with_verifier(config, anchor, Ed25519Verifier)
    }
}

impl<V: Verifier, S: Signer> Core<V, S> {
    /// A fresh core with a chosen signature verifier.
    pub fn with_verifier(config: Config<S>, anchor: Anchor, verifier: V) -> Self {
        Self::restore(config, anchor, Vec::new(), verifier)
    }

    /// A core restarted after a crash: `anchor` is the last finalized block
    /// the node stored, `votes` every vote it persisted ([`Output::Persist`])
    /// for views above `anchor.view` (older ones are ignored, so the driver
    /// may prune them). The core will not sign anything conflicting with
    /// them, and starts in the highest view it voted in (or `anchor.view + 1`).
    pub fn restore(
        config: Config<S>,
        anchor: Anchor,
        votes: impl IntoIterator<Item = SignedVote>,
        verifier: V,
    ) -> Self {
        let me = config.key.public();
        let mut guard = VoteGuard::default();
        let mut views: BTreeMap<u64, ViewState> = BTreeMap::new();
        for vote in votes {
            // Every vote above the anchor, however far: the node may have
            // voted past this anchor's window (it knew a later finalization
            // whose blocks it had not stored yet), and must remember it.
            if vote.signer != me || vote.data.view <= anchor.view {
                continue;
            }
            if guard.record(vote.clone()) {
                views.entry(vote.data.view).or_default().tally.add(vote);
            }
        }
        let start_view = guard
            .highest_view()
            .unwrap_or(0)
            .clamp(anchor.view + 1, anchor.view + VIEW_WINDOW);
        Core {
            domain: VoteDomain::new(&config.chain_id, &config.validators),
            is_validator: config.validators.contains(&me),
            signer: config.key,
            me,
            validators: config.validators,
            leader_timeout_ms: config.leader_timeout_ms,
            notarization_timeout_ms: config.notarization_timeout_ms,
            retry_ms: config.retry_ms,
            verifier,
            guard,
            view: anchor.view,
            start_view,
            views,
            finalized: anchor,
            finalized_cert: None,
            target: None,
            blocks: HashMap::new(),
            certified: HashMap::new(),
            fetching: BTreeSet::new(),
            restored: Vec::new(),
            replaying: false,
            emit_dirty: false,
            evidence: VecDeque::new(),
            accused: BTreeSet::new(),
            stats: Stats::default(),
            out: Vec::new(),
            #[cfg(feature = "mutation")]
            mutation: None,
        }
    }

    /// Gives a restored core the certificates it journaled
    /// ([`Output::Journal`]) before the crash: [`Core::start`] verifies and
    /// re-applies those above the anchor (certificates of another validator
    /// set fail verification and are dropped), so the restarted node knows
    /// the notarizations and nullifications it needs to vote and propose.
    pub fn with_journal(mut self, certificates: impl IntoIterator<Item = Certificate>) -> Self {
        let floor = self.finalized.view;
        let mut certs: Vec<Certificate> = certificates
            .into_iter()
            .filter(|c| c.view > floor && c.view <= floor + VIEW_WINDOW)
            .collect();
        // Oldest first: a finalization then settles what is below it.
        certs.sort_by_key(|c| c.view);
        certs.truncate(VIEW_WINDOW as usize * 3);
        self.restored = certs;
        self
    }

    /// Gives a restored core the blocks it persisted
    /// ([`Output::PersistBlock`]) before the crash; those above the anchor
    /// are kept (a block is named by its hash, so nothing else is checked
    /// here: votes and certificates say which blocks count).
    pub fn with_blocks(mut self, blocks: impl IntoIterator<Item = Block>) -> Self {
        let height = self.finalized.height;
        for block in blocks {
            if block.header.height > height && self.blocks.len() < VIEW_WINDOW as usize * 2 {
                self.blocks.insert(block.hash(), Arc::new(block));
            }
        }
        self
    }

    /// Test-only: breaks a safety rule on purpose (cargo feature `mutation`).
    #[cfg(feature = "mutation")]
    pub fn set_mutation(&mut self, mutation: crate::config::Mutation) {
        self.mutation = Some(mutation);
    }

    /// Enters the first view. Call once, before any [`Core::handle`].
    pub fn start(&mut self) -> Vec<Output> {
        let view = self.start_view;
        self.enter_view(view);
        // Re-send what we had signed in this view before the restart (it may
        // never have left the machine), and keep retrying if we had nullified.
        // (Not when this epoch's set no longer holds us: those votes are of
        // an epoch that is over.)
        for vote in self
            .guard
            .votes_in(view)
            .into_iter()
            .filter(|_| self.is_validator)
        {
            self.out.push(Output::Broadcast(Message::Vote(vote)));
        }
        if self.guard.get(view, VoteKind::Nullify).is_some() && self.is_validator {
            self.set_timer(view, TimerKind::Retry, self.retry_ms);
        }
        let restored: Vec<VoteData> = self.views.values().flat_map(|s| s.tally_data()).collect();
        for data in restored {
            self.check_quorum(data);
        }
        self.replaying = true;
        for cert in std::mem::take(&mut self.restored) {
            if let Err(reason) = self.on_certificate(cert) {
                self.stats.record(reason);
            }
        }
        self.replaying = false;
        self.step();
        std::mem::take(&mut self.out)
    }

    /// Handles one input and returns what the driver must do, in order.
    pub fn handle(&mut self, input: Input) -> Vec<Output> {
        let result = match input {
            Input::Message { from, message } => self.on_message(from, message),
            Input::Timer(id) => {
                self.on_timer(id);
                Ok(())
            }
            Input::Built { view, block } => self.on_built(view, block),
            Input::Verified {
                view,
                block_hash,
                valid,
            } => self.on_verified(view, block_hash, valid),
            Input::Fetched { block, certificate } => self.on_fetched(block, certificate),
            Input::Certificates(certs) => {
                for cert in certs.into_iter().take(RESOLVE_VIEWS_MAX * 2 + 1) {
                    if let Err(reason) = self.on_certificate(cert) {
                        self.stats.record(reason);
                    }
                }
                Ok(())
            }
        };
        if let Err(reason) = result {
            self.stats.record(reason);
        }
        self.step();
        std::mem::take(&mut self.out)
    }

    /// The current view.
    pub fn view(&self) -> u64 {
        self.view
    }

    /// The last finalized block emitted.
    pub fn finalized(&self) -> Anchor {
        self.finalized
    }

    /// Drop and event counters.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Recent equivocation evidence, oldest first (at most `EVIDENCE_MAX`).
    pub fn evidence(&self) -> impl Iterator<Item = &Equivocation> {
        self.evidence.iter()
    }

    /// What this epoch's votes sign: the chain id and the validator set.
    pub fn domain(&self) -> &VoteDomain {
        &self.domain
    }

    /// This epoch's validators.
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// A block above the last finalized height that this core holds with a
    /// quorum certificate (notarization or finalization): what a peer that
    /// missed the proposal asks for by hash.
    pub fn certified_block(&self, hash: &Hash32) -> Option<(Arc<Block>, Certificate)> {
        let cert = self.certified.get(hash)?;
        let block = self.blocks.get(hash)?;
        Some((block.clone(), cert.clone()))
    }

    /// What this core can answer to a peer's [`Output::Resolve`] for
    /// `views`: the notarization and nullification it holds for each view
    /// above its settled view, and its latest finalization for views at or
    /// below it (which settles them for the peer too). At most
    /// `2 * RESOLVE_VIEWS_MAX + 1` certificates.
    pub fn certificates_for(&self, views: &[u64]) -> Vec<Certificate> {
        let floor = self.floor();
        let mut out = Vec::new();
        if views.iter().any(|v| *v <= floor) {
            out.extend(self.floor_certificate());
        }
        for view in views.iter().filter(|v| **v > floor).take(RESOLVE_VIEWS_MAX) {
            if let Some(state) = self.views.get(view) {
                out.extend(state.notarization.clone());
                out.extend(state.nullification.clone());
            }
        }
        out
    }

    /// This node's key.
    pub fn public_key(&self) -> PublicKey {
        self.me
    }

    // ---- helpers -----------------------------------------------------------

    /// Whether the test-only `mutation` is on (always false in a node build).
    fn mutated(&self, mutation: crate::config::Mutation) -> bool {
        #[cfg(feature = "mutation")]
        {
            self.mutation == Some(mutation)
        }
        #[cfg(not(feature = "mutation"))]
        {
            let _ = mutation;
            false
        }
    }

    fn quorum(&self) -> usize {
        #[cfg(feature = "mutation")]
        if self.mutation == Some(crate::config::Mutation::WeakQuorum) {
            return self.validators.max_faulty() + 1;
        }
        self.validators.quorum()
    }

    /// The settled view: the highest finalization known (emitted or not).
    /// Nothing at or below it is voted on or kept.
    fn floor(&self) -> u64 {
        self.target.as_ref().map_or(self.finalized.view, |t| t.view)
    }

    /// The block of [`Core::floor`].
    fn floor_parent(&self) -> Parent {
        match &self.target {
            Some(t) => Parent {
                view: t.view,
                height: t.height,
                hash: t.block_hash,
            },
            None => Parent {
                view: self.finalized.view,
                height: self.finalized.height,
                hash: self.finalized.hash,
            },
        }
    }

    fn floor_certificate(&self) -> Option<Certificate> {
        self.target.clone().or_else(|| self.finalized_cert.clone())
    }

    fn set_timer(&mut self, view: u64, kind: TimerKind, after_ms: u64) {
        self.out.push(Output::SetTimer {
            id: TimerId { view, kind },
            after_ms,
        });
    }

    fn is_leader(&self, view: u64) -> bool {
        self.validators.leader(view).key == self.me
    }

    /// Our vote on `data` (the guard has allowed it).
    fn sign(&self, data: VoteData) -> SignedVote {
        SignedVote {
            data,
            signer: self.me,
            signature: self.signer.sign(&self.domain, &data),
        }
    }

    fn verify_vote(&mut self, vote: &SignedVote) -> bool {
        self.verifier
            .verify(&self.domain, &vote.data, &[(vote.signer, vote.signature)])
    }

    fn verify_certificate(&mut self, cert: &Certificate) -> bool {
        self.verifier
            .verify(&self.domain, &cert.vote_data(), &cert.votes)
    }

    /// Votes and proposals are kept for views above the floor, up to a few
    /// views ahead of ours and never beyond the window.
    fn check_vote_view(&self, view: u64) -> Result<(), DropReason> {
        let floor = self.floor();
        if view <= floor {
            return Err(DropReason::ViewTooOld);
        }
        if view > self.view + FUTURE_VIEWS_MAX || view > floor + VIEW_WINDOW {
            return Err(DropReason::ViewTooFar);
        }
        Ok(())
    }

    // ---- network -----------------------------------------------------------

    fn on_message(&mut self, from: PublicKey, message: Message) -> Result<(), DropReason> {
        if !self.validators.contains(&from) {
            return Err(DropReason::NotValidator);
        }
        match message {
            Message::Proposal(p) => self.on_proposal(*p),
            Message::Vote(v) => self.on_vote(from, v),
            Message::Certificate(c) => self.on_certificate(c),
        }
    }

    fn on_proposal(&mut self, p: Proposal) -> Result<(), DropReason> {
        let Proposal {
            view,
            parent_view,
            block,
            vote,
        } = p;
        let hash = block.hash();
        let expected = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: block.header.height,
            block_hash: hash,
        };
        if vote.data != expected || parent_view >= view {
            return Err(DropReason::Malformed);
        }
        check_vote(&self.validators, &vote)?;
        let leader = self.validators.leader(view).key;
        if vote.signer != leader || block.header.proposer != leader {
            return Err(DropReason::NotLeader);
        }
        self.check_vote_view(view)?;
        if let Some(existing) = self.views.get(&view).and_then(|s| s.proposal.as_ref()) {
            if existing.hash == hash {
                return Err(DropReason::Duplicate);
            }
        }
        if !self.verify_vote(&vote) {
            return Err(DropReason::BadSignature);
        }
        match self.tally_vote(vote) {
            Added::New | Added::Duplicate => {}
            Added::Conflict(..) => return Err(DropReason::Equivocation),
        }
        let block = Arc::new(block);
        let state = self.views.entry(view).or_default();
        if state.proposal.is_none() {
            state.proposal = Some(ProposalState {
                hash,
                block: block.clone(),
                parent_view,
                status: Status::Waiting,
            });
            self.blocks.insert(hash, block);
        }
        self.check_quorum(expected);
        Ok(())
    }

    fn on_vote(&mut self, from: PublicKey, vote: SignedVote) -> Result<(), DropReason> {
        check_vote(&self.validators, &vote)?;
        let view = vote.data.view;
        // A nullify for a view we left is normal just after a view change;
        // one two views back, or a retransmission, means the peer is stuck.
        // `view` is the sender's: saturating, a vote for view u64::MAX
        // must not overflow.
        let stuck = view.saturating_add(1) < self.view
            || self
                .views
                .get(&view)
                .is_some_and(|s| s.tally.contains(&vote));
        if vote.data.kind == VoteKind::Nullify && view < self.view && stuck {
            self.help_lagging(from, view);
        }
        self.check_vote_view(view)?;
        if self
            .views
            .get(&view)
            .is_some_and(|s| s.tally.contains(&vote))
        {
            return Err(DropReason::Duplicate);
        }
        if !self.verify_vote(&vote) {
            return Err(DropReason::BadSignature);
        }
        let data = vote.data;
        match self.tally_vote(vote) {
            Added::Duplicate => Err(DropReason::Duplicate),
            Added::Conflict(_, false) => Err(DropReason::Equivocation),
            Added::New | Added::Conflict(_, true) => {
                self.check_quorum(data);
                Ok(())
            }
        }
    }

    /// A peer still nullifying a view we have left: send it the certificate
    /// that moved us on, so it catches up without waiting for a broadcast.
    fn help_lagging(&mut self, peer: PublicKey, view: u64) {
        if peer == self.me {
            return;
        }
        let cert = if view <= self.floor() {
            self.floor_certificate()
        } else {
            self.views
                .get(&view)
                .and_then(|s| s.notarization.clone().or_else(|| s.nullification.clone()))
        };
        if let Some(cert) = cert {
            self.out.push(Output::Send {
                to: peer,
                message: Message::Certificate(cert),
            });
        }
    }

    fn on_certificate(&mut self, cert: Certificate) -> Result<(), DropReason> {
        check_certificate(&self.validators, self.quorum(), &cert)?;
        let view = cert.view;
        let floor = self.floor();
        if view <= floor {
            return Err(DropReason::ViewTooOld);
        }
        let too_far = match cert.kind {
            // A finalization settles everything below it: accept it from any
            // view so a node that fell behind catches up in one step.
            VoteKind::Finalize => cert.height > self.finalized.height + CATCH_UP_HEIGHTS_MAX,
            VoteKind::Notarize | VoteKind::Nullify => view > floor + VIEW_WINDOW,
        };
        if too_far {
            return Err(DropReason::ViewTooFar);
        }
        if let Some(state) = self.views.get(&view) {
            let have = match cert.kind {
                VoteKind::Notarize => state.notarization.as_ref(),
                VoteKind::Nullify => state.nullification.as_ref(),
                // A finalization above the floor is always news.
                VoteKind::Finalize => None,
            };
            if let Some(have) = have {
                if have.block_hash != cert.block_hash {
                    self.stats.conflicting_certificates += 1;
                }
                return Err(DropReason::Duplicate);
            }
        }
        if !self.verify_certificate(&cert) {
            return Err(DropReason::BadSignature);
        }
        self.apply_certificate(cert);
        Ok(())
    }

    fn on_fetched(&mut self, block: Block, cert: Certificate) -> Result<(), DropReason> {
        let hash = block.hash();
        if !self.fetching.contains(&hash) {
            return Err(DropReason::Unrequested);
        }
        if cert.kind == VoteKind::Nullify
            || cert.block_hash != hash
            || cert.height != block.header.height
        {
            return Err(DropReason::Malformed);
        }
        check_certificate(&self.validators, self.quorum(), &cert)?;
        if !self.verify_certificate(&cert) {
            return Err(DropReason::BadSignature);
        }
        self.fetching.remove(&hash);
        if block.header.height > self.finalized.height {
            self.blocks.insert(hash, Arc::new(block));
            if cert.kind == VoteKind::Finalize {
                self.certified.insert(hash, cert.clone());
            } else {
                self.certified.entry(hash).or_insert_with(|| cert.clone());
            }
        }
        self.emit_dirty = true;
        if cert.kind == VoteKind::Finalize
            && cert.view > self.floor()
            && cert.height <= self.finalized.height + CATCH_UP_HEIGHTS_MAX
        {
            self.on_finalization(cert);
        }
        Ok(())
    }

    // ---- votes and certificates --------------------------------------------

    /// Counts a vote whose signature is checked; records evidence.
    fn tally_vote(&mut self, vote: SignedVote) -> Added {
        let view = vote.data.view;
        let added = self.views.entry(view).or_default().tally.add(vote);
        if let Added::Conflict(ev, _) = &added {
            self.record_evidence((**ev).clone());
        }
        added
    }

    fn record_evidence(&mut self, ev: Equivocation) {
        self.stats.equivocations += 1;
        if !self.accused.insert((ev.signer(), ev.first.data.view)) {
            return;
        }
        if self.evidence.len() == EVIDENCE_MAX {
            self.evidence.pop_front();
        }
        self.evidence.push_back(ev.clone());
        self.out.push(Output::Evidence(ev));
    }

    /// Forms a certificate if the votes like `data` reach a quorum.
    fn check_quorum(&mut self, data: VoteData) {
        let q = self.quorum();
        let Some(state) = self.views.get(&data.view) else {
            return;
        };
        let have = match data.kind {
            VoteKind::Notarize => state.notarization.is_some(),
            VoteKind::Nullify => state.nullification.is_some(),
            // Forming it settles the view (state at or below the floor is
            // pruned), so a finalization is never formed twice.
            VoteKind::Finalize => false,
        };
        if have || state.tally.count(data.kind, &data.block_hash) < q {
            return;
        }
        if let Some(cert) = state.tally.certificate(data.kind, &data.block_hash) {
            self.apply_certificate(cert);
        }
    }

    fn apply_certificate(&mut self, cert: Certificate) {
        match cert.kind {
            VoteKind::Notarize => self.on_notarization(cert),
            VoteKind::Nullify => self.on_nullification(cert),
            VoteKind::Finalize => self.on_finalization(cert),
        }
    }

    fn on_notarization(&mut self, cert: Certificate) {
        let (view, height, hash) = (cert.view, cert.height, cert.block_hash);
        self.views.entry(view).or_default().notarization = Some(cert.clone());
        self.certified.entry(hash).or_insert_with(|| cert.clone());
        self.journal(&cert);
        self.emit_dirty = true;
        if view >= self.view {
            self.out.push(Output::Broadcast(Message::Certificate(cert)));
            self.enter_view(view + 1);
        }
        // Rule 5: seen notarized and not nullified by us: finalize.
        if self.guard.get(view, VoteKind::Nullify).is_none()
            || self.mutated(crate::config::Mutation::FinalizeAfterNullify)
        {
            self.cast(VoteData {
                kind: VoteKind::Finalize,
                view,
                height,
                block_hash: hash,
            });
        }
    }

    fn on_nullification(&mut self, cert: Certificate) {
        let view = cert.view;
        self.views.entry(view).or_default().nullification = Some(cert.clone());
        self.journal(&cert);
        if view >= self.view {
            self.out.push(Output::Broadcast(Message::Certificate(cert)));
            self.enter_view(view + 1);
        }
    }

    fn on_finalization(&mut self, cert: Certificate) {
        let view = cert.view;
        if view <= self.floor() {
            return;
        }
        self.certified.insert(cert.block_hash, cert.clone());
        self.journal(&cert);
        self.target = Some(cert.clone());
        self.emit_dirty = true;
        self.prune();
        if view >= self.view {
            self.out.push(Output::Broadcast(Message::Certificate(cert)));
            self.enter_view(view + 1);
        }
    }

    /// Asks the driver to journal a certificate (not while re-applying the
    /// journal itself).
    fn journal(&mut self, cert: &Certificate) {
        if !self.replaying {
            self.out.push(Output::Journal(cert.clone()));
        }
    }

    /// Signs, persists, sends and counts our vote, if the guard allows.
    fn cast(&mut self, data: VoteData) {
        if !self.is_validator || data.view <= self.floor() {
            return;
        }
        let check = match self.guard.check(&data) {
            Check::Refused(crate::guard::Refusal::FinalizeAfterNullify)
                if self.mutated(crate::config::Mutation::FinalizeAfterNullify) =>
            {
                Check::Fresh
            }
            check => check,
        };
        match check {
            Check::Fresh => {
                self.persist_block_for(&data);
                let vote = self.sign(data);
                self.guard.record(vote.clone());
                self.out.push(Output::Persist(vote.clone()));
                self.out
                    .push(Output::Broadcast(Message::Vote(vote.clone())));
                self.tally_vote(vote);
                self.check_quorum(data);
            }
            Check::AlreadySigned(vote) => self.out.push(Output::Broadcast(Message::Vote(vote))),
            Check::Refused(_) => self.stats.refused_to_sign += 1,
        }
    }

    /// Before the first vote for a block (a notarize, or a finalize of a
    /// block we did not notarize): the block must be durable too.
    fn persist_block_for(&mut self, data: &VoteData) {
        let first = match data.kind {
            VoteKind::Nullify => false,
            VoteKind::Notarize => true,
            VoteKind::Finalize => self
                .guard
                .get(data.view, VoteKind::Notarize)
                .is_none_or(|v| v.data.block_hash != data.block_hash),
        };
        if let Some(block) = self.blocks.get(&data.block_hash).filter(|_| first) {
            self.out.push(Output::PersistBlock(block.clone()));
        }
    }

    fn nullify(&mut self, view: u64) {
        if !self.is_validator || self.guard.get(view, VoteKind::Finalize).is_some() {
            return;
        }
        let first = self.guard.get(view, VoteKind::Nullify).is_none();
        self.cast(VoteData {
            kind: VoteKind::Nullify,
            view,
            height: 0,
            block_hash: Hash32::ZERO,
        });
        if first {
            self.set_timer(view, TimerKind::Retry, self.retry_ms);
        }
    }

    // ---- views and timers --------------------------------------------------

    fn enter_view(&mut self, view: u64) {
        if view <= self.view || view > self.floor() + VIEW_WINDOW + 1 {
            return;
        }
        self.view = view;
        self.set_timer(view, TimerKind::Leader, self.leader_timeout_ms);
        self.set_timer(view, TimerKind::Notarization, self.notarization_timeout_ms);
        // Fetches still outstanding are asked again once per view: an answer
        // may have been lost, and a node that follows views through
        // certificates never reaches its retry timer (found by the
        // simulation's `lost_fetch` scenario).
        if !self.fetching.is_empty() {
            self.fetching.clear();
            self.emit_dirty = true;
        }
    }

    fn on_timer(&mut self, id: TimerId) {
        // Timers are never cancelled; those of views we left are ignored.
        if id.view != self.view {
            return;
        }
        match id.kind {
            TimerKind::Leader => {
                if self.guard.get(id.view, VoteKind::Notarize).is_none() {
                    self.nullify(id.view);
                }
                self.resolve();
            }
            TimerKind::Notarization => self.nullify(id.view),
            TimerKind::Retry => {
                self.retry(id.view);
                self.resolve();
            }
        }
    }

    /// The certificates this core waits for, newest first: the current
    /// proposal's parent notarization, and every view between the settled
    /// view and the current one that has neither a notarization nor a
    /// nullification (a proposal's parent rule needs one or the other for
    /// each). A restarted node, a core restarted after sync or an epoch
    /// change, or one that missed a broadcast has no other way to get them:
    /// peers only re-send the previous view's certificate.
    fn missing_views(&self) -> Vec<u64> {
        let mut views = Vec::new();
        if let Some(p) = self.views.get(&self.view).and_then(|s| s.proposal.as_ref()) {
            let parent = p.parent_view;
            let known = parent <= self.floor()
                || self
                    .views
                    .get(&parent)
                    .is_some_and(|s| s.notarization.is_some());
            if !known {
                views.push(parent);
            }
        }
        let mut w = self.view;
        while w > self.floor() + 1 && views.len() < RESOLVE_VIEWS_MAX {
            w -= 1;
            let known = self
                .views
                .get(&w)
                .is_some_and(|s| s.notarization.is_some() || s.nullification.is_some());
            if !known && !views.contains(&w) {
                views.push(w);
            }
        }
        views
    }

    /// Asks peers for the certificates this core is waiting for.
    fn resolve(&mut self) {
        let views = self.missing_views();
        if !views.is_empty() {
            self.out.push(Output::Resolve { views });
        }
    }

    /// Stuck in `view` after nullifying it: messages may have been lost or a
    /// partition may have healed. Re-send our votes and the certificates
    /// that let others reach this view, and re-request missing blocks.
    fn retry(&mut self, view: u64) {
        for vote in self.guard.votes_in(view) {
            self.out.push(Output::Broadcast(Message::Vote(vote)));
        }
        let previous = if view - 1 <= self.floor() {
            None
        } else {
            self.views
                .get(&(view - 1))
                .and_then(|s| s.notarization.clone().or_else(|| s.nullification.clone()))
        };
        if let Some(cert) = previous {
            self.out.push(Output::Broadcast(Message::Certificate(cert)));
        }
        if let Some(cert) = self.floor_certificate() {
            self.out.push(Output::Broadcast(Message::Certificate(cert)));
        }
        self.fetching.clear();
        self.emit_dirty = true;
        self.set_timer(view, TimerKind::Retry, self.retry_ms);
    }

    // ---- application -------------------------------------------------------

    fn on_built(&mut self, view: u64, block: Block) -> Result<(), DropReason> {
        let parent = match self.views.get(&view) {
            Some(s) if view == self.view && s.proposal.is_none() => {
                s.proposing.ok_or(DropReason::Stale)?
            }
            _ => return Err(DropReason::Stale),
        };
        if self.guard.get(view, VoteKind::Notarize).is_some()
            || self.guard.get(view, VoteKind::Nullify).is_some()
        {
            return Err(DropReason::Stale);
        }
        let h = &block.header;
        if h.prev_hash != parent.hash || h.height != parent.height + 1 || h.proposer != self.me {
            self.stats.bad_built_blocks += 1;
            return Ok(());
        }
        let hash = block.hash();
        let data = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: h.height,
            block_hash: hash,
        };
        if self.guard.check(&data) != Check::Fresh {
            self.stats.refused_to_sign += 1;
            return Ok(());
        }
        let vote = self.sign(data);
        self.guard.record(vote.clone());
        let block = Arc::new(block);
        self.out.push(Output::PersistBlock(block.clone()));
        self.out.push(Output::Persist(vote.clone()));
        self.blocks.insert(hash, block.clone());
        let state = self.views.entry(view).or_default();
        state.proposal = Some(ProposalState {
            hash,
            block: block.clone(),
            parent_view: parent.view,
            status: Status::Valid,
        });
        let proposal = Proposal {
            view,
            parent_view: parent.view,
            block: (*block).clone(),
            vote: vote.clone(),
        };
        self.out
            .push(Output::Broadcast(Message::Proposal(Box::new(proposal))));
        self.tally_vote(vote);
        self.check_quorum(data);
        Ok(())
    }

    fn on_verified(
        &mut self,
        view: u64,
        block_hash: Hash32,
        valid: bool,
    ) -> Result<(), DropReason> {
        let Some(p) = self.views.get_mut(&view).and_then(|s| s.proposal.as_mut()) else {
            return Err(DropReason::Stale);
        };
        if p.hash != block_hash || p.status != Status::Verifying {
            return Err(DropReason::Stale);
        }
        if !valid {
            p.status = Status::Invalid;
            self.stats.invalid_proposals += 1;
            if view == self.view {
                self.nullify(view);
            }
            return Ok(());
        }
        p.status = Status::Valid;
        let height = p.block.header.height;
        // Rule 3: only in the current view, only if we have not nullified it.
        if view == self.view && self.guard.get(view, VoteKind::Nullify).is_none() {
            self.cast(VoteData {
                kind: VoteKind::Notarize,
                view,
                height,
                block_hash,
            });
        }
        Ok(())
    }

    // ---- progress ----------------------------------------------------------

    /// Everything that may have become possible after an input.
    fn step(&mut self) {
        if self.emit_dirty {
            self.emit_dirty = false;
            self.try_emit();
        }
        self.try_propose();
        self.try_verify();
    }

    /// Rule 2 (leader side): the parent for a proposal in `view`: the
    /// notarized block of the latest view before `view` that is not
    /// nullified, if every view in between is nullified. `None` while a
    /// certificate is missing.
    fn select_parent(&self, view: u64) -> Option<Parent> {
        let floor = self.floor();
        let mut w = view - 1;
        while w > floor {
            let state = self.views.get(&w)?;
            if let Some((height, hash)) = state.notarized() {
                return Some(Parent {
                    view: w,
                    height,
                    hash,
                });
            }
            state.nullification.as_ref()?;
            w -= 1;
        }
        Some(self.floor_parent())
    }

    fn try_propose(&mut self) {
        let view = self.view;
        if !self.is_validator || !self.is_leader(view) {
            return;
        }
        if self
            .views
            .get(&view)
            .is_some_and(|s| s.proposing.is_some() || s.proposal.is_some())
        {
            return;
        }
        if self.guard.get(view, VoteKind::Notarize).is_some()
            || self.guard.get(view, VoteKind::Nullify).is_some()
        {
            return;
        }
        let Some(parent) = self.select_parent(view) else {
            return;
        };
        let Ok(ancestry) = self.ancestry(parent.hash, parent.height) else {
            return;
        };
        self.views.entry(view).or_default().proposing = Some(parent);
        self.out.push(Output::Propose {
            view,
            parent_height: parent.height,
            parent_hash: parent.hash,
            ancestry,
        });
    }

    /// Rule 2 (voter side) for the current view's proposal, then ask the
    /// application. Waits while certificates or ancestors are missing.
    fn try_verify(&mut self) {
        let view = self.view;
        let Some(p) = self.views.get(&view).and_then(|s| s.proposal.as_ref()) else {
            return;
        };
        if p.status != Status::Waiting
            || self.guard.get(view, VoteKind::Notarize).is_some()
            || self.guard.get(view, VoteKind::Nullify).is_some()
        {
            return;
        }
        let (parent_view, block) = (p.parent_view, p.block.clone());
        let parent_hash = block.header.prev_hash;
        let floor = self.floor_parent();
        let parent_height = if parent_view < floor.view {
            return self.reject(view);
        } else if parent_view == floor.view {
            if parent_hash != floor.hash {
                return self.reject(view);
            }
            floor.height
        } else {
            match self.views.get(&parent_view).and_then(ViewState::notarized) {
                Some((height, hash)) if hash == parent_hash => height,
                Some(_) => return self.reject(view),
                None => return,
            }
        };
        if !(parent_view + 1..view).all(|w| {
            self.views
                .get(&w)
                .is_some_and(|s| s.nullification.is_some())
        }) && !self.mutated(crate::config::Mutation::SkipNullificationCheck)
        {
            return;
        }
        if block.header.height != parent_height + 1 {
            return self.reject(view);
        }
        let ancestry = match self.ancestry(parent_hash, parent_height) {
            Ok(a) => a,
            Err(AncestryError::Missing) => return,
            Err(AncestryError::Conflict) => return self.reject(view),
        };
        if let Some(p) = self.views.get_mut(&view).and_then(|s| s.proposal.as_mut()) {
            p.status = Status::Verifying;
        }
        self.out.push(Output::Verify {
            view,
            block,
            ancestry,
        });
    }

    fn reject(&mut self, view: u64) {
        if let Some(p) = self.views.get_mut(&view).and_then(|s| s.proposal.as_mut()) {
            p.status = Status::Invalid;
        }
        self.stats.invalid_proposals += 1;
        self.nullify(view);
    }

    /// Blocks after the last finalized one up to `hash`, oldest first;
    /// fetches the first missing one.
    fn ancestry(&mut self, hash: Hash32, height: u64) -> Result<Vec<Arc<Block>>, AncestryError> {
        let mut chain = Vec::new();
        let (mut hash, mut height) = (hash, height);
        while height > self.finalized.height {
            let Some(block) = self.blocks.get(&hash) else {
                self.fetch(hash, height);
                return Err(AncestryError::Missing);
            };
            if block.header.height != height {
                return Err(AncestryError::Conflict);
            }
            chain.push(block.clone());
            hash = block.header.prev_hash;
            height -= 1;
        }
        if height != self.finalized.height || hash != self.finalized.hash {
            return Err(AncestryError::Conflict);
        }
        chain.reverse();
        Ok(chain)
    }

    fn fetch(&mut self, hash: Hash32, height: u64) {
        if self.fetching.len() >= FETCHES_OUTSTANDING_MAX || !self.fetching.insert(hash) {
            return;
        }
        self.out.push(Output::Fetch { hash, height });
    }

    /// Emits the target finalization and every ancestor not yet emitted,
    /// in height order, once all their blocks and certificates are here.
    fn try_emit(&mut self) {
        let Some(target) = self.target.clone() else {
            return;
        };
        let mut chain = Vec::new();
        let (mut hash, mut height) = (target.block_hash, target.height);
        while height > self.finalized.height {
            let Some(block) = self.blocks.get(&hash).cloned() else {
                self.fetch(hash, height);
                return;
            };
            let cert = if hash == target.block_hash {
                Some(target.clone())
            } else {
                self.certified.get(&hash).cloned()
            };
            let Some(cert) = cert else {
                self.fetch(hash, height);
                return;
            };
            if block.header.height != height {
                self.stats.conflicting_certificates += 1;
                return;
            }
            hash = block.header.prev_hash;
            height -= 1;
            chain.push((block, cert));
        }
        if height != self.finalized.height || hash != self.finalized.hash {
            // A quorum certified a block that does not extend what we
            // finalized: more than f validators are Byzantine. Never emit it.
            self.stats.conflicting_certificates += 1;
            self.target = None;
            return;
        }
        for (block, certificate) in chain.into_iter().rev() {
            self.out.push(Output::Finalized { block, certificate });
        }
        self.finalized = Anchor {
            view: target.view,
            height: target.height,
            hash: target.block_hash,
        };
        self.finalized_cert = Some(target);
        self.target = None;
        self.prune();
    }

    /// Forgets everything at or below the settled view and height.
    fn prune(&mut self) {
        let floor = self.floor();
        self.views = self.views.split_off(&(floor + 1));
        self.guard.prune_through(floor);
        self.accused.retain(|(_, v)| *v > floor);
        let height = self.finalized.height;
        self.blocks.retain(|_, b| b.header.height > height);
        self.certified.retain(|_, c| c.height > height);
    }
}

impl ViewState {
    /// Data of every counted vote (used once after a restore).
    fn tally_data(&self) -> Vec<VoteData> {
        self.tally.all_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::{BlockHeader, MerchantId, Validator};

    const CHAIN: &str = "unit-chain";

    fn keys(n: usize) -> Vec<Keypair> {
        (0..n)
            .map(|i| Keypair::from_label(&format!("unit/{i}")))
            .collect()
    }

    fn set(keys: &[Keypair]) -> ValidatorSet {
        ValidatorSet::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    id: MerchantId::new(format!("m{i:02}")).unwrap(),
                    key: k.public(),
                })
                .collect(),
        )
        .unwrap()
    }

    const GENESIS: Hash32 = Hash32([9; 32]);

    /// What the 4-validator set of these tests signs in.
    fn domain() -> VoteDomain {
        VoteDomain::new(CHAIN, &set(&keys(4)))
    }

    fn anchor() -> Anchor {
        Anchor {
            view: 0,
            height: 0,
            hash: GENESIS,
        }
    }

    fn core(keys: &[Keypair], me: usize) -> Core {
        Core::new(Config::new(CHAIN, keys[me].clone(), set(keys)), anchor())
    }

    fn block(proposer: &Keypair, height: u64, prev: Hash32, salt: u64) -> Block {
        Block {
            header: BlockHeader {
                chain_id: CHAIN.into(),
                height,
                timestamp_ms: salt,
                prev_hash: prev,
                tx_count: 0,
                tx_root: Hash32::ZERO,
                state_root: Hash32::ZERO,
                proposer: proposer.public(),
                validator_set_hash: Hash32::ZERO,
            },
            txs: Vec::new(),
        }
    }

    fn proposal(leader: &Keypair, view: u64, parent_view: u64, block: Block) -> Message {
        let vote = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: block.header.height,
            block_hash: block.hash(),
        }
        .sign(&domain(), leader);
        Message::Proposal(Box::new(Proposal {
            view,
            parent_view,
            block,
            vote,
        }))
    }

    fn vote(k: &Keypair, kind: VoteKind, view: u64, height: u64, hash: Hash32) -> Message {
        Message::Vote(
            VoteData {
                kind,
                view,
                height,
                block_hash: hash,
            }
            .sign(&domain(), k),
        )
    }

    fn nullify(k: &Keypair, view: u64) -> Message {
        vote(k, VoteKind::Nullify, view, 0, Hash32::ZERO)
    }

    fn msg(from: &Keypair, message: Message) -> Input {
        Input::Message {
            from: from.public(),
            message,
        }
    }

    fn own_votes(outs: &[Output]) -> Vec<VoteData> {
        outs.iter()
            .filter_map(|o| {
                if let Output::Persist(v) = o {
                    Some(v.data)
                } else {
                    None
                }
            })
            .collect()
    }

    #[test]
    fn single_validator_finalizes_on_its_own_votes() {
        let ks = keys(1);
        let mut c = core(&ks, 0);
        let outs = c.start();
        let Some(Output::Propose {
            view: 1,
            parent_height: 0,
            parent_hash,
            ancestry,
        }) = outs
            .iter()
            .find(|o| matches!(o, Output::Propose { .. }))
            .cloned()
        else {
            panic!("no proposal request: {outs:?}")
        };
        assert_eq!((parent_hash, ancestry.len()), (GENESIS, 0));
        let b = block(&ks[0], 1, GENESIS, 1);
        let outs = c.handle(Input::Built {
            view: 1,
            block: b.clone(),
        });
        // Every own vote is persisted before anything that sends it.
        let first_persist = outs
            .iter()
            .position(|o| matches!(o, Output::Persist(_)))
            .unwrap();
        let first_send = outs
            .iter()
            .position(|o| matches!(o, Output::Broadcast(_)))
            .unwrap();
        assert!(first_persist < first_send);
        let finalized: Vec<_> = outs
            .iter()
            .filter_map(|o| {
                if let Output::Finalized { block, certificate } = o {
                    Some((block.clone(), certificate.clone()))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(finalized.len(), 1);
        assert_eq!(finalized[0].0.hash(), b.hash());
        assert_eq!(finalized[0].1.kind, VoteKind::Finalize);
        assert_eq!(
            finalized[0].1.verify(CHAIN, &set(&ks), 1, &b.hash()),
            Ok(())
        );
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::Propose {
                view: 2,
                parent_height: 1,
                ..
            }
        )));
        assert_eq!(c.finalized().height, 1);
    }

    #[test]
    fn hostile_inputs_are_dropped_and_counted() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        let outsider = Keypair::from_label("outsider");
        // Sender not a validator.
        c.handle(msg(&outsider, nullify(&ks[1], 1)));
        assert_eq!(c.stats().dropped_not_validator, 1);
        // Signer not a validator.
        c.handle(msg(&ks[1], nullify(&outsider, 1)));
        assert_eq!(c.stats().dropped_not_validator, 2);
        // Wrong chain id: the signature does not verify here.
        let other_chain = VoteData {
            kind: VoteKind::Nullify,
            view: 1,
            height: 0,
            block_hash: Hash32::ZERO,
        }
        .sign(
            &VoteDomain {
                chain_id: "other".into(),
                ..domain()
            },
            &ks[1],
        );
        c.handle(msg(&ks[1], Message::Vote(other_chain)));
        assert_eq!(c.stats().dropped_bad_signature, 1);
        // Nullify carrying a block hash.
        c.handle(msg(
            &ks[1],
            vote(&ks[1], VoteKind::Nullify, 1, 0, Hash32([1; 32])),
        ));
        assert_eq!(c.stats().dropped_malformed, 1);
        // Duplicate.
        c.handle(msg(&ks[1], nullify(&ks[1], 1)));
        c.handle(msg(&ks[2], nullify(&ks[1], 1)));
        assert_eq!(c.stats().dropped_duplicate, 1);
        // Proposal from a validator that does not lead view 1 (ks[1] does).
        c.handle(msg(
            &ks[2],
            proposal(&ks[2], 1, 0, block(&ks[2], 1, GENESIS, 1)),
        ));
        assert_eq!(c.stats().dropped_not_leader, 1);
        // Far future.
        c.handle(msg(&ks[1], nullify(&ks[1], 1 + FUTURE_VIEWS_MAX + 1)));
        assert_eq!(c.stats().dropped_view_too_far, 1);
        // A certificate below quorum.
        let data = VoteData {
            kind: VoteKind::Nullify,
            view: 1,
            height: 0,
            block_hash: Hash32::ZERO,
        };
        let sig = ks[1].sign(&data.signing_hash(&domain()).0);
        c.handle(msg(
            &ks[1],
            Message::Certificate(Certificate::from_votes(
                VoteKind::Nullify,
                1,
                0,
                Hash32::ZERO,
                [(ks[1].public(), sig)],
            )),
        ));
        assert_eq!(c.stats().dropped_malformed, 2);
        assert_eq!(c.view(), 1);
    }

    #[test]
    fn quorum_of_nullifies_moves_to_the_next_view() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        c.handle(msg(&ks[1], nullify(&ks[1], 1)));
        let outs = c.handle(msg(&ks[2], nullify(&ks[2], 1)));
        assert_eq!(c.view(), 1, "2 of 4 is below the quorum of 3");
        assert!(outs.is_empty());
        let outs = c.handle(msg(&ks[3], nullify(&ks[3], 1)));
        assert_eq!(c.view(), 2);
        assert!(outs.iter().any(|o| matches!(o, Output::Broadcast(Message::Certificate(cert)) if cert.kind == VoteKind::Nullify && cert.votes.len() == 3)));
        assert!(outs.iter().any(|o| matches!(
            o,
            Output::SetTimer {
                id: TimerId {
                    view: 2,
                    kind: TimerKind::Leader
                },
                ..
            }
        )));
    }

    #[test]
    fn notarizes_valid_proposal_then_finalizes_on_notarization() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        let b = block(&ks[1], 1, GENESIS, 1);
        let outs = c.handle(msg(&ks[1], proposal(&ks[1], 1, 0, b.clone())));
        assert!(outs
            .iter()
            .any(|o| matches!(o, Output::Verify { view: 1, .. })));
        let outs = c.handle(Input::Verified {
            view: 1,
            block_hash: b.hash(),
            valid: true,
        });
        assert_eq!(
            own_votes(&outs),
            vec![VoteData {
                kind: VoteKind::Notarize,
                view: 1,
                height: 1,
                block_hash: b.hash()
            }]
        );
        // Leader + us + one more: notarized; we finalize and move on.
        let outs = c.handle(msg(
            &ks[2],
            vote(&ks[2], VoteKind::Notarize, 1, 1, b.hash()),
        ));
        assert_eq!(
            own_votes(&outs),
            vec![VoteData {
                kind: VoteKind::Finalize,
                view: 1,
                height: 1,
                block_hash: b.hash()
            }]
        );
        assert_eq!(c.view(), 2);
        c.handle(msg(
            &ks[1],
            vote(&ks[1], VoteKind::Finalize, 1, 1, b.hash()),
        ));
        let outs = c.handle(msg(
            &ks[2],
            vote(&ks[2], VoteKind::Finalize, 1, 1, b.hash()),
        ));
        assert!(outs.iter().any(|o| matches!(o, Output::Finalized { certificate, .. } if certificate.kind == VoteKind::Finalize)));
        assert_eq!(c.finalized().height, 1);
    }

    #[test]
    fn invalid_proposal_is_nullified_at_once() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        let b = block(&ks[1], 1, GENESIS, 1);
        c.handle(msg(&ks[1], proposal(&ks[1], 1, 0, b.clone())));
        let outs = c.handle(Input::Verified {
            view: 1,
            block_hash: b.hash(),
            valid: false,
        });
        assert_eq!(
            own_votes(&outs),
            vec![VoteData {
                kind: VoteKind::Nullify,
                view: 1,
                height: 0,
                block_hash: Hash32::ZERO
            }]
        );
        assert_eq!(c.stats().invalid_proposals, 1);
        // A proposal whose parent is not the finalized block is rejected
        // without asking the application.
        let mut c = core(&ks, 0);
        c.start();
        let outs = c.handle(msg(
            &ks[1],
            proposal(&ks[1], 1, 0, block(&ks[1], 1, Hash32([7; 32]), 1)),
        ));
        assert!(!outs.iter().any(|o| matches!(o, Output::Verify { .. })));
        assert_eq!(c.stats().invalid_proposals, 1);
    }

    #[test]
    fn equivocating_leader_is_detected() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        c.handle(msg(
            &ks[1],
            proposal(&ks[1], 1, 0, block(&ks[1], 1, GENESIS, 1)),
        ));
        let outs = c.handle(msg(
            &ks[1],
            proposal(&ks[1], 1, 0, block(&ks[1], 1, GENESIS, 2)),
        ));
        let ev = outs
            .iter()
            .find_map(|o| {
                if let Output::Evidence(e) = o {
                    Some(e.clone())
                } else {
                    None
                }
            })
            .expect("evidence");
        assert!(ev.verify(CHAIN, &set(&ks)));
        assert_eq!(ev.signer(), ks[1].public());
        assert_eq!(c.evidence().count(), 1);
        assert_eq!(c.stats().dropped_equivocation, 1);
        // Finalize after nullify from one validator is evidence too.
        c.handle(msg(&ks[2], nullify(&ks[2], 1)));
        let outs = c.handle(msg(
            &ks[2],
            vote(&ks[2], VoteKind::Finalize, 1, 1, Hash32([3; 32])),
        ));
        assert!(outs.iter().any(|o| matches!(o, Output::Evidence(_))));
        assert_eq!(c.evidence().count(), 2);
    }

    fn cert(
        kind: VoteKind,
        view: u64,
        height: u64,
        hash: Hash32,
        signers: &[Keypair],
    ) -> Certificate {
        let data = VoteData {
            kind,
            view,
            height,
            block_hash: hash,
        };
        let msg = data.signing_hash(&domain());
        Certificate::from_votes(
            kind,
            view,
            height,
            hash,
            signers.iter().map(|k| (k.public(), k.sign(&msg.0))),
        )
    }

    /// Issue #13, defect 2: certificates lived only in memory, so a
    /// restarted validator could never again verify a proposal whose parent
    /// was notarized before the crash. Now the journal restores them, and
    /// without a journal the resolver asks peers for them.
    #[test]
    fn restarted_core_recovers_certificates_from_journal_or_peers() {
        let ks = keys(4);
        let vs = set(&ks);
        let leader = |v: u64| ks.iter().find(|k| k.public() == vs.leader(v).key).unwrap();
        // A validator that leads none of views 1 to 4.
        let me = (0..4)
            .find(|&i| (1..=4).all(|v| leader(v).public() != ks[i].public()))
            .unwrap_or(0);
        let others: Vec<Keypair> = (0..4).filter(|&i| i != me).map(|i| ks[i].clone()).collect();
        let cfg = Config::new(CHAIN, ks[me].clone(), vs.clone());
        let a = block(leader(1), 1, GENESIS, 1);
        let n1 = cert(VoteKind::Notarize, 1, 1, a.hash(), &others);
        let x = |v| cert(VoteKind::Nullify, v, 0, Hash32::ZERO, &others);
        let from = |m: Message| msg(&others[0], m);

        // Before the crash: view 1 notarized (our finalize vote), view 2
        // nullified by us and the others.
        let mut c = core(&ks, me);
        let mut persisted = Vec::new();
        let mut journal = Vec::new();
        let mut keep = |outs: Vec<Output>, persisted: &mut Vec<SignedVote>| {
            for o in outs {
                match o {
                    Output::Persist(v) => persisted.push(v),
                    Output::Journal(c) => journal.push(c),
                    _ => {}
                }
            }
        };
        let outs = c.start();
        keep(outs, &mut persisted);
        let outs = c.handle(from(Message::Certificate(n1.clone())));
        keep(outs, &mut persisted);
        let outs = c.handle(Input::Timer(TimerId {
            view: 2,
            kind: TimerKind::Leader,
        }));
        keep(outs, &mut persisted);
        let outs = c.handle(from(Message::Certificate(x(2))));
        keep(outs, &mut persisted);
        assert_eq!(c.view(), 3);
        assert_eq!(journal.len(), 2, "notarization and nullification journaled");

        // View 3's leader proposes on A (view 1), view 2 being nullified.
        let b3 = block(leader(3), 2, a.hash(), 3);
        let p3 = proposal(leader(3), 3, 1, b3.clone());
        let verifies = |outs: &[Output], hash: Hash32| {
            outs.iter()
                .any(|o| matches!(o, Output::Verify { block, .. } if block.hash() == hash))
        };

        // Restarted with its journal: verifies the proposal at once.
        let mut j = Core::restore(cfg.clone(), anchor(), persisted.clone(), Ed25519Verifier)
            .with_journal(journal.clone());
        j.start();
        let outs = j.handle(from(Message::Certificate(x(2))));
        assert!(j.view() >= 3);
        let outs = [outs, j.handle(msg(leader(3), p3.clone()))].concat();
        // Blocks are not journaled: the notarized parent is fetched by hash.
        assert!(outs
            .iter()
            .any(|o| matches!(o, Output::Fetch { hash, .. } if *hash == a.hash())));
        let outs = j.handle(Input::Fetched {
            block: a.clone(),
            certificate: n1.clone(),
        });
        assert!(verifies(&outs, b3.hash()), "{outs:?}");

        // Restarted without it (a lost journal, or a core restarted after
        // sync): stuck on view 1's notarization, so it asks peers...
        let mut r = Core::restore(cfg, anchor(), persisted, Ed25519Verifier);
        r.start();
        r.handle(from(Message::Certificate(x(2))));
        let outs = r.handle(msg(leader(3), p3));
        assert!(!verifies(&outs, b3.hash()));
        let outs = r.handle(Input::Timer(TimerId {
            view: 3,
            kind: TimerKind::Leader,
        }));
        let asked: Vec<u64> = outs
            .iter()
            .filter_map(|o| match o {
                Output::Resolve { views } => Some(views.clone()),
                _ => None,
            })
            .flatten()
            .collect();
        assert_eq!(asked, vec![1]);
        // ...and a peer's core answers from its memory.
        let answer = c.certificates_for(&asked);
        assert_eq!(answer, vec![n1.clone()]);
        r.handle(Input::Certificates(answer));
        // View 3 was nullified meanwhile; view 4's proposal on A verifies.
        r.handle(from(Message::Certificate(x(3))));
        assert_eq!(r.view(), 4);
        let b4 = block(leader(4), 2, a.hash(), 4);
        r.handle(msg(leader(4), proposal(leader(4), 4, 1, b4.clone())));
        let outs = r.handle(Input::Fetched {
            block: a,
            certificate: n1,
        });
        assert!(verifies(&outs, b4.hash()), "{outs:?}");
    }

    #[test]
    fn votes_of_another_epoch_never_count() {
        // The same four keys, another validator set (another epoch): its
        // votes sign another set hash, so they fail here as forgeries would.
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        let other_epoch = VoteDomain {
            validator_set_hash: Hash32([1; 32]),
            ..domain()
        };
        for k in &ks[1..] {
            let v = VoteData {
                kind: VoteKind::Nullify,
                view: 1,
                height: 0,
                block_hash: Hash32::ZERO,
            }
            .sign(&other_epoch, k);
            c.handle(msg(k, Message::Vote(v)));
        }
        assert_eq!(c.stats().dropped_bad_signature, 3);
        assert_eq!(c.view(), 1, "no nullification formed from them");
        let foreign = cert(VoteKind::Nullify, 1, 0, Hash32::ZERO, &ks[1..]);
        let foreign = Certificate {
            votes: foreign
                .votes
                .iter()
                .map(|(pk, _)| {
                    let k = ks.iter().find(|k| k.public() == *pk).unwrap();
                    let d = foreign.vote_data().signing_hash(&other_epoch);
                    (*pk, k.sign(&d.0))
                })
                .collect(),
            ..foreign
        };
        c.handle(msg(&ks[1], Message::Certificate(foreign)));
        assert_eq!(c.view(), 1);
        assert_eq!(c.stats().dropped_bad_signature, 4);
    }

    #[test]
    fn restored_core_never_signs_conflicting_votes() {
        let ks = keys(4);
        let cfg = Config::new(CHAIN, ks[0].clone(), set(&ks));
        let a = block(&ks[1], 1, GENESIS, 1);
        let b = block(&ks[1], 1, GENESIS, 2);
        // Before the crash: notarized A in view 1, nullified view 1.
        let persisted = vec![
            VoteData {
                kind: VoteKind::Notarize,
                view: 1,
                height: 1,
                block_hash: a.hash(),
            }
            .sign(&domain(), &ks[0]),
            VoteData {
                kind: VoteKind::Nullify,
                view: 1,
                height: 0,
                block_hash: Hash32::ZERO,
            }
            .sign(&domain(), &ks[0]),
        ];
        let mut c = Core::restore(cfg.clone(), anchor(), persisted, Ed25519Verifier);
        let outs = c.start();
        // The persisted votes are re-sent, not re-signed.
        assert!(own_votes(&outs).is_empty());
        assert_eq!(
            outs.iter()
                .filter(|o| matches!(o, Output::Broadcast(Message::Vote(_))))
                .count(),
            2
        );
        // The leader's other proposal B is never verified or voted for.
        let outs = c.handle(msg(&ks[1], proposal(&ks[1], 1, 0, b.clone())));
        assert!(own_votes(&outs).is_empty());
        // A notarized in view 1 (which we nullified): no finalize vote.
        // (The leader's A proposal now conflicts with B and is not counted:
        // our restored vote and two others notarize A.)
        c.handle(msg(
            &ks[2],
            vote(&ks[2], VoteKind::Notarize, 1, 1, a.hash()),
        ));
        let outs = c.handle(msg(
            &ks[3],
            vote(&ks[3], VoteKind::Notarize, 1, 1, a.hash()),
        ));
        assert_eq!(c.view(), 2);
        assert!(
            own_votes(&outs).is_empty(),
            "finalize after nullify: {outs:?}"
        );

        // Finalized view 2 before the crash: never nullify it afterwards.
        let persisted = vec![VoteData {
            kind: VoteKind::Finalize,
            view: 2,
            height: 1,
            block_hash: a.hash(),
        }
        .sign(&domain(), &ks[0])];
        let mut c = Core::restore(cfg, anchor(), persisted, Ed25519Verifier);
        c.start();
        assert_eq!(c.view(), 2);
        let outs = c.handle(Input::Timer(TimerId {
            view: 2,
            kind: TimerKind::Notarization,
        }));
        assert!(own_votes(&outs).is_empty());
        assert_eq!(c.stats().refused_to_sign, 0, "the core must not even try");
    }

    #[test]
    fn lagging_node_catches_up_by_fetching_ancestors() {
        let ks = keys(4);
        let mut c = core(&ks, 0);
        c.start();
        let b1 = block(&ks[1], 1, GENESIS, 1);
        let b2 = block(&ks[2], 2, b1.hash(), 2);
        let certify = |kind, view, b: &Block| {
            let data = VoteData {
                kind,
                view,
                height: b.header.height,
                block_hash: b.hash(),
            };
            let d = data.signing_hash(&domain());
            Certificate::from_votes(
                kind,
                view,
                data.height,
                data.block_hash,
                ks[1..].iter().map(|k| (k.public(), k.sign(&d.0))),
            )
        };
        let outs = c.handle(msg(
            &ks[1],
            Message::Certificate(certify(VoteKind::Finalize, 2, &b2)),
        ));
        assert_eq!(c.view(), 3);
        assert!(outs
            .iter()
            .any(|o| matches!(o, Output::Fetch { height: 2, .. })));
        let outs = c.handle(Input::Fetched {
            block: b2.clone(),
            certificate: certify(VoteKind::Finalize, 2, &b2),
        });
        assert!(outs
            .iter()
            .any(|o| matches!(o, Output::Fetch { height: 1, .. })));
        // An unrequested block is dropped.
        c.handle(Input::Fetched {
            block: b2.clone(),
            certificate: certify(VoteKind::Finalize, 2, &b2),
        });
        assert_eq!(c.stats().dropped_unrequested, 1);
        let outs = c.handle(Input::Fetched {
            block: b1.clone(),
            certificate: certify(VoteKind::Notarize, 1, &b1),
        });
        let emitted: Vec<(u64, VoteKind)> = outs
            .iter()
            .filter_map(|o| {
                if let Output::Finalized { block, certificate } = o {
                    Some((block.header.height, certificate.kind))
                } else {
                    None
                }
            })
            .collect();
        assert_eq!(
            emitted,
            vec![(1, VoteKind::Notarize), (2, VoteKind::Finalize)]
        );
    }
}
