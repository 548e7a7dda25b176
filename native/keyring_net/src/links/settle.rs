//! Which connection a pair keeps when it has two: a pure decision, so both
//! sides reach the same answer without talking.

use keyring_core::membership::PublicKey;

/// What to keep when a new admitted connection arrives for a pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Keep {
    /// The new connection becomes the link (any old one is superseded).
    New,
    /// The pair's live link stays; the new connection is superseded.
    Existing,
}

/// Settles a new connection (`dialled` by us or by the peer) against the
/// pair's live link, if any (`existing_dialled`: whether we dialled that).
///
/// - No live link: the new one is it.
/// - The same side dialled again: the newer connection is the live one (the
///   dialler replaced a link it considers lost).
/// - Both sides dialled: keep the connection the lower key dialled. Each
///   side computes this from the two keys alone, so both keep the same one.
pub(crate) fn settle(
    existing_dialled: Option<bool>,
    dialled: bool,
    me: &PublicKey,
    peer: &PublicKey,
) -> Keep {
    match existing_dialled {
        None => Keep::New,
        Some(old) if old == dialled => Keep::New,
        Some(_) if dialled == (me < peer) => Keep::New,
        Some(_) => Keep::Existing,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOW: PublicKey = [1; 32];
    const HIGH: PublicKey = [2; 32];

    #[test]
    fn a_first_connection_becomes_the_link() {
        for dialled in [false, true] {
            assert_eq!(settle(None, dialled, &LOW, &HIGH), Keep::New);
        }
    }

    #[test]
    fn the_same_side_dialling_again_replaces_its_link() {
        for dialled in [false, true] {
            assert_eq!(settle(Some(dialled), dialled, &LOW, &HIGH), Keep::New);
            assert_eq!(settle(Some(dialled), dialled, &HIGH, &LOW), Keep::New);
        }
    }

    #[test]
    fn crossing_dials_keep_the_one_the_lower_key_dialled_on_both_sides() {
        // LOW's view: it dialled one connection, HIGH dialled the other.
        // Whichever arrives second, both sides keep LOW's dial.
        assert_eq!(settle(Some(false), true, &LOW, &HIGH), Keep::New);
        assert_eq!(settle(Some(true), false, &LOW, &HIGH), Keep::Existing);
        // HIGH's view of the same two connections.
        assert_eq!(settle(Some(true), false, &HIGH, &LOW), Keep::New);
        assert_eq!(settle(Some(false), true, &HIGH, &LOW), Keep::Existing);
    }

    #[test]
    fn both_sides_agree_in_every_order() {
        // Connection X dialled by LOW, Y dialled by HIGH; each side sees them
        // arrive in either order. The kept one must be X on both sides.
        for low_sees_x_first in [false, true] {
            for high_sees_x_first in [false, true] {
                let kept = |me: &PublicKey, peer: &PublicKey, x_first: bool| {
                    // `dialled` from this side's point of view.
                    let (x, y) = (me == &LOW, me == &HIGH);
                    let (first, second) = if x_first { (x, y) } else { (y, x) };
                    match settle(Some(first), second, me, peer) {
                        Keep::New => {
                            if x_first {
                                "Y"
                            } else {
                                "X"
                            }
                        }
                        Keep::Existing => {
                            if x_first {
                                "X"
                            } else {
                                "Y"
                            }
                        }
                    }
                };
                assert_eq!(kept(&LOW, &HIGH, low_sees_x_first), "X");
                assert_eq!(kept(&HIGH, &LOW, high_sees_x_first), "X");
            }
        }
    }
}
