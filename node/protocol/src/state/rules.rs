//! Every ledger rule, in one place: what each transaction body requires and
//! what it changes, and how points expire. Pure: the block header is the only
//! source of time, and all reads and writes go through the [`Overlay`].

use super::error::TxError;
use super::keys::{
    Account, Claim, DailyIssued, Lot, Proposal, ProposalStatus, StateKey, StateValue, UsedOrder,
    UsedReceipt,
};
use super::overlay::Overlay;
use super::source::PruneQueue;
use crate::crypto::PublicKey;
use crate::limits::{
    ACCEPTANCE_RATES_MAX, DAY_MS, LOTS_PER_ACCOUNT_MAX, MEMO_BYTES_MAX, MERCHANTS_MAX,
    ORDER_VALIDITY_MS_MAX, REASON_BYTES_MAX, RECEIPT_FUTURE_MS_MAX, RECEIPT_PRUNES_PER_BLOCK_TX,
    REF_BYTES_MAX,
};
use crate::merchant::{validate_name, Merchant, MerchantId, MerchantStatus};
use crate::redemption::{
    claim_centiminor, listed_rate, points_to_burn, points_to_convert, rate_for, AcceptanceRate,
    AcceptanceTerms, Offer, OrderRequest, BPS_FULL, VALUE_UNITS_PER_MINOR,
};
use crate::tx::{GovAction, Transaction, TxBody};

/// What a transaction may know about the block it is in.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BlockCtx<'a> {
    pub chain_id: &'a str,
    pub height: u64,
    pub timestamp_ms: u64,
}

/// Applies one transaction to the overlay's transaction layer. On `Err` the
/// caller discards that layer. `signature_ok` comes from the batch verifier
/// (or a per-transaction check): the rule is [`crate::sigverify::verify`].
pub(crate) fn apply_tx(
    o: &mut Overlay,
    ctx: BlockCtx,
    tx: &Transaction,
    signature_ok: bool,
) -> Result<(), TxError> {
    if tx.chain_id != ctx.chain_id {
        return Err(TxError::WrongChain {
            expected: ctx.chain_id.to_string(),
            got: tx.chain_id.clone(),
        });
    }
    if !signature_ok {
        return Err(TxError::BadSignature);
    }
    let mut signer = o.account(&tx.signer);
    if tx.nonce < signer.nonce {
        return Err(TxError::NonceReplayed {
            expected: signer.nonce,
            got: tx.nonce,
        });
    }
    if tx.nonce > signer.nonce {
        return Err(TxError::NonceSkipped {
            expected: signer.nonce,
            got: tx.nonce,
        });
    }
    signer.nonce += 1; // cannot overflow: one nonce per transaction, u64 of them
    o.put_account(tx.signer, signer);

    match &tx.body {
        TxBody::Issue {
            to,
            amount,
            reason,
            receipt_ref,
            receipt_time_ms,
        } => issue(
            o,
            ctx,
            &tx.signer,
            to,
            *amount,
            reason,
            receipt_ref,
            *receipt_time_ms,
        ),
        TxBody::Transfer { to, amount, memo } => transfer(o, &tx.signer, to, *amount, memo),
        TxBody::Redeem {
            merchant,
            amount,
            order_ref,
        } => redeem(o, ctx, &tx.signer, merchant, *amount, order_ref),
        TxBody::SettlementConfirm { debtor, amount } => {
            settlement_confirm(o, &tx.signer, debtor, *amount)
        }
        TxBody::Propose {
            action,
            deadline_height,
        } => propose(o, ctx, &tx.signer, action, *deadline_height),
        TxBody::Vote { proposal, approve } => vote(o, ctx, &tx.signer, *proposal, *approve),
        TxBody::SetAcceptance {
            terms,
            effective_height,
        } => set_acceptance(o, ctx, &tx.signer, terms, *effective_height),
        // The merchant's signature was checked with the signer's
        // (`Transaction::cosignature_ok`): `signature_ok` covers both.
        TxBody::RedeemOrder { order, .. } => redeem_order(o, ctx, &tx.signer, order),
        TxBody::Convert { from, to, points } => convert(o, ctx, &tx.signer, from, to, *points),
    }
}

fn check_len(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), TxError> {
    if value.len() < min || value.len() > max {
        return Err(TxError::BadFieldLength {
            field: field.to_string(),
            min,
            max,
        });
    }
    Ok(())
}

fn positive(amount: u64) -> Result<(), TxError> {
    if amount == 0 {
        return Err(TxError::ZeroAmount);
    }
    Ok(())
}

/// The merchant that owns `key`, which must be active.
fn active_merchant(o: &Overlay, key: &PublicKey) -> Result<Merchant, TxError> {
    let m = o.merchant_by_key(key).ok_or(TxError::NotAMerchant)?;
    if m.status != MerchantStatus::Active {
        return Err(TxError::MerchantSuspended(m.id));
    }
    Ok(m)
}

