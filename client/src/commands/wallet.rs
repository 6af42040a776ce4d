//! Wallet commands: keygen, address, balance, send, redeem, history, tx,
//! status, settlement.

use std::collections::BTreeMap;
use std::path::Path;

use alliance_protocol::redemption::{listed_rate, rate_for, value_units, SignedOrder};
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

/// A redemption signed by the customer alone spends only the merchant's
/// own points (the ledger refuses the rest: `merchant_signature_required`,
/// or `self_redemption` for the merchant's own key).
fn check_own_points(acc: &api::Account, at: &MerchantId, amount: u64, own_key: bool) -> CmdResult {
    let own = spendable_of(acc, |issuer| issuer == at.as_str());
    if amount <= own {
        return Ok(());
    }
    Err(if own_key {
        Failure::new(
            "self_redemption",
            format!(
                "a merchant redeeming at itself spends only its own points: {own} of `{at}`'s points held, {amount} requested (other issuers' points cannot create a claim without a sale)"
            ),
        )
    } else {
        Failure::new(
            "merchant_signature_required",
            format!(
                "without the merchant's signature only `{at}`'s own points are spent: {own} held, {amount} requested; to pay with other members' points, ask `{at}` for a payment request (`alliance merchant order`) and use `alliance pay`"
            ),
        )
    })
}

/// `alliance pay`: checks the merchant's request against the chain, shows
/// what it spends, and signs and submits it.
pub fn pay(ctx: &Ctx, key: &Path, request: &str, wait: &WaitArgs) -> CmdResult {
    let signed = SignedOrder::from_text(request)
        .map_err(|e| Failure::new("malformed", format!("--request: {e}")))?;
    let order = &signed.order;
    let chain_id = ctx.chain_id()?;
    if !order.verify(&chain_id, &signed.signature) {
        return Err(Failure::new(
            "bad_signature",
            format!("the request's merchant signature does not verify on chain `{chain_id}`: ask the merchant for a new one"),
        ));
    }
    let k = load_key(key)?;
    if order.customer != k.public() {
        return Err(Failure::new(
            "order_for_another_customer",
            format!(
                "this request is for {}, not for this key ({})",
                order.customer,
                k.public()
            ),
        ));
    }
    let now = crate::output::now_ms();
    if order.valid_until_ms < now {
        return Err(Failure::new(
            "order_expired",
            format!(
                "the request expired at {}: ask the merchant for a new one",
                crate::output::utc_datetime(order.valid_until_ms)
            ),
        ));
    }
    let merchants = ctx.merchants()?;
    let at = order.merchant.as_str();
    let m = merchants
        .iter()
        .find(|m| m.id == at)
        .ok_or_else(|| unknown_merchant(at))?;
    if m.key != order.merchant_key.to_string() {
        return Err(Failure::new(
            "wrong_merchant_key",
            format!("the request is signed with a key that is not merchant `{at}`'s"),
        ));
    }
    if m.status != "active" {
        return Err(Failure::new(
            "merchant_suspended",
            format!(
                "merchant `{at}` is {} and does not accept payments",
                m.status
            ),
        ));
    }
    // What the accepted points are worth here, to refuse before signing
    // (the ledger decides; rates may change at a height in between).
    let (acc, _) = ctx.account(&k.public())?;
    let own_key = m.key == k.public().to_string();
    let value_units: u128 = acc
        .lots
        .iter()
        .filter(|l| l.expiry_ms.is_none_or(|e| e > now))
        .filter(|l| {
            order.issuers.is_empty() || order.issuers.iter().any(|i| i.as_str() == l.issuer)
        })
        .filter(|l| !own_key || l.issuer == at)
        .filter_map(|l| {
            let issuer = merchants.iter().find(|x| x.id == l.issuer)?;
            if issuer.status != "active" {
                return None;
            }
            let issuer_id = MerchantId::new(&l.issuer).ok()?;
            let bps = rate_for(&order.merchant, &m.acceptance.rates, &issuer_id)?;
            Some(value_units(l.amount, issuer.policy.point_value_minor, bps))
        })
        .sum();
    let available_minor = value_units / alliance_protocol::redemption::VALUE_UNITS_PER_MINOR;
    if value_units
        < order.value_minor as u128 * alliance_protocol::redemption::VALUE_UNITS_PER_MINOR
    {
        return Err(Failure::new(
            "insufficient_value",
            format!(
                "the points this order accepts are worth {} at `{at}`'s rates, the order is {}",
                crate::output::money_minor(available_minor.min(u64::MAX as u128) as u64),
                crate::output::money_minor(order.value_minor)
            ),
        ));
    }
    let what = format!(
        "paid {} at {at} with points (order {})",
        crate::output::money_minor(order.value_minor),
        order.order_ref
    );
    let body = TxBody::RedeemOrder {
        order: signed.order.clone(),
        merchant_signature: signed.signature,
    };
    submit(ctx, &k, body, wait, &what)
}

