//! The membership rules: what an entry may do in the state it extends, and
//! what it writes. The state is a map of [`Slot`]s; the rules only read it
//! through [`View`], so the same code judges an entry on the effective chain
//! (a versioned index) and on a competing branch (an overlay).

use std::collections::HashMap;

use super::entry::{Body, InviteToken, Op, PublicKey};
use super::MembershipError;

/// Most entries deep a log may grow through ops that add something; removals
/// and root rotation are accepted beyond it (see [`Op::grows`]).
pub const MAX_ENTRIES: u64 = 100_000;

/// One cell of the membership state.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Slot {
    /// The current root key.
    Root,
    /// A member record (roles, expiry).
    Member(PublicKey),
    /// An admin record (expiry).
    Admin(PublicKey),
    /// The key was revoked (final).
    Revoked(PublicKey),
    /// The key was the root once (so it can be revoked after a rotation).
    FormerRoot(PublicKey),
    /// An invite's uses and revocation, by issuer and token.
    Invite(PublicKey, InviteToken),
}

/// The content of a [`Slot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    Key(PublicKey),
    Member {
        roles: Vec<String>,
        expires_at_ms: u64,
    },
    Admin {
        expires_at_ms: u64,
    },
    Flag,
    Invite {
        uses: u32,
        max_uses: u16,
        revoked: bool,
    },
}

/// What one entry writes: `None` clears the slot.
pub(crate) type Writes = Vec<(Slot, Option<Value>)>;

/// Read access to the state an entry extends.
pub(crate) trait View {
    fn get(&self, slot: &Slot) -> Option<&Value>;

    fn root(&self) -> PublicKey {
        match self.get(&Slot::Root) {
            Some(Value::Key(k)) => *k,
            _ => [0; 32],
        }
    }

    /// The admin record's expiry, if `key` has one.
    fn admin_expiry(&self, key: &PublicKey) -> Option<u64> {
        match self.get(&Slot::Admin(*key)) {
            Some(Value::Admin { expires_at_ms }) => Some(*expires_at_ms),
            _ => None,
        }
    }

    /// Whether `key` may sign an entry dated `at_ms`.
    fn admin_valid(&self, key: &PublicKey, at_ms: u64) -> bool {
        self.admin_expiry(key).is_some_and(|exp| alive(exp, at_ms))
    }

    fn is_revoked(&self, key: &PublicKey) -> bool {
        self.get(&Slot::Revoked(*key)).is_some()
    }

    /// Whether the log knows `key` as a member, an admin or a root.
    fn knows(&self, key: &PublicKey) -> bool {
        self.root() == *key
            || self.get(&Slot::Member(*key)).is_some()
            || self.get(&Slot::Admin(*key)).is_some()
            || self.get(&Slot::FormerRoot(*key)).is_some()
    }

    /// `(uses, max_uses, revoked)` of an invite the log has seen.
    fn invite(&self, issuer: &PublicKey, token: &InviteToken) -> Option<(u32, u16, bool)> {
        match self.get(&Slot::Invite(*issuer, *token)) {
            Some(Value::Invite {
                uses,
                max_uses,
                revoked,
            }) => Some((*uses, *max_uses, *revoked)),
            _ => None,
        }
    }
}

/// Whether something expiring at `expires_at_ms` (0 = never) is valid at `at_ms`.
pub(crate) fn alive(expires_at_ms: u64, at_ms: u64) -> bool {
    expires_at_ms == 0 || expires_at_ms > at_ms
}

/// A view that sees `delta` over `base`.
pub(crate) struct Overlay<'a, V: View> {
    pub(crate) base: V,
    pub(crate) delta: &'a HashMap<Slot, Option<Value>>,
}

impl<V: View> View for Overlay<'_, V> {
    fn get(&self, slot: &Slot) -> Option<&Value> {
        match self.delta.get(slot) {
            Some(v) => v.as_ref(),
            None => self.base.get(slot),
        }
    }
}

/// What the genesis entry writes (its shape is checked by the caller).
pub(crate) fn genesis_writes(body: &Body) -> Writes {
    let mut writes = vec![
        (Slot::Root, Some(Value::Key(body.signer))),
        (
            Slot::Admin(body.signer),
            Some(Value::Admin { expires_at_ms: 0 }),
        ),
    ];
    if let Op::Genesis { admins, .. } = &body.op {
        for a in admins.iter().filter(|a| **a != body.signer) {
            writes.push((Slot::Admin(*a), Some(Value::Admin { expires_at_ms: 0 })));
        }
    }
    writes
}

