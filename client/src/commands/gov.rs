//! Governance commands: propose, vote, list.

use std::path::Path;

use alliance_protocol::{AllianceParams, GovAction, MerchantPolicy, TxBody};
use serde_json::Value;

use super::{load_key, require_merchant, short, submit, CmdResult, Ctx, Failure};
use crate::api;
use crate::cli::{ParamsArgs, PolicyArgs, ProposeAction, WaitArgs};
use crate::output::table;

fn invalid(why: impl Into<String>) -> Failure {
    Failure::new(
        "invalid_proposal",
        format!("invalid proposal: {}", why.into()),
    )
}

/// Fills unset policy flags from `base`, or fails naming the missing flag.
fn policy(args: &PolicyArgs, base: Option<MerchantPolicy>) -> Result<MerchantPolicy, Failure> {
    let need = |v: Option<u64>, b: Option<u64>, flag: &str| {
        v.or(b)
            .ok_or_else(|| invalid(format!("{flag} is required for add-merchant")))
    };
    let p = MerchantPolicy {
        point_value_minor: need(
            args.point_value,
            base.as_ref().map(|b| b.point_value_minor),
            "--point-value",
        )?,
        validity_days: args
            .validity_days
            .or(base.as_ref().map(|b| b.validity_days))
            .unwrap_or(365),
        daily_issue_cap: need(
            args.daily_cap,
            base.as_ref().map(|b| b.daily_issue_cap),
            "--daily-cap",
        )?,
        outstanding_cap: need(
            args.outstanding_cap,
            base.as_ref().map(|b| b.outstanding_cap),
            "--outstanding-cap",
        )?,
        min_redemption: args
            .min_redemption
            .or(base.as_ref().map(|b| b.min_redemption))
            .unwrap_or(1),
    };
    p.validate().map_err(invalid)?;
    Ok(p)
}

fn params(args: &ParamsArgs, base: Option<AllianceParams>) -> Result<AllianceParams, Failure> {
    let missing = |flag: &str| {
        invalid(format!(
            "{flag} is required: this node does not publish the current alliance parameters, so give all of --currency, --block-txs-max, --block-bytes-max, --proposal-blocks-max, --timestamp-drift-max-ms, --receipt-window-days, --acceptance-notice-blocks"
        ))
    };
    let p = AllianceParams {
        currency: args
            .currency
            .clone()
            .or(base.as_ref().map(|b| b.currency.clone()))
            .ok_or_else(|| missing("--currency"))?,
        block_txs_max: args
            .block_txs_max
            .or(base.as_ref().map(|b| b.block_txs_max))
            .ok_or_else(|| missing("--block-txs-max"))?,
        block_bytes_max: args
            .block_bytes_max
            .or(base.as_ref().map(|b| b.block_bytes_max))
            .ok_or_else(|| missing("--block-bytes-max"))?,
        proposal_blocks_max: args
            .proposal_blocks_max
            .or(base.as_ref().map(|b| b.proposal_blocks_max))
            .ok_or_else(|| missing("--proposal-blocks-max"))?,
        timestamp_drift_max_ms: args
            .timestamp_drift_max_ms
            .or(base.as_ref().map(|b| b.timestamp_drift_max_ms))
            .ok_or_else(|| missing("--timestamp-drift-max-ms"))?,
        receipt_window_days: args
            .receipt_window_days
            .or(base.as_ref().map(|b| b.receipt_window_days))
            .ok_or_else(|| missing("--receipt-window-days"))?,
        acceptance_notice_blocks: args
            .acceptance_notice_blocks
            .or(base.as_ref().map(|b| b.acceptance_notice_blocks))
            .ok_or_else(|| missing("--acceptance-notice-blocks"))?,
    };
    p.validate().map_err(invalid)?;
    Ok(p)
}

fn to_policy(p: &api::Policy) -> MerchantPolicy {
    MerchantPolicy {
        point_value_minor: p.point_value_minor,
        validity_days: p.validity_days,
        daily_issue_cap: p.daily_issue_cap,
        outstanding_cap: p.outstanding_cap,
        min_redemption: p.min_redemption,
    }
}

/// `alliance gov propose`.
pub fn propose(
    ctx: &Ctx,
    key: &Path,
    deadline_blocks: u64,
    wait: &WaitArgs,
    action: &ProposeAction,
) -> CmdResult {
    if deadline_blocks == 0 {
        return Err(invalid("--deadline-blocks must be at least 1"));
    }
    let (status, _) = ctx.status()?;
    let action = match action {
        ProposeAction::AddMerchant {
            id,
            name,
            merchant_key,
            policy: pa,
        } => {
            alliance_protocol::merchant::validate_name(name).map_err(invalid)?;
            if ctx.merchants()?.iter().any(|m| m.id == id.as_str()) {
                return Err(invalid(format!("merchant `{id}` already exists")));
            }
            GovAction::AddMerchant {
                id: id.clone(),
                name: name.clone(),
                key: *merchant_key,
                policy: policy(pa, None)?,
            }
        }
        ProposeAction::SuspendMerchant { id } => {
            ctx.merchant(id.as_str())?;
            GovAction::SuspendMerchant { id: id.clone() }
        }
        ProposeAction::UpdatePolicy { id, policy: pa } => {
            let (m, _) = ctx.merchant(id.as_str())?;
            GovAction::UpdatePolicy {
                id: id.clone(),
                policy: policy(pa, Some(to_policy(&m.policy)))?,
            }
        }
        ProposeAction::UpdateParams { params: pa } => {
            let base = status
                .params
                .as_ref()
                .and_then(|v| serde_json::from_value::<AllianceParams>(v.clone()).ok());
            GovAction::UpdateParams {
                params: params(pa, base)?,
            }
        }
    };
    let k = load_key(key)?;
    let me = require_merchant(ctx, &k, key)?;
    let deadline_height = status.height.saturating_add(deadline_blocks);
    let what = format!(
        "{} proposed {} (votes count until height {deadline_height})",
        me.id,
        action_summary(&serde_json::to_value(&action).unwrap_or_default())
    );
    let body = TxBody::Propose {
        action,
        deadline_height,
    };
    submit(ctx, &k, body, wait, &what)
}

