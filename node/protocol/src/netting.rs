//! Multilateral netting: the fewest payments that settle every member's net
//! position (issue #15, settlement cycles).
//!
//! Each merchant's **position** is what it is owed minus what it owes, over
//! every pairwise claim (creditor: the redeeming merchant; debtor: the
//! issuer). Positions sum to zero. Instead of one payment per pair, members
//! settle with payments from those with a negative position to those with
//! a positive one, such that afterwards every position is zero; every
//! pairwise claim is then settled by the same payments, since what each
//! member pays or receives equals its net over all its pairs.
//!
//! **Fewest payments.** Settling a group of `m` members whose positions sum
//! to zero takes at least `m - 1` payments, and `m - 1` suffice. So the
//! fewest payments for `n` members with non-zero positions is `n - k`, where
//! `k` is the largest number of disjoint groups, each summing to zero, that
//! the members can be split into. Finding `k` is NP-hard in general
//! (it contains subset sum); for up to [`EXACT_MEMBERS_MAX`] members with a
//! non-zero position this module finds it exactly (a dynamic programme
//! over subsets, at most 2^16 × 16 steps), and beyond that it settles the
//! whole set as one group (`n - 1` payments, the classic greedy bound).
//!
//! **Determinism.** The result depends only on the positions, never on the
//! order they are given in or on the platform: ties are broken by member
//! order (`Ord`). A node, the CLI and an auditor computing a statement from
//! the same chain get the same payments.

use std::collections::BTreeMap;

/// Members with a non-zero position up to which the fewest payments are
/// found exactly (2^16 subsets); above it, `n - 1` payments.
pub const EXACT_MEMBERS_MAX: usize = 16;

/// One payment of a netting: `from` pays `to` `amount` (the unit of the
/// positions, e.g. hundredths of a minor currency unit).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Payment<P> {
    /// The member that pays (its position was negative).
    pub from: P,
    /// The member that is paid (its position was positive).
    pub to: P,
    /// How much; always positive.
    pub amount: u128,
}

/// Why positions cannot be netted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NettingError {
    /// What members are owed and what they owe differ: the positions do not
    /// come from a closed set of claims.
    #[error("positions sum to {0}, not zero: they are not the positions of one set of claims")]
    Unbalanced(i128),
}

/// Each member's position (owed to it minus owed by it) from pairwise debts
/// `(debtor, creditor, amount)`. Members whose position is zero are kept
/// (with zero) when they appear in a debt.
pub fn positions<P: Ord + Clone>(debts: &[(P, P, i128)]) -> BTreeMap<P, i128> {
    let mut out: BTreeMap<P, i128> = BTreeMap::new();
    for (debtor, creditor, amount) in debts {
        *out.entry(debtor.clone()).or_default() -= amount;
        *out.entry(creditor.clone()).or_default() += amount;
    }
    out
}

/// The fewest payments (see the module documentation) that bring every
/// position to zero, in a canonical order (sorted by payer, payee, amount).
pub fn settle<P: Ord + Clone>(
    positions: &BTreeMap<P, i128>,
) -> Result<Vec<Payment<P>>, NettingError> {
    let sum: i128 = positions.values().sum();
    if sum != 0 {
        return Err(NettingError::Unbalanced(sum));
    }
    let members: Vec<(&P, i128)> = positions
        .iter()
        .filter(|(_, v)| **v != 0)
        .map(|(p, v)| (p, *v))
        .collect();
    let groups = if members.len() <= EXACT_MEMBERS_MAX {
        zero_sum_groups(&members.iter().map(|(_, v)| *v).collect::<Vec<_>>())
    } else {
        vec![(0..members.len()).collect()]
    };
    let mut payments = Vec::new();
    for group in groups {
        let part: Vec<(&P, i128)> = group.iter().map(|&i| members[i]).collect();
        payments.extend(settle_group(&part));
    }
    payments.sort();
    Ok(payments)
}

