//! `alliance-bench`: the driver of `scripts/bench.sh`.
//!
//! - `ceiling`: single-core ed25519 verify and batch-verify rates, the
//!   store's flushed batch write rate.
//! - `alliance`: starts N real validator processes on loopback, funds many
//!   accounts, runs open-loop load steps from low to saturation and a long
//!   sustained step, and writes the results as JSON.
//! - `report`: renders the JSON results into docs/benchmarks.md.
//! - `store`: the chain store alone on one storage engine, under a
//!   validator's writes and reads: RSS, disk and throughput as the chain
//!   grows (issue #14).
//! - `memory`: an alliance at one rate for many minutes; each node's RSS
//!   per minute against its budget (issue #14, `scripts/bench-memory.sh`).
//! - `big-state generate` / `big-state run`: a store with millions of
//!   accounts and receipts written directly, then opened, queried and
//!   committed on (issue #14, `scripts/bench-big-state.sh`).

use std::path::PathBuf;
use std::time::Duration;

use alliance_tests::bench::{self, Accounts, FinalityTracker, StepConfig};
use alliance_tests::{
    bench_ceiling, bench_report, big_state, memory_report, store_bench, Alliance,
};
use clap::{Parser, Subcommand};
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Benchmarks of a real alliance (see scripts/bench.sh)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure the machine's ceiling (signatures, the store's writes).
    Ceiling {
        /// Seconds per measurement.
        #[arg(long, default_value_t = 2.0)]
        seconds: f64,
        /// Write JSON here (stdout too).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Start an alliance and drive load through it.
    Alliance {
        /// Validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Offered rates of the curve, tx/s, comma-separated.
        #[arg(
            long,
            value_delimiter = ',',
            default_value = "100,500,1000,2000,3000,4000"
        )]
        rates: Vec<f64>,
        /// Seconds per curve step.
        #[arg(long, default_value_t = 20.0)]
        step_secs: f64,
        /// Offered rate of the sustained step, run on a fresh alliance (0: the curve's knee).
        #[arg(long, default_value_t = 0.0)]
        headline_rate: f64,
        /// Seconds of the sustained step (0: none).
        #[arg(long, default_value_t = 60.0)]
        headline_secs: f64,
        /// Customer accounts.
        #[arg(long, default_value_t = 10_000)]
        accounts: usize,
        /// One transaction in this many is a redemption.
        #[arg(long, default_value_t = 10)]
        redeem_every: usize,
        /// Transactions per submit request at most.
        #[arg(long, default_value_t = 500)]
        batch: usize,
        /// Every node's config.toml (default: the node's defaults).
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write JSON here (stdout too).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// An alliance at one rate for many minutes, one step a minute: each
    /// node's RSS per minute, judged against its budget (issue #14).
    /// Exits non-zero when a node breaks the criterion.
    Memory {
        /// Validators.
        #[arg(long, default_value_t = 4)]
        validators: usize,
        /// Offered rate, tx/s.
        #[arg(long, default_value_t = 2_000.0)]
        rate: f64,
        /// Minutes of load (one step each).
        #[arg(long, default_value_t = 30)]
        minutes: usize,
        /// Minutes before the baseline RSS is taken.
        #[arg(long, default_value_t = 5)]
        warmup_minutes: usize,
        /// Each node's memory budget, MiB (the node's memory_budget_mib).
        #[arg(long, default_value_t = 1_024.0)]
        budget_mib: f64,
        /// Largest allowed RSS growth after the warm-up, percent.
        #[arg(long, default_value_t = 5.0)]
        growth_max_pct: f64,
        /// Customer accounts.
        #[arg(long, default_value_t = 20_000)]
        accounts: usize,
        /// Every node's config.toml (default: the node's defaults), e.g.
        /// `store_engine = "sled"` for the old engine.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Write JSON here (stdout too).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The chain store alone on one storage engine (issue #14): RSS, disk
    /// and commit rate every `--every` blocks.
    Store {
        /// fjall (the node's), fjall-cache64m, redb, redb-cache64m, sled,
        /// sled-cache64m, sled-flush500, sled-cache64m-flush500,
        /// sled-throughput or mem; lmdb with `--features extra-engines`.
        #[arg(long, default_value = "fjall")]
        engine: String,
        /// Transfers per block.
        #[arg(long, default_value_t = 1_000)]
        txs_per_block: usize,
        /// Funded customer accounts.
        #[arg(long, default_value_t = 20_000)]
        accounts: usize,
        /// Blocks of transfers to commit (0: until --seconds).
        #[arg(long, default_value_t = 3_000)]
        blocks: u64,
        /// Seconds to run at most (0: until --blocks).
        #[arg(long, default_value_t = 0.0)]
        seconds: f64,
        /// Print a checkpoint every this many blocks.
        #[arg(long, default_value_t = 100)]
        every: u64,
        /// Random reads of each kind (block, tx location, history) per block.
        #[arg(long, default_value_t = 10)]
        reads: usize,
        /// Data directory (default: a fresh temporary directory, removed).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Write the checkpoints as JSON here.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Writes a large generated ledger state straight into a new store.
    BigStateGenerate {
        #[command(flatten)]
        config: big_state::GenConfig,
        /// Write JSON here (stdout too).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Opens a generated store, serves balance queries and proofs, commits
    /// blocks of transfers; open time, latencies, commit time, RSS.
    BigStateRun {
        #[command(flatten)]
        config: big_state::RunConfig,
        /// Write JSON here (stdout too).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Render JSON results into docs/benchmarks.md.
    Report {
        /// Directory with machine.json, ceiling.json, alliance-*.json, postgres.json.
        #[arg(long)]
        dir: PathBuf,
        /// The markdown file to update.
        #[arg(long)]
        docs: PathBuf,
        /// The command that produced the results (quoted in the docs).
        #[arg(long)]
        command: String,
    },
}

fn write(out: &Option<PathBuf>, v: &Value) {
    println!("{}", serde_json::to_string_pretty(v).expect("json"));
    save(out, v);
}

/// Writes `v` to `out` if given (without printing it).
fn save(out: &Option<PathBuf>, v: &Value) {
    if let Some(path) = out {
        let text = serde_json::to_string_pretty(v).expect("json");
        std::fs::write(path, text + "\n").expect("write results");
    }
}

fn read(path: &std::path::Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

/// The load curve on one alliance, then the sustained run on a fresh one:
/// the curve ends in overload, and its aftermath (deep queues, a validator
/// catching up) would skew a sustained run on the same processes (measured:
/// 7 validators sustained 986 tx/s at p50 1.4 s right after the curve,
/// against p50 0.5 s for the same rate within the curve).
#[allow(clippy::too_many_arguments)]
fn run_alliance(
    validators: usize,
    rates: &[f64],
    step_secs: f64,
    headline_rate: f64,
    headline_secs: f64,
    accounts: usize,
    redeem_every: usize,
    batch: usize,
    config: Option<String>,
) -> Value {
    let config = config.as_deref();
    let mut curve = with_alliance(validators, config, |a| {
        drive_alliance(a, rates, step_secs, None, accounts, redeem_every, batch)
    });
    if headline_secs > 0.0 {
        let rate = if headline_rate > 0.0 {
            headline_rate
        } else {
            let steps = curve["steps"].as_array().cloned().unwrap_or_default();
            bench_report::knee(&steps)
                .or_else(|| rates.first().copied())
                .unwrap_or(1_000.0)
        };
        let sustained = with_alliance(validators, config, |a| {
            drive_alliance(
                a,
                &[],
                0.0,
                Some((rate, headline_secs)),
                accounts,
                redeem_every,
                batch,
            )
        });
        curve["headline"] = sustained["headline"].clone();
    }
    curve
}

/// Starts an alliance, runs `f` on it, copies the node logs to
/// `ALLIANCE_BENCH_LOGS` if set, stops it.
fn with_alliance(
    validators: usize,
    config: Option<&str>,
    f: impl FnOnce(&Alliance) -> Value,
) -> Value {
    eprintln!("starting {validators} validators");
    let alliance = Alliance::start_with_config(validators, config);
    alliance.wait_height(1, Duration::from_secs(60));
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(&alliance)));
    if let Ok(dir) = std::env::var("ALLIANCE_BENCH_LOGS") {
        for i in 0..validators {
            let name = format!("node{i}.log");
            let _ = std::fs::copy(
                alliance.dir.path().join(&name),
                PathBuf::from(&dir).join(name),
            );
        }
    }
    match outcome {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// Funds the accounts, runs the curve's `rates`, then the sustained step
/// `headline` (offered rate, seconds) if any.
fn drive_alliance(
    alliance: &Alliance,
    rates: &[f64],
    step_secs: f64,
    headline: Option<(f64, f64)>,
    accounts: usize,
    redeem_every: usize,
    batch: usize,
) -> Value {
    let validators = alliance.nodes.len();
    let tracker = FinalityTracker::start(&alliance.nodes[0].api);
    let mut acc = Accounts::new(accounts);
    let funding = bench::fund(alliance, &tracker, &acc, 200);
    eprintln!("funded {accounts} accounts in {funding:.1?}");
    let step = |rate: f64, secs: f64| StepConfig {
        rate,
        duration: Duration::from_secs_f64(secs),
        redeem_every,
        batch_max: batch,
        senders: 8,
        drain_timeout: Duration::from_secs(60),
    };
    let mut steps = Vec::new();
    for &rate in rates {
        if acc.usable() < acc.len() / 2 {
            eprintln!("half of the accounts are tainted: stopping the curve");
            break;
        }
        let r = bench::run_step(alliance, &tracker, &mut acc, step(rate, step_secs));
        eprintln!(
            "{validators} validators, {rate} tx/s offered: {:.0} committed tx/s, p50 {:.0} ms, p99 {:.0} ms, refused {}, lost {}, RSS MiB {:.0?}",
            r.committed_tps, r.latency_ms.p50, r.latency_ms.p99, r.rejected, r.lost, r.rss_mib
        );
        if r.lost > 0 || r.rejected > 0 {
            eprintln!("refusals: {:?}", r.rejected_by_code);
            for n in &alliance.nodes {
                let s = n.get("/v1/status").unwrap_or_default();
                eprintln!(
                    "node {}: height {} view {} mempool {} peers {}",
                    n.index,
                    s["height"],
                    s["view"],
                    s["mempool"],
                    s["peers"].as_array().map(Vec::len).unwrap_or(0)
                );
            }
        }
        steps.push(serde_json::to_value(&r).expect("json"));
    }
    let headline = if let Some((rate, headline_secs)) = headline {
        let r = bench::run_step(alliance, &tracker, &mut acc, step(rate, headline_secs));
        eprintln!(
            "{validators} validators, sustained {rate} tx/s for {headline_secs} s: {:.0} committed tx/s, p50 {:.0} ms, p99 {:.0} ms, refused {}, lost {}",
            r.committed_tps, r.latency_ms.p50, r.latency_ms.p99, r.rejected, r.lost
        );
        serde_json::to_value(&r).expect("json")
    } else {
        Value::Null
    };
    json!({
        "validators": validators,
        "accounts": accounts,
        "usable_accounts_after": acc.usable(),
        "funding_s": funding.as_secs_f64(),
        "mix": format!("transfers of 1 point, one redemption in {redeem_every}, submitted in batches of at most {batch} to the nodes in turn"),
        "steps": steps,
        "headline": headline,
        "height": tracker.height(),
    })
}

fn main() {
    match Cli::parse().command {
        Command::Ceiling { seconds, out } => {
            let c = bench_ceiling::measure(seconds);
            write(&out, &serde_json::to_value(c).expect("json"));
        }
        Command::Alliance {
            validators,
            rates,
            step_secs,
            headline_rate,
            headline_secs,
            accounts,
            redeem_every,
            batch,
            config,
            out,
        } => {
            let config = config.map(|p| std::fs::read_to_string(p).expect("read --config"));
            let v = run_alliance(
                validators,
                &rates,
                step_secs,
                headline_rate,
                headline_secs,
                accounts,
                redeem_every,
                batch.clamp(1, bench::BATCH_MAX),
                config,
            );
            write(&out, &v);
        }
        Command::Memory {
            validators,
            rate,
            minutes,
            warmup_minutes,
            budget_mib,
            growth_max_pct,
            accounts,
            config,
            out,
        } => {
            let config = config.map(|p| std::fs::read_to_string(p).expect("read --config"));
            let rates = vec![rate; minutes];
            let mut v = with_alliance(validators, config.as_deref(), |a| {
                drive_alliance(a, &rates, 60.0, None, accounts, 10, 500)
            });
            let steps = v["steps"].as_array().cloned().unwrap_or_default();
            let criterion = memory_report::Criterion {
                warmup_steps: warmup_minutes,
                budget_mib,
                growth_max: growth_max_pct / 100.0,
            };
            println!("{}", memory_report::table(&steps));
            let verdict = memory_report::judge(&steps, criterion);
            let mut ok = verdict.is_some();
            for (i, n) in verdict.iter().flatten().enumerate() {
                println!(
                    "node {i}: RSS {:.0} MiB after {warmup_minutes} min, {:.0} MiB at the end ({:+.1} %), highest {:.0} MiB, budget {budget_mib:.0} MiB: {}",
                    n.baseline_mib,
                    n.last_mib,
                    n.growth * 100.0,
                    n.max_mib,
                    if n.ok { "ok" } else { "FAILED" }
                );
                ok &= n.ok;
            }
            v["memory_verdict"] = json!({
                "warmup_minutes": warmup_minutes,
                "budget_mib": budget_mib,
                "growth_max_pct": growth_max_pct,
                "ok": ok,
            });
            save(&out, &v);
            if !ok {
                eprintln!("memory criterion not met (or too few steps after the warm-up)");
                std::process::exit(1);
            }
        }
        Command::Store {
            engine,
            txs_per_block,
            accounts,
            blocks,
            seconds,
            every,
            reads,
            dir,
            out,
        } => {
            let temp = tempfile::tempdir().expect("temporary directory");
            let config = store_bench::Config {
                engine,
                txs_per_block,
                accounts,
                blocks,
                duration: Duration::from_secs_f64(seconds),
                every,
                reads,
                dir: dir.unwrap_or_else(|| temp.path().join("store")),
            };
            let points = store_bench::run(&config);
            let growth = store_bench::growth_per_1000_blocks(&points);
            eprintln!("RSS growth after the first third: {growth:.1} MiB per 1,000 blocks");
            let v = json!({
                "engine": config.engine,
                "txs_per_block": txs_per_block,
                "accounts": accounts,
                "reads_per_block": reads,
                "rss_growth_mib_per_1000_blocks": growth,
                "checkpoints": points,
            });
            save(&out, &v);
        }
        Command::BigStateGenerate { config, out } => {
            write(&out, &big_state::generate(&config));
        }
        Command::BigStateRun { config, out } => {
            let v = big_state::run(&config);
            let mut summary = v.clone();
            summary["blocks"] = json!(v["blocks"].as_array().map_or(0, Vec::len));
            println!("{}", serde_json::to_string_pretty(&summary).expect("json"));
            save(&out, &v);
        }
        Command::Report { dir, docs, command } => {
            let machine = read(&dir.join("machine.json")).unwrap_or(Value::Null);
            let ceiling = read(&dir.join("ceiling.json")).unwrap_or(Value::Null);
            let mut runs: Vec<Value> = std::fs::read_dir(&dir)
                .expect("results dir")
                .flatten()
                .filter(|e| e.file_name().to_string_lossy().starts_with("alliance-"))
                .filter_map(|e| read(&e.path()))
                .collect();
            runs.sort_by_key(|r| r["validators"].as_u64());
            let postgres = read(&dir.join("postgres.json"));
            let section =
                bench_report::render(&machine, &ceiling, &runs, postgres.as_ref(), &command);
            let doc = std::fs::read_to_string(&docs).unwrap_or_default();
            let updated =
                bench_report::splice(&doc, &section, "## Alliance throughput and finality");
            std::fs::write(&docs, updated).expect("write docs");
            println!("{section}");
        }
    }
}
