//! [`Ring`]: a keyring's verified entry tree, the effective chain through it
//! and the state that chain leads to, extended one entry at a time: by
//! [`Ring::append`] here, by [`Ring::ingest`] ([`super::ingest`]), with forks
//! resolved by [`super::resolve`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::sync::Arc;

use crate::identity::KeyPair;

use super::chain::ChainIndex;
use super::entry::{Body, Entry, EntryHash, Op, PublicKey};
use super::fork::Basis;
use super::ingest::IngestRules;
use super::pending::Pending;
use super::rejections::RecentRejections;
use super::rules::{self, Writes};
use super::side_state::Delta;
use super::MembershipError;

pub(super) type NodeId = u32;
const NO_PARENT: NodeId = NodeId::MAX;

/// Most entries a ring holds off its effective chain (competing branches);
/// a new one beyond it is refused with [`MembershipError::TooManyForks`].
pub const MAX_SIDE_ENTRIES: usize = 16_384;
/// How far ahead of our clock an entry may be dated.
pub const MAX_CLOCK_SKEW_MS: u64 = 5 * 60 * 1000;
/// Most refusal reasons an [`IngestReport`] lists (it counts them all).
pub const MAX_REPORTED_ERRORS: usize = 16;

/// One verified entry in the tree, with what it wrote to the state.
#[derive(Debug, Clone)]
pub(super) struct Node {
    pub(super) entry: Entry,
    pub(super) parent: NodeId,
    pub(super) children: Vec<NodeId>,
    pub(super) on_chain: bool,
    /// Off the chain: the depth of the nearest ancestor on the chain.
    pub(super) attach: u64,
    pub(super) writes: Writes,
}

/// A keyring's verified membership log: a tree of entries, the effective
/// chain the fork rule picks through it, and the state at its head.
#[derive(Clone)]
pub struct Ring {
    pub(super) keyring_id: PublicKey,
    pub(super) name: String,
    pub(super) nodes: Vec<Node>,
    pub(super) by_hash: HashMap<EntryHash, NodeId>,
    /// The effective chain: `chain[seq]`.
    pub(super) chain: Vec<NodeId>,
    pub(super) index: ChainIndex,
    /// Nodes off the chain, in insertion (so topological) order.
    pub(super) side: BTreeSet<NodeId>,
    /// Nodes with two or more children.
    pub(super) forks: BTreeSet<NodeId>,
    pub(super) pending: Pending,
    pub(super) rejected: RecentRejections,
    pub(super) overlays: VecDeque<(NodeId, u64, Delta)>,
    pub(super) bases: HashMap<NodeId, Arc<Basis>>,
    pub(super) verified: u64,
}

