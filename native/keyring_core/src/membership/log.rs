//! The membership log: append-only, hash-chained, every entry signed by a key
//! that is an admin at that point. Every node replays the whole log itself.

use std::collections::{BTreeMap, BTreeSet};

use crate::identity::KeyPair;

use super::entry::{Body, Entry, EntryHash, Op, PublicKey};
use super::MembershipError;

/// Most entries a log may hold (bounds the work of a replay).
pub const MAX_ENTRIES: usize = 100_000;

/// A member as of the latest entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Roles/groups, sorted.
    pub roles: Vec<String>,
    /// Unix ms after which the member is invalid; 0 = never.
    pub expires_at_ms: u64,
}

/// One member of a [`Snapshot`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotMember {
    /// The member's key.
    pub key: PublicKey,
    /// Roles; admins carry the extra role `admin`.
    pub roles: Vec<String>,
    /// Expiry (Unix ms; 0 = never).
    pub expires_at_ms: u64,
    /// Whether the key may sign entries.
    pub admin: bool,
}

/// The members valid at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The keyring.
    pub keyring_id: PublicKey,
    /// Members, sorted by key.
    pub members: Vec<SnapshotMember>,
}

/// Whether [`Log::append`] added the entry or already had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// The entry extended the log.
    New,
    /// The log already held this exact entry at that position.
    Duplicate,
}

/// A verified membership log and the state it leads to.
#[derive(Debug, Clone)]
pub struct Log {
    keyring_id: PublicKey,
    name: String,
    entries: Vec<Entry>,
    admins: BTreeSet<PublicKey>,
    members: BTreeMap<PublicKey, Member>,
    revoked: BTreeSet<PublicKey>,
}

impl Log {
    /// Starts a keyring: a genesis entry signed by `root`, naming `admins`
    /// (besides the root) as its first admins.
    pub fn create(
        root: &KeyPair,
        name: &str,
        mut admins: Vec<PublicKey>,
        now_ms: u64,
    ) -> Result<Self, MembershipError> {
        admins.sort();
        admins.dedup();
        let root_key = root.public_key();
        admins.retain(|a| *a != root_key);
        let body = Body {
            keyring_id: root_key,
            seq: 0,
            prev_hash: [0; 32],
            timestamp_ms: now_ms,
            signer: root_key,
            op: Op::Genesis {
                name: name.to_owned(),
                admins,
            },
        };
        Self::from_genesis(Entry::sign(body, root)?)
    }

    /// Verifies `genesis` as the first entry of a log.
    pub fn from_genesis(genesis: Entry) -> Result<Self, MembershipError> {
        let b = &genesis.body;
        let Op::Genesis { name, admins } = &b.op else {
            return Err(MembershipError::NoGenesis);
        };
        if b.seq != 0 || b.prev_hash != [0; 32] || b.signer != b.keyring_id {
            return Err(MembershipError::NoGenesis);
        }
        if !genesis.signature_valid() {
            return Err(MembershipError::BadSignature { seq: 0 });
        }
        let mut set: BTreeSet<PublicKey> = admins.iter().copied().collect();
        set.insert(b.keyring_id);
        Ok(Self {
            keyring_id: b.keyring_id,
            name: name.clone(),
            admins: set,
            members: BTreeMap::new(),
            revoked: BTreeSet::new(),
            entries: vec![genesis],
        })
    }

