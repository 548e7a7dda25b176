//! Strict linear logs, for the NIFs the mesh process still calls
//! (`log_verify`, `log_append`, `log_merge`) until it holds a [`Ring`]: a log
//! is a list whose entry `i` has depth `i` and names entry `i - 1` as its
//! parent; a competing entry is refused as a [`MembershipError::Fork`].

use super::entry::Entry;
use super::ring::Ring;
use super::MembershipError;

/// Decodes `entries`, checks they form one line, and verifies them.
pub fn open_linear<'a, I>(entries: I) -> Result<Ring, MembershipError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let decoded = decode_line(entries)?;
    Ring::open(decoded.iter().map(|(_, b)| *b))
}

/// Verifies both logs and answers the longer one, if one extends the other.
pub fn merge_linear<'a, I, J>(current: I, incoming: J) -> Result<Ring, MembershipError>
where
    I: IntoIterator<Item = &'a [u8]>,
    J: IntoIterator<Item = &'a [u8]>,
{
    let ours = decode_line(current)?;
    let theirs = decode_line(incoming)?;
    let their_ring = Ring::open(theirs.iter().map(|(_, b)| *b))?;
    let our_ring = Ring::open(ours.iter().map(|(_, b)| *b))?;
    if their_ring.keyring_id() != our_ring.keyring_id() {
        return Err(MembershipError::WrongKeyring { seq: 0 });
    }
    if let Some(seq) = ours
        .iter()
        .zip(&theirs)
        .position(|((a, _), (b, _))| a.hash() != b.hash())
    {
        return Err(MembershipError::Fork { seq: seq as u64 });
    }
    Ok(if theirs.len() > ours.len() {
        their_ring
    } else {
        our_ring
    })
}

fn decode_line<'a, I>(entries: I) -> Result<Vec<(Entry, &'a [u8])>, MembershipError>
where
    I: IntoIterator<Item = &'a [u8]>,
{
    let mut out: Vec<(Entry, &'a [u8])> = Vec::new();
    for bytes in entries {
        let entry = Entry::decode(bytes)?;
        let (seq, len) = (entry.body.seq, out.len() as u64);
        if seq < len {
            return Err(MembershipError::Fork { seq });
        }
        if seq > len {
            return Err(if len == 0 {
                MembershipError::NoGenesis
            } else {
                MembershipError::Gap { seq, len }
            });
        }
        if let Some((prev, _)) = out.last() {
            if entry.body.prev_hash != prev.hash() {
                return Err(MembershipError::BrokenChain { seq });
            }
        }
        out.push((entry, bytes));
    }
    Ok(out)
}
