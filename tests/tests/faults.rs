//! Crash and disk faults with real node processes (docs/reliability.md).
//!
//! - `kill9_soak_loses_nothing_and_never_forks`: SIGKILL a random validator
//!   every few seconds under load and restart it; nothing the API reported
//!   finalized is lost, no fork, every node converges. ~35 s here; set
//!   `ALLIANCE_SOAK_SECS` for the long run (scripts/soak.sh).
//! - `read_only_data_dir_fails_clearly_at_start`: non-zero exit naming the
//!   path, store untouched.
//! - `full_disk_stops_the_node_cleanly_and_it_recovers`: a node whose data
//!   directory is a small tmpfs stops with "disk full" when it fills; given
//!   space, its chain verifies and it catches up.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Keypair, Transaction, TxBody};
use alliance_tests::{http_get, http_post, node_binary, wait_for, Alliance};

const T: Duration = Duration::from_secs(60);

/// A small deterministic PRNG (xorshift64*): the seed is printed, so a
/// failing schedule can be replayed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A transaction the API reported finalized: where, and in which block.
struct Finalized {
    hash: String,
    height: u64,
    index: u64,
    block_hash: String,
}

/// What the wallets did.
#[derive(Default)]
struct LoadReport {
    submitted: usize,
    resubmitted: usize,
    finalized: Vec<Finalized>,
}

/// One wallet: a transaction in flight until some node reports it
/// committed. A wallet resubmits the same signed transaction to another
/// node when it has not committed after a while (its first node may have
/// died before gossiping it): resubmission is idempotent.
struct Wallet {
    key: Keypair,
    to: alliance_protocol::PublicKey,
    nonce: u64,
    in_flight: Option<(Transaction, String, Instant)>,
}