/// `alliance gov vote`.
pub fn vote(ctx: &Ctx, key: &Path, proposal: u64, approve: bool, wait: &WaitArgs) -> CmdResult {
    let k = load_key(key)?;
    let me = require_merchant(ctx, &k, key)?;
    let body = TxBody::Vote { proposal, approve };
    let what = format!(
        "{} voted {} on proposal {proposal}",
        me.id,
        if approve { "yes" } else { "no" }
    );
    submit(ctx, &k, body, wait, &what)
}

/// A one-line summary of a `GovAction` as JSON (`{"AddMerchant": {...}}`).
pub fn action_summary(v: &Value) -> String {
    let Some((kind, inner)) = v.as_object().and_then(|o| o.iter().next()) else {
        return v.to_string();
    };
    let id = inner.get("id").and_then(Value::as_str).unwrap_or("");
    match kind.as_str() {
        "AddMerchant" => format!("add-merchant {id}"),
        "SuspendMerchant" => format!("suspend-merchant {id}"),
        "UpdatePolicy" => format!("update-policy {id}"),
        "UpdateParams" => "update-params".into(),
        other => other.to_string(),
    }
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Object(o) => match o.iter().next() {
            Some((k, inner))
                if inner.is_null()
                    || inner.is_object() && inner.as_object().is_some_and(|m| m.is_empty()) =>
            {
                k.clone()
            }
            Some((k, inner)) => format!("{k} {inner}"),
            None => String::new(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// `alliance gov list`.
pub fn list(ctx: &Ctx) -> CmdResult {
    let (ps, raw): (api::Proposals, _) = match ctx.get("/v1/proposals") {
        Err(f) if f.code == "not_found" => {
            return Err(Failure::new(
                "not_supported",
                format!(
                    "the node at {} does not serve proposals (GET /v1/proposals): upgrade it or use another --node",
                    ctx.client.base()
                ),
            ))
        }
        other => other?,
    };
    ctx.print(&raw, || {
        if ps.proposals.is_empty() {
            return "no proposals\n".into();
        }
        let rows: Vec<Vec<String>> = ps
            .proposals
            .iter()
            .map(|p| {
                let yes = p.votes.iter().filter(|(_, a)| *a).count();
                let no = p.votes.len() - yes;
                vec![
                    p.id.to_string(),
                    action_summary(&p.action),
                    short(&text(&p.proposer)),
                    p.created_height.to_string(),
                    p.deadline_height.to_string(),
                    yes.to_string(),
                    no.to_string(),
                    text(&p.status),
                ]
            })
            .collect();
        table(
            &[
                "ID", "ACTION", "PROPOSER", "CREATED", "DEADLINE", "YES", "NO", "STATUS",
            ],
            &[true, false, false, true, true, true, true, false],
            &rows,
        )
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_policy_defaults_to_current() {
        let base = alliance_protocol::fixtures::demo_policy();
        let args = PolicyArgs {
            point_value: None,
            validity_days: None,
            daily_cap: Some(10),
            outstanding_cap: None,
            min_redemption: None,
        };
        let p = policy(&args, Some(base.clone())).unwrap();
        assert_eq!(p.daily_issue_cap, 10);
        assert_eq!(p.point_value_minor, base.point_value_minor);
        assert_eq!(p.validity_days, base.validity_days);
    }

    #[test]
    fn add_merchant_needs_values() {
        let args = PolicyArgs {
            point_value: Some(100),
            validity_days: None,
            daily_cap: None,
            outstanding_cap: Some(1000),
            min_redemption: None,
        };
        let e = policy(&args, None).unwrap_err();
        assert!(e.message.contains("--daily-cap"), "{}", e.message);
        let args = PolicyArgs {
            point_value: Some(0),
            daily_cap: Some(1),
            ..args
        };
        assert!(policy(&args, None)
            .unwrap_err()
            .message
            .contains("point_value_minor"));
    }

    #[test]
    fn summaries() {
        let v = serde_json::json!({"SuspendMerchant": {"id": "gym"}});
        assert_eq!(action_summary(&v), "suspend-merchant gym");
        assert_eq!(text(&serde_json::json!("Open")), "Open");
    }
}
