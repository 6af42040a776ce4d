//! Wallet commands: keygen, address, balance, send, redeem, history, tx,
//! status, settlement.

use std::collections::BTreeMap;
use std::path::Path;

use alliance_protocol::{Keypair, MerchantId, PublicKey, TxBody};
use serde_json::json;

use super::{
    check_balance, check_len, load_key, short, spendable_of, submit, unknown_merchant, CmdResult,
    Ctx, Failure,
};
use crate::api;
use crate::cli::{WaitArgs, WhoArgs};
use crate::keystore::{self, KdfParams};
use crate::output::{self, table};

/// `alliance keygen --out FILE`.
pub fn keygen(ctx: &Ctx, out: &Path) -> CmdResult {
    if out.exists() {
        return Err(keystore::KeystoreError::Exists(out.display().to_string()).into());
    }
    let pass = keystore::new_passphrase()?;
    let key = Keypair::generate();
    let params = KdfParams::from_env();
    keystore::create(out, &key, &pass, params)?;
    let addr = key.public().to_string();
    ctx.print(
        &json!({"address": addr, "file": out.display().to_string(), "kdf": {"name": "scrypt", "log_n": params.log_n, "r": params.r, "p": params.p}}),
        || {
            let mut s = format!("wrote {} (mode 0600)\naddress {addr}\n", out.display());
            if params != KdfParams::STRONG {
                s.push_str("warning: weak KDF parameters (ALLIANCE_KDF=fast): for tests only\n");
            }
            s
        },
    );
    Ok(())
}

/// `alliance address --key FILE`.
pub fn address(ctx: &Ctx, key: &Path) -> CmdResult {
    let addr = keystore::address_of(key)?.to_string();
    ctx.print(&json!({"address": addr}), || format!("{addr}\n"));
    Ok(())
}

/// The address named by `ADDRESS` or `--key FILE`.
pub fn who(w: &WhoArgs) -> Result<PublicKey, Failure> {
    match (&w.address, &w.key) {
        (Some(a), _) => Ok(*a),
        (None, Some(k)) => Ok(keystore::address_of(k)?),
        (None, None) => Err(Failure::new("usage", "give an ADDRESS or --key FILE")),
    }
}

/// `alliance balance`.
pub fn balance(ctx: &Ctx, w: &WhoArgs) -> CmdResult {
    let addr = who(w)?;
    let (acc, raw) = ctx.account(&addr)?;
    let now = output::now_ms();
    let soon: Vec<api::Lot> = match &acc.expiring_soon {
        Some(s) => s.clone(),
        // Older nodes: compute it from the lots.
        None => acc
            .lots
            .iter()
            .filter(|l| l.expiry_ms.is_some_and(|e| e <= now + 30 * 86_400_000))
            .cloned()
            .collect(),
    };
    let mut value = raw.clone();
    if acc.expiring_soon.is_none() {
        value["expiring_soon"] = json!(soon
            .iter()
            .map(|l| json!({"issuer": l.issuer, "expiry_ms": l.expiry_ms, "amount": l.amount}))
            .collect::<Vec<_>>());
    }
    ctx.print(&value, || {
        let mut s = format!(
            "address {}\nbalance {} points (height {})\n",
            acc.address, acc.balance, acc.height
        );
        if acc.lots.is_empty() {
            s.push_str("\nno points yet\n");
            return s;
        }
        s.push('\n');
        let rows: Vec<Vec<String>> = acc
            .by_issuer
            .iter()
            .map(|(i, a)| vec![i.clone(), a.to_string()])
            .collect();
        s.push_str(&table(&["ISSUER", "POINTS"], &[false, true], &rows));
        s.push_str("\nlots\n");
        s.push_str(&lots_table(&acc.lots));
        if soon.is_empty() {
            s.push_str("\nnothing expires within 30 days\n");
        } else {
            let total: u64 = soon.iter().map(|l| l.amount).sum();
            s.push_str(&format!("\nexpiring within 30 days: {total} points\n"));
            s.push_str(&lots_table(&soon));
        }
        s
    });
    Ok(())
}

/// `alliance send`.
pub fn send(
    ctx: &Ctx,
    key: &Path,
    to: PublicKey,
    amount: u64,
    memo: &str,
    wait: &WaitArgs,
) -> CmdResult {
    check_len("--memo", memo, 0, 128)?;
    let k = load_key(key)?;
    if to == k.public() {
        // The ledger would apply it and change nothing but the nonce.
        return Err(Failure::new(
            "self_transfer",
            format!(
                "--to {to} is the address of {} itself: sending points to yourself changes nothing (and would use up a nonce); give the recipient's address",
                key.display()
            ),
        ));
    }
    let (acc, _) = ctx.account(&k.public())?;
    check_balance(&acc, amount)?;
    let body = TxBody::Transfer {
        to,
        amount,
        memo: memo.to_string(),
    };
    submit(
        ctx,
        &k,
        body,
        wait,
        &format!("sent {amount} points to {to}"),
    )
}

