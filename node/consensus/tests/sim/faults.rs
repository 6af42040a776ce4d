//! The harness's added faults and adversaries: one-directional drops,
//! delays aimed at the leader, twins routing, crashes between two outputs
//! of one `handle` call, a lying block fetcher, a leader proposing on a
//! stale parent, and a coalition voting for both halves of an equivocation.
//! Also the checks that go with them.

use std::collections::{BTreeMap, HashMap, HashSet};

use alliance_consensus::{Input, Message, Output, Proposal};
use alliance_protocol::{
    Block, BlockHeader, Certificate, Hash32, PublicKey, Signature, VoteData, VoteKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore};

use super::{
    app, scenario, Adversary, Event, SignedBy, Sim, LEFT_BEHIND_HEIGHTS, LIVENESS_HEIGHTS,
    LIVENESS_TIME_MS, STALL_MS,
};

/// State of the added faults for one run.
#[derive(Default)]
pub(super) struct Extra {
    /// How often each fault struck (reported per run).
    pub(super) counters: BTreeMap<&'static str, u64>,
    /// Nullify signers per view, over every vote any process signed or
    /// sent: what any node could possibly have counted.
    nullifiers: HashMap<u64, HashSet<PublicKey>>,
    /// Stale-parent proposals: block hash -> (claimed parent view, view).
    stale: HashMap<Hash32, (u64, u64)>,
    /// Views in which the coalition split the honest nodes.
    coalition_views: HashSet<u64>,
    /// Finalize signers per (height, block), over every valid finalize
    /// vote signed or put on the wire (alone or inside a certificate).
    finalizers: HashMap<(u64, Hash32), (u64, HashSet<PublicKey>)>,
    /// Height -> (block, view) that gathered a quorum of finalize votes.
    final_quorums: HashMap<u64, (Hash32, u64)>,
    /// (heights finalized by live honest nodes, summed; when that last
    /// grew), for the stall check.
    progress: (u64, u64),
    /// Blocks sent in a proposal to some other process (the fetcher can
    /// find those).
    wire_blocks: HashSet<Hash32>,
}

impl Sim {
    pub(super) fn count(&mut self, name: &'static str) {
        *self.x.counters.entry(name).or_default() += 1;
    }

    /// `scenario::CURRENT_LEADER` resolved now, or `node` itself.
    pub(super) fn resolve_node(&self, node: usize) -> usize {
        if node == scenario::CURRENT_LEADER {
            let leader = self.set.leader(self.max_honest_view()).key;
            self.set.index_of(&leader).unwrap_or(0)
        } else {
            node
        }
    }

    /// Learns from a message put on the wire: certificates for the block
    /// fetcher, nullify signers for the stale-parent check, finalize
    /// signers for the global finalization check.
    pub(super) fn observe(&mut self, msg: &Message) {
        match msg {
            Message::Proposal(p) => {
                self.x.wire_blocks.insert(p.block.hash());
            }
            Message::Vote(v) if v.data.kind == VoteKind::Finalize => {
                self.finalize_signed(v.data, &[(v.signer, v.signature)], true);
            }
            Message::Certificate(c) if c.kind == VoteKind::Finalize => {
                self.finalize_signed(c.vote_data(), &c.votes, true);
                self.certs.entry(c.block_hash).or_insert_with(|| c.clone());
            }
            Message::Certificate(c) if c.kind == VoteKind::Nullify => {
                let signers = self.x.nullifiers.entry(c.view).or_default();
                signers.extend(c.votes.iter().map(|(pk, _)| *pk));
            }
            Message::Certificate(c) => {
                self.certs.entry(c.block_hash).or_insert_with(|| c.clone());
            }
            Message::Vote(v) if v.data.kind == VoteKind::Nullify => {
                self.x
                    .nullifiers
                    .entry(v.data.view)
                    .or_default()
                    .insert(v.signer);
            }
            _ => {}
        }
    }

