//! Deterministic simulation: n cores on a simulated network, every random
//! choice from ONE seeded ChaCha generator, so a seed replays exactly.

#![allow(dead_code)]

pub mod app;
mod faults;
pub mod scenario;
pub mod sign;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use alliance_consensus::{
    Anchor, Config, Core, Input, Message, Output, Proposal, TimerId, Verifier,
};
use alliance_protocol::certificate::Equivocation;
use alliance_protocol::{
    Block, BlockHeader, Certificate, CertificateError, Hash32, MerchantId, PublicKey, Signature,
    SignedVote, Validator, ValidatorSet, VoteData, VoteDomain, VoteKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use scenario::{Adversary, Scenario};
pub use sign::{SignedBy, SimKey, SimVerifier};

/// Chain id of every simulated chain.
pub const CHAIN: &str = "sim-chain";
/// New heights every live honest node must finalize after GST.
pub const LIVENESS_HEIGHTS: u64 = 20;
/// Simulated time allowed after GST for every live honest node to finalize
/// `LIVENESS_HEIGHTS` new heights before the run counts as a liveness
/// failure.
pub const LIVENESS_TIME_MS: u64 = 60_000;
/// Most views after GST before `LIVENESS_HEIGHTS` new heights must be
/// finalized everywhere.
pub const LIVENESS_VIEWS_MAX: u64 = 400;
/// A run stops as a liveness failure once some live honest node has
/// finalized this many new heights since GST while another has not reached
/// `LIVENESS_HEIGHTS` (it was left behind; running to the time limit would
/// only cost time).
pub const LEFT_BEHIND_HEIGHTS: u64 = 10 * LIVENESS_HEIGHTS;
/// A run stops as a liveness failure once no live honest node has
/// finalized anything for this long after GST (passing runs reach all
/// `LIVENESS_HEIGHTS` in a few seconds).
pub const STALL_MS: u64 = 15_000;
/// Events per run before giving up (a livelock guard).
pub const STEPS_MAX: u64 = 3_000_000;

/// What a run is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep a step log (replays; failures are re-run with it on).
    pub trace: bool,
    /// Run every core with this mutation (test-only fault injection).
    pub mutation: Option<alliance_consensus::Mutation>,
    /// Run this scenario only (a name of `scenario::SCENARIOS`).
    pub scenario: Option<&'static str>,
    /// Run with this many validators instead of the seed's.
    pub n: Option<usize>,
}

/// A successful run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// Validators.
    pub n: usize,
    /// Views between GST and every live honest node having finalized
    /// `LIVENESS_HEIGHTS` new heights.
    pub liveness_views: u64,
    /// The same bound in simulated milliseconds.
    pub liveness_ms: u64,
    /// How often each fault of the scenario struck (lies told, cuts made,
    /// stale proposals sent...): shows a scenario is not vacuous.
    pub counters: BTreeMap<&'static str, u64>,
    /// Highest height finalized.
    pub height: u64,
    /// Events processed.
    pub steps: u64,
    /// Honest nodes' counters, summed.
    pub stats: alliance_consensus::Stats,
    /// The step log (empty unless tracing).
    pub trace: Vec<String>,
}

/// Why a run failed.
#[derive(Clone, Debug)]
pub struct Failure {
    /// "safety", "liveness" or "invariant".
    pub kind: &'static str,
    /// What went wrong.
    pub message: String,
    /// Scenario name.
    pub scenario: String,
    /// Validators.
    pub n: usize,
    /// The step log (empty unless tracing).
    pub trace: Vec<String>,
}

#[derive(Debug)]
enum Event {
    /// A resolver request (Output::Resolve) arriving at `to`; the answer
    /// goes back to `from` as Input::Certificates.
    Resolve {
        to: usize,
        from: usize,
        incarnation: u64,
        views: Vec<u64>,
    },
    Deliver {
        to: usize,
        from: PublicKey,
        msg: Message,
    },
    Timer {
        node: usize,
        incarnation: u64,
        id: TimerId,
    },
    App {
        node: usize,
        incarnation: u64,
        input: Input,
    },
    Crash {
        node: usize,
    },
    Restart {
        node: usize,
    },
    Gst,
    GarbageTick {
        node: usize,
    },
    /// Crash `node` for good (resolving `scenario::CURRENT_LEADER`).
    CrashForGood {
        node: usize,
    },
    /// Arm a crash between two outputs of the node's next `handle` call.
    ArmCut {
        node: usize,
        down_ms: u64,
    },
}

