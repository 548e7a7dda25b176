//! Merkle DAGs: one canonical node encoding, directory trees and event
//! chains, a deterministic traversal, and the two sides of DAG sync (a
//! provider that streams a traversal and a verifier that checks it). No I/O:
//! stores and streams are the caller's.
//!
//! # Node encoding (version 1)
//!
//! A node is stored as a blob; its cid is the BLAKE3 hash of its encoding.
//!
//! ```text
//! node  = version:u8 (=1)  kind:u8  link_count:varint  link*  data_len:varint  data
//! link  = tag:u8 (0 node, 1 blob)  cid:[u8; 32]
//! kind  = 0 raw | 1 directory | 2 event
//! ```
//!
//! Varints are unsigned LEB128 in their shortest form (at most 10 bytes,
//! no value above 2^64 - 1). A raw node's data is free-form. A directory's
//! data holds one record per link, in link order:
//! `entry_kind:u8 (0 file, 1 executable, 2 directory)  name_len:varint  name
//! size:varint`; files link blobs, directories link directory nodes. An
//! event's data is `seq:varint` followed by the payload; when `seq > 0`,
//! link 0 is the previous event (a node link) and further links are
//! attachments.
//!
//! # Limits
//!
//! | what | limit |
//! |---|---|
//! | whole encoding | [`MAX_NODE_BYTES`] = 1 MiB |
//! | links per node | [`MAX_LINKS`] = 16,384 |
//! | data section | [`MAX_DATA_BYTES`] = 1 MiB (and the whole must fit) |
//! | directory entry name | [`MAX_NAME_BYTES`] = 255 bytes |
//!
//! # Canonical rules (a decoder refuses anything else)
//!
//! - version 1 and a known kind; link tags 0 or 1;
//! - every varint minimal; no byte after the data section; nothing cut short;
//! - every limit above, checked on the length fields before any bytes are
//!   read or allocated;
//! - directories: one record per link and no byte after the last; entry
//!   kinds match link tags; names are UTF-8, 1..=255 bytes, not `.` or `..`,
//!   free of `/` and NUL, and strictly ascending by bytes (sorted, unique);
//! - events: a sequence number above 0 comes with a previous-event node link
//!   first.
//!
//! So each valid node has exactly one encoding and one cid: `decode` then
//! `encode` gives back the input byte for byte (the `dag_node` fuzz target
//! checks this), and the encoders check every rule the decoder checks.
//!
//! # Files
//!
//! A file is one blob, however large. The store's verified streaming
//! (BLAKE3 trees at 16 KiB groups) already lets a receiver check any range
//! of a large blob as it arrives, so a chunk-list node would add a second
//! tree over the same bytes and a file cid different from its blob cid. The
//! only thing chunk lists would add is deduplication of equal chunks across
//! files, which Keyring does not need yet.
//!
//! # Traversal and sync
//!
//! [`Traversal`] is pre-order, depth-first, links in order, each cid once.
//! A [`Request`] names roots, a [`TraversalSpec`] (blobs or not, depth
//! limit) and what the requester holds: `have` roots (exact: the provider
//! skips everything it reaches from them in its own store) and a
//! [`CidFilter`] (compact, probabilistic). The [`Provider`] answers one
//! [`Item`] per cid in traversal order: data, skipped, missing or deferred.
//! The [`Verifier`] runs the same traversal on what arrives: data must hash
//! to the next expected cid, skips must be ones the request allowed, and the
//! stream must end exactly where the traversal does. A filter false positive
//! shows up as a gap, fetched by [`Outcome::second_round`] without a filter:
//! two round trips at most, whatever the depth.

mod directory;
mod error;
mod event;
mod filter;
mod item;
mod node;
mod provider;
mod request;
pub mod session;
mod traversal;
mod varint;
mod verifier;

pub use directory::{check_name, Directory, Entry, EntryKind, MAX_NAME_BYTES};
pub use error::{CodecError, VerifyError};
pub use event::Event;
pub use filter::{CidFilter, MAX_FILTER_BYTES, MAX_HASHES};
pub use item::{Item, ItemDecoder, MAX_ITEM_BYTES};
pub use node::{
    Cid, Link, LinkKind, Node, NodeKind, NodeRef, LINK_BYTES, MAX_DATA_BYTES, MAX_LINKS,
    MAX_NODE_BYTES, VERSION,
};
pub use provider::{BlobRead, Exclusion, Provider, Source};
pub use request::{Request, MAX_HAVE, MAX_ROOTS, REQUEST_VERSION};
pub use traversal::{Traversal, TraversalSpec, Visit};
pub use verifier::{Accepted, Outcome, Verifier};
