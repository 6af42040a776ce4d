//! `http`: hostile request bodies and query strings against a real node
//! process over real HTTP. Every answer must be a success or a JSON error
//! `{"error": {"code", "message"}}` with a 4xx status (503 only for the
//! documented overload codes), and the node must keep answering: a
//! connection error or a timeout is a violation.

use std::time::Duration;

use alliance_protocol::fixtures::demo_customer_key;
use alliance_protocol::{Keypair, Transaction, TxBody};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

use super::{Outcome, Target, Violation};

/// One request may take this long before the node counts as hung.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An answer, or why there was none (boxed: `ureq::Error` is large).
type Sent = Result<ureq::Response, Box<ureq::Error>>;

/// GET endpoints that parse a path segment or a query string.
const GET_TEMPLATES: &[&str] = &[
    "/v1/accounts/{}/history?{}",
    "/v1/settlement?{}",
    "/v1/blocks/{}?{}",
    "/v1/blocks/{}/raw",
    "/v1/transactions/{}",
    "/v1/accounts/{}",
    "/v1/merchants/{}",
    "/v1/blocks/hash/{}",
];

/// Fuzzes one node's HTTP API.
pub struct HttpTarget {
    base: String,
    chain_id: String,
    merchant: Keypair,
    agent: ureq::Agent,
}

impl HttpTarget {
    /// A target for the node at `base` (e.g. `http://127.0.0.1:8080`) on
    /// `chain_id`; `merchant` signs the valid seeds.
    pub fn new(base: &str, chain_id: &str, merchant: Keypair) -> Self {
        HttpTarget {
            base: base.trim_end_matches('/').to_string(),
            chain_id: chain_id.to_string(),
            merchant,
            agent: ureq::AgentBuilder::new()
                .timeout(REQUEST_TIMEOUT)
                .max_idle_connections(4)
                .build(),
        }
    }

    fn percent_encode(bytes: &[u8]) -> String {
        bytes
            .iter()
            .map(|b| {
                if b.is_ascii_alphanumeric() || b"-_.=&:".contains(b) {
                    (*b as char).to_string()
                } else {
                    format!("%{b:02X}")
                }
            })
            .collect()
    }

    /// Checks one answer; returns its outcome class.
    fn check(what: &str, answer: Sent, success_field: Option<&str>) -> Result<Outcome, Violation> {
        let (status, response) = match answer.map_err(|e| *e) {
            Ok(r) => (r.status(), r),
            Err(ureq::Error::Status(code, r)) => (code, r),
            Err(ureq::Error::Transport(t)) => {
                return Err(format!("{what}: no answer from the node: {t}"))
            }
        };
        let text = response
            .into_string()
            .map_err(|e| format!("{what}: unreadable body: {e}"))?;
        if (200..300).contains(&status) {
            if let Some(field) = success_field {
                let v: Value = serde_json::from_str(&text)
                    .map_err(|_| format!("{what}: {status} with a non-JSON body: {text:.200}"))?;
                if v.get(field).is_none() {
                    return Err(format!("{what}: {status} without `{field}`: {text:.200}"));
                }
            }
            return Ok(format!("accept:{what}:{status}"));
        }
        // A request head over the server's limit (HEADER_BYTES_MAX) is
        // refused by the HTTP layer before any handler: a bare 431.
        if status == 431 {
            return Ok(format!("{what}:431"));
        }
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| format!("{what}: {status} with a non-JSON error body: {text:.200}"))?;
        let code = v["error"]["code"].as_str().unwrap_or_default();
        if code.is_empty() || !v["error"]["message"].is_string() {
            return Err(format!(
                "{what}: {status} without error.code and error.message: {text:.200}"
            ));
        }
        let overload = status == 503
            && [
                "not_synced",
                "mempool_full",
                "too_many_streams",
                "overloaded",
            ]
            .contains(&code);
        if !(400..500).contains(&status) && !overload {
            return Err(format!("{what}: status {status} ({code}): {text:.200}"));
        }
        Ok(format!("{what}:{status}:{code}"))
    }

    fn post(&self, input: &[u8]) -> Result<Outcome, Violation> {
        let content_type = match input.len() % 10 {
            0 => None,
            1 => Some("text/plain"),
            2 => Some("application/json; charset=utf-8"),
            _ => Some("application/json"),
        };
        // Without a JSON content type the node answers 415-as-400 before
        // reading the body and closes the connection; a client still
        // writing a large body then sees a broken pipe instead of the
        // answer. Keep those bodies small enough to be written at once.
        let body = match content_type {
            Some(ct) if ct.starts_with("application/json") => input,
            _ => &input[..input.len().min(4096)],
        };
        let send = |agent: &ureq::Agent| {
            let mut request = agent.post(&format!("{}/v1/transactions", self.base));
            if let Some(ct) = content_type {
                request = request.set("Content-Type", ct);
            }
            request.send_bytes(body).map_err(Box::new)
        };
        Self::check(
            "post",
            self.retry_fresh(send(&self.agent), send),
            Some("hash"),
        )
    }

    /// A pooled keep-alive connection may have been closed by the server
    /// (idle timeout, or after an error answer) just as it was reused: a
    /// transport error is retried once on a fresh connection, and only a
    /// second failure counts.
    fn retry_fresh(&self, first: Sent, again: impl Fn(&ureq::Agent) -> Sent) -> Sent {
        match first {
            Err(e) if matches!(*e, ureq::Error::Transport(_)) => {
                again(&ureq::AgentBuilder::new().timeout(REQUEST_TIMEOUT).build())
            }
            other => other,
        }
    }

    /// The input as the only element of a batch (`POST
    /// /v1/transactions/batch`, a JSON array of transactions).
    fn post_batch(&self, input: &[u8]) -> Result<Outcome, Violation> {
        let mut body = Vec::with_capacity(input.len() + 2);
        body.push(b'[');
        body.extend_from_slice(input);
        body.push(b']');
        let url = format!("{}/v1/transactions/batch", self.base);
        let send = |agent: &ureq::Agent| {
            agent
                .post(&url)
                .set("Content-Type", "application/json")
                .send_bytes(&body)
                .map_err(Box::new)
        };
        Self::check("batch", self.retry_fresh(send(&self.agent), send), None)
    }

    fn get(&self, input: &[u8]) -> Result<Outcome, Violation> {
        let template =
            GET_TEMPLATES[input.first().copied().unwrap_or(0) as usize % GET_TEMPLATES.len()];
        let half = input.len() / 2;
        let path = template
            .replacen("{}", &Self::percent_encode(&input[..half]), 1)
            .replacen("{}", &Self::percent_encode(&input[half..]), 1);
        let url = format!("{}{path}", self.base);
        let send = |agent: &ureq::Agent| agent.get(&url).call().map_err(Box::new);
        Self::check("get", self.retry_fresh(send(&self.agent), send), None)
    }
}

