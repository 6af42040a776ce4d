//! Deterministic simulation: n cores on a simulated network, every random
//! choice from ONE seeded ChaCha generator, so a seed replays exactly.

#![allow(dead_code)]

pub mod app;
pub mod scenario;

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::rc::Rc;
use std::sync::Arc;

use alliance_consensus::{
    Anchor, Config, Core, Input, Message, Output, Proposal, TimerId, Verifier,
};
use alliance_protocol::encoding::hash_with_domain;
use alliance_protocol::{
    Block, BlockHeader, Certificate, CertificateError, Hash32, Keypair, MerchantId, PublicKey,
    Signature, SignedVote, Validator, ValidatorSet, VoteData, VoteKind,
};
use rand::seq::SliceRandom;
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use scenario::{Adversary, Scenario};

/// Chain id of every simulated chain.
pub const CHAIN: &str = "sim-chain";
/// Simulated time allowed after GST for every honest node to finalize a
/// new block before the run counts as a liveness failure.
pub const LIVENESS_TIME_MS: u64 = 30_000;
/// Most views after GST before a new block must be finalized everywhere.
pub const LIVENESS_VIEWS_MAX: u64 = 60;
/// Events per run before giving up (a livelock guard).
pub const STEPS_MAX: u64 = 3_000_000;

/// (signed message, signer, signature) -> valid.
type SignatureCache = HashMap<(Hash32, PublicKey, Signature), bool>;

/// Signature checks memoised for the whole run (all nodes share it): each
/// distinct (message, signer, signature) is checked with ed25519 once.
#[derive(Clone, Default)]
pub struct MemoVerifier {
    cache: Rc<RefCell<SignatureCache>>,
}

impl Verifier for MemoVerifier {
    fn verify(
        &mut self,
        chain_id: &str,
        data: &VoteData,
        signatures: &[(PublicKey, Signature)],
    ) -> bool {
        let msg = data.signing_hash(chain_id);
        let mut cache = self.cache.borrow_mut();
        signatures.iter().all(|(pk, sig)| {
            *cache
                .entry((msg, *pk, *sig))
                .or_insert_with(|| pk.verify(&msg.0, sig))
        })
    }
}

/// What a run is asked to do.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Keep a step log (replays; failures are re-run with it on).
    pub trace: bool,
    /// Run every core with the WeakQuorum mutation.
    pub mutation: bool,
}

/// A successful run.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// Scenario name.
    pub scenario: String,
    /// Validators.
    pub n: usize,
    /// Views between GST and every honest node finalizing a new block.
    pub liveness_views: u64,
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
    /// The step log (empty unless tracing).
    pub trace: Vec<String>,
}

#[derive(Debug)]
enum Event {
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
}

struct Node {
    key: Keypair,
    adversary: Option<Adversary>,
    core: Option<Core<MemoVerifier>>,
    incarnation: u64,
    persisted: Vec<SignedVote>,
    /// Finalized blocks with their certificates, index = height - 1.
    chain: Vec<(Arc<Block>, Certificate)>,
}

impl Node {
    fn honest(&self) -> bool {
        self.adversary.is_none()
    }
}

