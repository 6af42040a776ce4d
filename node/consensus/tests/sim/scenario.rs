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

/// What one seed runs.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name (for reports).
    pub name: &'static str,
    /// Validators.
    pub n: usize,
    /// Byzantine nodes (at most f).
    pub byzantine: Vec<(usize, Adversary)>,
    /// Message loss probability before GST.
    pub loss: f64,
    /// Duplication probability.
    pub dup: f64,
    /// Delay range in ms (random per message, so messages reorder).
    pub delay: (u64, u64),
    /// (start, end, group of each node): messages across groups are dropped.
    pub partition: Option<(u64, u64, Vec<u8>)>,
    /// (node, crash at, restart at).
    pub crashes: Vec<(usize, u64, Option<u64>)>,
    /// Global stabilisation time: partitions healed, crashed nodes back,
    /// no more loss. Liveness is measured from here.
    pub gst_ms: u64,
}

fn pick(rng: &mut ChaCha8Rng, n: usize, k: usize) -> Vec<usize> {
    let mut all: Vec<usize> = (0..n).collect();
    all.shuffle(rng);
    all.truncate(k);
    all
}

impl Scenario {
    /// The scenario of `seed`: n cycles through 1, 4, 7; the rest is drawn
    /// from `rng` (the run's only generator).
    pub fn for_seed(seed: u64, rng: &mut ChaCha8Rng) -> Scenario {
        let n = [1, 4, 7][(seed % 3) as usize];
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
            crashes: Vec::new(),
            gst_ms,
        };
        let kinds: &[&'static str] = if n == 1 {
            &["lossy", "crash_restart"]
        } else {
            &[
                "lossy",
                "partition",
                "crash_restart",
                "leader_crash",
                "byzantine",
                "byzantine",
                "byzantine",
                "mixed",
            ]
        };
        s.name = kinds[rng.gen_range(0..kinds.len())];
        let partition = |rng: &mut ChaCha8Rng| {
            let start = rng.gen_range(0..gst_ms / 2);
            let end = rng.gen_range(start + 1..gst_ms);
            let groups = (0..n).map(|_| rng.gen_range(0..2u8)).collect();
            Some((start, end, groups))
        };
        match s.name {
            "partition" => s.partition = partition(rng),
            "crash_restart" => {
                let k = if n == 1 { 1 } else { rng.gen_range(1..=f) };
                for node in pick(rng, n, k) {
                    let at = rng.gen_range(0..gst_ms - 200);
                    let back = rng.gen_range(at + 1..gst_ms);
                    s.crashes.push((node, at, Some(back)));
                }
            }
            "leader_crash" => {
                // Crash the leader of the current view mid-view, for good.
                s.crashes
                    .push((CURRENT_LEADER, rng.gen_range(0..gst_ms), None));
            }
            "byzantine" | "mixed" => {
                let adv = ADVERSARIES[rng.gen_range(0..ADVERSARIES.len())];
                s.byzantine = pick(rng, n, f).into_iter().map(|i| (i, adv)).collect();
                if s.name == "mixed" {
                    s.byzantine = s
                        .byzantine
                        .iter()
                        .map(|&(i, _)| (i, ADVERSARIES[rng.gen_range(0..ADVERSARIES.len())]))
                        .collect();
                    s.partition = partition(rng);
                } else {
                    s.name = match adv {
                        Adversary::Silent => "silent",
                        Adversary::Equivocator => "equivocator",
                        Adversary::DoubleVoter => "double_voter",
                        Adversary::InvalidProposer => "invalid_proposer",
                        Adversary::Garbage => "garbage",
                    };
                }
            }
            _ => {}
        }
        s
    }
}
