//! Harness for end-to-end tests: starts real `alliance-node` processes on
//! loopback with a demo genesis, talks to them over real HTTP, and waits on
//! conditions with deadlines (never sleep-and-hope).

pub mod bench;
pub mod bench_ceiling;
pub mod bench_report;
pub mod big_state;
pub mod devnet;
pub mod fuzz;
pub mod memory_report;
pub mod netns;
pub mod store_bench;

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use alliance_protocol::fixtures::{demo_customer_key, demo_merchant_key};
use alliance_protocol::{Keypair, PublicKey, Transaction, TxBody};
use serde_json::Value;

/// A binary of this workspace built by `cargo test --workspace` (it sits
/// next to the test executable's `deps/` directory): `alliance-node` is
/// built for the node's own integration tests, `alliance` for the client's.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // A test runs from target/<profile>/deps; a binary of this crate (the
    // fuzzer, the benchmark driver) from target/<profile> itself.
    let here = exe.parent().expect("executable directory");
    let dir = if here.join(name).exists() {
        here
    } else {
        here.parent().expect("target/<profile>")
    };
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} not built: run `cargo build --workspace` (cargo test --workspace builds it)",
        bin.display()
    );
    bin
}

/// The `alliance-node` binary.
pub fn node_binary() -> PathBuf {
    binary("alliance-node")
}

/// The `alliance` CLI binary.
pub fn cli_binary() -> PathBuf {
    binary("alliance")
}

/// Test ports come from below the kernel's ephemeral range (32768-60999 on
/// Linux): a port picked by binding port 0 is ephemeral, and under load an
/// outbound connection of another process can take it between our check
/// and the node's own bind. Each test process walks its own window.
const TEST_PORTS: (u32, u32) = (20_000, 32_000);
static NEXT_PORT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

/// `count` consecutive free TCP ports on 127.0.0.1; returns the first.
pub fn free_port_range(count: u16) -> u16 {
    let span = TEST_PORTS.1 - TEST_PORTS.0 - count as u32;
    let offset = (std::process::id() * 7_919) % span;
    for _ in 0..span {
        let n = NEXT_PORT.fetch_add(count as u32, std::sync::atomic::Ordering::Relaxed);
        let start = (TEST_PORTS.0 + (offset + n) % span) as u16;
        if (0..count).all(|i| TcpListener::bind(("127.0.0.1", start + i)).is_ok()) {
            return start;
        }
    }
    panic!("no {count} free consecutive ports in {TEST_PORTS:?}");
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    free_port_range(1)
}

/// Polls `f` until it returns `Some` or the deadline passes.
pub fn wait_for<T>(what: &str, timeout: Duration, f: impl FnMut() -> Option<T>) -> T {
    poll_until(timeout, f)
        .unwrap_or_else(|| panic!("timed out after {timeout:?} waiting for {what}"))
}

/// GET a JSON URL; `None` on connection errors (node down or starting).
/// Error statuses still return their JSON body.
pub fn http_get(url: &str) -> Option<Value> {
    match ureq::get(url).timeout(Duration::from_secs(5)).call() {
        Ok(r) => r.into_json().ok(),
        Err(ureq::Error::Status(_, r)) => r.into_json().ok(),
        Err(_) => None,
    }
}

/// POST JSON to a URL; returns (status, body), `None` on connection errors.
pub fn http_post(url: &str, body: &Value) -> Option<(u16, Value)> {
    match ureq::post(url)
        .timeout(Duration::from_secs(5))
        .send_json(body.clone())
    {
        Ok(r) => Some((r.status(), r.into_json().ok()?)),
        Err(ureq::Error::Status(code, r)) => Some((code, r.into_json().ok()?)),
        Err(_) => None,
    }
}

/// One node process.
pub struct Node {
    /// Index in the alliance.
    pub index: usize,
    /// Its home directory.
    pub home: PathBuf,
    /// libp2p port.
    pub p2p_port: u16,
    /// API base URL.
    pub api: String,
    api_port: u16,
    child: Option<Child>,
}

impl Node {
    /// GET a JSON path; `None` on connection errors (node down or starting).
    pub fn get(&self, path: &str) -> Option<Value> {
        http_get(&format!("{}{path}", self.api))
    }