struct Node {
    key: SimKey,
    adversary: Option<Adversary>,
    core: Option<Core<SimVerifier, SimKey>>,
    incarnation: u64,
    persisted: Vec<SignedVote>,
    /// Certificates journaled by the core (Output::Journal), replayed at boot.
    journal: Vec<Certificate>,
    /// Blocks persisted before a vote for them (Output::PersistBlock):
    /// durable, given back at boot, and served to peers' fetches.
    voted: Vec<Block>,
    /// Hash -> index in `voted`: a node votes for thousands of blocks in a
    /// run, and hashing every one of them on each persist or fetch was
    /// most of the simulation's time.
    voted_index: HashMap<Hash32, usize>,
    /// Finalized blocks with their certificates, index = height - 1.
    chain: Vec<(Arc<Block>, Certificate)>,
    /// Hash of the last block of `chain` (genesis while it is empty).
    tip: Hash32,
    /// The validator whose key this process holds (its own index, except
    /// for a twin).
    validator: usize,
    /// Armed crash between two outputs: restart after this many ms.
    cut: Option<u64>,
    /// Crashed for good: not expected to be live.
    gone: bool,
}

impl Node {
    fn honest(&self) -> bool {
        self.adversary.is_none()
    }
}

/// One simulated run.
pub struct Sim {
    /// What every vote of the run signs (one validator set per run).
    domain: VoteDomain,
    scenario: Scenario,
    opts: Options,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    /// Events by (time, sequence number). Boxed: an event can hold a whole
    /// block, and moving those inside the map's nodes was a tenth of a run.
    queue: BTreeMap<(u64, u64), Box<Event>>,
    nodes: Vec<Node>,
    set: ValidatorSet,
    genesis: Block,
    genesis_hash: Hash32,
    verifier: SimVerifier,
    /// A key outside the validator set (the garbage adversary signs with
    /// it; its signatures are valid, its votes not a validator's).
    outsider: SimKey,
    /// Every block anyone built, and a certificate per block seen on the
    /// wire: what the block fetcher can find.
    blocks: HashMap<Hash32, Block>,
    certs: HashMap<Hash32, Certificate>,
    /// Height -> hash finalized by some honest node.
    finalized: BTreeMap<u64, Hash32>,
    gst_done: bool,
    gst_heights: Vec<u64>,
    gst_view: u64,
    steps: u64,
    trace: Vec<String>,
    failure: Option<(&'static str, String)>,
    undecodable: u64,
    /// State of the added faults and adversaries (see `faults.rs`).
    x: faults::Extra,
}

fn short(h: &Hash32) -> String {
    h.to_hex()[..6].to_string()
}

fn describe(msg: &Message) -> String {
    match msg {
        Message::Proposal(p) => format!(
            "Proposal(v{} pv{} h{} {})",
            p.view,
            p.parent_view,
            p.block.header.height,
            short(&p.block.hash())
        ),
        Message::Vote(v) => format!(
            "{:?}(v{} h{} {})",
            v.data.kind,
            v.data.view,
            v.data.height,
            short(&v.data.block_hash)
        ),
        Message::Certificate(c) => format!(
            "Cert{:?}(v{} h{} {} x{})",
            c.kind,
            c.view,
            c.height,
            short(&c.block_hash),
            c.votes.len()
        ),
    }
}

impl Sim {
    /// Builds the run for `seed`.
    pub fn new(seed: u64, opts: Options) -> Sim {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let scenario = Scenario::for_seed(seed, &mut rng, opts.scenario, opts.n);
        let keys: Vec<SimKey> = (0..scenario.n)
            .map(|i| SimKey::from_label(&format!("sim/validator/{i}")))
            .collect();
        let set = ValidatorSet::new(
            keys.iter()
                .enumerate()
                .map(|(i, k)| Validator {
                    id: MerchantId::new(format!("m{i:02}")).expect("valid id"),
                    key: k.public(),
                })
                .collect(),
        )
        .expect("valid set");
        let genesis = app::genesis(set.hash());
        let genesis_hash = genesis.hash();
        let outsider = SimKey::from_label("sim/outsider");
        let keys_of_run = keys.clone();
        // Twins: one more process with the twinned validator's key.
        let twin_key = scenario.twin.as_ref().map(|(t, _)| (*t, keys[*t].clone()));
        let mut nodes: Vec<Node> = keys
            .into_iter()
            .chain(twin_key.iter().map(|(_, k)| k.clone()))
            .enumerate()
            .map(|(i, key)| Node {
                key,
                adversary: scenario
                    .byzantine
                    .iter()
                    .find(|(j, _)| *j == i)
                    .map(|(_, a)| *a),
                core: None,
                incarnation: 0,
                persisted: Vec::new(),
                journal: Vec::new(),
                voted: Vec::new(),
                voted_index: HashMap::new(),
                chain: Vec::new(),
                tip: genesis_hash,
                validator: i,
                cut: None,
                gone: false,
            })
            .collect();
        if let Some((t, _)) = twin_key {
            let twin = nodes.last_mut().expect("the twin process");
            twin.validator = t;
            twin.adversary = Some(Adversary::Twin);
        }
        Sim {
            domain: VoteDomain::new(CHAIN, &set),
            scenario,
            opts,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            set,
            genesis_hash,
            genesis,
            verifier: SimVerifier::new(keys_of_run.into_iter().chain([outsider.clone()]).collect()),
            outsider,
            blocks: HashMap::new(),
            certs: HashMap::new(),
            finalized: BTreeMap::new(),
            gst_done: false,
            gst_heights: Vec::new(),
            gst_view: 0,
            steps: 0,
            trace: Vec::new(),
            failure: None,
            undecodable: 0,
            x: faults::Extra::default(),
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.opts.trace {
            let l = line();
            self.trace.push(format!("t={} {}", self.now, l));
        }
    }

    fn schedule(&mut self, at: u64, ev: Event) {
        self.seq += 1;
        self.queue.insert((at, self.seq), Box::new(ev));
    }

    fn fail(&mut self, kind: &'static str, message: String) {
        // A mutated core double-signs by design (finalize after nullify):
        // the mutation tests look past that for a broken finalization.
        if self.opts.mutation.is_some() && message.contains("of equivocation") {
            self.count("mutated_equivocations");
            return;
        }
        if self.failure.is_none() {
            self.log(|| format!("FAILURE {kind}: {message}"));
            self.failure = Some((kind, message));
        }
    }

    fn config(&self, i: usize) -> Config<SimKey> {
        let mut c = Config::new(CHAIN, self.nodes[i].key.clone(), self.set.clone());
        c.leader_timeout_ms = 200;
        c.notarization_timeout_ms = 400;
        c.retry_ms = 300;
        c
    }

    fn anchor(&self, i: usize) -> Anchor {
        match self.nodes[i].chain.last() {
            Some((b, c)) => Anchor {
                view: c.view,
                height: b.header.height,
                hash: self.nodes[i].tip,
            },
            None => Anchor {
                view: 0,
                height: 0,
                hash: self.genesis_hash,
            },
        }
    }

    fn boot(&mut self, i: usize) {
        let cfg = self.config(i);
        let anchor = self.anchor(i);
        let mut core = Core::restore(
            cfg,
            anchor,
            self.nodes[i].persisted.clone(),
            self.verifier.clone(),
        )
        .with_journal(self.nodes[i].journal.clone())
        .with_blocks(self.nodes[i].voted.clone());
        if let Some(mutation) = self.opts.mutation {
            core.set_mutation(mutation);
        }
        let outs = core.start();
        self.nodes[i].core = Some(core);
        self.log(|| format!("n{i} boot anchor h{} v{}", anchor.height, anchor.view));
        self.process(i, outs);
    }

    fn honest_live(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].honest() && self.nodes[i].core.is_some())
            .collect()
    }