    /// Counts finalize signatures (checked when `verify`) over `data`. Two
    /// blocks of one height that each gather a quorum of finalize votes
    /// (in any views, from any signers) break safety, whichever nodes
    /// emit them: a client holding either certificate would accept it.
    fn finalize_signed(&mut self, data: VoteData, sigs: &[(PublicKey, Signature)], verify: bool) {
        use alliance_consensus::Verifier;
        let mut fresh = Vec::new();
        {
            let entry = self
                .x
                .finalizers
                .entry((data.height, data.block_hash))
                .or_insert_with(|| (data.view, HashSet::new()));
            for (pk, sig) in sigs {
                if !entry.1.contains(pk) && self.set.contains(pk) {
                    fresh.push((*pk, *sig));
                }
            }
        }
        if fresh.is_empty() {
            return;
        }
        for (pk, sig) in fresh {
            if verify
                && !self
                    .verifier
                    .verify(&self.domain.clone(), &data, &[(pk, sig)])
            {
                continue;
            }
            let entry = self
                .x
                .finalizers
                .get_mut(&(data.height, data.block_hash))
                .expect("inserted above");
            entry.1.insert(pk);
        }
        let (view, count) = {
            let entry = &self.x.finalizers[&(data.height, data.block_hash)];
            (entry.0, entry.1.len())
        };
        let quorum = if self.opts.mutation == Some(alliance_consensus::Mutation::WeakQuorum) {
            self.set.max_faulty() + 1
        } else {
            self.set.quorum()
        };
        if count < quorum {
            return;
        }
        match self.x.final_quorums.get(&data.height).copied() {
            None => {
                self.x.final_quorums.insert(data.height, (data.block_hash, view));
            }
            Some((hash, _)) if hash == data.block_hash => {}
            Some((hash, other_view)) => self.fail(
                "safety",
                format!(
                    "conflicting finalization quorums at height {}: {} (view {other_view}) and {} (view {view}) each have {quorum}+ finalize votes",
                    data.height,
                    super::short(&hash),
                    super::short(&data.block_hash)
                ),
            ),
        }
    }

    /// One-directional drop from validator `a` to validator `b` (before GST).
    pub(super) fn oneway_blocked(&mut self, a: usize, b: usize) -> bool {
        let blocked = match &self.scenario.oneway {
            Some((start, blocked)) => !self.gst_done && self.now >= *start && blocked[a][b],
            None => false,
        };
        if blocked {
            self.count("oneway_drops");
        }
        blocked
    }

    /// Delay range of `msg` from validator `a` to validator `b`: before
    /// GST, near the leader timeout for the current leader's traffic in
    /// `targeted_delay`, near the notarization timeout for notarize votes
    /// in `slow_votes`; the scenario's range otherwise.
    pub(super) fn delay_range(&mut self, a: usize, b: usize, msg: &Message) -> (u64, u64) {
        if self.scenario.slow_votes && !self.gst_done {
            if let Message::Vote(v) = msg {
                if v.data.kind == VoteKind::Notarize {
                    self.count("slow_votes");
                    let timeout = self.config(0).notarization_timeout_ms;
                    return (timeout - timeout / 4, timeout + timeout / 10);
                }
            }
        }
        if self.scenario.targeted_delay && !self.gst_done {
            let leader = self.resolve_node(scenario::CURRENT_LEADER);
            if a == leader || b == leader {
                self.count("targeted_delays");
                let timeout = self.config(0).leader_timeout_ms;
                return (timeout - timeout / 5, timeout + timeout / 20);
            }
        }
        self.scenario.delay
    }

    /// Processes a message from process `from` to process `to` reaches: a
    /// message to a twinned validator goes to one twin or both, by the
    /// sender's route.
    pub(super) fn route(&self, from: usize, to: usize) -> Vec<usize> {
        match &self.scenario.twin {
            Some((t, route)) if to == *t => {
                let twin = self.nodes.len() - 1;
                match route[self.nodes[from].validator] {
                    1 => vec![to],
                    2 => vec![twin],
                    _ => vec![to, twin],
                }
            }
            _ => vec![to],
        }
    }