/// Expiry of points issued at `now_ms` with a validity of `days`: the UTC
/// midnight after `now + days`, so one day's issuances share one lot.
pub fn expiry_for(now_ms: u64, days: u32) -> Option<u64> {
    if days == 0 {
        return None;
    }
    let end = now_ms.saturating_add(days as u64 * DAY_MS);
    Some((end / DAY_MS).saturating_add(1).saturating_mul(DAY_MS))
}

/// Adds points to an account's lots, merging with a lot of the same issuer
/// and expiry, keeping spend order.
fn add_lot(account: &mut Account, lot: Lot) -> Result<(), TxError> {
    if let Some(existing) = account
        .lots
        .iter_mut()
        .find(|l| l.issuer == lot.issuer && l.expiry_ms == lot.expiry_ms)
    {
        existing.amount = existing
            .amount
            .checked_add(lot.amount)
            .ok_or(TxError::Overflow)?;
        return Ok(());
    }
    if account.lots.len() >= LOTS_PER_ACCOUNT_MAX {
        return Err(TxError::TooManyLots(LOTS_PER_ACCOUNT_MAX));
    }
    let at = account
        .lots
        .partition_point(|l| l.spend_order() < lot.spend_order());
    account.lots.insert(at, lot);
    Ok(())
}

/// Takes `amount` points from an account, closest expiry first. Returns the
/// lots taken (issuer and expiry preserved). Fails without change if the
/// balance is short.
fn take_points(account: &mut Account, amount: u64) -> Result<Vec<Lot>, TxError> {
    take_points_of(account, amount, |_| true)
}

/// [`take_points`] from the lots of the issuers `accepted` takes only.
fn take_points_of(
    account: &mut Account,
    amount: u64,
    accepted: impl Fn(&MerchantId) -> bool,
) -> Result<Vec<Lot>, TxError> {
    let available: u64 = account
        .lots
        .iter()
        .filter(|l| accepted(&l.issuer))
        .map(|l| l.amount)
        .sum();
    if available < amount {
        return Err(TxError::InsufficientBalance {
            available,
            requested: amount,
        });
    }
    let mut taken = Vec::new();
    let mut left = amount;
    for lot in account.lots.iter_mut().filter(|l| accepted(&l.issuer)) {
        if left == 0 {
            break;
        }
        let n = lot.amount.min(left);
        lot.amount -= n;
        left -= n;
        taken.push(Lot {
            issuer: lot.issuer.clone(),
            expiry_ms: lot.expiry_ms,
            amount: n,
        });
    }
    debug_assert_eq!(left, 0, "the accepted lots cover the amount");
    account.lots.retain(|l| l.amount > 0);
    Ok(taken)
}

/// Credits lots to `to`, recording their expiries in the expiry queue.
fn credit(o: &mut Overlay, to: &PublicKey, lots: Vec<Lot>) -> Result<(), TxError> {
    let mut account = o.account(to);
    for lot in lots {
        if let Some(e) = lot.expiry_ms {
            o.put(StateKey::Expiry(e, *to), StateValue::Expiry);
        }
        add_lot(&mut account, lot)?;
    }
    o.put_account(*to, account);
    Ok(())
}

/// The receipt window at block time `now_ms`: the earliest receipt time an
/// issuance may carry, `max(now − receipt_window_days, receipt_floor_ms)`.
/// Never decreases from one block to the next (block times increase, and a
/// vote that lengthens the window raises the floor to the old start), so a
/// receipt that has left the window never comes back into it.
pub(crate) fn receipt_window_start(o: &Overlay, now_ms: u64) -> u64 {
    let days = match o.get(&StateKey::Params).as_deref() {
        Some(StateValue::Params(p)) => p.receipt_window_days,
        other => unreachable!("state invariant: params present, found {other:?}"),
    };
    let floor = match o.get(&StateKey::Meta).as_deref() {
        Some(StateValue::Meta(m)) => m.receipt_floor_ms,
        other => unreachable!("state invariant: meta present, found {other:?}"),
    };
    now_ms.saturating_sub(days as u64 * DAY_MS).max(floor)
}

