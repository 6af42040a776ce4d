//! Restarts below and back up to a quorum (issue #13, Done-when item 4):
//! "stop two of four validators, restart one of the remaining two, start
//! the stopped ones again in turn: the alliance resumes finalizing without
//! manual action", on real libp2p.
//!
//! Four validators A B C D (quorum 3). C and D are SIGKILLed, B is
//! SIGKILLed and restarted on the same home and ports while they are down
//! (two of four: nothing finalizes), then C and D are started again in
//! turn. With A B C up the alliance must finalize 3 more heights, with D
//! back all four must reach a common new height, and a transaction
//! submitted after each step commits (real progress, not only empty
//! blocks). Two schedules for the stop:
//!
//! - `..._at_once_...`: C and D are killed together.
//! - `..._in_turn_...`: C is killed, A B D (still a quorum) nullify a view
//!   without it (and may finalize a height), then D is killed. C comes back
//!   behind by a certificate or a height or two, below the block-sync
//!   threshold: it can only catch up through certificates the others hold.
//!
//! Every wait has a deadline; a timeout fails with each node's
//! `/v1/status` and the tail of its log. The two tests take turns (a lock):
//! eight nodes at once would make the timing of each depend on the other.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use alliance_protocol::Transaction;
use alliance_tests::Alliance;

/// The first heights, from a cold start.
const START: Duration = Duration::from_secs(60);
/// Recovery once a quorum is back: generous, many leader timeouts (2 s)
/// and a sync.
const RECOVER: Duration = Duration::from_secs(90);
/// How long heights must stay put to count as settled.
const QUIET: Duration = Duration::from_secs(3);
/// Log lines per node in a failure message.
const TAIL: usize = 40;

const A: usize = 0;
const B: usize = 1;
const C: usize = 2;
const D: usize = 3;
const ALL: [usize; 4] = [A, B, C, D];
const NAMES: [&str; 4] = ["A", "B", "C", "D"];

/// One scenario at a time.
static SERIAL: Mutex<()> = Mutex::new(());

/// Heights of the nodes `which` (each `None` when a node does not answer).
fn heights(a: &Alliance, which: &[usize]) -> Vec<Option<u64>> {
    which.iter().map(|&i| a.nodes[i].height()).collect()
}

/// (height, view) of the nodes `which`, if they all answer.
fn positions(a: &Alliance, which: &[usize]) -> Option<Vec<(u64, u64)>> {
    which
        .iter()
        .map(|&i| {
            let s = a.nodes[i].get("/v1/status")?;
            Some((s["height"].as_u64()?, s["view"].as_u64()?))
        })
        .collect()
}

fn names(which: &[usize]) -> String {
    which
        .iter()
        .map(|&i| NAMES[i])
        .collect::<Vec<_>>()
        .join(" ")
}

/// Waits until every node of `which` has finalized `height`; returns their
/// heights then.
fn wait_all_at(a: &Alliance, which: &[usize], height: u64, timeout: Duration) -> Vec<u64> {
    a.wait_or_diagnose(
        &format!("height >= {height} on {}", names(which)),
        timeout,
        || {
            let hs: Option<Vec<u64>> = heights(a, which).into_iter().collect();
            hs.filter(|hs| hs.iter().all(|&h| h >= height))
        },
    )
}

/// Heights of `which` once they have not moved for [`QUIET`] (the
/// finalizations in flight when nodes were killed have landed).
fn settled(a: &Alliance, which: &[usize]) -> Vec<u64> {
    let mut last = heights(a, which);
    let mut since = Instant::now();
    a.wait_or_diagnose(
        &format!("heights of {} to settle", names(which)),
        Duration::from_secs(30),
        || {
            let now = heights(a, which);
            if now != last {
                last = now;
                since = Instant::now();
                return None;
            }
            if since.elapsed() < QUIET {
                return None;
            }
            last.iter().copied().collect::<Option<Vec<u64>>>()
        },
    )
}

/// Submits `tx` through node `via`; returns its hash.
fn submit(a: &Alliance, via: usize, tx: &Transaction) -> String {
    let body = serde_json::to_value(tx).expect("json");
    match a.nodes[via].post("/v1/transactions", &body) {
        Some((200, r)) => r["hash"].as_str().expect("hash").to_string(),
        other => panic!(
            "node {} refused the transaction: {other:?}\n{}",
            NAMES[via],
            a.diagnostics(TAIL)
        ),
    }
}

/// Waits until `hash` is committed and applied on every node of `which`,
/// at one height; returns that height.
fn wait_committed(a: &Alliance, which: &[usize], hash: &str, timeout: Duration) -> u64 {
    let seen = a.wait_or_diagnose(
        &format!("transaction {hash} committed on {}", names(which)),
        timeout,
        || {
            let mut seen = Vec::new();
            for &i in which {
                let s = a.nodes[i].get(&format!("/v1/transactions/{hash}"))?;
                if s["status"] != "committed" {
                    return None;
                }
                seen.push(s);
            }
            Some(seen)
        },
    );
    for s in &seen {
        assert_eq!(s["result"]["applied"], true, "the issue applies: {s}");
        assert_eq!(s["height"], seen[0]["height"], "one height: {seen:?}");
    }
    seen[0]["height"].as_u64().expect("height")
}