    fn max_honest_view(&self) -> u64 {
        self.nodes
            .iter()
            .filter(|n| n.honest())
            .filter_map(|n| n.core.as_ref().map(|c| c.view()))
            .max()
            .unwrap_or(0)
    }

    /// Whether processes `a` and `b` are cut off from each other by the
    /// scenario's partition (by validator: a twin shares its side).
    fn partitioned(&self, a: usize, b: usize) -> bool {
        let (a, b) = (self.nodes[a].validator, self.nodes[b].validator);
        match &self.scenario.partition {
            Some((start, end, groups)) if self.now >= *start && self.now < *end => {
                groups[a] != groups[b]
            }
            _ => false,
        }
    }

    /// Sends over the simulated network from process `from` to process
    /// `to` (a twinned validator's messages are routed to its processes by
    /// the twin route): loss (before GST), partitions, one-directional
    /// drops, random or targeted delay (reordering), duplication.
    fn send(&mut self, from: usize, to: usize, msg: Message) {
        let (vf, vt) = (self.nodes[from].validator, self.nodes[to].validator);
        if vf == vt {
            return;
        }
        // What was sent exists for the fetcher and the checks, delivered or
        // not.
        self.observe(&msg);
        if self.partitioned(from, to) || self.oneway_blocked(vf, vt) {
            return;
        }
        if !self.gst_done && self.rng.gen_bool(self.scenario.loss) {
            return;
        }
        let (lo, hi) = self.delay_range(vf, vt, &msg);
        let copies = if self.rng.gen_bool(self.scenario.dup) {
            2
        } else {
            1
        };
        let from_key = self.nodes[from].key.public();
        for to in self.route(from, to) {
            for _ in 0..copies {
                let at = self.now + self.rng.gen_range(lo..=hi);
                self.schedule(
                    at,
                    Event::Deliver {
                        to,
                        from: from_key,
                        msg: msg.clone(),
                    },
                );
            }
        }
    }