/// `alliance convert`: checks `to`'s conversion rate in force for `from`
/// and that the points held cover the new ones, then signs and submits.
pub fn convert(
    ctx: &Ctx,
    key: &Path,
    (from, to): (&MerchantId, &MerchantId),
    points: u64,
    wait: &WaitArgs,
) -> CmdResult {
    if from == to {
        return Err(Failure::new(
            "not_convertible",
            "--from and --to are the same issuer",
        ));
    }
    let merchants = ctx.merchants()?;
    let find = |id: &MerchantId| {
        merchants
            .iter()
            .find(|m| m.id == id.as_str())
            .ok_or_else(|| unknown_merchant(id.as_str()))
    };
    let (source, target) = (find(from)?, find(to)?);
    for m in [source, target] {
        if m.status != "active" {
            return Err(Failure::new(
                "merchant_suspended",
                format!("merchant `{}` is {}: no conversions", m.id, m.status),
            ));
        }
    }
    let bps = listed_rate(&target.acceptance.conversions, from)
        .ok_or_else(|| {
            Failure::new(
                "not_convertible",
                format!("`{to}` does not convert `{from}`'s points into its own (see `alliance merchant show {to}`)"),
            )
        })?;
    let k = load_key(key)?;
    if target.key == k.public().to_string() {
        return Err(Failure::new(
            "self_conversion",
            format!("`{to}`'s own key cannot convert other issuers' points into its own"),
        ));
    }
    let needed = alliance_protocol::redemption::points_to_convert(
        points,
        target.policy.point_value_minor,
        source.policy.point_value_minor,
        bps,
    )
    .ok_or_else(|| Failure::new("overflow", "--points is too large"))?;
    let (acc, _) = ctx.account(&k.public())?;
    let held = spendable_of(&acc, |issuer| issuer == from.as_str());
    if held < needed {
        return Err(Failure::new(
            "insufficient_balance",
            format!(
                "{points} `{to}` points take {needed} `{from}` points at {}, {held} held",
                crate::output::percent_bps(bps)
            ),
        ));
    }
    submit(
        ctx,
        &k,
        TxBody::Convert {
            from: from.clone(),
            to: to.clone(),
            points,
        },
        wait,
        &format!("converted {needed} {from} points into {points} {to} points"),
    )
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
    check_own_points(&acc, at, amount, m.key == k.public().to_string())?;
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
        Some(TxBody::SetAcceptance {
            terms,
            effective_height,
        }) => {
            let rates = crate::output::rates_text(&terms.rates, crate::output::EVERY_ISSUER);
            let conversions =
                crate::output::rates_text(&terms.conversions, crate::output::NO_CONVERSIONS);
            format!(
                "set acceptance from height {effective_height}: {rates}; converts {conversions}"
            )
        }
        Some(TxBody::Convert { from, to, points }) => {
            format!("converted {from} points into +{points} {to}")
        }
        Some(TxBody::RedeemOrder { order, .. }) => {
            format!(
                "paid {} at {} (order {})",
                crate::output::money_minor(order.value_minor),
                order.merchant,
                order.order_ref
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
