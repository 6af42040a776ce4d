//! The served OpenAPI document against the handlers' behaviour, on a real
//! node over real HTTP. For every operation and every parameter, values
//! at and around the boundaries the document states (patterns, integer
//! ranges, `uint64` limits) are sent; an input the document calls valid
//! must not get 400, an invalid one must get 400 with an error code the
//! operation's 400 description lists. Every answer must have a status the
//! operation documents, and its body must match the documented schema
//! (error bodies included). Real transactions and blocks must match the
//! document's `Transaction`, `BlockHeader` and `Certificate` schemas.
//!
//! The schema check below implements the subset of JSON Schema the
//! document uses (type, properties, required, items, oneOf/allOf, $ref,
//! pattern, minimum, maximum, integer formats, enum); any other keyword
//! fails the test rather than being ignored.

use std::collections::BTreeSet;
use std::time::Duration;

use alliance_tests::Alliance;
use serde_json::{json, Value};

/// Checks `v` against `schema` (resolving `$ref` in `doc`); `Err` says where
/// and why it does not match.
fn check(doc: &Value, schema: &Value, v: &Value, at: &str) -> Result<(), String> {
    let obj = match schema.as_object() {
        Some(o) => o,
        None if schema == &json!(true) => return Ok(()),
        None => return Err(format!("{at}: schema is not an object: {schema}")),
    };
    const KNOWN: &[&str] = &[
        "$ref",
        "type",
        "properties",
        "required",
        "items",
        "oneOf",
        "allOf",
        "pattern",
        "minimum",
        "maximum",
        "format",
        "enum",
        "description",
        "example",
        "examples",
        "title",
        "additionalProperties",
        "propertyNames",
        "default",
        "maxItems",
        "minItems",
    ];
    for k in obj.keys() {
        if !KNOWN.contains(&k.as_str()) {
            return Err(format!(
                "{at}: schema keyword `{k}` is not checked by this test"
            ));
        }
    }
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let name = r.trim_start_matches("#/components/schemas/");
        let target = &doc["components"]["schemas"][name];
        if target.is_null() {
            return Err(format!("{at}: unknown $ref {r}"));
        }
        return check(doc, target, v, &format!("{at}→{name}"));
    }
    if let Some(all) = obj.get("allOf").and_then(Value::as_array) {
        for s in all {
            check(doc, s, v, at)?;
        }
    }
    if let Some(one) = obj.get("oneOf").and_then(Value::as_array) {
        let ok: Vec<_> = one
            .iter()
            .filter(|s| check(doc, s, v, at).is_ok())
            .collect();
        if ok.len() != 1 {
            let why: Vec<String> = one
                .iter()
                .filter_map(|s| check(doc, s, v, at).err())
                .collect();
            return Err(format!(
                "{at}: {} of {} oneOf branches match {v}: {why:?}",
                ok.len(),
                one.len()
            ));
        }
    }
    if let Some(t) = obj.get("type") {
        let types: Vec<&str> = match t {
            Value::String(s) => vec![s.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            _ => return Err(format!("{at}: bad type {t}")),
        };
        let fits = types.iter().any(|t| match *t {
            "null" => v.is_null(),
            "boolean" => v.is_boolean(),
            "string" => v.is_string(),
            "integer" => v.is_u64() || v.is_i64(),
            "number" => v.is_number(),
            "array" => v.is_array(),
            "object" => v.is_object(),
            _ => false,
        });
        if !fits {
            return Err(format!("{at}: {v} is not of type {t}"));
        }
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        if !e.contains(v) {
            return Err(format!("{at}: {v} not in enum {e:?}"));
        }
    }
    if let (Some(p), Some(s)) = (obj.get("pattern").and_then(Value::as_str), v.as_str()) {
        let re = regex::Regex::new(p).map_err(|e| format!("{at}: pattern {p}: {e}"))?;
        if !re.is_match(s) {
            return Err(format!("{at}: `{s}` does not match {p}"));
        }
    }
    if v.is_number() {
        let (as_u, as_i) = (v.as_u64(), v.as_i64());
        match obj.get("format").and_then(Value::as_str) {
            Some("uint64") if as_u.is_none() => return Err(format!("{at}: {v} is not a uint64")),
            Some("uint32") if as_u.is_none_or(|n| n > u32::MAX as u64) => {
                return Err(format!("{at}: {v} is not a uint32"))
            }
            Some("uint16") if as_u.is_none_or(|n| n > u16::MAX as u64) => {
                return Err(format!("{at}: {v} is not a uint16"))
            }
            Some("int64") if as_i.is_none() => return Err(format!("{at}: {v} is not an int64")),
            _ => {}
        }
        let n = v.as_f64().unwrap_or(f64::NAN);
        if let Some(min) = obj.get("minimum").and_then(Value::as_f64) {
            if n < min || (as_i.is_some_and(|i| i < 0) && min >= 0.0) {
                return Err(format!("{at}: {v} < minimum {min}"));
            }
        }
        if let Some(max) = obj.get("maximum").and_then(Value::as_f64) {
            if n > max {
                return Err(format!("{at}: {v} > maximum {max}"));
            }
        }
    }
    if let (Some(items), Some(a)) = (obj.get("items"), v.as_array()) {
        for (i, x) in a.iter().enumerate() {
            check(doc, items, x, &format!("{at}[{i}]"))?;
        }
    }
    if let Some(o) = v.as_object() {
        if let Some(req) = obj.get("required").and_then(Value::as_array) {
            for r in req.iter().filter_map(Value::as_str) {
                if !o.contains_key(r) {
                    return Err(format!("{at}: required `{r}` missing in {v}"));
                }
            }
        }
        if let Some(props) = obj.get("properties").and_then(Value::as_object) {
            for (k, s) in props {
                if let Some(x) = o.get(k) {
                    check(doc, s, x, &format!("{at}.{k}"))?;
                }
            }
            if obj.get("additionalProperties") == Some(&json!(false)) {
                if let Some(k) = o.keys().find(|k| !props.contains_key(*k)) {
                    return Err(format!("{at}: property `{k}` not allowed"));
                }
            }
        }
        if let Some(extra) = obj.get("additionalProperties").filter(|s| s.is_object()) {
            for (k, x) in o {
                check(doc, extra, x, &format!("{at}.{k}"))?;
            }
        }
    }
    Ok(())
}

