//! `alliance-node devnet`: a local alliance on one machine. Creates demo
//! merchants (keys derived from the chain id: for demos only), starts one
//! real `alliance-node run` process per merchant (real libp2p on loopback,
//! real sled), runs the domain's worked example through the HTTP API, prints
//! where everything is, and stops every node on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use alliance_protocol::fixtures::{demo_customer_key, demo_genesis, demo_merchant_id};
use alliance_protocol::redemption::{AcceptanceRate, AcceptanceTerms, OrderRequest};
use alliance_protocol::{Keypair, MerchantId, Transaction, TxBody};
use anyhow::{anyhow, bail, Context, Result};
use serde_json::Value;

use crate::keyfile::{self, KEY_FILE};

/// Chain id of every devnet.
pub const DEVNET_CHAIN_ID: &str = "alliance-devnet";
/// How long the devnet waits for a node or a transaction.
const WAIT: Duration = Duration::from_secs(60);

/// Devnet settings.
#[derive(Debug, Clone)]
pub struct DevnetOptions {
    /// Number of merchants (validators).
    pub validators: usize,
    /// Working directory; a fresh one under the temp dir when `None`.
    pub dir: Option<PathBuf>,
    /// Node i serves its API on `api_port + i`.
    pub api_port: u16,
    /// Node i listens for peers on `p2p_port + i`.
    pub p2p_port: u16,
    /// Skip the demo transactions.
    pub no_demo: bool,
}

/// Running devnet nodes; dropping it kills any still running.
pub struct Devnet {
    /// Working directory.
    pub dir: PathBuf,
    children: Vec<Child>,
    /// API base URLs, by node.
    pub apis: Vec<String>,
}

