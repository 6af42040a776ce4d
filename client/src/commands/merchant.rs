//! Merchant commands: issue, order (a till's payment request), accept
//! (the acceptance policy), confirm-settlement, list, show.

use std::path::Path;

use alliance_protocol::limits::RECEIPT_FUTURE_MS_MAX;
use alliance_protocol::redemption::{
    rate_for, AcceptanceRate, AcceptanceTerms, OrderRequest, SignedOrder,
};
use alliance_protocol::{AllianceParams, MerchantId, PublicKey, TxBody};
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

/// `alliance merchant order`: signs a payment request for the customer's
/// wallet. Nothing is sent: the customer submits it with `alliance pay`.
#[allow(clippy::too_many_arguments)]
pub fn order(
    ctx: &Ctx,
    key: &Path,
    customer: PublicKey,
    order_ref: &str,
    value_minor: u64,
    issuers: &[MerchantId],
    valid_for_s: u64,
) -> CmdResult {
    check_len("--order", order_ref, 1, 64)?;
    for (i, issuer) in issuers.iter().enumerate() {
        if issuers[..i].contains(issuer) {
            return Err(Failure::new(
                "duplicate_issuer",
                format!("--issuer {issuer} is given twice"),
            ));
        }
    }
    let k = load_key(key)?;
    let m = require_merchant(ctx, &k, key)?;
    if m.status != "active" {
        return Err(Failure::new(
            "merchant_suspended",
            format!(
                "merchant `{}` is {} and cannot take payments",
                m.id, m.status
            ),
        ));
    }
    let merchant_id =
        MerchantId::new(&m.id).map_err(|e| Failure::new("malformed", e.to_string()))?;
    let merchants = ctx.merchants()?;
    for issuer in issuers {
        let known = merchants.iter().find(|x| x.id == issuer.as_str());
        match known {
            None => return Err(super::unknown_merchant(issuer.as_str())),
            Some(x) if x.status != "active" => {
                return Err(Failure::new(
                    "merchant_suspended",
                    format!("issuer `{issuer}` is suspended: its points are not accepted"),
                ))
            }
            Some(_) if rate_for(&merchant_id, &m.acceptance.rates, issuer).is_none() => {
                return Err(Failure::new(
                    "unaccepted_issuer",
                    format!(
                        "you do not accept `{issuer}`'s points (your acceptance policy in force): change it with `alliance merchant accept`"
                    ),
                ))
            }
            Some(_) => {}
        }
    }
    let order = OrderRequest {
        merchant: merchant_id,
        merchant_key: k.public(),
        customer,
        order_ref: order_ref.to_string(),
        value_minor,
        issuers: issuers.to_vec(),
        valid_until_ms: output::now_ms().saturating_add(valid_for_s * 1_000),
    };
    let signed = SignedOrder {
        signature: order.sign(&ctx.chain_id()?, &k),
        order,
    };
    let text = signed.to_text();
    ctx.print(
        &json!({
            "request": text,
            "merchant": m.id,
            "customer": customer.to_string(),
            "order_ref": order_ref,
            "value_minor": value_minor,
            "issuers": issuers.iter().map(MerchantId::as_str).collect::<Vec<_>>(),
            "valid_until_ms": signed.order.valid_until_ms,
        }),
        || {
            format!(
                "{text}\n(order {order_ref} of {} at {} for {customer}, valid until {}: the customer pays it with `alliance pay --request ...`)\n",
                output::money_minor(value_minor),
                m.id,
                output::utc_datetime(signed.order.valid_until_ms)
            )
        },
    );
    Ok(())
}

/// Blocks added to the notice when `--from-height` is not given, so the
/// transaction can wait a little before inclusion and still give notice.
const NOTICE_MARGIN_BLOCKS: u64 = 10;

/// One `ISSUER=PERCENT` flag: the issuer and basis points.
type GivenRate = (MerchantId, u16);

