//! A copy-on-write view of the state used while executing one block: reads
//! fall through transaction writes, then block writes, then the committed
//! map. A rejected transaction's writes are dropped whole, so a rejection
//! changes nothing.

use std::borrow::Cow;
use std::collections::BTreeMap;

use super::keys::{Account, Meta, StateKey, StateValue};
use super::source::Backing;
use crate::crypto::PublicKey;
use crate::merchant::{AllianceParams, Merchant, MerchantId};
use crate::redemption::Acceptance;

/// Writes of a block: `None` deletes the entry.
pub type ChangeSet = BTreeMap<StateKey, Option<StateValue>>;

/// Committed entries read ahead of execution (see
/// [`super::LedgerState`]'s prefetch): `None` for an absent entry.
pub(crate) type Prefetched = std::collections::HashMap<StateKey, Option<StateValue>>;

pub(crate) struct Overlay<'a> {
    base: &'a Backing,
    prefetched: Option<&'a Prefetched>,
    block: ChangeSet,
    tx: ChangeSet,
}

impl<'a> Overlay<'a> {
    pub(crate) fn new(base: &'a Backing) -> Self {
        Overlay::with_prefetched(base, None)
    }

    /// An overlay whose base reads look in `prefetched` first.
    pub(crate) fn with_prefetched(base: &'a Backing, prefetched: Option<&'a Prefetched>) -> Self {
        Overlay {
            base,
            prefetched,
            block: ChangeSet::new(),
            tx: ChangeSet::new(),
        }
    }

    pub(crate) fn get(&self, key: &StateKey) -> Option<Cow<'_, StateValue>> {
        if let Some(v) = self.tx.get(key) {
            return v.as_ref().map(Cow::Borrowed);
        }
        if let Some(v) = self.block.get(key) {
            return v.as_ref().map(Cow::Borrowed);
        }
        if let Some(v) = self.prefetched.and_then(|p| p.get(key)) {
            return v.as_ref().map(Cow::Borrowed);
        }
        self.base.get(key)
    }

    pub(crate) fn put(&mut self, key: StateKey, value: StateValue) {
        self.tx.insert(key, Some(value));
    }

    pub(crate) fn delete(&mut self, key: StateKey) {
        self.tx.insert(key, None);
    }

    /// Keeps the current transaction's writes.
    pub(crate) fn commit_tx(&mut self) {
        let tx = std::mem::take(&mut self.tx);
        self.block.extend(tx);
    }

    /// Drops the current transaction's writes.
    pub(crate) fn rollback_tx(&mut self) {
        self.tx.clear();
    }

    /// Committed expiry-queue keys with a time at or before `until_ms`, in
    /// key order. Used only for the expiry sweep, which runs before any
    /// transaction.
    pub(crate) fn base_expiry_keys_until(&self, until_ms: u64) -> Vec<StateKey> {
        self.base.expiry_keys_until(until_ms)
    }

    /// The first `limit` committed entries of a prune queue with a time
    /// before `before_ms`, in key order (time, merchant, reference). Used
    /// only by pruning, which runs before any transaction and touches no
    /// entry of the queue before it.
    pub(crate) fn base_queue_before(
        &self,
        queue: super::source::PruneQueue,
        before_ms: u64,
        limit: usize,
    ) -> Vec<StateKey> {
        self.base.queue_before(queue, before_ms, limit)
    }

    pub(crate) fn into_changes(mut self) -> ChangeSet {
        self.commit_tx();
        self.block
    }

    // ---- typed access ------------------------------------------------------

    pub(crate) fn params(&self) -> AllianceParams {
        match self.get(&StateKey::Params).as_deref() {
            Some(StateValue::Params(p)) => p.clone(),
            other => unreachable!("state invariant: params present, found {other:?}"),
        }
    }

    pub(crate) fn meta(&self) -> Meta {
        match self.get(&StateKey::Meta).as_deref() {
            Some(StateValue::Meta(m)) => m.clone(),
            other => unreachable!("state invariant: meta present, found {other:?}"),
        }
    }

    pub(crate) fn merchant(&self, id: &MerchantId) -> Option<Merchant> {
        match self.get(&StateKey::Merchant(id.clone())).as_deref() {
            Some(StateValue::Merchant(m)) => Some(m.clone()),
            None => None,
            other => unreachable!("state invariant: merchant entry, found {other:?}"),
        }
    }

    pub(crate) fn merchant_by_key(&self, key: &PublicKey) -> Option<Merchant> {
        match self.get(&StateKey::MerchantByKey(*key)).as_deref() {
            Some(StateValue::MerchantId(id)) => self.merchant(&id.clone()),
            None => None,
            other => unreachable!("state invariant: merchant key entry, found {other:?}"),
        }
    }

    pub(crate) fn put_merchant(&mut self, m: Merchant) {
        self.put(StateKey::Merchant(m.id.clone()), StateValue::Merchant(m));
    }

    pub(crate) fn account(&self, key: &PublicKey) -> Account {
        match self.get(&StateKey::Account(*key)).as_deref() {
            Some(StateValue::Account(a)) => a.clone(),
            None => Account::default(),
            other => unreachable!("state invariant: account entry, found {other:?}"),
        }
    }

    /// A merchant's acceptance policy (the default when it set none).
    pub(crate) fn acceptance(&self, merchant: &MerchantId) -> Acceptance {
        match self.get(&StateKey::Acceptance(merchant.clone())).as_deref() {
            Some(StateValue::Acceptance(a)) => a.clone(),
            None => Acceptance::default(),
            other => unreachable!("state invariant: acceptance entry, found {other:?}"),
        }
    }

    pub(crate) fn put_account(&mut self, key: PublicKey, account: Account) {
        if account.is_empty() {
            self.delete(StateKey::Account(key));
        } else {
            self.put(StateKey::Account(key), StateValue::Account(account));
        }
    }
}
