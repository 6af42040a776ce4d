//! `alliance audit`: re-verifies a whole chain from its genesis, trusting no
//! node, from an export file (`alliance-node export`) or from a node's raw
//! blocks. Every rule is the protocol crate's ([`Auditor`]); this module
//! only reads the input, verifies transaction signatures on every core, and
//! prints the result. See docs/audit.md.

use std::io::{IsTerminal, Read};
use std::path::Path;

use alliance_protocol::audit::{audit_stream, AuditReport, StreamFailure};
use alliance_protocol::export::{ChainExport, FINALIZED_BLOCK_BYTES_MAX};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::limits::GENESIS_BYTES_MAX;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::{json, Value};

use super::{CmdResult, Ctx, Failure};
use crate::output;

/// Where the chain comes from.
pub enum Source<'a> {
    /// An export file, optionally checked against a trusted genesis file.
    Export {
        /// The export file.
        file: &'a Path,
        /// The auditor's own genesis copy, if given.
        genesis: Option<&'a Path>,
    },
    /// A node's API (`ctx.client`), checked against a trusted genesis file.
    Node {
        /// The auditor's own genesis copy.
        genesis: &'a Path,
    },
}

/// Reads and validates a genesis file (the auditor's trusted copy).
pub(crate) fn read_genesis(path: &Path) -> Result<Genesis, Failure> {
    let bytes = std::fs::read(path).map_err(|e| {
        Failure::new(
            "genesis_io",
            format!("cannot read genesis file {}: {e}", path.display()),
        )
    })?;
    Genesis::from_json(&bytes).map_err(|e| {
        Failure::new(
            "invalid_genesis",
            format!("genesis file {}: {e}", path.display()),
        )
    })
}

fn genesis_mismatch(trusted: &Genesis, other: &Genesis, what: &str) -> Failure {
    Failure::new(
        "genesis_mismatch",
        format!(
            "refusing to audit: {what} has genesis hash {} (chain {}), but your genesis file has {} (chain {}); audit against the genesis you trust",
            other.hash(),
            other.chain_id,
            trusted.hash(),
            trusted.chain_id
        ),
    )
}

/// GET a path as raw bytes, reading at most `max` bytes.
fn get_raw(ctx: &Ctx, path: &str, max: usize) -> Result<Vec<u8>, Failure> {
    let url = format!("{}{path}", ctx.client.base());
    let agent = ureq::AgentBuilder::new()
        .timeout_connect(crate::http::CONNECT_TIMEOUT)
        .timeout(std::time::Duration::from_secs(60))
        .build();
    let resp = match agent.get(&url).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(status, resp)) => {
            let body: Option<Value> = resp.into_json().ok();
            let msg = body
                .as_ref()
                .and_then(|b| b["error"]["message"].as_str())
                .unwrap_or("no message")
                .to_string();
            return Err(Failure::new(
                "node_error",
                format!("node answered {status} on {path}: {msg}"),
            ));
        }
        Err(ureq::Error::Transport(t)) => {
            return Err(Failure::new(
                "unreachable",
                format!(
                    "cannot reach node at {}: {t}: pass --node URL",
                    ctx.client.base()
                ),
            ))
        }
    };
    let mut bytes = Vec::new();
    resp.into_reader()
        .take(max as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Failure::new("unreachable", format!("reading {path}: {e}")))?;
    if bytes.len() > max {
        return Err(Failure::new(
            "too_large",
            format!("{path}: answer over the {max}-byte limit"),
        ));
    }
    Ok(bytes)
}

/// Runs the protocol crate's streamed audit, ticking the progress bar.
fn run_audit(
    genesis: &Genesis,
    count: u64,
    progress: &ProgressBar,
    next: impl FnMut(u64) -> Result<Vec<u8>, Failure> + Send,
) -> Result<(AuditReport, Option<StreamFailure>), Failure> {
    audit_stream(genesis, count, next, || progress.inc(1))
}

fn progress_bar(ctx: &Ctx, total: u64) -> ProgressBar {
    if ctx.json || !std::io::stdout().is_terminal() {
        return ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::hidden());
    }
    let pb = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{spinner} auditing [{bar:40}] {pos}/{len} blocks {per_sec} eta {eta}",
    ) {
        pb.set_style(style.progress_chars("=> "));
    }
    pb
}

