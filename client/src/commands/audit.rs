//! `alliance audit`: re-verifies a whole chain from its genesis, trusting no
//! node, from an export file (`alliance-node export`) or from a node's raw
//! blocks. Every rule is the protocol crate's ([`Auditor`]); this module
//! only reads the input, verifies transaction signatures on every core, and
//! prints the result. See docs/audit.md.

use std::io::{IsTerminal, Read};
use std::path::Path;

use alliance_protocol::audit::{
    audit_stream, AuditReport, NodeTip, StreamFailure, TipRequirements,
};
use alliance_protocol::export::{ChainExport, ExportError, FINALIZED_BLOCK_BYTES_MAX};
use alliance_protocol::genesis::Genesis;
use alliance_protocol::limits::GENESIS_BYTES_MAX;
use alliance_protocol::{FinalizedBlock, Hash32};
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
        /// Compare the export's tip with the finalized chain of the node
        /// (`ctx.client`): `--node` was given.
        compare_with_node: bool,
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
        "\nstate_root {}\ntip        {} (height {}, {}, {} old)\n",
        r.state_root,
        r.tip_hash,
        r.blocks,
        output::utc_datetime(r.tip_timestamp_ms),
        age(output::now_ms().saturating_sub(r.tip_timestamp_ms)),
    ));
    s
}

/// An age for people: `42 s`, `17 min`, `5 h 3 min`, `12 d 4 h`.
fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..=119 => format!("{s} s"),
        120..=7_199 => format!("{} min", s / 60),
        7_200..=172_799 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}

/// What the reader requires of the audited tip (`--max-age`,
/// `--min-height`, `--tip`); the node comparison is added by [`audit`].
pub struct TipArgs<'a> {
    /// `--max-age SECS`.
    pub max_age_s: Option<u64>,
    /// `--min-height H`.
    pub min_height: u64,
    /// `--tip HASH` (64 hex characters, checked by the parser).
    pub tip: Option<&'a str>,
}

/// The result of reading and auditing the chain: the report, the first
/// failure (of the chain, or of the tip requirements).
struct Outcome {
    report: AuditReport,
    failure: Option<StreamFailure>,
}