/// A parameter's value as the handler sees it: text; as JSON for the
/// schema check (an integer when it is one, else a string).
fn as_json(text: &str, schema: &Value) -> Value {
    let integer = match &schema["type"] {
        Value::String(t) => t == "integer",
        Value::Array(a) => a.iter().any(|t| t == "integer"),
        _ => false,
    };
    if integer {
        let canonical = !text.is_empty()
            && text
                .bytes()
                .enumerate()
                .all(|(i, b)| b.is_ascii_digit() || (i == 0 && b == b'-'))
            && !(text.len() > 1 && (text.starts_with('0') || text.starts_with("-0")));
        if canonical {
            if let Ok(n) = text.parse::<u64>() {
                return json!(n);
            }
            if let Ok(n) = text.parse::<i64>() {
                return json!(n);
            }
            // Outside every integer type: a string, which fails `integer`.
        }
    }
    json!(text)
}

/// Boundary values for a parameter's schema, beside its example.
fn boundaries(schema: &Value, example: &str) -> Vec<String> {
    let mut out = vec![example.to_string()];
    let ty = schema["type"].to_string();
    if ty.contains("integer") {
        let min = schema["minimum"].as_u64().unwrap_or(0);
        out.extend([
            min.to_string(),
            format!("{}", min as i128 - 1),
            "18446744073709551615".into(),
            "18446744073709551616".into(),
            "9223372036854775808".into(),
            "+1".into(),
            "01".into(),
            "1.5".into(),
            "abc".into(),
        ]);
        if let Some(max) = schema["maximum"].as_u64() {
            out.extend([max.to_string(), (max + 1).to_string()]);
        }
    } else {
        out.extend([
            "0".into(),
            "x".into(),
            example.to_uppercase(),
            format!("{example}0"),
            example[..example.len() - 1].to_string(),
        ]);
    }
    out
}

/// The codes an error response's description lists (in backticks).
fn documented_codes(response: &Value) -> BTreeSet<String> {
    let d = response["description"].as_str().unwrap_or("");
    d.split('`')
        .skip(1)
        .step_by(2)
        .filter(|c| c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'))
        .map(String::from)
        .collect()
}

struct Answer {
    status: u16,
    body: Value,
}

fn get(url: &str) -> Answer {
    let r = match ureq::get(url).timeout(Duration::from_secs(10)).call() {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("GET {url}: {e}"),
    };
    let status = r.status();
    let json = r.content_type() == "application/json";
    let text = r.into_string().unwrap_or_default();
    let body = if json {
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("GET {url}: not JSON ({e}): {text}"))
    } else {
        Value::Null
    };
    Answer { status, body }
}

