//! Scenarios and the named, reusable adversaries.

use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A Byzantine behaviour (Commonware-style named adversaries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adversary {
    /// Never sends anything (also: a crashed leader that never returns).
    Silent,
    /// As leader, sends two different valid proposals to two halves.
    Equivocator,
    /// Sends every vote to half the peers and a conflicting one (another
    /// block, or nullify against finalize) to the other half.
    DoubleVoter,
    /// As leader, proposes blocks the application rejects.
    InvalidProposer,
    /// Sends random bytes, forged signatures, non-member keys, wrong chain
    /// ids, malformed votes, proposals out of turn, bogus certificates.
    Garbage,
    /// As leader, proposes on a stale parent: an older notarized block or
    /// its finalized anchor, skipping a notarized view (so the views in
    /// between are not all nullified). Never sends finalize votes, so the
    /// skipped block's finalization needs every honest vote.
    StaleParent,
    /// One of f accomplices of an equivocating leader: when a member leads,
    /// it sends block A to one half of the honest nodes and B to the other,
    /// and every member sends notarize + finalize for A to the first half
    /// and for B to the second.
    Coalition,
    /// One of two processes sharing one validator key (Commonware "twins"),
    /// each running an honest core: together one Byzantine validator.
    Twin,
}

const ADVERSARIES: [Adversary; 5] = [
    Adversary::Silent,
    Adversary::Equivocator,
    Adversary::DoubleVoter,
    Adversary::InvalidProposer,
    Adversary::Garbage,
];

/// In `Scenario::crashes`: whichever node leads the highest honest view at
/// the crash time.
pub const CURRENT_LEADER: usize = usize::MAX;

/// Validator counts, chosen by `seed % 7`.
pub const SIZES: [usize; 7] = [1, 2, 3, 4, 5, 7, 10];

/// Every scenario, in report order.
pub const SCENARIOS: [&str; 21] = [
    "lossy",
    "partition",
    "asymmetric_partition",
    "targeted_delay",
    "slow_votes",
    "crash_restart",
    "crash_unsynced",
    "lying_fetch",
    "lost_fetch",
    "leader_crash",
    "silent_restart",
    "faults_restarts",
    "silent",
    "equivocator",
    "double_voter",
    "invalid_proposer",
    "garbage",
    "stale_parent",
    "coalition",
    "twins",
    "mixed",
];

/// The smallest validator count a scenario makes sense for: 1 for the
/// node-local faults, 2 for network faults, 4 (f >= 1) for anything that
/// needs a faulty validator to be tolerated.
pub fn min_n(name: &str) -> usize {
    match name {
        "lossy" | "crash_restart" | "crash_unsynced" => 1,
        "partition"
        | "asymmetric_partition"
        | "targeted_delay"
        | "slow_votes"
        | "lying_fetch"
        | "lost_fetch" => 2,
        _ => 4,
    }
}

// Validator-set changes by governance in the middle of a run are out of
// scope here: one `Core` serves one epoch with a fixed set (the driver
// restarts the core at an epoch boundary, docs/consensus.md), and the pure
// core has no application that changes the set. A driver-level simulation
// would have to cover them.

/// What one seed runs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (for reports).
    pub name: &'static str,
    /// Validators.
    pub n: usize,
    /// Byzantine validators (at most f).
    pub byzantine: Vec<(usize, Adversary)>,
    /// Message loss probability before GST.
    pub loss: f64,
    /// Duplication probability.
    pub dup: f64,
    /// Delay range in ms (random per message, so messages reorder).
    pub delay: (u64, u64),
    /// (start, end, group of each node): messages across groups are dropped.
    pub partition: Option<(u64, u64, Vec<u8>)>,
    /// (start, blocked[from][to]): one-directional drops until GST.
    pub oneway: Option<(u64, Vec<Vec<bool>>)>,
    /// Before GST, messages to and from the current leader take close to
    /// the leader timeout.
    pub targeted_delay: bool,
    /// Before GST, notarize votes take close to the notarization timeout:
    /// views end up both notarized and nullified.
    pub slow_votes: bool,
    /// (node, crash at, restart at); `None`: crashed for good.
    pub crashes: Vec<(usize, u64, Option<u64>)>,
    /// (node, armed at, down for): the node's first `handle` call after the
    /// arm time with two or more outputs executes only a prefix of them,
    /// then the node crashes and restarts `down for` ms later (by GST).
    pub unsynced: Vec<(usize, u64, u64)>,
    /// Probability that a block fetch is also answered (first) by a lying
    /// Byzantine peer.
    pub lying_fetch: f64,
    /// Probability that the honest answer to a block fetch is lost before
    /// GST (the scenario's message loss, or every answer in `lost_fetch`).
    pub fetch_loss: f64,
    /// (validator, route): a second process runs with this validator's
    /// key; route[j] says where validator j's messages to that key go:
    /// 0 both processes, 1 the first, 2 the twin.
    pub twin: Option<(usize, Vec<u8>)>,
    /// Global stabilisation time: partitions healed, crashed nodes back
    /// (except those crashed for good), no more loss or delays. Liveness is
    /// measured from here.
    pub gst_ms: u64,
}