    /// Executes the outputs of one `handle` call of process `i`. When a
    /// crash is armed (`crash_unsynced`), only a prefix of them runs and
    /// the node crashes: the "crash between a journal write and its fsync"
    /// the driver contract allows (every executed `Persist` is durable,
    /// nothing after the cut happened). Cuts inside a run of `Finalized`
    /// outputs are not made (the commit of a run is one store batch).
    pub(super) fn execute(&mut self, i: usize, mut outs: Vec<Output>) {
        let mut crash_for = None;
        if let (Some(down), false) = (self.nodes[i].cut, self.gst_done) {
            let is_final = |o: &Output| matches!(o, Output::Finalized { .. });
            let cuts: Vec<usize> = (1..outs.len())
                .filter(|&k| !(is_final(&outs[k - 1]) && is_final(&outs[k])))
                .collect();
            if !cuts.is_empty() {
                let after_persist: Vec<usize> = cuts
                    .iter()
                    .copied()
                    .filter(|&k| matches!(outs[k - 1], Output::Persist(_)))
                    .collect();
                let k = if !after_persist.is_empty() && self.rng.gen_bool(0.7) {
                    self.count("cuts_after_persist");
                    after_persist[self.rng.gen_range(0..after_persist.len())]
                } else {
                    cuts[self.rng.gen_range(0..cuts.len())]
                };
                if self.opts.trace {
                    let kind = |o: &Output| -> String {
                        let name = format!("{o:?}");
                        name.chars().take_while(|c| c.is_alphanumeric()).collect()
                    };
                    let done: Vec<String> = outs[..k].iter().map(kind).collect();
                    let lost: Vec<String> = outs[k..].iter().map(kind).collect();
                    self.log(|| {
                        format!("n{i} CRASH inside a handle call: ran {done:?}, lost {lost:?}")
                    });
                }
                self.count("unsynced_cuts");
                outs.truncate(k);
                self.nodes[i].cut = None;
                crash_for = Some(down);
            }
        }
        self.inspect(i, &outs);
        self.process(i, outs);
        if let Some(down) = crash_for {
            self.crash(i);
            let at = (self.now + down)
                .min(self.scenario.gst_ms)
                .max(self.now + 1);
            self.schedule(at, Event::Restart { node: i });
        }
    }

    /// Crashes process `i` (it restarts on a `Restart` event). Persisted
    /// votes survive (the driver fsyncs them before going on); the
    /// certificate journal need not be durable (`Output::Journal`), so a
    /// random suffix of it, up to 8 entries, is lost: the restarted core
    /// must resolve those certificates again.
    pub(super) fn crash(&mut self, i: usize) {
        self.nodes[i].core = None;
        self.nodes[i].incarnation += 1;
        let len = self.nodes[i].journal.len();
        let lost = self.rng.gen_range(0..=len.min(8));
        if lost > 0 {
            self.nodes[i].journal.truncate(len - lost);
            *self.x.counters.entry("journal_entries_lost").or_default() += lost as u64;
        }
    }