#[allow(clippy::too_many_arguments)]
fn issue(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    to: &PublicKey,
    amount: u64,
    reason: &str,
    receipt_ref: &str,
    receipt_time_ms: u64,
) -> Result<(), TxError> {
    let mut m = active_merchant(o, signer)?;
    positive(amount)?;
    check_len("reason", reason, 0, REASON_BYTES_MAX)?;
    check_len("receipt_ref", receipt_ref, 1, REF_BYTES_MAX)?;
    let window_start_ms = receipt_window_start(o, ctx.timestamp_ms);
    if receipt_time_ms < window_start_ms {
        return Err(TxError::ReceiptOutsideWindow {
            receipt_time_ms,
            window_start_ms,
        });
    }
    let latest_ms = ctx.timestamp_ms.saturating_add(RECEIPT_FUTURE_MS_MAX);
    if receipt_time_ms > latest_ms {
        return Err(TxError::ReceiptInFuture {
            receipt_time_ms,
            latest_ms,
        });
    }
    let receipt_key = StateKey::Receipt(m.id.clone(), receipt_ref.to_string());
    if let Some(StateValue::Receipt(used)) = o.get(&receipt_key).as_deref() {
        let used = *used;
        if used.receipt_time_ms >= window_start_ms {
            return Err(TxError::DuplicateReceipt {
                receipt_ref: receipt_ref.to_string(),
                height: used.height,
            });
        }
        // That use has left the window and is only waiting to be pruned
        // (pruning is bounded per block): the reference is free again. Its
        // queue entry goes now, so the queue never prunes the new use.
        o.delete(StateKey::ReceiptQueue(
            used.receipt_time_ms,
            m.id.clone(),
            receipt_ref.to_string(),
        ));
    }
    let day = ctx.timestamp_ms / DAY_MS;
    let daily_key = StateKey::DailyIssued(m.id.clone(), *to);
    let already = match o.get(&daily_key).as_deref() {
        Some(StateValue::DailyIssued(d)) if d.day == day => d.amount,
        _ => 0,
    };
    let today = already.checked_add(amount).ok_or(TxError::Overflow)?;
    if today > m.policy.daily_issue_cap {
        return Err(TxError::DailyCapExceeded {
            cap: m.policy.daily_issue_cap,
            already,
            requested: amount,
        });
    }
    let outstanding = m.stats.outstanding();
    if outstanding.checked_add(amount).ok_or(TxError::Overflow)? > m.policy.outstanding_cap {
        return Err(TxError::OutstandingCapExceeded {
            cap: m.policy.outstanding_cap,
            outstanding,
            requested: amount,
        });
    }
    m.stats.issued = m
        .stats
        .issued
        .checked_add(amount)
        .ok_or(TxError::Overflow)?;
    let lot = Lot {
        issuer: m.id.clone(),
        expiry_ms: expiry_for(ctx.timestamp_ms, m.policy.validity_days),
        amount,
    };
    credit(o, to, vec![lot])?;
    o.put(
        receipt_key,
        StateValue::Receipt(UsedReceipt {
            height: ctx.height,
            receipt_time_ms,
        }),
    );
    o.put(
        StateKey::ReceiptQueue(receipt_time_ms, m.id.clone(), receipt_ref.to_string()),
        StateValue::ReceiptQueue,
    );
    o.put(
        daily_key,
        StateValue::DailyIssued(DailyIssued { day, amount: today }),
    );
    o.put_merchant(m);
    Ok(())
}

fn transfer(
    o: &mut Overlay,
    signer: &PublicKey,
    to: &PublicKey,
    amount: u64,
    memo: &str,
) -> Result<(), TxError> {
    positive(amount)?;
    check_len("memo", memo, 0, MEMO_BYTES_MAX)?;
    let mut from = o.account(signer);
    let lots = take_points(&mut from, amount)?;
    o.put_account(*signer, from);
    credit(o, to, lots)
}

fn redeem(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    at: &MerchantId,
    amount: u64,
    order_ref: &str,
) -> Result<(), TxError> {
    let mut redeemer = o
        .merchant(at)
        .ok_or_else(|| TxError::UnknownMerchant(at.clone()))?;
    if redeemer.status != MerchantStatus::Active {
        return Err(TxError::MerchantSuspended(at.clone()));
    }
    positive(amount)?;
    check_len("order_ref", order_ref, 1, REF_BYTES_MAX)?;
    if amount < redeemer.policy.min_redemption {
        return Err(TxError::BelowMinimumRedemption {
            minimum: redeemer.policy.min_redemption,
            requested: amount,
        });
    }
    use_order(o, ctx, at, order_ref)?;
    let mut account = o.account(signer);
    // Without the merchant's signature only the merchant's own points are
    // spent: no claim on another issuer arises from the customer's
    // signature alone (issue #15). Other issuers' points need `RedeemOrder`.
    let own_shop = *signer == redeemer.key;
    let burnt = match take_points_of(&mut account, amount, |i| i == at) {
        Err(TxError::InsufficientBalance { available, .. }) if account.balance() >= amount => {
            return Err(if own_shop {
                TxError::SelfRedemption {
                    own_points: available,
                    requested: amount,
                }
            } else {
                TxError::MerchantSignatureRequired {
                    own_points: available,
                    requested: amount,
                }
            });
        }
        other => other?,
    };
    o.put_account(*signer, account);
    redeemer.stats.redeemed_here = redeemer
        .stats
        .redeemed_here
        .checked_add(amount)
        .ok_or(TxError::Overflow)?;
    // The merchant's own points: no claim. Conservation: redeemed <= issued.
    debug_assert!(burnt.iter().all(|l| l.issuer == *at));
    redeemer.stats.redeemed += amount;
    o.put_merchant(redeemer);
    record_order(o, ctx, at, order_ref);
    Ok(())
}

