//! `alliance balance ADDRESS --verify --genesis FILE`: fetches the account's
//! proof from the node and checks it locally from the genesis file with
//! the protocol crate's light client ([`verify_account_proof`]): the
//! validator-set changes since genesis, the header's finalize certificate,
//! freshness, and the sparse-Merkle proof of the account. Nothing the node
//! says is believed unless it is proven. See docs/audit.md.

use std::path::Path;
use std::time::Duration;

use alliance_protocol::light::{verify_account_proof, AccountProof, Freshness};
use serde_json::{json, Value};

use super::audit::read_genesis;
use super::wallet::{lots_table, who};
use super::{CmdResult, Ctx, Failure};
use crate::api;
use crate::cli::WhoArgs;
use crate::output;

fn refused(ctx: &Ctx, code: &str, reason: &str) -> Failure {
    if ctx.json {
        println!(
            "{}",
            output::json(&json!({"proven": false, "failure": {"code": code, "reason": reason}}))
        );
        // One JSON object on stdout: the one above (as `alliance audit`).
        eprintln!("error: balance NOT proven: {reason}");
        std::process::exit(1);
    } else {
        println!("NOT PROVEN: {reason} ({code})");
    }
    Failure::new(code, format!("balance NOT proven: {reason}"))
}

/// `alliance balance --verify`.
pub fn balance_verified(
    ctx: &Ctx,
    w: &WhoArgs,
    genesis: &Path,
    max_age: Duration,
    min_height: u64,
) -> CmdResult {
    let address = who(w)?;
    let genesis = read_genesis(genesis)?;
    let (raw, _): (Value, _) = ctx.get(&format!("/v1/accounts/{address}/proof"))?;
    let proof: AccountProof = match serde_json::from_value(raw["proof"].clone()) {
        Ok(p) => p,
        Err(e) => {
            return Err(refused(
                ctx,
                "malformed_proof",
                &format!("the node's proof is not well-formed: {e}"),
            ))
        }
    };
    let now_ms = output::now_ms();
    let freshness = Freshness {
        now_ms,
        max_age_ms: max_age.as_millis() as u64,
        min_height,
    };
    let p = match verify_account_proof(&genesis, &address, &proof, &freshness) {
        Ok(p) => p,
        Err(e) => return Err(refused(ctx, e.code(), &e.to_string())),
    };
    let age_s = now_ms.saturating_sub(p.timestamp_ms) as f64 / 1000.0;
    let lots: Vec<Value> = p
        .account
        .lots
        .iter()
        .map(|l| json!({"issuer": l.issuer.as_str(), "expiry_ms": l.expiry_ms, "amount": l.amount}))
        .collect();
    let v = json!({
        "proven": true,
        "address": address.to_string(),
        "balance": p.account.balance(),
        "nonce": p.account.nonce,
        "lots": lots,
        "height": p.height,
        "block_hash": p.block_hash.to_hex(),
        "timestamp_ms": p.timestamp_ms,
        "state_root": p.state_root.to_hex(),
        "validator_set_changes": p.epochs,
        "validators": p.validators,
        "failure": Value::Null,
    });
    ctx.print(&v, || {
        let mut s = format!(
            "address {address}\nbalance {} points, nonce {}\nat height {} (block {}, {}, {age_s:.1} s old)\ncertified by {} validators; {} validator-set change(s) followed from genesis\n",
            p.account.balance(),
            p.account.nonce,
            p.height,
            p.block_hash,
            output::utc_datetime(p.timestamp_ms),
            p.validators,
            p.epochs,
        );
        if !p.account.lots.is_empty() {
            let lots: Vec<api::Lot> = p
                .account
                .lots
                .iter()
                .map(|l| api::Lot {
                    issuer: l.issuer.to_string(),
                    expiry_ms: l.expiry_ms,
                    amount: l.amount,
                })
                .collect();
            s.push('\n');
            s.push_str(&lots_table(&lots));
        }
        s.push_str("proven\n");
        s
    });
    Ok(())
}
