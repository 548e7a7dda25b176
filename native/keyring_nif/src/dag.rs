//! Merkle DAG nodes and walks: terms ⇄ canonical node bytes, and walks of a
//! DAG in the store.
//!
//! Encoding and decoding run on the caller's scheduler, charged to its
//! timeslice, when the node is small (`Keyring.DAG` picks: about 8 KiB
//! encoded, tens of microseconds); larger ones go to the `_dirty` variants
//! on dirty CPU schedulers. A walk reads the store, so each step runs on a dirty I/O
//! scheduler and returns a bounded batch; `Keyring.DAG.walk/3` loops.
//!
//! Node terms: `{:raw, data, [{:node | :blob, cid}]}`,
//! `{:directory, [{name, :file | :executable | :directory, size, cid}]}`,
//! `{:event, seq, prev | nil, payload, [{:node | :blob, cid}]}`; cids are
//! 32-byte binaries.

use std::sync::Mutex;

use keyring_core::dag::{
    Cid, Directory, Entry, EntryKind, Event, Link, LinkKind, Node, NodeKind, NodeRef, Traversal,
    TraversalSpec, MAX_LINKS, MAX_NODE_BYTES,
};
use keyring_core::hash::digest;
use keyring_store::{BlobStore, StoreError};
use rustler::{Atom, Binary, Encoder, Env, Resource, ResourceArc, Term};

use crate::atoms;
use crate::hash::digest_binary;
use crate::store::{with_store, StoreResource};
use crate::timeslice::Charge;

mod names {
    rustler::atoms! {
        raw,
        directory,
        event,
        node,
        blob,
        file,
        executable,
        missing,
        invalid_node,
        more,
        done,
        nil,
    }
}

/// Most bytes of node data one walk step returns.
const WALK_STEP_BYTES: usize = 4 << 20;

fn invalid<'a>(env: Env<'a>, why: impl ToString) -> Term<'a> {
    (atoms::error(), (names::invalid_node(), why.to_string())).encode(env)
}

fn cid_of(bin: &Binary<'_>) -> Result<Cid, String> {
    Cid::try_from(bin.as_slice()).map_err(|_| "cid must be 32 bytes".to_string())
}

