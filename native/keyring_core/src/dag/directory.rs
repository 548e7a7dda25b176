//! Directory nodes: one named entry per link.
//!
//! Entry `i` pairs link `i` (the cid) with record `i` of the data section:
//! `kind: u8, name_len: varint, name, size: varint`. Files are blobs
//! (kind 0 regular, 1 executable, link tag blob); subdirectories are
//! directory nodes (kind 2, link tag node). Names are UTF-8, 1..=255 bytes,
//! never `.` or `..`, without `/` or NUL, strictly ascending by bytes (so
//! unique), which makes the encoding of a directory unique.

use super::node::{Cid, Link, LinkKind, Node, NodeKind, MAX_LINKS};
use super::{varint, CodecError};
use crate::wire::reader::Reader;

/// Longest entry name in bytes (`NAME_MAX` on Linux).
pub const MAX_NAME_BYTES: usize = 255;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EntryKind {
    /// A regular file (a blob).
    File,
    /// An executable file (a blob).
    Executable,
    /// A subdirectory (a directory node).
    Directory,
}

impl EntryKind {
    fn tag(self) -> u8 {
        match self {
            EntryKind::File => 0,
            EntryKind::Executable => 1,
            EntryKind::Directory => 2,
        }
    }

    fn from_tag(tag: u8) -> Result<Self, CodecError> {
        match tag {
            0 => Ok(EntryKind::File),
            1 => Ok(EntryKind::Executable),
            2 => Ok(EntryKind::Directory),
            other => Err(CodecError::UnknownEntryKind(other)),
        }
    }

    fn link_kind(self) -> LinkKind {
        match self {
            EntryKind::File | EntryKind::Executable => LinkKind::Blob,
            EntryKind::Directory => LinkKind::Node,
        }
    }
}

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name (one path component).
    pub name: String,
    /// File, executable or directory.
    pub kind: EntryKind,
    /// Files: the blob's length in bytes. Directories: the total bytes of
    /// every file below (claimed by the author; checked when written out).
    pub size: u64,
    /// The blob's or the directory node's cid.
    pub cid: Cid,
}

/// A directory: entries sorted by name.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Directory {
    /// Entries, strictly ascending by name.
    pub entries: Vec<Entry>,
}

/// Whether `name` may name a directory entry.
pub fn check_name(name: &[u8]) -> Result<(), CodecError> {
    if name.is_empty() {
        return Err(CodecError::BadName("empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(CodecError::TooLarge {
            what: "name",
            limit: MAX_NAME_BYTES,
        });
    }
    if name == b"." || name == b".." {
        return Err(CodecError::BadName("`.` or `..`"));
    }
    if name.contains(&b'/') {
        return Err(CodecError::BadName("contains `/`"));
    }
    if name.contains(&0) {
        return Err(CodecError::BadName("contains NUL"));
    }
    if std::str::from_utf8(name).is_err() {
        return Err(CodecError::BadName("not UTF-8"));
    }
    Ok(())
}

/// Reads the entry records of a directory's data section, checking each
/// against its link; `f` sees every entry.
fn read_entries(
    links: impl ExactSizeIterator<Item = Link>,
    data: &[u8],
    mut f: impl FnMut(EntryKind, &[u8], u64, Cid),
) -> Result<(), CodecError> {
    let mut r = Reader::new(data);
    let mut previous: Option<&[u8]> = None;
    for link in links {
        let kind = EntryKind::from_tag(r.u8().map_err(|_| CodecError::Truncated)?)?;
        if kind.link_kind() != link.kind {
            return Err(CodecError::EntryKindMismatch);
        }
        let len = varint::get(&mut r)?;
        if len > MAX_NAME_BYTES as u64 {
            return Err(CodecError::TooLarge {
                what: "name",
                limit: MAX_NAME_BYTES,
            });
        }
        let name = r.take(len as usize).map_err(|_| CodecError::Truncated)?;
        check_name(name)?;
        if previous.is_some_and(|p| p >= name) {
            return Err(CodecError::UnsortedNames);
        }
        previous = Some(name);
        let size = varint::get(&mut r)?;
        f(kind, name, size, link.cid);
    }
    if r.remaining() != 0 {
        return Err(CodecError::TrailingBytes);
    }
    Ok(())
}

/// The directory rules, checked by the node decoder.
pub(crate) fn check(
    links: impl ExactSizeIterator<Item = Link>,
    data: &[u8],
) -> Result<(), CodecError> {
    read_entries(links, data, |_, _, _, _| {})
}

impl Directory {
    /// Entries in any order; [`Directory::to_node`] sorts them.
    pub fn new(entries: Vec<Entry>) -> Self {
        Self { entries }
    }

    /// The directory a node holds.
    pub fn from_node(node: &super::NodeRef<'_>) -> Result<Self, CodecError> {
        if node.kind() != NodeKind::Directory {
            return Err(CodecError::Invalid("node kind (not a directory)"));
        }
        let mut entries = Vec::with_capacity(node.link_count());
        read_entries(node.links(), node.data(), |kind, name, size, cid| {
            entries.push(Entry {
                // check_name has accepted it as UTF-8.
                name: String::from_utf8_lossy(name).into_owned(),
                kind,
                size,
                cid,
            })
        })?;
        Ok(Self { entries })
    }

