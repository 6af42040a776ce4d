//! The README's main command: `alliance-node devnet` brings up a local
//! alliance, runs the demo, and Ctrl-C leaves no process behind.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use alliance_tests::{node_binary, wait_for};

#[test]
fn devnet_runs_the_demo_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("devnet");
    let (api, p2p) = (
        alliance_tests::free_port_range(4),
        alliance_tests::free_port_range(4),
    );
    let mut child = Command::new(node_binary())
        .args([
            "devnet",
            "--api-port",
            &api.to_string(),
            "--p2p-port",
            &p2p.to_string(),
            "--dir",
        ])
        .arg(&work)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let mut out = String::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        out.push_str(&line);
        out.push('\n');
        if line.contains("Press Ctrl-C") {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "devnet did not come up:\n{out}"
        );
    }
    assert!(
        out.contains("alice redeemed 100 coffee points at books"),
        "{out}"
    );
    // The banner points to the wallet CLI that exists (issue 18).
    assert!(out.contains("alliance keygen --out"), "{out}");
    assert!(!out.contains("arrive with"), "{out}");
    // `run > node.log`: no terminal colours in a file (issue 18).
    for i in 0..4 {
        let log = std::fs::read(work.join(format!("node{i}.log"))).unwrap();
        assert!(
            !log.contains(&0x1b),
            "node{i}.log has ANSI escapes: {}",
            String::from_utf8_lossy(&log[..log.len().min(400)])
        );
    }
    // The demo's claim is visible through the API of every node.
    for i in 0..4 {
        let url = format!("http://127.0.0.1:{}/v1/settlement", api + i);
        let v: serde_json::Value = ureq::get(&url).call().unwrap().into_json().unwrap();
        let claim = &v["claims"][0];
        assert_eq!(
            (claim["creditor"].as_str(), claim["debtor"].as_str()),
            (Some("books"), Some("coffee")),
            "{v}"
        );
        assert_eq!(claim["outstanding_points"], 40, "{v}");
    }
    // Ctrl-C (SIGINT to the devnet process only) stops every node.
    Command::new("kill")
        .arg("-INT")
        .arg(child.id().to_string())
        .status()
        .unwrap();
    let status = wait_for("devnet exit", Duration::from_secs(30), || {
        child.try_wait().unwrap()
    });
    assert!(status.success(), "devnet exit status {status:?}");
    drop(lines);
    let left = Command::new("pgrep")
        .arg("-f")
        .arg(work.to_str().unwrap())
        .output()
        .unwrap();
    assert!(
        left.stdout.is_empty(),
        "node processes left behind: {}",
        String::from_utf8_lossy(&left.stdout)
    );
}
