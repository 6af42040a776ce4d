//! A fuzzer for the stable toolchain (cargo-fuzz needs nightly).
//!
//! Each [`Target`] turns bytes into a verdict: an [`Outcome`] (accepted or
//! refused, and how) or a [`Violation`] (round trip broken, bad HTTP answer).
//! The engine starts from valid encodings (the seeds, made with the
//! protocol's fixtures and the node's synthetic chains), mutates them with
//! [`mutate`], mixes in pure random inputs, and keeps in the corpus every
//! input that produced an outcome not seen before (outcome-guided: a new
//! error kind means the input got somewhere new in the decoder). Every input
//! runs under `catch_unwind` with its time measured, and a watchdog thread
//! aborts the process (after saving the input) if one input runs longer than
//! [`HANG_LIMIT`]. Findings are saved to a directory for replay
//! (`alliance-fuzz --replay FILE`).

pub mod http;
pub mod mutate;
pub mod targets;

use std::collections::HashSet;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// One input running longer than this is a hang: the process aborts.
pub const HANG_LIMIT: Duration = Duration::from_secs(10);
/// One input running longer than this is recorded as slow.
pub const SLOW_LIMIT: Duration = Duration::from_secs(1);
/// Corpus entries kept at most (seeds included).
pub const CORPUS_MAX: usize = 4096;
/// Share of executions that use a pure random input instead of a mutation.
const RANDOM_SHARE: f64 = 0.1;

/// What a target made of one input.
pub type Outcome = String;

/// A broken property (anything but a panic or a hang, which the engine
/// catches itself).
pub type Violation = String;

/// Something to fuzz.
pub trait Target {
    /// Its name (`tx`, `block`, `net`, `http`).
    fn name(&self) -> &'static str;
    /// Valid inputs to start from.
    fn seeds(&self) -> Vec<Vec<u8>>;
    /// Runs one input. `Ok` carries a short outcome class (e.g.
    /// `accept:transfer`, `refuse:malformed`); `Err` a violated property.
    fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation>;
    /// A target-specific mutation (e.g. on JSON values); `None` to use the
    /// byte mutations.
    fn mutate(&self, _input: &[u8], _rng: &mut ChaCha8Rng) -> Option<Vec<u8>> {
        None
    }
}

/// What went wrong with one input.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FindingKind {
    /// The target panicked.
    Panic,
    /// The input took more than [`SLOW_LIMIT`].
    Slow,
    /// A property of the target did not hold.
    Violation,
}

/// One finding, with the input that shows it.
#[derive(Debug, Clone)]
pub struct Finding {
    /// What kind.
    pub kind: FindingKind,
    /// The panic message, the time taken or the violated property.
    pub detail: String,
    /// The input.
    pub input: Vec<u8>,
    /// Where the input was saved, if a directory was given.
    pub saved: Option<PathBuf>,
}