/// Refuses `order_ref` if `at` already redeemed it inside the receipt
/// window; frees a use that has left the window but is not pruned yet.
fn use_order(
    o: &mut Overlay,
    ctx: BlockCtx,
    at: &MerchantId,
    order_ref: &str,
) -> Result<(), TxError> {
    check_len("order_ref", order_ref, 1, REF_BYTES_MAX)?;
    let order_key = StateKey::Order(at.clone(), order_ref.to_string());
    if let Some(StateValue::Order(used)) = o.get(&order_key).as_deref() {
        let used = *used;
        if used.time_ms >= receipt_window_start(o, ctx.timestamp_ms) {
            return Err(TxError::DuplicateOrder {
                order_ref: order_ref.to_string(),
                height: used.height,
            });
        }
        // That use has left the window and is only waiting to be pruned:
        // its queue entry goes now, so the queue never prunes the new use.
        o.delete(StateKey::OrderQueue(
            used.time_ms,
            at.clone(),
            order_ref.to_string(),
        ));
    }
    Ok(())
}

/// Records that `at` redeemed `order_ref` in this block.
fn record_order(o: &mut Overlay, ctx: BlockCtx, at: &MerchantId, order_ref: &str) {
    o.put(
        StateKey::Order(at.clone(), order_ref.to_string()),
        StateValue::Order(UsedOrder {
            height: ctx.height,
            time_ms: ctx.timestamp_ms,
        }),
    );
    o.put(
        StateKey::OrderQueue(ctx.timestamp_ms, at.clone(), order_ref.to_string()),
        StateValue::OrderQueue,
    );
}

/// Checks one list of an acceptance policy of merchant `m`: at most
/// [`ACCEPTANCE_RATES_MAX`] known issuers, sorted, each once, never `m`
/// itself, each at 1 to 10,000 bps.
fn check_rates(o: &Overlay, m: &MerchantId, rates: &[AcceptanceRate]) -> Result<(), TxError> {
    if rates.len() > ACCEPTANCE_RATES_MAX {
        return Err(TxError::InvalidAcceptance(format!(
            "at most {ACCEPTANCE_RATES_MAX} issuers"
        )));
    }
    for (i, r) in rates.iter().enumerate() {
        if i > 0 && rates[i - 1].issuer >= r.issuer {
            return Err(if rates[i - 1].issuer == r.issuer {
                TxError::DuplicateIssuer(r.issuer.clone())
            } else {
                TxError::InvalidAcceptance("issuers must be sorted by id".into())
            });
        }
        if r.issuer == *m {
            return Err(TxError::InvalidAcceptance(format!(
                "`{m}`'s own points always count at 100 %: do not list them"
            )));
        }
        if r.bps == 0 || r.bps > BPS_FULL {
            return Err(TxError::InvalidAcceptance(format!(
                "the rate of `{}` is {} bps; rates are 1 to {BPS_FULL}",
                r.issuer, r.bps
            )));
        }
        if o.merchant(&r.issuer).is_none() {
            return Err(TxError::UnknownMerchant(r.issuer.clone()));
        }
    }
    Ok(())
}

/// A merchant announces its acceptance terms from `effective_height` on.
fn set_acceptance(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    terms: &AcceptanceTerms,
    effective_height: u64,
) -> Result<(), TxError> {
    let m = active_merchant(o, signer)?;
    check_rates(o, &m.id, &terms.rates)?;
    check_rates(o, &m.id, &terms.conversions)?;
    let earliest = ctx
        .height
        .saturating_add(o.params().acceptance_notice_blocks);
    if effective_height < earliest {
        return Err(TxError::AcceptanceNoticeTooShort {
            effective_height,
            earliest,
        });
    }
    // A change already in force is folded in; one still pending is replaced.
    let mut acceptance = o.acceptance(&m.id).settled(ctx.height);
    acceptance.next = Some((effective_height, terms.clone()));
    o.put(
        StateKey::Acceptance(m.id),
        StateValue::Acceptance(acceptance),
    );
    Ok(())
}

/// Books on `creditor`'s claim on `debtor` the `points` of `debtor` it took
/// at `bps`: their value rounded down to the centiminor
/// ([`claim_centiminor`]).
fn book_claim(
    o: &mut Overlay,
    creditor: &MerchantId,
    debtor: &Merchant,
    points: u64,
    bps: u16,
) -> Result<(), TxError> {
    let key = StateKey::Claim(creditor.clone(), debtor.id.clone());
    let mut claim = match o.get(&key).as_deref() {
        Some(StateValue::Claim(c)) => *c,
        _ => Claim::default(),
    };
    let value =
        claim_centiminor(points, debtor.policy.point_value_minor, bps).ok_or(TxError::Overflow)?;
    claim.redeemed_points = claim
        .redeemed_points
        .checked_add(points)
        .ok_or(TxError::Overflow)?;
    claim.redeemed_value_centiminor = claim
        .redeemed_value_centiminor
        .checked_add(value)
        .ok_or(TxError::Overflow)?;
    o.put(key, StateValue::Claim(claim));
    Ok(())
}

