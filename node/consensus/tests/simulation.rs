//! Deterministic simulation of the consensus (see tests/sim and the
//! "Simulation" section of docs/consensus.md).
//!
//! - `cargo test` runs `DEFAULT_SEEDS` seeds (n from 1, 2, 3, 4, 5, 7, 10
//!   by `seed % 7`, every scenario), one test per mutation (each must be
//!   caught as a safety violation) and `restart_with_f_silent_stays_live`.
//! - `SIM_SEEDS=N` runs N seeds, `SIM_SEED_START=S` starts at seed S (so
//!   several processes can split a range), `SIM_SEED=S` replays exactly
//!   seed S with its step log on stderr.
//! - `SIM_SCENARIO=name` runs only that scenario (`sim::scenario::SCENARIOS`),
//!   `SIM_N=n` forces the validator count, `SIM_MUTATION=weak_quorum|
//!   finalize_after_nullify|skip_nullification_check` runs a mutated core
//!   (for replaying a mutation test's seed).
//! - `SIM_THREADS=t` runs t threads (default: one per core, at most 8);
//!   `scripts/sim-million.sh` runs one process per core with `SIM_THREADS=1`.
//!
//! Votes are signed with a cheap keyed hash instead of ed25519
//! (`sim::sign`, the core's `Signer` and `Verifier` traits): the validators
//! keep their real public keys, and a signature verifies only for its
//! signer, chain, validator set and vote data.

mod sim;

use std::collections::BTreeMap;
use std::time::Instant;

use alliance_consensus::Mutation;
use sim::{run_seed, Failure, Options, Outcome, LIVENESS_HEIGHTS};

/// Seeds run by a plain `cargo test`.
const DEFAULT_SEEDS: u64 = 300;
/// Seeds of `restart_with_f_silent_stays_live`.
const RESTART_SEEDS: u64 = 200;
/// Seeds of `lost_fetch_answers_are_requested_again`.
const LOST_FETCH_SEEDS: u64 = 100;
/// Step-log lines printed for a failing seed (`SIM_TRACE_TAIL` overrides).
const TRACE_TAIL: usize = 300;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// Options from the environment (`SIM_SCENARIO`, `SIM_N`, `SIM_MUTATION`).
fn env_options() -> Options {
    let scenario = std::env::var("SIM_SCENARIO").ok().map(|name| {
        *sim::scenario::SCENARIOS
            .iter()
            .find(|s| **s == name)
            .unwrap_or_else(|| {
                panic!(
                    "unknown SIM_SCENARIO {name}: one of {:?}",
                    sim::scenario::SCENARIOS
                )
            })
    });
    let mutation = std::env::var("SIM_MUTATION")
        .ok()
        .map(|m| match m.as_str() {
            "weak_quorum" => Mutation::WeakQuorum,
            "finalize_after_nullify" => Mutation::FinalizeAfterNullify,
            "skip_nullification_check" => Mutation::SkipNullificationCheck,
            other => panic!("unknown SIM_MUTATION {other}"),
        });
    Options {
        scenario,
        mutation,
        n: env_u64("SIM_N").map(|n| n as usize),
        ..Options::default()
    }
}

/// `SIM_SEEDS` seeds (or `default`) from `SIM_SEED_START` (or 0).
fn seed_range(default: u64) -> Vec<u64> {
    let start = env_u64("SIM_SEED_START").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(default);
    (start..start + count).collect()
}

/// The environment that replays a run of `opts`.
fn replay_env(seed: u64, opts: &Options) -> String {
    let mut env = Vec::new();
    if let Some(name) = opts.scenario {
        env.push(format!("SIM_SCENARIO={name}"));
    }
    if let Some(n) = opts.n {
        env.push(format!("SIM_N={n}"));
    }
    if let Some(m) = opts.mutation {
        let name = match m {
            Mutation::WeakQuorum => "weak_quorum",
            Mutation::FinalizeAfterNullify => "finalize_after_nullify",
            Mutation::SkipNullificationCheck => "skip_nullification_check",
        };
        env.push(format!("SIM_MUTATION={name}"));
    }
    env.push(format!("SIM_SEED={seed}"));
    env.join(" ")
}

