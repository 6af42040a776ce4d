//! Deterministic simulation of whole nodes: n real [`Driver`]s, each with
//! a real `Chain`, `LedgerState`, mempool and store on disk, on a seeded
//! in-memory network and a simulated clock. One RNG drives delays, loss,
//! partitions, crashes, transactions and lies, so a seed replays exactly.
//!
//! What is checked, at every step:
//! - safety: every node's committed block at a height is the same block;
//!   no driver stops with an error (an error means the store failed or
//!   consensus contradicted the stored chain);
//! - honest messages are never rejected by an honest judge, and honest
//!   peers are never penalised;
//! - liveness: once faults stop (GST), every node, the liar's victims
//!   included, commits [`LIVENESS_HEIGHTS`] more heights within
//!   [`LIVENESS_DEADLINE_MS`].

pub mod liar;
pub mod net;
pub mod scenario;

use std::cell::Cell;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, VecDeque};
use std::rc::Rc;

use alliance_node::chain::Chain;
use alliance_node::config::NodeConfig;
use alliance_node::mempool::MempoolLimits;
use alliance_node::network::{peer_id_of, PeerId, SyncError, SyncRequest, Verdict};
use alliance_node::runtime::{Driver, Event, Shared, TICK};
use alliance_node::store::{MemKv, Store};
use alliance_node::synth::Synth;
use alliance_protocol::fixtures::{demo_genesis, demo_merchant_id, demo_merchant_key, demo_policy};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::{GovAction, Hash32, Keypair, Transaction, TxBody};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use net::{Gossip, Sent, SimClock, SimNet};
use scenario::{Plan, Scenario};

/// Heights every node must commit after GST.
pub const LIVENESS_HEIGHTS: u64 = 20;
/// Simulated time allowed for them.
pub const LIVENESS_DEADLINE_MS: u64 = 90_000;
/// Simulated time before GST at most (faults happen before it).
const FAULTS_MS_MAX: u64 = 40_000;
/// How long a request waits for its answer (the real network's default).
const REQUEST_TIMEOUT_MS: u64 = 10_000;
/// Step-log lines kept (the tail is printed for a failing seed).
const LOG_LINES_MAX: usize = 20_000;
/// Genesis time of every simulated chain.
const GENESIS_MS: u64 = 1_700_000_000_000;
/// Transactions offered per injection.
const TXS_PER_INJECTION: usize = 6;

type SimDriver = Driver<SimNet, SimClock>;
type SimEvent = Event<Gossip, u64>;

/// What a run found.
#[derive(Debug, Clone)]
#[allow(dead_code)] // read through Debug in failure reports
pub enum Failure {
    /// Two nodes committed different blocks, or a node's driver failed.
    Safety(String),
    /// The alliance did not make progress after GST.
    Liveness(String),
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The seed.
    pub seed: u64,
    /// The scenario run.
    pub scenario: &'static str,
    /// Validators at genesis.
    pub n: usize,
    /// `Err` when a check failed.
    pub result: Result<(), Failure>,
    /// Simulated milliseconds from GST to the last node's liveness target.
    pub recovery_ms: u64,
    /// Highest committed height.
    pub height: u64,
    /// Lies told by the liar.
    pub lies: usize,
    /// The step log's tail.
    pub log: Vec<String>,
}

/// Something that happens at a simulated time.
#[derive(Debug)]
enum Due {
    /// An event for a node's driver (dropped if the node restarted since).
    Deliver {
        node: usize,
        incarnation: u32,
        event: SimEvent,
    },
    /// A request's deadline: answers `Timeout` unless answered by then.
    RequestDeadline { id: u64 },
    /// The node's next tick.
    Tick { node: usize, incarnation: u32 },
    /// A step of the scenario's plan.
    Plan(Plan),
    /// Offer transactions.
    Inject,
}

/// A request in flight.
#[derive(Debug)]
struct Pending {
    from: usize,
    to: usize,
    request: SyncRequest,
}

/// One simulated node.
struct SimNode {
    key: Keypair,
    peer: PeerId,
    /// Its "disk": survives crashes, minus what was not flushed.
    disk: MemKv,
    driver: Option<SimDriver>,
    incarnation: u32,
    /// Committed heights already compared with the reference chain.
    checked: u64,
    /// Answers its sync requests with lies.
    liar: bool,
}