    /// POST JSON; returns (status, body).
    pub fn post(&self, path: &str, body: &Value) -> Option<(u16, Value)> {
        http_post(&format!("{}{path}", self.api), body)
    }

    /// Submits a transaction; returns its hash or panics with the API error.
    pub fn submit(&self, tx: &Transaction) -> String {
        let (status, body) = self
            .post("/v1/transactions", &serde_json::to_value(tx).unwrap())
            .expect("node answers");
        assert_eq!(status, 200, "submit refused: {body}");
        body["hash"].as_str().unwrap().to_string()
    }

    /// Finalized height, if the node answers.
    pub fn height(&self) -> Option<u64> {
        self.get("/v1/status")?["height"].as_u64()
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running.
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// The exit status once the process has exited by itself (it is then
    /// no longer running); `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(status)
    }

    /// SIGKILL.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for a clean exit; returns the exit status code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = c.try_wait() {
                return status.code();
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                let _ = c.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A local alliance of `n` demo merchants, each a real process.
pub struct Alliance {
    /// Working directory (genesis, homes, logs).
    pub dir: tempfile::TempDir,
    /// Chain id.
    pub chain_id: String,
    /// The nodes.
    pub nodes: Vec<Node>,
    /// Merchant keys, by node index.
    pub keys: Vec<Keypair>,
    /// Extra `alliance-node run` arguments, by node index.
    pub extra_args: std::collections::BTreeMap<usize, Vec<String>>,
    /// Network namespaces the nodes run in (`None`: loopback). Dropped
    /// last, after the nodes are killed.
    pub net: Option<netns::Netns>,
}

impl Drop for Alliance {
    fn drop(&mut self) {
        // Processes first: the data directory and namespaces go after.
        for node in &mut self.nodes {
            node.kill();
        }
    }
}

impl Alliance {
    /// Creates the genesis and homes for `n` validators and starts them all.
    pub fn start(n: usize) -> Alliance {
        Self::start_with_config(n, None)
    }

    /// Like [`Alliance::start`], writing `config_toml` as every node's
    /// `config.toml` first.
    pub fn start_with_config(n: usize, config_toml: Option<&str>) -> Alliance {
        let mut a = Self::create(n, config_toml);
        for i in 0..n {
            a.launch(i);
        }
        a
    }

    /// Like [`Alliance::start`], each node in its own network namespace
    /// (see [`netns`]), or `None` where namespaces are unavailable (not
    /// root): the caller skips loudly.
    pub fn start_in_netns(n: usize) -> Option<Alliance> {
        let net = netns::Netns::create(n).ok()?;
        let mut a = Self::create(n, None);
        for node in &mut a.nodes {
            node.api = format!("http://{}:{}", net.addr(node.index), node.api_port);
        }
        a.net = Some(net);
        for i in 0..n {
            a.launch(i);
        }
        Some(a)
    }

    /// Creates the genesis and homes for `n` validators without starting
    /// them (start each with [`Alliance::launch`]).
    pub fn create(n: usize, config_toml: Option<&str>) -> Alliance {
        let dir = tempfile::tempdir().expect("temp dir");
        let chain_id = "e2e-chain".to_string();
        let status = Command::new(node_binary())
            .args([
                "genesis",
                "demo",
                "--chain-id",
                &chain_id,
                "--validators",
                &n.to_string(),
                "--out",
            ])
            .arg(dir.path().join("genesis.json"))
            .arg("--homes")
            .arg(dir.path())
            .stdout(Stdio::null())
            .status()
            .expect("run alliance-node genesis demo");
        assert!(status.success(), "genesis demo failed");
        let nodes = (0..n)
            .map(|i| Node {
                index: i,
                home: dir.path().join(format!("node{i}")),
                p2p_port: free_port(),
                api_port: free_port(),
                api: String::new(),
                child: None,
            })
            .map(|mut node| {
                node.api = format!("http://127.0.0.1:{}", node.api_port);
                node
            })
            .collect();
        let keys = (0..n).map(|i| demo_merchant_key(&chain_id, i)).collect();
        let a = Alliance {
            dir,
            chain_id,
            nodes,
            keys,
            extra_args: Default::default(),
            net: None,
        };
        if let Some(text) = config_toml {
            for node in &a.nodes {
                std::fs::write(node.home.join("config.toml"), text).expect("write config.toml");
            }
        }
        a
    }

