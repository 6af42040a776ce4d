//! `alliance settlement [--from H1] [--to H2] [--csv]`: who owes whom,
//! cumulative or for a period of heights (`GET /v1/settlement`).
//!
//! For each (redeemer, issuer) pair: points of the issuer redeemed at the
//! redeemer and their value (at the issuer's point value when redeemed),
//! points and value the redeemer confirmed as paid, and the net (redeemed
//! minus confirmed: what the issuer owes the redeemer, or over a period the
//! change of that debt). Then each merchant's net position: what it is owed
//! as a redeemer minus what it owes as an issuer; and the fewest payments
//! that settle every position by value (the protocol's multilateral
//! netting, [`alliance_protocol::netting`]).

use std::collections::BTreeMap;

use alliance_protocol::netting::{self, Payment};
use serde_json::{json, Value};

use super::{CmdResult, Ctx, Failure};
use crate::api;
use crate::output::{money_centiminor, table};

/// One merchant's net position over the report.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPosition {
    /// Points of other issuers redeemed here minus its points redeemed elsewhere.
    pub redeemed_points: i128,
    /// Their values, same difference, hundredths of a minor unit.
    pub redeemed_value_centiminor: i128,
    /// Confirmations received as redeemer minus confirmations paid as issuer.
    pub confirmed_points: i128,
    /// Their values, hundredths of a minor unit.
    pub confirmed_value_centiminor: i128,
    /// Owed to it minus owed by it, points.
    pub net_points: i128,
    /// Owed to it minus owed by it, hundredths of a minor unit.
    pub net_value_centiminor: i128,
}

/// Net positions by merchant (every merchant that appears in a claim).
pub fn net_positions(claims: &[api::Claim]) -> BTreeMap<String, NetPosition> {
    let mut out: BTreeMap<String, NetPosition> = BTreeMap::new();
    for c in claims {
        for (who, sign) in [(&c.creditor, 1i128), (&c.debtor, -1i128)] {
            let p = out.entry(who.clone()).or_default();
            p.redeemed_points += sign * c.redeemed_points as i128;
            p.redeemed_value_centiminor += sign * c.redeemed_value_centiminor as i128;
            p.confirmed_points += sign * c.confirmed_points as i128;
            p.confirmed_value_centiminor += sign * c.confirmed_value_centiminor as i128;
            p.net_points += sign * c.outstanding_points;
            p.net_value_centiminor += sign * c.outstanding_value_centiminor;
        }
    }
    out
}

/// The fewest payments that settle every merchant's net position by value
/// (hundredths of a minor unit), by the protocol's netting rule.
pub fn netting(claims: &[api::Claim]) -> Vec<Payment<String>> {
    let positions: BTreeMap<String, i128> = net_positions(claims)
        .into_iter()
        .map(|(m, p)| (m, p.net_value_centiminor))
        .collect();
    // Each claim adds the same value to its creditor and takes it from its
    // debtor, so these positions always sum to zero.
    netting::settle(&positions).unwrap_or_default()
}

/// Pairs with value outstanding: the payments settling pair by pair takes.
fn pairwise_payments(claims: &[api::Claim]) -> usize {
    claims
        .iter()
        .filter(|c| c.outstanding_value_centiminor != 0)
        .count()
}

/// Redeemer, issuer, redeemed points and value, confirmed points and
/// value, net points and value (values in currency units).
fn pair_cells(c: &api::Claim) -> Vec<String> {
    vec![
        c.creditor.clone(),
        c.debtor.clone(),
        c.redeemed_points.to_string(),
        money_centiminor(c.redeemed_value_centiminor as i128),
        c.confirmed_points.to_string(),
        money_centiminor(c.confirmed_value_centiminor as i128),
        c.outstanding_points.to_string(),
        money_centiminor(c.outstanding_value_centiminor),
    ]
}