impl Ring {
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
        Ok(Self::new(Entry::sign(body, root)?))
    }

    /// Verifies `genesis` and starts a ring from it.
    pub fn from_genesis(genesis: Entry) -> Result<Self, MembershipError> {
        let b = &genesis.body;
        if b.seq != 0
            || b.prev_hash != [0; 32]
            || b.signer != b.keyring_id
            || !matches!(b.op, Op::Genesis { .. })
        {
            return Err(MembershipError::NoGenesis);
        }
        if !genesis.signature_valid() {
            return Err(MembershipError::BadSignature { seq: 0 });
        }
        let mut ring = Self::new(genesis);
        ring.verified = 1;
        Ok(ring)
    }

    fn new(genesis: Entry) -> Self {
        let name = match &genesis.body.op {
            Op::Genesis { name, .. } => name.clone(),
            _ => String::new(),
        };
        let writes = rules::genesis_writes(&genesis.body);
        let mut index = ChainIndex::default();
        index.push(&genesis.body, &writes);
        let keyring_id = genesis.body.keyring_id;
        Self {
            keyring_id,
            name,
            by_hash: HashMap::from([(genesis.hash(), 0)]),
            nodes: vec![Node {
                entry: genesis,
                parent: NO_PARENT,
                children: Vec::new(),
                on_chain: true,
                attach: 0,
                writes,
            }],
            chain: vec![0],
            index,
            side: BTreeSet::new(),
            forks: BTreeSet::new(),
            pending: Pending::default(),
            rejected: RecentRejections::default(),
            overlays: VecDeque::new(),
            bases: HashMap::new(),
            verified: 0,
        }
    }

    /// Decodes and verifies a stored ring (entries in any order, each
    /// verified once). Every entry must be valid and connected; the clock and
    /// the fork cap are not applied, since these entries were accepted before.
    pub fn open<'a, I>(entries: I) -> Result<Self, MembershipError>
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let mut decoded = entries
            .into_iter()
            .map(Entry::decode)
            .collect::<Result<Vec<_>, _>>()?;
        decoded.sort_by_key(|e| e.body.seq);
        let mut iter = decoded.into_iter();
        let mut ring = Self::from_genesis(iter.next().ok_or(MembershipError::NoGenesis)?)?;
        let rules = IngestRules {
            now_ms: None,
            cap_side: false,
        };
        let report = ring.ingest_entries(iter, rules);
        if let Some(error) = report.errors.into_iter().next() {
            return Err(error);
        }
        if let Some(seq) = ring.pending.any_seq() {
            return Err(MembershipError::BrokenChain { seq });
        }
        Ok(ring)
    }

    pub(super) fn head_id(&self) -> NodeId {
        *self.chain.last().expect("a ring always has its genesis")
    }

    pub(super) fn head(&self) -> &Entry {
        &self.nodes[self.head_id() as usize].entry
    }

    /// Signs `op` with `signer` on top of the effective chain and adds it
    /// (no signature verification: we just made it). The signer must be an
    /// admin in the current view (not refused by a known branch).
    pub fn append(
        &mut self,
        signer: &KeyPair,
        op: Op,
        now_ms: u64,
    ) -> Result<Entry, MembershipError> {
        let head = self.head().body.clone();
        let seq = head.seq + 1;
        let refused = self.refusals();
        let key = signer.public_key();
        if refused.contains(&key) {
            return Err(MembershipError::NotAnAdmin { seq });
        }
        let added = match &op {
            Op::AddMember { key, .. } | Op::AddAdmin { key, .. } | Op::Join { key, .. } => {
                Some(key)
            }
            Op::RotateRoot { new_root } => Some(new_root),
            _ => None,
        };
        if added.is_some_and(|k| refused.contains(k)) {
            return Err(MembershipError::Revoked { seq });
        }
        let body = Body {
            keyring_id: self.keyring_id,
            seq,
            prev_hash: self.head().hash(),
            timestamp_ms: now_ms.max(head.timestamp_ms),
            signer: key,
            op,
        };
        let writes = rules::apply(&self.index.at(head.seq), &head, &body)?;
        let entry = Entry::sign(body, signer)?;
        let parent = self.head_id();
        let decisive = self.decisive(parent, &entry.body);
        self.insert(entry.clone(), parent, writes, true);
        if decisive {
            self.resolve();
        }
        Ok(entry)
    }

    /// Entries held while their parent is unknown.
    pub fn pending_len(&self) -> usize {
        self.pending.len()
    }

    /// Entries held off the effective chain (competing branches).
    pub fn side_len(&self) -> usize {
        self.side.len()
    }

    /// Signature verifications this ring has done.
    pub fn verifications(&self) -> u64 {
        self.verified
    }

    /// The keyring id (the genesis root key).
    pub fn keyring_id(&self) -> PublicKey {
        self.keyring_id
    }

    /// The keyring's name from the genesis entry.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Hash of the effective chain's last entry.
    pub fn head_hash(&self) -> EntryHash {
        self.head().hash()
    }

    /// Entries on the effective chain.
    pub fn len(&self) -> u64 {
        self.chain.len() as u64
    }

    /// Never true: a ring always holds its genesis.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The effective chain, genesis first.
    pub fn chain(&self) -> impl Iterator<Item = &Entry> {
        self.chain.iter().map(|id| &self.nodes[*id as usize].entry)
    }
}

impl std::fmt::Debug for Ring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ring")
            .field("keyring_id", &self.keyring_id)
            .field("length", &self.len())
            .field("side", &self.side.len())
            .field("pending", &self.pending.len())
            .finish_non_exhaustive()
    }
}
