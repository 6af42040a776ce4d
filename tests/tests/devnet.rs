//! The README's main command: `alliance-node devnet` brings up a local
//! alliance, runs the demo, and Ctrl-C leaves no process behind.

use std::process::Command;

use alliance_tests::devnet::Devnet;

#[test]
fn devnet_runs_the_demo_and_stops_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let work = dir.path().join("devnet");
    let mut devnet =
        Devnet::start(&work).unwrap_or_else(|out| panic!("devnet did not come up:\n{out}"));
    let out = devnet.banner.clone();
    assert!(
        out.contains("books accepts coffee's points at 90% of their value"),
        "{out}"
    );
    assert!(
        out.contains("alice paid a 0.90 order at books with 100 coffee points"),
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
        let url = format!("http://127.0.0.1:{}/v1/settlement", devnet.api_port + i);
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
    let status = devnet.stop().expect("devnet exits within 30 s of Ctrl-C");
    assert!(status.success(), "devnet exit status {status:?}");
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