/// One CSV field, quoted per RFC 4180 when it holds a comma, a quote, CR
/// or LF (quotes doubled).
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\r', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_line(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|f| csv_field(f))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The report as CSV (RFC 4180: CRLF line ends, a header row). One
/// `redemption` row per (redeemer, issuer), then one `net_position` row per
/// merchant (`counterparty` empty; each column is its value as redeemer
/// minus its value as issuer), then one `payment` row per netting payment
/// (`merchant` pays `counterparty` `net_value`). Values in currency units,
/// exact.
pub fn to_csv(claims: &[api::Claim]) -> String {
    let mut out = csv_line(
        &[
            "record",
            "merchant",
            "counterparty",
            "redeemed_points",
            "redeemed_value",
            "confirmed_points",
            "confirmed_value",
            "net_points",
            "net_value",
        ]
        .map(String::from),
    );
    for c in claims {
        let mut row = vec!["redemption".to_string()];
        row.extend(pair_cells(c));
        out.push_str(&csv_line(&row));
    }
    for (m, p) in net_positions(claims) {
        out.push_str(&csv_line(&[
            "net_position".into(),
            m,
            String::new(),
            p.redeemed_points.to_string(),
            money_centiminor(p.redeemed_value_centiminor),
            p.confirmed_points.to_string(),
            money_centiminor(p.confirmed_value_centiminor),
            p.net_points.to_string(),
            money_centiminor(p.net_value_centiminor),
        ]));
    }
    for pay in netting(claims) {
        out.push_str(&csv_line(&[
            "payment".into(),
            pay.from,
            pay.to,
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            money_centiminor(pay.amount as i128),
        ]));
    }
    out
}

fn human(s: &api::Settlement, period: Option<(u64, u64)>) -> String {
    let mut out = String::new();
    match period {
        Some((f, t)) => out.push_str(&format!(
            "settlement report for heights {f}..={t} (net: redeemed minus confirmed in the period)\n"
        )),
        None => out.push_str(&format!("claims at height {}\n", s.height)),
    }
    if s.claims.is_empty() {
        out.push_str("no claims between merchants\n");
        return out;
    }
    out.push_str("\nredemptions (the redeemer accepted the issuer's points):\n");
    let rows: Vec<Vec<String>> = s.claims.iter().map(pair_cells).collect();
    let (np, nv) = if period.is_some() {
        ("NET POINTS", "NET VALUE")
    } else {
        ("OUTSTANDING POINTS", "OUTSTANDING VALUE")
    };
    out.push_str(&table(
        &[
            "REDEEMER",
            "ISSUER",
            "REDEEMED",
            "VALUE",
            "CONFIRMED",
            "VALUE",
            np,
            nv,
        ],
        &[false, false, true, true, true, true, true, true],
        &rows,
    ));
    out.push_str("\nnet positions (owed to the merchant minus owed by it):\n");
    let rows: Vec<Vec<String>> = net_positions(&s.claims)
        .into_iter()
        .map(|(m, p)| {
            vec![
                m,
                p.net_points.to_string(),
                money_centiminor(p.net_value_centiminor),
            ]
        })
        .collect();
    out.push_str(&table(
        &["MERCHANT", "NET POINTS", "NET VALUE"],
        &[false, true, true],
        &rows,
    ));
    let payments = netting(&s.claims);
    out.push_str(&format!(
        "\npayments that settle every position: {} (pair by pair: {})\n",
        payments.len(),
        pairwise_payments(&s.claims)
    ));
    let rows: Vec<Vec<String>> = payments
        .into_iter()
        .map(|p| vec![p.from, p.to, money_centiminor(p.amount as i128)])
        .collect();
    out.push_str(&table(
        &["PAYS", "TO", "VALUE"],
        &[false, false, true],
        &rows,
    ));
    out.push_str("(values in currency units)\n");
    out
}