/// The simulated world.
pub struct World {
    seed: u64,
    scenario: &'static Scenario,
    n: usize,
    genesis: Genesis,
    config: NodeConfig,
    now: Rc<Cell<u64>>,
    queue: BinaryHeap<Reverse<(u64, u64)>>,
    due: BTreeMap<u64, Due>,
    seq: u64,
    rng: ChaCha8Rng,
    nodes: Vec<SimNode>,
    /// Symmetric reachability between nodes.
    linked: Vec<Vec<bool>>,
    /// Probability that a message is lost.
    loss: f64,
    /// Extra delay range of messages, ms.
    delay: (u64, u64),
    requests: BTreeMap<u64, Pending>,
    next_request: u64,
    /// The first block committed at each height, by any node.
    reference: BTreeMap<u64, Hash32>,
    synth: Synth,
    gst_ms: u64,
    gst_height: Option<u64>,
    lies: usize,
    log: VecDeque<String>,
    failure: Option<Failure>,
}

impl World {
    /// A world for `seed` running `scenario` with `n` genesis validators.
    pub fn new(seed: u64, scenario: &'static Scenario, n: usize) -> World {
        let rng = ChaCha8Rng::seed_from_u64(seed);
        let chain_id = format!("sim-{seed}");
        let (genesis, keys) = demo_genesis(&chain_id, n, GENESIS_MS);
        let mut nodes: Vec<SimNode> = keys
            .into_iter()
            .map(|key| SimNode {
                peer: peer_id_of(&key.public()),
                key,
                disk: MemKv::new(),
                driver: None,
                incarnation: 0,
                checked: 0,
                liar: false,
            })
            .collect();
        // Extra nodes: followers that governance may admit, and the liar.
        for i in 0..scenario.extra_nodes() {
            let key = demo_merchant_key(&chain_id, n + i);
            nodes.push(SimNode {
                peer: peer_id_of(&key.public()),
                key,
                disk: MemKv::new(),
                driver: None,
                incarnation: 0,
                checked: 0,
                liar: scenario.liar && i == scenario.extra_nodes() - 1,
            });
        }
        let total = nodes.len();
        let config = NodeConfig::default();
        World {
            seed,
            scenario,
            n,
            synth: Synth::new(&chain_id, n, 16),
            genesis,
            config,
            now: Rc::new(Cell::new(GENESIS_MS + 1_000)),
            queue: BinaryHeap::new(),
            due: BTreeMap::new(),
            seq: 0,
            rng,
            nodes,
            linked: vec![vec![true; total]; total],
            loss: 0.0,
            delay: (5, 60),
            requests: BTreeMap::new(),
            next_request: 0,
            reference: BTreeMap::new(),
            gst_ms: 0,
            gst_height: None,
            lies: 0,
            log: VecDeque::new(),
            failure: None,
        }
    }

    fn log(&mut self, line: impl FnOnce() -> String) {
        if self.log.len() == LOG_LINES_MAX {
            self.log.pop_front();
        }
        let t = self.now.get() - GENESIS_MS;
        self.log.push_back(format!("[{t:>7}] {}", line()));
    }

    fn schedule(&mut self, after_ms: u64, due: Due) {
        let at = self.now.get() + after_ms;
        self.seq += 1;
        self.queue.push(Reverse((at, self.seq)));
        self.due.insert(self.seq, due);
    }

    fn fail(&mut self, failure: Failure) {
        if self.failure.is_none() {
            self.log(|| format!("FAILURE: {failure:?}"));
            self.failure = Some(failure);
        }
    }

    /// Whether a message from `a` to `b` gets through now.
    fn delivers(&mut self, a: usize, b: usize) -> bool {
        self.linked[a][b] && !(self.loss > 0.0 && self.rng.gen_bool(self.loss))
    }

    fn latency(&mut self) -> u64 {
        self.rng.gen_range(self.delay.0..=self.delay.1)
    }

    fn up(&self, i: usize) -> bool {
        self.nodes[i].driver.is_some()
    }

