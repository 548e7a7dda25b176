//! The fork-choice rule: which child of a fork point the effective chain
//! follows. A pure function of the branches' facts, so every node that holds
//! the same entries picks the same chain.
//!
//! A *branch* is the whole subtree under one child of the fork point `P`. Only
//! the keys that were admins at `P` (`A_P`, the admins both branches share)
//! carry weight: admins added inside a branch cannot vote for it.
//!
//! 1. **Revocation dominates.** Branch `X` dominates branch `Y` when `X`
//!    removes (revokes, demotes, or rotates away from the root) a key that
//!    signed an entry anywhere in `Y`, the remover is in `A_P`, and `Y` does
//!    not itself remove that remover by a key in `A_P`. A removed admin
//!    therefore cannot keep its power by forking, from any earlier position.
//! 2. Among the branches no other branch dominates (all of them if every one
//!    is dominated), prefer the one the root key at `P` signed in,
//! 3. then the one more keys of `A_P` signed in,
//! 4. then the one whose first entry has the lowest hash.

use std::collections::{HashMap, HashSet};

use super::entry::{EntryHash, PublicKey};

/// What fork resolution knows of the state at a fork point.
#[derive(Debug, Clone)]
pub(crate) struct Basis {
    /// Admins valid at the fork point (root included).
    pub(crate) admins: HashSet<PublicKey>,
    /// The root key at the fork point.
    pub(crate) root: PublicKey,
}

/// The facts of one branch that the rule reads.
pub(crate) trait Branch {
    /// Distinct keys that signed an entry in the branch.
    fn signers(&self) -> Vec<PublicKey>;
    /// Whether `key` signed an entry in the branch.
    fn signed(&self, key: &PublicKey) -> bool;
    /// Keys that removed `key` in the branch (see `rules::removal`).
    fn removers(&self, key: &PublicKey) -> Vec<PublicKey>;
}

/// The facts of a branch gathered entry by entry.
#[derive(Debug, Default)]
pub(crate) struct Facts {
    signers: HashSet<PublicKey>,
    removals: HashMap<PublicKey, Vec<PublicKey>>,
}

impl Facts {
    pub(crate) fn add(&mut self, signer: PublicKey, removal: Option<(PublicKey, PublicKey)>) {
        self.signers.insert(signer);
        if let Some((removed, remover)) = removal {
            self.removals.entry(removed).or_default().push(remover);
        }
    }
}

impl Branch for Facts {
    fn signers(&self) -> Vec<PublicKey> {
        self.signers.iter().copied().collect()
    }

    fn signed(&self, key: &PublicKey) -> bool {
        self.signers.contains(key)
    }

    fn removers(&self, key: &PublicKey) -> Vec<PublicKey> {
        self.removals.get(key).cloned().unwrap_or_default()
    }
}

/// Whether branch `x` dominates branch `y` at a fork point with `basis`.
pub(crate) fn dominates(x: &dyn Branch, y: &dyn Branch, basis: &Basis) -> bool {
    let removed_in_y = |r: &PublicKey| y.removers(r).iter().any(|r2| basis.admins.contains(r2));
    y.signers().iter().any(|k| {
        x.removers(k)
            .iter()
            .any(|r| basis.admins.contains(r) && !removed_in_y(r))
    })
}

/// The index of the branch the effective chain follows. `branches` pairs each
/// branch's first entry hash with its facts.
pub(crate) fn choose(branches: &[(EntryHash, &dyn Branch)], basis: &Basis) -> usize {
    let n = branches.len();
    let dominated: Vec<bool> = (0..n)
        .map(|j| (0..n).any(|i| i != j && dominates(branches[i].1, branches[j].1, basis)))
        .collect();
    let all_dominated = dominated.iter().all(|d| *d);
    let rank = |i: usize| {
        let (hash, branch) = &branches[i];
        let weight = basis.admins.iter().filter(|a| branch.signed(a)).count();
        (
            all_dominated || !dominated[i],
            branch.signed(&basis.root),
            weight,
            std::cmp::Reverse(*hash),
        )
    };
    (0..n).max_by_key(|i| rank(*i)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(n: u8) -> PublicKey {
        [n; 32]
    }

    fn basis(admins: &[u8], root: u8) -> Basis {
        Basis {
            admins: admins.iter().map(|n| k(*n)).collect(),
            root: k(root),
        }
    }

    fn facts(entries: &[(u8, Option<(u8, u8)>)]) -> Facts {
        let mut f = Facts::default();
        for (s, rm) in entries {
            f.add(k(*s), rm.map(|(a, b)| (k(a), k(b))));
        }
        f
    }

    #[test]
    fn a_branch_revoking_a_signer_of_the_other_wins_whatever_its_hash() {
        let b = basis(&[1, 2, 3], 1);
        // X: admin 2 revokes admin 3. Y: admin 3 adds a member.
        let x = facts(&[(2, Some((3, 2)))]);
        let y = facts(&[(3, None)]);
        assert!(dominates(&x, &y, &b));
        assert!(!dominates(&y, &x, &b));
        for (hx, hy) in [([0; 32], [1; 32]), ([1; 32], [0; 32])] {
            assert_eq!(choose(&[(hx, &x), (hy, &y)], &b), 0);
            assert_eq!(choose(&[(hy, &y), (hx, &x)], &b), 1);
        }
    }

    #[test]
    fn a_counter_revocation_by_the_revoked_key_cancels_dominance_then_weight_decides() {
        let b = basis(&[1, 2, 3, 4], 1);
        // X: 2 revokes 3, and 4 also signs there. Y: 3 revokes 2.
        let x = facts(&[(2, Some((3, 2))), (4, None)]);
        let y = facts(&[(3, Some((2, 3)))]);
        assert!(!dominates(&x, &y, &b));
        assert!(!dominates(&y, &x, &b));
        assert_eq!(choose(&[([0; 32], &y), ([9; 32], &x)], &b), 1);
    }

    #[test]
    fn admins_added_inside_a_branch_have_no_weight() {
        let b = basis(&[1, 2, 3], 1);
        // Y: 3 revokes 2 through a sock puppet 9 it made admin in Y.
        let x = facts(&[(2, Some((3, 2)))]);
        let y = facts(&[(3, None), (9, Some((2, 9)))]);
        assert!(dominates(&x, &y, &b));
        assert!(!dominates(&y, &x, &b));
    }

    #[test]
    fn the_root_outranks_other_admins_then_the_lowest_hash_wins() {
        let b = basis(&[1, 2, 3], 1);
        let x = facts(&[(1, None)]);
        let y = facts(&[(2, None), (3, None)]);
        assert_eq!(choose(&[([9; 32], &x), ([0; 32], &y)], &b), 0);
        let z = facts(&[(2, None)]);
        let w = facts(&[(3, None)]);
        assert_eq!(choose(&[([9; 32], &z), ([3; 32], &w)], &b), 1);
    }
}
