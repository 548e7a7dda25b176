//! Wire bytes of a DAG sync against the bytes actually missing: a directory
//! tree of 10,000 items (directories and files, depth 9) in which 1 % of the
//! files changed. Goal: total bytes on the wire (request + response) at most
//! 1.1 × the bytes of the missing nodes and blobs, in at most two rounds.

use std::collections::{HashMap, HashSet};

use keyring_core::dag::{
    Accepted, BlobRead, Cid, CidFilter, Directory, Entry, EntryKind, Exclusion, Item, Link,
    NodeRef, Provider, Request, Source, TraversalSpec, Verifier,
};
use keyring_core::hash::digest;

#[derive(Default, Clone)]
struct Store {
    nodes: HashMap<Cid, Vec<u8>>,
    blobs: HashMap<Cid, Vec<u8>>,
}

impl Source for &Store {
    type Error = ();
    fn node(&mut self, cid: &Cid) -> Result<Option<Vec<u8>>, ()> {
        Ok(self.nodes.get(cid).cloned())
    }
    fn blob(&mut self, cid: &Cid, limit: usize) -> Result<BlobRead, ()> {
        Ok(match self.blobs.get(cid) {
            Some(b) if b.len() <= limit => BlobRead::Bytes(b.clone()),
            Some(b) => BlobRead::TooLarge(b.len() as u64),
            None => BlobRead::Absent,
        })
    }
}

/// A deterministic pseudo-random generator (xorshift), so runs compare.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The tree as paths: directory `d` has files and subdirectories.
#[derive(Clone)]
struct Tree {
    /// file contents by (directory index, name)
    files: Vec<(usize, String, Vec<u8>)>,
    /// parent of each directory (root = 0 has none)
    parents: Vec<Option<usize>>,
}

fn build_tree(rng: &mut Rng, items: usize, depth: usize) -> Tree {
    let dirs = items / 5;
    let mut parents = vec![None];
    let mut depths = vec![0usize];
    // A spine reaching `depth`, then random attachment.
    for d in 1..=depth {
        parents.push(Some(d - 1));
        depths.push(d);
    }
    while parents.len() < dirs {
        let p = rng.below(parents.len() as u64) as usize;
        if depths[p] < depth {
            parents.push(Some(p));
            depths.push(depths[p] + 1);
        }
    }
    let files = (0..items - dirs)
        .map(|i| {
            let dir = rng.below(dirs as u64) as usize;
            let len = 512 + rng.below(3584) as usize;
            let body: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            (dir, format!("file-{i:05}.dat"), body)
        })
        .collect();
    Tree { files, parents }
}

/// Stores the tree; returns the root's cid.
fn store_tree(tree: &Tree, store: &mut Store) -> Cid {
    let n = tree.parents.len();
    let mut entries: Vec<Vec<Entry>> = vec![Vec::new(); n];
    for (dir, name, body) in &tree.files {
        let cid = digest(body);
        store.blobs.insert(cid, body.clone());
        entries[*dir].push(Entry {
            name: name.clone(),
            kind: EntryKind::File,
            size: body.len() as u64,
            cid,
        });
    }
    // Children have higher indices than parents: encode from the last up.
    let mut cids = vec![[0u8; 32]; n];
    let mut sizes = vec![0u64; n];
    for d in (0..n).rev() {
        sizes[d] += entries[d].iter().map(|e| e.size).sum::<u64>();
        let node = Directory::new(entries[d].clone()).to_node().unwrap();
        let (cid, bytes) = node.encode_with_cid().unwrap();
        store.nodes.insert(cid, bytes);
        cids[d] = cid;
        if let Some(p) = tree.parents[d] {
            entries[p].push(Entry {
                name: format!("dir-{d:05}"),
                kind: EntryKind::Directory,
                size: sizes[d],
                cid,
            });
            sizes[p] += sizes[d];
        }
    }
    cids[0]
}

struct Run {
    rounds: usize,
    wire: usize,
    missing_bytes: usize,
    messages: usize,
}

fn sync(provider: &Store, local: &mut Store, request: Request) -> Run {
    let held: HashSet<Cid> = local
        .nodes
        .keys()
        .chain(local.blobs.keys())
        .copied()
        .collect();
    let mut wire = 0;
    let mut rounds = 0;
    let mut messages = 0;
    let mut requests = vec![request];
    let first = requests[0].clone();
    while !requests.is_empty() {
        rounds += 1;
        assert!(rounds <= 2, "more than two rounds");
        let mut next = Vec::new();
        for request in requests {
            let bytes = request.encode().unwrap();
            wire += bytes.len();
            messages += 1;
            let request = Request::decode(&bytes).unwrap();
            let mut source = provider;
            let exclusion =
                Exclusion::expand(&request.have, request.filter.clone(), &mut source, 1 << 22)
                    .unwrap();
            let mut p = Provider::new(&request, source, exclusion, 1 << 22);
            let mut v = Verifier::new(request.clone(), 1 << 22);
            while let Some(item) = p.next_item().unwrap() {
                wire += item.encoded_len();
                messages += 1;
                match v.accept(item, |c| held.contains(c)).unwrap() {
                    Accepted::Node { cid, bytes } => {
                        local.nodes.insert(cid, bytes);
                    }
                    Accepted::Blob { cid, bytes } => {
                        local.blobs.insert(cid, bytes);
                    }
                    _ => {}
                }
            }
            let outcome = v.finish().unwrap();
            assert!(outcome.missing.is_empty() && outcome.deferred.is_empty());
            next.extend(outcome.second_round(&first));
        }
        requests = next;
    }
    Run {
        rounds,
        wire,
        missing_bytes: 0,
        messages,
    }
}

