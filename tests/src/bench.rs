//! The load generator behind `scripts/bench.sh`: pre-funds many customer
//! accounts on a running [`Alliance`], then drives an *open-loop* load of
//! signed transfers and redemptions at a target rate (transactions leave on
//! a schedule, whatever the responses) and measures what a merchant asks:
//! committed transactions per second, finality latency (from the moment a
//! transaction was due to be sent to the moment its block's finalization
//! reached us), CPU and peak memory of every node, disk bytes per
//! transaction and refusals.
//!
//! Finality is timestamped from node 0's event stream (`/v1/events`); each
//! finalized block is fetched raw and its transaction ids computed here
//! with the protocol library. Latency starts at the *scheduled* send time, so
//! a slow submit path shows up in latency instead of silently lowering the
//! offered load (no coordinated omission).

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader, Read};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use alliance_protocol::fixtures::demo_merchant_id;
use alliance_protocol::redemption::OrderRequest;
use alliance_protocol::{FinalizedBlock, Hash32, Keypair, PublicKey, Transaction, TxBody};
use serde::Serialize;

use crate::Alliance;

/// Transactions per batch request at most (the node accepts 2,000).
pub const BATCH_MAX: usize = 2_000;
/// A distributor funds at most this many accounts (below the mempool's
/// 64 pending transactions per signer).
const FAN_OUT: usize = 60;

/// Finalization times of every transaction seen in a finalized block, fed
/// by a background thread that follows node 0's event stream.
pub struct FinalityTracker {
    seen: Arc<Mutex<TrackerState>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

#[derive(Default)]
struct TrackerState {
    finalized: HashMap<Hash32, Instant>,
    /// (height, when seen, transaction count)
    blocks: Vec<(u64, Instant, usize)>,
    last_height: u64,
}

impl FinalityTracker {
    /// Starts following `api` (a node's base URL) from its current height.
    pub fn start(api: &str) -> FinalityTracker {
        let seen = Arc::new(Mutex::new(TrackerState::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(Duration::from_secs(2))
            .timeout_read(Duration::from_secs(2))
            .build();
        if let Some(h) =
            get_json(&agent, &format!("{api}/v1/status")).and_then(|s| s["height"].as_u64())
        {
            seen.lock().unwrap().last_height = h;
        }
        let (s2, stop2, api) = (seen.clone(), stop.clone(), api.to_string());
        let thread = std::thread::spawn(move || follow(&agent, &api, &s2, &stop2));
        FinalityTracker {
            seen,
            stop,
            thread: Some(thread),
        }
    }

    /// When `hash` was seen finalized.
    pub fn finalized_at(&self, hash: &Hash32) -> Option<Instant> {
        self.seen.lock().unwrap().finalized.get(hash).copied()
    }

    /// How many of `hashes` are finalized.
    pub fn count_finalized<'a>(&self, hashes: impl Iterator<Item = &'a Hash32>) -> usize {
        let s = self.seen.lock().unwrap();
        hashes.filter(|h| s.finalized.contains_key(h)).count()
    }

    /// Blocks seen finalized between two instants: (count, transactions).
    pub fn blocks_between(&self, from: Instant, to: Instant) -> (usize, usize) {
        let s = self.seen.lock().unwrap();
        let inside = s.blocks.iter().filter(|(_, t, _)| *t >= from && *t <= to);
        inside.fold((0, 0), |(b, t), (_, _, n)| (b + 1, t + n))
    }

    /// Highest height seen.
    pub fn height(&self) -> u64 {
        self.seen.lock().unwrap().last_height
    }
}

impl Drop for FinalityTracker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn get_json(agent: &ureq::Agent, url: &str) -> Option<serde_json::Value> {
    agent.get(url).call().ok()?.into_json().ok()
}

/// Follows the event stream, reconnecting on errors; on each `block` event
/// fetches every height not seen yet (so a lost event costs precision, not
/// correctness).
fn follow(agent: &ureq::Agent, api: &str, seen: &Mutex<TrackerState>, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        let resp = match agent.get(&format!("{api}/v1/events")).call() {
            Ok(r) => r,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        let mut lines = BufReader::new(resp.into_reader()).lines();
        // Blocks finalized while we were not connected.
        catch_up(agent, api, seen, None, Instant::now());
        while !stop.load(Ordering::Relaxed) {
            let line = match lines.next() {
                Some(Ok(l)) => l,
                Some(Err(e)) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                _ => break,
            };
            let Some(data) = line.strip_prefix("data:") else {
                continue;
            };
            let now = Instant::now();
            let height = serde_json::from_str::<serde_json::Value>(data.trim())
                .ok()
                .and_then(|v| v["height"].as_u64());
            if let Some(h) = height {
                catch_up(agent, api, seen, Some(h), now);
            }
        }
    }
}

fn catch_up(
    agent: &ureq::Agent,
    api: &str,
    seen: &Mutex<TrackerState>,
    upto: Option<u64>,
    at: Instant,
) {
    let upto = match upto {
        Some(h) => h,
        None => {
            match get_json(agent, &format!("{api}/v1/status")).and_then(|s| s["height"].as_u64()) {
                Some(h) => h,
                None => return,
            }
        }
    };
    let from = seen.lock().unwrap().last_height + 1;
    for h in from..=upto {
        let Some(block) = fetch_raw_block(agent, api, h) else {
            return;
        };
        let hashes: Vec<Hash32> = block.block.txs.iter().map(Transaction::hash).collect();
        let mut s = seen.lock().unwrap();
        s.blocks.push((h, at, hashes.len()));
        for hash in hashes {
            s.finalized.entry(hash).or_insert(at);
        }
        s.last_height = h;
    }
}

fn fetch_raw_block(agent: &ureq::Agent, api: &str, height: u64) -> Option<FinalizedBlock> {
    let resp = agent
        .get(&format!("{api}/v1/blocks/{height}/raw"))
        .call()
        .ok()?;
    let mut bytes = Vec::new();
    resp.into_reader().read_to_end(&mut bytes).ok()?;
    FinalizedBlock::from_bytes(&bytes).ok()
}

/// Customer accounts of the benchmark, with the next nonce of each.
pub struct Accounts {
    keys: Vec<Keypair>,
    nonces: Vec<u64>,
    /// Accounts left out after a refusal or a lost transaction (their
    /// nonce sequence may have a gap).
    tainted: Vec<bool>,
    next: usize,
}

impl Accounts {
    /// `count` deterministic accounts.
    pub fn new(count: usize) -> Accounts {
        let keys: Vec<Keypair> = (0..count)
            .map(|i| Keypair::from_label(&format!("bench/customer/{i}")))
            .collect();
        Accounts {
            nonces: vec![0; count],
            tainted: vec![false; count],
            keys,
            next: 0,
        }
    }