    /// Checks a process's outputs before they run: an honest node never
    /// notarizes a stale-parent proposal unless every view between its
    /// parent and it really was nullified (by a quorum of nullify votes
    /// someone signed).
    fn inspect(&mut self, i: usize, outs: &[Output]) {
        let honest = self.nodes[i].honest();
        for out in outs {
            match out {
                Output::Persist(v) if v.data.kind == VoteKind::Nullify => {
                    self.x
                        .nullifiers
                        .entry(v.data.view)
                        .or_default()
                        .insert(v.signer);
                }
                Output::Persist(v) if v.data.kind == VoteKind::Finalize => {
                    self.finalize_signed(v.data, &[(v.signer, v.signature)], false);
                }
                Output::Persist(v) if v.data.kind == VoteKind::Notarize && honest => {
                    let Some(&(parent_view, view)) = self.x.stale.get(&v.data.block_hash) else {
                        continue;
                    };
                    let q = self.set.quorum();
                    let skipped: Vec<u64> = (parent_view + 1..view)
                        .filter(|w| self.x.nullifiers.get(w).map_or(0, |s| s.len()) < q)
                        .collect();
                    if skipped.is_empty() {
                        self.count("stale_votes_legitimate");
                    } else if self.opts.mutation.is_none() {
                        self.fail(
                            "safety",
                            format!(
                                "honest n{i} notarized a stale-parent proposal of view {view} \
                                 (parent view {parent_view}) although views {skipped:?} were \
                                 never nullified"
                            ),
                        );
                    }
                }
                Output::Evidence(ev) => {
                    let accused = self.set.index_of(&ev.signer());
                    if honest
                        && accused.is_some_and(|a| self.nodes[a].adversary == Some(Adversary::Twin))
                    {
                        self.count("twin_evidence");
                    }
                }
                _ => {}
            }
        }
    }

    /// Answers a block fetch of process `i`: honestly as a peer would (a
    /// block some other process has: sent in a proposal, or in a peer's
    /// store; with a certificate seen on the wire or held by a peer), and
    /// in `lying_fetch` sometimes first by a Byzantine peer. A block that
    /// never left its builder cannot be fetched (n = 1 has no peers at
    /// all). Before GST the honest answer crosses a lossy network like any
    /// message: the core must ask again (the fetcher may give up).
    pub(super) fn answer_fetch(&mut self, i: usize, incarnation: u64, hash: Hash32, height: u64) {
        if self.scenario.lying_fetch > 0.0 && self.rng.gen_bool(self.scenario.lying_fetch) {
            self.lie_fetch(i, incarnation, hash, height);
        }
        let me = self.nodes[i].validator;
        let stored = |n: &super::Node| {
            let (b, c) = n.chain.get((height as usize).checked_sub(1)?)?;
            (b.hash() == hash).then(|| ((**b).clone(), c.clone()))
        };
        let block = self
            .x
            .wire_blocks
            .contains(&hash)
            .then(|| self.blocks.get(&hash).cloned())
            .flatten()
            .or_else(|| {
                let peers = self.nodes.iter().filter(|n| n.validator != me);
                peers.filter_map(stored).map(|(b, _)| b).next()
            })
            .or_else(|| {
                // A peer that voted for it persisted it (Output::PersistBlock).
                let mut peers = self.nodes.iter().filter(|n| n.validator != me);
                peers.find_map(|n| n.voted_index.get(&hash).map(|&k| n.voted[k].clone()))
            });
        let cert = self.certs.get(&hash).cloned().or_else(|| {
            self.nodes
                .iter()
                .filter(|n| n.validator != me)
                .filter_map(|n| {
                    let held = n.core.as_ref().and_then(|c| c.certified_block(&hash));
                    held.map(|(_, c)| c).or_else(|| stored(n).map(|(_, c)| c))
                })
                .next()
        });
        if !self.gst_done && self.rng.gen_bool(self.scenario.fetch_loss) {
            self.count("fetch_answers_lost");
            self.log(|| {
                format!(
                    "n{i} fetch answer for h{height} {} lost",
                    super::short(&hash)
                )
            });
            return;
        }
        if let (Some(block), Some(cert)) = (block, cert) {
            let input = Input::Fetched {
                block,
                certificate: cert,
            };
            let at = self.now + self.rng.gen_range(5..=40);
            self.schedule(
                at,
                Event::App {
                    node: i,
                    incarnation,
                    input,
                },
            );
        }
    }