    /// Sends to every other validator (and so to both twins).
    fn broadcast(&mut self, from: usize, msg: Message) {
        for to in 0..self.set.len() {
            self.send(from, to, msg.clone());
        }
    }

    /// Sends `a` to a random half of the peers and `b` to the others.
    fn split_send(&mut self, from: usize, a: Message, b: Message) {
        let me = self.nodes[from].validator;
        let mut peers: Vec<usize> = (0..self.set.len()).filter(|&j| j != me).collect();
        peers.shuffle(&mut self.rng);
        let half = peers.len() / 2;
        for (k, to) in peers.into_iter().enumerate() {
            self.send(from, to, if k < half { a.clone() } else { b.clone() });
        }
    }

    fn random_hash(&mut self) -> Hash32 {
        let mut h = [0u8; 32];
        self.rng.fill_bytes(&mut h);
        Hash32(h)
    }

    /// A Byzantine node's broadcast, bent by its adversary.
    fn byzantine_broadcast(&mut self, i: usize, adv: Adversary, msg: Message) {
        let key = self.nodes[i].key.clone();
        match (adv, &msg) {
            (Adversary::Equivocator, Message::Proposal(p)) => {
                let mut other = p.block.clone();
                other.header.timestamp_ms += 1;
                let hash = other.hash();
                self.blocks.insert(hash, other.clone());
                let vote = VoteData {
                    kind: VoteKind::Notarize,
                    view: p.view,
                    height: other.header.height,
                    block_hash: hash,
                }
                .signed_by(&self.domain, &key);
                let second = Message::Proposal(Box::new(Proposal {
                    view: p.view,
                    parent_view: p.parent_view,
                    block: other,
                    vote,
                }));
                self.split_send(i, msg, second);
            }
            (Adversary::DoubleVoter, Message::Vote(v)) => {
                let d = v.data;
                let other = match d.kind {
                    VoteKind::Notarize => VoteData {
                        block_hash: self.random_hash(),
                        ..d
                    },
                    VoteKind::Finalize => VoteData {
                        kind: VoteKind::Nullify,
                        height: 0,
                        block_hash: Hash32::ZERO,
                        ..d
                    },
                    VoteKind::Nullify => VoteData {
                        kind: VoteKind::Finalize,
                        height: 1,
                        block_hash: self.random_hash(),
                        ..d
                    },
                };
                let second = Message::Vote(other.signed_by(&self.domain, &key));
                self.split_send(i, msg, second);
            }
            (Adversary::StaleParent, _) => self.stale_parent_broadcast(i, msg),
            (Adversary::Coalition, _) => self.coalition_broadcast(i, msg),
            _ => self.broadcast(i, msg),
        }
    }

    fn parent_header(&self, i: usize, ancestry: &[Arc<Block>]) -> BlockHeader {
        match ancestry.last() {
            Some(b) => b.header.clone(),
            None => self.nodes[i]
                .chain
                .last()
                .map_or(self.genesis.header.clone(), |(b, _)| b.header.clone()),
        }
    }

    fn app_delay(&mut self) -> u64 {
        self.now + self.rng.gen_range(1..=5)
    }