/// The signer converts `from`'s points into `points` new points of `to`, at
/// `to`'s conversion rate for `from` in force (docs/protocol.md §4).
fn convert(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    from: &MerchantId,
    to: &MerchantId,
    points: u64,
) -> Result<(), TxError> {
    positive(points)?;
    let mut target = o
        .merchant(to)
        .ok_or_else(|| TxError::UnknownMerchant(to.clone()))?;
    if target.status != MerchantStatus::Active {
        return Err(TxError::MerchantSuspended(to.clone()));
    }
    let mut source = o
        .merchant(from)
        .ok_or_else(|| TxError::UnknownMerchant(from.clone()))?;
    if source.status != MerchantStatus::Active {
        return Err(TxError::MerchantSuspended(from.clone()));
    }
    // Its own key would turn points it holds into a claim without a sale.
    if *signer == target.key {
        return Err(TxError::SelfConversion(to.clone()));
    }
    let acceptance = o.acceptance(to);
    let bps = listed_rate(&acceptance.at(ctx.height).conversions, from)
        .filter(|_| from != to)
        .ok_or_else(|| TxError::NotConvertible {
            from: from.clone(),
            to: to.clone(),
        })?;
    let outstanding = target.stats.outstanding();
    if outstanding.checked_add(points).ok_or(TxError::Overflow)? > target.policy.outstanding_cap {
        return Err(TxError::OutstandingCapExceeded {
            cap: target.policy.outstanding_cap,
            outstanding,
            requested: points,
        });
    }
    let given = points_to_convert(
        points,
        target.policy.point_value_minor,
        source.policy.point_value_minor,
        bps,
    )
    .ok_or(TxError::Overflow)?;
    let mut account = o.account(signer);
    take_points_of(&mut account, given, |i| i == from)?;
    o.put_account(*signer, account);
    // `from`'s points left circulation at `to`: `to`'s claim on `from`.
    source.stats.redeemed += given; // <= issued: conservation invariant
    book_claim(o, to, &source, given, bps)?;
    o.put_merchant(source);
    // `to`'s new points: issued by the conversion, with `to`'s validity.
    target.stats.issued = target
        .stats
        .issued
        .checked_add(points)
        .ok_or(TxError::Overflow)?;
    target.stats.redeemed_here = target
        .stats
        .redeemed_here
        .checked_add(given)
        .ok_or(TxError::Overflow)?;
    let lot = Lot {
        issuer: to.clone(),
        expiry_ms: expiry_for(ctx.timestamp_ms, target.policy.validity_days),
        amount: points,
    };
    o.put_merchant(target);
    credit(o, signer, vec![lot])
}

/// The (issuer, point value, rate) at which merchant `at`, with `rates` in
/// force, takes `id`'s points; `None` if it does not (a suspended issuer, an
/// issuer not in the policy, or another issuer's points spent by the
/// merchant's own key, which would give it a claim without a sale). An
/// issuer the order names explicitly gets an error instead of `None`.
fn issuer_terms_of(
    o: &Overlay,
    at: &MerchantId,
    rates: &[AcceptanceRate],
    own_shop: bool,
    id: &MerchantId,
    named: bool,
) -> Result<Option<(MerchantId, u64, u16)>, TxError> {
    let issuer = o
        .merchant(id)
        .ok_or_else(|| TxError::UnknownMerchant(id.clone()))?;
    let bps = rate_for(at, rates, id).filter(|_| !own_shop || id == at);
    match bps {
        _ if issuer.status != MerchantStatus::Active => match named {
            true => Err(TxError::MerchantSuspended(id.clone())),
            false => Ok(None),
        },
        Some(bps) => Ok(Some((id.clone(), issuer.policy.point_value_minor, bps))),
        None => match named {
            true => Err(TxError::UnacceptedIssuer {
                merchant: at.clone(),
                issuer: id.clone(),
            }),
            false => Ok(None),
        },
    }
}