/// Refuses a redemption that only points of suspended issuers would cover
/// (the ledger does not accept them: `suspended_issuer_points`).
fn check_accepted(acc: &api::Account, merchants: &[api::Merchant], amount: u64) -> CmdResult {
    let suspended: Vec<&str> = merchants
        .iter()
        .filter(|m| m.status != "active")
        .map(|m| m.id.as_str())
        .filter(|id| acc.lots.iter().any(|l| l.issuer == *id))
        .collect();
    let accepted = spendable_of(acc, |issuer| !suspended.contains(&issuer));
    if amount > accepted {
        return Err(Failure::new(
            "suspended_issuer_points",
            format!(
                "only {accepted} points are of issuers in good standing, {amount} requested: points of suspended issuers ({}) are not accepted for redemption; they can still be sent to another key",
                suspended.join(", ")
            ),
        ));
    }
    Ok(())
}

/// A merchant's own key redeeming at the merchant spends only the
/// merchant's own points (the ledger refuses the rest: `self_redemption`).
fn check_own_points(acc: &api::Account, at: &MerchantId, amount: u64) -> CmdResult {
    let own = spendable_of(acc, |issuer| issuer == at.as_str());
    if amount > own {
        return Err(Failure::new(
            "self_redemption",
            format!(
                "a merchant redeeming at itself spends only its own points: {own} of `{at}`'s points held, {amount} requested (other issuers' points cannot create a claim without a sale)"
            ),
        ));
    }
    Ok(())
}

/// `alliance redeem`.
pub fn redeem(
    ctx: &Ctx,
    key: &Path,
    at: &MerchantId,
    amount: u64,
    order: &str,
    wait: &WaitArgs,
) -> CmdResult {
    check_len("--order", order, 1, 64)?;
    let merchants = ctx.merchants()?;
    let m = merchants
        .iter()
        .find(|m| m.id == at.as_str())
        .ok_or_else(|| unknown_merchant(at.as_str()))?;
    if m.status != "active" {
        return Err(Failure::new(
            "merchant_suspended",
            format!(
                "merchant `{at}` is {} and does not accept redemptions",
                m.status
            ),
        ));
    }
    if amount < m.policy.min_redemption {
        return Err(Failure::new(
            "below_minimum_redemption",
            format!(
                "merchant's minimum redemption is {} points, {amount} requested",
                m.policy.min_redemption
            ),
        ));
    }
    let k = load_key(key)?;
    let (acc, _) = ctx.account(&k.public())?;
    check_balance(&acc, amount)?;
    check_accepted(&acc, &merchants, amount)?;
    if m.key == k.public().to_string() {
        check_own_points(&acc, at, amount)?;
    }
    let body = TxBody::Redeem {
        merchant: at.clone(),
        amount,
        order_ref: order.to_string(),
    };
    submit(
        ctx,
        &k,
        body,
        wait,
        &format!("redeemed {amount} points at {at}"),
    )
}

/// One history line's description, from the account's point of view.
fn describe(item: &api::HistoryItem, me: &str, names: &BTreeMap<String, String>) -> String {
    let name = |k: &str| names.get(k).cloned().unwrap_or_else(|| short(k));
    let body: Option<TxBody> = serde_json::from_value(item.body.clone()).ok();
    let signer_is_me = item.signer == me;
    match body {
        Some(TxBody::Issue {
            to,
            amount,
            receipt_ref,
            ..
        }) => {
            if to.to_string() == me {
                format!(
                    "+{amount} from {} (receipt {receipt_ref})",
                    name(&item.signer)
                )
            } else {
                format!(
                    "issued {amount} to {} (receipt {receipt_ref})",
                    short(&to.to_string())
                )
            }
        }
        Some(TxBody::Transfer { to, amount, memo }) => {
            let memo = if memo.is_empty() {
                String::new()
            } else {
                format!(" \"{memo}\"")
            };
            if signer_is_me {
                format!("-{amount} to {}{memo}", short(&to.to_string()))
            } else {
                format!("+{amount} from {}{memo}", short(&item.signer))
            }
        }
        Some(TxBody::Redeem {
            merchant,
            amount,
            order_ref,
        }) => {
            format!("-{amount} redeemed at {merchant} (order {order_ref})")
        }
        Some(TxBody::SettlementConfirm { debtor, amount }) => {
            format!("confirmed {amount} points paid by {debtor}")
        }
        Some(TxBody::Propose {
            action,
            deadline_height,
        }) => {
            format!(
                "proposed {} (deadline {deadline_height})",
                crate::commands::gov::action_summary(
                    &serde_json::to_value(&action).unwrap_or_default()
                )
            )
        }
        Some(TxBody::Vote { proposal, approve }) => {
            format!(
                "voted {} on proposal {proposal}",
                if approve { "yes" } else { "no" }
            )
        }
        None => item.body.to_string(),
    }
}