    /// Starts (or restarts) node `i` from what its store holds.
    fn start(&mut self, i: usize) {
        let disk = Box::new(self.nodes[i].disk.clone());
        let (store, state) = match Store::open_on(disk, &self.genesis) {
            Ok(s) => s,
            Err(e) => {
                return self.fail(Failure::Safety(format!(
                    "node {i}: store does not open: {e}"
                )))
            }
        };
        let (gossip_tx, _) = tokio::sync::mpsc::channel(1);
        let shared = Shared::new(
            self.genesis.clone(),
            Chain::new(store, state),
            MempoolLimits::default(),
            gossip_tx,
        );
        let clock = SimClock {
            now: self.now.clone(),
            timers: Vec::new(),
        };
        let driver = match Driver::new(
            shared,
            self.nodes[i].key.clone(),
            self.config.clone(),
            SimNet::default(),
            clock,
        ) {
            Ok(d) => d,
            Err(e) => {
                return self.fail(Failure::Safety(format!(
                    "node {i}: driver does not start: {e}"
                )))
            }
        };
        self.nodes[i].driver = Some(driver);
        self.nodes[i].incarnation += 1;
        let height = self.height(i);
        self.log(|| format!("node {i} starts at height {height}"));
        let incarnation = self.nodes[i].incarnation;
        let tick_at = self.rng.gen_range(0..TICK.as_millis() as u64);
        self.schedule(
            tick_at,
            Due::Tick {
                node: i,
                incarnation,
            },
        );
        // Connections both ways.
        for j in 0..self.nodes.len() {
            if j != i && self.up(j) && self.linked[i][j] {
                self.connect(i, j);
                self.connect(j, i);
            }
        }
        let result = self.nodes[i].driver.as_mut().map(|d| d.start());
        self.after(i, result);
    }

    /// Crashes node `i`: its driver, everything in memory and every write
    /// not flushed yet are gone.
    fn crash(&mut self, i: usize) {
        if self.nodes[i].driver.take().is_some() {
            self.nodes[i].disk.crash();
            self.log(|| format!("node {i} crashes"));
            for j in 0..self.nodes.len() {
                if j != i && self.up(j) && self.linked[i][j] {
                    self.disconnect(j, i);
                }
            }
        }
    }

    /// Schedules `event` for `node`'s current incarnation (dropped if the
    /// node restarts before it is due).
    fn deliver(&mut self, node: usize, after_ms: u64, event: SimEvent) {
        let incarnation = self.nodes[node].incarnation;
        self.schedule(
            after_ms,
            Due::Deliver {
                node,
                incarnation,
                event,
            },
        );
    }

    /// Tells `i` that `j` connected.
    fn connect(&mut self, i: usize, j: usize) {
        let key = self.nodes[j].key.public();
        let is_member = !self.nodes[j].liar;
        let event = Event::PeerConnected {
            peer: self.nodes[j].peer,
            key: Some(key),
            is_member,
        };
        self.deliver(i, 0, event);
    }

    /// Tells `i` that `j` disconnected.
    fn disconnect(&mut self, i: usize, j: usize) {
        let event = Event::PeerDisconnected {
            peer: self.nodes[j].peer,
        };
        self.deliver(i, 0, event);
    }

    /// Cuts or heals the link between `a` and `b`.
    fn set_link(&mut self, a: usize, b: usize, up: bool) {
        if a == b || self.linked[a][b] == up {
            return;
        }
        self.linked[a][b] = up;
        self.linked[b][a] = up;
        if self.up(a) && self.up(b) {
            if up {
                self.connect(a, b);
                self.connect(b, a);
            } else {
                self.disconnect(a, b);
                self.disconnect(b, a);
            }
        }
    }

    fn height(&self, i: usize) -> u64 {
        self.nodes[i]
            .driver
            .as_ref()
            .map(|d| d.shared().tip_height())
            .unwrap_or(0)
    }

    fn index_of(&self, peer: &PeerId) -> Option<usize> {
        self.nodes.iter().position(|n| &n.peer == peer)
    }

    /// Carries out what node `i`'s driver asked for, and checks it.
    fn after(&mut self, i: usize, result: Option<anyhow::Result<()>>) {
        if let Some(Err(e)) = result {
            self.fail(Failure::Safety(format!("node {i}: driver stopped: {e:#}")));
            self.crash(i);
            return;
        }
        let Some(driver) = self.nodes[i].driver.as_mut() else {
            return;
        };
        let sent = std::mem::take(&mut driver.net_mut().outbox);
        let timers = std::mem::take(&mut driver.clock_mut().timers);
        for (id, after_ms) in timers {
            self.deliver(i, after_ms, Event::Timer(id));
        }
        for s in sent {
            self.carry_out(i, s);
        }
        self.check_committed(i);
    }