    /// The address node `i` binds: its namespace's, or loopback.
    pub fn host(&self, i: usize) -> String {
        match &self.net {
            Some(net) => net.addr(i).to_string(),
            None => "127.0.0.1".into(),
        }
    }

    /// The genesis file.
    pub fn genesis_path(&self) -> PathBuf {
        self.dir.path().join("genesis.json")
    }

    /// Starts (or restarts) node `i` with every other node as a peer.
    pub fn launch(&mut self, i: usize) {
        let peers: Vec<String> = self
            .nodes
            .iter()
            .filter(|n| n.index != i)
            .map(|n| format!("/ip4/{}/tcp/{}", self.host(n.index), n.p2p_port))
            .collect();
        let node = &self.nodes[i];
        let host = self.host(i);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{i}.log")))
            .expect("log file");
        let mut cmd = match &self.net {
            // `ip netns exec` execs the node: the child is the node itself.
            Some(net) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", net.name(i)]).arg(node_binary());
                c
            }
            None => Command::new(node_binary()),
        };
        cmd.arg("run")
            .arg("--home")
            .arg(&node.home)
            .arg("--genesis")
            .arg(self.genesis_path());
        cmd.args([
            "--listen",
            &format!("/ip4/{host}/tcp/{}", node.p2p_port),
            "--api",
            &format!("{host}:{}", node.api_port),
        ]);
        for p in &peers {
            cmd.args(["--peer", p]);
        }
        cmd.args(self.extra_args.get(&i).into_iter().flatten());
        // The node logs to stdout; both streams go to its log file.
        let out = log.try_clone().expect("log file handle");
        let child = cmd
            .stdout(out)
            .stderr(log)
            .spawn()
            .expect("spawn alliance-node run");
        self.nodes[i].child = Some(child);
        self.wait_started(i);
    }

    /// Adds a node whose home already exists (created by `alliance-node
    /// init`) and starts it with every other node as a peer. Returns its index.
    pub fn add_node(&mut self, home: PathBuf) -> usize {
        let i = self.nodes.len();
        let api_port = free_port();
        self.nodes.push(Node {
            index: i,
            home,
            p2p_port: free_port(),
            api_port,
            api: format!("http://127.0.0.1:{api_port}"),
            child: None,
        });
        self.launch(i);
        i
    }

    /// Starts a non-validator node (fresh key, `alliance-node init`) that
    /// knows only `peer` and syncs from it. Returns its index.
    pub fn launch_observer(&mut self, peer: usize) -> usize {
        let i = self.nodes.len();
        let home = self.dir.path().join(format!("observer{i}"));
        let status = Command::new(node_binary())
            .arg("init")
            .arg("--home")
            .arg(&home)
            .stdout(Stdio::null())
            .status()
            .expect("init");
        assert!(status.success());
        let mut node = Node {
            index: i,
            home,
            p2p_port: free_port(),
            api_port: free_port(),
            api: String::new(),
            child: None,
        };
        node.api = format!("http://127.0.0.1:{}", node.api_port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join(format!("node{i}.log")))
            .expect("log file");
        let child = Command::new(node_binary())
            .arg("run")
            .arg("--home")
            .arg(&node.home)
            .arg("--genesis")
            .arg(self.genesis_path())
            .args([
                "--listen",
                &format!("/ip4/127.0.0.1/tcp/{}", node.p2p_port),
                "--api",
                &format!("127.0.0.1:{}", node.api_port),
            ])
            .args([
                "--peer",
                &format!("/ip4/127.0.0.1/tcp/{}", self.nodes[peer].p2p_port),
            ])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn observer");
        node.child = Some(child);
        self.nodes.push(node);
        self.wait_started(i);
        i
    }