/// `alliance audit`. With `--json`, every outcome, including input that
/// cannot be read or decoded, is one `{"verified", "report", "failure"}`
/// object on stdout (docs/audit.md).
pub fn audit(ctx: &Ctx, source: Source<'_>, tip: &TipArgs<'_>) -> CmdResult {
    let outcome = match run(ctx, source, tip) {
        Ok(o) => o,
        Err((height, f)) => {
            if ctx.json {
                let v = json!({
                    "verified": false,
                    "report": Value::Null,
                    "tip_age_ms": Value::Null,
                    "failure": {"height": height, "tx": Value::Null, "code": f.code, "reason": f.message},
                });
                println!("{}", output::json(&v));
                eprintln!("error: {}", f.message);
                std::process::exit(1);
            }
            return Err(f);
        }
    };
    let Outcome { report, failure } = outcome;
    let failure_json = failure
        .as_ref()
        .map(|f| json!({"height": f.height, "tx": f.tx, "code": f.code, "reason": f.reason}));
    if ctx.json {
        let v = json!({
            "verified": failure.is_none(),
            "report": report,
            "tip_age_ms": output::now_ms().saturating_sub(report.tip_timestamp_ms),
            "failure": failure_json,
        });
        println!("{}", output::json(&v));
    } else {
        print!("{}", human_report(&report));
    }
    match failure {
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

/// A failure before any report, with the height it concerns if known.
type Early = (Option<u64>, Failure);

fn early(f: Failure) -> Early {
    (None, f)
}

/// The height an export framing or decoding error concerns, if any.
fn export_error_height(e: &ExportError) -> Option<u64> {
    match e {
        ExportError::Block { index, .. } | ExportError::BlockTooLarge { index, .. } => {
            Some(index + 1)
        }
        _ => None,
    }
}

/// Reads the chain, audits it, then checks the tip requirements.
fn run(ctx: &Ctx, source: Source<'_>, tip: &TipArgs<'_>) -> Result<Outcome, Early> {
    let mut req = TipRequirements {
        now_ms: output::now_ms(),
        max_age_ms: tip.max_age_s.map(|s| s.saturating_mul(1000)),
        min_height: tip.min_height,
        tip_hash: match tip.tip {
            Some(h) => Some(
                Hash32::from_hex(h)
                    .map_err(|e| early(Failure::new("usage", format!("--tip `{h}`: {e}"))))?,
            ),
            None => None,
        },
        node: None,
    };
    let (report, failure) = match source {
        Source::Export {
            file,
            genesis,
            compare_with_node,
        } => {
            let bytes = std::fs::read(file).map_err(|e| {
                early(Failure::new(
                    "export_io",
                    format!("cannot read export {}: {e}", file.display()),
                ))
            })?;
            let export = ChainExport::decode(&bytes).map_err(|e| {
                (
                    export_error_height(&e),
                    Failure::new("bad_export", format!("export {}: {e}", file.display())),
                )
            })?;
            drop(bytes);
            let in_file = export
                .genesis()
                .map_err(|e| early(Failure::new("bad_export", e.to_string())))?;
            if let Some(path) = genesis {
                let trusted = read_genesis(path).map_err(early)?;
                if trusted.hash() != in_file.hash() {
                    return Err(early(genesis_mismatch(&trusted, &in_file, "the export")));
                }
            }
            // The node's tip is read before the audit: the export's hash at
            // that height is needed, and the blocks are consumed below.
            let node = if compare_with_node {
                Some(node_tip(ctx, &in_file, &export).map_err(early)?)
            } else {
                None
            };
            let mut blocks = export.blocks;
            let count = blocks.len() as u64;
            let pb = progress_bar(ctx, count);
            let (report, failure) = run_audit(&in_file, count, &pb, |i| {
                Ok(std::mem::take(&mut blocks[i as usize]))
            })
            .map_err(early)?;
            pb.finish_and_clear();
            if let (Some(node), None) = (&node, &failure) {
                req.node = Some(node_tip_against(ctx, node, &report).map_err(early)?);
            }
            (report, failure)
        }
        Source::Node { genesis } => {
            let trusted = read_genesis(genesis).map_err(early)?;
            let theirs = get_raw(ctx, "/v1/genesis", GENESIS_BYTES_MAX).map_err(early)?;
            let theirs = Genesis::from_json(&theirs).map_err(|e| {
                early(Failure::new(
                    "unexpected_answer",
                    format!("the node's /v1/genesis is not a valid genesis: {e}"),
                ))
            })?;
            if theirs.hash() != trusted.hash() {
                return Err(early(genesis_mismatch(
                    &trusted,
                    &theirs,
                    &format!("the node at {}", ctx.client.base()),
                )));
            }
            let (status, _) = ctx.status().map_err(early)?;
            let count = status.height;
            let pb = progress_bar(ctx, count);
            let (report, failure) = run_audit(&trusted, count, &pb, |i| {
                get_raw(
                    ctx,
                    &format!("/v1/blocks/{}/raw", i + 1),
                    FINALIZED_BLOCK_BYTES_MAX,
                )
            })
            .map_err(early)?;
            pb.finish_and_clear();
            (report, failure)
        }
    };
    if failure.is_some() {
        return Ok(Outcome { report, failure });
    }
    let tip_hash = Hash32::from_hex(&report.tip_hash)
        .map_err(|e| early(Failure::new("internal", format!("report tip hash: {e}"))))?;
    let failure = req
        .check(report.blocks, tip_hash, report.tip_timestamp_ms)
        .err()
        .map(|fault| StreamFailure {
            height: report.blocks,
            tx: None,
            code: fault.code().into(),
            reason: fault.to_string(),
        });
    Ok(Outcome { report, failure })
}

/// The node's finalized tip as read before the audit (height, hash), and
/// the export's block hash at that height when the node is behind the
/// export (read now: the audit consumes the blocks).
struct NodeTipRead {
    height: u64,
    hash: Hash32,
    ours_at_height: Option<Hash32>,
}

fn node_tip(ctx: &Ctx, genesis: &Genesis, export: &ChainExport) -> Result<NodeTipRead, Failure> {
    let (status, _) = ctx.status()?;
    let hash = Hash32::from_hex(&status.tip_hash).map_err(|e| {
        Failure::new(
            "unexpected_answer",
            format!("the node's status has no valid tip hash: {e}"),
        )
    })?;
    let export_height = export.blocks.len() as u64;
    // A block that does not decode fails the audit anyway: no hash then.
    let ours_at_height = match status.height {
        h if h >= export_height => None,
        0 => Some(genesis.hash()),
        h => FinalizedBlock::from_bytes(&export.blocks[(h - 1) as usize])
            .ok()
            .map(|fb| fb.block.hash()),
    };
    Ok(NodeTipRead {
        height: status.height,
        hash,
        ours_at_height,
    })
}

/// Both chains' hashes at the lower of the two tips.
fn node_tip_against(
    ctx: &Ctx,
    node: &NodeTipRead,
    report: &AuditReport,
) -> Result<NodeTip, Failure> {
    let audited_tip = Hash32::from_hex(&report.tip_hash)
        .map_err(|e| Failure::new("internal", format!("report tip hash: {e}")))?;
    let at = report.blocks.min(node.height);
    let (node_hash, audited_hash) = if node.height >= report.blocks {
        let node_hash = if at == node.height {
            node.hash
        } else if at == 0 {
            let raw = get_raw(ctx, "/v1/genesis", GENESIS_BYTES_MAX)?;
            Genesis::from_json(&raw)
                .map_err(|e| {
                    Failure::new(
                        "unexpected_answer",
                        format!("the node's /v1/genesis is not a valid genesis: {e}"),
                    )
                })?
                .hash()
        } else {
            let v = ctx.client.get(&format!("/v1/blocks/{at}"))?;
            v["hash"]
                .as_str()
                .and_then(|h| Hash32::from_hex(h).ok())
                .ok_or_else(|| {
                    Failure::new(
                        "unexpected_answer",
                        format!("the node's block {at} has no valid hash"),
                    )
                })?
        };
        (node_hash, audited_tip)
    } else {
        let ours = node.ours_at_height.ok_or_else(|| {
            Failure::new(
                "internal",
                "the export's hash at the node's height is unknown",
            )
        })?;
        (node.hash, ours)
    };
    Ok(NodeTip {
        height: node.height,
        common_height: at,
        node_hash,
        audited_hash,
    })
}
