//! Scenarios of the whole-node simulation: which faults happen, and when.
//! Every random choice comes from the run's RNG.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// A scenario: its name and which extra nodes it needs.
#[derive(Debug)]
pub struct Scenario {
    /// Name (`SIM_SCENARIO`).
    pub name: &'static str,
    /// A follower that governance admits as a validator mid-run.
    pub joiner: bool,
    /// A follower that lies in every sync answer it gives.
    pub liar: bool,
}

impl Scenario {
    /// Nodes beyond the genesis validators: the joiner first, then the liar.
    pub fn extra_nodes(&self) -> usize {
        self.joiner as usize + self.liar as usize
    }
}

/// Every scenario, in the order seeds cycle through them.
pub const SCENARIOS: &[Scenario] = &[
    Scenario {
        name: "lossy",
        joiner: false,
        liar: false,
    },
    Scenario {
        name: "crash_restart",
        joiner: false,
        liar: false,
    },
    Scenario {
        name: "lagging",
        joiner: false,
        liar: false,
    },
    Scenario {
        name: "lying_sync",
        joiner: false,
        liar: true,
    },
    Scenario {
        name: "epoch_change",
        joiner: true,
        liar: false,
    },
    Scenario {
        name: "partition",
        joiner: false,
        liar: false,
    },
    Scenario {
        name: "mixed",
        joiner: true,
        liar: true,
    },
];

/// A step of a scenario.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    /// The node crashes (loses everything in memory).
    Crash(usize),
    /// The node starts again from its store.
    Restart(usize),
    /// The link between two nodes goes down.
    Cut(usize, usize),
    /// The link comes back.
    Heal(usize, usize),
    /// Every link of `victim` goes down, except to `except`.
    Isolate {
        /// The isolated node.
        victim: usize,
        /// The one node it still reaches.
        except: Option<usize>,
    },
    /// Offer the next governance transactions (a proposal to admit the
    /// joiner, then the other merchants' approvals).
    Governance,
    /// Faults stop: every link heals, loss stops, every node runs.
    Gst,
}

/// A run's schedule.
#[derive(Debug)]
pub struct Schedule {
    /// Message loss before GST.
    pub loss: f64,
    /// Message delay range, ms.
    pub delay: (u64, u64),
    /// When faults stop, ms after the start.
    pub gst_ms: u64,
    /// Nodes that do not run at the start.
    pub late_start: Vec<usize>,
    /// Steps with their time, ms after the start.
    pub steps: Vec<(u64, Plan)>,
}

/// Random crashes and restarts of validators in `[from, to)` ms.
fn crashes(rng: &mut ChaCha8Rng, n: usize, from: u64, to: u64, steps: &mut Vec<(u64, Plan)>) {
    let count = rng.gen_range(1..=2 * n);
    for _ in 0..count {
        let node = rng.gen_range(0..n);
        let at = rng.gen_range(from..to);
        // Sometimes back at once (a restart at any moment), sometimes long.
        let down = if rng.gen_bool(0.3) {
            rng.gen_range(1..200)
        } else {
            rng.gen_range(500..8_000)
        };
        steps.push((at, Plan::Crash(node)));
        steps.push((at + down, Plan::Restart(node)));
    }
}

/// Random two-sided partitions in `[from, to)` ms.
fn partitions(
    rng: &mut ChaCha8Rng,
    total: usize,
    from: u64,
    to: u64,
    steps: &mut Vec<(u64, Plan)>,
) {
    for _ in 0..rng.gen_range(1..=3) {
        let at = rng.gen_range(from..to);
        let len = rng.gen_range(1_000..10_000);
        let side: Vec<bool> = (0..total).map(|_| rng.gen_bool(0.5)).collect();
        for a in 0..total {
            for b in a + 1..total {
                if side[a] != side[b] {
                    steps.push((at, Plan::Cut(a, b)));
                    steps.push((at + len, Plan::Heal(a, b)));
                }
            }
        }
    }
}

/// The schedule of `scenario` for `n` validators and `total` nodes.
pub fn plan(scenario: &Scenario, rng: &mut ChaCha8Rng, n: usize, total: usize) -> Schedule {
    let mut s = Schedule {
        loss: 0.0,
        delay: (5, 60),
        gst_ms: 6_000,
        late_start: Vec::new(),
        steps: Vec::new(),
    };
    let liar = scenario.liar.then(|| total - 1);
    let joiner = scenario.joiner.then_some(n);
    match scenario.name {
        "lossy" => {
            s.loss = rng.gen_range(0.0..0.2);
            s.delay = (5, rng.gen_range(60..600));
            s.gst_ms = rng.gen_range(5_000..20_000);
        }
        "crash_restart" => {
            s.gst_ms = rng.gen_range(10_000..30_000);
            crashes(rng, n, 500, s.gst_ms, &mut s.steps);
        }
        "lagging" => {
            // One validator starts well after the others: it must sync in
            // bulk, then join consensus.
            let victim = rng.gen_range(0..n);
            s.late_start.push(victim);
            let at = rng.gen_range(5_000..25_000);
            s.steps.push((at, Plan::Restart(victim)));
            s.gst_ms = at + rng.gen_range(0..5_000);
        }
        "lying_sync" => {
            // A validator comes back after a while and reaches only the
            // liar: every sync answer it gets is the liar's.
            let victim = rng.gen_range(0..n);
            s.late_start.push(victim);
            let at = rng.gen_range(5_000..20_000);
            s.steps.push((
                at,
                Plan::Isolate {
                    victim,
                    except: liar,
                },
            ));
            s.steps.push((at + 1, Plan::Restart(victim)));
            s.gst_ms = at + rng.gen_range(5_000..15_000);
        }
        "epoch_change" => {
            s.gst_ms = rng.gen_range(20_000..35_000);
            for k in 0..6 {
                s.steps.push((2_000 + k * 2_500, Plan::Governance));
            }
            if n > 1 && rng.gen_bool(0.7) {
                crashes(rng, n, 4_000, s.gst_ms, &mut s.steps);
            }
            if let Some(j) = joiner {
                if rng.gen_bool(0.5) {
                    let at = rng.gen_range(3_000..15_000);
                    s.steps.push((at, Plan::Crash(j)));
                    s.steps
                        .push((at + rng.gen_range(100..6_000), Plan::Restart(j)));
                }
            }
        }
        "partition" => {
            s.gst_ms = rng.gen_range(10_000..30_000);
            partitions(rng, total, 500, s.gst_ms, &mut s.steps);
        }
        "mixed" => {
            s.loss = rng.gen_range(0.0..0.1);
            s.gst_ms = rng.gen_range(25_000..40_000);
            for k in 0..6 {
                s.steps.push((2_000 + k * 2_500, Plan::Governance));
            }
            crashes(rng, n, 500, s.gst_ms, &mut s.steps);
            partitions(rng, total, 500, s.gst_ms, &mut s.steps);
            let victim = rng.gen_range(0..n);
            let at = rng.gen_range(5_000..s.gst_ms - 2_000);
            s.steps.push((at, Plan::Crash(victim)));
            s.steps.push((
                at + 1,
                Plan::Isolate {
                    victim,
                    except: liar,
                },
            ));
            s.steps.push((at + 2, Plan::Restart(victim)));
        }
        other => unreachable!("unknown scenario {other}"),
    }
    s.steps.sort_by_key(|(at, _)| *at);
    s
}