    /// Waits for node `i`'s API; fails at once, with its log, if it exits.
    fn wait_started(&mut self, i: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if self.nodes[i].height().is_some() {
                return;
            }
            let exited = self.nodes[i]
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                self.nodes[i].child = None;
                panic!("node {i} exited at start ({status}):\n{}", self.log(i));
            }
            assert!(
                Instant::now() < deadline,
                "node {i} API not up after 60 s:\n{}",
                self.log(i)
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Node `i`'s log so far (for failure messages).
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.dir.path().join(format!("node{i}.log"))).unwrap_or_default()
    }

    /// Waits until every running node has finalized `height`.
    pub fn wait_height(&self, height: u64, timeout: Duration) {
        wait_for(
            &format!("height {height} on every running node"),
            timeout,
            || {
                self.nodes
                    .iter()
                    .filter(|n| n.is_running())
                    .all(|n| n.height().is_some_and(|h| h >= height))
                    .then_some(())
            },
        );
    }

    /// Waits until `tx_hash` is committed on every running node; returns its
    /// status object from node 0 (or the first running node).
    pub fn wait_committed(&self, tx_hash: &str, timeout: Duration) -> Value {
        wait_for(
            &format!("transaction {tx_hash} committed everywhere"),
            timeout,
            || {
                let mut first = None;
                for n in self.nodes.iter().filter(|n| n.is_running()) {
                    let s = n.get(&format!("/v1/transactions/{tx_hash}"))?;
                    if s["status"] != "committed" {
                        return None;
                    }
                    first.get_or_insert(s);
                }
                first
            },
        )
    }

    /// Funds `n` customers (`c0`, `c1`...) from merchant 0 through node 0
    /// and waits until the last funding is committed everywhere.
    pub fn fund(&self, n: usize, amount: u64) -> Vec<Keypair> {
        let customers: Vec<_> = (0..n)
            .map(|i| demo_customer_key(&self.chain_id, &format!("c{i}")))
            .collect();
        let mut last = String::new();
        for (i, c) in customers.iter().enumerate() {
            let tx = Transaction::sign(
                &self.chain_id,
                &self.keys[0],
                i as u64,
                TxBody::Issue {
                    to: c.public(),
                    amount,
                    reason: "fund".into(),
                    receipt_ref: format!("fund{i}"),
                    receipt_time_ms: now_ms(),
                },
            );
            last = self.nodes[0].submit(&tx);
        }
        self.wait_committed(&last, Duration::from_secs(60));
        customers
    }

    /// Asserts that the running nodes hold the same block hash at every
    /// height up to the lowest of their tips (no fork); returns that height.
    pub fn assert_same_chain(&self) -> u64 {
        self.assert_same_chain_of(
            &self
                .nodes
                .iter()
                .filter(|n| n.is_running())
                .map(|n| n.index)
                .collect::<Vec<_>>(),
        )
    }

    /// [`Alliance::assert_same_chain`] over the nodes `which`.
    pub fn assert_same_chain_of(&self, which: &[usize]) -> u64 {
        let tip = which
            .iter()
            .map(|&i| self.nodes[i].height().expect("node answers"))
            .min()
            .expect("some node");
        for height in 1..=tip {
            let hashes: Vec<Value> = which
                .iter()
                .map(|&i| {
                    self.nodes[i]
                        .get(&format!("/v1/blocks/{height}"))
                        .expect("node answers")["hash"]
                        .clone()
                })
                .collect();
            assert!(
                hashes.windows(2).all(|w| w[0] == w[1]) && hashes[0].is_string(),
                "fork at height {height}: {hashes:?}"
            );
        }
        tip
    }
}

/// Polls `f` until it returns `Some` or the deadline passes; `None` then,
/// so the caller can report what it knows (see
/// [`Alliance::wait_or_diagnose`]).
pub fn poll_until<T>(timeout: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Wall-clock time in ms since the Unix epoch: what a till stamps on a
/// receipt (issuances to a real alliance carry it as their receipt time).
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_millis() as u64
}

/// An issuance on `chain_id` signed by the merchant key `key`: `amount`
/// points to `to` for the receipt `receipt_ref`, with no reason.
pub fn issue_tx(
    chain_id: &str,
    key: &Keypair,
    nonce: u64,
    to: PublicKey,
    amount: u64,
    receipt_ref: &str,
) -> Transaction {
    Transaction::sign(
        chain_id,
        key,
        nonce,
        TxBody::Issue {
            to,
            amount,
            reason: String::new(),
            receipt_ref: receipt_ref.into(),
            receipt_time_ms: now_ms(),
        },
    )
}