fn post(url: &str, body: &Value) -> Answer {
    let r = match ureq::post(url)
        .timeout(Duration::from_secs(10))
        .send_json(body.clone())
    {
        Ok(r) => r,
        Err(ureq::Error::Status(_, r)) => r,
        Err(e) => panic!("POST {url}: {e}"),
    };
    Answer {
        status: r.status(),
        body: r.into_json().unwrap_or(Value::Null),
    }
}

/// Records in `failures` where the node's answer to `what` disagrees with
/// the document: refused as malformed (400) though the document calls it
/// valid, or not refused though it calls it invalid; or an answer the
/// operation does not document (see [`conforms`]).
fn judge(
    doc: &Value,
    op: &Value,
    what: &str,
    valid_here: bool,
    answer: &Answer,
    failures: &mut Vec<String>,
) {
    if valid_here == (answer.status == 400) {
        failures.push(format!(
            "{what}: the document calls it {}, the node answered {} {}",
            if valid_here { "valid" } else { "invalid" },
            answer.status,
            answer.body
        ));
    }
    if let Err(e) = conforms(doc, op, what, answer) {
        failures.push(e);
    }
}

/// The answer must be one the operation documents, with a body matching
/// the documented schema; errors must carry a documented code.
fn conforms(doc: &Value, op: &Value, what: &str, a: &Answer) -> Result<(), String> {
    let response = &op["responses"][a.status.to_string()];
    if response.is_null() {
        return Err(format!(
            "{what}: status {} is not documented ({})",
            a.status, a.body
        ));
    }
    if let Some(schema) = response["content"]["application/json"].get("schema") {
        check(doc, schema, &a.body, what)?;
    }
    if a.status >= 400 {
        let code = a.body["error"]["code"].as_str().unwrap_or("");
        let codes = documented_codes(response);
        if !codes.contains(code) {
            return Err(format!(
                "{what}: {} code `{code}` is not among the documented {codes:?}",
                a.status
            ));
        }
    }
    Ok(())
}

