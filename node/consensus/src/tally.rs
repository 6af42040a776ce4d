//! Votes received in one view: one per (signer, kind), counted per block,
//! with equivocation detected on the way in.

use std::collections::BTreeMap;

use alliance_protocol::certificate::Equivocation;
use alliance_protocol::{Certificate, Hash32, PublicKey, SignedVote, VoteData, VoteKind};

/// What adding a (signature-checked) vote did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// Counted.
    New,
    /// The same vote was already counted.
    Duplicate,
    /// Conflicts with a vote of the same signer: the evidence, and whether
    /// the new vote was counted anyway (a finalize next to a nullify is
    /// counted, each being the signer's only vote of its kind; a second
    /// notarize or finalize is not).
    Conflict(Box<Equivocation>, bool),
}

/// Votes of one view.
#[derive(Debug, Clone, Default)]
pub struct Tally {
    notarize: BTreeMap<PublicKey, SignedVote>,
    nullify: BTreeMap<PublicKey, SignedVote>,
    finalize: BTreeMap<PublicKey, SignedVote>,
}

impl Tally {
    fn map(&self, kind: VoteKind) -> &BTreeMap<PublicKey, SignedVote> {
        match kind {
            VoteKind::Notarize => &self.notarize,
            VoteKind::Nullify => &self.nullify,
            VoteKind::Finalize => &self.finalize,
        }
    }

    /// Whether exactly this vote data from this signer is already counted
    /// (checked before spending a signature verification on it).
    pub fn contains(&self, vote: &SignedVote) -> bool {
        self.map(vote.data.kind)
            .get(&vote.signer)
            .is_some_and(|v| v.data == vote.data)
    }

    /// Adds a vote whose signature has been checked.
    pub fn add(&mut self, vote: SignedVote) -> Added {
        let kind = vote.data.kind;
        if let Some(prev) = self.map(kind).get(&vote.signer) {
            if prev.data == vote.data {
                return Added::Duplicate;
            }
            let ev = Equivocation {
                first: prev.clone(),
                second: vote,
            };
            return Added::Conflict(Box::new(ev), false);
        }
        let opposite = match kind {
            VoteKind::Nullify => self.finalize.get(&vote.signer),
            VoteKind::Finalize => self.nullify.get(&vote.signer),
            VoteKind::Notarize => None,
        };
        let evidence = opposite.map(|prev| Equivocation {
            first: prev.clone(),
            second: vote.clone(),
        });
        let map = match kind {
            VoteKind::Notarize => &mut self.notarize,
            VoteKind::Nullify => &mut self.nullify,
            VoteKind::Finalize => &mut self.finalize,
        };
        map.insert(vote.signer, vote);
        match evidence {
            Some(ev) => Added::Conflict(Box::new(ev), true),
            None => Added::New,
        }
    }

    /// Votes of `kind` for `block_hash` (the zero hash for nullify).
    pub fn count(&self, kind: VoteKind, block_hash: &Hash32) -> usize {
        self.map(kind)
            .values()
            .filter(|v| &v.data.block_hash == block_hash)
            .count()
    }

    /// The data of every counted vote.
    pub fn all_data(&self) -> Vec<VoteData> {
        self.notarize
            .values()
            .chain(self.nullify.values())
            .chain(self.finalize.values())
            .map(|v| v.data)
            .collect()
    }

    /// A certificate from the votes of `kind` for `block_hash` (all of them,
    /// call once [`Tally::count`] reaches the quorum). `None` if there are
    /// none.
    pub fn certificate(&self, kind: VoteKind, block_hash: &Hash32) -> Option<Certificate> {
        let votes: Vec<&SignedVote> = self
            .map(kind)
            .values()
            .filter(|v| &v.data.block_hash == block_hash)
            .collect();
        let data = votes.first()?.data;
        Some(Certificate::from_votes(
            kind,
            data.view,
            data.height,
            data.block_hash,
            votes.iter().map(|v| (v.signer, v.signature)),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alliance_protocol::Keypair;

    fn vote(who: &str, kind: VoteKind, h: u8) -> SignedVote {
        let (height, block_hash) = if kind == VoteKind::Nullify {
            (0, Hash32::ZERO)
        } else {
            (1, Hash32([h; 32]))
        };
        VoteData {
            kind,
            view: 4,
            height,
            block_hash,
        }
        .sign(
            &alliance_protocol::VoteDomain::new("c", &voters()),
            &Keypair::from_label(who),
        )
    }

    /// The one-validator set whose votes `vote` signs.
    fn voters() -> alliance_protocol::ValidatorSet {
        alliance_protocol::ValidatorSet::new(vec![alliance_protocol::Validator {
            id: alliance_protocol::MerchantId::new("a").unwrap(),
            key: Keypair::from_label("a").public(),
        }])
        .unwrap()
    }

    #[test]
    fn counts_per_block_and_ignores_duplicates() {
        let mut t = Tally::default();
        assert_eq!(t.add(vote("a", VoteKind::Notarize, 1)), Added::New);
        assert_eq!(t.add(vote("a", VoteKind::Notarize, 1)), Added::Duplicate);
        assert_eq!(t.add(vote("b", VoteKind::Notarize, 1)), Added::New);
        assert_eq!(t.add(vote("c", VoteKind::Notarize, 2)), Added::New);
        assert_eq!(t.count(VoteKind::Notarize, &Hash32([1; 32])), 2);
        assert_eq!(t.count(VoteKind::Notarize, &Hash32([2; 32])), 1);
        let cert = t.certificate(VoteKind::Notarize, &Hash32([1; 32])).unwrap();
        assert_eq!(cert.votes.len(), 2);
        assert_eq!((cert.view, cert.height), (4, 1));
    }

    #[test]
    fn conflicting_notarize_is_evidence_and_not_counted() {
        let mut t = Tally::default();
        t.add(vote("a", VoteKind::Notarize, 1));
        match t.add(vote("a", VoteKind::Notarize, 2)) {
            Added::Conflict(ev, counted) => {
                assert!(!counted);
                assert!(ev.verify("c", &voters()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(t.count(VoteKind::Notarize, &Hash32([2; 32])), 0);
    }

    #[test]
    fn nullify_and_finalize_conflict_but_both_count() {
        let mut t = Tally::default();
        assert_eq!(t.add(vote("a", VoteKind::Nullify, 0)), Added::New);
        assert!(matches!(
            t.add(vote("a", VoteKind::Finalize, 1)),
            Added::Conflict(_, true)
        ));
        assert_eq!(t.count(VoteKind::Finalize, &Hash32([1; 32])), 1);
        // Notarize next to nullify is legitimate.
        assert_eq!(t.add(vote("a", VoteKind::Notarize, 1)), Added::New);
    }
}