/// The figures of one run.
#[derive(Debug, Clone)]
pub struct Report {
    /// Target name.
    pub target: &'static str,
    /// Inputs run.
    pub executions: u64,
    /// Of which pure random.
    pub random_inputs: u64,
    /// Inputs whose outcome class starts with `accept`.
    pub accepted: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Corpus size at the end.
    pub corpus: usize,
    /// Distinct outcome classes seen.
    pub outcomes: usize,
    /// Slowest input.
    pub slowest: Duration,
    /// Panics, slow inputs and violations.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Executions per second.
    pub fn rate(&self) -> f64 {
        self.executions as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Findings of one kind.
    pub fn count(&self, kind: FindingKind) -> usize {
        self.findings.iter().filter(|f| f.kind == kind).count()
    }

    /// One line for logs and docs.
    pub fn summary(&self) -> String {
        format!(
            "target={} executions={} random={} accepted={} seconds={:.0} execs_per_s={:.0} corpus={} outcomes={} slowest_ms={} panics={} slow={} violations={}",
            self.target,
            self.executions,
            self.random_inputs,
            self.accepted,
            self.elapsed.as_secs_f64(),
            self.rate(),
            self.corpus,
            self.outcomes,
            self.slowest.as_millis(),
            self.count(FindingKind::Panic),
            self.count(FindingKind::Slow),
            self.count(FindingKind::Violation),
        )
    }
}

/// How to run.
#[derive(Debug, Clone)]
pub struct Options {
    /// Stop after this long.
    pub duration: Duration,
    /// RNG seed (runs are reproducible for the in-process targets).
    pub seed: u64,
    /// Where to save findings (and the input of a hang).
    pub findings_dir: Option<PathBuf>,
    /// Print a progress line this often (`None`: quiet).
    pub progress: Option<Duration>,
}

/// Error classes keep the words of an error up to its first quoted value
/// (serde quotes values with backticks), without numbers, so that "invalid
/// length 7" and "invalid length 9" are one outcome, and so are two strings
/// refused for the same reason.
pub fn outcome_class(prefix: &str, detail: &str) -> Outcome {
    let words: String = detail
        .chars()
        .take_while(|&c| c != '`' && c != '\'')
        .filter(|&c| c.is_ascii_alphabetic() || " :_(".contains(c))
        .take(48)
        .collect();
    format!("{prefix}:{words}")
}

fn save(dir: &Path, target: &str, kind: &str, input: &[u8]) -> Option<PathBuf> {
    std::fs::create_dir_all(dir).ok()?;
    let hash = alliance_protocol::encoding::hash_with_domain("fuzz", input);
    let path = dir.join(format!("{target}-{kind}-{}.bin", &hash.to_hex()[..16]));
    std::fs::write(&path, input).ok()?;
    Some(path)
}

/// What the watchdog sees of the input in flight.
struct InFlight {
    /// Milliseconds since `epoch` when the input started; 0 when idle.
    started_ms: AtomicU64,
    input: Mutex<Vec<u8>>,
    done: AtomicBool,
}

fn spawn_watchdog(
    in_flight: Arc<InFlight>,
    epoch: Instant,
    target: &'static str,
    dir: Option<PathBuf>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        while !in_flight.done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            let started = in_flight.started_ms.load(Ordering::Relaxed);
            if started == 0 {
                continue;
            }
            let now = epoch.elapsed().as_millis() as u64;
            if now.saturating_sub(started) > HANG_LIMIT.as_millis() as u64 {
                let input = in_flight
                    .input
                    .lock()
                    .map(|i| i.clone())
                    .unwrap_or_default();
                let saved = dir.as_deref().and_then(|d| save(d, target, "hang", &input));
                eprintln!(
                    "HANG: target {target}: one input ran over {HANG_LIMIT:?} ({} bytes, saved to {saved:?}); aborting",
                    input.len()
                );
                std::process::abort();
            }
        }
    })
}

