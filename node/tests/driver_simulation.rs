//! Deterministic simulation of whole nodes: the real driver, chain, ledger,
//! mempool and store, on a simulated network and clock (see tests/driver_sim
//! and the "Simulation" section of docs/consensus.md).
//!
//! - `cargo test` runs `DEFAULT_SEEDS` seeds: n from 1, 2, 3, 4, 5, 7, 10
//!   by `seed / scenarios % 7`, every scenario in turn.
//! - `SIM_SEEDS=N` runs N seeds, `SIM_SEED_START=S` starts at seed S,
//!   `SIM_SEED=S` replays exactly seed S and prints its step log.
//! - `SIM_SCENARIO=name` runs only that scenario, `SIM_N=n` forces the
//!   validator count, `SIM_THREADS=t` sets the threads (default: one per
//!   core).

mod driver_sim;

use std::time::Instant;

use driver_sim::scenario::{Scenario, SCENARIOS};
use driver_sim::{run_seed, Outcome};

/// Seeds run by a plain `cargo test` (every scenario at every size, six
/// times over, and a few more).
const DEFAULT_SEEDS: u64 = 300;
/// Validator counts, cycled through.
const SIZES: &[usize] = &[1, 2, 3, 4, 5, 7, 10];
/// Step-log lines printed for a failing seed (`SIM_TRACE_TAIL` overrides).
const TRACE_TAIL: usize = 200;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The scenario and size of `seed` (or the forced ones).
fn shape(seed: u64) -> (&'static Scenario, usize) {
    let scenario = match std::env::var("SIM_SCENARIO") {
        Ok(name) => SCENARIOS
            .iter()
            .find(|s| s.name == name)
            .unwrap_or_else(|| {
                let names: Vec<_> = SCENARIOS.iter().map(|s| s.name).collect();
                panic!("unknown SIM_SCENARIO {name}: one of {names:?}")
            }),
        Err(_) => &SCENARIOS[(seed % SCENARIOS.len() as u64) as usize],
    };
    let n = env_u64("SIM_N")
        .map(|n| n as usize)
        .unwrap_or(SIZES[((seed / SCENARIOS.len() as u64) % SIZES.len() as u64) as usize]);
    (scenario, n)
}

fn replay_line(o: &Outcome) -> String {
    format!(
        "SIM_SEED={} SIM_SCENARIO={} SIM_N={} cargo test -p alliance-node --test driver_simulation -- --nocapture",
        o.seed, o.scenario, o.n
    )
}

#[test]
fn whole_nodes_stay_safe_and_live() {
    if let Some(seed) = env_u64("SIM_SEED") {
        // The drivers' own logs, interleaved with the step log's order.
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                std::env::var("RUST_LOG").unwrap_or_else(|_| "alliance_node=info".into()),
            )
            .with_writer(std::io::stderr)
            .without_time()
            .try_init();
        let (scenario, n) = shape(seed);
        let o = run_seed(seed, scenario, n);
        for line in &o.log {
            eprintln!("{line}");
        }
        eprintln!(
            "seed {seed} {} n={n}: {:?}, height {}, {} lies, recovered in {} ms",
            o.scenario, o.result, o.height, o.lies, o.recovery_ms
        );
        assert!(o.result.is_ok(), "{}", replay_line(&o));
        return;
    }
    let start = env_u64("SIM_SEED_START").unwrap_or(0);
    let count = env_u64("SIM_SEEDS").unwrap_or(DEFAULT_SEEDS);
    let tail = env_u64("SIM_TRACE_TAIL").unwrap_or(TRACE_TAIL as u64) as usize;
    let threads = env_u64("SIM_THREADS")
        .map(|t| t.max(1) as usize)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    let began = Instant::now();
    // Seeds are dealt round-robin to the threads; outcomes are reported in
    // seed order, so the report does not depend on the thread count.
    let mut outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads as u64)
            .map(|t| {
                scope.spawn(move || {
                    (start + t..start + count)
                        .step_by(threads)
                        .map(|seed| {
                            let (scenario, n) = shape(seed);
                            run_seed(seed, scenario, n)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a simulation thread panicked"))
            .collect()
    });
    outcomes.sort_by_key(|o| o.seed);
    let mut failures = Vec::new();
    let (mut worst_ms, mut worst_seed, mut lies) = (0, start, 0);
    for o in outcomes {
        let seed = o.seed;
        lies += o.lies;
        if o.recovery_ms > worst_ms {
            (worst_ms, worst_seed) = (o.recovery_ms, seed);
        }
        if let Err(f) = &o.result {
            for line in o.log.iter().rev().take(tail).rev() {
                eprintln!("{line}");
            }
            eprintln!("FAILED {f:?}\n  replay: {}", replay_line(&o));
            failures.push(seed);
        }
    }
    eprintln!(
        "driver simulation: {count} seeds from {start}, {} failures, {lies} lies told, \
         worst recovery {worst_ms} ms (seed {worst_seed}), {:.1} s",
        failures.len(),
        began.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "failing seeds: {failures:?}");
}

/// Same seed, same run: the step logs of two runs are identical.
#[test]
fn a_seed_replays_exactly() {
    for seed in [3, 11] {
        let (scenario, n) = shape(seed);
        let a = run_seed(seed, scenario, n);
        let b = run_seed(seed, scenario, n);
        assert_eq!(a.log, b.log, "seed {seed} is not deterministic");
        assert!(a.height > 0, "seed {seed} committed nothing");
    }
}