/// Every node and blob reachable from `root` in `store`.
fn reachable(store: &Store, root: Cid) -> HashSet<Cid> {
    let mut out = HashSet::new();
    let mut stack = vec![Link::node(root)];
    while let Some(link) = stack.pop() {
        if out.insert(link.cid) {
            if let Some(b) = store.nodes.get(&link.cid) {
                stack.extend(NodeRef::decode(b).unwrap().links());
            }
        }
    }
    out
}

fn scenario(seed: u64) -> (Store, Cid, Store, Cid, usize, usize) {
    let mut rng = Rng(seed);
    let tree = build_tree(&mut rng, 10_000, 9);
    let mut old = Store::default();
    let old_root = store_tree(&tree, &mut old);
    // 1 % of the items: 100 files rewritten.
    let mut changed = tree.clone();
    for _ in 0..100 {
        let i = rng.below(changed.files.len() as u64) as usize;
        let len = changed.files[i].2.len();
        changed.files[i].2 = (0..len).map(|_| rng.next() as u8).collect();
    }
    let mut new = old.clone();
    let new_root = store_tree(&changed, &mut new);
    let old_set = reachable(&old, old_root);
    let new_set = reachable(&new, new_root);
    let missing: Vec<&Cid> = new_set.difference(&old_set).collect();
    let missing_bytes = missing
        .iter()
        .map(|c| new.nodes.get(*c).or(new.blobs.get(*c)).unwrap().len())
        .sum();
    // The requester holds exactly the old tree.
    let mut local = Store::default();
    for c in &old_set {
        if let Some(b) = old.nodes.get(c) {
            local.nodes.insert(*c, b.clone());
        }
        if let Some(b) = old.blobs.get(c) {
            local.blobs.insert(*c, b.clone());
        }
    }
    (new, new_root, local, old_root, missing_bytes, missing.len())
}

fn check(name: &str, run: Run, missing_bytes: usize, missing: usize, limit: f64) {
    let run = Run {
        missing_bytes,
        ..run
    };
    let ratio = run.wire as f64 / run.missing_bytes as f64;
    println!(
        "{name}: {} rounds, {} messages for {missing} missing items, wire {} B / missing {} B = {ratio:.3}",
        run.rounds, run.messages, run.wire, run.missing_bytes
    );
    assert!(ratio <= limit, "{name}: ratio {ratio:.3} over {limit}");
}

const SPEC: TraversalSpec = TraversalSpec {
    blobs: true,
    max_depth: None,
};

#[test]
fn one_percent_changed_with_the_old_root_known_to_both_costs_under_1_1x() {
    let (provider, root, mut local, old_root, missing_bytes, missing) = scenario(7);
    let mut request = Request::new(root, SPEC);
    request.have = vec![old_root];
    let run = sync(&provider, &mut local, request);
    assert_eq!(run.rounds, 1);
    // At most one skip run between two data items, plus the request.
    assert!(run.messages <= 2 * missing + 2, "{} messages", run.messages);
    check("have root", run, missing_bytes, missing, 1.1);
    assert_eq!(reachable(&local, root), reachable(&provider, root));
}

#[test]
fn one_percent_changed_with_only_a_filter_costs_under_1_1x_in_two_rounds_at_most() {
    // The provider never had the old tree: only the filter helps.
    let (new, root, mut local, _old_root, missing_bytes, missing) = scenario(11);
    let mut provider = Store::default();
    for c in reachable(&new, root) {
        if let Some(b) = new.nodes.get(&c) {
            provider.nodes.insert(c, b.clone());
        }
        if let Some(b) = new.blobs.get(&c) {
            provider.blobs.insert(c, b.clone());
        }
    }
    let held: Vec<Cid> = local
        .nodes
        .keys()
        .chain(local.blobs.keys())
        .copied()
        .collect();
    let mut filter = CidFilter::new([42; 32], held.len(), 10);
    held.iter().for_each(|c| filter.insert(c));
    let mut request = Request::new(root, SPEC);
    request.filter = Some(filter);
    let run = sync(&provider, &mut local, request);
    assert!(run.rounds <= 2);
    check("filter", run, missing_bytes, missing, 1.1);
    assert_eq!(reachable(&local, root), reachable(&provider, root));
}

#[test]
fn items_cost_at_most_four_bytes_of_framing() {
    let data = vec![0u8; 4000];
    assert_eq!(Item::Data(data).encoded_len(), 4003);
    assert_eq!(Item::Skipped(1).encoded_len(), 2);
    assert_eq!(Item::Skipped(127).encoded_len(), 2);
}