impl Alliance {
    /// [`issue_tx`] on this alliance's chain, signed by merchant `m`.
    pub fn issue(
        &self,
        m: usize,
        nonce: u64,
        to: PublicKey,
        amount: u64,
        receipt_ref: &str,
    ) -> Transaction {
        issue_tx(
            &self.chain_id,
            &self.keys[m],
            nonce,
            to,
            amount,
            receipt_ref,
        )
    }

    /// A small real transaction: merchant `m` issues one point to the demo
    /// customer Alice (nonce `nonce`, receipt `tag`).
    pub fn issue_point(&self, m: usize, nonce: u64, tag: &str) -> Transaction {
        let to = demo_customer_key(&self.chain_id, "alice").public();
        self.issue(m, nonce, to, 1, tag)
    }

    /// The last `lines` lines of node `i`'s log, without terminal colours.
    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let log = self.log(i);
        let all: Vec<&str> = log.lines().collect();
        strip_ansi(&all[all.len().saturating_sub(lines)..].join("\n"))
    }

    /// For failure messages: every node's `/v1/status` (or why there is
    /// none) and the last `lines` lines of its log.
    pub fn diagnostics(&self, lines: usize) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            let status = if !n.is_running() {
                "not running (stopped by the test)".to_string()
            } else {
                match n.get("/v1/status") {
                    Some(s) => format!(
                        "height {} view {} syncing {} best_peer_height {} peers {} mempool {}\n{s}",
                        s["height"],
                        s["view"],
                        s["syncing"],
                        s["best_peer_height"],
                        s["peers"].as_array().map_or(0, Vec::len),
                        s["mempool"],
                    ),
                    None => "running, but its API does not answer".to_string(),
                }
            };
            out.push_str(&format!(
                "\n===== node {} /v1/status: {status}\n----- node {} log, last {lines} lines:\n{}\n",
                n.index,
                n.index,
                self.log_tail(n.index, lines)
            ));
        }
        out
    }

    /// Like [`wait_for`], but on timeout panics with [`Alliance::diagnostics`]
    /// (each node's status and log tail).
    pub fn wait_or_diagnose<T>(
        &self,
        what: &str,
        timeout: Duration,
        f: impl FnMut() -> Option<T>,
    ) -> T {
        match poll_until(timeout, f) {
            Some(v) => v,
            None => panic!(
                "timed out after {timeout:?} waiting for {what}\n{}",
                self.diagnostics(40)
            ),
        }
    }
}

/// The `alliance` CLI as a test runs it: against a node (`--node API`)
/// or none, with extra environment variables; no standard input, and
/// `ALLIANCE_NODE` unset unless set here.
#[derive(Debug, Clone, Default)]
pub struct Cli {
    node: Option<String>,
    env: Vec<(String, String)>,
}

impl Cli {
    /// Runs with `--node api` first when `node` is given.
    pub fn new(node: Option<&str>) -> Cli {
        Cli {
            node: node.map(String::from),
            env: Vec::new(),
        }
    }

    /// Sets an environment variable of every run.
    pub fn env(mut self, key: &str, value: &str) -> Cli {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Runs `alliance ARGS` and waits for it.
    pub fn run(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(cli_binary());
        if let Some(api) = &self.node {
            cmd.arg("--node").arg(api);
        }
        cmd.args(args).env_remove("ALLIANCE_NODE");
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        cmd.stdin(Stdio::null()).output().expect("run alliance")
    }

    /// Runs and requires success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "alliance {args:?} failed: {}",
            output_text(&o)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Runs with `--json` first and requires success; returns the JSON.
    pub fn ok_json(&self, args: &[&str]) -> Value {
        let all: Vec<&str> = std::iter::once("--json")
            .chain(args.iter().copied())
            .collect();
        let out = self.ok(&all);
        serde_json::from_str(&out)
            .unwrap_or_else(|e| panic!("alliance {args:?}: not JSON ({e}): {out}"))
    }
}

/// Runs `alliance ARGS` (with `--node API` first when `node` is given);
/// see [`Cli`].
pub fn run_cli(node: Option<&str>, args: &[&str]) -> Output {
    Cli::new(node).run(args)
}

/// A finished command's exit code, stdout and stderr, for messages.
pub fn output_text(o: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// `text` without ANSI escape sequences (`ESC [ ... letter`).
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