    /// Executes a node's outputs in order, checking every finalization.
    fn process(&mut self, i: usize, outs: Vec<Output>) {
        let mut emitted = false;
        let incarnation = self.nodes[i].incarnation;
        for out in outs {
            match out {
                Output::PersistBlock(block) => {
                    let node = &mut self.nodes[i];
                    if let std::collections::hash_map::Entry::Vacant(e) =
                        node.voted_index.entry(block.hash())
                    {
                        e.insert(node.voted.len());
                        node.voted.push((*block).clone());
                    }
                }
                Output::Persist(v) => {
                    if v.signer != self.nodes[i].key.public() {
                        self.fail(
                            "invariant",
                            format!("n{i} persisted a vote of another signer"),
                        );
                    }
                    self.nodes[i].persisted.push(v);
                }
                Output::Broadcast(msg) => {
                    self.log(|| format!("n{i} broadcast {}", describe(&msg)));
                    match self.nodes[i].adversary {
                        Some(adv) => self.byzantine_broadcast(i, adv, msg),
                        None => self.broadcast(i, msg),
                    }
                }
                Output::Send { to, message } => {
                    if let Some(j) = self.set.index_of(&to) {
                        self.log(|| format!("n{i} send n{j} {}", describe(&message)));
                        self.send(i, j, message);
                    }
                }
                Output::SetTimer { id, after_ms } => {
                    self.schedule(
                        self.now + after_ms,
                        Event::Timer {
                            node: i,
                            incarnation,
                            id,
                        },
                    );
                }
                Output::Propose {
                    view,
                    parent_height,
                    parent_hash,
                    ancestry,
                } => {
                    let parent = self.parent_header(i, &ancestry);
                    if parent.hash() != parent_hash || parent.height != parent_height {
                        self.fail(
                            "invariant",
                            format!(
                                "n{i} asked to build on a parent that is not the ancestry's tip"
                            ),
                        );
                        continue;
                    }
                    let invalid = self.nodes[i].adversary == Some(Adversary::InvalidProposer);
                    let block = app::build(&parent, self.nodes[i].key.public(), self.now, invalid);
                    self.blocks.insert(block.hash(), block.clone());
                    self.log(|| {
                        format!(
                            "n{i} build v{view} h{} {}",
                            block.header.height,
                            short(&block.hash())
                        )
                    });
                    let at = self.app_delay();
                    self.schedule(
                        at,
                        Event::App {
                            node: i,
                            incarnation,
                            input: Input::Built { view, block },
                        },
                    );
                }
                Output::Verify {
                    view,
                    block,
                    ancestry,
                } => {
                    let parent = self.parent_header(i, &ancestry);
                    let valid = app::valid(&parent, &block);
                    self.log(|| format!("n{i} verify v{view} {} -> {valid}", short(&block.hash())));
                    let at = self.app_delay();
                    self.schedule(
                        at,
                        Event::App {
                            node: i,
                            incarnation,
                            input: Input::Verified {
                                view,
                                block_hash: block.hash(),
                                valid,
                            },
                        },
                    );
                }
                Output::Journal(cert) => {
                    let journal = &mut self.nodes[i].journal;
                    if !journal
                        .iter()
                        .any(|c| c.view == cert.view && c.kind == cert.kind)
                    {
                        journal.push(cert);
                    }
                }
                Output::Resolve { views } => {
                    // Ask one random peer, through the simulated network.
                    let n = self.nodes.len();
                    if n > 1 {
                        let to = (i + self.rng.gen_range(1..n)) % n;
                        self.log(|| format!("n{i} resolve {views:?} from n{to}"));
                        if !self.partitioned(i, to)
                            && (self.gst_done || !self.rng.gen_bool(self.scenario.loss))
                        {
                            let (lo, hi) = self.scenario.delay;
                            let at = self.now + self.rng.gen_range(lo..=hi);
                            self.schedule(
                                at,
                                Event::Resolve {
                                    to,
                                    from: i,
                                    incarnation,
                                    views,
                                },
                            );
                        }
                    }
                }
                Output::Fetch { hash, height } => {
                    self.log(|| format!("n{i} fetch h{height} {}", short(&hash)));
                    self.answer_fetch(i, incarnation, hash, height);
                }
                Output::Finalized { block, certificate } => {
                    let hash = block.hash();
                    self.log(|| {
                        format!(
                            "n{i} FINALIZED h{} {} by {:?} v{}",
                            block.header.height,
                            short(&hash),
                            certificate.kind,
                            certificate.view
                        )
                    });
                    self.certs
                        .entry(hash)
                        .or_insert_with(|| certificate.clone());
                    self.check_finalized(i, block, hash, certificate);
                    emitted = true;
                }
                Output::Evidence(ev) => {
                    let accused = self.set.index_of(&ev.signer());
                    self.log(|| format!("n{i} evidence against n{accused:?}"));
                    if !self.evidence_verifies(&ev) {
                        self.fail(
                            "invariant",
                            format!("n{i} emitted evidence that does not verify"),
                        );
                    } else if self.nodes[i].honest()
                        && accused.is_some_and(|a| self.nodes[a].honest())
                    {
                        self.fail(
                            "safety",
                            format!("honest n{i} accused honest n{accused:?} of equivocation"),
                        );
                    }
                }
            }
        }
        if emitted && self.nodes[i].honest() {
            if let Some((_, c)) = self.nodes[i].chain.last() {
                if c.kind != VoteKind::Finalize {
                    self.fail(
                        "safety",
                        format!("n{i} emitted a run of blocks not ending in a finalization"),
                    );
                }
            }
        }
    }

    /// `Certificate::verify` (the protocol's rule: a block certificate of
    /// this block and height, signers distinct validators in canonical
    /// order, a quorum of them, every signature valid) with the signatures
    /// checked by the run's verifier. Under the `WeakQuorum` mutation the
    /// signatures of a certificate short of the quorum are checked too.
    fn verify_certificate(
        &mut self,
        cert: &Certificate,
        height: u64,
        hash: &Hash32,
    ) -> Result<(), CertificateError> {
        if cert.kind == VoteKind::Nullify {
            return Err(CertificateError::WrongKind);
        }
        if cert.height != height || cert.block_hash != *hash {
            return Err(CertificateError::WrongBlock {
                height,
                hash: *hash,
                got_height: cert.height,
                got_hash: cert.block_hash,
            });
        }
        let structure = cert.check_signers(&self.set);
        match &structure {
            Err(CertificateError::TooFewSigners { .. }) => {}
            Err(_) => return structure,
            Ok(()) => {}
        }
        let data = cert.vote_data();
        for &(signer, sig) in &cert.votes {
            if !self.verifier.verify(&self.domain, &data, &[(signer, sig)]) {
                return Err(CertificateError::BadSignature(signer));
            }
        }
        structure
    }