fn link_of(term: Term<'_>) -> Result<Link, String> {
    let (kind, cid): (Atom, Binary<'_>) = term.decode().map_err(|_| "bad link".to_string())?;
    let cid = cid_of(&cid)?;
    if kind == names::node() {
        Ok(Link::node(cid))
    } else if kind == names::blob() {
        Ok(Link::blob(cid))
    } else {
        Err("link kind must be :node or :blob".into())
    }
}

fn links_of(list: Term<'_>) -> Result<Vec<Link>, String> {
    let items: Vec<Term<'_>> = list.decode().map_err(|_| "links must be a list")?;
    if items.len() > MAX_LINKS {
        return Err(format!("more than {MAX_LINKS} links"));
    }
    items.into_iter().map(link_of).collect()
}

fn entry_of(term: Term<'_>) -> Result<Entry, String> {
    let (name, kind, size, cid): (String, Atom, u64, Binary<'_>) =
        term.decode().map_err(|_| "bad directory entry")?;
    let kind = if kind == names::file() {
        EntryKind::File
    } else if kind == names::executable() {
        EntryKind::Executable
    } else if kind == names::directory() {
        EntryKind::Directory
    } else {
        return Err("entry kind must be :file, :executable or :directory".into());
    };
    Ok(Entry {
        name,
        kind,
        size,
        cid: cid_of(&cid)?,
    })
}

/// The node a term describes.
fn node_of(term: Term<'_>) -> Result<Node, String> {
    let tuple = rustler::types::tuple::get_tuple(term).map_err(|_| "node must be a tuple")?;
    let tag: Atom = tuple
        .first()
        .ok_or("empty tuple")?
        .decode()
        .map_err(|_| "node tag must be an atom")?;
    let node = if tag == names::raw() && tuple.len() == 3 {
        let data: Binary<'_> = tuple[1].decode().map_err(|_| "data must be a binary")?;
        if data.len() > MAX_NODE_BYTES {
            return Err(format!("data over {MAX_NODE_BYTES} bytes"));
        }
        Node::raw(data.as_slice().to_vec(), links_of(tuple[2])?)
    } else if tag == names::directory() && tuple.len() == 2 {
        let items: Vec<Term<'_>> = tuple[1].decode().map_err(|_| "entries must be a list")?;
        if items.len() > MAX_LINKS {
            return Err(format!("more than {MAX_LINKS} entries"));
        }
        let entries = items.into_iter().map(entry_of).collect::<Result<_, _>>()?;
        Directory::new(entries)
            .to_node()
            .map_err(|e| e.to_string())?
    } else if tag == names::event() && tuple.len() == 5 {
        let seq: u64 = tuple[1].decode().map_err(|_| "seq must be an integer")?;
        let prev = if tuple[2].decode::<Atom>().is_ok_and(|a| a == names::nil()) {
            None
        } else {
            let b: Binary<'_> = tuple[2].decode().map_err(|_| "prev must be a cid or nil")?;
            Some(cid_of(&b)?)
        };
        let payload: Binary<'_> = tuple[3].decode().map_err(|_| "payload must be a binary")?;
        if payload.len() > MAX_NODE_BYTES {
            return Err(format!("payload over {MAX_NODE_BYTES} bytes"));
        }
        Event {
            seq,
            prev,
            payload: payload.as_slice().to_vec(),
            attachments: links_of(tuple[4])?,
        }
        .to_node()
        .map_err(|e| e.to_string())?
    } else {
        return Err("node must be {:raw, _, _}, {:directory, _} or {:event, _, _, _, _}".into());
    };
    Ok(node)
}

fn encode<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    match node_of(term).and_then(|n| n.encode_with_cid().map_err(|e| e.to_string())) {
        Ok((cid, bytes)) => (
            atoms::ok(),
            (digest_binary(env, &cid), digest_binary(env, &bytes)),
        )
            .encode(env),
        Err(why) => invalid(env, why),
    }
}

/// `{:ok, {cid, bytes}}` for a node term, or `{:error, {:invalid_node, why}}`.
#[rustler::nif]
fn dag_encode<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    let _charge = Charge::start(env);
    encode(env, term)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn dag_encode_dirty<'a>(env: Env<'a>, term: Term<'a>) -> Term<'a> {
    encode(env, term)
}

fn link_term<'a>(env: Env<'a>, link: Link) -> Term<'a> {
    let kind = match link.kind {
        LinkKind::Node => names::node(),
        LinkKind::Blob => names::blob(),
    };
    (kind, digest_binary(env, &link.cid)).encode(env)
}

/// The term for a decoded node.
fn node_term<'a>(env: Env<'a>, node: &NodeRef<'_>) -> Result<Term<'a>, String> {
    Ok(match node.kind() {
        NodeKind::Raw => {
            let links: Vec<Term<'a>> = node.links().map(|l| link_term(env, l)).collect();
            (names::raw(), digest_binary(env, node.data()), links).encode(env)
        }
        NodeKind::Directory => {
            let dir = Directory::from_node(node).map_err(|e| e.to_string())?;
            let entries: Vec<Term<'a>> = dir
                .entries
                .iter()
                .map(|e| {
                    let kind = match e.kind {
                        EntryKind::File => names::file(),
                        EntryKind::Executable => names::executable(),
                        EntryKind::Directory => names::directory(),
                    };
                    (e.name.as_str(), kind, e.size, digest_binary(env, &e.cid)).encode(env)
                })
                .collect();
            (names::directory(), entries).encode(env)
        }
        NodeKind::Event => {
            let ev = Event::from_node(node).map_err(|e| e.to_string())?;
            let prev = match ev.prev {
                Some(p) => digest_binary(env, &p).encode(env),
                None => names::nil().encode(env),
            };
            let attachments: Vec<Term<'a>> =
                ev.attachments.iter().map(|l| link_term(env, *l)).collect();
            (
                names::event(),
                ev.seq,
                prev,
                digest_binary(env, &ev.payload),
                attachments,
            )
                .encode(env)
        }
    })
}