    /// The directory as a node, entries sorted by name; duplicate or invalid
    /// names are refused.
    pub fn to_node(&self) -> Result<Node, CodecError> {
        if self.entries.len() > MAX_LINKS {
            return Err(CodecError::TooLarge {
                what: "links",
                limit: MAX_LINKS,
            });
        }
        let mut sorted: Vec<&Entry> = self.entries.iter().collect();
        sorted.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut links = Vec::with_capacity(sorted.len());
        let mut data = Vec::new();
        for (i, entry) in sorted.iter().enumerate() {
            check_name(entry.name.as_bytes())?;
            if i > 0 && sorted[i - 1].name == entry.name {
                return Err(CodecError::UnsortedNames);
            }
            links.push(Link {
                kind: entry.kind.link_kind(),
                cid: entry.cid,
            });
            data.push(entry.kind.tag());
            varint::put(&mut data, entry.name.len() as u64);
            data.extend_from_slice(entry.name.as_bytes());
            varint::put(&mut data, entry.size);
        }
        Ok(Node {
            kind: NodeKind::Directory,
            links,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dag::NodeRef;

    fn entry(name: &str, kind: EntryKind) -> Entry {
        Entry {
            name: name.into(),
            kind,
            size: 3,
            cid: [7; 32],
        }
    }

    #[test]
    fn entries_are_sorted_on_encode_and_survive_a_round_trip() {
        let dir = Directory::new(vec![
            entry("b", EntryKind::File),
            entry("a", EntryKind::Directory),
            entry("c", EntryKind::Executable),
        ]);
        let bytes = dir.to_node().unwrap().encode().unwrap();
        let back = Directory::from_node(&NodeRef::decode(&bytes).unwrap()).unwrap();
        let names: Vec<_> = back.entries.iter().map(|e| e.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(back.entries[0].kind, EntryKind::Directory);
    }

    #[test]
    fn duplicate_names_are_refused() {
        let dir = Directory::new(vec![
            entry("a", EntryKind::File),
            entry("a", EntryKind::File),
        ]);
        assert_eq!(dir.to_node().unwrap_err(), CodecError::UnsortedNames);
    }

    #[test]
    fn names_that_could_escape_a_directory_are_refused() {
        for bad in ["", ".", "..", "a/b", "/", "a\0b"] {
            let dir = Directory::new(vec![entry(bad, EntryKind::File)]);
            assert!(
                matches!(dir.to_node(), Err(CodecError::BadName(_))),
                "{bad:?}"
            );
        }
        let long = "x".repeat(MAX_NAME_BYTES + 1);
        let dir = Directory::new(vec![entry(&long, EntryKind::File)]);
        assert!(matches!(dir.to_node(), Err(CodecError::TooLarge { .. })));
        assert!(check_name("x".repeat(MAX_NAME_BYTES).as_bytes()).is_ok());
        assert!(check_name("..a".as_bytes()).is_ok());
        assert!(check_name(&[0xff, 0xfe]).is_err());
    }

    fn hand_built(entries: &[(u8, &[u8], LinkKind)]) -> Vec<u8> {
        let node = Node {
            kind: NodeKind::Directory,
            links: entries
                .iter()
                .map(|&(_, _, kind)| Link { kind, cid: [1; 32] })
                .collect(),
            data: entries
                .iter()
                .flat_map(|&(kind, name, _)| {
                    let mut rec = vec![kind, name.len() as u8];
                    rec.extend_from_slice(name);
                    rec.push(0);
                    rec
                })
                .collect(),
        };
        // Bypass Node::encode's checks: lay the bytes out by hand.
        let mut out = vec![1, 1];
        varint::put(&mut out, node.links.len() as u64);
        for l in &node.links {
            out.push(if l.kind == LinkKind::Node { 0 } else { 1 });
            out.extend_from_slice(&l.cid);
        }
        varint::put(&mut out, node.data.len() as u64);
        out.extend_from_slice(&node.data);
        out
    }

    #[test]
    fn a_decoder_refuses_unsorted_duplicate_and_mismatched_entries() {
        let ok = hand_built(&[(0, b"a", LinkKind::Blob), (2, b"b", LinkKind::Node)]);
        assert!(NodeRef::decode(&ok).is_ok());
        let unsorted = hand_built(&[(0, b"b", LinkKind::Blob), (0, b"a", LinkKind::Blob)]);
        assert_eq!(
            NodeRef::decode(&unsorted).unwrap_err(),
            CodecError::UnsortedNames
        );
        let dup = hand_built(&[(0, b"a", LinkKind::Blob), (0, b"a", LinkKind::Blob)]);
        assert_eq!(
            NodeRef::decode(&dup).unwrap_err(),
            CodecError::UnsortedNames
        );
        let mismatch = hand_built(&[(2, b"a", LinkKind::Blob)]);
        assert_eq!(
            NodeRef::decode(&mismatch).unwrap_err(),
            CodecError::EntryKindMismatch
        );
        let dotdot = hand_built(&[(0, b"..", LinkKind::Blob)]);
        assert!(matches!(
            NodeRef::decode(&dotdot),
            Err(CodecError::BadName(_))
        ));
        let unknown = hand_built(&[(3, b"a", LinkKind::Blob)]);
        assert_eq!(
            NodeRef::decode(&unknown).unwrap_err(),
            CodecError::UnknownEntryKind(3)
        );
    }
}