    /// `Equivocation::verify` with the run's signature scheme: one signer,
    /// a validator, two conflicting votes, both signatures valid.
    fn evidence_verifies(&self, ev: &Equivocation) -> bool {
        ev.first.signer == ev.second.signer
            && self.set.contains(&ev.first.signer)
            && Equivocation::conflicts(&ev.first.data, &ev.second.data)
            && self.verifier.check(&self.domain, &ev.first)
            && self.verifier.check(&self.domain, &ev.second)
    }

    /// Checks block `hash` finalized by process `i`, and appends it to the
    /// process's chain.
    fn check_finalized(&mut self, i: usize, block: Arc<Block>, hash: Hash32, cert: Certificate) {
        let height = block.header.height;
        let node = &self.nodes[i];
        let expected_height = node.chain.len() as u64 + 1;
        let prev = node.tip;
        let honest = node.honest();
        if height != expected_height || block.header.prev_hash != prev {
            self.fail(
                "safety",
                format!(
                    "n{i} finalized h{height} after h{}: gap or broken hash link",
                    expected_height - 1
                ),
            );
        }
        if cert.block_hash != hash || cert.height != height {
            self.fail(
                "safety",
                format!("n{i} finalized h{height} with a certificate of another block"),
            );
        }
        match self.verify_certificate(&cert, height, &hash) {
            Ok(()) => {}
            Err(CertificateError::TooFewSigners { got, .. })
                if self.opts.mutation == Some(alliance_consensus::Mutation::WeakQuorum)
                    && got > self.set.max_faulty() => {}
            Err(e) => self.fail(
                "safety",
                format!("n{i} finalized h{height} with an invalid certificate: {e}"),
            ),
        }
        if honest {
            match self.finalized.get(&height) {
                Some(other) if *other != hash => {
                    let msg = format!("conflicting finalization at height {height}: n{i} finalized {} but {} was finalized before", short(&hash), short(other));
                    self.fail("safety", msg);
                }
                Some(_) => {}
                None => {
                    self.finalized.insert(height, hash);
                }
            }
        }
        self.nodes[i].chain.push((block, cert));
        self.nodes[i].tip = hash;
    }

    /// Sends one piece of garbage from Byzantine node `i`.
    fn garbage(&mut self, i: usize) {
        let n = self.nodes.len();
        let to = self.rng.gen_range(0..n);
        let key = self.nodes[i].key.clone();
        let view = self.max_honest_view().max(1) + self.rng.gen_range(0..3);
        let h = self.random_hash();
        let notarize = VoteData {
            kind: VoteKind::Notarize,
            view,
            height: self.rng.gen_range(1..20),
            block_hash: h,
        };
        let outsider = self.outsider.clone();
        let msg = match self.rng.gen_range(0..9) {
            0 => {
                let len = self.rng.gen_range(0..200);
                let mut bytes = vec![0u8; len];
                self.rng.fill_bytes(&mut bytes);
                match Message::from_bytes(&bytes) {
                    Ok(m) => m,
                    Err(_) => {
                        self.undecodable += 1;
                        return;
                    }
                }
            }
            1 => {
                let mut v = notarize.signed_by(&self.domain, &key);
                self.rng.fill_bytes(&mut v.signature.0);
                Message::Vote(v)
            }
            2 => Message::Vote(notarize.signed_by(&self.domain, &outsider)),
            3 => Message::Vote(notarize.signed_by(
                &VoteDomain {
                    chain_id: "another-chain".into(),
                    ..self.domain.clone()
                },
                &key,
            )),
            4 => Message::Vote(
                VoteData {
                    kind: VoteKind::Nullify,
                    height: 0,
                    ..notarize
                }
                .signed_by(&self.domain, &key),
            ),
            5 => {
                // A proposal from a validator that does not lead the view.
                let parent = self.genesis.header.clone();
                let block = app::build(&parent, key.public(), self.now, false);
                let vote = VoteData {
                    kind: VoteKind::Notarize,
                    view,
                    height: 1,
                    block_hash: block.hash(),
                }
                .signed_by(&self.domain, &key);
                Message::Proposal(Box::new(Proposal {
                    view,
                    parent_view: 0,
                    block,
                    vote,
                }))
            }
            6 => {
                // A notarize signature in a one-vote finalization.
                let sig = notarize.signed_by(&self.domain, &key).signature;
                Message::Certificate(Certificate::from_votes(
                    VoteKind::Finalize,
                    view,
                    notarize.height,
                    h,
                    [(key.public(), sig)],
                ))
            }
            7 => {
                let mut sig = [0u8; 64];
                self.rng.fill_bytes(&mut sig);
                let votes = self
                    .set
                    .validators()
                    .iter()
                    .map(|v| (v.key, Signature(sig)))
                    .collect::<Vec<_>>();
                Message::Certificate(Certificate::from_votes(
                    VoteKind::Nullify,
                    view,
                    0,
                    Hash32::ZERO,
                    votes,
                ))
            }
            _ => Message::Vote(
                VoteData {
                    view: view + 10_000,
                    ..notarize
                }
                .signed_by(&self.domain, &key),
            ),
        };
        // Sometimes pretend to be a non-member at the transport level.
        let from = if self.rng.gen_bool(0.1) {
            outsider.public()
        } else {
            key.public()
        };
        self.observe(&msg);
        let at = self.now + self.rng.gen_range(1..=20);
        self.schedule(at, Event::Deliver { to, from, msg });
    }