fn decode<'a>(env: Env<'a>, bytes: Binary<'a>) -> Term<'a> {
    match NodeRef::decode(bytes.as_slice())
        .map_err(|e| e.to_string())
        .and_then(|n| node_term(env, &n))
    {
        Ok(term) => (atoms::ok(), term).encode(env),
        Err(why) => invalid(env, why),
    }
}

/// `{:ok, node_term}` or `{:error, {:invalid_node, why}}`.
#[rustler::nif]
fn dag_decode<'a>(env: Env<'a>, bytes: Binary<'a>) -> Term<'a> {
    let _charge = Charge::start(env);
    decode(env, bytes)
}

#[rustler::nif(schedule = "DirtyCpu")]
fn dag_decode_dirty<'a>(env: Env<'a>, bytes: Binary<'a>) -> Term<'a> {
    decode(env, bytes)
}

/// A walk in progress, owned by the process walking.
struct WalkResource(Mutex<Traversal>);

#[rustler::resource_impl]
impl Resource for WalkResource {}

#[rustler::nif]
fn dag_walk_new(
    roots: Vec<Binary<'_>>,
    blobs: bool,
    max_depth: Option<u32>,
) -> Result<ResourceArc<WalkResource>, String> {
    let roots = roots
        .iter()
        .map(|b| cid_of(b).map(Link::node))
        .collect::<Result<Vec<_>, _>>()?;
    let spec = TraversalSpec { blobs, max_depth };
    Ok(ResourceArc::new(WalkResource(Mutex::new(Traversal::new(
        &roots, spec,
    )))))
}

/// A node's bytes if stored, of a plausible node size and hashing to its
/// cid; anything else counts as missing.
fn read_node(store: &BlobStore, cid: &Cid) -> Result<Option<Vec<u8>>, StoreError> {
    match store.size(cid)? {
        Some(size) if size as usize <= MAX_NODE_BYTES => {}
        _ => return Ok(None),
    }
    Ok(store.get(cid, false)?.filter(|b| digest(b) == *cid))
}

/// Up to `max_items` steps of the walk: `{:ok, items, :more | :done}` with
/// items `{cid, depth, node_term | {:blob, size} | :missing}`.
#[rustler::nif(schedule = "DirtyIo")]
fn dag_walk_next<'a>(
    env: Env<'a>,
    store: ResourceArc<StoreResource>,
    walk: ResourceArc<WalkResource>,
    max_items: usize,
) -> Term<'a> {
    let mut traversal = walk.0.lock().unwrap_or_else(|e| e.into_inner());
    let result = with_store(&store, |s| {
        let mut items: Vec<Term<'a>> = Vec::new();
        let mut bytes = 0;
        while items.len() < max_items && bytes < WALK_STEP_BYTES {
            let Some(visit) = traversal.next_visit() else {
                return Ok((items, names::done()));
            };
            let cid = digest_binary(env, &visit.cid);
            let value = match visit.kind {
                LinkKind::Node => {
                    let read = read_node(s.blobs(), &visit.cid)?;
                    match read.as_deref().map(NodeRef::decode) {
                        Some(Ok(node)) => match node_term(env, &node) {
                            Ok(term) => {
                                bytes += node.data().len() + node.link_count() * 33;
                                traversal.enter(node.links());
                                term
                            }
                            Err(_) => names::missing().encode(env),
                        },
                        _ => names::missing().encode(env),
                    }
                }
                LinkKind::Blob => match s.blobs().size(&visit.cid)? {
                    Some(size) => (names::blob(), size).encode(env),
                    None => names::missing().encode(env),
                },
            };
            items.push((cid, visit.depth, value).encode(env));
        }
        Ok((items, names::more()))
    });
    match result {
        Ok((items, state)) => (atoms::ok(), items, state).encode(env),
        Err(reason) => (atoms::error(), reason).encode(env),
    }
}