/// Splits `values` (non-zero, summing to zero) into the largest number of
/// disjoint groups that each sum to zero; indices into `values`, each group
/// ascending, groups in order of their smallest index.
fn zero_sum_groups(values: &[i128]) -> Vec<Vec<usize>> {
    let n = values.len();
    assert!(n <= EXACT_MEMBERS_MAX, "exact netting is for small sets");
    let full = (1usize << n) - 1;
    // sums[mask]: the sum of the values in `mask`.
    let mut sums = vec![0i128; 1 << n];
    for mask in 1..=full {
        let low = mask.trailing_zeros() as usize;
        sums[mask] = sums[mask & (mask - 1)] + values[low];
    }
    // best[mask]: the most zero-sum groups that the members of `mask` can be
    // split into, counting a last group that does not sum to zero as none.
    // Removing members one at a time in the best order, a group closes each
    // time the remaining set sums to zero.
    let mut best = vec![0u8; 1 << n];
    for mask in 1..=full {
        let mut b = 0u8;
        let mut rest = mask;
        while rest != 0 {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            b = b.max(best[mask & !(1 << i)]);
        }
        best[mask] = b + u8::from(sums[mask] == 0);
    }
    // Walk back from the full set: drop a member that keeps the best count
    // (the lowest such, for determinism); a group ends each time the
    // remaining set sums to zero.
    let mut groups = Vec::new();
    let mut current = Vec::new();
    let mut mask = full;
    while mask != 0 {
        let closes = u8::from(sums[mask] == 0);
        let mut rest = mask;
        let i = loop {
            let i = rest.trailing_zeros() as usize;
            rest &= rest - 1;
            if best[mask & !(1 << i)] + closes == best[mask] {
                break i;
            }
        };
        current.push(i);
        mask &= !(1 << i);
        if sums[mask] == 0 {
            current.sort_unstable();
            groups.push(std::mem::take(&mut current));
        }
    }
    debug_assert!(current.is_empty(), "the full set sums to zero");
    groups.sort();
    groups
}