    fn carry_out(&mut self, i: usize, sent: Sent) {
        match sent {
            Sent::Publish(bytes) => {
                self.log(|| format!("node {i} sends {}", describe(&bytes)));
                let source_key = self.nodes[i].key.public();
                for j in 0..self.nodes.len() {
                    if j == i || !self.up(j) || !self.delivers(i, j) {
                        continue;
                    }
                    let delay = self.latency();
                    let event = Event::Consensus {
                        bytes: bytes.clone(),
                        source_key,
                        message: Gossip { author: i },
                    };
                    self.deliver(j, delay, event);
                }
            }
            Sent::Report(gossip, verdict) => {
                if verdict == Verdict::Reject && !self.nodes[gossip.author].liar {
                    let author = gossip.author;
                    self.fail(Failure::Safety(format!(
                        "node {i} rejected an honest message of node {author}"
                    )));
                }
            }
            Sent::Penalise(peer, what) => {
                let j = self.index_of(&peer);
                self.log(|| format!("node {i} penalises node {j:?}: {what:?}"));
                if let Some(j) = j {
                    if !self.nodes[j].liar {
                        self.fail(Failure::Safety(format!(
                            "node {i} penalised honest node {j}: {what:?}"
                        )));
                    }
                }
            }
            Sent::Request(peer, request) => {
                let Some(j) = self.index_of(&peer) else {
                    return;
                };
                self.next_request += 1;
                let id = self.next_request;
                self.requests.insert(
                    id,
                    Pending {
                        from: i,
                        to: j,
                        request: request.clone(),
                    },
                );
                self.schedule(REQUEST_TIMEOUT_MS, Due::RequestDeadline { id });
                if self.up(j) && self.delivers(i, j) {
                    let delay = self.latency();
                    let event = Event::SyncRequest {
                        request,
                        responder: id,
                    };
                    self.deliver(j, delay, event);
                }
            }
            Sent::Respond(id, response) => {
                let Some(pending) = self.requests.get(&id) else {
                    return;
                };
                let (from, to) = (pending.from, pending.to);
                let request = pending.request.clone();
                let response = if self.nodes[i].liar {
                    let (lie, what) = liar::lie(&mut self.rng, &request, response);
                    if what != "truth" {
                        self.lies += 1;
                        self.log(|| format!("liar {i} answers node {from}: {what}"));
                    }
                    lie
                } else {
                    response
                };
                if !self.up(from) || !self.delivers(to, from) {
                    return;
                }
                self.requests.remove(&id);
                let delay = self.latency();
                let event = Event::Response {
                    peer: self.nodes[to].peer,
                    request,
                    result: Ok(response),
                };
                self.deliver(from, delay, event);
            }
        }
    }

    /// Compares node `i`'s newly committed blocks with the reference chain.
    fn check_committed(&mut self, i: usize) {
        let Some(driver) = self.nodes[i].driver.as_ref() else {
            return;
        };
        let shared = driver.shared().clone();
        let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
        let tip = chain.state().tip().height;
        let from = self.nodes[i].checked + 1;
        for h in from..=tip {
            let hash = match chain.store().block(h) {
                Ok(Some(fb)) => fb.block.hash(),
                other => {
                    drop(chain);
                    return self.fail(Failure::Safety(format!(
                        "node {i}: committed block {h} unreadable: {other:?}"
                    )));
                }
            };
            match self.reference.get(&h) {
                Some(r) if *r != hash => {
                    drop(chain);
                    return self.fail(Failure::Safety(format!(
                        "node {i} committed {hash} at height {h}, another node {r}"
                    )));
                }
                Some(_) => {}
                None => {
                    self.reference.insert(h, hash);
                }
            }
        }
        drop(chain);
        if tip >= from {
            self.log(|| format!("node {i} committed up to {tip}"));
        }
        self.nodes[i].checked = self.nodes[i].checked.max(tip);
    }

