//! Event nodes: one entry of an agent's hash-chained event log.
//!
//! Data section: `seq: varint` then the payload (every remaining byte).
//! An event with `seq == 0` starts a chain and has no predecessor; an event
//! with `seq > 0` has its predecessor as link 0 (a node link). Any other
//! links are attachments (blobs or nodes the event refers to), in order.
//! Whether the predecessor really holds `seq - 1` is checked when an event is
//! appended locally (the predecessor is at hand then), not by the decoder.

use super::node::{Cid, Link, LinkKind, Node, NodeKind, MAX_LINKS};
use super::{varint, CodecError, NodeRef};
use crate::wire::reader::Reader;

/// An event: its position in the chain, its predecessor, payload, attachments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// 0 for the first event of a chain, then predecessor's + 1.
    pub seq: u64,
    /// The previous event; `None` exactly when `seq == 0`.
    pub prev: Option<Cid>,
    /// Application bytes.
    pub payload: Vec<u8>,
    /// Blobs or nodes the event refers to (followed by traversals).
    pub attachments: Vec<Link>,
}

/// The event rules, checked by the node decoder.
pub(crate) fn check(
    mut links: impl ExactSizeIterator<Item = Link>,
    data: &[u8],
) -> Result<(), CodecError> {
    let seq = varint::get(&mut Reader::new(data))?;
    if seq > 0 && links.next().map(|l| l.kind) != Some(LinkKind::Node) {
        return Err(CodecError::MissingPrev(seq));
    }
    Ok(())
}

impl Event {
    /// The first event of a chain.
    pub fn first(payload: Vec<u8>) -> Self {
        Self {
            seq: 0,
            prev: None,
            payload,
            attachments: Vec::new(),
        }
    }

    /// The event that follows `prev` (whose sequence number is `prev_seq`).
    pub fn after(prev: Cid, prev_seq: u64, payload: Vec<u8>) -> Result<Self, CodecError> {
        let seq = prev_seq
            .checked_add(1)
            .ok_or(CodecError::Invalid("sequence number"))?;
        Ok(Self {
            seq,
            prev: Some(prev),
            payload,
            attachments: Vec::new(),
        })
    }

    /// The event a node holds.
    pub fn from_node(node: &NodeRef<'_>) -> Result<Self, CodecError> {
        if node.kind() != NodeKind::Event {
            return Err(CodecError::Invalid("node kind (not an event)"));
        }
        let mut r = Reader::new(node.data());
        let seq = varint::get(&mut r)?;
        let mut links = node.links();
        let prev = if seq > 0 {
            match links.next() {
                Some(l) if l.kind == LinkKind::Node => Some(l.cid),
                _ => return Err(CodecError::MissingPrev(seq)),
            }
        } else {
            None
        };
        Ok(Self {
            seq,
            prev,
            payload: r.rest().to_vec(),
            attachments: links.collect(),
        })
    }

    /// The event as a node.
    pub fn to_node(&self) -> Result<Node, CodecError> {
        if (self.seq == 0) != self.prev.is_none() {
            return Err(CodecError::Invalid("prev (present exactly when seq > 0)"));
        }
        if self.attachments.len() + usize::from(self.prev.is_some()) > MAX_LINKS {
            return Err(CodecError::TooLarge {
                what: "links",
                limit: MAX_LINKS,
            });
        }
        let mut links = Vec::with_capacity(self.attachments.len() + 1);
        links.extend(self.prev.map(Link::node));
        links.extend_from_slice(&self.attachments);
        let mut data = Vec::with_capacity(varint::MAX_LEN + self.payload.len());
        varint::put(&mut data, self.seq);
        data.extend_from_slice(&self.payload);
        Ok(Node {
            kind: NodeKind::Event,
            links,
            data,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(event: &Event) -> Event {
        let bytes = event.to_node().unwrap().encode().unwrap();
        Event::from_node(&NodeRef::decode(&bytes).unwrap()).unwrap()
    }

    #[test]
    fn a_chain_links_each_event_to_the_one_before() {
        let first = Event::first(b"boot".to_vec());
        assert_eq!(round_trip(&first), first);
        let (cid, _) = first.to_node().unwrap().encode_with_cid().unwrap();
        let mut second = Event::after(cid, 0, b"tick".to_vec()).unwrap();
        second.attachments.push(Link::blob([9; 32]));
        let back = round_trip(&second);
        assert_eq!(back, second);
        assert_eq!(back.prev, Some(cid));
        assert_eq!(back.seq, 1);
    }

    #[test]
    fn an_event_past_zero_without_a_prev_node_link_is_refused() {
        let node = Node {
            kind: NodeKind::Event,
            links: vec![Link::blob([1; 32])],
            data: vec![5],
        };
        assert_eq!(node.encode().unwrap_err(), CodecError::MissingPrev(5));
        let node = Node {
            kind: NodeKind::Event,
            links: vec![],
            data: vec![1],
        };
        assert_eq!(node.encode().unwrap_err(), CodecError::MissingPrev(1));
        let empty = Node {
            kind: NodeKind::Event,
            links: vec![],
            data: vec![],
        };
        assert_eq!(empty.encode().unwrap_err(), CodecError::Truncated);
        let bad = Event {
            seq: 0,
            prev: Some([1; 32]),
            payload: vec![],
            attachments: vec![],
        };
        assert!(bad.to_node().is_err());
    }
}
