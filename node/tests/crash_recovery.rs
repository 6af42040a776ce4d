//! Crash safety of the store: a child process appends blocks in a loop and
//! is killed with SIGKILL at random moments; every reopen must be at a block
//! boundary at or past the last acknowledged commit, and its state root must
//! equal a replay from genesis.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use alliance_node::store::{self, Store};
use alliance_protocol::fixtures::demo_genesis;
use rand::{Rng, SeedableRng};

const KILLS: usize = 24;

fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_alliance-node")
}

/// Runs the synth writer, kills it at a random moment after its first new
/// acknowledgement, and returns the last height it acknowledged.
fn run_and_kill(home: &Path, genesis: &Path, rng: &mut impl Rng) -> Option<u64> {
    let mut child = Command::new(bin())
        .args([
            "synth",
            "--blocks",
            "100000",
            "--txs-per-block",
            "60",
            "--home",
        ])
        .arg(home)
        .arg("--genesis")
        .arg(genesis)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn alliance-node synth");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(h) = line
                .split_whitespace()
                .nth(1)
                .and_then(|h| h.parse::<u64>().ok())
            {
                if tx.send(h).is_err() {
                    break;
                }
            }
        }
    });
    // Wait (with a deadline) for the first acknowledged commit, then let it
    // run a random while longer so the kill lands anywhere in the commit cycle.
    let first = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("writer acknowledged a commit");
    let extra = Duration::from_micros(rng.gen_range(0..200_000));
    let until = Instant::now() + extra;
    let mut last = first;
    while let Some(left) = until.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(h) => last = h,
            Err(_) => break,
        }
    }
    child.kill().expect("SIGKILL the writer");
    child.wait().unwrap();
    reader.join().unwrap();
    // Acknowledgements printed before the kill but read after it still count.
    while let Ok(h) = rx.try_recv() {
        last = h;
    }
    Some(last)
}

#[test]
fn sigkill_at_random_moments_never_loses_or_half_applies_a_block() {
    let dir = tempfile::tempdir().unwrap();
    let (genesis, _) = demo_genesis("crash-test", 4, 1_700_000_000_000);
    let genesis_path = dir.path().join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json()).unwrap();
    let home = dir.path().join("home");
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut acknowledged = 0u64;
    for round in 0..KILLS {
        let last = run_and_kill(&home, &genesis_path, &mut rng).unwrap();
        assert!(last >= acknowledged, "heights only grow");
        acknowledged = last;
        // Reopen: Store::open checks the tip's hash link and state root.
        let (store, state) = Store::open(&home.join("db"), &genesis)
            .unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
        let tip = store.tip().height;
        assert!(
            tip >= acknowledged,
            "round {round}: acknowledged block {acknowledged} lost (tip {tip})"
        );
        assert!(
            tip <= acknowledged + 1,
            "round {round}: tip {tip} is beyond anything the writer could have committed"
        );
        let replayed = store::replay(&store, &genesis)
            .unwrap_or_else(|e| panic!("round {round}: replay failed: {e}"));
        assert_eq!(
            replayed.state_root(),
            state.state_root(),
            "round {round}: stored state differs from replay"
        );
        assert_eq!(replayed.tip(), state.tip());
        eprintln!("round {round}: acknowledged {acknowledged}, reopened at {tip}");
        acknowledged = tip;
    }
    assert!(
        acknowledged >= KILLS as u64,
        "the chain grew across restarts"
    );
}
