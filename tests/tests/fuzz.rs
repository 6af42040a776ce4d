//! Short fuzz runs for CI (the long ones: `alliance-fuzz --target T
//! --seconds 600`, figures in docs/security.md). Each target runs a few
//! seconds from its seeds with a fixed RNG seed: no panic, no hang, no
//! broken round trip, and for `http` a real node that answers every hostile
//! body with a JSON 4xx and keeps finalizing.

use std::time::Duration;

use alliance_tests::fuzz::http::HttpTarget;
use alliance_tests::fuzz::targets::{BlockTarget, NetTarget, TxTarget};
use alliance_tests::fuzz::{self, Options, Report, Target};
use alliance_tests::Alliance;

fn short_run(target: &mut dyn Target, seconds: u64) -> Report {
    let report = fuzz::run(
        target,
        &Options {
            duration: Duration::from_secs(seconds),
            seed: 9,
            findings_dir: None,
            progress: None,
        },
    );
    eprintln!("{}", report.summary());
    assert!(
        report.findings.is_empty(),
        "{}: {:#?}",
        report.target,
        report
            .findings
            .iter()
            .map(|f| (&f.kind, &f.detail))
            .collect::<Vec<_>>()
    );
    assert!(report.accepted > 0, "the seeds at least are accepted");
    report
}

#[test]
fn fuzz_transaction_decoding() {
    let r = short_run(&mut TxTarget::new(), 3);
    assert!(r.executions > 1_000, "{}", r.summary());
}

#[test]
fn fuzz_block_and_certificate_decoding() {
    let r = short_run(&mut BlockTarget::new(), 3);
    assert!(r.executions > 500, "{}", r.summary());
}

#[test]
fn fuzz_network_messages() {
    let r = short_run(&mut NetTarget::new(), 3);
    assert!(r.executions > 500, "{}", r.summary());
}

#[test]
fn fuzz_http_bodies_against_a_real_node() {
    let a = Alliance::start(1);
    a.wait_height(1, Duration::from_secs(60));
    let mut target = HttpTarget::new(&a.nodes[0].api, &a.chain_id, a.keys[0].clone());
    let r = short_run(&mut target, 5);
    assert!(r.executions > 100, "{}", r.summary());
    // Still serving, still finalizing.
    let h = a.nodes[0].height().expect("the node still answers");
    a.wait_height(h + 1, Duration::from_secs(30));
}