    /// Offers a few transactions to every running node's mempool (as if
    /// gossiped), generated from one node's state.
    fn inject(&mut self) {
        let running: Vec<usize> = (0..self.nodes.len()).filter(|&i| self.up(i)).collect();
        if running.is_empty() {
            return;
        }
        let src = running[self.rng.gen_range(0..running.len())];
        let txs = {
            let shared = self.nodes[src].driver.as_ref().map(|d| d.shared().clone());
            let Some(shared) = shared else { return };
            let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
            self.synth.transactions(chain.state(), TXS_PER_INJECTION)
        };
        self.offer(&txs);
    }

    fn offer(&mut self, txs: &[Transaction]) {
        for node in &self.nodes {
            if let Some(d) = &node.driver {
                let shared = d.shared();
                let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
                let mut pool = shared.mempool.lock().unwrap_or_else(|e| e.into_inner());
                for tx in txs {
                    let _ = pool.admit_checked(tx.clone(), chain.state(), true);
                }
            }
        }
    }

    /// Governance: merchant 0 proposes admitting the first extra node as a
    /// merchant (a validator from the next epoch), and the others approve.
    fn propose_new_validator(&mut self) {
        let Some(src) = (0..self.n).find(|&i| self.up(i)) else {
            return;
        };
        let joiner = self.n;
        let shared = self.nodes[src].driver.as_ref().map(|d| d.shared().clone());
        let Some(shared) = shared else { return };
        let txs = {
            let chain = shared.chain.read().unwrap_or_else(|e| e.into_inner());
            let state = chain.state();
            let height = state.tip().height;
            let proposals = state.proposals();
            let mut txs = Vec::new();
            let chain_id = &self.genesis.chain_id;
            match proposals.last() {
                None => {
                    let key = &self.nodes[0].key;
                    let action = GovAction::AddMerchant {
                        id: demo_merchant_id(joiner),
                        name: format!("Joiner {joiner}"),
                        key: self.nodes[joiner].key.public(),
                        policy: demo_policy(),
                    };
                    let body = TxBody::Propose {
                        action,
                        deadline_height: height + 60,
                    };
                    txs.push(Transaction::sign(
                        chain_id,
                        key,
                        state.account(&key.public()).nonce,
                        body,
                    ));
                }
                Some(p) => {
                    for m in 1..self.n {
                        let key = &self.nodes[m].key;
                        let body = TxBody::Vote {
                            proposal: p.id,
                            approve: true,
                        };
                        txs.push(Transaction::sign(
                            chain_id,
                            key,
                            state.account(&key.public()).nonce,
                            body,
                        ));
                    }
                }
            }
            txs
        };
        self.log(|| format!("governance: {} transaction(s)", txs.len()));
        self.offer(&txs);
    }

    /// Runs the scenario to its end; returns what it found.
    pub fn run(mut self) -> Outcome {
        let plan = scenario::plan(self.scenario, &mut self.rng, self.n, self.nodes.len());
        self.loss = plan.loss;
        self.delay = plan.delay;
        self.gst_ms = plan.gst_ms.min(FAULTS_MS_MAX);
        for i in 0..self.nodes.len() {
            if !plan.late_start.contains(&i) {
                self.start(i);
            }
        }
        for (at, step) in plan.steps {
            self.schedule(at.min(self.gst_ms), Due::Plan(step));
        }
        let gst = self.gst_ms;
        self.schedule(gst, Due::Plan(Plan::Gst));
        let mut inject_at = 0;
        while inject_at < gst + LIVENESS_DEADLINE_MS {
            self.schedule(inject_at, Due::Inject);
            inject_at += 300;
        }
        let end = self.now.get() + gst + LIVENESS_DEADLINE_MS;
        let mut recovery_ms = 0;
        while let Some(Reverse((at, seq))) = self.queue.pop() {
            if at > end || self.failure.is_some() {
                break;
            }
            self.now.set(at);
            let due = self.due.remove(&seq).expect("scheduled");
            self.step(due);
            if let Some(target) = self.gst_height.map(|h| h + LIVENESS_HEIGHTS) {
                if (0..self.nodes.len()).all(|i| self.height(i) >= target) {
                    recovery_ms = at - (GENESIS_MS + 1_000 + gst);
                    break;
                }
            }
        }
        if self.failure.is_none() {
            let target = self.gst_height.map(|h| h + LIVENESS_HEIGHTS).unwrap_or(0);
            let heights: Vec<u64> = (0..self.nodes.len()).map(|i| self.height(i)).collect();
            if heights.iter().any(|h| *h < target) {
                self.fail(Failure::Liveness(format!(
                    "heights {heights:?} after {LIVENESS_DEADLINE_MS} ms past GST; target {target}"
                )));
            }
        }
        Outcome {
            seed: self.seed,
            scenario: self.scenario.name,
            n: self.n,
            result: match self.failure.take() {
                Some(f) => Err(f),
                None => Ok(()),
            },
            recovery_ms,
            height: self.reference.keys().last().copied().unwrap_or(0),
            lies: self.lies,
            log: self.log.into_iter().collect(),
        }
    }