/// One list of `--rate` or `--convert` flags as the ledger wants it:
/// sorted by issuer, none twice, never the merchant itself, all known.
fn rate_list(
    flag: &str,
    given: &[GivenRate],
    me: &str,
    merchants: &[api::Merchant],
) -> Result<Vec<AcceptanceRate>, Failure> {
    let mut rates: Vec<AcceptanceRate> = given
        .iter()
        .map(|(issuer, bps)| AcceptanceRate {
            issuer: issuer.clone(),
            bps: *bps,
        })
        .collect();
    rates.sort_by(|a, b| a.issuer.cmp(&b.issuer));
    for w in rates.windows(2) {
        if w[0].issuer == w[1].issuer {
            return Err(Failure::new(
                "duplicate_issuer",
                format!("{flag} {} is given twice", w[0].issuer),
            ));
        }
    }
    if rates.iter().any(|r| r.issuer.as_str() == me) {
        return Err(Failure::new(
            "invalid_acceptance",
            format!("your own points always count at 100%: drop {flag} {me}=..."),
        ));
    }
    if let Some(r) = rates
        .iter()
        .find(|r| !merchants.iter().any(|x| x.id == r.issuer.as_str()))
    {
        return Err(super::unknown_merchant(r.issuer.as_str()));
    }
    Ok(rates)
}

/// `alliance merchant accept`: `given` is the `--rate` and `--convert`
/// flags.
pub fn accept(
    ctx: &Ctx,
    key: &Path,
    given: (&[GivenRate], &[GivenRate]),
    from_height: Option<u64>,
    wait: &WaitArgs,
) -> CmdResult {
    let k = load_key(key)?;
    let m = require_merchant(ctx, &k, key)?;
    let merchants = ctx.merchants()?;
    let terms = AcceptanceTerms {
        rates: rate_list("--rate", given.0, &m.id, &merchants)?,
        conversions: rate_list("--convert", given.1, &m.id, &merchants)?,
    };
    let (status, _) = ctx.status()?;
    let notice = status
        .params
        .as_ref()
        .and_then(|v| serde_json::from_value::<AllianceParams>(v.clone()).ok())
        .map(|p| p.acceptance_notice_blocks);
    let earliest = notice.map(|n| status.height + 1 + n);
    let effective_height = match (from_height, earliest) {
        (Some(h), Some(e)) if h < e => {
            return Err(Failure::new(
                "acceptance_notice_too_short",
                format!(
                    "--from-height {h} is too soon: the alliance's notice is {} blocks, so the earliest is {e}",
                    e - status.height - 1
                ),
            ))
        }
        (Some(h), _) => h,
        (None, Some(e)) => e + NOTICE_MARGIN_BLOCKS,
        (None, None) => {
            return Err(Failure::new(
                "not_supported",
                "this node does not publish the alliance parameters: give --from-height",
            ))
        }
    };
    let summary = format!(
        "{}; converts {}",
        output::rates_text(&terms.rates, output::EVERY_ISSUER),
        output::rates_text(&terms.conversions, output::NO_CONVERSIONS)
    );
    let body = TxBody::SetAcceptance {
        terms,
        effective_height,
    };
    submit(
        ctx,
        &k,
        body,
        wait,
        &format!("{} accepts {summary} from height {effective_height}", m.id),
    )
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
        let next = match &m.acceptance.next {
            Some(n) => format!(
                "\n  announced       {}; converts {} from height {}",
                output::rates_text(&n.rates, output::EVERY_ISSUER),
                output::rates_text(&n.conversions, output::NO_CONVERSIONS),
                n.effective_height
            ),
            None => String::new(),
        };
        let acceptance = format!(
            "\naccepts (own points at 100%)\n  in force        {}\n  converts        {}{next}\n",
            output::rates_text(&m.acceptance.rates, output::EVERY_ISSUER),
            output::rates_text(&m.acceptance.conversions, output::NO_CONVERSIONS)
        );
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
        ) + &acceptance
    });
    Ok(())
}