    fn step(&mut self, ev: Event) {
        match ev {
            Event::Deliver { to, from, msg } => {
                if self.nodes[to].core.is_none() {
                    return;
                }
                let sender = self.set.index_of(&from);
                self.log(|| format!("n{to} <- n{sender:?} {}", describe(&msg)));
                let outs = self.nodes[to]
                    .core
                    .as_mut()
                    .map(|c| c.handle(Input::Message { from, message: msg }))
                    .unwrap_or_default();
                self.execute(to, outs);
            }
            Event::Resolve {
                to,
                from,
                incarnation,
                views,
            } => {
                let Some(core) = self.nodes[to].core.as_ref() else {
                    return;
                };
                let certs = core.certificates_for(&views);
                if certs.is_empty() || self.partitioned(to, from) {
                    return;
                }
                self.log(|| format!("n{from} <- n{to} {} resolved certificates", certs.len()));
                let (lo, hi) = self.scenario.delay;
                let at = self.now + self.rng.gen_range(lo..=hi);
                self.schedule(
                    at,
                    Event::App {
                        node: from,
                        incarnation,
                        input: Input::Certificates(certs),
                    },
                );
            }
            Event::Timer {
                node,
                incarnation,
                id,
            } => {
                if self.nodes[node].incarnation != incarnation || self.nodes[node].core.is_none() {
                    return;
                }
                self.log(|| format!("n{node} timer {:?} v{}", id.kind, id.view));
                let outs = self.nodes[node]
                    .core
                    .as_mut()
                    .map(|c| c.handle(Input::Timer(id)))
                    .unwrap_or_default();
                self.execute(node, outs);
            }
            Event::App {
                node,
                incarnation,
                input,
            } => {
                if self.nodes[node].incarnation != incarnation || self.nodes[node].core.is_none() {
                    return;
                }
                let outs = self.nodes[node]
                    .core
                    .as_mut()
                    .map(|c| c.handle(input))
                    .unwrap_or_default();
                self.execute(node, outs);
            }
            Event::CrashForGood { node } => {
                let node = self.resolve_node(node);
                self.nodes[node].gone = true;
                self.log(|| format!("n{node} CRASH for good"));
                self.nodes[node].core = None;
                self.nodes[node].incarnation += 1;
            }
            Event::ArmCut { node, down_ms } => {
                self.log(|| format!("n{node} armed: crash inside its next handle call"));
                self.nodes[node].cut = Some(down_ms);
            }
            Event::Crash { node } => {
                let node = self.resolve_node(node);
                self.log(|| format!("n{node} CRASH"));
                self.crash(node);
            }
            Event::Restart { node } => {
                if self.nodes[node].core.is_none() {
                    self.log(|| format!("n{node} RESTART"));
                    self.boot(node);
                }
            }
            Event::Gst => {
                self.gst_done = true;
                self.gst_heights = self.nodes.iter().map(|n| n.chain.len() as u64).collect();
                self.gst_view = self.max_honest_view();
                let v = self.gst_view;
                self.log(|| format!("GST: views settle from v{v}"));
            }
            Event::GarbageTick { node } => {
                self.garbage(node);
                let at = self.now + self.rng.gen_range(5..=40);
                self.schedule(at, Event::GarbageTick { node });
            }
        }
    }