    fn step(&mut self, due: Due) {
        match due {
            Due::Deliver {
                node,
                incarnation,
                event,
            } => {
                if self.nodes[node].incarnation != incarnation {
                    return;
                }
                let result = tracing::info_span!("node", i = node, t = self.now.get() - GENESIS_MS)
                    .in_scope(|| self.nodes[node].driver.as_mut().map(|d| d.handle(event)));
                self.after(node, result);
            }
            Due::Tick { node, incarnation } => {
                if self.nodes[node].incarnation != incarnation || !self.up(node) {
                    return;
                }
                let result = tracing::info_span!("node", i = node, t = self.now.get() - GENESIS_MS)
                    .in_scope(|| {
                        self.nodes[node]
                            .driver
                            .as_mut()
                            .map(|d| d.handle(Event::Tick))
                    });
                self.after(node, result);
                self.schedule(TICK.as_millis() as u64, Due::Tick { node, incarnation });
            }
            Due::RequestDeadline { id } => {
                if let Some(p) = self.requests.remove(&id) {
                    if self.up(p.from) {
                        let event = Event::Response {
                            peer: self.nodes[p.to].peer,
                            request: p.request,
                            result: Err(SyncError::Timeout),
                        };
                        self.deliver(p.from, 0, event);
                    }
                }
            }
            Due::Inject => self.inject(),
            Due::Plan(step) => self.apply(step),
        }
    }

    fn apply(&mut self, step: Plan) {
        self.log(|| format!("plan: {step:?}"));
        match step {
            Plan::Crash(i) => self.crash(i),
            Plan::Restart(i) => {
                if !self.up(i) {
                    self.start(i);
                }
            }
            Plan::Cut(a, b) => self.set_link(a, b, false),
            Plan::Heal(a, b) => self.set_link(a, b, true),
            Plan::Isolate { victim, except } => {
                for j in 0..self.nodes.len() {
                    if j != victim && Some(j) != except {
                        self.set_link(victim, j, false);
                    }
                }
            }
            Plan::Governance => self.propose_new_validator(),
            Plan::Gst => {
                self.loss = 0.0;
                for a in 0..self.nodes.len() {
                    for b in 0..self.nodes.len() {
                        self.set_link(a, b, true);
                    }
                }
                for i in 0..self.nodes.len() {
                    if !self.up(i) {
                        self.start(i);
                    }
                }
                let h = (0..self.nodes.len()).map(|i| self.height(i)).max();
                self.gst_height = h;
            }
        }
    }
}

/// A consensus message in a few words, for the step log.
fn describe(bytes: &[u8]) -> String {
    match alliance_consensus::Message::from_bytes(bytes) {
        Ok(alliance_consensus::Message::Proposal(p)) => format!(
            "proposal v{} h{} (parent v{})",
            p.view, p.block.header.height, p.parent_view
        ),
        Ok(alliance_consensus::Message::Vote(v)) => {
            format!("{:?} vote v{} h{}", v.data.kind, v.data.view, v.data.height)
        }
        Ok(alliance_consensus::Message::Certificate(c)) => format!(
            "{:?} certificate v{} h{} ({} votes)",
            c.kind,
            c.view,
            c.height,
            c.votes.len()
        ),
        Err(e) => format!("undecodable message: {e}"),
    }
}

/// Runs `seed` of `scenario` with `n` genesis validators.
pub fn run_seed(seed: u64, scenario: &'static Scenario, n: usize) -> Outcome {
    World::new(seed, scenario, n).run()
}