/// One simulated run.
pub struct Sim {
    scenario: Scenario,
    opts: Options,
    rng: ChaCha8Rng,
    now: u64,
    seq: u64,
    queue: BTreeMap<(u64, u64), Event>,
    nodes: Vec<Node>,
    set: ValidatorSet,
    genesis: Block,
    verifier: MemoVerifier,
    /// Every block anyone built, and a certificate per block seen on the
    /// wire: what the block fetcher can find.
    blocks: HashMap<Hash32, Block>,
    certs: HashMap<Hash32, Certificate>,
    /// Height -> hash finalized by some honest node.
    finalized: BTreeMap<u64, Hash32>,
    cert_checked: HashSet<Hash32>,
    gst_done: bool,
    gst_heights: Vec<u64>,
    gst_view: u64,
    steps: u64,
    trace: Vec<String>,
    failure: Option<(&'static str, String)>,
    undecodable: u64,
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
        let scenario = Scenario::for_seed(seed, &mut rng);
        let keys: Vec<Keypair> = (0..scenario.n)
            .map(|i| Keypair::from_label(&format!("sim/validator/{i}")))
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
        let nodes = keys
            .into_iter()
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
                chain: Vec::new(),
            })
            .collect();
        Sim {
            scenario,
            opts,
            rng,
            now: 0,
            seq: 0,
            queue: BTreeMap::new(),
            nodes,
            set,
            genesis,
            verifier: MemoVerifier::default(),
            blocks: HashMap::new(),
            certs: HashMap::new(),
            finalized: BTreeMap::new(),
            cert_checked: HashSet::new(),
            gst_done: false,
            gst_heights: Vec::new(),
            gst_view: 0,
            steps: 0,
            trace: Vec::new(),
            failure: None,
            undecodable: 0,
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
        self.queue.insert((at, self.seq), ev);
    }

    fn fail(&mut self, kind: &'static str, message: String) {
        if self.failure.is_none() {
            self.log(|| format!("FAILURE {kind}: {message}"));
            self.failure = Some((kind, message));
        }
    }

    fn config(&self, i: usize) -> Config {
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
                hash: b.hash(),
            },
            None => Anchor {
                view: 0,
                height: 0,
                hash: self.genesis.hash(),
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
        );
        if self.opts.mutation {
            core.set_mutation(alliance_consensus::Mutation::WeakQuorum);
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

    fn partitioned(&self, a: usize, b: usize) -> bool {
        match &self.scenario.partition {
            Some((start, end, groups)) if self.now >= *start && self.now < *end => {
                groups[a] != groups[b]
            }
            _ => false,
        }
    }

    /// Sends over the simulated network: loss (before GST), partitions,
    /// random delay (reordering), duplication.
    fn send(&mut self, from: usize, to: usize, msg: Message) {
        if from == to || self.partitioned(from, to) {
            return;
        }
        if let Message::Certificate(c) = &msg {
            if c.kind != VoteKind::Nullify {
                self.certs.entry(c.block_hash).or_insert_with(|| c.clone());
            }
        }
        if !self.gst_done && self.rng.gen_bool(self.scenario.loss) {
            return;
        }
        let (lo, hi) = self.scenario.delay;
        let copies = if self.rng.gen_bool(self.scenario.dup) {
            2
        } else {
            1
        };
        let from_key = self.nodes[from].key.public();
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

    fn broadcast(&mut self, from: usize, msg: Message) {
        for to in 0..self.nodes.len() {
            self.send(from, to, msg.clone());
        }
    }

    /// Sends `a` to a random half of the peers and `b` to the others.
    fn split_send(&mut self, from: usize, a: Message, b: Message) {
        let mut peers: Vec<usize> = (0..self.nodes.len()).filter(|&j| j != from).collect();
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
                .sign(CHAIN, &key);
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
                let second = Message::Vote(other.sign(CHAIN, &key));
                self.split_send(i, msg, second);
            }
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
                Output::Fetch { hash, height } => {
                    self.log(|| format!("n{i} fetch h{height} {}", short(&hash)));
                    if let (Some(block), Some(cert)) =
                        (self.blocks.get(&hash), self.certs.get(&hash))
                    {
                        let input = Input::Fetched {
                            block: block.clone(),
                            certificate: cert.clone(),
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
                Output::Finalized { block, certificate } => {
                    self.log(|| {
                        format!(
                            "n{i} FINALIZED h{} {} by {:?} v{}",
                            block.header.height,
                            short(&block.hash()),
                            certificate.kind,
                            certificate.view
                        )
                    });
                    self.certs
                        .entry(block.hash())
                        .or_insert_with(|| certificate.clone());
                    self.check_finalized(i, block, certificate);
                    emitted = true;
                }
                Output::Evidence(ev) => {
                    let accused = self.set.index_of(&ev.signer());
                    self.log(|| format!("n{i} evidence against n{accused:?}"));
                    if !ev.verify(CHAIN, &self.set) {
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

    fn check_finalized(&mut self, i: usize, block: Arc<Block>, cert: Certificate) {
        let hash = block.hash();
        let height = block.header.height;
        let node = &self.nodes[i];
        let expected_height = node.chain.len() as u64 + 1;
        let prev = node
            .chain
            .last()
            .map_or(self.genesis.hash(), |(b, _)| b.hash());
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
        // Certificate::verify, memoised per distinct certificate.
        let cert_id = hash_with_domain("sim/cert", &alliance_protocol::encoding::encode(&cert));
        if !self.cert_checked.contains(&cert_id) {
            match cert.verify(CHAIN, &self.set, height, &hash) {
                Ok(()) => {}
                Err(CertificateError::TooFewSigners { got, .. })
                    if self.opts.mutation && got > self.set.max_faulty() => {}
                Err(e) => self.fail(
                    "safety",
                    format!("n{i} finalized h{height} with an invalid certificate: {e}"),
                ),
            }
            self.cert_checked.insert(cert_id);
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
        let outsider = Keypair::from_label("sim/outsider");
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
                let mut v = notarize.sign(CHAIN, &key);
                self.rng.fill_bytes(&mut v.signature.0);
                Message::Vote(v)
            }
            2 => Message::Vote(notarize.sign(CHAIN, &outsider)),
            3 => Message::Vote(notarize.sign("another-chain", &key)),
            4 => Message::Vote(
                VoteData {
                    kind: VoteKind::Nullify,
                    height: 0,
                    ..notarize
                }
                .sign(CHAIN, &key),
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
                .sign(CHAIN, &key);
                Message::Proposal(Box::new(Proposal {
                    view,
                    parent_view: 0,
                    block,
                    vote,
                }))
            }
            6 => {
                let d = notarize.signing_hash(CHAIN);
                Message::Certificate(Certificate::from_votes(
                    VoteKind::Finalize,
                    view,
                    notarize.height,
                    h,
                    [(key.public(), key.sign(&d.0))],
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
                .sign(CHAIN, &key),
            ),
        };
        // Sometimes pretend to be a non-member at the transport level.
        let from = if self.rng.gen_bool(0.1) {
            outsider.public()
        } else {
            key.public()
        };
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
                self.process(to, outs);
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
                self.process(node, outs);
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
                self.process(node, outs);
            }
            Event::Crash { node } => {
                let node = if node == scenario::CURRENT_LEADER {
                    let leader = self.set.leader(self.max_honest_view()).key;
                    self.set.index_of(&leader).unwrap_or(0)
                } else {
                    node
                };
                self.log(|| format!("n{node} CRASH"));
                self.nodes[node].core = None;
                self.nodes[node].incarnation += 1;
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

    fn liveness_reached(&self) -> bool {
        self.gst_done
            && self
                .honest_live()
                .iter()
                .all(|&i| self.nodes[i].chain.len() as u64 > self.gst_heights[i])
    }

    /// Runs to the liveness goal or a failure.
    pub fn run(mut self) -> Result<Outcome, Failure> {
        let sc = self.scenario.clone();
        for i in 0..sc.n {
            match self.nodes[i].adversary {
                Some(Adversary::Silent) => {}
                Some(Adversary::Garbage) => self.schedule(1, Event::GarbageTick { node: i }),
                _ => self.boot(i),
            }
        }
        for &(node, crash_at, restart_at) in &sc.crashes {
            self.schedule(crash_at, Event::Crash { node });
            if let Some(r) = restart_at {
                self.schedule(r, Event::Restart { node });
            }
        }
        self.schedule(sc.gst_ms, Event::Gst);
        let deadline = sc.gst_ms + LIVENESS_TIME_MS;
        while let Some(((at, _), ev)) = self.queue.pop_first() {
            if at > deadline {
                break;
            }
            self.now = at;
            self.steps += 1;
            self.step(ev);
            if self.failure.is_some() || self.liveness_reached() || self.steps > STEPS_MAX {
                break;
            }
        }
        // Honest cores must never refuse their own votes or see certified
        // conflicts (both need more than f Byzantine validators or a bug).
        if self.failure.is_none() && !self.opts.mutation {
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
            let heights: Vec<usize> = self.nodes.iter().map(|n| n.chain.len()).collect();
            self.fail("liveness", format!("no new block at every honest node within {LIVENESS_TIME_MS} ms after GST (heights {heights:?}, steps {})", self.steps));
        }
        let liveness_views = self.max_honest_view().saturating_sub(self.gst_view);
        if self.failure.is_none() && liveness_views > LIVENESS_VIEWS_MAX {
            self.fail(
                "liveness",
                format!("new block took {liveness_views} views after GST"),
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
                trace: std::mem::take(&mut self.trace),
            }),
            None => Ok(Outcome {
                scenario: sc.name.to_string(),
                n: sc.n,
                liveness_views,
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