    /// A certificate of `kind` over (view, height, hash) with every
    /// validator as signer and random signatures.
    fn forged_certificate(
        &mut self,
        kind: VoteKind,
        view: u64,
        height: u64,
        hash: Hash32,
    ) -> Certificate {
        let keys: Vec<PublicKey> = self.set.validators().iter().map(|v| v.key).collect();
        let votes: Vec<(PublicKey, Signature)> = keys
            .into_iter()
            .map(|k| {
                let mut sig = [0u8; 64];
                self.rng.fill_bytes(&mut sig);
                (k, Signature(sig))
            })
            .collect();
        Certificate::from_votes(kind, view, height, hash, votes)
    }

    /// A Byzantine peer's answer to a fetch of (hash, height).
    fn lie_fetch(&mut self, i: usize, incarnation: u64, hash: Hash32, height: u64) {
        self.count("fetch_lies");
        let real_block = self.blocks.get(&hash).cloned();
        let real_cert = self.certs.get(&hash).cloned();
        let view = real_cert
            .as_ref()
            .map_or(self.max_honest_view(), |c| c.view);
        let orphan = |sim: &mut Sim| {
            let mut parent = sim.genesis.header.clone();
            parent.height = height.saturating_sub(1);
            parent.prev_hash = sim.random_hash();
            app::build(&parent, sim.set.leader(view).key, sim.now, false)
        };
        let answer: Option<(Block, Certificate)> = match self.rng.gen_range(0..8) {
            // An orphan block of that height with the requested block's
            // certificate (or a forged one).
            0 => {
                let block = orphan(self);
                let cert = match real_cert {
                    Some(c) => c,
                    None => self.forged_certificate(VoteKind::Notarize, view, height, hash),
                };
                Some((block, cert))
            }
            // The requested block with a real certificate of another block
            // (its parent's, or a finalized one).
            1 => {
                let other = real_block
                    .as_ref()
                    .and_then(|b| self.certs.get(&b.header.prev_hash).cloned())
                    .or_else(|| self.nodes[i].chain.last().map(|(_, c)| c.clone()));
                real_block.zip(other)
            }
            // The requested block with a forged certificate of it.
            2 => {
                let cert = self.forged_certificate(VoteKind::Finalize, view, height, hash);
                real_block.map(|b| (b, cert))
            }
            // The requested block with a nullification.
            3 => {
                let cert = self.forged_certificate(VoteKind::Nullify, view, 0, Hash32::ZERO);
                real_block.map(|b| (b, cert))
            }
            // The requested block with its certificate re-labelled to the
            // next height (signatures no longer match).
            4 => real_block.zip(real_cert).map(|(b, mut c)| {
                c.height += 1;
                (b, c)
            }),
            // The requested block with too few of its signatures.
            5 => real_block.zip(real_cert).map(|(b, mut c)| {
                c.votes.truncate(self.set.quorum() - 1);
                (b, c)
            }),
            // A real certified block of another height (wrong height).
            6 => self.nodes[i]
                .chain
                .choose(&mut self.rng)
                .map(|(b, c)| ((**b).clone(), c.clone())),
            // Nothing at all.
            _ => None,
        };
        if let Some((block, certificate)) = answer {
            let at = self.now + self.rng.gen_range(1..=10);
            self.schedule(
                at,
                Event::App {
                    node: i,
                    incarnation,
                    input: Input::Fetched { block, certificate },
                },
            );
        }
    }

    /// The header of a block anyone built (or genesis).
    fn header_of(&self, hash: &Hash32) -> Option<BlockHeader> {
        if *hash == self.genesis_hash {
            return Some(self.genesis.header.clone());
        }
        self.blocks.get(hash).map(|b| b.header.clone())
    }