/// The customer pays a merchant-signed order with points (two-party
/// redemption, priced in currency: docs/protocol.md §4).
fn redeem_order(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    order: &OrderRequest,
) -> Result<(), TxError> {
    let at = &order.merchant;
    let mut redeemer = o
        .merchant(at)
        .ok_or_else(|| TxError::UnknownMerchant(at.clone()))?;
    if redeemer.status != MerchantStatus::Active {
        return Err(TxError::MerchantSuspended(at.clone()));
    }
    if order.merchant_key != redeemer.key {
        return Err(TxError::WrongMerchantKey(at.clone()));
    }
    if order.customer != *signer {
        return Err(TxError::OrderForAnotherCustomer);
    }
    positive(order.value_minor)?;
    if order.valid_until_ms < ctx.timestamp_ms {
        return Err(TxError::OrderExpired {
            valid_until_ms: order.valid_until_ms,
            block_time_ms: ctx.timestamp_ms,
        });
    }
    let latest_ms = ctx.timestamp_ms.saturating_add(ORDER_VALIDITY_MS_MAX);
    if order.valid_until_ms > latest_ms {
        return Err(TxError::OrderValidityTooLong {
            valid_until_ms: order.valid_until_ms,
            latest_ms,
        });
    }
    if order.issuers.len() > ACCEPTANCE_RATES_MAX {
        return Err(TxError::BadFieldLength {
            field: "issuers".into(),
            min: 0,
            max: ACCEPTANCE_RATES_MAX,
        });
    }
    for (i, issuer) in order.issuers.iter().enumerate() {
        if order.issuers[..i].contains(issuer) {
            return Err(TxError::DuplicateIssuer(issuer.clone()));
        }
    }
    use_order(o, ctx, at, &order.order_ref)?;

    // The rate of each issuer whose points this order may spend.
    let acceptance = o.acceptance(at);
    let rates = &acceptance.at(ctx.height).rates;
    let own_shop = *signer == redeemer.key;
    let mut account = o.account(signer);
    // (issuer, point value, rate) of each issuer the order may spend.
    let mut issuer_terms: Vec<(MerchantId, u64, u16)> = Vec::new();
    // The lots offered, in spend order: by the named issuers' order, or
    // closest expiry first among every accepted issuer.
    let mut offered: Vec<usize> = Vec::new();
    if order.issuers.is_empty() {
        for (i, lot) in account.lots.iter().enumerate() {
            let known = issuer_terms.iter().any(|(id, ..)| *id == lot.issuer);
            if !known {
                match issuer_terms_of(o, at, rates, own_shop, &lot.issuer, false)? {
                    Some(t) => issuer_terms.push(t),
                    None => continue,
                }
            }
            offered.push(i);
        }
    } else {
        for id in &order.issuers {
            let t = issuer_terms_of(o, at, rates, own_shop, id, true)?
                .unwrap_or_else(|| unreachable!("a named issuer has terms or an error"));
            issuer_terms.push(t);
            offered.extend(
                account
                    .lots
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.issuer == *id)
                    .map(|(i, _)| i),
            );
        }
    }
    let terms = |issuer: &MerchantId| {
        let (_, value, bps) = issuer_terms
            .iter()
            .find(|(i, ..)| i == issuer)
            .unwrap_or_else(|| unreachable!("an offered lot's issuer has terms"));
        (*value, *bps)
    };
    let offers: Vec<Offer> = offered
        .iter()
        .map(|&i| {
            let lot = &account.lots[i];
            let (value, bps) = terms(&lot.issuer);
            Offer {
                points: lot.amount,
                unit_value: value as u128 * bps as u128,
            }
        })
        .collect();
    let burn = points_to_burn(&offers, order.value_minor).ok_or_else(|| {
        let available: u128 = offers.iter().map(|o| o.points as u128 * o.unit_value).sum();
        TxError::InsufficientValue {
            available_minor: u64::try_from(available / VALUE_UNITS_PER_MINOR).unwrap_or(u64::MAX),
            requested_minor: order.value_minor,
        }
    })?;

    // The merchant's published minimum counts the points the order burns.
    let total = burn
        .iter()
        .try_fold(0u64, |a, n| a.checked_add(*n))
        .ok_or(TxError::Overflow)?;
    if total < redeemer.policy.min_redemption {
        return Err(TxError::BelowMinimumRedemption {
            minimum: redeemer.policy.min_redemption,
            requested: total,
        });
    }
    // Burn, book the issuers' redemptions and the merchant's claims.
    for (&i, &n) in offered.iter().zip(&burn) {
        if n == 0 {
            continue;
        }
        let lot = &mut account.lots[i];
        lot.amount -= n; // n <= lot.amount: points_to_burn takes at most the lot
        let issuer_id = lot.issuer.clone();
        let (value, bps) = terms(&issuer_id);
        let mut issuer = o
            .merchant(&issuer_id)
            .unwrap_or_else(|| unreachable!("state invariant: lot issuer {issuer_id} exists"));
        issuer.stats.redeemed += n; // <= issued: conservation invariant
        if issuer_id != *at {
            debug_assert_eq!(value, issuer.policy.point_value_minor);
            book_claim(o, at, &issuer, n, bps)?;
        }
        if issuer_id == *at {
            redeemer.stats.redeemed += n;
        } else {
            o.put_merchant(issuer);
        }
    }
    account.lots.retain(|l| l.amount > 0);
    o.put_account(*signer, account);
    redeemer.stats.redeemed_here = redeemer
        .stats
        .redeemed_here
        .checked_add(total)
        .ok_or(TxError::Overflow)?;
    o.put_merchant(redeemer);
    record_order(o, ctx, at, &order.order_ref);
    Ok(())
}

fn settlement_confirm(
    o: &mut Overlay,
    signer: &PublicKey,
    debtor: &MerchantId,
    amount: u64,
) -> Result<(), TxError> {
    // A suspended creditor may still confirm payments it received.
    let creditor = o.merchant_by_key(signer).ok_or(TxError::NotAMerchant)?;
    if o.merchant(debtor).is_none() {
        return Err(TxError::UnknownMerchant(debtor.clone()));
    }
    if creditor.id == *debtor {
        return Err(TxError::SelfSettlement);
    }
    positive(amount)?;
    let key = StateKey::Claim(creditor.id.clone(), debtor.clone());
    let mut claim = match o.get(&key).as_deref() {
        Some(StateValue::Claim(c)) => *c,
        _ => Claim::default(),
    };
    let outstanding = claim.outstanding_points();
    if amount > outstanding {
        return Err(TxError::SettlementExceedsClaim {
            debtor: debtor.clone(),
            outstanding,
            requested: amount,
        });
    }
    // Pro rata share of the outstanding value; the last confirmation clears it exactly.
    let value = if amount == outstanding {
        claim.outstanding_value_centiminor()
    } else {
        (claim.outstanding_value_centiminor() as u128 * amount as u128 / outstanding as u128) as u64
    };
    claim.confirmed_points += amount;
    claim.confirmed_value_centiminor += value;
    o.put(key, StateValue::Claim(claim));
    Ok(())
}

