//! Equivocation evidence this node has seen: two conflicting votes signed
//! by one validator in one view (see
//! [`alliance_protocol::certificate::Equivocation`]). Kept so that an
//! operator, an auditor or a future slashing rule can act on it after a
//! restart; anyone holding the validator set can re-check each record.
//!
//! Key `e` + view (u64 BE) + signer key: at most one record per accused
//! validator and view (what the consensus core reports), newest views last,
//! and at most [`EVIDENCE_STORED_MAX`] records (the oldest views go first),
//! so a misbehaving validator cannot grow the store without bound. Written
//! without fsync: evidence is not needed for safety, and the next block
//! commit makes it durable.

use alliance_protocol::certificate::Equivocation;
use alliance_protocol::encoding;

use super::kv::scan_prefix;
use super::{decode, Store, StoreError};

/// Key prefix of evidence records.
const EVIDENCE: u8 = b'e';
/// Records kept at most.
pub const EVIDENCE_STORED_MAX: usize = 4_096;

fn evidence_key(ev: &Equivocation) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + 8 + 32);
    k.push(EVIDENCE);
    k.extend_from_slice(&ev.first.data.view.to_be_bytes());
    k.extend_from_slice(&ev.signer().0);
    k
}

impl Store {
    /// Records equivocation evidence; `false` when this signer's evidence
    /// for this view is already stored.
    pub fn record_evidence(&self, ev: &Equivocation) -> Result<bool, StoreError> {
        let k = evidence_key(ev);
        if self.db.get(&k)?.is_some() {
            return Ok(false);
        }
        self.db.insert(k, encoding::encode(ev))?;
        if scan_prefix(self.db.as_ref(), &[EVIDENCE])
            .nth(EVIDENCE_STORED_MAX)
            .is_some()
        {
            if let Some(oldest) = scan_prefix(self.db.as_ref(), &[EVIDENCE]).next() {
                self.db.remove(oldest?.0)?;
            }
        }
        Ok(true)
    }

    /// Stored evidence, newest view first, at most `limit` records.
    pub fn evidence(&self, limit: usize) -> Result<Vec<Equivocation>, StoreError> {
        let mut out = Vec::new();
        let end = [EVIDENCE + 1];
        for item in self.db.range(&[EVIDENCE], &end, true).take(limit) {
            out.push(decode(&item?.1, "evidence")?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::fixtures::demo_genesis;
    use alliance_protocol::{Hash32, Keypair, VoteData, VoteDomain, VoteKind};

    fn equivocation(domain: &VoteDomain, key: &Keypair, view: u64) -> Equivocation {
        let vote = |b: u8| {
            VoteData {
                kind: VoteKind::Notarize,
                view,
                height: 1,
                block_hash: Hash32([b; 32]),
            }
            .sign(domain, key)
        };
        Equivocation {
            first: vote(1),
            second: vote(2),
        }
    }

    #[test]
    fn evidence_persists_once_per_signer_and_view_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let (genesis, keys) = demo_genesis("ev-test", 4, 1_700_000_000_000);
        {
            let (store, state) = Store::open(dir.path(), &genesis).unwrap();
            let domain = VoteDomain::new("ev-test", &state.validator_set());
            for view in [5u64, 9, 7] {
                assert!(store
                    .record_evidence(&equivocation(&domain, &keys[1], view))
                    .unwrap());
            }
            assert!(!store
                .record_evidence(&equivocation(&domain, &keys[1], 9))
                .unwrap());
            assert!(store
                .record_evidence(&equivocation(&domain, &keys[2], 9))
                .unwrap());
            store.raw_db().flush().unwrap();
        }
        let (store, state) = Store::open(dir.path(), &genesis).unwrap();
        let all = store.evidence(100).unwrap();
        let views: Vec<u64> = all.iter().map(|e| e.first.data.view).collect();
        assert_eq!(views, vec![9, 9, 7, 5], "durable, newest view first");
        assert!(all
            .iter()
            .all(|e| e.verify("ev-test", &state.validator_set())));
        assert_eq!(store.evidence(2).unwrap().len(), 2);
    }
}