fn human_report(r: &AuditReport) -> String {
    let mut s = format!(
        "chain {} (genesis {})\nblocks {}, transactions {} ({} applied, {} rejected)\n\n",
        r.chain_id, r.genesis_hash, r.blocks, r.transactions, r.applied, r.rejected
    );
    let rows: Vec<Vec<String>> = r
        .merchants
        .iter()
        .map(|m| {
            vec![
                m.id.clone(),
                m.status.clone(),
                m.issued.to_string(),
                m.redeemed.to_string(),
                m.expired.to_string(),
                m.outstanding.to_string(),
                format!("{:.1}%", m.circulation_rate * 100.0),
            ]
        })
        .collect();
    s.push_str(&output::table(
        &[
            "MERCHANT",
            "STATUS",
            "ISSUED",
            "REDEEMED",
            "EXPIRED",
            "OUTSTANDING",
            "CIRCULATION",
        ],
        &[false, false, true, true, true, true, true],
        &rows,
    ));
    if r.claims.is_empty() {
        s.push_str("\nno claims between merchants\n");
    } else {
        s.push_str("\nclaims (creditor is owed by debtor):\n");
        let rows: Vec<Vec<String>> = r
            .claims
            .iter()
            .map(|c| {
                vec![
                    c.creditor.clone(),
                    c.debtor.clone(),
                    c.redeemed_points.to_string(),
                    c.confirmed_points.to_string(),
                    c.outstanding_points.to_string(),
                    output::money_centiminor(c.outstanding_value_centiminor as i128),
                ]
            })
            .collect();
        s.push_str(&output::table(
            &[
                "CREDITOR",
                "DEBTOR",
                "REDEEMED",
                "CONFIRMED",
                "OUTSTANDING",
                "VALUE OWED",
            ],
            &[false, false, true, true, true, true],
            &rows,
        ));
    }
    s.push_str(&format!(
        "\nstate_root {}\ntip        {}\n",
        r.state_root, r.tip_hash
    ));
    s
}

/// `alliance audit`.
pub fn audit(ctx: &Ctx, source: Source<'_>) -> CmdResult {
    let (found, report) = match source {
        Source::Export { file, genesis } => {
            let bytes = std::fs::read(file).map_err(|e| {
                Failure::new(
                    "export_io",
                    format!("cannot read export {}: {e}", file.display()),
                )
            })?;
            let export = ChainExport::decode(&bytes).map_err(|e| {
                Failure::new("bad_export", format!("export {}: {e}", file.display()))
            })?;
            drop(bytes);
            let in_file = export
                .genesis()
                .map_err(|e| Failure::new("bad_export", e.to_string()))?;
            if let Some(path) = genesis {
                let trusted = read_genesis(path)?;
                if trusted.hash() != in_file.hash() {
                    return Err(genesis_mismatch(&trusted, &in_file, "the export"));
                }
            }
            let mut blocks = export.blocks;
            let count = blocks.len() as u64;
            let pb = progress_bar(ctx, count);
            let (report, found) = run_audit(&in_file, count, &pb, |i| {
                Ok(std::mem::take(&mut blocks[i as usize]))
            })?;
            pb.finish_and_clear();
            (found, report)
        }
        Source::Node { genesis } => {
            let trusted = read_genesis(genesis)?;
            let theirs = get_raw(ctx, "/v1/genesis", GENESIS_BYTES_MAX)?;
            let theirs = Genesis::from_json(&theirs).map_err(|e| {
                Failure::new(
                    "unexpected_answer",
                    format!("the node's /v1/genesis is not a valid genesis: {e}"),
                )
            })?;
            if theirs.hash() != trusted.hash() {
                return Err(genesis_mismatch(
                    &trusted,
                    &theirs,
                    &format!("the node at {}", ctx.client.base()),
                ));
            }
            let (status, _) = ctx.status()?;
            let count = status.height;
            let pb = progress_bar(ctx, count);
            let (report, found) = run_audit(&trusted, count, &pb, |i| {
                get_raw(
                    ctx,
                    &format!("/v1/blocks/{}/raw", i + 1),
                    FINALIZED_BLOCK_BYTES_MAX,
                )
            })?;
            pb.finish_and_clear();
            (found, report)
        }
    };
    let failure_json = found
        .as_ref()
        .map(|f| json!({"height": f.height, "tx": f.tx, "code": f.code, "reason": f.reason}));
    if ctx.json {
        let v = json!({
            "verified": found.is_none(),
            "report": report,
            "failure": failure_json,
        });
        println!("{}", output::json(&v));
    } else {
        print!("{}", human_report(&report));
    }
    match found {
        None => {
            if !ctx.json {
                println!("verified");
            }
            Ok(())
        }
        Some(f) => {
            let at = format!("block {}", f.height);
            let message = format!("audit FAILED at {at}: {}", f.reason);
            if ctx.json {
                // One JSON object on stdout: the one above.
                eprintln!("error: {message}");
                std::process::exit(1);
            }
            println!("FAILED at {at}: {} ({})", f.reason, f.code);
            Err(Failure::new(f.code, message))
        }
    }
}
