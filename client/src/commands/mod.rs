//! Command implementations and what they share: the node client, key
//! loading, and signing + submitting + waiting for a transaction.

pub mod audit;
pub mod gov;
pub mod merchant;
pub mod proof;
pub mod settlement;
pub mod wallet;

use std::path::Path;
use std::time::{Duration, Instant};

use alliance_protocol::{Keypair, PublicKey, Transaction, TxBody};
use serde_json::{json, Value};

use crate::api;
use crate::cli::WaitArgs;
use crate::http::{Client, HttpError};
use crate::keystore::{self, KeystoreError};
use crate::output;

/// A failure with a stable code (shown in `--json` mode) and a message that
/// says what to fix.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct Failure {
    /// Stable snake_case code (the node's code where there is one).
    pub code: String,
    /// Human message.
    pub message: String,
}

impl Failure {
    /// Builds a failure.
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<HttpError> for Failure {
    fn from(e: HttpError) -> Failure {
        let code = match &e {
            HttpError::Unreachable { .. } => "unreachable".to_string(),
            HttpError::Api { code, .. } => code.clone(),
            HttpError::Unexpected { .. } => "unexpected_answer".to_string(),
        };
        Failure::new(code, e.to_string())
    }
}

impl From<KeystoreError> for Failure {
    fn from(e: KeystoreError) -> Failure {
        let code = match &e {
            KeystoreError::Io { .. } => "key_file_io",
            KeystoreError::Exists(_) => "key_file_exists",
            KeystoreError::WrongPassphrase(_) => "wrong_passphrase",
            KeystoreError::Invalid { .. } => "invalid_key_file",
            KeystoreError::LoosePermissions { .. } => "loose_permissions",
            KeystoreError::Passphrase(_) => "passphrase",
        };
        Failure::new(code, e.to_string())
    }
}

/// Result of a command.
pub type CmdResult = Result<(), Failure>;

/// What every command gets: the node and the output mode.
pub struct Ctx {
    /// The node.
    pub client: Client,
    /// `--json`.
    pub json: bool,
}

impl Ctx {
    /// Prints `human` or, in `--json` mode, `value`.
    pub fn print(&self, value: &Value, human: impl FnOnce() -> String) {
        if self.json {
            println!("{}", output::json(value));
        } else {
            print!("{}", human());
        }
    }

    /// GET and decode.
    pub fn get<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<(T, Value), Failure> {
        Ok(self.client.get_as(path)?)
    }

    /// Node status.
    pub fn status(&self) -> Result<(api::Status, Value), Failure> {
        self.get("/v1/status")
    }

    /// The chain id, from the node's status.
    pub fn chain_id(&self) -> Result<String, Failure> {
        Ok(self.status()?.0.chain_id)
    }

    /// An account.
    pub fn account(&self, who: &PublicKey) -> Result<(api::Account, Value), Failure> {
        self.get(&format!("/v1/accounts/{who}"))
    }

    /// All merchants.
    pub fn merchants(&self) -> Result<Vec<api::Merchant>, Failure> {
        Ok(self.get::<api::Merchants>("/v1/merchants")?.0.merchants)
    }

