//! What a ring says about its keyring now: the members valid at an instant,
//! the root, revoked and refused keys, and the forks it has seen.

use std::collections::{BTreeMap, HashSet};

use super::entry::{EntryHash, Op, PublicKey};
use super::ring::Ring;
use super::rules::{alive, Slot, Value, View};

/// One member valid at the summary's instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberView {
    /// The member's key.
    pub key: PublicKey,
    /// Roles; admins carry the extra role `admin`.
    pub roles: Vec<String>,
    /// Unix ms from which the key is no longer valid; 0 = never.
    pub expires_at_ms: u64,
    /// Whether the key may sign entries now.
    pub admin: bool,
}

/// A fork point the ring holds: the parent and its children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkView {
    /// Depth of the fork point.
    pub seq: u64,
    /// Its hash.
    pub parent: EntryHash,
    /// The first entry of each branch, sorted.
    pub branches: Vec<EntryHash>,
    /// The branch the effective chain follows, if the fork point is on it.
    pub chosen: Option<EntryHash>,
}

/// A ring's state: a pure function of the entries it holds (and the instant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The keyring id (genesis root key).
    pub keyring_id: PublicKey,
    /// The keyring's name.
    pub name: String,
    /// The current root key.
    pub root: PublicKey,
    /// Hash of the effective chain's last entry.
    pub head: EntryHash,
    /// Entries on the effective chain.
    pub length: u64,
    /// Members valid at the instant, sorted by key.
    pub members: Vec<MemberView>,
    /// Keys revoked on the effective chain or refused because a known branch
    /// revokes them, sorted.
    pub revoked: Vec<PublicKey>,
    /// Fork points, by depth.
    pub forks: Vec<ForkView>,
}

impl Ring {
    /// Keys that a known branch off the chain revokes, when the revoker is in
    /// good standing: an admin, or the root, at the head of the effective
    /// chain. The root is never refused. (Demotions on other branches weigh in
    /// fork resolution only: a demotion is not final, a revocation is.)
    pub(super) fn refusals(&self) -> HashSet<PublicKey> {
        let head = self.index.at(self.head().body.seq);
        let root = head.root();
        self.side
            .iter()
            .map(|id| &self.nodes[*id as usize].entry.body)
            .filter_map(|body| match &body.op {
                Op::RemoveMember { key } if *key != root => Some((body.signer, *key)),
                _ => None,
            })
            .filter(|(revoker, _)| *revoker == root || head.admin_expiry(revoker).is_some())
            .map(|(_, key)| key)
            .collect()
    }

    /// The ring's state at `now_ms`.
    pub fn summary(&self, now_ms: u64) -> Summary {
        let refused = self.refusals();
        let mut members: BTreeMap<PublicKey, (Option<&Value>, Option<u64>)> = BTreeMap::new();
        let mut revoked: Vec<PublicKey> = refused.iter().copied().collect();
        let mut root = [0; 32];
        for (slot, value) in self.index.latest() {
            match (slot, value) {
                (Slot::Member(k), v) => members.entry(*k).or_default().0 = Some(v),
                (Slot::Admin(k), Value::Admin { expires_at_ms }) => {
                    members.entry(*k).or_default().1 = Some(*expires_at_ms)
                }
                (Slot::Revoked(k), _) if !refused.contains(k) => revoked.push(*k),
                (Slot::Root, Value::Key(k)) => root = *k,
                _ => {}
            }
        }
        revoked.sort_unstable();
        let members = members
            .into_iter()
            .filter(|(k, _)| !refused.contains(k))
            .filter_map(|(key, (member, admin))| member_view(key, member, admin, now_ms))
            .collect();
        Summary {
            keyring_id: self.keyring_id,
            name: self.name.clone(),
            root,
            head: self.head_hash(),
            length: self.len(),
            members,
            revoked,
            forks: self.fork_views(),
        }
    }

    fn fork_views(&self) -> Vec<ForkView> {
        let mut out: Vec<ForkView> = self
            .forks
            .iter()
            .map(|p| {
                let node = &self.nodes[*p as usize];
                let hash = |c: &u32| self.nodes[*c as usize].entry.hash();
                let mut branches: Vec<EntryHash> = node.children.iter().map(hash).collect();
                branches.sort_unstable();
                ForkView {
                    seq: node.entry.body.seq,
                    parent: node.entry.hash(),
                    branches,
                    chosen: node
                        .children
                        .iter()
                        .find(|c| self.nodes[**c as usize].on_chain)
                        .map(hash),
                }
            })
            .collect();
        out.sort_by_key(|f| (f.seq, f.parent));
        out
    }
}

/// A key's standing at `now`: valid while its member record or its admin
/// right is; roles only from a valid member record.
fn member_view(
    key: PublicKey,
    member: Option<&Value>,
    admin: Option<u64>,
    now: u64,
) -> Option<MemberView> {
    let member = match member {
        Some(Value::Member {
            roles,
            expires_at_ms,
        }) if alive(*expires_at_ms, now) => Some((roles, *expires_at_ms)),
        _ => None,
    };
    let admin = admin.filter(|exp| alive(*exp, now));
    let expires_at_ms = match (member, admin) {
        (None, None) => return None,
        (Some((_, m)), Some(a)) if m == 0 || a == 0 => 0,
        (Some((_, m)), Some(a)) => m.max(a),
        (Some((_, m)), None) => m,
        (None, Some(a)) => a,
    };
    let mut roles: Vec<String> = member.map(|(r, _)| r.clone()).unwrap_or_default();
    if admin.is_some() {
        if let Err(i) = roles.binary_search_by(|r| r.as_str().cmp("admin")) {
            roles.insert(i, "admin".to_owned());
        }
    }
    Some(MemberView {
        key,
        roles,
        expires_at_ms,
        admin: admin.is_some(),
    })
}