    /// Decodes and verifies a whole log, entry by entry.
    pub fn from_encoded<'a, I>(entries: I) -> Result<Self, MembershipError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut iter = entries.into_iter();
        let first = iter.next().ok_or(MembershipError::NoGenesis)?;
        let mut log = Self::from_genesis(Entry::decode(first)?)?;
        for bytes in iter {
            log.append(Entry::decode(bytes)?)?;
        }
        Ok(log)
    }

    /// The keyring id (the root public key).
    pub fn keyring_id(&self) -> PublicKey {
        self.keyring_id
    }

    /// The keyring's name from the genesis entry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Hash of the last entry (the log head).
    pub fn head(&self) -> EntryHash {
        self.entries.last().map(Entry::hash).unwrap_or([0; 32])
    }

    /// Whether `key` may sign the next entry.
    pub fn is_admin(&self, key: &PublicKey) -> bool {
        self.admins.contains(key)
    }

    /// Whether `key` was revoked at some point.
    pub fn is_revoked(&self, key: &PublicKey) -> bool {
        self.revoked.contains(key)
    }

    /// The body of the next entry, ready to sign: links to the head and never
    /// goes back in time.
    pub fn next_body(&self, signer: PublicKey, now_ms: u64, op: Op) -> Body {
        let last = self.entries.last().expect("a log always has its genesis");
        Body {
            keyring_id: self.keyring_id,
            seq: self.entries.len() as u64,
            prev_hash: last.hash(),
            timestamp_ms: now_ms.max(last.body.timestamp_ms),
            signer,
            op,
        }
    }

    /// Signs `op` with `admin` and appends it.
    pub fn append_op(
        &mut self,
        admin: &KeyPair,
        now_ms: u64,
        op: Op,
    ) -> Result<&Entry, MembershipError> {
        let body = self.next_body(admin.public_key(), now_ms, op);
        self.append(Entry::sign(body, admin)?)?;
        Ok(self.entries.last().expect("just appended"))
    }

    /// Verifies `entry` against the current state and appends it. An entry
    /// that already sits at its position is a [`Appended::Duplicate`]; a
    /// different one is a fork.
    pub fn append(&mut self, entry: Entry) -> Result<Appended, MembershipError> {
        let b = &entry.body;
        let seq = b.seq;
        if b.keyring_id != self.keyring_id {
            return Err(MembershipError::WrongKeyring { seq });
        }
        let len = self.entries.len() as u64;
        if seq < len {
            return if self.entries[seq as usize].hash() == entry.hash() && entry.signature_valid() {
                Ok(Appended::Duplicate)
            } else {
                Err(MembershipError::Fork { seq })
            };
        }
        if seq > len {
            return Err(MembershipError::Gap { seq, len });
        }
        if self.entries.len() >= MAX_ENTRIES {
            return Err(MembershipError::InvalidOperation {
                seq,
                why: "the log is full",
            });
        }
        let last = self.entries.last().expect("a log always has its genesis");
        if b.prev_hash != last.hash() {
            return Err(MembershipError::BrokenChain { seq });
        }
        if !entry.signature_valid() {
            return Err(MembershipError::BadSignature { seq });
        }
        if !self.admins.contains(&b.signer) {
            return Err(MembershipError::NotAnAdmin { seq });
        }
        if b.timestamp_ms < last.body.timestamp_ms {
            return Err(MembershipError::TimeWentBackwards { seq });
        }
        self.apply_op(seq, &b.op)?;
        self.entries.push(entry);
        Ok(Appended::New)
    }

    fn apply_op(&mut self, seq: u64, op: &Op) -> Result<(), MembershipError> {
        let invalid = |why| Err(MembershipError::InvalidOperation { seq, why });
        match op {
            Op::Genesis { .. } => return invalid("a second genesis entry"),
            Op::AddMember {
                key,
                expires_at_ms,
                roles,
            } => {
                if self.revoked.contains(key) {
                    return invalid("the key was revoked and cannot be re-added");
                }
                self.members.insert(
                    *key,
                    Member {
                        roles: roles.clone(),
                        expires_at_ms: *expires_at_ms,
                    },
                );
            }
            Op::RemoveMember { key } => {
                if *key == self.keyring_id {
                    return invalid("the root key cannot be revoked");
                }
                if !self.members.contains_key(key) && !self.admins.contains(key) {
                    return invalid("the key is not a member");
                }
                self.members.remove(key);
                self.admins.remove(key);
                self.revoked.insert(*key);
            }
            Op::AddAdmin { key } => {
                if self.revoked.contains(key) {
                    return invalid("the key was revoked and cannot be re-added");
                }
                if !self.admins.insert(*key) {
                    return invalid("the key is already an admin");
                }
            }
            Op::RemoveAdmin { key } => {
                if *key == self.keyring_id {
                    return invalid("the root key cannot lose admin rights");
                }
                if !self.admins.remove(key) {
                    return invalid("the key is not an admin");
                }
            }
        }
        Ok(())
    }

    /// The member entry of `key`, if any (admins without a member entry have none).
    pub fn member(&self, key: &PublicKey) -> Option<&Member> {
        self.members.get(key)
    }

    /// The members valid at `now_ms`: admins, and members whose expiry has not
    /// passed. Expiry is exclusive: a member expiring at `t` is gone at `t`.
    pub fn snapshot(&self, now_ms: u64) -> Snapshot {
        let mut out: BTreeMap<PublicKey, SnapshotMember> = BTreeMap::new();
        for (key, m) in &self.members {
            if m.expires_at_ms == 0 || m.expires_at_ms > now_ms {
                out.insert(
                    *key,
                    SnapshotMember {
                        key: *key,
                        roles: m.roles.clone(),
                        expires_at_ms: m.expires_at_ms,
                        admin: false,
                    },
                );
            }
        }
        for key in &self.admins {
            let e = out.entry(*key).or_insert_with(|| SnapshotMember {
                key: *key,
                roles: Vec::new(),
                expires_at_ms: 0,
                admin: true,
            });
            e.admin = true;
            e.expires_at_ms = 0;
            if let Err(i) = e.roles.binary_search_by(|r| r.as_str().cmp("admin")) {
                e.roles.insert(i, "admin".to_owned());
            }
        }
        Snapshot {
            keyring_id: self.keyring_id,
            members: out.into_values().collect(),
        }
    }
}