/// How C and D are stopped.
#[derive(Clone, Copy, PartialEq)]
enum Stop {
    /// Both at once.
    AtOnce,
    /// C, then D once A B D have nullified a view without C.
    InTurn,
}

/// The scenario; returns its duration.
fn scenario(stop: Stop) -> Duration {
    let t0 = Instant::now();
    let mut lap = Instant::now();
    let mut phases: Vec<String> = Vec::new();
    let mut mark = |what: &str| {
        let d = lap.elapsed();
        println!("restart: {what} ({:.1} s)", d.as_secs_f64());
        phases.push(format!("[{what}: {:.1} s]", d.as_secs_f64()));
        lap = Instant::now();
    };

    // 1. All four up; the chain finalizes a few heights everywhere.
    let mut a = Alliance::start(4);
    wait_all_at(&a, &ALL, 3, START);
    mark("1: all four at height 3");

    // 2. SIGKILL C and D: two of four left, no quorum.
    match stop {
        Stop::AtOnce => {
            a.nodes[C].kill();
            a.nodes[D].kill();
            println!("restart: C and D killed at once");
        }
        Stop::InTurn => {
            let before = positions(&a, &[A, B, C, D]).expect("all answer");
            a.nodes[C].kill();
            let c_height = before[2].0;
            // A view nullified without C moves views ahead of heights (on
            // a chain without nullifications the view is height + 1).
            let lead = |(h, v): (u64, u64)| v.saturating_sub(h);
            let lead_before: Vec<u64> = [0, 1, 3].iter().map(|&i| lead(before[i])).collect();
            let reached = a.wait_or_diagnose(
                "A B D to nullify a view without C (or to pass C by 2 heights)",
                START,
                || {
                    let now = positions(&a, &[A, B, D])?;
                    let nullified = now.iter().zip(&lead_before).all(|(&p, &l)| lead(p) > l);
                    let passed = now.iter().all(|&(h, _)| h >= c_height + 2);
                    (nullified || passed).then_some((now, nullified))
                },
            );
            a.nodes[D].kill();
            println!(
                "restart: C killed at (height, view) {:?}; D killed with A B D at {:?} ({})",
                before[2],
                reached.0,
                if reached.1 {
                    "a view nullified without C"
                } else {
                    "2 heights past C, no view nullified"
                }
            );
        }
    }
    let halted = settled(&a, &[A, B]);
    let halted_top = *halted.iter().max().unwrap();
    mark("2: C and D killed, A B settled");

    // 3. Restart B (SIGKILL, then the same home, store and ports) while C
    //    and D are down. Nothing finalized meanwhile: A held its height
    //    from the settle window through B's restart.
    a.nodes[B].kill();
    a.launch(B);
    let after = heights(&a, &[A, B]);
    assert_eq!(
        after[0],
        Some(halted[0]),
        "A finalized with only two of four validators up\n{}",
        a.diagnostics(TAIL)
    );
    assert!(
        after[1].is_some_and(|h| h <= halted_top),
        "B is past what the alliance finalized: {after:?} vs {halted:?}\n{}",
        a.diagnostics(TAIL)
    );
    println!("restart: A B settled at {halted:?}; B restarted at {after:?}");
    mark("3: B restarted, no progress with 2 of 4");

    // 4. Start C: A B C are a quorum and finalize 3 heights more.
    a.launch(C);
    println!(
        "restart: C started; A B C (height, view) {:?}",
        positions(&a, &[A, B, C])
    );
    let target = halted_top + 3;
    let abc = wait_all_at(&a, &[A, B, C], target, RECOVER);
    mark(&format!("4: C back, A B C at {abc:?} >= {target}"));
    // Real progress: a transaction through the restarted B commits on A B C.
    let tx1 = submit(&a, B, &a.issue_point(A, 0, "after-c"));
    let h1 = wait_committed(&a, &[A, B, C], &tx1, RECOVER);
    mark(&format!("4: a transaction via B committed at {h1}"));

    // 5. Start D: all four reach a common new height (+3).
    a.launch(D);
    let top = heights(&a, &[A, B, C]).into_iter().flatten().max().unwrap();
    let common = top + 3;
    let four = wait_all_at(&a, &ALL, common, RECOVER);
    mark(&format!("5: D back, all four at {four:?} >= {common}"));
    // Real progress through the last node back: D gossips it and every
    // node, D included, commits it; D also holds the first one.
    let tx2 = submit(&a, D, &a.issue_point(D, 0, "after-d"));
    let h2 = wait_committed(&a, &ALL, &tx2, RECOVER);
    assert_eq!(wait_committed(&a, &ALL, &tx1, RECOVER), h1);
    mark(&format!("5: a transaction via D committed at {h2}"));

    let same = a.assert_same_chain();
    let took = t0.elapsed();
    println!(
        "restart: passed in {:.1} s, one chain on all four to height {same}: {}",
        took.as_secs_f64(),
        phases.join(" ")
    );
    took
}

/// C and D killed together, B restarted, C then D back.
#[test]
fn stop_two_at_once_restart_one_then_back_in_turn_resumes_finalizing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenario(Stop::AtOnce);
}

/// C killed, then D after A B D moved on without C; B restarted; C (behind
/// by certificates, below the sync threshold) then D back.
#[test]
fn stop_two_in_turn_restart_one_then_back_in_turn_resumes_finalizing() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    scenario(Stop::InTurn);
}