    /// Number of accounts.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Accounts still in use.
    pub fn usable(&self) -> usize {
        self.tainted.iter().filter(|t| !**t).count()
    }

    fn public(&self, i: usize) -> PublicKey {
        self.keys[i].public()
    }

    /// The next usable account, round robin (spreads each account's
    /// transactions as far apart in time as possible).
    fn pick(&mut self) -> usize {
        for _ in 0..self.keys.len() {
            let i = self.next;
            self.next = (self.next + 1) % self.keys.len();
            if !self.tainted[i] {
                return i;
            }
        }
        panic!("every benchmark account is tainted");
    }
}

/// A signed transaction ready to send.
struct Prepared {
    hash: Hash32,
    json: String,
    account: Option<usize>,
    due: Duration,
}

fn prepare(chain_id: &str, key: &Keypair, nonce: u64, body: TxBody) -> (Hash32, String) {
    let tx = Transaction::sign(chain_id, key, nonce, body);
    let json = serde_json::to_string(&tx).expect("transactions serialise");
    (tx.hash(), json)
}

/// Signs `jobs` on every core.
fn sign_all(chain_id: &str, jobs: Vec<(Keypair, u64, TxBody)>) -> Vec<(Hash32, String)> {
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let chunk = jobs.len().div_ceil(threads).max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = jobs
            .chunks(chunk)
            .map(|c| {
                s.spawn(move || {
                    c.iter()
                        .map(|(k, n, b)| prepare(chain_id, k, *n, b.clone()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("signing thread"))
            .collect()
    })
}

/// What happened to one sent transaction.
#[derive(Clone)]
enum Sent {
    Accepted,
    Refused(String),
}

/// Sends batches to the nodes from a pool of threads; returns per-index
/// outcomes when joined.
struct Senders {
    jobs: Option<mpsc::Sender<(usize, Vec<usize>, String)>>,
    threads: Vec<std::thread::JoinHandle<Vec<(usize, Sent)>>>,
    backlog: Arc<std::sync::atomic::AtomicUsize>,
}

impl Senders {
    fn start(apis: Vec<String>, threads: usize) -> Senders {
        let (tx, rx) = mpsc::channel::<(usize, Vec<usize>, String)>();
        let rx = Arc::new(Mutex::new(rx));
        let backlog = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (rx, apis, backlog) = (rx.clone(), apis.clone(), backlog.clone());
                std::thread::spawn(move || {
                    let agent = ureq::AgentBuilder::new()
                        .timeout(Duration::from_secs(30))
                        .build();
                    let mut out = Vec::new();
                    loop {
                        let job = rx.lock().unwrap().recv();
                        let Ok((node, idx, body)) = job else {
                            return out;
                        };
                        backlog.fetch_sub(1, Ordering::Relaxed);
                        let url = format!("{}/v1/transactions/batch", apis[node]);
                        let resp = agent
                            .post(&url)
                            .set("Content-Type", "application/json")
                            .send_string(&body);
                        let parsed: Option<serde_json::Value> = match resp {
                            Ok(r) => r.into_json().ok(),
                            Err(ureq::Error::Status(_, r)) => {
                                let v: Option<serde_json::Value> = r.into_json().ok();
                                let code = v
                                    .as_ref()
                                    .and_then(|v| v["error"]["code"].as_str())
                                    .unwrap_or("http_error")
                                    .to_string();
                                out.extend(idx.iter().map(|&i| (i, Sent::Refused(code.clone()))));
                                continue;
                            }
                            Err(_) => None,
                        };
                        let results = parsed
                            .as_ref()
                            .and_then(|v| v["results"].as_array().cloned());
                        match results {
                            Some(rs) if rs.len() == idx.len() => {
                                for (i, r) in idx.iter().zip(rs) {
                                    let sent = match r["error"]["code"].as_str() {
                                        None => Sent::Accepted,
                                        Some(c) => Sent::Refused(c.to_string()),
                                    };
                                    out.push((*i, sent));
                                }
                            }
                            _ => out.extend(
                                idx.iter().map(|&i| (i, Sent::Refused("transport".into()))),
                            ),
                        }
                    }
                })
            })
            .collect();
        Senders {
            jobs: Some(tx),
            threads,
            backlog,
        }
    }

    fn send(&self, node: usize, idx: Vec<usize>, body: String) {
        self.backlog.fetch_add(1, Ordering::Relaxed);
        if let Some(j) = &self.jobs {
            let _ = j.send((node, idx, body));
        }
    }

    fn finish(mut self) -> Vec<(usize, Sent)> {
        self.jobs = None;
        self.threads
            .drain(..)
            .flat_map(|t| t.join().expect("sender thread"))
            .collect()
    }
}

/// Sends `txs` on their schedule (open loop): every `tick`, what is due
/// goes out in batches of at most `batch_max`, to the nodes in turn.
/// Returns the outcomes, the start instant, and the worst lag of the
/// scheduler behind the schedule.
fn drive(
    alliance: &Alliance,
    txs: &[Prepared],
    batch_max: usize,
    senders: usize,
) -> (Vec<Option<Sent>>, Instant, Duration) {
    let apis: Vec<String> = alliance.nodes.iter().map(|n| n.api.clone()).collect();
    let pool = Senders::start(apis.clone(), senders);
    let tick = Duration::from_millis(10);
    let start = Instant::now();
    let mut sent = 0;
    let mut node = 0;
    let mut worst_lag = Duration::ZERO;
    while sent < txs.len() {
        let elapsed = start.elapsed();
        let due = txs[sent..].partition_point(|t| t.due <= elapsed) + sent;
        if due > sent {
            worst_lag = worst_lag.max(elapsed.saturating_sub(txs[sent].due));
        }
        while sent < due {
            let end = due.min(sent + batch_max);
            // An account's transactions always go to the same node, as a
            // wallet's go to its merchant's node: a node refuses a nonce that
            // skips ahead of the signer's next one (`nonce_gap`), and the
            // previous one may not have reached it by gossip yet. Setup
            // transactions (no account) go to the nodes in turn.
            let mut per_node: Vec<Vec<usize>> = vec![Vec::new(); apis.len()];
            for (i, t) in txs.iter().enumerate().take(end).skip(sent) {
                per_node[t.account.map_or(node, |a| a % apis.len())].push(i);
            }
            for (to, indexes) in per_node.into_iter().enumerate() {
                if indexes.is_empty() {
                    continue;
                }
                let mut body = String::with_capacity(indexes.len() * 520 + 2);
                body.push('[');
                for (k, &i) in indexes.iter().enumerate() {
                    if k > 0 {
                        body.push(',');
                    }
                    body.push_str(&txs[i].json);
                }
                body.push(']');
                pool.send(to, indexes, body);
            }
            node = (node + 1) % apis.len();
            sent = end;
        }
        if sent < txs.len() {
            let next = txs[sent].due.max(start.elapsed() + tick);
            std::thread::sleep(next.saturating_sub(start.elapsed()).min(tick));
        }
    }
    let mut outcomes = vec![None; txs.len()];
    for (i, s) in pool.finish() {
        outcomes[i] = Some(s);
    }
    (outcomes, start, worst_lag)
}

/// Waits until every hash is finalized or `timeout` passes; returns how
/// many are.
fn wait_finalized(tracker: &FinalityTracker, hashes: &[Hash32], timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    loop {
        let n = tracker.count_finalized(hashes.iter());
        if n == hashes.len() || Instant::now() > deadline {
            return n;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Funds every account with `amount` points: each merchant issues to
/// distributors, which transfer to at most [`FAN_OUT`] accounts each (so no
/// signer needs more than the mempool's per-signer window). Returns the
/// time it took.
pub fn fund(
    alliance: &Alliance,
    tracker: &FinalityTracker,
    accounts: &Accounts,
    amount: u64,
) -> Duration {
    let start = Instant::now();
    let chain = alliance.chain_id.as_str();
    let merchants = alliance.keys.len();
    let distributors: Vec<Keypair> = (0..accounts.len().div_ceil(FAN_OUT))
        .map(|d| Keypair::from_label(&format!("bench/distributor/{d}")))
        .collect();
    // Level 1: merchant m issues to distributors m, m + M, ... in rounds of
    // at most FAN_OUT per merchant.
    let mut merchant_nonce = vec![0u64; merchants];
    let per_round = FAN_OUT * merchants;
    for round in distributors.chunks(per_round).enumerate() {
        let (r, ds) = round;
        let jobs: Vec<(Keypair, u64, TxBody)> = ds
            .iter()
            .enumerate()
            .map(|(k, d)| {
                let d_index = r * per_round + k;
                let m = k % merchants;
                let served = FAN_OUT.min(accounts.len() - d_index * FAN_OUT) as u64;
                let n = merchant_nonce[m];
                merchant_nonce[m] += 1;
                let body = TxBody::Issue {
                    to: d.public(),
                    amount: amount * served,
                    reason: "bench".into(),
                    receipt_ref: format!("bench-{d_index}"),
                    receipt_time_ms: crate::now_ms(),
                };
                (alliance.keys[m].clone(), n, body)
            })
            .collect();
        submit_and_wait(
            alliance,
            tracker,
            &sign_all(chain, jobs),
            BATCH_MAX,
            "funding distributors",
        );
    }
    // Level 2: each distributor pays its accounts.
    let jobs: Vec<(Keypair, u64, TxBody)> = distributors
        .iter()
        .enumerate()
        .flat_map(|(d, key)| {
            (d * FAN_OUT..((d + 1) * FAN_OUT).min(accounts.len()))
                .enumerate()
                .map(move |(n, a)| (key.clone(), n as u64, a))
        })
        .map(|(key, n, a)| {
            let body = TxBody::Transfer {
                to: accounts.public(a),
                amount,
                memo: String::new(),
            };
            (key, n, body)
        })
        .collect();
    // A distributor's transfers go in one request, in nonce order: a node
    // refuses a nonce that skips ahead of the signer's next one (nonce_gap),
    // so they must not be split between nodes.
    submit_and_wait(
        alliance,
        tracker,
        &sign_all(chain, jobs),
        BATCH_MAX / FAN_OUT * FAN_OUT,
        "funding accounts",
    );
    start.elapsed()
}

/// Submits prepared transactions (closed loop, for setup) and waits for all
/// of them to be finalized; panics with the first refusal.
fn submit_and_wait(
    alliance: &Alliance,
    tracker: &FinalityTracker,
    txs: &[(Hash32, String)],
    batch_max: usize,
    what: &str,
) {
    let prepared: Vec<Prepared> = txs
        .iter()
        .map(|(h, j)| Prepared {
            hash: *h,
            json: j.clone(),
            account: None,
            due: Duration::ZERO,
        })
        .collect();
    let (outcomes, _, _) = drive(alliance, &prepared, batch_max, 4);
    for o in &outcomes {
        if let Some(Sent::Refused(code)) = o {
            panic!("{what}: a setup transaction was refused: {code}");
        }
    }
    let hashes: Vec<Hash32> = prepared.iter().map(|p| p.hash).collect();
    let done = wait_finalized(tracker, &hashes, Duration::from_secs(120));
    if done != hashes.len() {
        let missing = hashes
            .iter()
            .find(|h| tracker.finalized_at(h).is_none())
            .expect("one is missing");
        let seen: Vec<String> = alliance
            .nodes
            .iter()
            .map(|n| {
                format!(
                    "{:?}",
                    n.get(&format!("/v1/transactions/{}", missing.to_hex()))
                )
            })
            .collect();
        panic!(
            "{what}: {} of {} finalized in 120 s (tracker at height {}); {missing:?} on each node: {seen:?}",
            done,
            hashes.len(),
            tracker.height()
        );
    }
}

/// One load step: what was offered and what came of it.
#[derive(Debug, Clone, Serialize)]
pub struct StepResult {
    /// Offered load, transactions per second.
    pub offered_tps: f64,
    /// Sending time, seconds.
    pub duration_s: f64,
    /// Transactions sent.
    pub submitted: usize,
    /// Admitted by the node they were sent to.
    pub accepted: usize,
    /// Refused at submission (0 expected for this valid load).
    pub rejected: usize,
    /// Refusals by code.
    pub rejected_by_code: BTreeMap<String, usize>,
    /// Accepted transactions finalized by the end of the step.
    pub finalized: usize,
    /// Accepted transactions never seen finalized (0 expected).
    pub lost: usize,
    /// Transactions (all of the chain's) finalized per second while sending,
    /// after a warm-up of a quarter of the step (at most 5 s).
    pub committed_tps: f64,
    /// Blocks finalized in that window and their mean size.
    pub blocks: usize,
    /// Mean transactions per block in that window.
    pub mean_block_txs: f64,
    /// Finality latency percentiles (ms) from scheduled send to finalized.
    pub latency_ms: Percentiles,
    /// Seconds from the last scheduled send until everything was final.
    pub drain_s: f64,
    /// Worst lag of the load generator behind its schedule (ms).
    pub schedule_lag_ms: f64,
    /// CPU of each node during the step, percent of one core.
    pub cpu_pct: Vec<f64>,
    /// CPU of the load generator itself, percent of one core.
    pub loadgen_cpu_pct: f64,
    /// Peak resident memory of each node so far, MiB.
    pub peak_rss_mib: Vec<f64>,
    /// Resident memory of each node at the end of the step, MiB.
    pub rss_mib: Vec<f64>,
    /// Growth of the nodes' data directories per finalized transaction
    /// (mean over nodes), bytes.
    pub disk_bytes_per_tx: f64,
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Percentiles {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Worst.
    pub max: f64,
}

impl Percentiles {
    fn of(mut samples: Vec<f64>) -> Percentiles {
        if samples.is_empty() {
            return Percentiles::default();
        }
        samples.sort_by(|a, b| a.total_cmp(b));
        let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
        Percentiles {
            p50: at(0.50),
            p95: at(0.95),
            p99: at(0.99),
            max: samples[samples.len() - 1],
        }
    }
}

/// CPU seconds (user + system) of a process, from /proc.
pub fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?;
    Some(ticks / clock_ticks())
}

fn clock_ticks() -> f64 {
    static TICKS: std::sync::OnceLock<f64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100.0)
    })
}

/// Peak resident set (VmHWM) of a process, MiB.
pub fn peak_rss_mib(pid: &str) -> Option<f64> {
    status_mib(pid, "VmHWM:")
}

/// Resident set (VmRSS) of a process now, MiB.
pub fn rss_mib(pid: &str) -> Option<f64> {
    status_mib(pid, "VmRSS:")
}

/// A kB field of `/proc/PID/status`, in MiB.
fn status_mib(pid: &str, field: &str) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

/// Bytes allocated on disk under `dir`.
pub fn disk_bytes(dir: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.metadata() {
            Ok(m) if m.is_dir() => disk_bytes(&e.path()),
            Ok(m) => m.blocks() * 512,
            Err(_) => 0,
        })
        .sum()
}

/// Knobs of one step.
#[derive(Debug, Clone, Copy)]
pub struct StepConfig {
    /// Offered transactions per second.
    pub rate: f64,
    /// Sending time.
    pub duration: Duration,
    /// One transaction in this many is a redemption (the rest transfers).
    pub redeem_every: usize,
    /// Transactions per request at most.
    pub batch_max: usize,
    /// Sender threads.
    pub senders: usize,
    /// Longest wait for the last transactions after sending stops.
    pub drain_timeout: Duration,
}

/// How long the bench's signed orders stay valid: longer than any step,
/// within the protocol's one day.
const ORDER_VALID_MS: u64 = 6 * 3_600_000;

/// Runs one open-loop step of transfers and redemptions from `accounts`.
pub fn run_step(
    alliance: &Alliance,
    tracker: &FinalityTracker,
    accounts: &mut Accounts,
    cfg: StepConfig,
) -> StepResult {
    let total = (cfg.rate * cfg.duration.as_secs_f64()).round() as usize;
    let merchants = alliance.keys.len();
    let mut jobs = Vec::with_capacity(total);
    let mut picked = Vec::with_capacity(total);
    let mut lcg: u64 = 0x9e37_79b9_7f4a_7c15 ^ total as u64;
    for k in 0..total {
        let a = accounts.pick();
        lcg = lcg
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let body = if cfg.redeem_every > 0 && k % cfg.redeem_every == cfg.redeem_every - 1 {
            // A till's order, priced at one point of face value and signed
            // by the merchant: the customer pays with any member's points.
            let m = (lcg >> 33) as usize % merchants;
            let order = OrderRequest {
                merchant: demo_merchant_id(m),
                merchant_key: alliance.keys[m].public(),
                customer: accounts.public(a),
                // The signer's nonce makes it unique at every merchant
                // for the whole run (one order, one redemption).
                order_ref: format!("bench-{a}-{}", accounts.nonces[a]),
                value_minor: 1,
                issuers: Vec::new(),
                // Signed before the step starts; valid for its whole length.
                valid_until_ms: crate::now_ms() + ORDER_VALID_MS,
            };
            TxBody::RedeemOrder {
                merchant_signature: order.sign(&alliance.chain_id, &alliance.keys[m]),
                order,
            }
        } else {
            let mut to = (lcg >> 33) as usize % accounts.len();
            if to == a {
                to = (to + 1) % accounts.len();
            }
            TxBody::Transfer {
                to: accounts.public(to),
                amount: 1,
                memo: String::new(),
            }
        };
        jobs.push((accounts.keys[a].clone(), accounts.nonces[a], body));
        accounts.nonces[a] += 1;
        picked.push(a);
    }
    let signed = sign_all(&alliance.chain_id, jobs);
    let txs: Vec<Prepared> = signed
        .into_iter()
        .zip(picked)
        .enumerate()
        .map(|(k, ((hash, json), a))| Prepared {
            hash,
            json,
            account: Some(a),
            due: Duration::from_secs_f64(k as f64 / cfg.rate),
        })
        .collect();

    let pids: Vec<String> = alliance
        .nodes
        .iter()
        .map(|n| n.pid().map(|p| p.to_string()).unwrap_or_default())
        .collect();
    let cpu_before: Vec<f64> = pids.iter().map(|p| cpu_seconds(p).unwrap_or(0.0)).collect();
    let self_before = cpu_seconds("self").unwrap_or(0.0);
    let disk_before: Vec<u64> = alliance
        .nodes
        .iter()
        .map(|n| disk_bytes(&n.home.join("db")))
        .collect();

    let (outcomes, start, lag) = drive(alliance, &txs, cfg.batch_max, cfg.senders);
    let send_end = start + cfg.duration;
    let wall = start
        .elapsed()
        .as_secs_f64()
        .max(cfg.duration.as_secs_f64());
    let cpu_pct: Vec<f64> = pids
        .iter()
        .zip(&cpu_before)
        .map(|(p, b)| 100.0 * (cpu_seconds(p).unwrap_or(*b) - b) / wall)
        .collect();
    let loadgen_cpu_pct = 100.0 * (cpu_seconds("self").unwrap_or(self_before) - self_before) / wall;

    let mut rejected_by_code = BTreeMap::new();
    let mut accepted_hashes = Vec::new();
    for (t, o) in txs.iter().zip(&outcomes) {
        match o {
            Some(Sent::Accepted) => accepted_hashes.push(t.hash),
            Some(Sent::Refused(code)) => {
                *rejected_by_code.entry(code.clone()).or_insert(0) += 1;
                if let Some(a) = t.account {
                    accounts.tainted[a] = true;
                }
            }
            None => {
                *rejected_by_code.entry("unsent".into()).or_insert(0) += 1;
            }
        }
    }
    let finalized = wait_finalized(tracker, &accepted_hashes, cfg.drain_timeout);
    let drain_s = Instant::now()
        .saturating_duration_since(send_end)
        .as_secs_f64();

    let mut latencies = Vec::with_capacity(accepted_hashes.len());
    let mut last_final = start;
    for t in &txs {
        if let Some(at) = tracker.finalized_at(&t.hash) {
            latencies.push(at.saturating_duration_since(start + t.due).as_secs_f64() * 1e3);
            last_final = last_final.max(at);
        } else if let Some(a) = t.account {
            accounts.tainted[a] = true;
        }
    }
    let warmup = (cfg.duration / 4).min(Duration::from_secs(5));
    let (blocks, block_txs) = tracker.blocks_between(start + warmup, send_end);
    let window = (cfg.duration - warmup).as_secs_f64();
    let disk_after: u64 = alliance
        .nodes
        .iter()
        .map(|n| disk_bytes(&n.home.join("db")))
        .sum();
    let disk_delta =
        disk_after.saturating_sub(disk_before.iter().sum()) as f64 / alliance.nodes.len() as f64;
    let rejected = rejected_by_code.values().sum();
    StepResult {
        offered_tps: cfg.rate,
        duration_s: cfg.duration.as_secs_f64(),
        submitted: txs.len(),
        accepted: accepted_hashes.len(),
        rejected,
        rejected_by_code,
        finalized,
        lost: accepted_hashes.len() - finalized,
        committed_tps: block_txs as f64 / window,
        blocks,
        mean_block_txs: if blocks > 0 {
            block_txs as f64 / blocks as f64
        } else {
            0.0
        },
        latency_ms: Percentiles::of(latencies),
        drain_s: last_final
            .saturating_duration_since(send_end)
            .as_secs_f64()
            .min(drain_s),
        schedule_lag_ms: lag.as_secs_f64() * 1e3,
        cpu_pct,
        loadgen_cpu_pct,
        peak_rss_mib: pids
            .iter()
            .map(|p| peak_rss_mib(p).unwrap_or(0.0))
            .collect(),
        rss_mib: pids.iter().map(|p| rss_mib(p).unwrap_or(0.0)).collect(),
        disk_bytes_per_tx: if finalized > 0 {
            disk_delta / finalized as f64
        } else {
            0.0
        },
    }
}
