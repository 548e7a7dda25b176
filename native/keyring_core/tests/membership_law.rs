//! The law of the membership log: a node's membership is a pure function of
//! the set of verified entries it holds. Random concurrent admin operations
//! (adds, removes, admin changes, root rotations, joins, invite revocations)
//! by several admins on several replicas, entries delivered in any order, any
//! subset, duplicated; once every replica holds every entry, they all report
//! the same summary, the same as a ring built from the entries shuffled.

use keyring_core::identity::KeyPair;
use keyring_core::membership::{Invite, InviteFields, Op, PublicKey, Ring};

const T0: u64 = 1_700_000_000_000;
const REPLICAS: usize = 3;

/// xorshift64*: small, seeded, good enough to draw test cases.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i + 1));
        }
    }
}

fn key(n: u8) -> KeyPair {
    KeyPair::from_seed(&[n; 32])
}

struct World {
    roots: Vec<KeyPair>,
    admins: Vec<KeyPair>,
    members: Vec<KeyPair>,
    invites: Vec<Invite>,
}

impl World {
    fn new() -> Self {
        let roots: Vec<KeyPair> = (1..=3).map(key).collect();
        let admins: Vec<KeyPair> = (10..13).map(key).collect();
        let members: Vec<KeyPair> = (20..26).map(key).collect();
        let invites = (0..2)
            .map(|i| {
                Invite::sign(
                    InviteFields {
                        keyring_id: roots[0].public_key(),
                        token: [i as u8; 16],
                        expires_at_ms: u64::MAX,
                        max_uses: 2 - i as u16,
                        bound_key: None,
                        address_hint: String::new(),
                        roles: vec!["j".into()],
                    },
                    &admins[i],
                )
                .unwrap()
            })
            .collect();
        Self {
            roots,
            admins,
            members,
            invites,
        }
    }

    fn any_key(&self, rng: &mut Rng) -> PublicKey {
        let all: Vec<&KeyPair> = self
            .admins
            .iter()
            .chain(&self.members)
            .chain(&self.roots[1..])
            .collect();
        all[rng.below(all.len())].public_key()
    }

    /// A signer: an admin, or whichever root key the replica's view names.
    fn signer(&self, rng: &mut Rng, ring: &Ring, now: u64) -> &KeyPair {
        if rng.below(4) == 0 {
            let root = ring.summary(now).root;
            if let Some(r) = self.roots.iter().find(|r| r.public_key() == root) {
                return r;
            }
        }
        &self.admins[rng.below(self.admins.len())]
    }
}

fn random_op(world: &World, rng: &mut Rng, ring: &Ring, now: u64) -> Option<Op> {
    Some(match rng.below(8) {
        0 | 1 => Op::AddMember {
            key: world.members[rng.below(world.members.len())].public_key(),
            expires_at_ms: [0, now + 5][rng.below(2)],
            roles: [vec![], vec!["db".to_string()]][rng.below(2)].clone(),
        },
        2 => Op::RemoveMember {
            key: world.any_key(rng),
        },
        3 => Op::AddAdmin {
            key: world.any_key(rng),
            expires_at_ms: [0, now + 7][rng.below(2)],
        },
        4 => Op::RemoveAdmin {
            key: world.any_key(rng),
        },
        5 => Op::RotateRoot {
            new_root: world.roots[rng.below(world.roots.len())].public_key(),
        },
        6 => {
            let invite = &world.invites[rng.below(world.invites.len())];
            let joiner = world.members[rng.below(world.members.len())].public_key();
            return ring.admit(invite, joiner, now, 1000).ok();
        }
        _ => {
            let invite = &world.invites[rng.below(world.invites.len())];
            Op::RevokeInvite {
                issuer: invite.issuer,
                token: invite.token,
            }
        }
    })
}

fn entries_of(ring: &Ring) -> Vec<Vec<u8>> {
    ring.entries().iter().map(|e| e.encode()).collect()
}

/// Runs one random history; answers how many forks it produced.
fn run_case(seed: u64) -> usize {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let world = World::new();
    let admins: Vec<PublicKey> = world.admins.iter().map(KeyPair::public_key).collect();
    let genesis = Ring::create(&world.roots[0], "law", admins, T0).unwrap();
    let genesis = genesis.entries()[0].encode();
    let mut replicas: Vec<Ring> = (0..REPLICAS)
        .map(|_| Ring::open([genesis.as_slice()]).unwrap())
        .collect();
    let mut now = T0;
    for _ in 0..(10 + rng.below(30)) {
        now += 1 + rng.below(3) as u64;
        let r = rng.below(REPLICAS);
        if rng.below(3) == 0 {
            // Deliver a random subset of another replica's entries, shuffled,
            // some twice.
            let from = rng.below(REPLICAS);
            let mut batch: Vec<Vec<u8>> = entries_of(&replicas[from])
                .into_iter()
                .filter(|_| rng.below(3) != 0)
                .collect();
            let dups: Vec<Vec<u8>> = batch
                .iter()
                .filter(|_| rng.below(4) == 0)
                .cloned()
                .collect();
            batch.extend(dups);
            rng.shuffle(&mut batch);
            let report = replicas[r].ingest(batch.iter().map(Vec::as_slice), now);
            assert!(report.errors.is_empty(), "seed {seed}: {:?}", report.errors);
        } else {
            let signer = world.signer(&mut rng, &replicas[r], now);
            if let Some(op) = random_op(&world, &mut rng, &replicas[r], now) {
                let _ = replicas[r].append(signer, op, now);
            }
        }
    }
    // Everyone gets everything, in its own order and chunks.
    let mut union: Vec<Vec<u8>> = replicas.iter().flat_map(entries_of).collect();
    union.sort();
    union.dedup();
    for ring in replicas.iter_mut() {
        let mut mine = union.clone();
        rng.shuffle(&mut mine);
        let cut = rng.below(mine.len() + 1);
        for chunk in [&mine[..cut], &mine[cut..]] {
            let report = ring.ingest(chunk.iter().map(Vec::as_slice), now);
            assert!(report.errors.is_empty(), "seed {seed}: {:?}", report.errors);
        }
        assert_eq!(ring.pending_len(), 0);
    }
    let mut fresh = Ring::open([genesis.as_slice()]).unwrap();
    let mut shuffled = union.clone();
    rng.shuffle(&mut shuffled);
    for e in &shuffled {
        fresh.ingest([e.as_slice()], now);
    }
    let expected = fresh.summary(now);
    let mut heads = fresh.heads();
    heads.sort();
    for (i, ring) in replicas.iter().enumerate() {
        assert_eq!(
            ring.summary(now),
            expected,
            "seed {seed}: replica {i} differs"
        );
        let mut h = ring.heads();
        h.sort();
        assert_eq!(h, heads, "seed {seed}: replica {i} holds other entries");
    }
    // Reopened from storage, the state is the same too.
    let reopened = Ring::open(entries_of(&replicas[0]).iter().map(Vec::as_slice)).unwrap();
    assert_eq!(
        reopened.summary(now),
        expected,
        "seed {seed}: reopened differs"
    );
    expected.forks.len()
}

#[test]
fn replicas_holding_the_same_entries_report_the_same_membership() {
    let cases = std::env::var("MEMBERSHIP_LAW_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300u64);
    let forks: usize = (0..cases).map(run_case).sum();
    // The generator must actually exercise the fork rule.
    assert!(
        forks > cases as usize / 2,
        "only {forks} forks in {cases} cases"
    );
}