fn pick(rng: &mut ChaCha8Rng, from: &[usize], k: usize) -> Vec<usize> {
    let mut all = from.to_vec();
    all.shuffle(rng);
    all.truncate(k);
    all
}

fn all(n: usize) -> Vec<usize> {
    (0..n).collect()
}

impl Scenario {
    /// The scenario of `seed`: n from [`SIZES`] by `seed % 7` (or `n`), the
    /// scenario `forced` or drawn among those that fit n; the rest is drawn
    /// from `rng` (the run's only generator).
    pub fn for_seed(
        seed: u64,
        rng: &mut ChaCha8Rng,
        forced: Option<&'static str>,
        n: Option<usize>,
    ) -> Scenario {
        let mut n = n.unwrap_or(SIZES[(seed % SIZES.len() as u64) as usize]);
        if let Some(name) = forced {
            // A forced scenario picks among the sizes it fits, by seed.
            let fit: Vec<usize> = SIZES
                .iter()
                .copied()
                .filter(|&k| k >= min_n(name))
                .collect();
            if n < min_n(name) {
                n = fit[(seed % fit.len() as u64) as usize];
            }
        }
        let f = (n - 1) / 3;
        let gst_ms = rng.gen_range(1_500..4_000);
        let mut s = Scenario {
            name: "lossy",
            n,
            byzantine: Vec::new(),
            loss: rng.gen_range(0.0..0.15),
            dup: rng.gen_range(0.0..0.1),
            delay: (1, rng.gen_range(10..80)),
            partition: None,
            oneway: None,
            targeted_delay: false,
            slow_votes: false,
            crashes: Vec::new(),
            unsynced: Vec::new(),
            lying_fetch: 0.0,
            fetch_loss: 0.0,
            twin: None,
            gst_ms,
        };
        s.name = match forced {
            Some(name) => name,
            None => {
                // "byzantine" twice: it stands for five named adversaries;
                // "slow_votes" twice: views both notarized and nullified are
                // where Simplex's view change is subtle.
                let kinds: Vec<&'static str> = SCENARIOS
                    .iter()
                    .copied()
                    .filter(|k| {
                        !matches!(
                            *k,
                            "silent" | "double_voter" | "invalid_proposer" | "garbage"
                        )
                    })
                    .map(|k| if k == "equivocator" { "byzantine" } else { k })
                    .chain(["byzantine", "slow_votes"])
                    .filter(|k| min_n(k) <= n)
                    .collect();
                kinds[rng.gen_range(0..kinds.len())]
            }
        };
        let partition = |rng: &mut ChaCha8Rng| {
            let start = rng.gen_range(0..gst_ms / 2);
            let end = rng.gen_range(start + 1..gst_ms);
            let groups = (0..n).map(|_| rng.gen_range(0..2u8)).collect();
            Some((start, end, groups))
        };
        // Crash and restart each of `nodes` before GST.
        let restarts =
            |rng: &mut ChaCha8Rng, nodes: Vec<usize>| -> Vec<(usize, u64, Option<u64>)> {
                nodes
                    .into_iter()
                    .map(|node| {
                        let at = rng.gen_range(0..gst_ms - 200);
                        (node, at, Some(rng.gen_range(at + 1..gst_ms)))
                    })
                    .collect()
            };
        let adversary_name = |adv: Adversary| match adv {
            Adversary::Silent => "silent",
            Adversary::Equivocator => "equivocator",
            Adversary::DoubleVoter => "double_voter",
            Adversary::InvalidProposer => "invalid_proposer",
            Adversary::Garbage => "garbage",
            Adversary::StaleParent => "stale_parent",
            Adversary::Coalition => "coalition",
            Adversary::Twin => "twins",
        };
        let byzantine = |rng: &mut ChaCha8Rng, kind: &'static str| -> Adversary {
            match kind {
                "silent" => Adversary::Silent,
                "equivocator" => Adversary::Equivocator,
                "double_voter" => Adversary::DoubleVoter,
                "invalid_proposer" => Adversary::InvalidProposer,
                "garbage" => Adversary::Garbage,
                _ => ADVERSARIES[rng.gen_range(0..ADVERSARIES.len())],
            }
        };
        match s.name {
            "partition" => s.partition = partition(rng),
            "asymmetric_partition" => {
                let start = rng.gen_range(0..gst_ms / 2);
                let mut blocked = vec![vec![false; n]; n];
                if rng.gen_bool(0.5) {
                    // Group 1 cannot reach group 0; group 0 reaches group 1.
                    let groups: Vec<u8> = (0..n).map(|_| rng.gen_range(0..2u8)).collect();
                    for (row, from) in blocked.iter_mut().zip(&groups) {
                        for (cell, to) in row.iter_mut().zip(&groups) {
                            *cell = *from == 1 && *to == 0;
                        }
                    }
                } else {
                    // Each pair: one direction cut with probability 1/2.
                    let pairs: Vec<(usize, usize)> = (0..n)
                        .flat_map(|a| (a + 1..n).map(move |b| (a, b)))
                        .collect();
                    for (a, b) in pairs {
                        if rng.gen_bool(0.5) {
                            if rng.gen_bool(0.5) {
                                blocked[a][b] = true;
                            } else {
                                blocked[b][a] = true;
                            }
                        }
                    }
                }
                s.oneway = Some((start, blocked));
            }
            "targeted_delay" => s.targeted_delay = true,
            "slow_votes" => {
                // Views under attack last about a notarization timeout:
                // give the attack a longer stretch before GST.
                s.slow_votes = true;
                s.gst_ms += rng.gen_range(2_000..5_000);
            }
            "crash_restart" => {
                let k = rng.gen_range(1..=f.max(1));
                let nodes = pick(rng, &all(n), k);
                s.crashes = restarts(rng, nodes);
            }
            "crash_unsynced" => {
                let k = rng.gen_range(1..=f.max(1));
                for node in pick(rng, &all(n), k) {
                    let at = rng.gen_range(0..gst_ms - 600);
                    s.unsynced.push((node, at, rng.gen_range(1..400)));
                }
            }
            "lost_fetch" => {
                // Every honest fetch answer before GST is lost: the core
                // must ask again after GST.
                s.fetch_loss = 1.0;
                s.partition = partition(rng);
                let nodes = pick(rng, &all(n), 1);
                s.crashes = restarts(rng, nodes);
            }
            "lying_fetch" => {
                // Catch-up (and so fetching) comes from a partition and a
                // restart; a fraction of fetches is answered by a liar too.
                s.lying_fetch = rng.gen_range(0.3..0.8);
                s.partition = partition(rng);
                let nodes = pick(rng, &all(n), 1);
                s.crashes = restarts(rng, nodes);
            }
            "leader_crash" => {
                // Crash the leader of the current view mid-view, for good.
                s.crashes
                    .push((CURRENT_LEADER, rng.gen_range(0..gst_ms), None));
            }
            "silent_restart" => {
                // Issue #13, defect 2: f silent validators plus one honest
                // validator that crashes and restarts before GST.
                let silent = pick(rng, &all(n), f);
                s.byzantine = silent.iter().map(|&i| (i, Adversary::Silent)).collect();
                let honest: Vec<usize> = (0..n).filter(|i| !silent.contains(i)).collect();
                let node = pick(rng, &honest, 1);
                s.crashes = restarts(rng, node);
            }
            "faults_restarts" => {
                // k permanent faults (silent, or honest and crashed for
                // good), restarts of other honest nodes before GST, and, if
                // k < f, one more crash and restart after GST: never more
                // than f validators down after GST.
                let k = rng.gen_range(1..=f);
                let mut order = all(n);
                order.shuffle(rng);
                for &node in &order[..k] {
                    if rng.gen_bool(0.5) {
                        s.byzantine.push((node, Adversary::Silent));
                    } else {
                        s.crashes.push((node, rng.gen_range(0..gst_ms), None));
                    }
                }
                let others = order[k..].to_vec();
                let r = rng.gen_range(1..=f);
                let nodes = pick(rng, &others, r);
                s.crashes.extend(restarts(rng, nodes));
                if k < f {
                    let node = others[rng.gen_range(0..others.len())];
                    let at = gst_ms + rng.gen_range(0..2_000);
                    s.crashes
                        .push((node, at, Some(at + rng.gen_range(50..1_500))));
                }
            }
            "stale_parent" => {
                s.byzantine = pick(rng, &all(n), f)
                    .into_iter()
                    .map(|i| (i, Adversary::StaleParent))
                    .collect();
            }
            "coalition" => {
                s.byzantine = pick(rng, &all(n), f)
                    .into_iter()
                    .map(|i| (i, Adversary::Coalition))
                    .collect();
            }
            "twins" => {
                let t = rng.gen_range(0..n);
                let route = (0..n).map(|_| rng.gen_range(0..3u8)).collect();
                s.twin = Some((t, route));
                s.byzantine = vec![(t, Adversary::Twin)];
            }
            "byzantine" | "silent" | "equivocator" | "double_voter" | "invalid_proposer"
            | "garbage" => {
                let adv = byzantine(rng, s.name);
                s.byzantine = pick(rng, &all(n), f)
                    .into_iter()
                    .map(|i| (i, adv))
                    .collect();
                s.name = adversary_name(adv);
            }
            "mixed" => {
                let nodes = pick(rng, &all(n), f);
                s.byzantine = nodes
                    .into_iter()
                    .map(|i| {
                        let k = rng.gen_range(0..=ADVERSARIES.len());
                        let adv = ADVERSARIES
                            .get(k)
                            .copied()
                            .unwrap_or(Adversary::StaleParent);
                        (i, adv)
                    })
                    .collect();
                s.partition = partition(rng);
            }
            _ => {}
        }
        s.fetch_loss = s.fetch_loss.max(s.loss);
        s
    }
}
