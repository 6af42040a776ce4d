//! `alliance-fuzz`: the stable-toolchain fuzzer (see `alliance_tests::fuzz`).
//!
//! ```text
//! alliance-fuzz --target tx|block|net|http [--seconds N] [--seed S] [--findings DIR]
//! alliance-fuzz --target http --url http://127.0.0.1:8080 --chain-id ID   # a running node
//! alliance-fuzz --target tx --replay FILE                                   # one saved input
//! ```
//!
//! Without `--url`, the `http` target starts its own one-validator alliance
//! (real `alliance-node` process; build it first with `cargo build`). Prints
//! progress every 10 s and a final `target=... executions=...` line; exits
//! 1 if anything was found.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use alliance_protocol::fixtures::demo_merchant_key;
use alliance_tests::fuzz::http::HttpTarget;
use alliance_tests::fuzz::targets::{BlockTarget, NetTarget, TxTarget};
use alliance_tests::fuzz::{self, Options, Target};
use alliance_tests::Alliance;

struct Args {
    target: String,
    seconds: u64,
    seed: u64,
    findings: PathBuf,
    url: Option<String>,
    chain_id: String,
    replay: Option<PathBuf>,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        target: String::new(),
        seconds: 60,
        seed: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(1),
        findings: PathBuf::from("target/fuzz-findings"),
        url: None,
        chain_id: "e2e-chain".into(),
        replay: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--target" => args.target = value()?,
            "--seconds" => {
                args.seconds = value()?.parse().map_err(|e| format!("--seconds: {e}"))?
            }
            "--seed" => args.seed = value()?.parse().map_err(|e| format!("--seed: {e}"))?,
            "--findings" => args.findings = value()?.into(),
            "--url" => args.url = Some(value()?),
            "--chain-id" => args.chain_id = value()?,
            "--replay" => args.replay = Some(value()?.into()),
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    if !["tx", "block", "net", "http"].contains(&args.target.as_str()) {
        return Err("--target must be tx, block, net or http".into());
    }
    Ok(args)
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}\nusage: alliance-fuzz --target tx|block|net|http [--seconds N] [--seed S] [--findings DIR] [--url URL --chain-id ID] [--replay FILE]");
            return ExitCode::from(2);
        }
    };
    // Keep the alliance alive for the whole run.
    let mut alliance = None;
    let mut target: Box<dyn Target> = match args.target.as_str() {
        "tx" => Box::new(TxTarget::new()),
        "block" => Box::new(BlockTarget::new()),
        "net" => Box::new(NetTarget::new()),
        _ => match &args.url {
            Some(url) => Box::new(HttpTarget::new(
                url,
                &args.chain_id,
                demo_merchant_key(&args.chain_id, 0),
            )),
            None => {
                let a = Alliance::start(1);
                a.wait_height(1, Duration::from_secs(60));
                let t = HttpTarget::new(&a.nodes[0].api, &a.chain_id, a.keys[0].clone());
                eprintln!(
                    "fuzzing node {} (log in {})",
                    a.nodes[0].api,
                    a.dir.path().display()
                );
                alliance = Some(a);
                Box::new(t)
            }
        },
    };
    if let Some(file) = &args.replay {
        let input = match std::fs::read(file) {
            Ok(i) => i,
            Err(e) => {
                eprintln!("cannot read {}: {e}", file.display());
                return ExitCode::from(2);
            }
        };
        let result = target.run(&input);
        println!("{result:?}");
        return if result.is_ok() {
            ExitCode::SUCCESS
        } else {
            ExitCode::FAILURE
        };
    }
    eprintln!(
        "fuzzing {} for {} s, seed {}",
        args.target, args.seconds, args.seed
    );
    let report = fuzz::run(
        target.as_mut(),
        &Options {
            duration: Duration::from_secs(args.seconds),
            seed: args.seed,
            findings_dir: Some(args.findings.clone()),
            progress: Some(Duration::from_secs(10)),
        },
    );
    println!("{} seed={}", report.summary(), args.seed);
    let mut failed = !report.findings.is_empty();
    if let Some(a) = &alliance {
        // The node must still be up and serving.
        match a.nodes[0].height() {
            Some(h) => println!("node still serving at height {h}"),
            None => {
                println!("node stopped answering; log:\n{}", a.log(0));
                failed = true;
            }
        }
    }
    drop(alliance);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