    /// The view block `hash` was notarized in, as node `i` or the wire
    /// knows it (0 for genesis).
    fn view_of(&self, i: usize, header: &BlockHeader) -> Option<u64> {
        if header.height == 0 {
            return Some(0);
        }
        let hash = header.hash();
        let chain = &self.nodes[i].chain;
        if let Some((b, c)) = chain.get(header.height as usize - 1) {
            if b.hash() == hash {
                return Some(c.view);
            }
        }
        self.certs.get(&hash).map(|c| c.view)
    }

    /// Stale-parent leader: replaces its proposal by one on an older
    /// notarized ancestor of the proper parent (down to its finalized
    /// anchor), claiming that ancestor's view as the parent view: the
    /// proper parent's view, notarized, lies in between. Withholds its
    /// finalize votes.
    pub(super) fn stale_parent_broadcast(&mut self, i: usize, msg: Message) {
        match msg {
            Message::Proposal(p) => match self.stale_proposal(i, &p) {
                Some(stale) => self.broadcast(i, stale),
                None => self.broadcast(i, Message::Proposal(p)),
            },
            Message::Vote(v) if v.data.kind == VoteKind::Finalize => {}
            msg => self.broadcast(i, msg),
        }
    }

    fn stale_proposal(&mut self, i: usize, p: &Proposal) -> Option<Message> {
        let parent = self.header_of(&p.block.header.prev_hash)?;
        let anchor_view = self.nodes[i].chain.last().map_or(0, |(_, c)| c.view);
        let mut candidates: Vec<(BlockHeader, u64)> = Vec::new();
        let mut next = parent;
        while next.height > 0 && candidates.len() < 4 {
            let header = self.header_of(&next.prev_hash)?;
            let view = self.view_of(i, &header)?;
            if view >= p.parent_view {
                return None;
            }
            candidates.push((header.clone(), view));
            if view <= anchor_view {
                break;
            }
            next = header;
        }
        let (header, parent_view) = candidates.choose(&mut self.rng)?.clone();
        let key = self.nodes[i].key.clone();
        let block = app::build(&header, key.public(), self.now, false);
        let hash = block.hash();
        self.blocks.insert(hash, block.clone());
        self.x.stale.insert(hash, (parent_view, p.view));
        self.count("stale_proposals");
        self.log(|| {
            format!(
                "n{i} STALE proposal v{} on pv{parent_view} (proper pv{}) h{}",
                p.view, p.parent_view, block.header.height
            )
        });
        let vote = VoteData {
            kind: VoteKind::Notarize,
            view: p.view,
            height: block.header.height,
            block_hash: hash,
        }
        .signed_by(&self.domain, &key);
        Some(Message::Proposal(Box::new(Proposal {
            view: p.view,
            parent_view,
            block,
            vote,
        })))
    }

    /// Coalition member: as leader, splits the honest nodes between two
    /// blocks, and every member votes notarize + finalize for each block to
    /// its half; members' own votes in split views are withheld.
    pub(super) fn coalition_broadcast(&mut self, i: usize, msg: Message) {
        match msg {
            Message::Proposal(p) => self.coalition_split(i, *p),
            Message::Vote(v)
                if v.data.kind != VoteKind::Nullify
                    && self.x.coalition_views.contains(&v.data.view) => {}
            msg => self.broadcast(i, msg),
        }
    }