    /// One merchant by id: `GET /v1/merchants/{id}`, or the list on nodes
    /// without that endpoint.
    pub fn merchant(&self, id: &str) -> Result<(api::Merchant, Value), Failure> {
        let path = format!("/v1/merchants/{id}");
        match self.client.get(&path) {
            Ok(v) => {
                let inner = v
                    .get("merchant")
                    .filter(|m| m.is_object())
                    .cloned()
                    .unwrap_or(v);
                let m = self.client.decode(&path, &inner)?;
                Ok((m, inner))
            }
            Err(e) if e.code() == Some("not_found") => {
                let (list, raw) = self.get::<api::Merchants>("/v1/merchants")?;
                match list.merchants.iter().position(|m| m.id == id) {
                    Some(i) => Ok((list.merchants[i].clone(), raw["merchants"][i].clone())),
                    None => Err(unknown_merchant(id)),
                }
            }
            Err(e) if e.code() == Some("unknown_merchant") => Err(unknown_merchant(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// The merchant whose key is `key`, if any.
    pub fn merchant_by_key(&self, key: &PublicKey) -> Result<Option<api::Merchant>, Failure> {
        let k = key.to_string();
        Ok(self.merchants()?.into_iter().find(|m| m.key == k))
    }
}

/// The "unknown merchant" failure.
pub fn unknown_merchant(id: &str) -> Failure {
    Failure::new(
        "unknown_merchant",
        format!("unknown merchant `{id}`: see `alliance merchant list`"),
    )
}

/// Loads a signing key (keystore: passphrase from the environment or a
/// prompt; node key file: as is).
pub fn load_key(path: &Path) -> Result<Keypair, Failure> {
    Ok(keystore::load_signing_key(path, || {
        keystore::passphrase_for(path)
    })?)
}

/// Points spendable now: lots not yet expired.
pub fn spendable(acc: &api::Account) -> u64 {
    spendable_of(acc, |_| true)
}

/// Unexpired points of the issuers `issuer` takes.
pub fn spendable_of(acc: &api::Account, issuer: impl Fn(&str) -> bool) -> u64 {
    let now = output::now_ms();
    acc.lots
        .iter()
        .filter(|l| l.expiry_ms.is_none_or(|e| e > now) && issuer(&l.issuer))
        .map(|l| l.amount)
        .sum()
}

/// Refuses an amount above the spendable balance before signing.
pub fn check_balance(acc: &api::Account, amount: u64) -> CmdResult {
    let available = spendable(acc);
    if amount > available {
        return Err(Failure::new(
            "insufficient_balance",
            format!("insufficient balance: {available} points available, {amount} requested"),
        ));
    }
    Ok(())
}

/// Checks a text field's length in bytes.
pub fn check_len(field: &str, value: &str, min: usize, max: usize) -> CmdResult {
    let n = value.len();
    if n < min || n > max {
        return Err(Failure::new(
            "bad_field_length",
            format!("{field} must be {min} to {max} bytes, got {n}"),
        ));
    }
    Ok(())
}

/// Requires `key` to be an active merchant; returns it.
pub fn require_merchant(ctx: &Ctx, key: &Keypair, file: &Path) -> Result<api::Merchant, Failure> {
    let m = ctx.merchant_by_key(&key.public())?.ok_or_else(|| {
        Failure::new(
            "not_a_merchant",
            format!(
                "key {} ({}) is not a merchant of this alliance: use the merchant's key file (e.g. its node_key.json)",
                file.display(),
                key.public()
            ),
        )
    })?;
    if m.status != "active" {
        return Err(Failure::new(
            "merchant_suspended",
            format!("merchant `{}` is {}: it cannot sign this", m.id, m.status),
        ));
    }
    Ok(m)
}

/// Signs `body` with `key` (chain id from the node's status, nonce from the
/// account), submits it and, unless `--no-wait`, waits until it is committed
/// and reports the outcome. `what` names the action for people.
pub fn submit(ctx: &Ctx, key: &Keypair, body: TxBody, wait: &WaitArgs, what: &str) -> CmdResult {
    let (status, _) = ctx.status()?;
    let (acc, _) = ctx.account(&key.public())?;
    let mut nonce = acc.nonce;
    let mut conflicts = 0;
    let hash = loop {
        let tx = Transaction::sign(&status.chain_id, key, nonce, body.clone());
        let value = serde_json::to_value(&tx)
            .map_err(|e| Failure::new("encoding", format!("cannot encode the transaction: {e}")))?;
        match ctx.client.post("/v1/transactions", &value) {
            Ok(v) => {
                let local = tx.hash().to_hex();
                let hash = v.get("hash").and_then(Value::as_str).unwrap_or(&local);
                break hash.to_string();
            }
            // Another of our transactions with this nonce is pending (e.g.
            // sent with --no-wait): take the next nonce.
            Err(e) if e.code() == Some("nonce_conflict") && conflicts < 16 => {
                conflicts += 1;
                nonce += 1;
            }
            Err(HttpError::Api { code, message, .. }) => {
                return Err(Failure::new(
                    code.clone(),
                    format!("the node refused the transaction: {message} ({code})"),
                ));
            }
            Err(e) => return Err(e.into()),
        }
    };
    if wait.no_wait {
        ctx.print(&json!({"hash": hash, "status": "pending"}), || {
            format!("{what}: submitted, not waiting (check with `alliance tx {hash}`)\n{hash}\n")
        });
        return Ok(());
    }
    let (st, raw) = wait_committed(ctx, &hash, Duration::from_secs(wait.timeout))?;
    let height = st.height.unwrap_or(0);
    let result = st.result.clone().unwrap_or(api::TxResult {
        applied: true,
        code: None,
        reason: None,
    });
    if result.applied {
        ctx.print(&raw, || {
            format!("{what}: committed at height {height}\ntx {hash}\n")
        });
        Ok(())
    } else {
        if ctx.json {
            println!("{}", output::json(&raw));
        }
        let code = result.code.unwrap_or_else(|| "rejected".into());
        let reason = result.reason.unwrap_or_else(|| "no reason given".into());
        Err(Failure::new(
            code.clone(),
            format!("transaction {hash} was rejected at height {height}: {reason} ({code})"),
        ))
    }
}

/// Polls `GET /v1/transactions/{hash}` until it is committed, the node
/// forgets it (dropped from the mempool) or `timeout` passes.
pub fn wait_committed(
    ctx: &Ctx,
    hash: &str,
    timeout: Duration,
) -> Result<(api::TxStatus, Value), Failure> {
    let deadline = Instant::now() + timeout;
    let path = format!("/v1/transactions/{hash}");
    let mut unknown = 0;
    loop {
        match ctx.client.get(&path) {
            Ok(v) => {
                unknown = 0;
                let st: api::TxStatus = ctx.client.decode(&path, &v)?;
                if st.status == "committed" {
                    return Ok((st, v));
                }
            }
            Err(e) if e.code() == Some("unknown_transaction") => {
                unknown += 1;
                if unknown >= 3 {
                    return Err(Failure::new(
                        "dropped",
                        format!(
                            "transaction {hash} was dropped by the node without being committed: \
                             it can no longer apply (e.g. a duplicate receipt, or the points were spent meanwhile). \
                             Nothing changed; check `alliance balance` and retry"
                        ),
                    ));
                }
            }
            // The node may be restarting: keep trying until the deadline.
            Err(HttpError::Unreachable { .. }) => {}
            Err(e) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            return Err(Failure::new(
                "timeout",
                format!(
                    "transaction {hash} not committed after {}s; it may still be: check with `alliance tx {hash}` (or pass --timeout)",
                    timeout.as_secs()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// `pa1abcdefg…uvwxyz`: an address shortened for tables.
pub fn short(addr: &str) -> String {
    if addr.chars().count() <= 20 {
        return addr.to_string();
    }
    let head: String = addr.chars().take(10).collect();
    let tail: String = addr
        .chars()
        .rev()
        .take(6)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    format!("{head}…{tail}")
}
