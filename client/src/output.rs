//! Human output: aligned tables, UTC dates, money.

use serde_json::Value;

/// Prints `rows` under `header`, columns left-aligned and padded; numeric
/// columns (as told by `right`) right-aligned.
pub fn table(header: &[&str], right: &[bool], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
    }
    let fmt_row = |cells: Vec<&str>| -> String {
        let mut line = String::new();
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let pad = w.saturating_sub(cell.chars().count());
            if i > 0 {
                line.push_str("  ");
            }
            if right.get(i).copied().unwrap_or(false) {
                line.push_str(&" ".repeat(pad));
                line.push_str(cell);
            } else {
                line.push_str(cell);
                if i + 1 < cells.len() {
                    line.push_str(&" ".repeat(pad));
                }
            }
        }
        line.trim_end().to_string()
    };
    let mut out = fmt_row(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&fmt_row(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// (year, month, day), proleptic Gregorian, to days since 1970-01-01, or
/// `None` if there is no such date (e.g. February 30th).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> Option<i64> {
    if !(1..=12).contains(&m) || d == 0 {
        return None;
    }
    let yy = if m <= 2 { y - 1 } else { y };
    let era = yy.div_euclid(400);
    let yoe = yy - era * 400;
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    (civil_from_days(days) == (y, m, d)).then_some(days)
}

/// `YYYY-MM-DD` (UTC) of a time in ms since the epoch.
pub fn utc_date(ms: u64) -> String {
    let (y, m, d) = civil_from_days((ms / 86_400_000) as i64);
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM:SS UTC` of a time in ms since the epoch.
pub fn utc_datetime(ms: u64) -> String {
    let secs = ms / 1000;
    let tod = secs % 86_400;
    format!(
        "{} {:02}:{:02}:{:02} UTC",
        utc_date(ms),
        tod / 3600,
        (tod / 60) % 60,
        tod % 60
    )
}

/// An expiry cell: a UTC date or `never`.
pub fn expiry(ms: Option<u64>) -> String {
    ms.map(utc_date).unwrap_or_else(|| "never".into())
}

/// A value in hundredths of a minor unit, shown in major units (e.g.
/// 10000 → `1.00`; exact: up to four decimals when needed).
pub fn money_centiminor(c: i128) -> String {
    let sign = if c < 0 { "-" } else { "" };
    let c = c.unsigned_abs();
    let major = c / 10_000;
    let frac = c % 10_000;
    if frac.is_multiple_of(100) {
        format!("{sign}{major}.{:02}", frac / 100)
    } else {
        format!("{sign}{major}.{frac:04}")
    }
}

/// Minor units per 100 points, shown as major units per 100 points.
pub fn money_minor(m: u64) -> String {
    format!("{}.{:02}", m / 100, m % 100)
}

/// A rate in basis points as a percentage (9000 → `90%`, 9050 → `90.5%`).
pub fn percent_bps(bps: u16) -> String {
    let (whole, frac) = (bps / 100, bps % 100);
    match frac {
        0 => format!("{whole}%"),
        f if f % 10 == 0 => format!("{whole}.{}%", f / 10),
        f => format!("{whole}.{f:02}%"),
    }
}

/// A list of acceptance rates as people read them (`coffee 90%, cinema
/// 87.5%`), or `empty` when there are none (the list's default).
pub fn rates_text(rates: &[alliance_protocol::redemption::AcceptanceRate], empty: &str) -> String {
    if rates.is_empty() {
        return empty.to_string();
    }
    rates
        .iter()
        .map(|r| format!("{} {}", r.issuer, percent_bps(r.bps)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What an empty list of order rates means.
pub const EVERY_ISSUER: &str = "every issuer at 100%";
/// What an empty list of conversion rates means.
pub const NO_CONVERSIONS: &str = "none";

/// Pretty JSON for `--json`.
pub fn json(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap_or_else(|_| v.to_string())
}

/// Current time in ms since the epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_read_as_percentages() {
        use alliance_protocol::redemption::AcceptanceRate;
        assert_eq!(percent_bps(9_000), "90%");
        assert_eq!(percent_bps(8_750), "87.5%");
        assert_eq!(percent_bps(1), "0.01%");
        let rate = |issuer: &str, bps| AcceptanceRate {
            issuer: issuer.parse().unwrap(),
            bps,
        };
        assert_eq!(rates_text(&[], EVERY_ISSUER), "every issuer at 100%");
        assert_eq!(
            rates_text(
                &[rate("cinema", 8_750), rate("coffee", 9_000)],
                NO_CONVERSIONS
            ),
            "cinema 87.5%, coffee 90%"
        );
    }

    #[test]
    fn dates() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(951_782_400_000), "2000-02-29");
        assert_eq!(utc_datetime(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(expiry(None), "never");
        assert_eq!(days_from_civil(1970, 1, 1), Some(0));
        assert_eq!(
            days_from_civil(2000, 2, 29),
            Some(951_782_400_000 / 86_400_000)
        );
        assert_eq!(
            days_from_civil(2023, 11, 14),
            Some(1_700_000_000_000 / 86_400_000)
        );
        assert_eq!(days_from_civil(2023, 2, 29), None);
        assert_eq!(days_from_civil(2023, 4, 31), None);
        assert_eq!(days_from_civil(2023, 13, 1), None);
        assert_eq!(days_from_civil(2023, 1, 0), None);
    }

    #[test]
    fn money() {
        assert_eq!(money_centiminor(10_000), "1.00");
        assert_eq!(money_centiminor(12_345), "1.2345");
        assert_eq!(money_centiminor(0), "0.00");
        assert_eq!(money_centiminor(-3000), "-0.30");
        assert_eq!(money_minor(150), "1.50");
    }

    #[test]
    fn tables_align() {
        let t = table(
            &["A", "NUM"],
            &[false, true],
            &[
                vec!["xx".into(), "1".into()],
                vec!["y".into(), "100".into()],
            ],
        );
        assert_eq!(t, "A   NUM\nxx    1\ny   100\n");
    }
}