impl Drop for Devnet {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn get(url: &str) -> Option<Value> {
    match ureq::get(url).timeout(Duration::from_secs(5)).call() {
        Ok(r) => r.into_json().ok(),
        Err(ureq::Error::Status(_, r)) => r.into_json().ok(),
        Err(_) => None,
    }
}

/// The devnet's `acceptance_notice_blocks` (a real alliance's default is a
/// day of blocks).
pub const DEVNET_ACCEPTANCE_NOTICE_BLOCKS: u64 = 5;

fn wait_for<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> Result<T> {
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = f() {
            return Ok(v);
        }
        if Instant::now() > deadline {
            bail!("timed out after {WAIT:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Devnet {
    /// Creates the genesis and homes and starts every node.
    pub fn start(opts: &DevnetOptions) -> Result<Devnet> {
        if opts.validators == 0 || opts.validators > 16 {
            bail!("--validators must be 1..=16");
        }
        let dir = match &opts.dir {
            Some(d) => d.clone(),
            None => {
                std::env::temp_dir().join(format!("alliance-devnet-{}", crate::runtime::now_ms()))
            }
        };
        if dir.join("genesis.json").exists() {
            bail!(
                "{} already holds a devnet; pass another --dir (or omit it for a fresh one)",
                dir.display()
            );
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let (mut genesis, keys) =
            demo_genesis(DEVNET_CHAIN_ID, opts.validators, crate::runtime::now_ms());
        // A devnet is for trying things: an acceptance change applies after
        // a few seconds, not a day.
        genesis.params.acceptance_notice_blocks = DEVNET_ACCEPTANCE_NOTICE_BLOCKS;
        std::fs::write(dir.join("genesis.json"), genesis.to_json())?;
        for (i, key) in keys.iter().enumerate() {
            let home = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&home)?;
            keyfile::create(&home.join(KEY_FILE), key)?;
        }
        let genesis_hash = genesis.hash().to_hex();
        let exe = std::env::current_exe().context("cannot find the alliance-node binary")?;
        let mut devnet = Devnet {
            dir: dir.clone(),
            children: Vec::new(),
            apis: Vec::new(),
        };
        for i in 0..opts.validators {
            let api = format!("127.0.0.1:{}", opts.api_port as usize + i);
            let mut cmd = Command::new(&exe);
            cmd.arg("run")
                .arg("--home")
                .arg(dir.join(format!("node{i}")))
                .arg("--genesis")
                .arg(dir.join("genesis.json"));
            cmd.args([
                "--listen",
                &format!("/ip4/127.0.0.1/tcp/{}", opts.p2p_port as usize + i),
                "--api",
                &api,
            ]);
            for j in (0..opts.validators).filter(|j| *j != i) {
                cmd.args([
                    "--peer",
                    &format!("/ip4/127.0.0.1/tcp/{}", opts.p2p_port as usize + j),
                ]);
            }
            let log = std::fs::File::create(dir.join(format!("node{i}.log")))?;
            let child = cmd
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .context("cannot start a node")?;
            devnet.children.push(child);
            devnet.apis.push(format!("http://{api}"));
        }
        for (i, api) in devnet.apis.clone().iter().enumerate() {
            let status_url = format!("{api}/v1/status");
            let log = dir.join(format!("node{i}.log"));
            let exited = |d: &mut Devnet| d.children[i].try_wait().ok().flatten().is_some();
            wait_for(&format!("node {i} at {api}"), || {
                if exited(&mut devnet) {
                    return Some(Err(()));
                }
                // Only our own node counts: another devnet on the same port
                // runs the same chain id and demo keys, but another genesis.
                let status = get(&status_url)?;
                if status["genesis_hash"].as_str() != Some(genesis_hash.as_str()) {
                    return Some(Err(()));
                }
                Some(Ok(()))
            })?
            .map_err(|_| anyhow!("node {i} did not start, or another alliance node already answers on port {} (another devnet running? pass --api-port / --p2p-port); see {}", opts.api_port as usize + i, log.display()))?;
        }
        wait_for("the first finalized block", || {
            get(&format!("{}/v1/status", devnet.apis[0]))?["height"]
                .as_u64()
                .filter(|h| *h >= 1)
        })?;
        Ok(devnet)
    }

    fn submit(&self, node: usize, tx: &Transaction) -> Result<String> {
        let url = format!("{}/v1/transactions", self.apis[node]);
        let body = serde_json::to_value(tx)?;
        let reply: Value = match ureq::post(&url)
            .timeout(Duration::from_secs(5))
            .send_json(body)
        {
            Ok(r) => r.into_json()?,
            Err(ureq::Error::Status(code, r)) => bail!(
                "node refused the transaction ({code}): {}",
                r.into_string().unwrap_or_default()
            ),
            Err(e) => bail!("cannot reach {url}: {e}"),
        };
        let hash = reply["hash"]
            .as_str()
            .ok_or_else(|| anyhow!("no hash in {reply}"))?
            .to_string();
        let status_url = format!("{}/v1/transactions/{hash}", self.apis[node]);
        let status = wait_for(&format!("transaction {hash}"), || {
            get(&status_url).filter(|s| s["status"] == "committed")
        })?;
        if status["result"]["applied"] != true {
            bail!("demo transaction rejected: {}", status["result"]);
        }
        Ok(hash)
    }

    /// The worked example: coffee issues 120 to Alice, Alice gives 20 to
    /// Bob; the bookstore accepts coffee's points at 90 % (after the notice
    /// period) and Alice pays a 0.90 order there with 100 of them; the
    /// bookstore confirms coffee's payment of part of its claim. Needs at
    /// least 2 merchants.
    pub fn demo(&self, keys: &[Keypair]) -> Result<Vec<String>> {
        let mut log = Vec::new();
        if keys.len() < 2 {
            log.push("demo skipped: it needs two merchants".to_string());
            return Ok(log);
        }
        let chain = DEVNET_CHAIN_ID;
        let (alice, bob) = (
            demo_customer_key(chain, "alice"),
            demo_customer_key(chain, "bob"),
        );
        let (coffee, books) = (&keys[0], &keys[1]);
        let (coffee_id, books_id): (MerchantId, MerchantId) =
            (demo_merchant_id(0), demo_merchant_id(1));
        let n = keys.len();
        let nonce = |k: &Keypair| {
            get(&format!("{}/v1/accounts/{}", self.apis[0], k.public()))
                .and_then(|a| a["nonce"].as_u64())
                .unwrap_or(0)
        };
        let height =
            || get(&format!("{}/v1/status", self.apis[0])).and_then(|s| s["height"].as_u64());
        let receipt_time_ms = crate::runtime::now_ms();
        let receipt = format!("demo-receipt-{receipt_time_ms}");
        self.submit(
            0,
            &Transaction::sign(
                chain,
                coffee,
                nonce(coffee),
                TxBody::Issue {
                    to: alice.public(),
                    amount: 120,
                    reason: "12 coffees".into(),
                    receipt_ref: receipt,
                    receipt_time_ms,
                },
            ),
        )?;
        log.push(format!("{coffee_id} issued 120 points to alice"));
        self.submit(
            1 % n,
            &Transaction::sign(
                chain,
                &alice,
                nonce(&alice),
                TxBody::Transfer {
                    to: bob.public(),
                    amount: 20,
                    memo: "a gift".into(),
                },
            ),
        )?;
        log.push("alice gave 20 points to bob".into());
        // The bookstore takes coffee's points at 90 % of their value, once
        // the notice has passed (a margin of two blocks for inclusion).
        let from =
            height().ok_or_else(|| anyhow!("no status"))? + 1 + DEVNET_ACCEPTANCE_NOTICE_BLOCKS + 2;
        self.submit(
            1 % n,
            &Transaction::sign(
                chain,
                books,
                nonce(books),
                TxBody::SetAcceptance {
                    terms: AcceptanceTerms {
                        rates: vec![AcceptanceRate {
                            issuer: coffee_id.clone(),
                            bps: 9_000,
                        }],
                        conversions: vec![],
                    },
                    effective_height: from,
                },
            ),
        )?;
        wait_for(&format!("height {from}"), || {
            height().filter(|h| *h + 1 >= from)
        })?;
        log.push(format!(
            "{books_id} accepts {coffee_id}'s points at 90% of their value from height {from}"
        ));
        // At the bookstore's till: an order of 0.90, which the bookstore
        // signs and alice pays. 100 coffee points at 1.00 per 100, taken at
        // 90 %, are worth exactly 0.90.
        let order = OrderRequest {
            merchant: books_id.clone(),
            merchant_key: books.public(),
            customer: alice.public(),
            order_ref: "demo-order-1".into(),
            value_minor: 90,
            issuers: vec![],
            valid_until_ms: crate::runtime::now_ms() + 600_000,
        };
        self.submit(
            1 % n,
            &Transaction::sign(
                chain,
                &alice,
                nonce(&alice),
                TxBody::RedeemOrder {
                    merchant_signature: order.sign(chain, books),
                    order,
                },
            ),
        )?;
        log.push(format!("alice paid a 0.90 order at {books_id} with 100 {coffee_id} points: {books_id} now has a claim of 0.90 on {coffee_id}"));
        self.submit(
            1 % n,
            &Transaction::sign(
                chain,
                books,
                nonce(books),
                TxBody::SettlementConfirm {
                    debtor: coffee_id.clone(),
                    amount: 60,
                },
            ),
        )?;
        log.push(format!(
            "{books_id} confirmed that {coffee_id} paid for 60 of those points (40 still owed)"
        ));
        Ok(log)
    }

    /// Sends SIGTERM to every node and waits for them to exit.
    pub fn stop(&mut self) {
        for c in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(c.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        for c in &mut self.children {
            loop {
                if c.try_wait().ok().flatten().is_some() || Instant::now() > deadline {
                    let _ = c.kill();
                    let _ = c.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.children.clear();
    }
}

/// Runs a devnet until Ctrl-C (or SIGTERM).
pub fn run(opts: DevnetOptions, shutdown: impl FnOnce()) -> Result<()> {
    println!(
        "Starting a local alliance of {} merchants...",
        opts.validators
    );
    let mut devnet = Devnet::start(&opts)?;
    let keys: Vec<Keypair> = (0..opts.validators)
        .map(|i| alliance_protocol::fixtures::demo_merchant_key(DEVNET_CHAIN_ID, i))
        .collect();
    if !opts.no_demo {
        for line in devnet.demo(&keys)? {
            println!("  demo: {line}");
        }
    }
    print_guide(&devnet, &keys, &opts);
    shutdown();
    println!("\nStopping {} nodes...", devnet.apis.len());
    devnet.stop();
    println!("Stopped. Data kept in {}", devnet.dir.display());
    Ok(())
}

fn print_guide(devnet: &Devnet, keys: &[Keypair], opts: &DevnetOptions) {
    let dir: &Path = &devnet.dir;
    println!(
        "\nThe alliance is running (chain {DEVNET_CHAIN_ID}), data in {}",
        dir.display()
    );
    for (i, api) in devnet.apis.iter().enumerate() {
        println!(
            "  node {i} ({}): API {api}/v1/status   log {}",
            demo_merchant_id(i),
            dir.join(format!("node{i}.log")).display()
        );
    }
    let alice = demo_customer_key(DEVNET_CHAIN_ID, "alice").public();
    let api = &devnet.apis[0];
    println!("\nTry:");
    println!("  curl -s {api}/v1/status");
    println!("  curl -s {api}/v1/accounts/{alice}      # alice");
    println!("  curl -s {api}/v1/merchants");
    println!("  curl -s {api}/v1/settlement                # who owes whom");
    println!("  curl -s {api}/v1/blocks/1");
    if !opts.no_demo && keys.len() >= 2 {
        println!("\nDemo customers are derived keys (labels alice, bob on this chain). Your own wallet: `alliance keygen --out me.json`, then `alliance --node {api} balance --key me.json` (docs/cli.md).");
    }
    println!("\nPress Ctrl-C to stop every node.");
}
