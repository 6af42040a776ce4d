//! Network partitions made by the kernel: every node runs in its own
//! network namespace on a bridge (tests/src/netns.rs), and a partition is a
//! set of blackhole routes inside the namespaces. The side without a quorum
//! (3 of 4) never finalizes; the side with one does; after healing all
//! converge on one chain. Skipped loudly where namespaces are unavailable.

use std::time::{Duration, Instant};

use alliance_tests::{netns, wait_for, Alliance};

const T: Duration = Duration::from_secs(60);
/// How long a side without a quorum is watched for (any) progress: several
/// leader timeouts (2 s each).
const QUIET: Duration = Duration::from_secs(8);

fn start() -> Option<Alliance> {
    if let Err(netns::Unavailable(why)) = netns::available() {
        println!("SKIPPED: network namespaces unavailable here ({why}); partition tests need root");
        return None;
    }
    let a = Alliance::start_in_netns(4).expect("namespaces available");
    a.wait_height(2, T);
    Some(a)
}

/// Heights of nodes `which` once they stop moving: the finalizations in
/// flight when the partition fell have landed.
fn settled_heights(a: &Alliance, which: &[usize]) -> Vec<u64> {
    let heights = || -> Vec<u64> {
        which
            .iter()
            .map(|&i| a.nodes[i].height().unwrap())
            .collect()
    };
    let mut last = heights();
    let mut since = Instant::now();
    let deadline = Instant::now() + T;
    while since.elapsed() < Duration::from_secs(3) {
        assert!(Instant::now() < deadline, "heights never settled");
        std::thread::sleep(Duration::from_millis(200));
        let now = heights();
        if now != last {
            last = now;
            since = Instant::now();
        }
    }
    last
}

/// 2|2: neither half has a quorum, so neither finalizes (a transaction
/// submitted to each side stays pending); healed, both halves converge on
/// one chain, finalize again and commit both transactions.
#[test]
fn two_two_split_halts_both_sides_then_converges() {
    let Some(a) = start() else { return };
    let net = a.net.as_ref().unwrap();
    net.partition(&[&[0, 1], &[2, 3]]);
    let halted = settled_heights(&a, &[0, 1, 2, 3]);
    let left = a.nodes[0].submit(&a.issue_point(0, 0, "left"));
    let right = a.nodes[2].submit(&a.issue_point(2, 0, "right"));
    std::thread::sleep(QUIET);
    for (i, n) in a.nodes.iter().enumerate() {
        assert_eq!(
            n.height().unwrap(),
            halted[i],
            "node {i} finalized without a quorum"
        );
    }
    for (h, via) in [(&left, 0), (&right, 2)] {
        let s = a.nodes[via].get(&format!("/v1/transactions/{h}")).unwrap();
        assert_eq!(s["status"], "pending", "nothing commits while split: {s}");
    }
    net.heal();
    let top = *halted.iter().max().unwrap();
    a.wait_height(top + 2, T);
    a.wait_committed(&left, T);
    a.wait_committed(&right, T);
    let same = a.assert_same_chain();
    println!("2|2: halted at {halted:?} for {QUIET:?}; healed, same chain to height {same}");
}

/// 1|3: the three keep finalizing and commit what is submitted to them;
/// the isolated node finalizes nothing; healed, it catches up to the same
/// chain, transactions included.
#[test]
fn one_three_split_majority_continues_minority_catches_up() {
    let Some(a) = start() else { return };
    let net = a.net.as_ref().unwrap();
    net.partition(&[&[3], &[0, 1, 2]]);
    let isolated = settled_heights(&a, &[3])[0];
    let mut hashes = Vec::new();
    for (m, via) in [(0, 0), (1, 1), (2, 2), (3, 0)] {
        // Node 3's merchant reaches the majority through node 0's API.
        hashes.push(a.nodes[via].submit(&a.issue_point(m, 0, &format!("majority{m}"))));
    }
    for h in &hashes {
        wait_for("the majority commits", T, || {
            [0, 1, 2]
                .iter()
                .all(|&i| {
                    a.nodes[i]
                        .get(&format!("/v1/transactions/{h}"))
                        .is_some_and(|s| s["status"] == "committed")
                })
                .then_some(())
        });
    }
    let majority = a.nodes[0].height().unwrap();
    assert!(majority > isolated + 1, "the majority kept finalizing");
    assert_eq!(
        a.nodes[3].height().unwrap(),
        isolated,
        "the isolated node finalized alone"
    );
    a.assert_same_chain_of(&[0, 1, 2]);
    net.heal();
    wait_for("node 3 catches up", T, || {
        (a.nodes[3].height()? > majority).then_some(())
    });
    for h in &hashes {
        a.wait_committed(h, T);
    }
    let same = a.assert_same_chain();
    println!("1|3: node 3 held at {isolated} while the majority reached {majority}; healed, same chain to {same}");
}