/// Wallets sending 1-point transfers in a ring through random nodes until
/// `stop`; each records the finalization the API reports.
fn run_wallets(
    chain_id: String,
    customers: Vec<Keypair>,
    apis: Vec<String>,
    stop: Arc<AtomicBool>,
    seed: u64,
) -> LoadReport {
    let mut rng = Rng(seed ^ 0x9e37_79b9_7f4a_7c15);
    let n = customers.len();
    let mut wallets: Vec<Wallet> = customers
        .iter()
        .enumerate()
        .map(|(i, k)| Wallet {
            key: k.clone(),
            to: customers[(i + 1) % n].public(),
            nonce: 0,
            in_flight: None,
        })
        .collect();
    let mut report = LoadReport::default();
    let resubmit_after = Duration::from_secs(3);
    while !stop.load(Ordering::Relaxed) {
        for w in &mut wallets {
            let api = &apis[rng.below(apis.len() as u64) as usize];
            match &mut w.in_flight {
                None => {
                    let tx = Transaction::sign(
                        &chain_id,
                        &w.key,
                        w.nonce,
                        TxBody::Transfer {
                            to: w.to,
                            amount: 1,
                            memo: format!("soak {}", w.nonce),
                        },
                    );
                    let hash = tx.hash().to_hex();
                    let body = serde_json::to_value(&tx).expect("json");
                    // A node that is down (or refuses) is retried later.
                    let _ = http_post(&format!("{api}/v1/transactions"), &body);
                    report.submitted += 1;
                    w.in_flight = Some((tx, hash, Instant::now()));
                }
                Some((tx, hash, sent)) => {
                    let status = http_get(&format!("{api}/v1/transactions/{hash}"));
                    let committed = status.as_ref().filter(|s| s["status"] == "committed");
                    if let Some(s) = committed {
                        let height = s["height"].as_u64().expect("height");
                        let block = http_get(&format!("{api}/v1/blocks/{height}"));
                        let Some(block_hash) =
                            block.and_then(|b| b["hash"].as_str().map(String::from))
                        else {
                            continue; // the node died in between: ask again
                        };
                        assert_eq!(s["result"]["applied"], true, "ring transfers apply: {s}");
                        report.finalized.push(Finalized {
                            hash: hash.clone(),
                            height,
                            index: s["index"].as_u64().expect("index"),
                            block_hash,
                        });
                        w.nonce += 1;
                        w.in_flight = None;
                    } else if sent.elapsed() > resubmit_after {
                        let body = serde_json::to_value(&*tx).expect("json");
                        let _ = http_post(&format!("{api}/v1/transactions"), &body);
                        report.resubmitted += 1;
                        *sent = Instant::now();
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    report
}

/// Waits until every node reports the same height, tip hash and state root.
fn wait_converged(a: &Alliance) -> (u64, String, String) {
    wait_for("every node at the same tip and state root", T, || {
        let views: Vec<(u64, String, String)> = a
            .nodes
            .iter()
            .map(|n| {
                let s = n.get("/v1/status")?;
                Some((
                    s["height"].as_u64()?,
                    s["tip_hash"].as_str()?.to_string(),
                    s["state_root"].as_str()?.to_string(),
                ))
            })
            .collect::<Option<_>>()?;
        views
            .windows(2)
            .all(|w| w[0] == w[1])
            .then(|| views[0].clone())
    })
}

/// Kill -9 soak: a random validator is SIGKILLed every few seconds under
/// load and restarted. Afterwards every transaction any node reported
/// finalized is on every node at the same height and position in the same
/// block, every height holds the same block everywhere, and all nodes
/// converge to one tip and state root.
#[test]
fn kill9_soak_loses_nothing_and_never_forks() {
    let secs: u64 = std::env::var("ALLIANCE_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(35);
    let seed = std::env::var("ALLIANCE_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
                | 1
        });
    println!("soak: {secs} s, seed {seed} (ALLIANCE_SOAK_SEED to replay)");
    let mut a = Alliance::start(4);
    let customers = a.fund(24, 1_000_000);
    let apis: Vec<String> = a.nodes.iter().map(|n| n.api.clone()).collect();
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (chain_id, stop) = (a.chain_id.clone(), stop.clone());
        std::thread::spawn(move || run_wallets(chain_id, customers, apis, stop, seed))
    };

    let mut rng = Rng(seed);
    let mut kills = BTreeMap::<usize, u32>::new();
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    while Instant::now() < end {
        // The fault schedule: 1.5-4 s up, then SIGKILL, 0.2-1.5 s down.
        std::thread::sleep(Duration::from_millis(1_500 + rng.below(2_500)));
        let victim = rng.below(a.nodes.len() as u64) as usize;
        a.nodes[victim].kill();
        *kills.entry(victim).or_default() += 1;
        std::thread::sleep(Duration::from_millis(200 + rng.below(1_300)));
        a.launch(victim);
    }
    let faulted_for = start.elapsed();
    let height_at_stop = a.nodes.iter().filter_map(|n| n.height()).max().unwrap();
    stop.store(true, Ordering::Relaxed);
    let report = load.join().expect("wallets");
    let (tip, tip_hash, state_root) = wait_converged(&a);
    assert!(tip >= height_at_stop);

    // No fork: one block per height on every node.
    let checked_heights = a.assert_same_chain();
    // Nothing finalized is lost or moved.
    let mut violations = Vec::new();
    for f in &report.finalized {
        for n in &a.nodes {
            let s = n.get(&format!("/v1/transactions/{}", f.hash)).unwrap();
            let b = n.get(&format!("/v1/blocks/{}", f.height)).unwrap();
            if s["status"] != "committed"
                || s["height"].as_u64() != Some(f.height)
                || s["index"].as_u64() != Some(f.index)
                || b["hash"].as_str() != Some(&f.block_hash)
            {
                violations.push(format!("node {}: {} {s} {}", n.index, f.hash, b["hash"]));
            }
        }
    }
    let total_kills: u32 = kills.values().sum();
    println!(
        "soak figures: faulted {:.0} s, {total_kills} SIGKILLs {kills:?}, {} txs submitted \
         ({} resubmissions), {} finalized and checked on {} nodes, heights 1..={checked_heights} \
         identical everywhere, converged at height {tip} tip {tip_hash} state_root {state_root}, \
         violations {}",
        faulted_for.as_secs_f64(),
        report.submitted,
        report.resubmitted,
        report.finalized.len(),
        a.nodes.len(),
        violations.len()
    );
    assert!(violations.is_empty(), "lost or moved: {violations:#?}");
    assert!(total_kills >= 5, "the schedule injected faults");
    assert!(
        report.finalized.len() >= 50,
        "the alliance kept finalizing under faults: {}",
        report.finalized.len()
    );
}

/// Whether this process may mount (root). Tests that need it skip loudly
/// otherwise.
fn can_mount() -> bool {
    let probe = tempfile::tempdir().expect("temp dir");
    let ok = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
        .arg(probe.path())
        .output()
        .is_ok_and(|o| o.status.success());
    if ok {
        let _ = Command::new("umount").arg(probe.path()).status();
    }
    ok
}

/// A mount that is lazily unmounted on drop (also on panic), before the
/// temp dir holding its mount point is removed.
struct Mount(PathBuf);

impl Mount {
    fn tmpfs(at: &Path, size: &str) -> Mount {
        std::fs::create_dir_all(at).expect("mount point");
        run_ok(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
                .arg(at),
        );
        Mount(at.to_path_buf())
    }

    /// A read-only bind mount of `at` over itself (root ignores file modes,
    /// so `chmod` would not make a directory read-only for the test).
    fn read_only(at: &Path) -> Mount {
        run_ok(Command::new("mount").arg("--bind").arg(at).arg(at));
        let m = Mount(at.to_path_buf());
        run_ok(
            Command::new("mount")
                .args(["-o", "remount,ro,bind"])
                .arg(at),
        );
        m
    }

    fn resize(&self, size: &str) {
        run_ok(
            Command::new("mount")
                .args(["-o", &format!("remount,size={size}")])
                .arg(&self.0),
        );
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `alliance-node verify` on a node home: (blocks verified, tip hash).
fn verify(a: &Alliance, i: usize) -> (u64, String) {
    let out = run_ok(
        Command::new(node_binary())
            .arg("verify")
            .arg("--home")
            .arg(&a.nodes[i].home)
            .arg("--genesis")
            .arg(a.genesis_path()),
    );
    // "verified N blocks; tip HASH state_root ROOT"
    let words: Vec<&str> = out.split_whitespace().collect();
    (words[1].parse().expect("block count"), words[4].to_string())
}

/// A data directory made read-only before start: the node exits non-zero
/// with a message naming the directory, and the store is untouched (it
/// verifies once writable again).
#[test]
fn read_only_data_dir_fails_clearly_at_start() {
    let mut a = Alliance::start(1);
    a.wait_height(2, T);
    assert_eq!(a.nodes[0].stop(), Some(0));
    let before = verify(&a, 0);
    let db = a.nodes[0].home.join("db");
    let guard = if can_mount() {
        Some(Mount::read_only(&db))
    } else {
        // Not root: file modes are enough.
        run_ok(Command::new("chmod").args(["-R", "a-w"]).arg(&db));
        None
    };
    let out = Command::new(node_binary())
        .arg("run")
        .arg("--home")
        .arg(&a.nodes[0].home)
        .arg("--genesis")
        .arg(a.genesis_path())
        .args(["--api", "127.0.0.1:0", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .output()
        .expect("run the node");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "a read-only store must not start");
    assert!(
        stderr.contains(&db.display().to_string()) && stderr.contains("read-only"),
        "the error names the path and the cause: {stderr}"
    );
    drop(guard);
    if !can_mount() {
        run_ok(Command::new("chmod").args(["-R", "u+w"]).arg(&db));
    }
    assert_eq!(verify(&a, 0), before, "nothing changed on disk");
}

/// A validator whose data directory is a small tmpfs, under load: when the
/// disk fills the node stops (non-zero exit, "disk full" naming the path)
/// without corrupting anything: given space, its store verifies, holds every
/// block it had reported, and the node catches up and votes again.
#[test]
fn full_disk_stops_the_node_cleanly_and_it_recovers() {
    if !can_mount() {
        println!("SKIPPED full_disk_stops_the_node_cleanly_and_it_recovers: cannot mount a tmpfs (not root)");
        return;
    }
    let mut a = Alliance::create(4, None);
    let db = a.nodes[3].home.join("db");
    let disk = Mount::tmpfs(&db, "1536k");
    for i in 0..4 {
        a.launch(i);
    }
    a.wait_height(1, T);
    // Load: every merchant issues to fresh customers with the longest
    // reason and receipt, in pipelined batches, until node 3 stops.
    let mut reported = 0;
    let mut nonce = 0u64;
    let deadline = Instant::now() + Duration::from_secs(90);
    let status = loop {
        assert!(
            Instant::now() < deadline,
            "node 3 did not stop on a full disk:\n{}",
            a.log(3)
        );
        for (m, key) in a.keys.iter().enumerate() {
            for k in 0..16 {
                let to = demo_customer_key(&a.chain_id, &format!("full{m}-{}", nonce + k));
                let tx = Transaction::sign(
                    &a.chain_id,
                    key,
                    nonce + k,
                    TxBody::Issue {
                        to: to.public(),
                        amount: 1,
                        reason: "r".repeat(alliance_protocol::limits::REASON_BYTES_MAX),
                        receipt_ref: format!("{:064}", nonce + k),
                        receipt_time_ms: alliance_tests::now_ms(),
                    },
                );
                let body = serde_json::to_value(&tx).unwrap();
                let _ = a.nodes[m % 3].post("/v1/transactions", &body);
            }
        }
        nonce += 16;
        // Wait for the batch or node 3's end, noting what node 3 reported.
        let exited = wait_for("a batch commits or node 3 stops", T, || {
            if let Some(status) = a.nodes[3].exited() {
                return Some(Some(status));
            }
            if let Some(h) = a.nodes[3].height() {
                reported = reported.max(h);
            }
            a.keys
                .iter()
                .all(|k| {
                    a.nodes[0]
                        .get(&format!("/v1/accounts/{}", k.public()))
                        .and_then(|acc| acc["nonce"].as_u64())
                        .is_some_and(|n| n >= nonce)
                })
                .then_some(None)
        });
        if let Some(status) = exited {
            break status;
        }
    };
    let log = a.log(3);
    assert_ne!(status.code(), Some(0), "a full disk is an error exit");
    assert!(
        log.contains("disk full") && log.contains(&db.display().to_string()),
        "the error says disk full and names the path:\n{log}"
    );
    // Given space, the store opens and verifies, holding all it reported.
    disk.resize("256m");
    let (verified, tip_hash) = verify(&a, 3);
    assert!(
        verified >= reported,
        "node 3 had reported height {reported}, its store holds {verified}"
    );
    let theirs = a.nodes[0].get(&format!("/v1/blocks/{verified}")).unwrap();
    assert_eq!(theirs["hash"].as_str(), Some(tip_hash.as_str()));
    println!(
        "full disk: node 3 stopped at height {verified} (had reported {reported}), store verifies"
    );
    a.launch(3);
    let target = a.nodes[0].height().unwrap();
    wait_for("node 3 catches up", T, || {
        (a.nodes[3].height()? >= target).then_some(())
    });
    // It votes again: with node 0 down, 1-2-3 finalize only with node 3.
    a.nodes[0].kill();
    let h = a.nodes[1].height().unwrap();
    a.wait_height(h + 2, T);
    a.assert_same_chain();
    drop(a);
    drop(disk);
}