fn report_failure(seed: u64, opts: &Options, f: &Failure) -> String {
    // Re-run with the step log on: the run is deterministic.
    let traced = run_seed(
        seed,
        &Options {
            trace: true,
            ..opts.clone()
        },
    );
    let trace = match &traced {
        Err(t) => &t.trace,
        Ok(_) => &f.trace,
    };
    let tail = env_u64("SIM_TRACE_TAIL").map_or(TRACE_TAIL, |t| t as usize);
    eprintln!(
        "---- seed {seed} ({} n={}) step log (last {tail} lines) ----",
        f.scenario, f.n
    );
    for line in trace.iter().rev().take(tail).rev() {
        eprintln!("{line}");
    }
    format!(
        "{} violation in scenario {} (n={}) seed {seed}: {}; replay with {}",
        f.kind,
        f.scenario,
        f.n,
        f.message,
        replay_env(seed, opts)
    )
}

type Results = Vec<(u64, Result<Outcome, Failure>)>;

/// Runs `seeds` (ascending) on all cores; returns per-seed results in seed
/// order. With `stop`, seeds above the lowest one whose failure matches it
/// are skipped: that lowest seed is still always found (deterministic).
fn run_many(seeds: Vec<u64>, opts: &Options, stop: Option<fn(&Failure) -> bool>) -> Results {
    use std::sync::atomic::{AtomicU64, Ordering};
    let threads = env_u64("SIM_THREADS").map_or_else(
        || {
            std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .min(8)
        },
        |t| t.clamp(1, 64) as usize,
    );
    let lowest_stop = AtomicU64::new(u64::MAX);
    let mut results: Results = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = &seeds;
                let lowest_stop = &lowest_stop;
                s.spawn(move || {
                    let mut out = Vec::new();
                    for &seed in seeds.iter().skip(t).step_by(threads) {
                        if seed > lowest_stop.load(Ordering::Relaxed) {
                            break;
                        }
                        let r = run_seed(seed, opts);
                        if let (Err(f), Some(stop)) = (&r, stop) {
                            if stop(f) {
                                lowest_stop.fetch_min(seed, Ordering::Relaxed);
                            }
                        }
                        out.push((seed, r));
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("simulation thread panicked"))
            .collect()
    });
    results.sort_by_key(|(s, _)| *s);
    results
}

/// Per (scenario, n): runs, failures, worst bound in views and in ms (with
/// their seeds).
#[derive(Default)]
struct Row {
    runs: u64,
    failures: u64,
    views: (u64, u64),
    ms: (u64, u64),
}