/// Active merchants, in id order: the validator set of the next height.
pub(crate) fn active_merchants(o: &Overlay) -> Vec<Merchant> {
    o.meta()
        .merchants
        .iter()
        .filter_map(|id| o.merchant(id))
        .filter(|m| m.status == MerchantStatus::Active)
        .collect()
}

/// Checks an action against the current state, without applying it.
fn check_action(o: &Overlay, action: &GovAction) -> Result<(), String> {
    match action {
        GovAction::AddMerchant {
            id,
            name,
            key,
            policy,
        } => {
            validate_name(name)?;
            policy.validate()?;
            key.verifying_key().map_err(|e| e.to_string())?;
            if o.merchant(id).is_some() {
                return Err(format!("merchant `{id}` already exists"));
            }
            if o.merchant_by_key(key).is_some() {
                return Err("key already belongs to a merchant".into());
            }
            if o.meta().merchants.len() >= MERCHANTS_MAX {
                return Err(format!(
                    "the alliance has the maximum of {MERCHANTS_MAX} merchants"
                ));
            }
        }
        GovAction::SuspendMerchant { id } => {
            let m = o
                .merchant(id)
                .ok_or_else(|| format!("unknown merchant `{id}`"))?;
            if m.status != MerchantStatus::Active {
                return Err(format!("merchant `{id}` is already suspended"));
            }
            if active_merchants(o).len() <= 1 {
                return Err("cannot suspend the last active merchant".into());
            }
        }
        GovAction::UpdatePolicy { id, policy } => {
            o.merchant(id)
                .ok_or_else(|| format!("unknown merchant `{id}`"))?;
            policy.validate()?;
        }
        GovAction::UpdateParams { params } => params.validate()?,
    }
    Ok(())
}

fn execute_action(o: &mut Overlay, ctx: BlockCtx, action: &GovAction) {
    match action {
        GovAction::AddMerchant {
            id,
            name,
            key,
            policy,
        } => {
            let m = Merchant {
                id: id.clone(),
                name: name.clone(),
                key: *key,
                policy: policy.clone(),
                status: MerchantStatus::Active,
                stats: Default::default(),
            };
            let mut meta = o.meta();
            let at = meta.merchants.partition_point(|x| x < id);
            meta.merchants.insert(at, id.clone());
            o.put(StateKey::Meta, StateValue::Meta(meta));
            o.put(
                StateKey::MerchantByKey(*key),
                StateValue::MerchantId(id.clone()),
            );
            o.put_merchant(m);
        }
        GovAction::SuspendMerchant { id } => {
            if let Some(mut m) = o.merchant(id) {
                m.status = MerchantStatus::Suspended;
                o.put_merchant(m);
            }
        }
        GovAction::UpdatePolicy { id, policy } => {
            if let Some(mut m) = o.merchant(id) {
                m.policy = policy.clone();
                o.put_merchant(m);
            }
        }
        GovAction::UpdateParams { params } => {
            if params.receipt_window_days > o.params().receipt_window_days {
                // Receipts before the current window may be pruned already:
                // a longer window starts where this one does and only then
                // grows, so none of them can be issued on again.
                let start = receipt_window_start(o, ctx.timestamp_ms);
                let mut meta = o.meta();
                if start > meta.receipt_floor_ms {
                    meta.receipt_floor_ms = start;
                    o.put(StateKey::Meta, StateValue::Meta(meta));
                }
            }
            o.put(StateKey::Params, StateValue::Params(params.clone()))
        }
    }
}

/// Counts votes of currently active merchants and decides: more than 2/3
/// of active merchants approving executes; enough rejections that 2/3 can no
/// longer be reached rejects.
fn tally(o: &mut Overlay, ctx: BlockCtx, mut p: Proposal) {
    let active: Vec<MerchantId> = active_merchants(o).into_iter().map(|m| m.id).collect();
    let n = active.len();
    let counted = p
        .votes
        .iter()
        .filter(|(id, _)| active.binary_search(id).is_ok());
    let (yes, no) = counted.fold(
        (0usize, 0usize),
        |(y, n), (_, a)| if *a { (y + 1, n) } else { (y, n + 1) },
    );
    if 3 * yes > 2 * n {
        p.status = match check_action(o, &p.action) {
            Ok(()) => {
                execute_action(o, ctx, &p.action);
                ProposalStatus::Executed(ctx.height)
            }
            Err(why) => ProposalStatus::Failed(ctx.height, why),
        };
    } else if 3 * (n - no) <= 2 * n {
        p.status = ProposalStatus::Rejected(ctx.height);
    }
    o.put(StateKey::Proposal(p.id), StateValue::Proposal(p));
}