/// `alliance history`.
pub fn history(ctx: &Ctx, w: &WhoArgs, limit: u32) -> CmdResult {
    let addr = who(w)?;
    let path = format!("/v1/accounts/{addr}/history?limit={limit}");
    let (h, raw): (api::History, _) = match ctx.get(&path) {
        Err(f) if f.code == "not_found" => {
            return Err(Failure::new(
                "not_supported",
                format!(
                    "the node at {} does not serve account history (GET /v1/accounts/{{address}}/history): upgrade it or use another --node",
                    ctx.client.base()
                ),
            ))
        }
        other => other?,
    };
    let me = addr.to_string();
    let names: BTreeMap<String, String> = ctx
        .merchants()
        .map(|ms| ms.into_iter().map(|m| (m.key, m.id)).collect())
        .unwrap_or_default();
    ctx.print(&raw, || {
        if h.items.is_empty() {
            return format!("no transactions for {me}\n");
        }
        let rows: Vec<Vec<String>> = h
            .items
            .iter()
            .map(|i| {
                vec![
                    i.height.to_string(),
                    output::utc_datetime(i.timestamp_ms),
                    i.kind.clone(),
                    describe(i, &me, &names),
                    if i.applied {
                        "ok".into()
                    } else {
                        format!("rejected: {}", i.code.clone().unwrap_or_default())
                    },
                    i.hash.chars().take(12).collect(),
                ]
            })
            .collect();
        let mut s = table(
            &["HEIGHT", "TIME", "KIND", "DETAILS", "RESULT", "TX"],
            &[true, false, false, false, false, false],
            &rows,
        );
        if h.next.as_ref().is_some_and(|n| !n.is_null()) {
            s.push_str(&format!("(more: raise --limit above {limit})\n"));
        }
        s
    });
    Ok(())
}

/// `alliance tx HASH`.
pub fn tx(ctx: &Ctx, hash: &str) -> CmdResult {
    let path = format!("/v1/transactions/{hash}");
    let (st, raw): (api::TxStatus, _) = match ctx.get(&path) {
        Err(f) if f.code == "unknown_transaction" => {
            return Err(Failure::new(
                "unknown_transaction",
                format!(
                    "transaction {hash} is neither pending nor committed on {}",
                    ctx.client.base()
                ),
            ))
        }
        other => other?,
    };
    ctx.print(&raw, || {
        let mut s = format!("tx     {}\nstatus {}\n", st.hash, st.status);
        if let Some(h) = st.height {
            s.push_str(&format!("height {h} (index {})\n", st.index.unwrap_or(0)));
        }
        if let Some(r) = &st.result {
            if r.applied {
                s.push_str("result applied\n");
            } else {
                s.push_str(&format!(
                    "result rejected: {} ({})\n",
                    r.reason.clone().unwrap_or_default(),
                    r.code.clone().unwrap_or_default()
                ));
            }
        }
        s
    });
    Ok(())
}

/// `alliance status`.
pub fn status(ctx: &Ctx) -> CmdResult {
    let (st, raw) = ctx.status()?;
    ctx.print(&raw, || {
        let mut s = format!(
            "node        {}\nchain       {}\nheight      {}\ntip         {}\nstate root  {}\nblock time  {}\nview        {}\nvalidator   {}\nsyncing     {}\nmempool     {}\npeers       {}\nversion     {}\n",
            ctx.client.base(),
            st.chain_id,
            st.height,
            st.tip_hash,
            st.state_root,
            output::utc_datetime(st.timestamp_ms),
            st.view,
            if st.is_validator { "yes" } else { "no" },
            if st.syncing { "yes" } else { "no" },
            st.mempool,
            st.peers.len(),
            st.version
        );
        s.push_str("\nvalidators\n");
        let rows: Vec<Vec<String>> = st
            .validators
            .iter()
            .map(|v| vec![v.id.clone(), v.key.clone()])
            .collect();
        s.push_str(&table(&["ID", "KEY"], &[false, false], &rows));
        s
    });
    Ok(())
}

/// Lots as a table: issuer, points, expiry date.
pub(crate) fn lots_table(lots: &[api::Lot]) -> String {
    let rows: Vec<Vec<String>> = lots
        .iter()
        .map(|l| {
            vec![
                l.issuer.clone(),
                l.amount.to_string(),
                output::expiry(l.expiry_ms),
            ]
        })
        .collect();
    table(
        &["ISSUER", "POINTS", "EXPIRES (UTC)"],
        &[false, true, false],
        &rows,
    )
}
