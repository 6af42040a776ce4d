//! `--help` works for the binary and every (nested) subcommand, and every
//! argument has help text. Being an integration test of `alliance-client`,
//! it also makes `cargo test --workspace` build the `alliance` binary that
//! the end-to-end test (tests/tests/cli.rs) runs.

use std::process::Command;

use alliance_client::cli::Cli;
use clap::CommandFactory;

fn paths(cmd: &clap::Command, prefix: Vec<String>, out: &mut Vec<Vec<String>>) {
    out.push(prefix.clone());
    for sub in cmd.get_subcommands() {
        let mut p = prefix.clone();
        p.push(sub.get_name().to_string());
        paths(sub, p, out);
    }
}

#[test]
fn every_subcommand_has_complete_help() {
    let cmd = Cli::command();
    let mut all = Vec::new();
    paths(&cmd, Vec::new(), &mut all);
    assert!(all.len() >= 20, "{all:?}");
    for path in &all {
        let out = Command::new(env!("CARGO_BIN_EXE_alliance"))
            .args(path)
            .arg("--help")
            .output()
            .expect("run alliance");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "alliance {path:?} --help failed: {stdout}"
        );
        let usage = stdout
            .lines()
            .find(|l| l.starts_with("Usage: alliance"))
            .unwrap_or_else(|| panic!("{path:?}: no usage line: {stdout}"));
        for word in path {
            assert!(usage.contains(word.as_str()), "{path:?}: {usage}");
        }
    }
    // Every argument and subcommand is documented.
    fn check(cmd: &clap::Command, name: &str) {
        for a in cmd.get_arguments() {
            assert!(
                a.get_help().is_some() || a.get_long_help().is_some(),
                "{name}: argument {} has no help",
                a.get_id()
            );
        }
        for s in cmd.get_subcommands() {
            assert!(
                s.get_about().is_some(),
                "{name} {} has no about",
                s.get_name()
            );
            check(s, &format!("{name} {}", s.get_name()));
        }
    }
    check(&cmd, "alliance");
}

#[test]
fn bad_input_is_refused_before_any_network_use() {
    // The node URL points nowhere: these must fail in argument parsing.
    let bin = env!("CARGO_BIN_EXE_alliance");
    let good = alliance_protocol::Keypair::from_label("x")
        .public()
        .to_string();
    let mut typo: Vec<char> = good.chars().collect();
    typo[20] = if typo[20] == 'q' { 'p' } else { 'q' };
    let typo: String = typo.into_iter().collect();
    for args in [
        vec!["balance", typo.as_str()],
        vec![
            "send",
            "--key",
            "w.json",
            "--to",
            typo.as_str(),
            "--amount",
            "1",
        ],
        vec![
            "send",
            "--key",
            "w.json",
            "--to",
            good.as_str(),
            "--amount",
            "0",
        ],
        vec![
            "send",
            "--key",
            "w.json",
            "--to",
            good.as_str(),
            "--amount",
            "ten",
        ],
        vec![
            "redeem", "--key", "w.json", "--at", "Books!", "--amount", "1", "--order", "o",
        ],
        vec!["tx", "nothex"],
    ] {
        let out = Command::new(bin)
            .args(&args)
            .env("ALLIANCE_NODE", "http://127.0.0.1:9")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(!err.contains("cannot reach node"), "{args:?}: {err}");
    }
}

#[test]
fn unreachable_node_says_what_to_fix() {
    let out = Command::new(env!("CARGO_BIN_EXE_alliance"))
        .args(["--node", "http://127.0.0.1:9", "status"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reach node at http://127.0.0.1:9"),
        "{err}"
    );
    assert!(err.contains("--node"), "{err}");
}