fn propose(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    action: &GovAction,
    deadline_height: u64,
) -> Result<(), TxError> {
    let m = active_merchant(o, signer)?;
    let (min, max) = (
        ctx.height + 1,
        ctx.height.saturating_add(o.params().proposal_blocks_max),
    );
    if deadline_height < min || deadline_height > max {
        return Err(TxError::BadDeadline {
            min,
            max,
            got: deadline_height,
        });
    }
    check_action(o, action).map_err(TxError::InvalidProposal)?;
    let mut meta = o.meta();
    let id = meta.next_proposal_id;
    meta.next_proposal_id += 1;
    o.put(StateKey::Meta, StateValue::Meta(meta));
    let p = Proposal {
        id,
        proposer: m.id.clone(),
        action: action.clone(),
        created_height: ctx.height,
        deadline_height,
        votes: vec![(m.id, true)],
        status: ProposalStatus::Open,
    };
    tally(o, ctx, p);
    Ok(())
}

fn vote(
    o: &mut Overlay,
    ctx: BlockCtx,
    signer: &PublicKey,
    id: u64,
    approve: bool,
) -> Result<(), TxError> {
    let m = active_merchant(o, signer)?;
    let mut p = match o.get(&StateKey::Proposal(id)).as_deref() {
        Some(StateValue::Proposal(p)) => p.clone(),
        _ => return Err(TxError::UnknownProposal(id)),
    };
    if p.status != ProposalStatus::Open || ctx.height > p.deadline_height {
        return Err(TxError::ProposalClosed(id));
    }
    match p.votes.binary_search_by(|(v, _)| v.cmp(&m.id)) {
        Ok(_) => return Err(TxError::AlreadyVoted(id)),
        Err(at) => p.votes.insert(at, (m.id, approve)),
    }
    tally(o, ctx, p);
    Ok(())
}

/// Removes every lot whose expiry is at or before the block time and
/// records it as breakage of its issuer. Runs at the start of each block,
/// before any transaction, so expired points are never spendable.
pub(crate) fn sweep_expired(o: &mut Overlay, now_ms: u64) {
    for key in o.base_expiry_keys_until(now_ms) {
        let StateKey::Expiry(_, owner) = &key else {
            unreachable!("range holds only expiry keys")
        };
        let mut account = o.account(owner);
        let mut expired: Vec<Lot> = Vec::new();
        account.lots.retain(|l| match l.expiry_ms {
            Some(e) if e <= now_ms => {
                expired.push(l.clone());
                false
            }
            _ => true,
        });
        for lot in expired {
            let mut issuer = o.merchant(&lot.issuer).unwrap_or_else(|| {
                unreachable!("state invariant: lot issuer {} exists", lot.issuer)
            });
            issuer.stats.expired += lot.amount; // <= issued: conservation invariant
            o.put_merchant(issuer);
        }
        o.put_account(*owner, account);
        o.delete(key);
    }
    o.commit_tx();
}

/// Deletes used receipts that have left the receipt window (receipt time
/// before [`receipt_window_start`] at the block time), both their
/// `Receipt` and `ReceiptQueue` entries, oldest first; then likewise used
/// orders (`Order` and `OrderQueue`, by the redemption's block time). At
/// most `RECEIPT_PRUNES_PER_BLOCK_TX × block_txs_max` of each per block:
/// the rest stay queued and go at the next blocks. A late prune changes no
/// verdict: an issuance with such a receipt time is refused as outside the
/// window, and a reference whose recorded use is outside the window counts
/// as unused. Runs at the start of each block, after the expiry sweep.
pub(crate) fn prune_receipts(o: &mut Overlay, now_ms: u64) {
    let start = receipt_window_start(o, now_ms);
    let limit = RECEIPT_PRUNES_PER_BLOCK_TX * o.params().block_txs_max as usize;
    for key in o.base_queue_before(PruneQueue::Receipt, start, limit) {
        let StateKey::ReceiptQueue(_, merchant, receipt_ref) = &key else {
            unreachable!("the receipt queue holds only receipt queue keys")
        };
        o.delete(StateKey::Receipt(merchant.clone(), receipt_ref.clone()));
        o.delete(key);
    }
    for key in o.base_queue_before(PruneQueue::Order, start, limit) {
        let StateKey::OrderQueue(_, merchant, order_ref) = &key else {
            unreachable!("the order queue holds only order queue keys")
        };
        o.delete(StateKey::Order(merchant.clone(), order_ref.clone()));
        o.delete(key);
    }
    o.commit_tx();
}

/// What every block does before its first transaction: expire lots, then
/// prune receipts that have left the window.
pub(crate) fn begin_block(o: &mut Overlay, now_ms: u64) {
    sweep_expired(o, now_ms);
    prune_receipts(o, now_ms);
}