/// Judges `body` (a child of `parent`) against `state`, the state after
/// `parent`, and answers what it writes. Does not check the signature.
pub(crate) fn apply(
    state: &impl View,
    parent: &Body,
    body: &Body,
) -> Result<Writes, MembershipError> {
    let seq = body.seq;
    if seq != parent.seq + 1 || body.keyring_id != parent.keyring_id {
        return Err(MembershipError::BrokenChain { seq });
    }
    if body.timestamp_ms < parent.timestamp_ms {
        return Err(MembershipError::TimeWentBackwards { seq });
    }
    let signer = body.signer;
    let root = state.root();
    if let Op::RotateRoot { .. } = body.op {
        if signer != root {
            return Err(MembershipError::NotTheRoot { seq });
        }
    } else if !state.admin_valid(&signer, body.timestamp_ms) {
        return Err(MembershipError::NotAnAdmin { seq });
    }
    if body.op.grows() && seq >= MAX_ENTRIES {
        return Err(MembershipError::LogFull { seq });
    }
    let invalid = |why| Err(MembershipError::InvalidOperation { seq, why });
    let revoked = |k: &PublicKey| state.is_revoked(k);
    Ok(match &body.op {
        Op::Genesis { .. } => return invalid("a second genesis entry"),
        Op::AddMember {
            key,
            expires_at_ms,
            roles,
        } => {
            if revoked(key) {
                return Err(MembershipError::Revoked { seq });
            }
            vec![(
                Slot::Member(*key),
                Some(Value::Member {
                    roles: roles.clone(),
                    expires_at_ms: *expires_at_ms,
                }),
            )]
        }
        Op::RemoveMember { key } => {
            if *key == root {
                return invalid("the root key cannot be revoked");
            }
            if revoked(key) {
                return invalid("the key is already revoked");
            }
            if !state.knows(key) {
                return invalid("the key is not a member");
            }
            vec![
                (Slot::Member(*key), None),
                (Slot::Admin(*key), None),
                (Slot::Revoked(*key), Some(Value::Flag)),
            ]
        }
        Op::AddAdmin { key, expires_at_ms } => {
            if revoked(key) {
                return Err(MembershipError::Revoked { seq });
            }
            if *key == root {
                return invalid("the root key's rights cannot change");
            }
            if state.admin_expiry(key) == Some(*expires_at_ms) {
                return invalid("the key is already an admin with that expiry");
            }
            vec![(
                Slot::Admin(*key),
                Some(Value::Admin {
                    expires_at_ms: *expires_at_ms,
                }),
            )]
        }
        Op::RemoveAdmin { key } => {
            if *key == root {
                return invalid("the root key cannot lose admin rights");
            }
            if state.admin_expiry(key).is_none() {
                return invalid("the key is not an admin");
            }
            vec![(Slot::Admin(*key), None)]
        }
        Op::Join {
            key,
            roles,
            issuer,
            token,
            max_uses,
        } => {
            if revoked(key) {
                return Err(MembershipError::Revoked { seq });
            }
            if state.knows(key) {
                return Err(MembershipError::AlreadyMember { seq });
            }
            if !state.admin_valid(issuer, body.timestamp_ms) {
                return invalid("the invite's issuer is not an admin");
            }
            let uses = match state.invite(issuer, token) {
                Some((_, _, true)) => return Err(MembershipError::InviteRevoked { seq }),
                Some((_, cap, _)) if cap != *max_uses => {
                    return invalid("max_uses differs from the invite's earlier joins")
                }
                Some((uses, _, _)) => uses,
                None => 0,
            };
            if *max_uses != 0 && uses >= u32::from(*max_uses) {
                return Err(MembershipError::InviteSpent {
                    seq,
                    uses,
                    max_uses: *max_uses,
                });
            }
            vec![
                (
                    Slot::Member(*key),
                    Some(Value::Member {
                        roles: roles.clone(),
                        expires_at_ms: 0,
                    }),
                ),
                (
                    Slot::Invite(*issuer, *token),
                    Some(Value::Invite {
                        uses: uses + 1,
                        max_uses: *max_uses,
                        revoked: false,
                    }),
                ),
            ]
        }
        Op::RevokeInvite { issuer, token } => {
            let (uses, max_uses) = match state.invite(issuer, token) {
                Some((_, _, true)) => return invalid("the invite is already revoked"),
                Some((uses, max_uses, false)) => (uses, max_uses),
                None => (0, 0),
            };
            vec![(
                Slot::Invite(*issuer, *token),
                Some(Value::Invite {
                    uses,
                    max_uses,
                    revoked: true,
                }),
            )]
        }
        Op::RotateRoot { new_root } => {
            if *new_root == root {
                return invalid("the key is already the root");
            }
            if revoked(new_root) {
                return Err(MembershipError::Revoked { seq });
            }
            vec![
                (Slot::Root, Some(Value::Key(*new_root))),
                (Slot::Admin(root), None),
                (Slot::FormerRoot(root), Some(Value::Flag)),
                (
                    Slot::Admin(*new_root),
                    Some(Value::Admin { expires_at_ms: 0 }),
                ),
            ]
        }
    })
}

/// The removal an entry makes, as fork resolution counts it: `(removed,
/// remover)`. Revocation and demotion by another key count; so does a root
/// rotation (the old root removing itself), so a leaked old root that forks
/// from before its rotation loses to the rotation.
pub(crate) fn removal(body: &Body) -> Option<(PublicKey, PublicKey)> {
    match &body.op {
        Op::RemoveMember { key } | Op::RemoveAdmin { key } if *key != body.signer => {
            Some((*key, body.signer))
        }
        Op::RotateRoot { .. } => Some((body.signer, body.signer)),
        _ => None,
    }
}