#[test]
fn the_served_document_matches_the_handlers_at_the_boundaries() {
    let a = Alliance::start(1);
    let node = &a.nodes[0];
    let tx = a.issue_point(0, 0, "openapi");
    let hash = node.submit(&tx);
    let committed = a.wait_committed(&hash, Duration::from_secs(30));
    let height = committed["height"].as_u64().unwrap();
    let doc = get(&format!("{}/v1/openapi.json", node.api)).body;
    let mut failures = Vec::new();
    let mut cases = 0;

    // Real values: a committed transaction and its block match the
    // document's schemas of what the API reads and writes.
    let block = get(&format!("{}/v1/blocks/{height}", node.api));
    let tx_json = serde_json::to_value(&tx).unwrap();
    for (what, schema, v) in [
        (
            "Transaction",
            json!({"$ref": "#/components/schemas/Transaction"}),
            tx_json.clone(),
        ),
        (
            "BlockResponse",
            json!({"$ref": "#/components/schemas/BlockResponse"}),
            block.body.clone(),
        ),
    ] {
        if let Err(e) = check(&doc, &schema, &v, what) {
            failures.push(e);
        }
    }

    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        let Some(op) = item.get("get") else { continue };
        let params = op["parameters"].as_array().cloned().unwrap_or_default();
        if path == "/v1/events" {
            continue; // a stream: never ends
        }
        // A valid value for every parameter: the real ones where the
        // document's example names nothing on this chain.
        let valid = |p: &Value| -> String {
            let name = p["name"].as_str().unwrap();
            match (path.as_str(), name) {
                ("/v1/transactions/{hash}", "hash") => hash.clone(),
                ("/v1/blocks/hash/{hash}", "hash") => {
                    block.body["hash"].as_str().unwrap().to_string()
                }
                (_, "address") => tx_json["body"]["Issue"]["to"].as_str().unwrap().to_string(),
                _ => match &p["example"] {
                    Value::String(s) => s.clone(),
                    Value::Null => match &p["schema"]["minimum"] {
                        Value::Null => "1".to_string(),
                        m => m.to_string(),
                    },
                    other => other.to_string(),
                },
            }
        };
        let url = |values: &[(String, String, String)]| {
            let mut u = format!("{}{path}", node.api);
            let mut query = Vec::new();
            for (name, place, value) in values {
                if place == "path" {
                    u = u.replace(&format!("{{{name}}}"), value);
                } else {
                    query.push(format!("{name}={value}"));
                }
            }
            if !query.is_empty() {
                u = format!("{u}?{}", query.join("&"));
            }
            u
        };
        let base: Vec<(String, String, String)> = params
            .iter()
            .filter(|p| p["in"] == "path")
            .map(|p| {
                (
                    p["name"].as_str().unwrap().to_string(),
                    "path".to_string(),
                    valid(p),
                )
            })
            .collect();
        // Without optional parameters.
        let a0 = get(&url(&base));
        cases += 1;
        if a0.status == 400 {
            failures.push(format!("{path}: valid request refused: {}", a0.body));
        }
        if let Err(e) = conforms(&doc, op, path, &a0) {
            failures.push(e);
        }
        for p in &params {
            let name = p["name"].as_str().unwrap();
            let place = p["in"].as_str().unwrap();
            let schema = &p["schema"];
            if place == "path" && name != "height" && schema["pattern"].is_null() {
                failures.push(format!("{path}: path parameter `{name}` has no pattern"));
            }
            if op["responses"]["400"].is_null() {
                failures.push(format!("{path}: has parameters but no documented 400"));
            }
            for value in boundaries(schema, &valid(p)) {
                let mut values: Vec<_> =
                    base.iter().filter(|(n, _, _)| n != name).cloned().collect();
                values.push((name.to_string(), place.to_string(), value.clone()));
                // The one rule between two parameters (`from` ≤ `to`, documented
                // in the 400 description): keep the other bound out of the way.
                match (path.as_str(), name) {
                    ("/v1/settlement", "from") => {
                        values.push(("to".into(), "query".into(), u64::MAX.to_string()))
                    }
                    ("/v1/settlement", "to") => {
                        values.push(("from".into(), "query".into(), "0".into()))
                    }
                    _ => {}
                }
                let what = format!("GET {path} {name}={value:?}");
                let valid_here = check(&doc, schema, &as_json(&value, schema), &what).is_ok();
                let answer = get(&url(&values));
                cases += 1;
                judge(&doc, op, &what, valid_here, &answer, &mut failures);
            }
        }
        // A parameter the operation does not take.
        let mut values = base.clone();
        values.push(("bogus".into(), "query".into(), "1".into()));
        let answer = get(&url(&values));
        cases += 1;
        // The document: an endpoint that takes query parameters refuses
        // one it does not take.
        let takes_query = params.iter().any(|p| p["in"] == "query");
        if takes_query && answer.status != 400 {
            failures.push(format!("GET {path}?bogus=1: answered {}", answer.status));
        }
        if let Err(e) = conforms(&doc, op, &format!("GET {path}?bogus=1"), &answer) {
            failures.push(e);
        }
    }

    // The request bodies: what the document calls a transaction.
    let submit = &doc["paths"]["/v1/transactions"]["post"];
    let schema = &submit["requestBody"]["content"]["application/json"]["schema"];
    let mut upper = tx_json.clone();
    upper["signature"] = json!(tx_json["signature"].as_str().unwrap().to_uppercase());
    let mut no_body = tx_json.clone();
    no_body.as_object_mut().unwrap().remove("body");
    let next = a.issue_point(0, 1, "openapi-2");
    for (what, body) in [
        ("empty object", json!({})),
        ("uppercase signature", upper),
        ("no body", no_body),
        ("a valid transaction", serde_json::to_value(&next).unwrap()),
    ] {
        let valid_here = check(&doc, schema, &body, what).is_ok();
        let answer = post(&format!("{}/v1/transactions", node.api), &body);
        cases += 1;
        let what = format!("POST /v1/transactions {what}");
        judge(&doc, submit, &what, valid_here, &answer, &mut failures);
    }
    // A batch of a bad item and a replay: 200, each item refused alone.
    let batch = &doc["paths"]["/v1/transactions/batch"]["post"];
    let answer = post(
        &format!("{}/v1/transactions/batch", node.api),
        &json!([{}, serde_json::to_value(&tx).unwrap()]),
    );
    cases += 1;
    if let Err(e) = conforms(&doc, batch, "batch", &answer) {
        failures.push(e);
    }
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["results"][0]["status"], 400, "{}", answer.body);
    assert_eq!(answer.body["rejected"], 2, "{}", answer.body);

    assert!(
        failures.is_empty(),
        "{} of {cases} cases disagree with the document:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(cases > 100, "only {cases} cases");
}