/// `alliance settlement`.
pub fn settlement(ctx: &Ctx, from: Option<u64>, to: Option<u64>, csv: bool) -> CmdResult {
    if let (Some(f), Some(t)) = (from, to) {
        if f > t {
            return Err(Failure::new(
                "usage",
                format!("--from {f} is after --to {t}"),
            ));
        }
    }
    let mut q = Vec::new();
    if let Some(f) = from {
        q.push(format!("from={f}"));
    }
    if let Some(t) = to {
        q.push(format!("to={t}"));
    }
    let path = if q.is_empty() {
        "/v1/settlement".to_string()
    } else {
        format!("/v1/settlement?{}", q.join("&"))
    };
    let (s, mut raw): (api::Settlement, Value) = ctx.get(&path)?;
    let period =
        (from.is_some() || to.is_some()).then(|| (from.unwrap_or(1), to.unwrap_or(s.height)));
    if csv {
        print!("{}", to_csv(&s.claims));
        return Ok(());
    }
    let nets: Vec<Value> = net_positions(&s.claims)
        .into_iter()
        .map(|(m, p)| {
            json!({
                "merchant": m,
                "redeemed_points": p.redeemed_points,
                "redeemed_value_centiminor": p.redeemed_value_centiminor,
                "confirmed_points": p.confirmed_points,
                "confirmed_value_centiminor": p.confirmed_value_centiminor,
                "net_points": p.net_points,
                "net_value_centiminor": p.net_value_centiminor,
            })
        })
        .collect();
    raw["net_positions"] = Value::Array(nets);
    let payments: Vec<Value> = netting(&s.claims)
        .into_iter()
        .map(|p| json!({"from": p.from, "to": p.to, "value_centiminor": p.amount}))
        .collect();
    raw["netting"] = Value::Array(payments);
    ctx.print(&raw, || human(&s, period));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(c: &str, d: &str, red: u64, conf: u64) -> api::Claim {
        api::Claim {
            creditor: c.into(),
            debtor: d.into(),
            redeemed_points: red,
            redeemed_value_centiminor: red * 100,
            confirmed_points: conf,
            confirmed_value_centiminor: conf * 100,
            outstanding_points: red as i128 - conf as i128,
            outstanding_value_centiminor: (red as i128 - conf as i128) * 100,
        }
    }

    #[test]
    fn csv_quotes_per_rfc_4180() {
        assert_eq!(csv_field("books"), "books");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }

    #[test]
    fn net_positions_balance_to_zero() {
        let claims = [
            claim("books", "coffee", 100, 40),
            claim("coffee", "books", 30, 0),
        ];
        let n = net_positions(&claims);
        assert_eq!(n["books"].net_points, 60 - 30);
        assert_eq!(n["coffee"].net_points, 30 - 60);
        assert_eq!(n["books"].net_value_centiminor, 3_000);
        assert_eq!(n.values().map(|p| p.net_value_centiminor).sum::<i128>(), 0);
        let csv = to_csv(&claims);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(
            lines[0],
            "record,merchant,counterparty,redeemed_points,redeemed_value,confirmed_points,confirmed_value,net_points,net_value"
        );
        assert_eq!(lines[1], "redemption,books,coffee,100,1.00,40,0.40,60,0.60");
        assert_eq!(lines[3], "net_position,books,,70,0.70,40,0.40,30,0.30");
        assert_eq!(
            lines[4],
            "net_position,coffee,,-70,-0.70,-40,-0.40,-30,-0.30"
        );
        assert_eq!(lines[5], "payment,coffee,books,,,,,,0.30");
        assert_eq!(lines[6], "");
    }

    #[test]
    fn a_cycle_of_claims_settles_with_fewer_payments() {
        // coffee owes books 1.00, books owes cinema 1.00, cinema owes
        // coffee 0.50: coffee pays cinema 0.50, and that is all.
        let claims = [
            claim("books", "coffee", 100, 0),
            claim("cinema", "books", 100, 0),
            claim("coffee", "cinema", 50, 0),
        ];
        assert_eq!(pairwise_payments(&claims), 3);
        assert_eq!(
            netting(&claims),
            vec![Payment {
                from: "coffee".to_string(),
                to: "cinema".to_string(),
                amount: 5_000,
            }]
        );
    }
}
