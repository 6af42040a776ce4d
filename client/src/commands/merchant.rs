//! Merchant commands: issue, confirm-settlement, list, show.

use std::path::Path;

use alliance_protocol::limits::RECEIPT_FUTURE_MS_MAX;
use alliance_protocol::{MerchantId, PublicKey, TxBody};
use serde_json::json;

use super::{check_len, load_key, require_merchant, submit, CmdResult, Ctx, Failure};
use crate::api;
use crate::cli::WaitArgs;
use crate::output::{self, table};

/// `alliance merchant issue`. `receipt` is the receipt reference and its
/// time in ms (`None`: now).
pub fn issue(
    ctx: &Ctx,
    key: &Path,
    to: PublicKey,
    amount: u64,
    reason: &str,
    (receipt, receipt_time): (&str, Option<u64>),
    wait: &WaitArgs,
) -> CmdResult {
    check_len("--reason", reason, 0, 64)?;
    check_len("--receipt", receipt, 1, 64)?;
    let now = output::now_ms();
    let receipt_time_ms = receipt_time.unwrap_or(now);
    let when = output::utc_datetime(receipt_time_ms);
    if receipt_time_ms > now.saturating_add(RECEIPT_FUTURE_MS_MAX) {
        return Err(Failure::new(
            "receipt_in_future",
            format!(
                "--receipt-time {when} is more than one day after now ({}): give the time printed on the receipt, and check the till's clock",
                output::utc_datetime(now)
            ),
        ));
    }
    let k = load_key(key)?;
    let m = require_merchant(ctx, &k, key)?;
    if amount > m.policy.daily_issue_cap {
        return Err(Failure::new(
            "daily_cap_exceeded",
            format!(
                "daily cap of {} points per customer exceeded: {amount} requested",
                m.policy.daily_issue_cap
            ),
        ));
    }
    let body = TxBody::Issue {
        to,
        amount,
        reason: reason.to_string(),
        receipt_ref: receipt.to_string(),
        receipt_time_ms,
    };
    submit(
        ctx,
        &k,
        body,
        wait,
        &format!("{} issued {amount} points to {to}", m.id),
    )
    .map_err(|f| match f.code.as_str() {
        "receipt_outside_window" => Failure::new(
            f.code.clone(),
            format!(
                "{}\nthe receipt time sent was {when}: give the time printed on the receipt with --receipt-time (default: now)",
                f.message
            ),
        ),
        _ => f,
    })
}

/// `alliance merchant confirm-settlement`.
pub fn confirm_settlement(
    ctx: &Ctx,
    key: &Path,
    debtor: &MerchantId,
    amount: u64,
    wait: &WaitArgs,
) -> CmdResult {
    let k = load_key(key)?;
    let me = require_merchant(ctx, &k, key)?;
    if me.id == debtor.as_str() {
        return Err(Failure::new(
            "self_settlement",
            "creditor and debtor are the same merchant",
        ));
    }
    let (s, _): (api::Settlement, _) = ctx.get("/v1/settlement")?;
    let outstanding = s
        .claims
        .iter()
        .find(|c| c.creditor == me.id && c.debtor == debtor.as_str())
        .map(|c| c.outstanding_points)
        .unwrap_or(0);
    if i128::from(amount) > outstanding {
        return Err(Failure::new(
            "settlement_exceeds_claim",
            format!(
                "claim of {} on `{debtor}` is {outstanding} points, {amount} confirmed",
                me.id
            ),
        ));
    }
    let body = TxBody::SettlementConfirm {
        debtor: debtor.clone(),
        amount,
    };
    submit(
        ctx,
        &k,
        body,
        wait,
        &format!("{} confirmed {amount} points paid by {debtor}", me.id),
    )
}

/// `alliance merchant list`.
pub fn list(ctx: &Ctx) -> CmdResult {
    let (ms, raw): (api::Merchants, _) = ctx.get("/v1/merchants")?;
    ctx.print(&raw, || {
        let rows: Vec<Vec<String>> = ms
            .merchants
            .iter()
            .map(|m| {
                vec![
                    m.id.clone(),
                    m.name.clone(),
                    m.status.clone(),
                    output::money_minor(m.policy.point_value_minor),
                    validity(m.policy.validity_days),
                    m.issued.to_string(),
                    m.redeemed.to_string(),
                    m.expired.to_string(),
                    m.outstanding.to_string(),
                    m.redeemed_here.to_string(),
                ]
            })
            .collect();
        table(
            &[
                "ID",
                "NAME",
                "STATUS",
                "VALUE/100",
                "VALIDITY",
                "ISSUED",
                "REDEEMED",
                "EXPIRED",
                "OUTSTANDING",
                "REDEEMED HERE",
            ],
            &[
                false, false, false, true, true, true, true, true, true, true,
            ],
            &rows,
        )
    });
    Ok(())
}

fn validity(days: u32) -> String {
    if days == 0 {
        "never".into()
    } else {
        format!("{days} d")
    }
}

/// `alliance merchant show ID`.
pub fn show(ctx: &Ctx, id: &MerchantId) -> CmdResult {
    let (m, raw) = ctx.merchant(id.as_str())?;
    ctx.print(&json!(raw), || {
        format!(
            "id                {}\nname              {}\nkey               {}\nstatus            {}\n\npolicy\n  point value     {} per 100 points\n  validity        {}\n  daily cap       {} points per customer\n  outstanding cap {} points\n  min redemption  {} points\n\ntotals\n  issued          {}\n  redeemed        {}\n  expired         {}\n  outstanding     {}\n  redeemed here   {}\n",
            m.id,
            m.name,
            m.key,
            m.status,
            output::money_minor(m.policy.point_value_minor),
            validity(m.policy.validity_days),
            m.policy.daily_issue_cap,
            m.policy.outstanding_cap,
            m.policy.min_redemption,
            m.issued,
            m.redeemed,
            m.expired,
            m.outstanding,
            m.redeemed_here
        )
    });
    Ok(())
}