/// A JSON value to plant somewhere in a request.
fn hostile_value(rng: &mut ChaCha8Rng) -> Value {
    match rng.gen_range(0..14) {
        0 => Value::Null,
        1 => json!(true),
        2 => json!(-1),
        3 => json!(u64::MAX),
        4 => json!(1e308),
        5 => json!(0.5),
        6 => json!(""),
        7 => json!("a".repeat(rng.gen_range(1..20_000))),
        8 => json!("\u{0}\u{ffff}\u{1F600}"),
        9 => json!([]),
        10 => json!({}),
        11 => json!("pa1qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqq"),
        12 => {
            let mut v = json!(0);
            for _ in 0..rng.gen_range(1..200) {
                v = json!([v]);
            }
            v
        }
        _ => json!("00".repeat(rng.gen_range(0..80))),
    }
}

/// Mutates one node of a JSON tree: replace it, drop or add a key, rename
/// an enum variant.
fn mutate_json(v: &mut Value, rng: &mut ChaCha8Rng, depth: usize) {
    let descend = depth < 8 && rng.gen_bool(0.7);
    match v {
        Value::Object(map) if !map.is_empty() => {
            let keys: Vec<String> = map.keys().cloned().collect();
            let key = keys.choose(rng).expect("non-empty").clone();
            if descend {
                if let Some(child) = map.get_mut(&key) {
                    return mutate_json(child, rng, depth + 1);
                }
            }
            match rng.gen_range(0..4) {
                0 => {
                    map.remove(&key);
                }
                1 => {
                    map.insert(format!("{key}x"), hostile_value(rng));
                }
                2 => {
                    let variants = [
                        "Issue",
                        "Transfer",
                        "Redeem",
                        "SettlementConfirm",
                        "Propose",
                        "Vote",
                        "AddMerchant",
                    ];
                    if let Some(child) = map.remove(&key) {
                        map.insert(variants.choose(rng).expect("non-empty").to_string(), child);
                    }
                }
                _ => {
                    map.insert(key, hostile_value(rng));
                }
            }
        }
        Value::Array(items) if !items.is_empty() && descend => {
            let i = rng.gen_range(0..items.len());
            mutate_json(&mut items[i], rng, depth + 1);
        }
        _ => *v = hostile_value(rng),
    }
}

impl Target for HttpTarget {
    fn name(&self) -> &'static str {
        "http"
    }

    fn seeds(&self) -> Vec<Vec<u8>> {
        let alice = demo_customer_key(&self.chain_id, "fuzz-alice");
        let mut txs: Vec<Transaction> = (0..4)
            .map(|i| {
                Transaction::sign(
                    &self.chain_id,
                    &self.merchant,
                    i,
                    TxBody::Issue {
                        to: alice.public(),
                        amount: 10,
                        reason: "fuzz".into(),
                        receipt_ref: format!("fuzz-{i}"),
                        receipt_time_ms: crate::now_ms(),
                    },
                )
            })
            .collect();
        txs.extend(
            super::targets::sample_transactions()
                .into_iter()
                .map(|mut t| {
                    t.chain_id = self.chain_id.clone();
                    t
                }),
        );
        let mut seeds: Vec<Vec<u8>> = txs
            .iter()
            .map(|t| serde_json::to_vec(t).expect("JSON"))
            .collect();
        for edge in [
            "",
            "{}",
            "[]",
            "null",
            "\"tx\"",
            "{\"chain_id\":",
            "{\"a\":1,\"a\":2}",
        ] {
            seeds.push(edge.as_bytes().to_vec());
        }
        seeds
    }

    fn run(&mut self, input: &[u8]) -> Result<Outcome, Violation> {
        let mut outcome = self.post(input)?;
        // One input in four also goes to a GET endpoint as path and query,
        // one in four into a batch.
        let pick = alliance_protocol::encoding::hash_with_domain("fuzz-http", input).0;
        if pick[0].is_multiple_of(4) {
            outcome.push('|');
            outcome.push_str(&self.get(input)?);
        }
        if pick[1].is_multiple_of(4) {
            outcome.push('|');
            outcome.push_str(&self.post_batch(input)?);
        }
        Ok(outcome)
    }

    fn mutate(&self, input: &[u8], rng: &mut ChaCha8Rng) -> Option<Vec<u8>> {
        let mut v: Value = serde_json::from_slice(input).ok()?;
        for _ in 0..rng.gen_range(1..=3) {
            mutate_json(&mut v, rng, 0);
        }
        serde_json::to_vec(&v).ok()
    }
}