    fn coalition_split(&mut self, i: usize, p: Proposal) {
        let view = p.view;
        let members: Vec<usize> = self
            .scenario
            .byzantine
            .iter()
            .filter(|(_, a)| *a == Adversary::Coalition)
            .map(|(j, _)| *j)
            .collect();
        let mut honest: Vec<usize> = (0..self.set.len())
            .filter(|j| !members.contains(j))
            .collect();
        honest.shuffle(&mut self.rng);
        let half = self.rng.gen_range(1..honest.len());
        let (side_a, side_b) = honest.split_at(half);
        let (side_a, side_b) = (side_a.to_vec(), side_b.to_vec());
        let mut other = p.block.clone();
        other.header.timestamp_ms += 1;
        self.blocks.insert(other.hash(), other.clone());
        let key = self.nodes[i].key.clone();
        let data = |b: &Block, kind| VoteData {
            kind,
            view,
            height: b.header.height,
            block_hash: b.hash(),
        };
        let proposal_b = Message::Proposal(Box::new(Proposal {
            view: p.view,
            parent_view: p.parent_view,
            block: other.clone(),
            vote: data(&other, VoteKind::Notarize).signed_by(&self.domain, &key),
        }));
        let block_a = p.block.clone();
        let proposal_a = Message::Proposal(Box::new(p));
        for &to in side_a.iter().chain(members.iter()) {
            self.send(i, to, proposal_a.clone());
        }
        for &to in &side_b {
            self.send(i, to, proposal_b.clone());
        }
        for &c in &members {
            let key = self.nodes[c].key.clone();
            for (side, block) in [(&side_a, &block_a), (&side_b, &other)] {
                for kind in [VoteKind::Notarize, VoteKind::Finalize] {
                    let vote = Message::Vote(data(block, kind).signed_by(&self.domain, &key));
                    for &to in side.iter() {
                        self.send(c, to, vote.clone());
                    }
                }
            }
        }
        self.x.coalition_views.insert(view);
        self.count("coalition_splits");
    }

    /// Some live honest node has finalized `LEFT_BEHIND_HEIGHTS` new
    /// heights since GST while another live honest node is short of
    /// `LIVENESS_HEIGHTS`.
    pub(super) fn left_behind(&self) -> bool {
        if !self.gst_done {
            return false;
        }
        let new = |i: usize| self.nodes[i].chain.len() as u64 - self.gst_heights[i];
        let live: Vec<usize> = self.honest_live();
        live.iter().any(|&i| new(i) >= LEFT_BEHIND_HEIGHTS)
            && live.iter().any(|&i| new(i) < LIVENESS_HEIGHTS)
    }

    /// No live honest node has finalized anything for `STALL_MS` after
    /// GST.
    pub(super) fn stalled(&mut self) -> bool {
        if !self.gst_done {
            return false;
        }
        let total: u64 = self
            .honest_live()
            .iter()
            .map(|&i| self.nodes[i].chain.len() as u64)
            .sum();
        if total != self.x.progress.0 || self.x.progress.1 < self.scenario.gst_ms {
            self.x.progress = (total, self.now.max(self.scenario.gst_ms));
        }
        self.now >= self.x.progress.1 + STALL_MS
    }

    /// Why liveness was not reached: per node, up or not, height now and at
    /// GST, view.
    pub(super) fn liveness_report(&self) -> String {
        let nodes: Vec<String> = self
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let role = match (n.adversary, n.gone) {
                    (Some(a), _) => format!("{a:?}"),
                    (None, true) => "gone".to_string(),
                    (None, false) => "honest".to_string(),
                };
                let at_gst = self.gst_heights.get(i).copied().unwrap_or(0);
                match n.core.as_ref() {
                    Some(c) => format!(
                        "n{i} {role} h{} (GST h{at_gst}) v{}",
                        n.chain.len(),
                        c.view()
                    ),
                    None => format!("n{i} {role} down h{} (GST h{at_gst})", n.chain.len()),
                }
            })
            .collect();
        let why = if self.left_behind() {
            format!("left behind while another finalized {LEFT_BEHIND_HEIGHTS} new heights")
        } else if self.now >= self.x.progress.1 + STALL_MS && self.x.progress.1 > 0 {
            format!("no honest node finalized anything for {STALL_MS} ms")
        } else {
            format!("within {LIVENESS_TIME_MS} ms after GST")
        };
        format!(
            "fewer than {LIVENESS_HEIGHTS} new heights at a live honest node, {why} \
             (t={} ms, GST view {}, {} steps): {}",
            self.now,
            self.gst_view,
            self.steps,
            nodes.join(", ")
        )
    }
}