    /// Every honest node not crashed for good is up and has finalized
    /// `LIVENESS_HEIGHTS` new heights since GST (never true with no such
    /// node).
    fn liveness_reached(&self) -> bool {
        if !self.gst_done {
            return false;
        }
        let mut expected = (0..self.nodes.len())
            .filter(|&i| self.nodes[i].honest() && !self.nodes[i].gone)
            .peekable();
        expected.peek().is_some()
            && expected.all(|i| {
                self.nodes[i].core.is_some()
                    && self.nodes[i].chain.len() as u64 >= self.gst_heights[i] + LIVENESS_HEIGHTS
            })
    }

    /// Runs to the liveness goal or a failure.
    pub fn run(mut self) -> Result<Outcome, Failure> {
        let sc = self.scenario.clone();
        for i in 0..self.nodes.len() {
            match self.nodes[i].adversary {
                Some(Adversary::Silent) => {}
                Some(Adversary::Garbage) => self.schedule(1, Event::GarbageTick { node: i }),
                _ => self.boot(i),
            }
        }
        for &(node, crash_at, restart_at) in &sc.crashes {
            match restart_at {
                Some(r) => {
                    self.schedule(crash_at, Event::Crash { node });
                    self.schedule(r, Event::Restart { node });
                }
                None => self.schedule(crash_at, Event::CrashForGood { node }),
            }
        }
        for &(node, at, down_ms) in &sc.unsynced {
            self.schedule(at, Event::ArmCut { node, down_ms });
        }
        self.schedule(sc.gst_ms, Event::Gst);
        let deadline = sc.gst_ms + LIVENESS_TIME_MS;
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > deadline {
                break;
            }
            self.now = at;
            self.steps += 1;
            self.step(*ev);
            if self.failure.is_some()
                || self.liveness_reached()
                || self.steps > STEPS_MAX
                || self.left_behind()
                || self.stalled()
            {
                break;
            }
        }
        // Honest cores must never refuse their own votes or see certified
        // conflicts (both need more than f Byzantine validators or a bug).
        if self.failure.is_none() && self.opts.mutation.is_none() {
            for i in self.honest_live() {
                let s = self.nodes[i]
                    .core
                    .as_ref()
                    .map(|c| c.stats().clone())
                    .unwrap_or_default();
                if s.refused_to_sign != 0
                    || s.conflicting_certificates != 0
                    || s.bad_built_blocks != 0
                {
                    self.fail("invariant", format!("n{i} stats: {s:?}"));
                }
            }
        }
        if self.failure.is_none() && !self.liveness_reached() {
            let message = self.liveness_report();
            self.fail("liveness", message);
        }
        let liveness_views = self.max_honest_view().saturating_sub(self.gst_view);
        let liveness_ms = self.now.saturating_sub(sc.gst_ms);
        if self.failure.is_none() && liveness_views > LIVENESS_VIEWS_MAX {
            self.fail(
                "liveness",
                format!("{LIVENESS_HEIGHTS} new heights took {liveness_views} views after GST"),
            );
        }
        let mut stats = alliance_consensus::Stats::default();
        for i in self.honest_live() {
            if let Some(c) = self.nodes[i].core.as_ref() {
                add_stats(&mut stats, c.stats());
            }
        }
        match self.failure.take() {
            Some((kind, message)) => Err(Failure {
                kind,
                message,
                scenario: sc.name.to_string(),
                n: sc.n,
                trace: std::mem::take(&mut self.trace),
            }),
            None => Ok(Outcome {
                scenario: sc.name.to_string(),
                n: sc.n,
                liveness_views,
                liveness_ms,
                counters: std::mem::take(&mut self.x.counters),
                height: self.finalized.keys().next_back().copied().unwrap_or(0),
                steps: self.steps,
                stats,
                trace: std::mem::take(&mut self.trace),
            }),
        }
    }
}

/// Runs one seed.
pub fn run_seed(seed: u64, opts: &Options) -> Result<Outcome, Failure> {
    Sim::new(seed, opts.clone()).run()
}

/// Adds `b`'s counters into `a`.
pub fn add_stats(a: &mut alliance_consensus::Stats, b: &alliance_consensus::Stats) {
    a.dropped_not_validator += b.dropped_not_validator;
    a.dropped_bad_signature += b.dropped_bad_signature;
    a.dropped_duplicate += b.dropped_duplicate;
    a.dropped_not_leader += b.dropped_not_leader;
    a.dropped_malformed += b.dropped_malformed;
    a.dropped_view_too_old += b.dropped_view_too_old;
    a.dropped_view_too_far += b.dropped_view_too_far;
    a.dropped_equivocation += b.dropped_equivocation;
    a.dropped_unrequested += b.dropped_unrequested;
    a.dropped_stale += b.dropped_stale;
    a.equivocations += b.equivocations;
    a.invalid_proposals += b.invalid_proposals;
    a.refused_to_sign += b.refused_to_sign;
    a.bad_built_blocks += b.bad_built_blocks;
    a.conflicting_certificates += b.conflicting_certificates;
}