/// Fuzzes `target` for `options.duration`.
pub fn run(target: &mut dyn Target, options: &Options) -> Report {
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut corpus: Vec<Vec<u8>> = target.seeds();
    assert!(!corpus.is_empty(), "target {} has no seeds", target.name());
    let mut outcomes: HashSet<Outcome> = HashSet::new();
    let mut report = Report {
        target: target.name(),
        executions: 0,
        random_inputs: 0,
        accepted: 0,
        elapsed: Duration::ZERO,
        corpus: 0,
        outcomes: 0,
        slowest: Duration::ZERO,
        findings: Vec::new(),
    };
    let epoch = Instant::now();
    let in_flight = Arc::new(InFlight {
        started_ms: AtomicU64::new(0),
        input: Mutex::new(Vec::new()),
        done: AtomicBool::new(false),
    });
    let watchdog = spawn_watchdog(
        in_flight.clone(),
        epoch,
        target.name(),
        options.findings_dir.clone(),
    );
    let seeds = corpus.len();
    let mut last_progress = Instant::now();
    let mut next = 0usize;
    while epoch.elapsed() < options.duration {
        // Seeds first, as they are; then mutations and random inputs.
        let (input, random) = if next < seeds {
            next += 1;
            (corpus[next - 1].clone(), false)
        } else if rng.gen_bool(RANDOM_SHARE) {
            (mutate::random_input(&mut rng), true)
        } else {
            let base = &corpus[rng.gen_range(0..corpus.len())];
            let other = &corpus[rng.gen_range(0..corpus.len())];
            let custom = if rng.gen_bool(0.5) {
                target.mutate(base, &mut rng)
            } else {
                None
            };
            (
                custom.unwrap_or_else(|| mutate::mutate(base, other, &mut rng)),
                false,
            )
        };
        if let Ok(mut slot) = in_flight.input.lock() {
            slot.clear();
            slot.extend_from_slice(&input);
        }
        let start = Instant::now();
        in_flight
            .started_ms
            .store(epoch.elapsed().as_millis() as u64 + 1, Ordering::Relaxed);
        let result = catch_unwind(AssertUnwindSafe(|| target.run(&input)));
        in_flight.started_ms.store(0, Ordering::Relaxed);
        let took = start.elapsed();
        report.executions += 1;
        report.random_inputs += random as u64;
        report.slowest = report.slowest.max(took);
        let mut finding = |kind: FindingKind, detail: String, label: &str| {
            let saved = options
                .findings_dir
                .as_deref()
                .and_then(|d| save(d, report.target, label, &input));
            eprintln!(
                "FINDING ({label}) in {}: {detail} [{} bytes, saved to {saved:?}]",
                report.target,
                input.len()
            );
            report.findings.push(Finding {
                kind,
                detail,
                input: input.clone(),
                saved,
            });
        };
        if took > SLOW_LIMIT {
            finding(FindingKind::Slow, format!("{took:?}"), "slow");
        }
        match result {
            Err(panic) => {
                let msg = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_else(|| "non-string panic".into());
                finding(FindingKind::Panic, msg, "panic");
            }
            Ok(Err(violation)) => finding(FindingKind::Violation, violation, "violation"),
            Ok(Ok(outcome)) => {
                if outcome.starts_with("accept") {
                    report.accepted += 1;
                }
                if outcomes.insert(outcome) && corpus.len() < CORPUS_MAX {
                    corpus.push(input);
                }
            }
        }
        if let Some(every) = options.progress {
            if last_progress.elapsed() >= every {
                last_progress = Instant::now();
                report.elapsed = epoch.elapsed();
                report.corpus = corpus.len();
                report.outcomes = outcomes.len();
                eprintln!("{}", report.summary());
            }
        }
    }
    in_flight.done.store(true, Ordering::Relaxed);
    let _ = watchdog.join();
    report.elapsed = epoch.elapsed();
    report.corpus = corpus.len();
    report.outcomes = outcomes.len();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Picky;

    impl Target for Picky {
        fn name(&self) -> &'static str {
            "picky"
        }
        fn seeds(&self) -> Vec<Vec<u8>> {
            vec![b"abc".to_vec()]
        }
        fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation> {
            match input.first() {
                Some(b'a') => Ok("accept".into()),
                Some(0) => panic!("zero"),
                Some(1) => Err("one".into()),
                _ => Ok(outcome_class("refuse", "other 123")),
            }
        }
    }

    #[test]
    fn the_engine_catches_panics_and_violations() {
        let report = run(
            &mut Picky,
            &Options {
                duration: Duration::from_millis(300),
                seed: 7,
                findings_dir: None,
                progress: None,
            },
        );
        assert!(report.executions > 100);
        assert!(report.accepted > 0);
        assert!(report.count(FindingKind::Panic) > 0);
        assert!(report.count(FindingKind::Violation) > 0);
        assert!(report.outcomes >= 2);
    }

    #[test]
    fn outcome_classes_ignore_numbers() {
        assert_eq!(
            outcome_class("refuse", "invalid length 7"),
            outcome_class("refuse", "invalid length 9")
        );
        assert_eq!(
            outcome_class("refuse", "unknown variant `Foo`, expected one of"),
            outcome_class("refuse", "unknown variant `Bar`, expected one of")
        );
    }
}
