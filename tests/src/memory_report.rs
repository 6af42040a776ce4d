//! The verdict of `alliance-bench memory` (issue #14, first criterion): an
//! alliance under steady load for many minutes, one curve step a minute;
//! after the warm-up every node's resident memory must stay within its
//! budget and grow by less than a set fraction until the end.

use serde_json::Value;

/// What the run must show.
#[derive(Debug, Clone, Copy)]
pub struct Criterion {
    /// Minutes (steps) before the baseline is taken.
    pub warmup_steps: usize,
    /// Each node's memory budget, MiB.
    pub budget_mib: f64,
    /// Largest allowed growth after the warm-up, as a fraction (0.05: 5 %).
    pub growth_max: f64,
}

/// One node's figures after the warm-up.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeVerdict {
    /// RSS at the end of the warm-up, MiB.
    pub baseline_mib: f64,
    /// RSS at the end of the run, MiB.
    pub last_mib: f64,
    /// Highest RSS seen after the warm-up (end of a step, or the peak), MiB.
    pub max_mib: f64,
    /// (last − baseline) / baseline.
    pub growth: f64,
    /// Whether the node met the criterion.
    pub ok: bool,
}

/// Judges the steps (`StepResult`s as JSON, one a minute) against
/// `criterion`; `None` when the run has no step after the warm-up.
pub fn judge(steps: &[Value], criterion: Criterion) -> Option<Vec<NodeVerdict>> {
    if steps.len() <= criterion.warmup_steps || criterion.warmup_steps == 0 {
        return None;
    }
    let col = |step: &Value, key: &str| -> Vec<f64> {
        step[key]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_f64().unwrap_or(0.0)).collect())
            .unwrap_or_default()
    };
    let baseline = col(&steps[criterion.warmup_steps - 1], "rss_mib");
    let last = col(&steps[steps.len() - 1], "rss_mib");
    let after = &steps[criterion.warmup_steps..];
    Some(
        (0..baseline.len())
            .map(|i| {
                let max_mib = after
                    .iter()
                    .flat_map(|s| [col(s, "rss_mib")[i], col(s, "peak_rss_mib")[i]])
                    .fold(0.0, f64::max);
                let growth = (last[i] - baseline[i]) / baseline[i];
                NodeVerdict {
                    baseline_mib: baseline[i],
                    last_mib: last[i],
                    max_mib,
                    growth,
                    ok: max_mib <= criterion.budget_mib && growth < criterion.growth_max,
                }
            })
            .collect(),
    )
}

/// The per-minute table (Markdown): committed rate, p99 and each node's RSS.
pub fn table(steps: &[Value]) -> String {
    let nodes = steps
        .first()
        .and_then(|s| s["rss_mib"].as_array())
        .map_or(0, Vec::len);
    let mut out = String::from("| minute | committed tx/s | p99 ms |");
    for i in 0..nodes {
        out.push_str(&format!(" node {i} RSS MiB |"));
    }
    out.push_str(" disk B/tx |\n|---|---|---|");
    out.push_str(&"---|".repeat(nodes + 1));
    out.push('\n');
    for (m, s) in steps.iter().enumerate() {
        out.push_str(&format!(
            "| {} | {:.0} | {:.0} |",
            m + 1,
            s["committed_tps"].as_f64().unwrap_or(0.0),
            s["latency_ms"]["p99"].as_f64().unwrap_or(0.0)
        ));
        for v in s["rss_mib"].as_array().into_iter().flatten() {
            out.push_str(&format!(" {:.0} |", v.as_f64().unwrap_or(0.0)));
        }
        out.push_str(&format!(
            " {:.0} |\n",
            s["disk_bytes_per_tx"].as_f64().unwrap_or(0.0)
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn step(rss: [f64; 2]) -> Value {
        json!({ "rss_mib": rss, "peak_rss_mib": rss, "committed_tps": 2000.0 })
    }

    /// Two warm-up minutes at 300 MiB, then `after`.
    fn run(after: &[[f64; 2]]) -> Vec<Value> {
        [[300.0, 300.0], [300.0, 300.0]]
            .iter()
            .chain(after)
            .map(|r| step(*r))
            .collect()
    }

    const CRITERION: Criterion = Criterion {
        warmup_steps: 2,
        budget_mib: 1024.0,
        growth_max: 0.05,
    };

    #[test]
    fn flat_passes_and_growth_or_the_budget_fails() {
        let flat = run(&[[305.0, 310.0], [306.0, 312.0]]);
        let v = judge(&flat, CRITERION).unwrap();
        assert!(v.iter().all(|n| n.ok), "{v:?}");

        // Node 1 grows by 10 % after the warm-up.
        let growing = run(&[[300.0, 315.0], [300.0, 330.0]]);
        let v = judge(&growing, CRITERION).unwrap();
        assert_eq!((v[0].ok, v[1].ok), (true, false));
        assert!((v[1].growth - 0.10).abs() < 1e-9);

        // Flat but over the budget.
        let big = vec![step([1100.0, 300.0]); 4];
        assert!(table(&big).contains("| 4 | 2000 | 0 | 1100 | 300 | 0 |"));
        let v = judge(&big, CRITERION).unwrap();
        assert_eq!((v[0].ok, v[1].ok), (false, true));

        // Nothing after the warm-up: no verdict.
        assert!(judge(&flat[..2], CRITERION).is_none());
    }
}