/// Prints the summary of a batch; returns its failures.
fn summarize(label: &str, results: &Results, secs: f64) -> Vec<(u64, Failure)> {
    let mut rows: BTreeMap<(usize, String), Row> = BTreeMap::new();
    let mut worst_views = (0u64, 0u64);
    let mut worst_ms = (0u64, 0u64);
    let mut failures = Vec::new();
    let (mut steps, mut heights) = (0, 0);
    let mut stats = alliance_consensus::Stats::default();
    let mut counters: BTreeMap<&'static str, u64> = BTreeMap::new();
    for (seed, r) in results {
        match r {
            Ok(o) => {
                let row = rows.entry((o.n, o.scenario.clone())).or_default();
                row.runs += 1;
                if o.liveness_views > row.views.0 {
                    row.views = (o.liveness_views, *seed);
                }
                if o.liveness_ms > row.ms.0 {
                    row.ms = (o.liveness_ms, *seed);
                }
                if o.liveness_views > worst_views.0 {
                    worst_views = (o.liveness_views, *seed);
                }
                if o.liveness_ms > worst_ms.0 {
                    worst_ms = (o.liveness_ms, *seed);
                }
                steps += o.steps;
                heights += o.height;
                sim::add_stats(&mut stats, &o.stats);
                for (k, v) in &o.counters {
                    *counters.entry(k).or_default() += v;
                }
            }
            Err(f) => {
                let row = rows.entry((f.n, f.scenario.clone())).or_default();
                row.runs += 1;
                row.failures += 1;
                failures.push((*seed, f.clone()));
            }
        }
    }
    println!(
        "{label}: {} seeds in {secs:.1} s, {steps} steps, {} failures",
        results.len(),
        failures.len()
    );
    println!("blocks finalized: {heights} (highest height per seed, summed); honest nodes' counters: {stats:?}");
    println!("faults that struck (summed over passing runs): {counters:?}");
    println!(
        "worst liveness bound ({LIVENESS_HEIGHTS} new heights after GST): {} views (seed {}), {} ms (seed {})",
        worst_views.0, worst_views.1, worst_ms.0, worst_ms.1
    );
    println!(
        "  {:<21} {:>3} {:>6} {:>5} {:>15} {:>17}",
        "scenario", "n", "runs", "fail", "worst views", "worst ms"
    );
    let order = |name: &str| {
        sim::scenario::SCENARIOS
            .iter()
            .position(|s| *s == name)
            .unwrap_or(usize::MAX)
    };
    let mut keys: Vec<&(usize, String)> = rows.keys().collect();
    keys.sort_by_key(|(n, name)| (order(name), *n));
    for key in keys {
        let row = &rows[key];
        println!(
            "  {:<21} {:>3} {:>6} {:>5} {:>6} (s{:<6}) {:>7} (s{:<6})",
            key.1, key.0, row.runs, row.failures, row.views.0, row.views.1, row.ms.0, row.ms.1
        );
    }
    // Failures per scenario and kind, with their seeds.
    let mut by: BTreeMap<(String, &'static str), Vec<String>> = BTreeMap::new();
    for (seed, f) in &failures {
        by.entry((f.scenario.clone(), f.kind))
            .or_default()
            .push(format!("{seed}(n={})", f.n));
    }
    for ((scenario, kind), seeds) in &by {
        println!(
            "  FAILED {scenario} {kind}: {} seeds: {}",
            seeds.len(),
            seeds.join(" ")
        );
    }
    for (seed, f) in &failures {
        eprintln!(
            "failed seed {seed}: {} {} n={} {}",
            f.kind, f.scenario, f.n, f.message
        );
    }
    failures
}

#[test]
fn simulation_is_safe_and_live() {
    let opts = env_options();
    if let Some(seed) = env_u64("SIM_SEED") {
        let traced = run_seed(
            seed,
            &Options {
                trace: true,
                ..opts.clone()
            },
        );
        match traced {
            Ok(o) => {
                for line in &o.trace {
                    eprintln!("{line}");
                }
                eprintln!(
                    "seed {seed}: {} n={} ok, {LIVENESS_HEIGHTS} heights in {} views / {} ms after GST, height {}, {} steps, faults {:?}",
                    o.scenario, o.n, o.liveness_views, o.liveness_ms, o.height, o.steps, o.counters
                );
            }
            Err(f) => panic!("{}", report_failure(seed, &opts, &f)),
        }
        return;
    }
    let start = Instant::now();
    let results = run_many(seed_range(DEFAULT_SEEDS), &opts, None);
    let failures = summarize("simulation", &results, start.elapsed().as_secs_f64());
    if let Some((seed, f)) = failures.first() {
        panic!(
            "{} of {} seeds failed; first: {}",
            failures.len(),
            results.len(),
            report_failure(*seed, &opts, f)
        );
    }
}

/// Runs `seeds` seeds of scenario `name` alone; panics listing every
/// failing seed.
fn scenario_stays_safe_and_live(name: &'static str, seeds: u64) {
    let opts = Options {
        scenario: Some(name),
        ..Options::default()
    };
    let start = Instant::now();
    let results = run_many((0..seeds).collect(), &opts, None);
    let failures = summarize(name, &results, start.elapsed().as_secs_f64());
    if let Some((seed, f)) = failures.first() {
        let list: Vec<String> = failures
            .iter()
            .map(|(s, f)| format!("{s}({} n={})", f.kind, f.n))
            .collect();
        panic!(
            "{} of {seeds} {name} seeds failed: {}; first: {}",
            failures.len(),
            list.join(" "),
            report_failure(*seed, &opts, f)
        );
    }
}

/// Issue #13, defect 2: f silent validators and one honest validator that
/// crashes and restarts before GST. Every seed must stay live (and safe).
#[test]
fn restart_with_f_silent_stays_live() {
    scenario_stays_safe_and_live("silent_restart", RESTART_SEEDS);
}

/// Every honest block-fetch answer before GST is lost (the driver contract
/// lets the fetcher give up: "repeated while still needed"): the core must
/// ask again, or the node never finalizes again.
#[test]
fn lost_fetch_answers_are_requested_again() {
    scenario_stays_safe_and_live("lost_fetch", LOST_FETCH_SEEDS);
}

/// The simulation's cheap signature scheme (`sim::sign`) refuses what
/// ed25519 refuses: random bytes, another signer's key, another chain or
/// validator set, other vote data, a key the run does not know.
#[test]
fn sim_signatures_fail_where_ed25519_would() {
    use alliance_consensus::{Signer, Verifier};
    use alliance_protocol::{Hash32, Signature, VoteData, VoteDomain, VoteKind};
    use sim::{SignedBy, SimKey, SimVerifier};

    let (a, b) = (SimKey::from_label("t/a"), SimKey::from_label("t/b"));
    let stranger = SimKey::from_label("t/stranger");
    let mut verifier = SimVerifier::new(vec![a.clone(), b.clone()]);
    let domain = VoteDomain {
        chain_id: "c".into(),
        validator_set_hash: Hash32([7; 32]),
    };
    let data = VoteData {
        kind: VoteKind::Notarize,
        view: 3,
        height: 2,
        block_hash: Hash32([1; 32]),
    };
    let vote = data.signed_by(&domain, &a);
    assert_eq!(
        vote.signer,
        alliance_protocol::Keypair::from_label("t/a").public()
    );
    assert_eq!(vote.signature, Signer::sign(&a, &domain, &data));
    let ok = |v: &mut SimVerifier, d: &VoteDomain, data: &VoteData, pk, sig| {
        v.verify(d, data, &[(pk, sig)])
    };
    assert!(ok(
        &mut verifier,
        &domain,
        &data,
        a.public(),
        vote.signature
    ));
    assert!(verifier.check(&domain, &vote));
    // Another signer's key, random bytes, one flipped bit.
    assert!(!ok(
        &mut verifier,
        &domain,
        &data,
        b.public(),
        vote.signature
    ));
    assert!(!ok(
        &mut verifier,
        &domain,
        &data,
        a.public(),
        Signature([0x5a; 64])
    ));
    let mut flipped = vote.signature;
    flipped.0[63] ^= 1;
    assert!(!ok(&mut verifier, &domain, &data, a.public(), flipped));
    // Another chain, another validator set.
    for other in [
        VoteDomain {
            chain_id: "d".into(),
            ..domain.clone()
        },
        VoteDomain {
            validator_set_hash: Hash32([8; 32]),
            ..domain.clone()
        },
    ] {
        assert!(!ok(
            &mut verifier,
            &other,
            &data,
            a.public(),
            vote.signature
        ));
    }
    // Other vote data: kind, view, height, block.
    for other in [
        VoteData {
            kind: VoteKind::Finalize,
            ..data
        },
        VoteData { view: 4, ..data },
        VoteData { height: 3, ..data },
        VoteData {
            block_hash: Hash32([2; 32]),
            ..data
        },
    ] {
        assert!(!ok(
            &mut verifier,
            &domain,
            &other,
            a.public(),
            vote.signature
        ));
    }
    // A key the run does not know, even with its own valid signature.
    let foreign = data.signed_by(&domain, &stranger);
    assert!(!verifier.check(&domain, &foreign));
    // A certificate fails as a whole when one signature does.
    let sigs = [
        (a.public(), vote.signature),
        (b.public(), data.signed_by(&domain, &b).signature),
    ];
    assert!(verifier.verify(&domain, &data, &sigs));
    assert!(!verifier.verify(&domain, &data, &[sigs[0], (b.public(), flipped)]));
}

/// A finalization that conflicts with another honest node's, or a finalized
/// block that does not extend the previous one.
fn is_safety_break(f: &Failure) -> bool {
    f.kind == "safety"
        && (f.message.contains("conflicting finalization")
            || f.message.contains("broken hash link"))
}

/// The harness can fail: with `mutation` on (cargo feature `mutation`, on
/// for this crate's tests), the default seeds must show a conflicting
/// finalization or a finalized block that does not extend its predecessor.
fn mutation_is_caught(mutation: Mutation) {
    let opts = Options {
        mutation: Some(mutation),
        ..Options::default()
    };
    let results = run_many((0..DEFAULT_SEEDS).collect(), &opts, Some(is_safety_break));
    let caught = results.iter().find_map(|(seed, r)| match r {
        Err(f) if is_safety_break(f) => Some((*seed, f)),
        _ => None,
    });
    match caught {
        Some((seed, f)) => println!(
            "{mutation:?} caught at seed {seed} ({} n={}): {}",
            f.scenario, f.n, f.message
        ),
        None => panic!("{mutation:?} produced no safety violation in {DEFAULT_SEEDS} seeds: the harness cannot see it"),
    }
}

#[test]
fn mutation_weak_quorum_is_caught() {
    mutation_is_caught(Mutation::WeakQuorum);
}

#[test]
fn mutation_finalize_after_nullify_is_caught() {
    mutation_is_caught(Mutation::FinalizeAfterNullify);
}

#[test]
fn mutation_skip_nullification_check_is_caught() {
    mutation_is_caught(Mutation::SkipNullificationCheck);
}