/// Settles one group whose positions sum to zero with at most `m - 1`
/// payments: the member that owes most pays the member owed most, the
/// smaller of the two amounts, until all are zero (ties: member order).
fn settle_group<P: Ord + Clone>(group: &[(&P, i128)]) -> Vec<Payment<P>> {
    let mut left: Vec<(&P, i128)> = group.to_vec();
    let mut out = Vec::new();
    loop {
        let debtor = left
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| *v < 0)
            .min_by(|(_, (pa, va)), (_, (pb, vb))| va.cmp(vb).then(pa.cmp(pb)))
            .map(|(i, _)| i);
        let creditor = left
            .iter()
            .enumerate()
            .filter(|(_, (_, v))| *v > 0)
            .max_by(|(_, (pa, va)), (_, (pb, vb))| va.cmp(vb).then(pb.cmp(pa)))
            .map(|(i, _)| i);
        let (Some(d), Some(c)) = (debtor, creditor) else {
            break;
        };
        let amount = (-left[d].1).min(left[c].1);
        left[d].1 += amount;
        left[c].1 -= amount;
        out.push(Payment {
            from: left[d].0.clone(),
            to: left[c].0.clone(),
            amount: amount as u128,
        });
    }
    assert!(
        left.iter().all(|(_, v)| *v == 0),
        "a group that sums to zero settles completely"
    );
    assert!(
        out.len() < group.len().max(1),
        "m - 1 payments at most for a group of m"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply(positions: &BTreeMap<u8, i128>, payments: &[Payment<u8>]) -> BTreeMap<u8, i128> {
        let mut left = positions.clone();
        for p in payments {
            *left.get_mut(&p.from).expect("payer is a member") += p.amount as i128;
            *left.get_mut(&p.to).expect("payee is a member") -= p.amount as i128;
        }
        left
    }

    /// The fewest payments by brute force: `n - k` for the largest number
    /// `k` of zero-sum groups over every assignment of members to groups.
    fn fewest_by_brute_force(values: &[i128]) -> usize {
        let n = values.len();
        if n == 0 {
            return 0;
        }
        let mut best_groups = 1;
        // Assign each member a group label below n (restricted growth
        // strings would be tighter; n is small here).
        let mut labels = vec![0usize; n];
        loop {
            let groups = labels.iter().max().unwrap() + 1;
            let mut sums = vec![0i128; groups];
            for (l, v) in labels.iter().zip(values) {
                sums[*l] += v;
            }
            let used: Vec<bool> = (0..groups).map(|g| labels.contains(&g)).collect();
            if sums.iter().zip(&used).all(|(s, u)| !u || *s == 0) {
                best_groups = best_groups.max(used.iter().filter(|u| **u).count());
            }
            // Next assignment.
            let mut i = 0;
            loop {
                if i == n {
                    return n - best_groups;
                }
                labels[i] += 1;
                if labels[i] < n {
                    break;
                }
                labels[i] = 0;
                i += 1;
            }
        }
    }

    /// Positions that sum to zero: from random debts among `members`.
    fn balanced(members: u8, debts: usize) -> impl Strategy<Value = BTreeMap<u8, i128>> {
        proptest::collection::vec((0..members, 0..members, 1i128..1_000), 0..debts)
            .prop_map(|d| positions(&d))
    }

    proptest! {
        /// Every position ends at zero; only those who owe pay, only those
        /// owed are paid, and never more than `n - 1` payments.
        #[test]
        fn payments_settle_every_member(pos in balanced(30, 60)) {
            let payments = settle(&pos).unwrap();
            prop_assert!(apply(&pos, &payments).values().all(|v| *v == 0));
            for p in &payments {
                prop_assert!(p.amount > 0);
                prop_assert!(pos[&p.from] < 0, "payer {} was owed", p.from);
                prop_assert!(pos[&p.to] > 0, "payee {} owed", p.to);
            }
            let paid: u128 = payments.iter().map(|p| p.amount).sum();
            let owed: i128 = pos.values().filter(|v| **v > 0).sum();
            prop_assert_eq!(paid as i128, owed, "payments sum to what is owed");
            let nonzero = pos.values().filter(|v| **v != 0).count();
            prop_assert!(payments.len() <= nonzero.saturating_sub(1));
        }
    }

    proptest! {
        // The brute force tries up to 6^6 assignments per case.
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// For small sets the count is the true minimum (brute force).
        #[test]
        fn fewest_payments_for_small_sets(
            values in proptest::collection::vec(-6i128..=6, 1..6)
        ) {
            let mut values: Vec<i128> = values.into_iter().filter(|v| *v != 0).collect();
            let sum: i128 = values.iter().sum();
            if sum != 0 {
                values.push(-sum);
            }
            let pos: BTreeMap<u8, i128> =
                values.iter().enumerate().map(|(i, v)| (i as u8, *v)).collect();
            let payments = settle(&pos).unwrap();
            prop_assert!(apply(&pos, &payments).values().all(|v| *v == 0));
            prop_assert_eq!(payments.len(), fewest_by_brute_force(&values));
        }
    }

    proptest! {
        /// The same positions, however they were gathered, give the same
        /// payments.
        #[test]
        fn payments_depend_only_on_positions(
            debts in proptest::collection::vec((0u8..8, 0u8..8, 1i128..100), 0..20)
        ) {
            let mut reversed = debts.clone();
            reversed.reverse();
            prop_assert_eq!(
                settle(&positions(&debts)).unwrap(),
                settle(&positions(&reversed)).unwrap()
            );
        }
    }

    #[test]
    fn two_pairs_settle_apart() {
        // a owes b 5, c owes d 7: two payments, not three.
        let pos = positions(&[('a', 'b', 5), ('c', 'd', 7)]);
        assert_eq!(
            settle(&pos).unwrap(),
            vec![
                Payment {
                    from: 'a',
                    to: 'b',
                    amount: 5
                },
                Payment {
                    from: 'c',
                    to: 'd',
                    amount: 7
                },
            ]
        );
    }

    #[test]
    fn a_cycle_nets_to_nothing() {
        let pos = positions(&[
            ("coffee", "books", 100),
            ("books", "cinema", 100),
            ("cinema", "coffee", 100),
        ]);
        assert_eq!(settle(&pos).unwrap(), vec![]);
    }

    #[test]
    fn unbalanced_positions_are_refused() {
        let pos: BTreeMap<&str, i128> = [("a", 5), ("b", -4)].into_iter().collect();
        assert_eq!(settle(&pos), Err(NettingError::Unbalanced(1)));
    }

    #[test]
    fn large_sets_settle_with_at_most_n_minus_one_payments() {
        let pos: BTreeMap<u16, i128> = (0..40u16)
            .map(|i| (i, if i % 2 == 0 { 3 } else { -3 }))
            .collect();
        let payments = settle(&pos).unwrap();
        assert!(payments.len() <= 39);
        assert_eq!(payments.iter().map(|p| p.amount).sum::<u128>(), 60);
    }
}
